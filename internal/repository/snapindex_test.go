package repository

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
)

// A manifest deleted behind snapdata's back is named by check (an error)
// and by prune (a warning, not a refusal) through the snapshot's record;
// RemoveSnapshot (forget) removes the record. Local and S3, encrypted and
// not.
func TestDeletedManifestNamedByRecord(t *testing.T) {
	for bename, mk := range backends(t) {
		for _, enc := range []bool{true, false} {
			t.Run(bename+"/"+map[bool]string{true: "encrypted", false: "no-encryption"}[enc], func(t *testing.T) {
				ctx := context.Background()
				be := mk()
				opts := InitOptions{NoEncryption: !enc, KDF: fastKDF(), ChunkAvgBits: 14}
				if enc {
					opts.Password = []byte("correct horse")
				}
				r, err := Init(ctx, be, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				keep := commit(t, r, "sqlite:keep.db", map[string][]byte{"a": text(30, 100<<10)})
				gone := commit(t, r, "postgres://bars@db.example/shop", map[string][]byte{"a": text(31, 100<<10)})
				if _, err := be.Stat(ctx, recordHandle(gone.ID)); err != nil {
					t.Fatalf("no record written: %v", err)
				}
				if rep, err := r.Check(ctx, false, nil); err != nil || !rep.OK() {
					t.Fatalf("check before the deletion: %+v %v", rep, err)
				}
				if err := be.Remove(ctx, backend.Handle{Type: backend.Snapshot, Name: gone.ID}); err != nil {
					t.Fatal(err)
				}
				rep, err := r.Check(ctx, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Errors) != 1 || rep.Errors[0].Snapshots[0] != gone.ID {
					t.Fatalf("check after deleting a manifest: %+v", rep.Errors)
				}
				msg := rep.Errors[0].Message
				for _, want := range []string{"snapshot " + gone.ID[:8], "postgres://bars@db.example/shop", gone.Time.UTC().Format("2006-01-02T15:04:05Z"), "manifest missing", "prune will delete it", "snapdata forget " + gone.ID[:8]} {
					if !strings.Contains(msg, want) {
						t.Errorf("check message lacks %q: %s", want, msg)
					}
				}
				pr, err := r.Prune(ctx, false)
				if err != nil {
					t.Fatalf("prune refused: %v", err)
				}
				if len(pr.MissingManifests) != 1 || pr.MissingManifests[0].ID != gone.ID || pr.RemovedObjects == 0 {
					t.Fatalf("prune report: %+v", pr)
				}
				// The record stays until forget acknowledges it.
				if rep, _ := r.Check(ctx, false, nil); rep.OK() {
					t.Fatal("check healthy after prune, before forget")
				}
				ids, err := r.ResolveIDs(ctx, []string{gone.ID[:8]})
				if err != nil || len(ids) != 1 || ids[0] != gone.ID {
					t.Fatalf("resolve the missing snapshot: %v %v", ids, err)
				}
				if err := r.RemoveSnapshot(ctx, gone.ID); err != nil {
					t.Fatal(err)
				}
				if rep, err := r.Check(ctx, true, nil); err != nil || !rep.OK() || rep.Snapshots != 1 {
					t.Fatalf("check after forget: %+v %v", rep, err)
				}
				if err := r.RemoveSnapshot(ctx, keep.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := be.Stat(ctx, recordHandle(keep.ID)); !backend.IsNotFound(err) {
					t.Fatalf("forget left the record: %v", err)
				}
			})
		}
	}
}

// Snapshots written before records existed have none: the deletion of
// their manifest is not reported (nothing can know of it).
func TestSnapshotsWithoutRecordsStayHealthy(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	old := commit(t, r, "s", map[string][]byte{"a": text(40, 100<<10)})
	commit(t, r, "s", map[string][]byte{"a": text(41, 100<<10)})
	if err := os.RemoveAll(filepath.Join(dir, "index", "snapshots")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "snapshots", old.ID)); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Check(ctx, false, nil)
	if err != nil || !rep.OK() || rep.Unreferenced == 0 {
		t.Fatalf("check of snapshots without records: %+v %v", rep, err)
	}
	pr, err := r.Prune(ctx, false)
	if err != nil || len(pr.MissingManifests) != 0 {
		t.Fatalf("prune: %+v %v", pr, err)
	}
}
