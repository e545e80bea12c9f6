package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/rowsum"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// randomRows returns COPY-like rows of varied lengths (short ones, ones
// around XXH3's 16/128/240-byte thresholds and long ones).
func randomRows(r *rand.Rand, n int) [][]byte {
	rows := make([][]byte, n)
	for i := range rows {
		var l int
		switch r.IntN(4) {
		case 0:
			l = r.IntN(20)
		case 1:
			l = 100 + r.IntN(160)
		case 2:
			l = r.IntN(2000)
		default:
			l = r.IntN(70000)
		}
		b := make([]byte, l+1)
		for j := 0; j < l; j++ {
			b[j] = byte('a' + r.IntN(26))
		}
		b[l] = '\n'
		rows[i] = b
	}
	return rows
}

// writeSplit writes data to rs in pieces of random length.
func writeSplit(r *rand.Rand, rs *rowSum, data []byte) {
	for len(data) > 0 {
		n := 1 + r.IntN(min(len(data), 100000))
		if r.IntN(3) == 0 {
			n = min(len(data), 1+r.IntN(8))
		}
		rs.Write(data[:n]) //nolint:errcheck // never fails
		data = data[n:]
	}
	rs.finish()
}

func TestRowSumXXH3StreamingMatchesOneShot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rows := randomRows(r, 400)
	var hi, lo uint64
	for _, row := range rows {
		h := xxh3.Hash128(row)
		var c uint64
		lo, c = bits.Add64(lo, h.Lo, 0)
		hi, _ = bits.Add64(hi, h.Hi, c)
	}
	want := fmt.Sprintf("xxh3-128:%016x%016x", hi, lo)
	all := bytes.Join(rows, nil)
	for i := 0; i < 5; i++ {
		rs := newRowSum()
		writeSplit(r, rs, all)
		if got := rs.String(); got != want || rs.Rows != int64(len(rows)) || rs.bytes != int64(len(all)) {
			t.Fatalf("split writes: %s rows=%d bytes=%d, want %s rows=%d", got, rs.Rows, rs.bytes, want, len(rows))
		}
	}
	// Order independence and merging of parts.
	shuffled := append([][]byte(nil), rows...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	a, b := newRowSum(), newRowSum()
	writeSplit(r, a, bytes.Join(shuffled[:150], nil))
	writeSplit(r, b, bytes.Join(shuffled[150:], nil))
	a.add(b)
	if a.String() != want || a.Rows != int64(len(rows)) {
		t.Fatalf("merged shuffled parts: %s, want %s", a.String(), want)
	}
	// A changed, missing or duplicated row changes the sum.
	changed := append([][]byte(nil), rows...)
	changed[7] = append([]byte("x"), changed[7]...)
	for name, rs := range map[string][][]byte{"changed": changed, "missing": rows[1:], "duplicated": append(rows, rows[3])} {
		s := newRowSum()
		writeSplit(r, s, bytes.Join(rs, nil))
		if s.String() == want {
			t.Errorf("%s row not detected", name)
		}
	}
}

func TestRowSumSHA256Unchanged(t *testing.T) {
	// The old format: sum modulo 2^256 of the SHA-256 of each row, 64 hex
	// digits, no prefix.
	r := rand.New(rand.NewPCG(3, 4))
	rows := randomRows(r, 200)
	var sum [4]uint64
	for _, row := range rows {
		d := sha256.Sum256(row)
		var carry uint64
		for i := 3; i >= 0; i-- {
			var v uint64
			for j := 0; j < 8; j++ {
				v = v<<8 | uint64(d[i*8+j])
			}
			sum[i], carry = bits.Add64(sum[i], v, carry)
		}
	}
	want := fmt.Sprintf("%016x%016x%016x%016x", sum[0], sum[1], sum[2], sum[3])
	rs := newRowSumAlgo(rowsum.SHA256)
	writeSplit(r, rs, bytes.Join(rows, nil))
	if rs.String() != want {
		t.Fatalf("sha256 sum %s, want %s", rs.String(), want)
	}
	if rowsum.AlgoOf(want) != rowsum.SHA256 || rowsum.AlgoOf(newRowSum().String()) != rowsum.XXH3 {
		t.Fatalf("format detection")
	}
	if _, err := hex.DecodeString(want); err != nil || len(want) != 64 {
		t.Fatalf("old format is not 64 hex digits: %q", want)
	}
}

