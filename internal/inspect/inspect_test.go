package inspect

import (
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/manifest"
)

func chunk(id string, n uint32, stored int64) manifest.Chunk {
	return manifest.Chunk{ID: id, Len: n, Stored: stored}
}

func data(table string, part int, chunks ...manifest.Chunk) manifest.Stream {
	var size int64
	for _, c := range chunks {
		size += int64(c.Len)
	}
	return manifest.Stream{Name: "data/" + table + "/" + string(rune('0'+part)), Kind: manifest.KindData, Table: table, Part: part, Format: "f", Size: size, Chunks: chunks}
}

func schema(chunks ...manifest.Chunk) manifest.Stream {
	return manifest.Stream{Name: "schema/pre", Kind: manifest.KindSchemaPre, Format: "ddl", Size: int64(len(chunks)), Chunks: chunks}
}

// The status of a table in a diff, by how its data streams differ.
func TestDiffStatus(t *testing.T) {
	a, b, c := chunk("aa", 10, 5), chunk("bb", 20, 8), chunk("cc", 30, 9)
	for _, tc := range []struct {
		name          string
		before, after []manifest.Stream
		want          string
	}{
		{"same chunks", []manifest.Stream{data("t", 0, a, b)}, []manifest.Stream{data("t", 0, a, b)}, Unchanged},
		{"a chunk replaced", []manifest.Stream{data("t", 0, a, b)}, []manifest.Stream{data("t", 0, a, c)}, Changed},
		{"same chunks, split in two parts", []manifest.Stream{data("t", 0, a, b)}, []manifest.Stream{data("t", 0, a), data("t", 1, b)}, Changed},
		{"chunks reordered", []manifest.Stream{data("t", 0, a, b)}, []manifest.Stream{data("t", 0, b, a)}, Changed},
		{"empty both times", nil, nil, Unchanged},
		{"emptied", []manifest.Stream{data("t", 0, a)}, nil, Changed},
	} {
		before := &manifest.Snapshot{Engine: "sqlite", Tables: []manifest.Table{{Name: "t", Rows: 2}}, Streams: tc.before}
		after := &manifest.Snapshot{Engine: "sqlite", Tables: []manifest.Table{{Name: "t", Rows: 2}}, Streams: tc.after}
		rep := Diff(before, after)
		if got := rep.Tables[0].Status; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if rep.SchemaChanged {
			t.Errorf("%s: schema changed without schema streams", tc.name)
		}
	}
	before := &manifest.Snapshot{Engine: "sqlite", Streams: []manifest.Stream{schema(a)}}
	if !Diff(before, &manifest.Snapshot{Engine: "sqlite", Streams: []manifest.Stream{schema(b)}}).SchemaChanged {
		t.Error("a schema stream with another chunk is not a schema change")
	}
	if Diff(before, &manifest.Snapshot{Engine: "sqlite", Streams: []manifest.Stream{schema(a), data("t", 0, c)}}).SchemaChanged {
		t.Error("a new data stream is a schema change")
	}
	// Different engines: the same chunks cannot make a table unchanged.
	rep := Diff(&manifest.Snapshot{Engine: "sqlite", Tables: []manifest.Table{{Name: "t"}}}, &manifest.Snapshot{Engine: "postgres", Tables: []manifest.Table{{Name: "t"}}})
	if rep.Tables[0].Status != Changed || len(rep.Notes) != 1 {
		t.Errorf("diff across engines: %+v", rep)
	}
}

// Stats counts a chunk once per source and once in the total, takes stored
// sizes from the manifest, else from the listing, else counts them
// unknown.
func TestStatsCounting(t *testing.T) {
	a, b, c := chunk("aa", 100, 40), chunk("bb", 200, 0), chunk("cc", 300, 0)
	t0 := time.Unix(1000, 0)
	s1 := &manifest.Snapshot{ID: "1", Time: t0, Engine: "sqlite", LogicalBytes: 300, Streams: []manifest.Stream{data("t", 0, a, b)}}
	s2 := &manifest.Snapshot{ID: "2", Time: t0.Add(time.Hour), Engine: "sqlite", LogicalBytes: 400, Streams: []manifest.Stream{data("t", 0, a, a, c)}}
	s3 := &manifest.Snapshot{ID: "3", Time: t0, Engine: "postgres", LogicalBytes: 100, Streams: []manifest.Stream{data("u", 0, a)}}
	l := &Listing{Data: map[string]int64{"aa": 40, "bb": 90, "zz": 7}, Types: map[backend.FileType]Objects{backend.Data: {3, 137}, backend.Config: {1, 10}}}
	rep := Stats(map[string][]*manifest.Snapshot{"x": {s2, s1}, "y": {s3}}, []*manifest.Snapshot{s1, s2, s3}, 0, l)
	x, y := rep.Sources[0], rep.Sources[1]
	want := Usage{Snapshots: 2, LatestLogicalBytes: 400, LogicalBytes: 700, Chunks: 3, DeduplicatedBytes: 600, StoredBytes: 130, StoredUnknownChunks: 1,
		CompressionRatio: 300.0 / 130, DedupRatio: 700.0 / 600}
	if x.Source != "x" || x.Latest != "2" || x.Engine != "sqlite" || x.Usage != want {
		t.Errorf("source x: %+v\nwant %+v", x, want)
	}
	if y.Usage.StoredBytes != 40 || y.Usage.Chunks != 1 || y.Engine != "postgres" {
		t.Errorf("source y: %+v", y)
	}
	if tot := rep.Total; tot.Chunks != 3 || tot.StoredBytes != 130 || tot.Snapshots != 3 || tot.LogicalBytes != 800 || tot.LatestLogicalBytes != 500 {
		t.Errorf("total: %+v", tot)
	}
	if u := rep.Repository.Unreferenced; u == nil || *u != (Objects{1, 7}) || rep.Repository.Objects != (Objects{4, 147}) {
		t.Errorf("repository: %+v", rep.Repository)
	}
	if rep := Stats(nil, []*manifest.Snapshot{s1}, 1, l); rep.Repository.Unreferenced != nil {
		t.Error("with a damaged manifest the unreferenced objects are unknowable, yet counted")
	}
}
