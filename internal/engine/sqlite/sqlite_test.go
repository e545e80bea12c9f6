package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

func mustDSN(t *testing.T, p string) *dsn.DSN {
	t.Helper()
	d, err := dsn.Parse("sqlite:" + p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func execAll(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func query(t *testing.T, path, q string) [][]any {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func backup(t *testing.T, path string) (*enginetest.Memory, *engine.BackupResult) {
	t.Helper()
	mem := enginetest.NewMemory()
	res, err := New().Backup(context.Background(), mustDSN(t, path), engine.BackupOptions{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	mem.Finish(res, "sqlite")
	return mem, res
}

// richSchema uses every storage class and the schema features a restore
// must keep: rowid tables without an alias (rowids must survive), WITHOUT
// ROWID, AUTOINCREMENT, generated columns, triggers that must not fire on
// restore, views, indexes and the user_version.
var richSchema = []string{
	`PRAGMA user_version = 42`,
	`CREATE TABLE kinds (id INTEGER PRIMARY KEY AUTOINCREMENT, i INT, r REAL, t TEXT, b BLOB, n NUMERIC, d DATETIME, nul TEXT)`,
	`INSERT INTO kinds (i, r, t, b, n, d, nul) VALUES (9223372036854775807, 1.5e300, 'héllo ✓ 🎉', x'00ff10', 12.5, '2020-01-02 03:04:05', NULL),
	 (-9223372036854775808, -0.0, '', x'', 'text in numeric', 'not a date', 'NULL'), (0, 3.14159, 'tab	and
newline', zeroblob(3), 7, 1700000000, '')`,
	`DELETE FROM kinds WHERE id = 2`,
	`CREATE TABLE norowidalias (name TEXT, qty INT)`,
	`INSERT INTO norowidalias (rowid, name, qty) VALUES (10, 'a', 1), (20, 'b', 2), (5, 'c', 3)`,
	`CREATE TABLE wr (k1 TEXT, k2 INT, v TEXT, PRIMARY KEY (k1, k2)) WITHOUT ROWID`,
	`INSERT INTO wr VALUES ('b', 2, 'x'), ('a', 1, 'y'), ('a', 3, NULL)`,
	`CREATE TABLE gen (a INT, b INT GENERATED ALWAYS AS (a * 2) VIRTUAL, c INT GENERATED ALWAYS AS (a + 1) STORED)`,
	`INSERT INTO gen (a) VALUES (1), (2)`,
	`CREATE TABLE audit (msg TEXT)`,
	`CREATE TRIGGER kinds_ins AFTER INSERT ON kinds BEGIN INSERT INTO audit VALUES ('inserted ' || new.id); END`,
	`CREATE INDEX kinds_t ON kinds (t)`,
	`CREATE VIEW big AS SELECT id, i FROM kinds WHERE i > 0`,
	`CREATE TABLE empty (x TEXT)`,
	`CREATE TABLE "odd ""name""" ("col with space" TEXT)`,
	`INSERT INTO "odd ""name""" VALUES ('ok')`,
	// INTEGER PRIMARY KEY DESC is not the rowid (SQLite's quirk): its
	// rowids are their own and must survive too.
	`CREATE TABLE desckey (x INTEGER PRIMARY KEY DESC, y TEXT)`,
	`INSERT INTO desckey (rowid, x, y) VALUES (7, 10, 'a'), (3, 5, 'b'), (9, 1, 'c')`,
	// The query planner's statistics come back as they were, not
	// recomputed: one row is edited by hand, as tools that pin plans do.
	`ANALYZE`,
	`UPDATE sqlite_stat1 SET stat = '1000 10' WHERE idx = 'kinds_t'`,
}

func TestRoundTripRichSchema(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, res := backup(t, src)
	if len(res.Tables) != 8 {
		t.Fatalf("tables = %d, want 8 (%v)", len(res.Tables), res.Tables)
	}
	dst := filepath.Join(dir, "dst.db")
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SELECT id, i, r, t, b, n, d, nul, typeof(n), typeof(d), typeof(nul) FROM kinds ORDER BY id`,
		`SELECT rowid, * FROM norowidalias ORDER BY rowid`,
		`SELECT rowid, x, y FROM desckey ORDER BY rowid`,
		`SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx`,
		`SELECT tbl, idx, neq, nlt, ndlt, hex(sample) FROM sqlite_stat4 ORDER BY tbl, idx, rowid`,
		`SELECT rowid, id FROM kinds ORDER BY rowid`,
		`SELECT * FROM wr ORDER BY k1, k2`,
		`SELECT a, b, c FROM gen ORDER BY a`,
		`SELECT * FROM audit`,
		`SELECT * FROM big`,
		`SELECT name, seq FROM sqlite_sequence`,
		`SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name`,
		`PRAGMA user_version`,
		`SELECT * FROM "odd ""name"""`,
	} {
		want, got := query(t, src, q), query(t, dst, q)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\n source   %v\n restored %v", q, want, got)
		}
	}
	for _, q := range []string{`SELECT count(*) FROM sqlite_stat1 WHERE stat = '1000 10'`, `SELECT count(*) FROM sqlite_stat4`} {
		if n := query(t, dst, q)[0][0]; n == int64(0) {
			t.Errorf("%s: 0 rows in the restored database", q)
		}
	}
	checkRestored(t, dst, res.Tables)
	// Triggers must exist but not have fired during the load.
	if n := query(t, dst, `SELECT count(*) FROM audit`)[0][0]; n != int64(0) {
		t.Errorf("audit rows = %v: trigger fired during restore", n)
	}
	execAll(t, dst, `INSERT INTO kinds (i) VALUES (1)`)
	if n := query(t, dst, `SELECT id FROM kinds ORDER BY id DESC LIMIT 1`)[0][0]; n != int64(4) {
		t.Errorf("next AUTOINCREMENT id = %v, want 4 (sqlite_sequence restored)", n)
	}
}

func TestBackupIsByteStable(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	execAll(t, src, richSchema...)
	a, _ := backup(t, src)
	b, _ := backup(t, src)
	for _, st := range a.Manifest().Streams {
		if !bytes.Equal(a.Bytes(st.Name), b.Bytes(st.Name)) {
			t.Errorf("stream %s differs between two backups of unchanged data", st.Name)
		}
	}
}

func TestChecksumDetectsChange(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	execAll(t, src, richSchema...)
	_, res := backup(t, src)
	execAll(t, src, `UPDATE wr SET v = 'z' WHERE k1 = 'a' AND k2 = 1`)
	sums, err := New().Checksums(context.Background(), mustDSN(t, src), []string{"wr"}, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := (&manifest.Snapshot{Tables: res.Tables}).Table("wr")
	if len(sums) != 1 || sums[0].Rows != want.Rows || sums[0].Checksum == want.Checksum {
		t.Errorf("after an update: %v, before: %v", sums, want)
	}
}

func TestRestoreChosenTable(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, _ := backup(t, src)
	dst := filepath.Join(dir, "one.db")
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{Tables: []string{"wr"}}); err != nil {
		t.Fatal(err)
	}
	names := query(t, dst, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%' ORDER BY name`)
	if len(names) != 1 || names[0][0] != "wr" {
		t.Errorf("tables restored: %v", names)
	}
	// Only the chosen table's planner statistics come back.
	if got := query(t, dst, `SELECT DISTINCT tbl FROM sqlite_stat1`); len(got) != 1 || got[0][0] != "wr" {
		t.Errorf("sqlite_stat1 tables after restoring wr: %v", got)
	}
	err := New().Restore(context.Background(), mem, mustDSN(t, filepath.Join(dir, "x.db")), engine.RestoreOptions{Tables: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `table "nope" is not in snapshot`) {
		t.Errorf("unknown table: %v", err)
	}
}

func TestRestoreRefusesExistingTarget(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, _ := backup(t, src)
	dst := filepath.Join(dir, "dst.db")
	execAll(t, dst, `CREATE TABLE precious (x)`, `INSERT INTO precious VALUES (1)`)
	err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{})
	if !errors.Is(err, engine.ErrTargetNotEmpty) {
		t.Fatalf("restore over existing file: %v", err)
	}
	if n := query(t, dst, `SELECT count(*) FROM precious`)[0][0]; n != int64(1) {
		t.Fatal("existing target was touched")
	}
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{Clean: true}); err != nil {
		t.Fatal(err)
	}
	if n := query(t, dst, `SELECT count(*) FROM sqlite_master WHERE name = 'precious'`)[0][0]; n != int64(0) {
		t.Error("--clean kept the old content")
	}
}

// A restore that fails part-way leaves no target file behind.
func TestFailedRestoreLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, _ := backup(t, src)
	broken := &truncatingReader{Memory: mem}
	dst := filepath.Join(dir, "dst.db")
	err := New().Restore(context.Background(), broken, mustDSN(t, dst), engine.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("restore of a truncated stream: %v", err)
	}
	if files := leftBehind(t, dir); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

// checkRestored checks a restored database's integrity and that its
// checksums are the manifest's.
func checkRestored(t *testing.T, dst string, want []manifest.Table) {
	t.Helper()
	if got := query(t, dst, `PRAGMA integrity_check`); got[0][0] != "ok" {
		t.Errorf("integrity_check: %v", got)
	}
	p := progress.New("verify", io.Discard)
	sums, err := New().Checksums(context.Background(), mustDSN(t, dst), nil, engine.ChecksumOptions{Progress: p})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sums, want) {
		t.Errorf("checksums after restore:\n%v\nmanifest:\n%v", sums, want)
	}
	enginetest.CheckCounted(t, p, sums)
}

// leftBehind lists the files in dir other than src.db.
func leftBehind(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != "src.db" {
			out = append(out, e.Name())
		}
	}
	return out
}

type truncatingReader struct{ *enginetest.Memory }

func (r *truncatingReader) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	b := r.Bytes(s.Name)
	if s.Kind == manifest.KindData && len(b) > 3 {
		b = b[:len(b)-2]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestBadSource(t *testing.T) {
	dir := t.TempDir()
	notdb := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notdb, []byte("this is not a database, just some text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		filepath.Join(dir, "missing.db"): "does not exist",
		notdb:                            "is not a sqlite database",
		dir:                              "is a directory",
	}
	for path, want := range cases {
		_, err := New().Backup(context.Background(), mustDSN(t, path), engine.BackupOptions{}, enginetest.NewMemory())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("backup of %s: %v, want %q", path, err, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	for _, mode := range []string{"WAL", "DELETE"} {
		t.Run(mode, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src.db")
			execAll(t, src, `PRAGMA journal_mode = `+mode, `CREATE TABLE t (x)`, `INSERT INTO t VALUES (1)`)
			d := mustDSN(t, src)
			a, err := New().Fingerprint(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := New().Fingerprint(context.Background(), d)
			if a != b {
				t.Fatal("fingerprint changed without a write")
			}
			_, _ = backup(t, src) // reading must not change it
			if c, _ := New().Fingerprint(context.Background(), d); c != a {
				t.Fatal("fingerprint changed by a backup (read)")
			}
			execAll(t, src, `UPDATE t SET x = 2`)
			if c, _ := New().Fingerprint(context.Background(), d); c == a {
				t.Fatal("fingerprint unchanged after an UPDATE")
			}
		})
	}
}

func TestExportSQLLoadsIntoSQLite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, res := backup(t, src)
	var buf bytes.Buffer
	if err := New().ExportSQL(context.Background(), mem, &buf); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "fromsql.db")
	db, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(buf.String()); err != nil {
		t.Fatalf("load exported SQL: %v", err)
	}
	db.Close()
	sums, err := New().Checksums(context.Background(), mustDSN(t, dst), nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sums, res.Tables) {
		t.Errorf("checksums of SQL export:\n%v\nmanifest:\n%v", sums, res.Tables)
	}
	q := `SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx`
	if want, got := query(t, src, q), query(t, dst, q); !reflect.DeepEqual(want, got) {
		t.Errorf("planner statistics of the SQL export:\n source %v\n loaded %v", want, got)
	}
}

func TestRowsEncoding(t *testing.T) {
	vals := []any{nil, int64(-1), int64(1 << 62), 2.5, "", "x\x00y", []byte{}, []byte{0, 1, 255}}
	var e rowEncoder
	for _, v := range vals {
		if err := e.value(v); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]any, len(vals))
	d := newRowDecoder(bytes.NewReader(e.buf))
	if err := d.next(got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, vals) {
		t.Errorf("decoded %v, want %v", got, vals)
	}
	if err := d.next(got); !errors.Is(err, io.EOF) {
		t.Errorf("at end: %v", err)
	}
	if err := newRowDecoder(bytes.NewReader(e.buf[:len(e.buf)-1])).next(got); err == nil {
		t.Error("truncated row decoded without error")
	}
	if err := newRowDecoder(bytes.NewReader([]byte{9})).next(got[:1]); err == nil {
		t.Error("unknown tag decoded without error")
	}
}

// syncFile reports a file it cannot open for the fsync (the restore then
// fails rather than move an unsynced file into place), and syncs one it can.
func TestSyncFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "restored.db")
	if err := os.WriteFile(ok, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncFile(ok); err != nil {
		t.Fatalf("sync of a written file: %v", err)
	}
	if err := syncFile(filepath.Join(dir, "gone.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sync of a missing file: got %v, want a not-exist error", err)
	}
}

// TestImportNamesUnmappableColumns: a portable export whose column types
// SQLite has no type for is refused before the target is touched, naming
// each such column.
func TestImportNamesUnmappableColumns(t *testing.T) {
	target := filepath.Join(t.TempDir(), "never.db")
	bad := []engine.TableSchema{
		{Name: "ok", Columns: []engine.Column{{Name: "id", Type: "integer"}}},
		{Name: "x", Columns: []engine.Column{{Name: "c", Type: "interval"}, {Name: "d", Type: "point"}}},
	}
	err := New().Import(context.Background(), mustDSN(t, target), bad, nil, engine.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "x.c (interval), x.d (point)") {
		t.Errorf("import of unmappable columns: %v, want an error naming x.c (interval) and x.d (point)", err)
	}
	if _, serr := os.Stat(target); serr == nil {
		t.Errorf("the refused import created %s", target)
	}
}

// issue 18: restore --table T --clean into an existing database replaced
// the whole file with T alone. It must replace T only: the other tables
// keep their rows, a table the snapshot does not know survives, the
// database's user_version stays, and without --clean an existing T is
// refused while a missing one is added.
func TestTableCleanReplacesOnlyTheChosenTable(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	execAll(t, src, richSchema...)
	mem, res := backup(t, src)
	dst := filepath.Join(dir, "dst.db")
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	execAll(t, dst, `PRAGMA journal_mode = WAL`, `UPDATE wr SET v = 'changed'`, `PRAGMA user_version = 7`,
		`CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT)`, `INSERT INTO extra (note) VALUES ('a'), ('b'), ('c')`)
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{Tables: []string{"wr"}, Clean: true}); err != nil {
		t.Fatalf("restore --table wr --clean: %v", err)
	}
	got, err := New().Checksums(context.Background(), mustDSN(t, dst), nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gm := map[string]manifest.Table{}
	for _, g := range got {
		gm[g.Name] = g
	}
	for _, w := range res.Tables {
		if g := gm[w.Name]; g.Rows != w.Rows || g.Checksum != w.Checksum {
			t.Errorf("%s after restoring wr: rows=%d sum=%s, want rows=%d sum=%s", w.Name, g.Rows, g.Checksum, w.Rows, w.Checksum)
		}
	}
	if n := query(t, dst, `SELECT count(*) FROM extra`)[0][0]; n != int64(3) {
		t.Errorf("extra table: %v rows, want 3", n)
	}
	if v := query(t, dst, `PRAGMA user_version`)[0][0]; v != int64(7) {
		t.Errorf("user_version %v, want the target's 7", v)
	}
	if n := query(t, dst, `SELECT count(*) FROM sqlite_master WHERE name IN ('kinds_ins', 'kinds_t', 'big')`)[0][0]; n != int64(3) {
		t.Errorf("other tables' trigger, index or view lost: %v of 3", n)
	}
	err = New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{Tables: []string{"wr"}})
	if !errors.Is(err, engine.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "wr") {
		t.Fatalf("restore of an existing table without --clean: %v", err)
	}
	// A chosen table missing from the target is added without --clean.
	execAll(t, dst, `DROP TABLE gen`)
	if err := New().Restore(context.Background(), mem, mustDSN(t, dst), engine.RestoreOptions{Tables: []string{"gen"}}); err != nil {
		t.Fatalf("restore of a missing table: %v", err)
	}
	if n := query(t, dst, `SELECT count(*) FROM gen`)[0][0]; n != int64(2) {
		t.Errorf("gen: %v rows, want 2", n)
	}
	if n := query(t, dst, `SELECT count(*) FROM extra`)[0][0]; n != int64(3) {
		t.Errorf("extra table: %v rows, want 3", n)
	}
}
