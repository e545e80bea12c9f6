package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/repository"
)

// A process that backs up two sources (backup A B, --all-databases, a job
// with several sources) with a prune by another process between them: the
// second source must not deduplicate against chunks the prune removed.
func TestPruneBetweenTwoSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := os.ReadFile(filepath.Join("..", "..", "testdata", "chinook.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.sqlite", "b.sqlite"} {
		if err := os.WriteFile(filepath.Join(dir, n), db, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repoDir := filepath.Join(dir, "repo")
	kdf := crypto.DefaultKDF()
	kdf.Time, kdf.MemoryKiB = 1, 1024
	pw := []byte("pw")
	r, err := repository.Init(ctx, local.New(repoDir), repository.InitOptions{Password: pw, KDF: &kdf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := New(nil, nil, func(string) string { return "" })
	srcA, err := a.Source("sqlite:" + filepath.Join(dir, "a.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	srcB, err := a.Source("sqlite:" + filepath.Join(dir, "b.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Backup(ctx, r, srcA, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Another process forgets the first snapshot and prunes.
	o, err := repository.Open(ctx, local.New(repoDir), pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ForgetIDs(ctx, o, []string{first.Snapshot.ID}, false); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Prune(ctx, o)
	if err != nil || rep.RemovedObjects == 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	o.Close()

	second, err := a.Backup(ctx, r, srcB, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Snapshot.AddedBytes == 0 {
		t.Error("the second source reports 0 bytes added though its chunks were pruned")
	}
	crep, err := r.Check(ctx, true, nil)
	if err != nil || !crep.OK() {
		t.Fatalf("check: %+v, %v", crep, err)
	}
	target, err := a.Target("sqlite:" + filepath.Join(dir, "restored.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(ctx, r, second.Snapshot, target, RestoreOptions{}); err != nil {
		t.Fatalf("restore of the second snapshot: %v", err)
	}
}
