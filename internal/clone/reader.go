package clone

import (
	"context"
	"io"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// filtered is a SnapshotReader that hides the data streams of tables
// whose data the copy does not get (tables.exclude_data) and of tables it
// does not get at all; their schema stays (excluded tables are left out
// by RestoreOptions.Tables).
type filtered struct {
	engine.SnapshotReader
	snap *manifest.Snapshot
}

func filterReader(r engine.SnapshotReader, t Tables) engine.SnapshotReader {
	if len(t.ExcludeData) == 0 {
		return r
	}
	src := r.Manifest()
	cp := *src
	cp.Streams = nil
	for _, s := range src.Streams {
		if s.Kind == manifest.KindData && s.Table != "" && matchAny(t.ExcludeData, s.Table) {
			continue
		}
		cp.Streams = append(cp.Streams, s)
	}
	cp.Tables = make([]manifest.Table, len(src.Tables))
	copy(cp.Tables, src.Tables)
	for i, tb := range cp.Tables {
		if matchAny(t.ExcludeData, tb.Name) {
			cp.Tables[i].Rows, cp.Tables[i].Bytes, cp.Tables[i].Checksum = 0, 0, ""
		}
	}
	return &filtered{SnapshotReader: r, snap: &cp}
}

func (f *filtered) Manifest() *manifest.Snapshot { return f.snap }

func (f *filtered) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	return f.SnapshotReader.Open(ctx, s)
}

// chosenTables lists the snapshot's tables the copy gets, or nil when it
// gets them all (no include/exclude).
func chosenTables(snap *manifest.Snapshot, t Tables) []string {
	if len(t.Include) == 0 && len(t.Exclude) == 0 {
		return nil
	}
	var out []string
	for _, tb := range snap.Tables {
		if t.chosen(tb.Name) {
			out = append(out, tb.Name)
		}
	}
	return out
}