func TestBlockWheresGrid(t *testing.T) {
	const bs = 8192
	// Unsplit below the threshold or with one block.
	if w := blockWheres(1, 10<<20, 1<<20); len(w) != 1 || w[0] != "" {
		t.Errorf("one block: %v", w)
	}
	if w := blockWheres(100, 100*bs, 1<<30); len(w) != 1 || w[0] != "" {
		t.Errorf("below threshold: %v", w)
	}
	// 64 KiB threshold, heap only: 8-block parts.
	w := blockWheres(41, 41*bs, 64<<10)
	want := []string{"ctid < '(8,0)'::tid", "ctid >= '(8,0)'::tid AND ctid < '(16,0)'::tid",
		"ctid >= '(16,0)'::tid AND ctid < '(24,0)'::tid", "ctid >= '(24,0)'::tid AND ctid < '(32,0)'::tid",
		"ctid >= '(32,0)'::tid AND ctid < '(40,0)'::tid", "ctid >= '(40,0)'::tid"}
	if strings.Join(w, "|") != strings.Join(want, "|") {
		t.Errorf("grid:\n%v\nwant\n%v", w, want)
	}
	// Growing the table keeps every boundary but the last part's.
	w2 := blockWheres(60, 60*bs, 64<<10)
	for i := 0; i < len(w)-1; i++ {
		if w2[i] != w[i] {
			t.Errorf("part %d moved after growth: %s -> %s", i, w[i], w2[i])
		}
	}
	// Half the data in TOAST: parts of half as many blocks.
	if w := blockWheres(40, 80*bs, 64<<10); len(w) != 10 {
		t.Errorf("toasted table: %d parts, want 10: %v", len(w), w)
	}
	// At most 4096 parts.
	if w := blockWheres(1<<24, (1<<24)*bs, 1); len(w) > 4096 {
		t.Errorf("%d parts", len(w))
	}
}

func tableStreamsEqual(t *testing.T, a, b interface {
	Bytes(string) []byte
	Manifest() *manifest.Snapshot
}, table string, upto int) int {
	t.Helper()
	sa, sb := a.Manifest().TableStreams(table), b.Manifest().TableStreams(table)
	same := 0
	for i := 0; i < upto && i < len(sa) && i < len(sb); i++ {
		if sa[i].Name == sb[i].Name && bytes.Equal(a.Bytes(sa[i].Name), b.Bytes(sb[i].Name)) {
			same++
		}
	}
	return same
}

func TestCtidSplitWithoutKey(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "ctidsplit")
	exec1(t, src, `CREATE TABLE heap (a int, b text, c bytea);
INSERT INTO heap SELECT i % 97, md5(i::text) || repeat('x', i % 50), CASE WHEN i % 7 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END
FROM generate_series(1, 6000) i;
INSERT INTO heap SELECT 1, 'dup', NULL FROM generate_series(1, 5);
CREATE TABLE wide (id int, doc text);
INSERT INTO wide SELECT i, repeat(md5(i::text), 200) FROM generate_series(1, 200) i;
CREATE TABLE nocols (); INSERT INTO nocols SELECT FROM generate_series(1, 3);
CREATE TABLE genonly (g int GENERATED ALWAYS AS (7) STORED); INSERT INTO genonly SELECT FROM generate_series(1, 2);`)
	exec1(t, src, "ANALYZE heap") // no VACUUM: appended rows go to the end of the heap
	exec1(t, src, "VACUUM ANALYZE wide")
	// The plan of a part is a TID Range Scan, not a sequential scan.
	if plan := query[string](t, src, `EXPLAIN (COSTS OFF) SELECT a FROM ONLY public.heap WHERE ctid >= '(2,0)'::tid AND ctid < '(4,0)'::tid`); !strings.Contains(plan, "Tid Range Scan") {
		t.Errorf("plan of a TID range part: %s", plan)
	}
	e := New()
	e.SplitThreshold = 64 << 10
	m1, r1 := backupMem(t, e, src, 2)
	parts := m1.Manifest().TableStreams("public.heap")
	if len(parts) < 4 {
		t.Fatalf("table without primary key split into %d parts", len(parts))
	}
	if r1.Meta["row_order"] != "key" || r1.Meta["checksum"] != "xxh3-128-sum" {
		t.Errorf("meta %v", r1.Meta)
	}
	for _, tb := range r1.Tables {
		if !strings.HasPrefix(tb.Checksum, "xxh3-128:") {
			t.Errorf("table %s checksum %q has no format prefix", tb.Name, tb.Checksum)
		}
		if want := map[string]int64{"public.heap": 6005, "public.nocols": 3, "public.genonly": 2}[tb.Name]; want != 0 && tb.Rows != want {
			t.Errorf("table %s: %d rows, want %d", tb.Name, tb.Rows, want)
		}
	}
	dst := newDB(t, pg, "ctidsplit_restored")
	restoreTo(t, e, m1, dst, engine.RestoreOptions{Jobs: 2, Clean: true})
	compareChecksums(t, e, r1.Tables, dst)
	if n := query[int64](t, dst, "SELECT sum(g) FROM genonly"); n != 14 {
		t.Errorf("generated-only table restored with sum %d", n)
	}

	// A second backup of the unchanged tables gives the same bytes.
	m2, _ := backupMem(t, e, src, 1)
	sameStreams(t, m1, m2)

	// Appending rows changes only the last part (and adds parts after it).
	// The new rows are longer than any old one: PostgreSQL puts a new row
	// into the free space left in an earlier page when it fits there (the
	// free space map records what a bulk load leaves over), which would
	// change earlier parts too.
	exec1(t, src, "INSERT INTO heap SELECT i, md5(i::text) || repeat('y', 60), NULL FROM generate_series(1, 300) i")
	m3, r3 := backupMem(t, e, src, 2)
	if n := len(m3.Manifest().TableStreams("public.heap")); n < len(parts) {
		t.Fatalf("after appending: %d parts, before %d", n, len(parts))
	}
	if same := tableStreamsEqual(t, m1, m3, "public.heap", len(parts)-1); same != len(parts)-1 {
		t.Errorf("after appending, only %d of the first %d parts are unchanged", same, len(parts)-1)
	}
	dst3 := newDB(t, pg, "ctidsplit_restored3")
	restoreTo(t, e, m3, dst3, engine.RestoreOptions{Jobs: 2, Clean: true})
	compareChecksums(t, e, r3.Tables, dst3)
}

