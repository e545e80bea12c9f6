package inspect

import (
	"fmt"
	"sort"

	"github.com/snapdata/snapdata/internal/manifest"
)

// Table statuses in a diff.
const (
	Added     = "added"
	Removed   = "removed"
	Changed   = "changed"
	Unchanged = "unchanged"
)

// TableDiff is one table in a diff. Before fields are zero for an added
// table, after fields for a removed one.
type TableDiff struct {
	Name        string `json:"name"`
	Status      string `json:"status"` // Added, Removed, Changed or Unchanged
	RowsBefore  int64  `json:"rows_before"`
	RowsAfter   int64  `json:"rows_after"`
	RowsDelta   int64  `json:"rows_delta"`
	BytesBefore int64  `json:"logical_bytes_before"`
	BytesAfter  int64  `json:"logical_bytes_after"`
	BytesDelta  int64  `json:"logical_bytes_delta"`
	// SameData: the table's data streams hold the same chunks in both
	// snapshots (Unchanged). A changed table with RowsDelta 0 had rows
	// updated.
	SameData bool `json:"same_data"`
}

// DiffSummary counts a diff.
type DiffSummary struct {
	Added       int   `json:"added"`
	Removed     int   `json:"removed"`
	Changed     int   `json:"changed"`
	Unchanged   int   `json:"unchanged"`
	RowsBefore  int64 `json:"rows_before"`
	RowsAfter   int64 `json:"rows_after"`
	RowsDelta   int64 `json:"rows_delta"`
	BytesBefore int64 `json:"logical_bytes_before"`
	BytesAfter  int64 `json:"logical_bytes_after"`
	BytesDelta  int64 `json:"logical_bytes_delta"`
}

// DiffReport is the difference from snapshot Before to snapshot After.
type DiffReport struct {
	Before *manifest.Snapshot `json:"-"`
	After  *manifest.Snapshot `json:"-"`
	// SchemaChanged: the schema streams (schema-pre and schema-post) do
	// not hold the same chunks.
	SchemaChanged bool `json:"schema_changed"`
	// Notes say what the diff cannot compare (different engines, sources).
	Notes   []string    `json:"notes"`
	Tables  []TableDiff `json:"tables"`
	Summary DiffSummary `json:"summary"`
}

// Diff compares two snapshots by their manifests: tables by name, their
// data by the chunks of their data streams, the schema by the chunks of
// the schema streams.
func Diff(before, after *manifest.Snapshot) *DiffReport {
	rep := &DiffReport{Before: before, After: after, Notes: []string{}, Tables: []TableDiff{}}
	if before.Engine != after.Engine {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the snapshots are of different engines (%s, %s): table names and row counts are compared, but their data and schema are stored in different formats and always differ", before.Engine, after.Engine))
	}
	if before.Source != after.Source {
		rep.Notes = append(rep.Notes, "the snapshots are of different sources")
	}
	rep.SchemaChanged = !sameChunks(schemaStreams(before), schemaStreams(after))

	names := map[string]bool{}
	for _, t := range before.Tables {
		names[t.Name] = true
	}
	for _, t := range after.Tables {
		names[t.Name] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	s := &rep.Summary
	for _, name := range sorted {
		tb, inBefore := before.Table(name)
		ta, inAfter := after.Table(name)
		d := TableDiff{Name: name}
		if inBefore {
			d.RowsBefore, d.BytesBefore = tb.Rows, TableBytes(before, name)
		}
		if inAfter {
			d.RowsAfter, d.BytesAfter = ta.Rows, TableBytes(after, name)
		}
		d.RowsDelta, d.BytesDelta = d.RowsAfter-d.RowsBefore, d.BytesAfter-d.BytesBefore
		switch {
		case !inBefore:
			d.Status = Added
			s.Added++
		case !inAfter:
			d.Status = Removed
			s.Removed++
		case before.Engine == after.Engine && sameChunks(before.TableStreams(name), after.TableStreams(name)):
			d.Status, d.SameData = Unchanged, true
			s.Unchanged++
		default:
			d.Status = Changed
			s.Changed++
		}
		rep.Tables = append(rep.Tables, d)
		s.RowsBefore += d.RowsBefore
		s.RowsAfter += d.RowsAfter
		s.BytesBefore += d.BytesBefore
		s.BytesAfter += d.BytesAfter
	}
	s.RowsDelta, s.BytesDelta = s.RowsAfter-s.RowsBefore, s.BytesAfter-s.BytesBefore
	return rep
}

// TableBytes is the logical size of a table's data streams.
func TableBytes(s *manifest.Snapshot, table string) int64 {
	var n int64
	for _, st := range s.TableStreams(table) {
		n += st.Size
	}
	return n
}

func schemaStreams(s *manifest.Snapshot) []manifest.Stream {
	return append(s.StreamsOf(manifest.KindSchemaPre), s.StreamsOf(manifest.KindSchemaPost)...)
}

// sameChunks reports whether two lists of streams hold the same chunks in
// the same order, stream by stream (their names and formats too).
func sameChunks(a, b []manifest.Stream) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.Format != y.Format || x.Size != y.Size || len(x.Chunks) != len(y.Chunks) {
			return false
		}
		for j := range x.Chunks {
			if x.Chunks[j].ID != y.Chunks[j].ID {
				return false
			}
		}
	}
	return true
}
