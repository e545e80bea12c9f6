// Package manifest defines the snapshot manifest: the record of one backup
// that is written after all its data and is the commit point of the backup.
package manifest

import (
	"sort"
	"time"
)

// Stream kinds. A snapshot replays schema-pre, then data, then schema-post.
const (
	KindSchemaPre  = "schema-pre"
	KindData       = "data"
	KindSchemaPost = "schema-post"
	KindMeta       = "meta"
)

// Chunk is one content-addressed piece of a stream.
type Chunk struct {
	ID  string `json:"id"`  // hex keyed hash of the plaintext
	Len uint32 `json:"len"` // plaintext length
	// Stored is the size of the stored object (sealed, compressed), for
	// check to catch truncated objects without reading them; 0 in
	// snapshots made before it was recorded.
	Stored int64 `json:"stored,omitempty"`
}

// Stream is one byte stream of a snapshot: a schema part, or the rows of one
// table (or one range of a big table).
type Stream struct {
	Name   string  `json:"name"`            // unique in the snapshot, e.g. "data/public.users/0003"
	Kind   string  `json:"kind"`            // one of the Kind constants
	Table  string  `json:"table,omitempty"` // for data streams
	Part   int     `json:"part,omitempty"`  // range number within the table
	Format string  `json:"format"`          // engine-defined, e.g. "sqlite-rows/1", "pg-copy-text"
	Size   int64   `json:"size"`            // plaintext bytes
	Chunks []Chunk `json:"chunks"`
}

// Table is the per-table summary used by verify and listed by snapshots.
type Table struct {
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
	Bytes    int64  `json:"bytes,omitempty"` // logical bytes of its data streams
}

// Snapshot is the manifest of one backup.
type Snapshot struct {
	ID            string            `json:"id,omitempty"` // derived from the stored object name; not hashed
	Time          time.Time         `json:"time"`
	Host          string            `json:"host"`
	Source        string            `json:"source"`
	Engine        string            `json:"engine"`
	EngineVersion string            `json:"engine_version,omitempty"`
	Database      string            `json:"database,omitempty"`
	Tags          []string          `json:"tags"`
	Parent        string            `json:"parent,omitempty"`
	Fingerprint   string            `json:"fingerprint,omitempty"` // cheap engine change signal
	LogicalBytes  int64             `json:"logical_bytes"`
	AddedBytes    int64             `json:"added_bytes"` // stored bytes this backup added to the repository
	Duration      float64           `json:"duration_seconds,omitempty"`
	Tables        []Table           `json:"tables"`
	Streams       []Stream          `json:"streams"`
	Meta          map[string]string `json:"meta,omitempty"` // engine notes, e.g. consistency mode
	// Original is the id the backup gave this snapshot, set when 'snapdata
	// tag' rewrote the manifest (a new id, the same data); Replaces is the
	// id of the manifest the last such rewrite replaced.
	Original string `json:"original,omitempty"`
	Replaces string `json:"replaces,omitempty"`
}

// ShortID returns the first 8 characters of the id.
func (s *Snapshot) ShortID() string {
	if len(s.ID) > 8 {
		return s.ID[:8]
	}
	return s.ID
}

// HasTag reports whether the snapshot carries tag t.
func (s *Snapshot) HasTag(t string) bool {
	for _, x := range s.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// Table returns the table summary by name.
func (s *Snapshot) Table(name string) (Table, bool) {
	for _, t := range s.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// StreamsOf returns the streams of one kind, in manifest order.
func (s *Snapshot) StreamsOf(kind string) []Stream {
	var out []Stream
	for _, st := range s.Streams {
		if st.Kind == kind {
			out = append(out, st)
		}
	}
	return out
}

// TableStreams returns the data streams of a table ordered by part.
func (s *Snapshot) TableStreams(table string) []Stream {
	var out []Stream
	for _, st := range s.Streams {
		if st.Kind == KindData && st.Table == table {
			out = append(out, st)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Part < out[j].Part })
	return out
}

// Normalize sorts streams and tables into a stable order so that two
// backups of the same data produce comparable manifests.
func (s *Snapshot) Normalize() {
	sort.SliceStable(s.Tables, func(i, j int) bool { return s.Tables[i].Name < s.Tables[j].Name })
	order := map[string]int{KindMeta: 0, KindSchemaPre: 1, KindData: 2, KindSchemaPost: 3}
	sort.SliceStable(s.Streams, func(i, j int) bool {
		a, b := s.Streams[i], s.Streams[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Part != b.Part {
			return a.Part < b.Part
		}
		return a.Name < b.Name
	})
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if s.Tables == nil {
		s.Tables = []Table{}
	}
}

// SameData reports whether two snapshots hold identical content: the same
// streams with the same chunks. It is what --skip-unchanged compares.
func SameData(a, b *Snapshot) bool {
	if a == nil || b == nil || a.Engine != b.Engine || len(a.Streams) != len(b.Streams) {
		return false
	}
	idx := make(map[string]Stream, len(b.Streams))
	for _, st := range b.Streams {
		idx[st.Name] = st
	}
	for _, x := range a.Streams {
		y, ok := idx[x.Name]
		if !ok || x.Size != y.Size || x.Format != y.Format || len(x.Chunks) != len(y.Chunks) {
			return false
		}
		for i := range x.Chunks {
			if x.Chunks[i].ID != y.Chunks[i].ID || x.Chunks[i].Len != y.Chunks[i].Len {
				return false
			}
		}
	}
	return true
}
