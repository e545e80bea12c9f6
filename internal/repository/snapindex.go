package repository

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
)

// A snapshot record (index/snapshots/<id>) is written right after each
// manifest and says that the snapshot exists: its time and source name (as
// the manifest records it, never with a password), sealed like every other
// object. A record whose manifest is gone names a snapshot whose manifest
// was deleted outside snapdata: check reports it, prune warns before it
// deletes that snapshot's data, and 'snapdata forget ID' removes the record.
// forget removes the record before the manifest, so a record without its
// manifest is never the trace of a forget (but of a forget by a release
// from before records: 'forget ID' removes it too). Snapshots written before
// records existed have none; nothing is reported for them.

// recordPrefix is the name prefix of snapshot records among the index
// objects (the prune marker is index/prune).
const recordPrefix = "snapshots/"

func recordHandle(id string) backend.Handle {
	return backend.Handle{Type: backend.DataIndex, Name: recordPrefix + id}
}

// snapshotRecord is the stored content of a record.
type snapshotRecord struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
}

// MissingSnapshot is a snapshot whose record exists but whose manifest does
// not: its data is unreferenced and prune deletes it.
type MissingSnapshot struct {
	ID     string    `json:"id"`
	Source string    `json:"source,omitempty"` // secrets blanked (dsn.ShowSource)
	Time   time.Time `json:"time,omitzero"`
	// Err says why the record itself could not be read (its source and
	// time are then unknown).
	Err string `json:"record_error,omitempty"`
}

// String describes the snapshot for a message: short id, source and time.
func (m MissingSnapshot) String() string {
	if m.Err != "" {
		return fmt.Sprintf("snapshot %s (record unreadable: %s)", shortID(m.ID), m.Err)
	}
	return fmt.Sprintf("snapshot %s (%s, %s)", shortID(m.ID), m.Source, m.Time.UTC().Format(time.RFC3339))
}

// saveRecord writes the record of a snapshot whose manifest was just
// saved. A failure is logged, not returned: the snapshot is committed, and
// a snapshot without a record is only not watched for the loss of its
// manifest.
func (r *Repository) saveRecord(ctx context.Context, snap *manifest.Snapshot) {
	data, err := jsonMarshal(snapshotRecord{ID: snap.ID, Time: snap.Time, Source: snap.Source})
	if err == nil {
		err = r.be.Save(ctx, recordHandle(snap.ID), r.encode(data))
	}
	if err != nil {
		r.log.Warn("snapshot saved, but not its record (check will not notice if its manifest is deleted)", "snapshot", shortID(snap.ID), "err", err)
	}
}

// removeRecord deletes a snapshot's record (absent: not an error).
func (r *Repository) removeRecord(ctx context.Context, id string) error {
	if err := r.be.Remove(ctx, recordHandle(id)); err != nil {
		return fmt.Errorf("remove the record of snapshot %s: %w", shortID(id), err)
	}
	return nil
}

// recordIDs lists the ids that have a record.
func (r *Repository) recordIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.be.List(ctx, backend.DataIndex, func(fi backend.FileInfo) error {
		// Listings give base names: the prune marker is "prune", a
		// record its snapshot id.
		if _, err := ParseID(fi.Name); err == nil {
			ids = append(ids, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshot records: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// missingManifests returns the snapshots among records whose manifest is
// not among manifests. The caller lists the records before the manifests:
// a backup writes its manifest before its record, so a listed record's
// manifest is listed too unless it is gone. A record removed since it was
// listed (forget removes the record first) is not reported.
func (r *Repository) missingManifests(ctx context.Context, records []string, manifests []string) ([]MissingSnapshot, error) {
	have := make(map[string]bool, len(manifests))
	for _, id := range manifests {
		have[id] = true
	}
	var out []MissingSnapshot
	for _, id := range records {
		if have[id] {
			continue
		}
		m := MissingSnapshot{ID: id}
		var rec snapshotRecord
		err := r.loadJSON(ctx, recordHandle(id), &rec)
		switch {
		case backend.IsNotFound(err):
			continue // forgotten since the listing
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil:
			m.Err = err.Error()
		case rec.ID != id:
			m.Err = fmt.Sprintf("it holds the record of snapshot %s", shortID(rec.ID))
		default:
			m.Source, m.Time = dsn.ShowSource(rec.Source), rec.Time
		}
		out = append(out, m)
	}
	return out, nil
}

// MissingManifests lists the snapshots whose manifest is missing though
// their record is stored (see snapshotRecord).
func (r *Repository) MissingManifests(ctx context.Context) ([]MissingSnapshot, error) {
	records, err := r.recordIDs(ctx)
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, nil
	}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	return r.missingManifests(ctx, records, ids)
}

// missingManifestProblem is check's finding for m.
func missingManifestProblem(m MissingSnapshot) Problem {
	return Problem{
		Object: "index/" + recordPrefix + m.ID,
		Message: m.String() + ": manifest missing (deleted?); its data is unreferenced and prune will delete it; 'snapdata forget " +
			shortID(m.ID) + "' acknowledges it",
		Snapshots: []string{m.ID},
	}
}
