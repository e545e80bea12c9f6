package repository

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/manifest"
)

func TestTagChangeApply(t *testing.T) {
	cases := []struct {
		name   string
		change TagChange
		tags   []string
		want   []string
		bad    bool
	}{
		{"add", TagChange{Add: []string{"b"}}, []string{"a"}, []string{"a", "b"}, false},
		{"add present", TagChange{Add: []string{"a"}}, []string{"a"}, []string{"a"}, false},
		{"remove", TagChange{Remove: []string{"a"}}, []string{"a", "b"}, []string{"b"}, false},
		{"remove and add", TagChange{Add: []string{"c"}, Remove: []string{"a"}}, []string{"a", "b"}, []string{"b", "c"}, false},
		{"set", TagChange{Set: []string{"x", "y"}, SetGiven: true}, []string{"a"}, []string{"x", "y"}, false},
		{"set none", TagChange{SetGiven: true}, []string{"a"}, []string{}, false},
		{"set with add", TagChange{Set: []string{"x"}, SetGiven: true, Add: []string{"a"}}, nil, nil, true},
		{"nothing", TagChange{}, nil, nil, true},
		{"comma", TagChange{Add: []string{"a,b"}}, nil, nil, true},
		{"space", TagChange{Add: []string{"a b"}}, nil, nil, true},
		{"empty", TagChange{Add: []string{""}}, nil, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.change.Validate()
			if c.bad {
				if !errors.Is(err, ErrBadTag) {
					t.Fatalf("Validate: %v, want ErrBadTag", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.change.Apply(c.tags); !slices.Equal(got, c.want) {
				t.Fatalf("Apply(%q) = %q, want %q", c.tags, got, c.want)
			}
		})
	}
}

// Retagging writes a new manifest with the same data and removes the old
// one and its record: the data reads back, check is healthy and reports no
// missing manifest, the first id is kept as Original.
func TestRetagKeepsDataAndRecords(t *testing.T) {
	ctx := context.Background()
	for name, mk := range locations(t) {
		t.Run(name, func(t *testing.T) {
			open := mk()
			r, err := Init(ctx, open(), InitOptions{Password: []byte("correct horse"), KDF: fastKDF(), ChunkAvgBits: 14}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			data := text(61, 200<<10)
			snap := commit(t, r, "s", map[string][]byte{"a": data})
			l := exclusive(t, r)
			next, err := r.Retag(ctx, l, snap.ID, []string{"keep"})
			if err != nil {
				t.Fatal(err)
			}
			if next.ID == snap.ID || next.Original != snap.ID || next.Replaces != snap.ID || !slices.Equal(next.Tags, []string{"keep"}) {
				t.Fatalf("retagged snapshot %s: original %s, replaces %s, tags %q", next.ID, next.Original, next.Replaces, next.Tags)
			}
			again, err := r.Retag(ctx, l, next.ID, []string{"keep", "audit"})
			if err != nil {
				t.Fatal(err)
			}
			if again.Original != snap.ID || again.Replaces != next.ID {
				t.Fatalf("second retag: original %s, replaces %s", again.Original, again.Replaces)
			}
			l.Unlock()
			ids, err := r.SnapshotIDs(ctx)
			if err != nil || !slices.Equal(ids, []string{again.ID}) {
				t.Fatalf("snapshots after two retags: %v, %v", ids, err)
			}
			records, err := r.recordIDs(ctx)
			if err != nil || !slices.Equal(records, []string{again.ID}) {
				t.Fatalf("records after two retags: %v, %v", records, err)
			}
			if m, err := r.MissingManifests(ctx); err != nil || len(m) != 0 {
				t.Fatalf("missing manifests after retag: %v, %v", m, err)
			}
			rep := checkHealthy(t, r)
			if rep.Snapshots != 1 || len(rep.InterruptedTags) != 0 {
				t.Fatalf("check after retag: %+v", rep)
			}
			o := opens(t, open, "correct horse")
			got, err := o.LoadSnapshot(ctx, again.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !manifest.SameData(got, snap) || !got.Time.Equal(snap.Time) || got.Source != snap.Source {
				t.Fatal("the retagged manifest does not hold the snapshot's data")
			}
			if b := readStream(t, o, got.Streams[0]); !bytes.Equal(b, data) {
				t.Fatal("the retagged snapshot does not read back")
			}
			if rep, err := o.Prune(ctx, false); err != nil || rep.RemovedObjects != 0 {
				t.Fatalf("prune after retag removed %+v, %v", rep, err)
			}
		})
	}
}

// failingSnapshotRemove makes the removal of manifests fail, as if the
// process died right after a retag wrote the new manifest.
type failingSnapshotRemove struct{ backend.Backend }

func (f failingSnapshotRemove) Remove(ctx context.Context, h backend.Handle) error {
	if h.Type == backend.Snapshot || (h.Type == backend.DataIndex && h.Name != pruneMarker.Name) {
		return errors.New("simulated crash")
	}
	return f.Backend.Remove(ctx, h)
}

// A retag interrupted before it removed the old manifest leaves two
// snapshots with the same data: check is healthy and names the pair, and
// FinishRetag removes the old one.
func TestInterruptedRetag(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t, InitOptions{})
	snap := commit(t, r, "s", map[string][]byte{"a": text(62, 100<<10)})
	cr, err := Open(ctx, failingSnapshotRemove{local.New(dir)}, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	l := exclusive(t, cr)
	next, err := cr.Retag(ctx, l, snap.ID, []string{"keep"})
	if err == nil || next == nil {
		t.Fatalf("retag with a failing removal: %v, %v", next, err)
	}
	l.Unlock()
	rep := checkHealthy(t, r)
	want := InterruptedRetag{Old: snap.ID, New: next.ID}
	if rep.Snapshots != 2 || !slices.Equal(rep.InterruptedTags, []InterruptedRetag{want}) {
		t.Fatalf("check after an interrupted retag: %+v", rep)
	}
	all, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := InterruptedRetags(all); !slices.Equal(got, []InterruptedRetag{want}) {
		t.Fatalf("InterruptedRetags = %+v", got)
	}
	l = exclusive(t, r)
	if err := r.FinishRetag(ctx, l, want); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if ids, _ := r.SnapshotIDs(ctx); !slices.Equal(ids, []string{next.ID}) {
		t.Fatalf("snapshots after finishing: %v", ids)
	}
	if rep := checkHealthy(t, r); len(rep.InterruptedTags) != 0 {
		t.Fatalf("check after finishing: %+v", rep)
	}
}

// listHook runs fn once, right after the first listing of manifests
// through it.
type listHook struct {
	backend.Backend
	once sync.Once
	fn   func()
}

func (h *listHook) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	err := h.Backend.List(ctx, t, fn)
	if t == backend.Snapshot {
		h.once.Do(h.fn)
	}
	return err
}

// A prune (its lock wrongly taken for dead) that lists the manifests, then
// meets the old manifest gone because a tag replaced it meanwhile, must
// not delete the snapshot's data: it reads the manifests again.
func TestRetagDuringPruneKeepsSnapshot(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t, InitOptions{})
	data := text(63, 400<<10)
	snap := commit(t, r, "s", map[string][]byte{"a": data})
	var next *manifest.Snapshot
	hook := &listHook{Backend: local.New(dir), fn: func() {
		l := exclusive(t, r)
		defer l.Unlock()
		var err error
		if next, err = r.Retag(ctx, l, snap.ID, []string{"keep"}); err != nil {
			t.Error(err)
		}
	}}
	p, err := Open(ctx, hook, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rep, err := p.Prune(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if next == nil {
		t.Fatal("the tag did not run during the prune")
	}
	if rep.RemovedObjects != 0 {
		t.Errorf("prune removed %d objects of the retagged snapshot", rep.RemovedObjects)
	}
	checkHealthy(t, r)
	got, err := r.LoadSnapshot(ctx, next.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b := readStream(t, r, got.Streams[0]); !bytes.Equal(b, data) {
		t.Fatal("the retagged snapshot does not read back after the prune")
	}
}

// saveHook runs fn once, right before the first manifest is stored
// through it.
type saveHook struct {
	backend.Backend
	once sync.Once
	fn   func()
}

func (h *saveHook) Save(ctx context.Context, hd backend.Handle, data []byte) error {
	if hd.Type == backend.Snapshot {
		h.once.Do(h.fn)
	}
	return h.Backend.Save(ctx, hd, data)
}

// A prune that runs between a tag's read of the manifest and its write of
// the new one changes the prune marker: the tag checks every chunk is
// still stored. Here a chunk went missing meanwhile (as if the repository
// was damaged): the tag fails and leaves the old manifest as the only one.
func TestRetagAfterPruneChecksChunks(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t, InitOptions{})
	snap := commit(t, r, "s", map[string][]byte{"a": text(64, 200<<10)})
	o := otherProcess(t, dir)
	hook := &saveHook{Backend: local.New(dir), fn: func() {
		if _, err := o.Prune(ctx, false); err != nil {
			t.Error(err)
		}
		c := snap.Streams[0].Chunks[0].ID
		if err := o.be.Remove(ctx, backend.Handle{Type: backend.Data, Name: c}); err != nil {
			t.Error(err)
		}
	}}
	tr, err := Open(ctx, hook, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	l := exclusive(t, tr)
	if next, err := tr.Retag(ctx, l, snap.ID, []string{"keep"}); err == nil {
		t.Fatalf("retag of a snapshot whose chunk went missing during a prune succeeded: %s", next.ID)
	}
	l.Unlock()
	ids, err := r.SnapshotIDs(ctx)
	if err != nil || !slices.Equal(ids, []string{snap.ID}) {
		t.Fatalf("snapshots after a failed retag: %v, %v", ids, err)
	}
	if m, err := r.MissingManifests(ctx); err != nil || len(m) != 0 {
		t.Fatalf("missing manifests after a failed retag: %v, %v", m, err)
	}

	// Without damage, the same interleaving retags.
	r2, dir2 := newRepo(t, InitOptions{})
	snap2 := commit(t, r2, "s", map[string][]byte{"a": text(65, 200<<10)})
	o2 := otherProcess(t, dir2)
	hook2 := &saveHook{Backend: local.New(dir2), fn: func() {
		if _, err := o2.Prune(ctx, false); err != nil {
			t.Error(err)
		}
	}}
	tr2, err := Open(ctx, hook2, []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	l2 := exclusive(t, tr2)
	if _, err := tr2.Retag(ctx, l2, snap2.ID, []string{"keep"}); err != nil {
		t.Fatalf("retag after a harmless prune: %v", err)
	}
	l2.Unlock()
	checkHealthy(t, r2)
}
