package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/repository"
)

// failingSaves is a backend whose Save of locks fails with err.
type failingSaves struct {
	backend.Backend
	err error
}

func (f failingSaves) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.Lock {
		return fmt.Errorf("save %s: %w", h, f.err)
	}
	return f.Backend.Save(ctx, h, data)
}

func TestReadLockDegradesOnRefusedWrites(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	kdf := crypto.DefaultKDF()
	kdf.Time, kdf.MemoryKiB = 1, 1024
	r, err := repository.Init(ctx, local.New(dir), repository.InitOptions{Password: []byte("pw"), KDF: &kdf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, tc := range []struct {
		err     error
		degrade bool
	}{
		{syscall.EROFS, true}, {syscall.ENOSPC, true}, {syscall.EACCES, true}, {syscall.EIO, false},
	} {
		var logs bytes.Buffer
		a := New(nil, slog.New(slog.NewTextHandler(&logs, nil)), func(string) string { return "" })
		repo, err := repository.Open(ctx, failingSaves{local.New(dir), tc.err}, []byte("pw"), nil)
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := a.ReadLock(ctx, repo, "restore")
		switch {
		case tc.degrade && err != nil:
			t.Errorf("%v: read lock not degraded: %v", tc.err, err)
		case tc.degrade && !strings.Contains(logs.String(), "reading without one"):
			t.Errorf("%v: no warning: %q", tc.err, logs.String())
		case !tc.degrade && !errors.Is(err, tc.err):
			t.Errorf("%v: an I/O error was not reported: %v", tc.err, err)
		}
		if unlock != nil {
			unlock()
		}
		if _, err := a.Prune(ctx, repo); tc.degrade && !errors.Is(err, tc.err) {
			t.Errorf("%v: prune did not fail on its lock: %v", tc.err, err)
		}
		repo.Close()
	}
}