func TestPhysicalOrderForAllTables(t *testing.T) {
	// With RowOrder "physical", tables with a primary key are read in heap
	// order and split on TID ranges too.
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	e.SplitThreshold = 1
	mem, res := backupMemWith(t, e, src, engine.BackupOptions{Jobs: 2, RowOrder: engine.RowOrderPhysical})
	if res.Meta["row_order"] != "physical" {
		t.Errorf("row_order %q", res.Meta["row_order"])
	}
	if len(mem.Manifest().TableStreams("app.events_2023")) < 2 {
		t.Errorf("app.events_2023 not split on TID ranges")
	}
	dst := newDB(t, pg, "rich_physical")
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2, Clean: true})
	compareChecksums(t, e, res.Tables, dst)
}

func TestOldChecksumFormatStillVerifies(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	old := New()
	old.sum = rowsum.SHA256 // a snapshot taken before xxh3-128 sums
	mem, res := backupMem(t, old, src, 2)
	for _, tb := range res.Tables {
		if len(tb.Checksum) != 64 || strings.Contains(tb.Checksum, ":") {
			t.Fatalf("old-format checksum of %s: %q", tb.Name, tb.Checksum)
		}
	}
	e := New()
	dst := newDB(t, pg, "rich_oldsum")
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2, Clean: true})
	ctx := context.Background()
	got, err := e.ChecksumsLike(ctx, dst, res.Tables, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gm := map[string]manifest.Table{}
	for _, g := range got {
		gm[g.Name] = g
	}
	for _, w := range res.Tables {
		if g := gm[w.Name]; g.Checksum != w.Checksum || g.Rows != w.Rows {
			t.Errorf("table %s: recomputed %s/%d, snapshot %s/%d", w.Name, g.Checksum, g.Rows, w.Checksum, w.Rows)
		}
	}
	// A new snapshot of the same data: new format, verifies too.
	_, res2 := backupMem(t, e, src, 2)
	got2, err := e.ChecksumsLike(ctx, dst, res2.Tables, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g2 := map[string]manifest.Table{}
	for _, g := range got2 {
		g2[g.Name] = g
	}
	for _, w := range res2.Tables {
		if g2[w.Name].Checksum != w.Checksum {
			t.Errorf("table %s: new format %s, recomputed %s", w.Name, w.Checksum, g2[w.Name].Checksum)
		}
	}
	// A changed row is detected in both formats.
	exec1(t, dst, "UPDATE app.nopk SET b = 'y' WHERE a = 2")
	for name, want := range map[string][]manifest.Table{"old": res.Tables, "new": res2.Tables} {
		got, err := e.ChecksumsLike(ctx, dst, want, engine.ChecksumOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.Name != "app.nopk" {
				continue
			}
			for _, w := range want {
				if w.Name == g.Name && w.Checksum == g.Checksum {
					t.Errorf("%s format: changed row in app.nopk not detected (%s)", name, g.Checksum)
				}
			}
		}
	}
}

// BenchmarkRowSum compares the two checksum formats on COPY-like rows of
// about 110 bytes, written in 256 KiB pieces as Backup writes them.
func BenchmarkRowSum(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var buf bytes.Buffer
	for buf.Len() < 4<<20 {
		l := 60 + r.IntN(100)
		for j := 0; j < l; j++ {
			buf.WriteByte(byte('a' + r.IntN(26)))
		}
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	for _, a := range []rowsum.Algo{rowsum.SHA256, rowsum.XXH3} {
		b.Run(a.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				rs := newRowSumAlgo(a)
				for p := data; len(p) > 0; {
					n := min(len(p), 256<<10)
					rs.Write(p[:n]) //nolint:errcheck // never fails
					p = p[n:]
				}
				rs.finish()
			}
		})
	}
}
