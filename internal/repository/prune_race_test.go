package repository

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/manifest"
)

// checkHealthy fails the test when check finds errors.
func checkHealthy(t *testing.T, r *Repository) *CheckReport {
	t.Helper()
	rep, err := r.Check(context.Background(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check found errors: %+v", rep.Errors)
	}
	return rep
}

// otherProcess opens the repository at dir again, as another snapdata
// process would.
func otherProcess(t *testing.T, dir string) *Repository {
	t.Helper()
	o, err := Open(context.Background(), local.New(dir), []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// A prune that runs between a backup's deduplication and its manifest write
// (its lock wrongly taken for dead) must not leave a snapshot whose chunks
// are gone: the backup sees the prune marker change and fails.
func TestPruneDuringBackupWritesNoBrokenSnapshot(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	data := text(31, 400<<10)
	first := commit(t, r, "s", map[string][]byte{"a": data})

	s, err := r.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeStream(t, s, "a", data) // every chunk deduplicated against first
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if s.AddedBytes() != 0 {
		t.Fatalf("the second backup stored %d bytes of unchanged data", s.AddedBytes())
	}
	o := otherProcess(t, dir)
	if err := o.RemoveSnapshot(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := o.Prune(ctx, false)
	if err != nil || rep.RemovedObjects == 0 {
		t.Fatalf("prune removed %+v, %v", rep, err)
	}
	_, err = s.Commit(ctx, &manifest.Snapshot{Time: time.Now(), Source: "s", Engine: "test"})
	if !errors.Is(err, ErrPrunedDuringBackup) {
		t.Fatalf("commit after a prune removed its chunks: %v", err)
	}
	if ids, _ := r.SnapshotIDs(ctx); len(ids) != 0 {
		t.Fatalf("a snapshot was written: %v", ids)
	}
	checkHealthy(t, r)

	// A prune that removed none of the session's chunks does not stop it.
	keep := commit(t, r, "s", map[string][]byte{"a": data})
	s, err = r.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeStream(t, s, "a", data)
	if _, err := o.Prune(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, &manifest.Snapshot{Time: time.Now(), Source: "s", Engine: "test"}); err != nil {
		t.Fatalf("commit after a harmless prune: %v", err)
	}
	checkHealthy(t, r)
	_ = keep
}

// Two backups by one process (two sources, or --all-databases) with a prune
// by another process in between: the second backup must not deduplicate
// against chunks the prune removed.
func TestPruneBetweenSourcesOfOneProcess(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	data := text(32, 400<<10)
	first := commit(t, r, "a", map[string][]byte{"t": data})

	o := otherProcess(t, dir)
	if err := o.RemoveSnapshot(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if rep, err := o.Prune(ctx, false); err != nil || rep.RemovedObjects == 0 {
		t.Fatalf("prune removed %+v, %v", rep, err)
	}

	second := commit(t, r, "b", map[string][]byte{"t": data})
	if second.AddedBytes == 0 {
		t.Error("the second source's backup reports 0 bytes added though the prune removed its chunks")
	}
	checkHealthy(t, r)
	if got := readStream(t, r, second.Streams[0]); !bytes.Equal(got, data) {
		t.Fatal("the second snapshot does not restore")
	}
}

// In a repository made with --no-encryption a manifest edited in place
// still opens; its id (the SHA-256 of its JSON) no longer matches.
func TestEditedPlainManifestIsFlagged(t *testing.T) {
	r, _ := newRepo(t, InitOptions{NoEncryption: true})
	ctx := context.Background()
	s := commit(t, r, "s", map[string][]byte{"a": text(33, 50<<10)})
	h := backend.Handle{Type: backend.Snapshot, Name: s.ID}
	obj, err := r.be.Load(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := r.decode(obj, 0)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(plain, []byte(`"source":"s"`), []byte(`"source":"x"`), 1)
	if bytes.Equal(edited, plain) {
		t.Fatalf("nothing to edit in %s", plain)
	}
	if err := r.be.Save(ctx, h, r.encode(edited)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadSnapshot(ctx, s.ID); !errors.Is(err, ErrDamagedSnapshot) {
		t.Fatalf("edited manifest loads: %v", err)
	}
	rep, err := r.Check(ctx, false, nil)
	if err != nil || rep.OK() {
		t.Fatalf("check of an edited manifest: %+v, %v", rep, err)
	}
	if _, err := r.Prune(ctx, true); !errors.Is(err, ErrDamagedSnapshot) {
		t.Fatalf("prune with an edited manifest: %v", err)
	}
}

// check without --read-data finds a truncated chunk by its size, and names
// the tables it harms.
func TestCheckFindsTruncatedChunkBySize(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	s := commit(t, r, "s", map[string][]byte{"orders": text(34, 200<<10), "users": text(35, 200<<10)})
	var victim manifest.Stream
	for _, st := range s.Streams {
		if st.Table == "users" {
			victim = st
		}
	}
	c := victim.Chunks[len(victim.Chunks)/2]
	path := filepath.Join(dir, "data", c.ID[:2], c.ID)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Check(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].Object != "data/"+c.ID || len(rep.Errors[0].Tables) != 1 || rep.Errors[0].Tables[0] != "users" ||
		len(rep.Errors[0].Snapshots) != 1 || rep.Errors[0].Snapshots[0] != s.ID {
		t.Fatalf("check of a truncated chunk: %+v", rep.Errors)
	}
	rep, err = r.Check(ctx, true, nil)
	if err != nil || len(rep.Errors) != 1 {
		t.Fatalf("check --read-data of a truncated chunk: %+v, %v", rep.Errors, err)
	}
}

// Two concurrent backups of the same data: the one that finds the chunks
// stored by the other does not store them again nor report them as added.
func TestConcurrentBackupsReportWhatTheyAdded(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	o := otherProcess(t, dir)
	data := text(36, 400<<10)
	sb, err := o.NewSession(ctx) // lists the stored chunks before the first backup stores any
	if err != nil {
		t.Fatal(err)
	}
	first := commit(t, r, "s", map[string][]byte{"a": data})
	if first.AddedBytes == 0 {
		t.Fatal("the first backup added nothing")
	}
	writeStream(t, sb, "a", data)
	second := &manifest.Snapshot{Time: time.Now(), Source: "s", Engine: "test"}
	if _, err := sb.Commit(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second.AddedBytes != 0 {
		t.Fatalf("the second backup reports %d bytes added, stored by the first (%d)", second.AddedBytes, first.AddedBytes)
	}
	checkHealthy(t, r)
	if got := readStream(t, r, second.Streams[0]); !bytes.Equal(got, data) {
		t.Fatal("the second snapshot does not read back")
	}
}
