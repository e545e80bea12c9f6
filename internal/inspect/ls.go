package inspect

import (
	"github.com/snapdata/snapdata/internal/manifest"
)

// TableEntry is one table of a snapshot.
type TableEntry struct {
	Name         string `json:"name"`
	Rows         int64  `json:"rows"`
	LogicalBytes int64  `json:"logical_bytes"`
	// StoredBytes is the stored size of the table's unique chunks;
	// StoredUnknownChunks counts those whose size is unknown.
	StoredBytes         int64 `json:"stored_bytes"`
	StoredUnknownChunks int   `json:"stored_unknown_chunks"`
	Streams             int   `json:"streams"` // data streams (parts)
	Chunks              int   `json:"chunks"`
}

// StreamEntry is one stream of a snapshot.
type StreamEntry struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	Table        string `json:"table,omitempty"`
	Part         int    `json:"part"`
	Format       string `json:"format"`
	LogicalBytes int64  `json:"logical_bytes"`
	StoredBytes  int64  `json:"stored_bytes"`
	// StoredUnknownChunks counts chunks whose stored size is unknown.
	StoredUnknownChunks int `json:"stored_unknown_chunks"`
	Chunks              int `json:"chunks"`
}

// Listed is the content of one snapshot.
type Listed struct {
	Snapshot *manifest.Snapshot `json:"-"`
	// Rows is the sum of the tables' rows.
	Rows int64 `json:"rows"`
	// LogicalBytes, StoredBytes and Chunks are the whole snapshot's (each
	// unique chunk once): what it occupies in the repository, shared with
	// other snapshots or not.
	LogicalBytes        int64 `json:"logical_bytes"`
	StoredBytes         int64 `json:"stored_bytes"`
	StoredUnknownChunks int   `json:"stored_unknown_chunks"`
	Chunks              int   `json:"chunks"`
	// OtherStreams counts the schema and meta streams, OtherBytes their
	// logical bytes.
	OtherStreams int           `json:"other_streams"`
	OtherBytes   int64         `json:"other_logical_bytes"`
	Tables       []TableEntry  `json:"tables"`
	Streams      []StreamEntry `json:"streams,omitempty"`
}

// NeedsListing reports whether Ls needs a listing of the data objects for
// stored sizes: the snapshot was made before they were recorded.
func NeedsListing(s *manifest.Snapshot) bool { return needsListing(s) }

// Ls lists a snapshot's tables and streams with their sizes. l may be nil
// when the manifest records every chunk's stored size.
func Ls(s *manifest.Snapshot, l *Listing) *Listed {
	out := &Listed{Snapshot: s, Tables: []TableEntry{}, Streams: []StreamEntry{}}
	all := newChunkSet()
	all.addStreams(s.Streams, l)
	out.Chunks, out.StoredBytes, out.StoredUnknownChunks = len(all.seen), all.stored, all.unknown
	for _, st := range s.Streams {
		out.LogicalBytes += st.Size
		set := newChunkSet()
		set.addStreams([]manifest.Stream{st}, l)
		out.Streams = append(out.Streams, StreamEntry{Name: st.Name, Kind: st.Kind, Table: st.Table, Part: st.Part, Format: st.Format,
			LogicalBytes: st.Size, StoredBytes: set.stored, StoredUnknownChunks: set.unknown, Chunks: len(st.Chunks)})
		if st.Kind != manifest.KindData {
			out.OtherStreams++
			out.OtherBytes += st.Size
		}
	}
	for _, t := range s.Tables {
		streams := s.TableStreams(t.Name)
		set := newChunkSet()
		set.addStreams(streams, l)
		e := TableEntry{Name: t.Name, Rows: t.Rows, StoredBytes: set.stored, StoredUnknownChunks: set.unknown, Streams: len(streams)}
		for _, st := range streams {
			e.LogicalBytes += st.Size
			e.Chunks += len(st.Chunks)
		}
		out.Rows += t.Rows
		out.Tables = append(out.Tables, e)
	}
	return out
}
