package cli

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// The JSON shapes of stats, diff and ls, written out here so that a
// renamed field fails the tests.
type usageOut struct {
	Snapshots           int     `json:"snapshots"`
	LatestLogicalBytes  int64   `json:"latest_logical_bytes"`
	LogicalBytes        int64   `json:"logical_bytes"`
	Chunks              int     `json:"chunks"`
	DeduplicatedBytes   int64   `json:"deduplicated_bytes"`
	StoredBytes         int64   `json:"stored_bytes"`
	StoredUnknownChunks int     `json:"stored_unknown_chunks"`
	CompressionRatio    float64 `json:"compression_ratio"`
	DedupRatio          float64 `json:"dedup_ratio"`
}

type objectsOut struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

type statsOut struct {
	Sources []struct {
		Source string `json:"source"`
		Engine string `json:"engine"`
		Latest string `json:"latest"`
		usageOut
	} `json:"sources"`
	Total      usageOut `json:"total"`
	Repository struct {
		Total        objectsOut  `json:"total"`
		Data         objectsOut  `json:"data"`
		Snapshots    int         `json:"snapshots"`
		Damaged      int         `json:"damaged_snapshots"`
		Unreferenced *objectsOut `json:"unreferenced"`
	} `json:"repository"`
}

type tableDiffOut struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	RowsBefore  int64  `json:"rows_before"`
	RowsAfter   int64  `json:"rows_after"`
	RowsDelta   int64  `json:"rows_delta"`
	BytesBefore int64  `json:"logical_bytes_before"`
	BytesAfter  int64  `json:"logical_bytes_after"`
	BytesDelta  int64  `json:"logical_bytes_delta"`
	SameData    bool   `json:"same_data"`
}

type diffOut struct {
	Before        struct{ ID, Engine string } `json:"before"`
	After         struct{ ID, Engine string } `json:"after"`
	SchemaChanged bool                        `json:"schema_changed"`
	Notes         []string                    `json:"notes"`
	Tables        []tableDiffOut              `json:"tables"`
	Summary       struct {
		Added      int   `json:"added"`
		Removed    int   `json:"removed"`
		Changed    int   `json:"changed"`
		Unchanged  int   `json:"unchanged"`
		RowsBefore int64 `json:"rows_before"`
		RowsAfter  int64 `json:"rows_after"`
		RowsDelta  int64 `json:"rows_delta"`
		BytesDelta int64 `json:"logical_bytes_delta"`
	} `json:"summary"`
}

