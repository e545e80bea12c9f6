package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/backend/s3"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

var s3Prefix atomic.Int64

// backends returns a fresh, empty location per call for each backend kind.
func backends(t *testing.T) map[string]func() backend.Backend {
	return map[string]func() backend.Backend{
		"local": func() backend.Backend { return local.New(filepath.Join(t.TempDir(), "repo")) },
		"s3": func() backend.Backend {
			srv := testsrv.S3(t)
			srv.SetEnv(t)
			bucket := srv.NewBucket(t)
			b, err := s3.New(context.Background(), srv.URL(bucket, fmt.Sprintf("r%d", s3Prefix.Add(1))))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

// A repository whose config was deleted is damaged, not absent: open says
// so, and init refuses to write a new config over its objects.
func TestMissingConfigIsDamageAndInitRefuses(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			pw := []byte("correct horse")
			be := mk()
			if _, err := Open(ctx, be, pw, nil); !errors.Is(err, ErrNoRepository) {
				t.Fatalf("open of an empty location: %v", err)
			}
			r, err := Init(ctx, be, InitOptions{Password: pw, KDF: fastKDF(), ChunkAvgBits: 14}, nil)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, r, "s", map[string][]byte{"a": text(41, 100<<10)})
			if _, err := Init(ctx, be, InitOptions{Password: pw, KDF: fastKDF()}, nil); !errors.Is(err, ErrLocationInUse) {
				t.Fatalf("init over a repository: %v", err)
			}
			if err := be.Remove(ctx, backend.Handle{Type: backend.Config}); err != nil {
				t.Fatal(err)
			}
			_, err = Open(ctx, be, pw, nil)
			if !errors.Is(err, ErrDamagedRepository) || errors.Is(err, ErrNoRepository) || !strings.Contains(err.Error(), "snapshots/") {
				t.Fatalf("open without config: %v", err)
			}
			_, err = Init(ctx, be, InitOptions{Password: pw, KDF: fastKDF()}, nil)
			if !errors.Is(err, ErrLocationInUse) || !strings.Contains(err.Error(), "keys/") {
				t.Fatalf("init over a repository without config: %v", err)
			}
			if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); !backend.IsNotFound(err) {
				t.Fatalf("init wrote a config: %v", err)
			}

			// One lock object is enough to refuse.
			be2 := mk()
			if err := be2.Save(ctx, backend.Handle{Type: backend.Lock, Name: strings.Repeat("ab", 32)}, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if _, err := Init(ctx, be2, InitOptions{Password: pw, KDF: fastKDF()}, nil); !errors.Is(err, ErrLocationInUse) {
				t.Fatalf("init over a lock: %v", err)
			}
		})
	}
}

// A key file that does not parse is reported as damaged, not as a wrong
// password; a wrong password with intact keys stays a wrong password.
func TestDamagedKeyIsNotWrongPassword(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	r.Close()
	ctx := context.Background()
	if _, err := Open(ctx, local.New(dir), []byte("not it"), nil); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	keys, err := filepath.Glob(filepath.Join(dir, "keys", "*"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	data, err := os.ReadFile(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys[0], data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, local.New(dir), []byte("correct horse"), nil)
	if !errors.Is(err, ErrDamagedKey) || errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "keys/"+filepath.Base(keys[0])[:8]) {
		t.Fatalf("damaged key: %v", err)
	}
}
