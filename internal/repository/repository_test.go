package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/compress"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// fastKDF keeps tests quick; production uses crypto.DefaultKDF.
func fastKDF() *crypto.KDFParams {
	k := crypto.DefaultKDF()
	k.Time, k.MemoryKiB = 1, 1024
	return &k
}

func newRepo(t *testing.T, opts InitOptions) (*Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if opts.Password == nil && !opts.NoEncryption {
		opts.Password = []byte("correct horse")
	}
	if opts.KDF == nil {
		opts.KDF = fastKDF()
	}
	if opts.ChunkAvgBits == 0 {
		opts.ChunkAvgBits = 14 // 16 KiB: many chunks from little data
	}
	r, err := Init(context.Background(), local.New(dir), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// text returns n bytes of realistic, compressible but not trivial text.
func text(seed int64, n int) []byte {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu 2026-11-22 03:04:05 {\"id\": 42} ümlaut 🎉")
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%d\t%s %s\t%d\n", rng.Int63(), words[rng.Intn(len(words))], words[rng.Intn(len(words))], rng.Intn(1000))
	}
	return b.Bytes()[:n]
}

// copyRows returns n bytes that compress like a table's COPY text: ids,
// timestamps, amounts and JSON around words, where a stronger zstd level
// finds more to gain than in text's mostly random numbers.
func copyRows(seed int64, n int) []byte {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa")
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for id := 1; b.Len() < n; id++ {
		fmt.Fprintf(&b, "%d\t2026-%02d-%02d %02d:%02d:%02d+00\t%d.%02d\t{\"status\": \"%s\", \"note\": \"%s %s\"}\n", id,
			1+rng.Intn(12), 1+rng.Intn(28), rng.Intn(24), rng.Intn(60), rng.Intn(60), rng.Intn(10000), rng.Intn(100),
			words[rng.Intn(4)], words[rng.Intn(len(words))], words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

func writeStream(t *testing.T, s *Session, name string, data []byte) {
	t.Helper()
	w, err := s.Create(context.Background(), manifest.Stream{Name: name, Kind: manifest.KindData, Table: name, Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// odd write sizes exercise the chunker's buffering
	for off := 0; off < len(data); {
		n := 1 + (off*7919)%65536
		if off+n > len(data) {
			n = len(data) - off
		}
		if _, err := w.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, r *Repository, source string, streams map[string][]byte) *manifest.Snapshot {
	t.Helper()
	s, err := r.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range streams {
		writeStream(t, s, name, data)
	}
	snap := &manifest.Snapshot{Time: time.Now(), Source: source, Engine: "test"}
	if _, err := s.Commit(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

func readStream(t *testing.T, r *Repository, st manifest.Stream) []byte {
	t.Helper()
	rc := r.OpenStream(context.Background(), st)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func TestStreamRoundTripAndDedup(t *testing.T) {
	for _, c := range []struct {
		chunker string
		enc     bool
	}{{ChunkerFastCDC, true}, {ChunkerFastCDC, false}, {ChunkerRabin, true}, {ChunkerRabin, false}} {
		enc := c.enc
		t.Run(fmt.Sprintf("%s/encrypted=%v", c.chunker, enc), func(t *testing.T) {
			// 32 KiB chunks: with smaller ones the snapshot's chunk list
			// alone is near the 0.5 % bar for an unchanged backup.
			r, dir := newRepo(t, InitOptions{NoEncryption: !enc, Chunker: c.chunker, ChunkAvgBits: 15})
			if got := r.Params().ChunkerName(); got != c.chunker {
				t.Fatalf("chunker %q, want %q", got, c.chunker)
			}
			data := text(1, 3<<20)
			first := commit(t, r, "s", map[string][]byte{"a": data, "empty": nil})
			if len(first.Streams) != 2 {
				t.Fatalf("streams: %d", len(first.Streams))
			}
			for _, st := range first.Streams {
				want := data
				if st.Name == "empty" {
					want = nil
				}
				if got := readStream(t, r, st); !bytes.Equal(got, want) {
					t.Fatalf("stream %s: read %d bytes, wrote %d", st.Name, len(got), len(want))
				}
			}
			if first.AddedBytes <= 0 || first.AddedBytes > int64(len(data))/2 {
				t.Errorf("first backup added %d bytes for %d bytes of text", first.AddedBytes, len(data))
			}
			before := dirSize(t, dir)
			second := commit(t, r, "s", map[string][]byte{"a": data, "empty": nil})
			if second.AddedBytes != 0 {
				t.Errorf("unchanged data added %d chunk bytes", second.AddedBytes)
			}
			if grew := dirSize(t, dir) - before; float64(grew) > 0.005*float64(before) {
				t.Errorf("second backup of unchanged data grew the repository by %d bytes (%.2f%% of %d)", grew, 100*float64(grew)/float64(before), before)
			}
			if !manifest.SameData(first, second) {
				t.Error("SameData is false for identical streams")
			}
			// Appending 1% changes only the tail.
			more := append(append([]byte{}, data...), text(2, len(data)/100)...)
			third := commit(t, r, "s", map[string][]byte{"a": more, "empty": nil})
			if third.AddedBytes > int64(len(data))/20 {
				t.Errorf("appending 1%% added %d bytes", third.AddedBytes)
			}
			// Encrypted objects must not show plaintext.
			if enc {
				_ = filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
					if err == nil && !fi.IsDir() {
						b, _ := os.ReadFile(p)
						if bytes.Contains(b, []byte("foxtrot")) {
							t.Errorf("%s holds plaintext", p)
						}
					}
					return nil
				})
			}
		})
	}
}

func TestOpenPasswords(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	commit(t, r, "s", map[string][]byte{"a": text(3, 1000)})
	ctx := context.Background()
	if _, err := Open(ctx, local.New(dir), []byte("wrong"), nil); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := Open(ctx, local.New(dir), nil, nil); !errors.Is(err, ErrNeedPassword) {
		t.Errorf("no password: %v", err)
	}
	r2, err := Open(ctx, local.New(dir), []byte("correct horse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := r2.List(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("list after reopen: %v %v", snaps, err)
	}
	if _, err := Open(ctx, local.New(t.TempDir()), nil, nil); !errors.Is(err, ErrNoRepository) {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := Init(ctx, local.New(dir), InitOptions{Password: []byte("x"), KDF: fastKDF()}, nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("init over a repository: %v", err)
	}
}

func TestFindSnapshots(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	ctx := context.Background()
	a := commit(t, r, "one", map[string][]byte{"a": text(1, 100)})
	time.Sleep(10 * time.Millisecond)
	b := commit(t, r, "two", map[string][]byte{"a": text(2, 100)})
	if s, err := r.Find(ctx, a.ID[:6], ""); err != nil || s.ID != a.ID {
		t.Errorf("prefix: %v %v", s, err)
	}
	if s, err := r.Find(ctx, "latest", "one"); err != nil || s.ID != a.ID {
		t.Errorf("latest of one: %v %v", s, err)
	}
	if _, err := r.Find(ctx, "latest", ""); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("latest with two sources: %v", err)
	}
	if _, err := r.Find(ctx, "deadbeef", ""); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := r.Find(ctx, "latest", "three"); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("unknown source: %v", err)
	}
	_ = b
}

func TestDamageIsFoundAndNamed(t *testing.T) {
	r, dir := newRepo(t, InitOptions{})
	ctx := context.Background()
	a := commit(t, r, "one", map[string][]byte{"a": text(10, 200<<10)})
	b := commit(t, r, "two", map[string][]byte{"b": text(11, 200<<10)})
	prog := progress.New("check", io.Discard)
	rep, err := r.Check(ctx, true, prog)
	if err != nil || !rep.OK() {
		t.Fatalf("clean repository: %+v %v", rep, err)
	}
	// The progress counts every data object and its stored bytes once.
	if want := fmt.Sprintf("%d/%d objects", rep.ReadObjects, rep.DataObjects); rep.ReadObjects == 0 || !strings.Contains(prog.Line(), want) {
		t.Errorf("progress line %q, want %q", prog.Line(), want)
	}
	if st, err := r.Stats(ctx); err != nil || prog.Bytes() != st.DataBytes {
		t.Errorf("progress counted %d bytes, the data objects hold %d (%v)", prog.Bytes(), st.DataBytes, err)
	}
	victim := a.Streams[0].Chunks[1].ID
	p := filepath.Join(dir, "data", victim[:2], victim)
	obj, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	obj[len(obj)/2] ^= 0x01
	if err := os.WriteFile(p, obj, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = r.Check(ctx, false, nil)
	if err != nil || !rep.OK() {
		t.Errorf("structure check should not read data: %+v %v", rep, err)
	}
	rep, err = r.Check(ctx, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].Object != "data/"+victim || len(rep.Errors[0].Snapshots) != 1 || rep.Errors[0].Snapshots[0] != a.ID {
		t.Fatalf("check --read-data: %+v", rep.Errors)
	}
	rc := r.OpenStream(ctx, a.Streams[0])
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), victim) {
		t.Errorf("reading a damaged stream: %v", err)
	}
	rc.Close()
	if got := readStream(t, r, b.Streams[0]); !bytes.Equal(got, text(11, 200<<10)) {
		t.Error("undamaged snapshot no longer reads")
	}
	// A missing object is named too.
	other := b.Streams[0].Chunks[0].ID
	if err := os.Remove(filepath.Join(dir, "data", other[:2], other)); err != nil {
		t.Fatal(err)
	}
	rep, _ = r.Check(ctx, false, nil)
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Message, "missing") || rep.Errors[0].Snapshots[0] != b.ID {
		t.Errorf("missing chunk: %+v", rep.Errors)
	}
}

func TestPruneKeepsReferencedData(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	ctx := context.Background()
	keep := commit(t, r, "s", map[string][]byte{"a": text(20, 300<<10)})
	drop := commit(t, r, "s", map[string][]byte{"a": text(21, 300<<10)})
	if err := r.RemoveSnapshot(ctx, drop.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Prune(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RemovedObjects == 0 || rep.KeptObjects != len(keep.Streams[0].Chunks) {
		t.Errorf("prune: %+v (kept snapshot has %d chunks)", rep, len(keep.Streams[0].Chunks))
	}
	if got := readStream(t, r, keep.Streams[0]); !bytes.Equal(got, text(20, 300<<10)) {
		t.Error("kept snapshot damaged by prune")
	}
	check, err := r.Check(ctx, true, nil)
	if err != nil || !check.OK() || check.Unreferenced != 0 {
		t.Errorf("after prune: %+v %v", check, err)
	}
	// Data removed by prune is uploaded again by the next backup.
	again := commit(t, r, "s", map[string][]byte{"a": text(21, 300<<10)})
	if got := readStream(t, r, again.Streams[0]); !bytes.Equal(got, text(21, 300<<10)) {
		t.Error("re-backup after prune does not read back")
	}
}

func TestLocks(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	ctx := context.Background()
	s1, err := r.Lock(ctx, false, "backup", 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.Lock(ctx, false, "backup", 0)
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if _, err := r.Lock(ctx, true, "prune", 0); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "shared lock held by pid") {
		t.Fatalf("exclusive over shared: %v", err)
	}
	s1.Unlock()
	s2.Unlock()
	ex, err := r.Lock(ctx, true, "prune", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, false, "backup", 200*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared over exclusive: %v", err)
	}
	ex.Unlock()
	// A lock that names this host and a process id that does not run here,
	// refreshed recently, may belong to a process in another PID namespace:
	// it blocks prune until it is stale; unlock removes it (the operator
	// knows).
	host, _ := os.Hostname()
	ns, err := r.writeLock(ctx, LockInfo{Time: time.Now(), Host: host, PID: 999999999, Purpose: "backup in a container"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, true, "prune", 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("prune ignored a fresh lock of a process in another PID namespace: %v", err)
	}
	// Not refreshed for LockStale, the same lock is stale: ignored.
	if _, err := r.writeLock(ctx, LockInfo{Time: time.Now().Add(-LockStale - time.Minute), Host: host, PID: 999999999, Exclusive: true}, ns); err != nil {
		t.Fatal(err)
	}
	l, err := r.Lock(ctx, true, "prune", 0)
	if err != nil {
		t.Fatalf("stale lock blocked: %v", err)
	}
	l.Unlock()
	// A live lock of another host is respected until it goes stale.
	if _, err := r.writeLock(ctx, LockInfo{Time: time.Now(), Host: "elsewhere", PID: 1, Exclusive: true}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, false, "backup", 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("live foreign lock ignored: %v", err)
	}
	// unlock removes the stale lock and a fresh one of a pid missing here,
	// not the live foreign one.
	if _, err := r.writeLock(ctx, LockInfo{Time: time.Now(), Host: host, PID: 999999998}, ""); err != nil {
		t.Fatal(err)
	}
	removed, err := r.RemoveLocks(ctx, false)
	if err != nil || len(removed) != 2 || removed[0].Host != host || removed[1].Host != host {
		t.Fatalf("unlock removed %v, %v", removed, err)
	}
	removed, _ = r.RemoveLocks(ctx, true)
	if len(removed) != 1 || removed[0].Host != "elsewhere" {
		t.Fatalf("unlock --remove-all removed %v", removed)
	}
}

func TestCancelledSessionCommitsNothing(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := r.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeStream(t, s, "a", text(5, 100<<10))
	cancel()
	if _, err := s.Commit(ctx, &manifest.Snapshot{Source: "s"}); err == nil {
		t.Fatal("commit after cancel succeeded")
	}
	ids, _ := r.SnapshotIDs(context.Background())
	if len(ids) != 0 {
		t.Fatalf("snapshots after a cancelled backup: %v", ids)
	}
	rep, err := r.Check(context.Background(), true, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("check after a cancelled backup: %+v %v", rep, err)
	}
	_ = backend.Data
}

// With the default 1 MiB average chunk, a 10 GB database must stay under
// about 20,000 objects: at least 512 KiB per object on average.
func TestDefaultChunkSizeKeepsObjectCountLow(t *testing.T) {
	r, dir := newRepo(t, InitOptions{ChunkAvgBits: DefaultChunkAvgBits})
	data := text(7, 48<<20)
	snap := commit(t, r, "s", map[string][]byte{"a": data})
	n := 0
	_ = filepath.Walk(filepath.Join(dir, "data"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	if n != len(snap.Streams[0].Chunks) {
		t.Errorf("%d objects for %d chunks", n, len(snap.Streams[0].Chunks))
	}
	perObject := len(data) / n
	if perObject < 512<<10 {
		t.Errorf("%d objects for %d MiB: %d KiB per object, 10 GB would need %d objects", n, len(data)>>20, perObject>>10, (10<<30)/perObject)
	}
}

// The stronger level starts after strongAfter bytes and only while at most
// one byte in strongShare of what the session has seen is new.
func TestUseStrongThreshold(t *testing.T) {
	for _, c := range []struct {
		name        string
		seen, fresh int64 // seen includes the chunk (put counts it first); fresh does not
		chunk       int
		want        bool
	}{
		{"too early", 99, 0, 1, false},
		{"all new", 1000, 990, 10, false},
		{"a tenth new", 1000, 90, 10, true},
		{"just over a tenth", 1000, 91, 10, false},
		{"nothing new before", 5000, 0, 10, true},
	} {
		u := &Uploader{strongAfter: 100}
		u.seen.Store(c.seen)
		u.fresh.Store(c.fresh)
		if got := u.useStrong(c.chunk); got != c.want {
			t.Errorf("%s: useStrong after %d seen, %d new, chunk %d = %v, want %v", c.name, c.seen, c.fresh, c.chunk, got, c.want)
		}
	}
}

// A backup that is mostly unchanged compresses its new chunks at
// StrongLevel; a first backup (everything new) keeps the repository's
// level. Both read back byte for byte.
func TestNewChunksOfMostlyUnchangedBackupCompressStronger(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	// backup stores data as stream "t" in a session that may use the
	// strong level after 1 MiB.
	backup := func(data []byte) (*Session, *manifest.Snapshot) {
		t.Helper()
		s, err := r.NewSession(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.up.strongAfter = 1 << 20
		writeStream(t, s, "t", data)
		snap := &manifest.Snapshot{Time: time.Now(), Source: "s", Engine: "test"}
		if _, err := s.Commit(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		return s, snap
	}
	base := copyRows(1, 4<<20)
	s1, snap1 := backup(base)
	if n := s1.up.StrongChunks(); n != 0 {
		t.Errorf("first backup: %d chunks at the strong level, want 0 (everything is new)", n)
	}

	// The same rows plus 5 % new ones at the end.
	grown := append(append([]byte{}, base...), copyRows(2, 200<<10)...)
	s2, snap := backup(grown)
	if s2.up.NewChunks() == 0 || s2.up.StrongChunks() == 0 {
		t.Fatalf("second backup: %d new chunks, %d at the strong level; want some of each", s2.up.NewChunks(), s2.up.StrongChunks())
	}
	// What the new chunks would have taken at the repository's level.
	known := map[string]bool{}
	for _, c := range snap1.Streams[0].Chunks {
		known[c.ID] = true
	}
	var fastest int64
	for _, c := range snap.Streams[0].Chunks {
		if known[c.ID] {
			continue
		}
		data, err := r.LoadChunk(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		fastest += int64(len(r.encode(data)))
	}
	if added := s2.AddedBytes(); added >= fastest {
		t.Errorf("second backup added %d bytes; the repository's level would have stored %d: want fewer", added, fastest)
	}
	if got := readStream(t, r, snap.Streams[0]); !bytes.Equal(got, grown) {
		t.Error("stream of the second backup does not read back")
	}
}

// storedEncodings counts the data objects of a repository by their blob
// encoding flag.
func storedEncodings(t *testing.T, r *Repository, snap *manifest.Snapshot) map[byte]int {
	t.Helper()
	n := map[byte]int{}
	for _, st := range snap.Streams {
		for _, c := range st.Chunks {
			obj, err := r.be.Load(context.Background(), backend.Handle{Type: backend.Data, Name: c.ID})
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.key.Open(nil, obj)
			if err != nil {
				t.Fatal(err)
			}
			n[b[0]]++
		}
	}
	return n
}

// configVersion reads the format version a repository was written with.
func configVersion(t *testing.T, dir string) int {
	t.Helper()
	raw, err := local.New(dir).Load(context.Background(), backend.Handle{Type: backend.Config})
	if err != nil {
		t.Fatal(err)
	}
	var cf configFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	return cf.Version
}

// The column filter: chunks of tab-separated rows are stored column by
// column, read back byte for byte, and take less room than row by row; a
// repository made with NoColumns is version 2 (older releases open it) and
// holds no filtered object.
func TestColumnFilter(t *testing.T) {
	// rows as a table holds them: ids and timestamps that grow, a few
	// statuses, amounts
	rng := rand.New(rand.NewSource(7))
	var b bytes.Buffer
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for id := 1; b.Len() < 3<<20; id++ {
		fmt.Fprintf(&b, "%d\t%d\t%s\t%d.%02d\t%s\n", id, 1+rng.Intn(50000), []string{"new", "paid", "shipped", "delivered"}[rng.Intn(4)],
			rng.Intn(500), rng.Intn(100), t0.Add(time.Duration(id)*37*time.Second).Format("2006-01-02 15:04:05-07"))
	}
	rows := b.Bytes()
	sql := bytes.Repeat([]byte("CREATE TABLE public.t (id integer NOT NULL, note text);\n"), 20000)
	sizes := map[bool]int64{}
	for _, cols := range []bool{true, false} {
		r, dir := newRepo(t, InitOptions{NoColumns: !cols, ChunkAvgBits: 16})
		if got := r.Params().Columns; got != cols {
			t.Fatalf("Params().Columns = %v, want %v", got, cols)
		}
		want := 2
		if cols {
			want = 3
		}
		if v := configVersion(t, dir); v != want {
			t.Errorf("columns=%v: format version %d, want %d", cols, v, want)
		}
		snap := commit(t, r, "s", map[string][]byte{"rows": rows, "schema": sql})
		n := storedEncodings(t, r, snap)
		if cols && n[blobColumns] == 0 {
			t.Errorf("columns on: no object stored column by column (%v)", n)
		}
		if !cols && n[blobColumns] != 0 {
			t.Errorf("columns off: %d objects stored column by column", n[blobColumns])
		}
		for _, st := range snap.Streams {
			want := rows
			if st.Name == "schema" {
				want = sql
			}
			if got := readStream(t, r, st); !bytes.Equal(got, want) {
				t.Errorf("columns=%v: stream %s does not read back", cols, st.Name)
			}
		}
		if rep, err := r.Check(context.Background(), true, nil); err != nil || !rep.OK() {
			t.Errorf("columns=%v: check --read-data: %v %+v", cols, err, rep)
		}
		sizes[cols] = dirSize(t, filepath.Join(dir, "data"))
		r.Close()

		// It opens again with the same setting.
		r2, err := Open(context.Background(), local.New(dir), []byte("correct horse"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Params().Columns != cols {
			t.Errorf("reopened: Columns = %v, want %v", r2.Params().Columns, cols)
		}
		r2.Close()
	}
	// libzstd stores 14 % less here. The pure-Go encoder's fastest level
	// gains less on these columns of random values (3 %; 18 % on the
	// bench's COPY text).
	gain := 10
	if !strings.HasPrefix(compress.Implementation, "libzstd") {
		gain = 2
	}
	if sizes[true] >= sizes[false]*int64(100-gain)/100 {
		t.Errorf("data stored column by column takes %d bytes against %d row by row: want at least %d %% less", sizes[true], sizes[false], gain)
	}
	if testing.Verbose() {
		t.Logf("stored %d bytes column by column, %d row by row", sizes[true], sizes[false])
	}
}

// A stream whose chunks the column filter declines (binary rows) stops
// trying it after maxDeclined chunks in a row, give or take the chunks
// already being encoded; a table's stream keeps it.
func TestColumnFilterGivesUpOnOtherStreams(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	u, err := r.NewUploader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	binary := make([]byte, 4<<20)
	rng.Read(binary)
	w := u.NewStream()
	if _, err := w.Write(binary); err != nil {
		t.Fatal(err)
	}
	chunks, _, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Wait(); err != nil {
		t.Fatal(err)
	}
	got := int(w.cols.declined.Load())
	if len(chunks) < 4*(maxDeclined+r.workers) {
		t.Fatalf("only %d chunks: too few for the test", len(chunks))
	}
	if got < maxDeclined || got > maxDeclined+r.workers+1 {
		t.Errorf("the filter was tried on %d of %d chunks of random bytes; want %d to %d", got, len(chunks), maxDeclined, maxDeclined+r.workers+1)
	}

	w2 := u.NewStream()
	if _, err := w2.Write(copyRows(5, 2<<20)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := w2.cols.declined.Load(); n >= maxDeclined {
		t.Errorf("a table's stream stopped trying the filter (%d declined in a row)", n)
	}
}

// lopsided compresses one given input to a few bytes and leaves everything
// else as it is: an encoder for which the column filter's form is worse.
type lopsided struct{ good []byte }

func (l lopsided) Append(dst, src []byte) ([]byte, error) {
	if bytes.Equal(src, l.good) {
		return append(dst, "tiny"...), nil
	}
	return append(dst, src...), nil
}

func (lopsided) Close() {}

// A filtered chunk that compresses less than 2:1 is compared with the chunk
// compressed as it is, and the smaller form is stored.
func TestColumnFilterFallsBackWhenWorse(t *testing.T) {
	r, _ := newRepo(t, InitOptions{})
	plain := copyRows(9, 64<<10)
	obj, outcome := r.encodeWith(lopsided{good: plain}, plain, filterTry)
	if outcome != notFiltered {
		t.Error("encodeWith reports the filter used, though its form compressed worse")
	}
	b, err := r.key.Open(nil, obj)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != blobZstd || string(b[1:]) != "tiny" {
		t.Fatalf("stored flag %d with %d bytes; want flag %d and the 4 bytes of the unfiltered form", b[0], len(b)-1, blobZstd)
	}
	// With a real encoder the same rows keep the filter.
	if _, outcome := r.encodeWith(r.enc, plain, filterTry); outcome != filtered {
		t.Error("the filter was not used for table rows")
	}
}

// textRows makes COPY text rows whose bytes are nearly all one long column
// of words: the column filter gains little on them.
func textRows(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	vocab := make([]string, 1024)
	for i := range vocab {
		w := make([]byte, 3+rng.Intn(8))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		vocab[i] = string(w)
	}
	var b bytes.Buffer
	for id := 1; b.Len() < n; id++ {
		fmt.Fprintf(&b, "%d\t", id)
		for k := range 60 {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(vocab[rng.Intn(len(vocab))])
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}

// itemRows makes COPY text rows of order lines: ids, references, small
// numbers and amounts, on which the column filter gains most (with ids of
// one width: klauspost's fastest level gains little on the first million).
func itemRows(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for id := 3000000; b.Len() < n; id++ {
		discount := "0.00"
		if rng.Intn(10) == 0 {
			discount = fmt.Sprintf("%d.%02d", rng.Intn(20), rng.Intn(100))
		}
		fmt.Fprintf(&b, "%d\t%d\t%d\t%d\t%d.%02d\t%s\n", id, 1+id/3, 1+rng.Intn(140000), 1+rng.Intn(5), rng.Intn(500), rng.Intn(100), discount)
	}
	return b.Bytes()[:n]
}

// A stream's first large chunk is a trial: where the column filter saves
// less than minFilterGain, the stream stores its chunks as they are (the
// filter would cost CPU at backup and restore for almost nothing); where it
// pays, it stays.
func TestColumnFilterTrial(t *testing.T) {
	r, _ := newRepo(t, InitOptions{ChunkAvgBits: 20})
	text, table := textRows(1, 24<<20), itemRows(2, 24<<20)
	for _, c := range []struct {
		name      string
		data      []byte
		keepsCols bool
	}{{"text", text, false}, {"table", table, true}} {
		snap := commit(t, r, c.name, map[string][]byte{c.name: c.data})
		chunks := len(snap.Streams[0].Chunks)
		if chunks < 4*(r.workers+1) {
			t.Fatalf("%s: only %d chunks: too few for the test", c.name, chunks)
		}
		n := storedEncodings(t, r, snap)
		t.Logf("%s: %d of %d chunks stored column by column (%d upload workers)", c.name, n[blobColumns], chunks, r.workers)
		if c.keepsCols && n[blobColumns] < chunks-2 {
			t.Errorf("%s: %d of %d chunks stored column by column, want all but the first and last at most", c.name, n[blobColumns], chunks)
		}
		// The chunks before the trial's chunk (the first of at least
		// trialMinLen) may be filtered, and the trial's chunk itself when
		// its filtered form is smaller; the chunks after it wait for its
		// verdict.
		first := 0
		for first < chunks && snap.Streams[0].Chunks[first].Len < trialMinLen {
			first++
		}
		if first == chunks {
			t.Fatalf("%s: no chunk of %d is long enough for a trial", c.name, chunks)
		}
		if limit := first + 1; !c.keepsCols && n[blobColumns] > limit {
			t.Errorf("%s: %d of %d chunks stored column by column after a trial that should find the filter not worth it (at most %d: the trial's chunk is number %d)",
				c.name, n[blobColumns], chunks, limit, first+1)
		}
		if got := readStream(t, r, snap.Streams[0]); !bytes.Equal(got, c.data) {
			t.Errorf("%s: stream does not read back", c.name)
		}
	}
	// A stream of small chunks is not tried: they are filtered (but for
	// the first and last, and one that compresses better row by row).
	small, _ := newRepo(t, InitOptions{ChunkAvgBits: 16})
	snap := commit(t, small, "text", map[string][]byte{"text": text[:2<<20]})
	if n, chunks := storedEncodings(t, small, snap)[blobColumns], len(snap.Streams[0].Chunks); 4*n < 3*chunks {
		t.Errorf("small chunks: %d of %d stored column by column, want at least three quarters", n, chunks)
	}
}
