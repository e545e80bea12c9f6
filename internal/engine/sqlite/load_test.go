package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
)

// batchSchema has tables whose loads span many batches: full batches,
// a tail of each power of two, batches ended early by large values, a
// table too wide for a full batch of 256 rows, a WITHOUT ROWID table and
// UNIQUE constraints (indexes filled during the load).
func batchSchema() []string {
	var wideCols, wideVals []string
	for i := range 200 {
		wideCols = append(wideCols, fmt.Sprintf("c%d", i))
		wideVals = append(wideVals, fmt.Sprintf("CASE WHEN (i + %d) %% 7 = 0 THEN NULL ELSE i * %d END", i, i+1))
	}
	return []string{
		`CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, r REAL, b BLOB, n ANY)`,
		`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3001)
		 INSERT INTO big SELECT i * 3, 'user' || i || '@example.com', i / 7.0,
		   CASE WHEN i % 5 = 0 THEN randomblob(i % 17) END,
		   CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN i WHEN 2 THEN 'text ' || i ELSE i * 1.5 END FROM c`,
		`CREATE TABLE wr (a TEXT, b INT, v TEXT UNIQUE, PRIMARY KEY (b, a)) WITHOUT ROWID`,
		`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)
		 INSERT INTO wr SELECT char(65 + i % 26), (i * 7919) % 1009, 'v' || i FROM c`,
		`CREATE TABLE gaps (x TEXT UNIQUE, y INT)`,
		`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 700)
		 INSERT INTO gaps (rowid, x, y) SELECT i * i, 'x' || i, i FROM c`,
		`DELETE FROM gaps WHERE y % 3 = 0`,
		`CREATE TABLE blobs (k INTEGER PRIMARY KEY, data BLOB, t TEXT)`,
		`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40)
		 INSERT INTO blobs SELECT i, randomblob(100000 + i), hex(randomblob(i * 1000)) FROM c`,
		`CREATE TABLE wide (` + strings.Join(wideCols, ", ") + `)`,
		`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 700)
		 INSERT INTO wide SELECT ` + strings.Join(wideVals, ", ") + ` FROM c`,
		`CREATE INDEX big_r ON big (r)`,
	}
}

func TestRoundTripManyBatches(t *testing.T) {
	if got := batchRows(201); got != 163 {
		t.Fatalf("batchRows(201) = %d, want 163", got)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, batchSchema()...)
	mem, res := backup(t, src)
	dst := filepath.Join(dir, "dst.db")
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name`,
		`SELECT id, email, r, b, n, typeof(n) FROM big ORDER BY id`,
		`SELECT * FROM wr ORDER BY b, a`,
		`SELECT rowid, * FROM gaps ORDER BY rowid`,
		`SELECT k, data, t FROM blobs ORDER BY k`,
		`SELECT rowid, * FROM wide ORDER BY rowid`,
		`SELECT count(*) FROM big INDEXED BY big_r WHERE r > 100`,
	} {
		want, got := query(t, src, q), query(t, dst, q)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: restored rows differ (%d rows in the source, %d restored)", q, len(want), len(got))
		}
	}
	checkRestored(t, dst, res.Tables)
}

// doublingReader gives every data stream twice over, so that inserts fail
// on a primary key or UNIQUE constraint part-way through a table.
type doublingReader struct{ *enginetest.Memory }

func (r *doublingReader) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	b := r.Bytes(s.Name)
	if s.Kind == manifest.KindData {
		b = append(append([]byte(nil), b...), b...)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestFailedInsertLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, batchSchema()...)
	mem, _ := backup(t, src)
	dst := filepath.Join(dir, "dst.db")
	err := New().Restore(context.Background(), &doublingReader{mem}, mustDSN(t, dst), engine.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "constraint failed") || !strings.Contains(err.Error(), "load table big") {
		t.Fatalf("restore of rows that break a constraint: %v", err)
	}
	if files := leftBehind(t, dir); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

// cancellingReader cancels the restore when it opens the data stream of
// the given table.
type cancellingReader struct {
	*enginetest.Memory
	table  string
	cancel context.CancelFunc
}

func (r *cancellingReader) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	if s.Kind == manifest.KindData && s.Table == r.table {
		r.cancel()
	}
	return r.Memory.Open(ctx, s)
}

func TestCancelledRestoreLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, batchSchema()...)
	mem, _ := backup(t, src)
	dst := filepath.Join(dir, "dst.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := New().Restore(ctx, &cancellingReader{Memory: mem, table: "wr", cancel: cancel}, mustDSN(t, dst), engine.RestoreOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: %v", err)
	}
	if files := leftBehind(t, dir); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

func TestInsertSQL(t *testing.T) {
	tb := table{Name: `t"q`, Rowid: true, Columns: []column{{Name: "a"}, {Name: "g", Hidden: 3}, {Name: "b c"}}}
	want := `INSERT INTO "t""q" (rowid, "a", "b c") VALUES (?, ?, ?), (?, ?, ?)`
	if got := insertSQL(tb, 2); got != want {
		t.Errorf("insertSQL = %s, want %s", got, want)
	}
	for _, c := range []struct{ n, want int }{{2, 1}, {3, 2}, {4, 2}, {5, 4}, {163, 128}, {256, 128}} {
		if got := prevPow2(c.n); got != c.want {
			t.Errorf("prevPow2(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
