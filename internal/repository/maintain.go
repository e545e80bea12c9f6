package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// Stats summarises a repository.
type Stats struct {
	Snapshots    int   `json:"snapshots"`
	DataObjects  int   `json:"data_objects"`
	StoredBytes  int64 `json:"stored_bytes"`  // all objects
	DataBytes    int64 `json:"data_bytes"`    // data objects
	LogicalBytes int64 `json:"logical_bytes"` // sum of snapshots' logical bytes
}

// Stats lists the repository's objects and sums their sizes.
func (r *Repository) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	for _, t := range backend.AllTypes {
		err := r.be.List(ctx, t, func(fi backend.FileInfo) error {
			st.StoredBytes += fi.Size
			if t == backend.Data {
				st.DataObjects++
				st.DataBytes += fi.Size
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("repository stats: %w", err)
		}
	}
	snaps, err := r.List(ctx)
	if err != nil {
		return st, err
	}
	st.Snapshots = len(snaps)
	for _, s := range snaps {
		st.LogicalBytes += s.LogicalBytes
	}
	return st, nil
}

// Problem is one finding of Check.
type Problem struct {
	Object    string   `json:"object"`
	Message   string   `json:"message"`
	Snapshots []string `json:"snapshots,omitempty"` // ids of snapshots it harms
	Tables    []string `json:"tables,omitempty"`    // tables (or streams) of those snapshots it harms
}

// CheckReport is the result of Check.
type CheckReport struct {
	Snapshots        int       `json:"snapshots"`
	DataObjects      int       `json:"data_objects"`
	ReadObjects      int       `json:"read_objects"`
	Unreferenced     int       `json:"unreferenced"`
	UnreferencedSize int64     `json:"unreferenced_bytes"`
	StaleLocks       int       `json:"stale_locks"`
	Errors           []Problem `json:"errors"`
	// InterruptedTags are tag changes a crash interrupted: two snapshots
	// with the same data, the newer replacing the older (tags.go). Not an
	// error; the next 'snapdata tag' finishes them.
	InterruptedTags []InterruptedRetag `json:"interrupted_tags,omitempty"`
}

// OK reports whether no errors were found.
func (c *CheckReport) OK() bool { return len(c.Errors) == 0 }

// Check verifies the repository's structure: every snapshot loads and every
// chunk it references exists. With readData it also reads, authenticates
// and re-hashes every data object, naming each damaged object and the
// snapshots it harms. Objects that no snapshot references (left by a backup
// that died) are reported but are not errors: prune removes them.
//
// p, when not nil, counts the objects read and their stored bytes.
func (r *Repository) Check(ctx context.Context, readData bool, p *progress.Progress) (*CheckReport, error) {
	rep := &CheckReport{}
	stored := map[string]int64{}
	if err := r.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		stored[fi.Name] = fi.Size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.DataObjects = len(stored)
	// Records before manifests: a backup writes its manifest first, so a
	// record listed here has its manifest listed next unless it is gone.
	records, err := r.recordIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	missingSnaps, err := r.missingManifests(ctx, records, ids)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, m := range missingSnaps {
		rep.Errors = append(rep.Errors, missingManifestProblem(m))
	}
	users := map[string][]string{}         // chunk -> snapshots
	tables := map[string]map[string]bool{} // chunk -> tables it holds data of
	expect := map[string]manifest.Chunk{}  // chunk -> what a manifest says of it
	var loaded []*manifest.Snapshot
	for _, id := range ids {
		s, err := r.LoadSnapshot(ctx, id)
		if errors.Is(err, ErrSnapshotNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			msg := err.Error()
			if errors.Is(err, ErrDamagedSnapshot) {
				msg += "; 'snapdata forget " + shortID(id) + "' removes it"
			}
			rep.Errors = append(rep.Errors, Problem{Object: "snapshots/" + id, Message: msg, Snapshots: []string{id}})
			continue
		}
		rep.Snapshots++
		loaded = append(loaded, s)
		seen := map[string]bool{}
		for _, st := range s.Streams {
			what := st.Table
			if what == "" {
				what = st.Name
			}
			for _, c := range st.Chunks {
				if tables[c.ID] == nil {
					tables[c.ID] = map[string]bool{}
				}
				tables[c.ID][what] = true
				if e, ok := expect[c.ID]; !ok || e.Stored == 0 {
					expect[c.ID] = c
				}
				if seen[c.ID] {
					continue
				}
				seen[c.ID] = true
				users[c.ID] = append(users[c.ID], id)
			}
		}
	}
	rep.InterruptedTags = InterruptedRetags(loaded)
	harmed := func(c string) []string { return sortedKeys(tables[c]) }
	missing := map[string][]string{}
	for c, snaps := range users {
		if _, ok := stored[c]; !ok {
			missing[c] = snaps
		}
	}
	for _, c := range sortedKeys(missing) {
		rep.Errors = append(rep.Errors, Problem{Object: "data/" + c, Message: "missing: referenced but not stored", Snapshots: missing[c], Tables: harmed(c)})
	}
	// Sizes: a stored object whose size differs from the one its manifest
	// recorded, or that no chunk of its length can have, is truncated or
	// damaged (found without reading it).
	overhead := int64(1 + r.key.Overhead())
	for c, e := range expect {
		size, ok := stored[c]
		if !ok {
			continue
		}
		var msg string
		switch {
		case e.Stored > 0 && size != e.Stored:
			msg = fmt.Sprintf("stored size %d bytes, the manifest recorded %d: truncated or damaged", size, e.Stored)
		case e.Stored == 0 && (size < overhead || size > int64(e.Len)+overhead):
			msg = fmt.Sprintf("stored size %d bytes is impossible for a chunk of %d bytes: truncated or damaged", size, e.Len)
		default:
			continue
		}
		snaps := append([]string(nil), users[c]...)
		sort.Strings(snaps)
		rep.Errors = append(rep.Errors, Problem{Object: "data/" + c, Message: msg, Snapshots: snaps, Tables: harmed(c)})
	}
	for name, size := range stored {
		if _, ok := users[name]; !ok {
			rep.Unreferenced++
			rep.UnreferencedSize += size
		}
		if _, err := ParseID(name); err != nil {
			rep.Errors = append(rep.Errors, Problem{Object: "data/" + name, Message: "unexpected object name"})
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if l.Stale(timeNow()) {
			rep.StaleLocks++
		}
	}
	if readData {
		flagged := map[string]bool{}
		for _, p := range rep.Errors {
			flagged[p.Object] = true
		}
		names := sortedKeys(stored)
		var total int64
		for _, size := range stored {
			total += size
		}
		p.SetUnit("objects")
		p.AddTables(len(names))
		p.SetTotalBytes(total)
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, r.workers)
		for _, name := range names {
			if ctx.Err() != nil {
				break
			}
			if _, err := ParseID(name); err != nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, err := r.LoadChunk(ctx, manifest.Chunk{ID: name})
				p.AddBytes(stored[name])
				p.TableDone()
				mu.Lock()
				defer mu.Unlock()
				rep.ReadObjects++
				if err != nil && ctx.Err() == nil && !flagged["data/"+name] {
					snaps := append([]string(nil), users[name]...)
					sort.Strings(snaps)
					rep.Errors = append(rep.Errors, Problem{Object: "data/" + name, Message: err.Error(), Snapshots: snaps, Tables: harmed(name)})
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Object < rep.Errors[j].Object })
	return rep, nil
}

// lateManifests lists the manifests again after prune read them and
// returns those it had not read. 'snapdata tag' writes a snapshot's new
// manifest before it removes the old one: a prune that listed the old one
// and found it gone when it read it meets the new one here. It lists again
// while a manifest it tries to read is gone (tagged again meanwhile), a
// few times at most.
func (r *Repository) lateManifests(ctx context.Context, read []*manifest.Snapshot) ([]*manifest.Snapshot, error) {
	known := make(map[string]bool, len(read))
	for _, s := range read {
		known[s.ID] = true
	}
	var out []*manifest.Snapshot
	for round := 0; round < 5; round++ {
		ids, err := r.SnapshotIDs(ctx)
		if err != nil {
			return nil, fmt.Errorf("prune refused: %w (run 'snapdata check')", err)
		}
		gone := false
		for _, id := range ids {
			if known[id] {
				continue
			}
			known[id] = true
			s, err := r.LoadSnapshot(ctx, id)
			switch {
			case errors.Is(err, ErrSnapshotNotFound):
				gone = true
			case errors.Is(err, ErrDamagedSnapshot):
				return nil, fmt.Errorf("%w: %w: %s appeared while prune read the manifests and cannot be read; 'snapdata check' shows the details",
					ErrPruneRefused, ErrDamagedSnapshot, shortID(id))
			case err != nil:
				return nil, fmt.Errorf("prune refused: %w (run 'snapdata check')", err)
			default:
				out = append(out, s)
			}
		}
		if !gone {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: snapshot manifests kept changing while prune read them; run prune again", ErrPruneRefused)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PruneReport says what prune removed.
type PruneReport struct {
	RemovedObjects int   `json:"removed_objects"`
	RemovedBytes   int64 `json:"removed_bytes"`
	KeptObjects    int   `json:"kept_objects"`
	KeptBytes      int64 `json:"kept_bytes"`
	// MissingManifests are snapshots whose record is stored but whose
	// manifest is gone: prune deleted (or, dry, would delete) their data.
	// Their records stay until 'snapdata forget ID'.
	MissingManifests []MissingSnapshot `json:"missing_manifests,omitempty"`
}

// Prune removes data objects that no snapshot references. The caller must
// hold an exclusive lock. If any snapshot cannot be read, prune refuses:
// deleting its chunks could destroy the only copy of data.
func (r *Repository) Prune(ctx context.Context, dryRun bool) (*PruneReport, error) {
	if !dryRun {
		// Before the manifests are read: a backup that listed the stored
		// chunks before this point sees the new value when it commits.
		if err := r.bumpPruneGeneration(ctx); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	// Records before manifests, as in Check.
	records, err := r.recordIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune refused: %w (run 'snapdata check')", err)
	}
	snaps, damaged, err := r.ListAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune refused: %w (run 'snapdata check')", err)
	}
	if len(damaged) > 0 {
		names := make([]string, len(damaged))
		for i, d := range damaged {
			names[i] = shortID(d.ID)
		}
		return nil, fmt.Errorf("%w: %w: %s (%v); the chunks of a damaged snapshot cannot be known, so prune could delete data it needs. 'snapdata forget %s' removes it (its data is then pruned), 'snapdata check' shows the details",
			ErrPruneRefused, ErrDamagedSnapshot, strings.Join(names, ", "), damaged[0].Err, strings.Join(names, " "))
	}
	late, err := r.lateManifests(ctx, snaps)
	if err != nil {
		return nil, err
	}
	snaps = append(snaps, late...)
	listed := make([]string, 0, len(snaps)+len(damaged))
	for _, s := range snaps {
		listed = append(listed, s.ID)
	}
	for _, d := range damaged {
		listed = append(listed, d.ID)
	}
	missing, err := r.missingManifests(ctx, records, listed)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	verb := "deletes"
	if dryRun {
		verb = "would delete"
	}
	for _, m := range missing {
		// Not a refusal: without its manifest the data cannot be restored.
		r.log.Warn(m.String()+": manifest missing (deleted?); prune "+verb+" the data only it used; 'snapdata forget "+shortID(m.ID)+"' acknowledges it",
			"snapshot", m.ID)
	}
	used := map[string]bool{}
	for _, s := range snaps {
		for _, st := range s.Streams {
			for _, c := range st.Chunks {
				used[c.ID] = true
			}
		}
	}
	rep := &PruneReport{MissingManifests: missing}
	var remove []backend.FileInfo
	if err := r.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		if used[fi.Name] {
			rep.KeptObjects++
			rep.KeptBytes += fi.Size
		} else {
			remove = append(remove, fi)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, fi := range remove {
		if !dryRun {
			if err := r.be.Remove(ctx, backend.Handle{Type: backend.Data, Name: fi.Name}); err != nil {
				return rep, fmt.Errorf("prune: %w", err)
			}
		}
		rep.RemovedObjects++
		rep.RemovedBytes += fi.Size
	}
	if c, ok := r.be.(interface {
		CleanTemp(context.Context) (int, error)
	}); ok && !dryRun {
		if _, err := c.CleanTemp(ctx); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