func (d diffOut) table(t *testing.T, name string) tableDiffOut {
	t.Helper()
	for _, x := range d.Tables {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("diff has no table %s: %+v", name, d.Tables)
	return tableDiffOut{}
}

// statuses maps each table of a diff to its status.
func (d diffOut) statuses() map[string]string {
	m := map[string]string{}
	for _, x := range d.Tables {
		m[x.Name] = x.Status
	}
	return m
}

type lsOut struct {
	Snapshot struct {
		ID     string   `json:"id"`
		Source string   `json:"source"`
		Engine string   `json:"engine"`
		Host   string   `json:"host"`
		Tags   []string `json:"tags"`
		Tables int      `json:"tables"`
	} `json:"snapshot"`
	Rows                int64 `json:"rows"`
	LogicalBytes        int64 `json:"logical_bytes"`
	StoredBytes         int64 `json:"stored_bytes"`
	StoredUnknownChunks int   `json:"stored_unknown_chunks"`
	Chunks              int   `json:"chunks"`
	Tables              []struct {
		Name                string `json:"name"`
		Rows                int64  `json:"rows"`
		LogicalBytes        int64  `json:"logical_bytes"`
		StoredBytes         int64  `json:"stored_bytes"`
		StoredUnknownChunks int    `json:"stored_unknown_chunks"`
		Streams             int    `json:"streams"`
		Chunks              int    `json:"chunks"`
	} `json:"tables"`
	Streams []struct {
		Name         string `json:"name"`
		Kind         string `json:"kind"`
		Format       string `json:"format"`
		LogicalBytes int64  `json:"logical_bytes"`
		StoredBytes  int64  `json:"stored_bytes"`
		Chunks       int    `json:"chunks"`
	} `json:"streams"`
}

func jsonOut[T any](t *testing.T, args ...string) T {
	t.Helper()
	r := must(t, append(args, "--json")...)
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("snapdata %s --json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	return v
}

// manifests loads every snapshot of the local repository at dir, by id.
func manifests(t *testing.T, dir string) map[string]*manifest.Snapshot {
	t.Helper()
	ctx := context.Background()
	repo, err := repository.Open(ctx, local.New(dir), []byte("test password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	all, err := repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*manifest.Snapshot{}
	for _, s := range all {
		out[s.ID] = s
	}
	return out
}

// objectBytes is the size on disk of the chunk objects of the streams,
// each counted once: the truth stored bytes are checked against.
func objectBytes(t *testing.T, dir string, streams []manifest.Stream) int64 {
	t.Helper()
	seen := map[string]bool{}
	var n int64
	for _, st := range streams {
		for _, c := range st.Chunks {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			fi, err := os.Stat(filepath.Join(dir, "data", c.ID[:2], c.ID))
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

// dataDir is the number and size of every file under the repository's
// data folder.
func dataDir(t *testing.T, dir string) (count int, size int64) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		count++
		size += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count, size
}

// repoFiles counts the files of the local repository at dir and their
// bytes, locks and temporary files aside.
func repoFiles(t *testing.T, dir string) objectsOut {
	t.Helper()
	var o objectsOut
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "locks" || d.Name() == "tmp") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		o.Objects++
		o.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// backupID backs up src and returns the new snapshot's id.
func backupID(t *testing.T, args ...string) string {
	t.Helper()
	before := map[string]bool{}
	for _, s := range listSnapshots(t, "--repo", "repo") {
		before[s.ID] = true
	}
	must(t, append([]string{"backup", "--repo", "repo"}, args...)...)
	for _, s := range listSnapshots(t, "--repo", "repo") {
		if !before[s.ID] {
			return s.ID
		}
	}
	t.Fatalf("backup %v made no snapshot", args)
	return ""
}

// Backups of Chinook with rows inserted, a table added, a table dropped,
// a row updated and a column added in between: diff names exactly what
// changed with its row counts, ls lists the tables and streams with the
// stored sizes of their chunk objects, and stats reports the stored bytes
// of the data objects and deduplication after an unchanged backup.
func TestInspectSQLite(t *testing.T) {
	setup(t)
	chinook(t, "db.sqlite")
	db := openDB(t, "db.sqlite")
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(t, "init", "--repo", "repo")
	s1 := backupID(t, "sqlite:db.sqlite", "--tag", "first")
	s2 := backupID(t, "sqlite:db.sqlite") // unchanged

	// Two backups of unchanged data: every chunk stored once.
	st := jsonOut[statsOut](t, "stats", "--repo", "repo")
	m := manifests(t, "repo")
	count, size := dataDir(t, "repo")
	if len(st.Sources) != 1 {
		t.Fatalf("stats sources: %+v", st.Sources)
	}
	src := st.Sources[0]
	if src.Engine != "sqlite" || src.Latest != s2 || src.Snapshots != 2 || !strings.HasSuffix(src.Source, "db.sqlite") {
		t.Errorf("stats source: %+v", src)
	}
	if src.StoredBytes != size || src.StoredBytes != objectBytes(t, "repo", m[s1].Streams) || src.Chunks != count || src.StoredUnknownChunks != 0 {
		t.Errorf("stats stored %d bytes in %d chunks, the data folder holds %d objects of %d bytes", src.StoredBytes, src.Chunks, count, size)
	}
	if src.LogicalBytes != m[s1].LogicalBytes+m[s2].LogicalBytes || src.LatestLogicalBytes != m[s2].LogicalBytes {
		t.Errorf("stats logical %d (latest %d), manifests say %d and %d", src.LogicalBytes, src.LatestLogicalBytes, m[s1].LogicalBytes, m[s2].LogicalBytes)
	}
	if src.DeduplicatedBytes != m[s1].LogicalBytes || src.DedupRatio < 1.99 || src.DedupRatio > 2.01 {
		t.Errorf("two backups of unchanged data: deduplicated %d bytes (one snapshot is %d), dedup ratio %.3f, want 2", src.DeduplicatedBytes, m[s1].LogicalBytes, src.DedupRatio)
	}
	if want := float64(src.DeduplicatedBytes) / float64(size); src.CompressionRatio != want || want <= 1 {
		t.Errorf("compression ratio %.3f, want %.3f (> 1)", src.CompressionRatio, want)
	}
	if st.Total != src.usageOut {
		t.Errorf("one source: total %+v differs from the source's %+v", st.Total, src.usageOut)
	}
	if st.Repository.Data != (objectsOut{count, size}) || st.Repository.Snapshots != 2 || st.Repository.Unreferenced == nil || *st.Repository.Unreferenced != (objectsOut{}) {
		t.Errorf("stats repository: %+v", st.Repository)
	}
	if all := repoFiles(t, "repo"); st.Repository.Total != all || all.Objects <= count+2 {
		t.Errorf("stats repository total %+v, the repository's files (locks aside) %+v", st.Repository.Total, all)
	}
	r := must(t, "stats", "--repo", "repo")
	for _, want := range []string{"SOURCE", "DEDUPLICATED", "STORED", "COMPRESSION", "DEDUP", "sqlite", "2.00x", "repository: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats: no %q in\n%s", want, r.stdout)
		}
	}

	d := jsonOut[diffOut](t, "diff", "--repo", "repo", s1[:8], s2[:8])
	if d.Before.ID != s1 || d.After.ID != s2 || d.SchemaChanged || d.Summary.Unchanged != 11 || d.Summary.Added+d.Summary.Removed+d.Summary.Changed != 0 || d.Summary.RowsDelta != 0 || len(d.Notes) != 0 {
		t.Errorf("diff of unchanged backups: %+v", d)
	}

	// Rows inserted into one table, a table added, a table dropped.
	exec("INSERT INTO Artist (Name) VALUES ('a'), ('b'), ('c'), ('d'), ('e')")
	exec("CREATE TABLE Extra (id INTEGER PRIMARY KEY, v TEXT)")
	exec("INSERT INTO Extra (v) VALUES ('x'), ('y'), ('z')")
	exec("DROP TABLE PlaylistTrack")
	s3 := backupID(t, "sqlite:db.sqlite")
	m = manifests(t, "repo")
	d = jsonOut[diffOut](t, "diff", "--repo", "repo", s2, "latest")
	wantStatus := map[string]string{"Album": "unchanged", "Artist": "changed", "Customer": "unchanged", "Employee": "unchanged", "Extra": "added", "Genre": "unchanged",
		"Invoice": "unchanged", "InvoiceLine": "unchanged", "MediaType": "unchanged", "Playlist": "unchanged", "PlaylistTrack": "removed", "Track": "unchanged"}
	if got := d.statuses(); !maps.Equal(got, wantStatus) {
		t.Errorf("diff statuses %v, want %v", got, wantStatus)
	}
	artist := d.table(t, "Artist")
	if artist.RowsBefore != 275 || artist.RowsAfter != 280 || artist.RowsDelta != 5 || artist.SameData || artist.BytesBefore != tableBytes(m[s2], "Artist") || artist.BytesAfter != tableBytes(m[s3], "Artist") || artist.BytesDelta <= 0 {
		t.Errorf("diff Artist: %+v", artist)
	}
	if x := d.table(t, "Extra"); x.RowsBefore != 0 || x.RowsAfter != 3 || x.RowsDelta != 3 || x.BytesBefore != 0 || x.BytesAfter != tableBytes(m[s3], "Extra") {
		t.Errorf("diff Extra: %+v", x)
	}
	if x := d.table(t, "PlaylistTrack"); x.RowsBefore != 8715 || x.RowsAfter != 0 || x.RowsDelta != -8715 || x.BytesAfter != 0 || x.BytesDelta != -tableBytes(m[s2], "PlaylistTrack") {
		t.Errorf("diff PlaylistTrack: %+v", x)
	}
	if x := d.table(t, "Track"); !x.SameData || x.RowsBefore != 3503 || x.RowsAfter != 3503 || x.RowsDelta != 0 || x.BytesDelta != 0 {
		t.Errorf("diff Track: %+v", x)
	}
	if s := d.Summary; !d.SchemaChanged || s.Added != 1 || s.Removed != 1 || s.Changed != 1 || s.Unchanged != 9 || s.RowsBefore != 15607 || s.RowsAfter != 15607-8715+5+3 || s.RowsDelta != 5+3-8715 {
		t.Errorf("diff summary: schema changed %v, %+v", d.SchemaChanged, s)
	}
	r = must(t, "diff", "--repo", "repo", s2, s3)
	for _, want := range []string{"schema: changed", "Artist", "+5", "Extra", "added", "PlaylistTrack", "removed", "-8715",
		"1 added, 1 removed, 1 changed, 9 unchanged tables; rows 15607 -> 6900 (-8707)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff: no %q in\n%s", want, r.stdout)
		}
	}
	if regexp.MustCompile(`(?m)^\S+ +unchanged +`).MatchString(r.stdout) {
		t.Errorf("diff without --all lists unchanged tables:\n%s", r.stdout)
	}
	if r := must(t, "diff", "--repo", "repo", s2, s3, "--all"); !regexp.MustCompile(`(?m)^Track +unchanged +3503 +3503 +0 `).MatchString(r.stdout) {
		t.Errorf("diff --all does not list the unchanged tables:\n%s", r.stdout)
	}

	// A row updated (the row count stays): changed, schema unchanged.
	exec("UPDATE Genre SET Name = 'Rock and Roll' WHERE GenreId = 1")
	s4 := backupID(t, "sqlite:db.sqlite")
	d = jsonOut[diffOut](t, "diff", "--repo", "repo", s3, s4)
	if g := d.table(t, "Genre"); g.Status != "changed" || g.RowsDelta != 0 || g.RowsBefore != 25 || g.SameData || g.BytesDelta != int64(len("Rock and Roll")-len("Rock")) {
		t.Errorf("diff Genre after an update: %+v", g)
	}
	if d.SchemaChanged || d.Summary.Changed != 1 || d.Summary.Unchanged != 10 {
		t.Errorf("diff after an update: schema changed %v, %+v", d.SchemaChanged, d.Summary)
	}

	// A column added: the schema changed.
	exec("ALTER TABLE Extra ADD COLUMN note TEXT")
	s5 := backupID(t, "sqlite:db.sqlite")
	d = jsonOut[diffOut](t, "diff", "--repo", "repo", s4, s5)
	if !d.SchemaChanged || d.Summary.Added+d.Summary.Removed != 0 || d.Summary.RowsDelta != 0 {
		t.Errorf("diff after ALTER TABLE ADD COLUMN: schema changed %v, %+v", d.SchemaChanged, d.Summary)
	}

	// ls: the header, every table with its rows and sizes, every stream.
	m = manifests(t, "repo")
	snap3 := m[s3]
	ls := jsonOut[lsOut](t, "ls", "--repo", "repo", s3[:10], "--streams")
	if ls.Snapshot.ID != s3 || ls.Snapshot.Engine != "sqlite" || ls.Snapshot.Tables != 11 || ls.Rows != 6900 || ls.LogicalBytes != snap3.LogicalBytes || ls.Chunks == 0 {
		t.Errorf("ls header: %+v", ls)
	}
	if want := objectBytes(t, "repo", snap3.Streams); ls.StoredBytes != want || ls.StoredUnknownChunks != 0 {
		t.Errorf("ls stored %d bytes, its chunk objects hold %d", ls.StoredBytes, want)
	}
	if len(ls.Tables) != 11 {
		t.Fatalf("ls tables: %+v", ls.Tables)
	}
	for _, tb := range ls.Tables {
		mt, _ := snap3.Table(tb.Name)
		streams := snap3.TableStreams(tb.Name)
		if tb.Rows != mt.Rows || tb.LogicalBytes != mt.Bytes || tb.StoredBytes != objectBytes(t, "repo", streams) || tb.Streams != len(streams) || tb.Streams == 0 || tb.Chunks == 0 {
			t.Errorf("ls table %+v; manifest %+v, %d streams, objects of %d bytes", tb, mt, len(streams), objectBytes(t, "repo", streams))
		}
	}
	if len(ls.Streams) != len(snap3.Streams) {
		t.Fatalf("ls --streams lists %d streams, the manifest holds %d", len(ls.Streams), len(snap3.Streams))
	}
	for i, s := range ls.Streams {
		ms := snap3.Streams[i]
		if s.Name != ms.Name || s.Kind != ms.Kind || s.Format != ms.Format || s.LogicalBytes != ms.Size || s.Chunks != len(ms.Chunks) || s.StoredBytes != objectBytes(t, "repo", []manifest.Stream{ms}) {
			t.Errorf("ls stream %+v, manifest %s %s %s %d bytes %d chunks", s, ms.Name, ms.Kind, ms.Format, ms.Size, len(ms.Chunks))
		}
	}
	if ls := jsonOut[lsOut](t, "ls", "--repo", "repo", s3); ls.Streams != nil {
		t.Errorf("ls --json without --streams lists streams: %+v", ls.Streams)
	}
	r = must(t, "ls", "--repo", "repo", s1)
	for _, want := range []string{`snapshot +` + s1, `tags +first\n`, `engine +sqlite \(SQLite 3`, `tables +11, 15607 rows`, `\nPlaylistTrack +8715 +68.4 KiB +`, `TABLE +ROWS +LOGICAL +STORED +STREAMS +CHUNKS`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("ls: no %q in\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "schema/pre") {
		t.Errorf("ls without --streams lists streams:\n%s", r.stdout)
	}
	if r := must(t, "ls", "--repo", "repo", s1, "--streams"); !strings.Contains(r.stdout, "schema/pre") || !strings.Contains(r.stdout, "data/Track") {
		t.Errorf("ls --streams:\n%s", r.stdout)
	}

	// stats of chosen snapshots; after forget, the unreferenced objects.
	st = jsonOut[statsOut](t, "stats", "--repo", "repo", s1[:8], s3[:8])
	if st.Total.Snapshots != 2 || st.Total.LogicalBytes != m[s1].LogicalBytes+m[s3].LogicalBytes || st.Total.LatestLogicalBytes != m[s3].LogicalBytes ||
		st.Total.StoredBytes != objectBytes(t, "repo", append(slices.Clone(m[s1].Streams), m[s3].Streams...)) {
		t.Errorf("stats of two snapshots: %+v", st.Total)
	}
	must(t, "forget", "--repo", "repo", s1, s2)
	st = jsonOut[statsOut](t, "stats", "--repo", "repo")
	m = manifests(t, "repo")
	var rest []manifest.Stream
	for _, s := range m {
		rest = append(rest, s.Streams...)
	}
	count, size = dataDir(t, "repo")
	kept := objectBytes(t, "repo", rest)
	if u := st.Repository.Unreferenced; st.Total.StoredBytes != kept || u == nil || u.Bytes != size-kept || u.Objects == 0 || st.Repository.Data != (objectsOut{count, size}) {
		t.Errorf("stats after forget: total stored %d (want %d), repository %+v, unreferenced %+v (want %d bytes)", st.Total.StoredBytes, kept, st.Repository, u, size-kept)
	}
	if r := must(t, "stats", "--repo", "repo"); !strings.Contains(r.stdout, "'snapdata prune' removes them") {
		t.Errorf("stats does not name the unreferenced objects:\n%s", r.stdout)
	}
}

func tableBytes(s *manifest.Snapshot, table string) int64 {
	var n int64
	for _, st := range s.TableStreams(table) {
		n += st.Size
	}
	return n
}

// Two sources with the same content: stats counts their shared chunks once
// in the total; ls and stats of a snapshot made before stored sizes were
// recorded take them from the listing; a missing chunk object is unknown.
func TestInspectStatsSharedAndOld(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	chinook(t, "b.sqlite")
	must(t, "init", "--repo", "repo")
	sa := backupID(t, "sqlite:a.sqlite")
	backupID(t, "sqlite:b.sqlite")
	st := jsonOut[statsOut](t, "stats", "--repo", "repo")
	_, size := dataDir(t, "repo")
	if len(st.Sources) != 2 {
		t.Fatalf("stats sources: %+v", st.Sources)
	}
	a, b := st.Sources[0], st.Sources[1]
	if st.Total.StoredBytes != size || a.StoredBytes+b.StoredBytes <= size || st.Total.Snapshots != 2 || st.Total.LogicalBytes != a.LogicalBytes+b.LogicalBytes {
		t.Errorf("stats of two sources sharing chunks: total %+v, sources %+v and %+v, data folder %d bytes", st.Total, a.usageOut, b.usageOut, size)
	}
	if st.Total.DedupRatio < 1.5 {
		t.Errorf("two sources with the same tables: dedup ratio %.2f", st.Total.DedupRatio)
	}
	if r := must(t, "stats", "--repo", "repo"); !strings.Contains(r.stdout, "total") {
		t.Errorf("stats of two sources has no total line:\n%s", r.stdout)
	}
	if st := jsonOut[statsOut](t, "stats", "--repo", "repo", "--source", "sqlite:a.sqlite"); len(st.Sources) != 1 || st.Sources[0].Latest != sa {
		t.Errorf("stats --source: %+v", st.Sources)
	}
	r := must(t, "stats", "--repo", "repo", "--source", "nosuch")
	if !strings.Contains(r.stderr, "holds snapshots of") {
		t.Errorf("stats --source nosuch: %s", r)
	}

	// A manifest as releases before stored sizes wrote it.
	ctx := context.Background()
	repo, err := repository.Open(ctx, local.New("repo"), []byte("test password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := repo.LoadSnapshot(ctx, sa)
	if err != nil {
		t.Fatal(err)
	}
	for i := range old.Streams {
		for j := range old.Streams[i].Chunks {
			old.Streams[i].Chunks[j].Stored = 0
		}
	}
	old.Source = "sqlite:old.sqlite"
	oldID, err := repo.SaveManifest(ctx, old)
	repo.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := objectBytes(t, "repo", old.Streams)
	if ls := jsonOut[lsOut](t, "ls", "--repo", "repo", oldID); ls.StoredBytes != want || ls.StoredUnknownChunks != 0 {
		t.Errorf("ls of a snapshot without stored sizes: %d bytes, %d unknown; want %d", ls.StoredBytes, ls.StoredUnknownChunks, want)
	}
	st = jsonOut[statsOut](t, "stats", "--repo", "repo", oldID)
	if st.Total.StoredBytes != want || st.Total.StoredUnknownChunks != 0 {
		t.Errorf("stats of a snapshot without stored sizes: %+v, want %d bytes", st.Total, want)
	}

	// One of its chunk objects deleted: its size is unknown.
	var track manifest.Chunk
	for _, s := range old.Streams {
		if s.Table == "Track" {
			track = s.Chunks[0]
		}
	}
	fi, err := os.Stat(filepath.Join("repo", "data", track.ID[:2], track.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join("repo", "data", track.ID[:2], track.ID)); err != nil {
		t.Fatal(err)
	}
	ls := jsonOut[lsOut](t, "ls", "--repo", "repo", oldID)
	if ls.StoredBytes != want-fi.Size() || ls.StoredUnknownChunks != 1 {
		t.Errorf("ls with a missing chunk: %d bytes, %d unknown; want %d and 1", ls.StoredBytes, ls.StoredUnknownChunks, want-fi.Size())
	}
	if r := must(t, "ls", "--repo", "repo", oldID); !strings.Contains(r.stdout, "+ 1 unknown") {
		t.Errorf("ls does not say a size is unknown:\n%s", r.stdout)
	}
	if r := must(t, "stats", "--repo", "repo", oldID); !strings.Contains(r.stdout, "1 chunks are missing") {
		t.Errorf("stats does not warn about the missing chunk:\n%s", r.stdout)
	}
}

// Wrong arguments, unknown and ambiguous snapshots exit 2 with a message;
// the verbs take the repository's read lock (a read-only repository warns,
// as restore does) unless --no-lock.
func TestInspectBadInputs(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	must(t, "init", "--repo", "repo")
	if r := must(t, "stats", "--repo", "repo"); !strings.HasPrefix(r.stdout, "no snapshots\nrepository: ") {
		t.Errorf("stats of an empty repository: %s", r)
	}
	if st := jsonOut[statsOut](t, "stats", "--repo", "repo"); st.Sources == nil || len(st.Sources) != 0 || st.Total.Snapshots != 0 || st.Total.DedupRatio != 0 {
		t.Errorf("stats --json of an empty repository: %+v", st)
	}
	if r := snap(t, "ls", "--repo", "repo", "latest"); r.code != 2 || !strings.Contains(r.stderr, "no snapshots") {
		t.Errorf("ls latest in an empty repository: %s", r)
	}
	// Back up until two snapshot ids share their first hex digit (at most 17).
	var ids []string
	prefix := ""
	for prefix == "" {
		ids = append(ids, backupID(t, "sqlite:a.sqlite"))
		for _, id := range ids[:len(ids)-1] {
			if id[0] == ids[len(ids)-1][0] {
				prefix = id[:1]
			}
		}
	}
	chinook(t, "b.sqlite")
	backupID(t, "sqlite:b.sqlite")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"ls"}, "ls expects one SNAPSHOT id"},
		{[]string{"ls", ids[0], ids[1]}, "ls expects one SNAPSHOT id"},
		{[]string{"diff", ids[0]}, "diff expects two SNAPSHOT ids"},
		{[]string{"diff", ids[0], ids[1], ids[0]}, "diff expects two SNAPSHOT ids"},
		{[]string{"ls", "deadbeef"}, `no snapshot with id "deadbeef"`},
		{[]string{"diff", ids[0], "deadbeef"}, `no snapshot with id "deadbeef"`},
		{[]string{"stats", "deadbeef"}, `no snapshot with id "deadbeef"`},
		{[]string{"ls", prefix}, "is ambiguous"},
		{[]string{"diff", prefix, ids[0]}, "is ambiguous"},
		{[]string{"stats", prefix}, "is ambiguous"},
		{[]string{"ls", "latest"}, "latest is ambiguous"},
		{[]string{"ls", "latest", "--source", "sqlite:nosuch.sqlite"}, "no snapshot of source"},
		{[]string{"ls", ids[0], "--bogus"}, "unknown flag"},
	} {
		r := snap(t, append(c.args, "--repo", "repo")...)
		if r.code != 2 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("snapdata %v: want exit 2 and %q: %s", c.args, c.msg, r)
		}
	}
	if r := must(t, "ls", "latest", "--source", "sqlite:b.sqlite", "--repo", "repo"); !strings.Contains(r.stdout, "b.sqlite") {
		t.Errorf("ls latest --source: %s", r)
	}
	// snapshots keeps its other alias; ls is no longer one.
	if r := must(t, "list", "--repo", "repo"); !strings.Contains(r.stdout, ids[0][:8]) {
		t.Errorf("list (the snapshots alias): %s", r)
	}

	// A read-only repository: the read lock cannot be written, the verbs
	// read with a warning; --no-lock takes none.
	dir, _ := os.Getwd()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	mountReadOnly(t, "repo", ro)
	for _, args := range [][]string{{"stats"}, {"ls", ids[0]}, {"diff", ids[0], ids[1]}} {
		r := must(t, append(args, "--repo", ro)...)
		if !strings.Contains(r.stderr, "reading without one") {
			t.Errorf("%v on a read-only repository: no warning about the lock: %s", args, r)
		}
		r = must(t, append(args, "--repo", ro, "--no-lock")...)
		if strings.Contains(r.stderr, "lock") {
			t.Errorf("%v --no-lock: %s", args, r)
		}
	}
}

// PostgreSQL: rows inserted into one table, a table added, a column's
// type changed; diff and ls report the exact row counts and the schema
// change, and a diff against a SQLite snapshot says the engines differ.
func TestInspectPostgres(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pg.CreateDatabase(t, "inspect")
	pgExec(t, src, `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 500) i;
		CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, amount numeric(10,2));
		INSERT INTO orders SELECT i, 1 + i % 500, i * 1.25 FROM generate_series(1, 2000) i`)
	must(t, "init", "--repo", "repo")
	s1 := backupID(t, src)
	pgExec(t, src, `INSERT INTO orders SELECT i, 1 + i % 500, i * 1.25 FROM generate_series(2001, 2150) i;
		CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a'), (2, 'b');
		ALTER TABLE customers ALTER COLUMN name TYPE varchar(200)`)
	s2 := backupID(t, src)
	d := jsonOut[diffOut](t, "diff", "--repo", "repo", s1, s2)
	want := map[string]string{"public.customers": "unchanged", "public.notes": "added", "public.orders": "changed"}
	if got := d.statuses(); !maps.Equal(got, want) {
		t.Errorf("diff statuses %v, want %v", got, want)
	}
	if o := d.table(t, "public.orders"); o.RowsBefore != 2000 || o.RowsAfter != 2150 || o.RowsDelta != 150 || o.BytesDelta <= 0 {
		t.Errorf("diff orders: %+v", o)
	}
	if n := d.table(t, "public.notes"); n.RowsAfter != 2 || n.RowsDelta != 2 {
		t.Errorf("diff notes: %+v", n)
	}
	if s := d.Summary; !d.SchemaChanged || s.Added != 1 || s.Removed != 0 || s.Changed != 1 || s.Unchanged != 1 || s.RowsBefore != 2500 || s.RowsAfter != 2652 || s.RowsDelta != 152 {
		t.Errorf("diff summary: schema changed %v, %+v", d.SchemaChanged, s)
	}
	// Inserting rows only leaves the schema as it was.
	pgExec(t, src, `INSERT INTO notes VALUES (3, 'c')`)
	s3 := backupID(t, src)
	d = jsonOut[diffOut](t, "diff", "--repo", "repo", s2, s3)
	if n := d.table(t, "public.notes"); d.SchemaChanged || n.Status != "changed" || n.RowsDelta != 1 || d.Summary.Unchanged != 2 {
		t.Errorf("diff after an insert: schema changed %v, %+v", d.SchemaChanged, d.Tables)
	}

	m := manifests(t, "repo")
	ls := jsonOut[lsOut](t, "ls", "--repo", "repo", s2, "--streams")
	if ls.Snapshot.Engine != "postgres" || ls.Rows != 2652 || len(ls.Tables) != 3 || ls.StoredBytes != objectBytes(t, "repo", m[s2].Streams) {
		t.Errorf("ls: %+v", ls)
	}
	kinds := map[string]int{}
	for _, s := range ls.Streams {
		kinds[s.Kind]++
	}
	if kinds["data"] != 3 || kinds["schema-pre"] == 0 || kinds["schema-post"] == 0 {
		t.Errorf("ls --streams kinds: %v", kinds)
	}
	for _, tb := range ls.Tables {
		if mt, _ := m[s2].Table(tb.Name); tb.Rows != mt.Rows || tb.StoredBytes != objectBytes(t, "repo", m[s2].TableStreams(tb.Name)) {
			t.Errorf("ls table %+v, manifest %+v", tb, mt)
		}
	}
	for _, args := range [][]string{{"ls", s2}, {"ls", s2, "--json"}, {"diff", s1, s2}, {"diff", s1, s2, "--json"}, {"stats"}, {"stats", "--json"}} {
		if r := must(t, append(args, "--repo", "repo")...); strings.Contains(r.stdout+r.stderr, pg.Password) {
			t.Errorf("%v printed the server's password", args)
		}
	}

	// Against a SQLite snapshot: what can be compared, and a note.
	chinook(t, "c.sqlite")
	sq := backupID(t, "sqlite:c.sqlite")
	d = jsonOut[diffOut](t, "diff", "--repo", "repo", s3, sq)
	if len(d.Notes) == 0 || !strings.Contains(d.Notes[0], "different engines (postgres, sqlite)") || d.Summary.Removed != 3 || d.Summary.Added != 11 || d.Summary.Unchanged != 0 {
		t.Errorf("diff across engines: notes %q, %+v", d.Notes, d.Summary)
	}
	if r := must(t, "diff", "--repo", "repo", s3, sq); !strings.Contains(r.stdout, "note: the snapshots are of different engines") {
		t.Errorf("diff across engines:\n%s", r.stdout)
	}
	st := jsonOut[statsOut](t, "stats", "--repo", "repo")
	if len(st.Sources) != 2 || st.Total.StoredBytes != objectBytes(t, "repo", allStreams(m, sq, manifests(t, "repo"))) {
		t.Errorf("stats with a PostgreSQL and a SQLite source: %+v", st)
	}
}

// allStreams is every stream of the snapshots in m and of snapshot id in
// later.
func allStreams(m map[string]*manifest.Snapshot, id string, later map[string]*manifest.Snapshot) []manifest.Stream {
	var out []manifest.Stream
	for _, s := range m {
		out = append(out, s.Streams...)
	}
	return append(out, later[id].Streams...)
}

// mountReadOnly bind-mounts dir read-only at at (the tests run as root,
// whom chmod does not stop) until the test ends.
func mountReadOnly(t *testing.T, dir, at string) {
	t.Helper()
	for _, args := range [][]string{{"--bind", dir, at}, {"-o", "remount,bind,ro", at}} {
		if out, err := osexec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v (the tests need root): %v: %s", args, err, out)
		}
		t.Cleanup(func() { _ = osexec.Command("umount", at).Run() })
	}
	if err := os.WriteFile(filepath.Join(at, "probe"), nil, 0o600); err == nil {
		t.Fatal("the read-only mount takes writes")
	}
}
