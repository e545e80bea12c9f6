package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/rowsum"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// session opens one connection of snapdata's pool to d, closed when the
// test ends.
func session(t *testing.T, ctx context.Context, d *dsn.DSN) *sql.Conn {
	t.Helper()
	db, err := open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustDSN(t *testing.T, s string) *dsn.DSN {
	t.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loadScript runs a SQL script through the mariadb client (which handles
// DELIMITER) into database db.
func loadScript(t *testing.T, my *testsrv.My, db string, script []byte) {
	t.Helper()
	client, err := exec.LookPath("mariadb")
	if err != nil {
		if testsrv.Required() {
			t.Fatalf("mariadb client not installed")
		}
		t.Skip("mariadb client not installed")
	}
	cmd := exec.Command(client, "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host,
		"-P", fmt.Sprint(my.Port), "-u", my.User, db)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+my.Password)
	cmd.Stdin = bytes.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("loading script into %s: %v: %s", db, err, stderr.String())
	}
}

func newDB(t *testing.T, my *testsrv.My, name string) (string, *dsn.DSN) {
	t.Helper()
	d := mustDSN(t, my.CreateDatabase(t, name))
	return d.Database(), d
}

func loadChinook(t *testing.T, my *testsrv.My) *dsn.DSN {
	t.Helper()
	b, err := os.ReadFile("testdata/chinook/chinook_mysql.sql")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the script's own DROP/CREATE DATABASE and USE lines.
	b = regexp.MustCompile("(?m)^(DROP DATABASE|CREATE DATABASE|USE) .*$").ReplaceAll(b, nil)
	name, d := newDB(t, my, "chinook")
	loadScript(t, my, name, b)
	return d
}

func allBytes() string {
	var b strings.Builder
	for i := 0; i < 256; i++ {
		fmt.Fprintf(&b, "%02x", i)
	}
	return b.String()
}

func loadRich(t *testing.T, my *testsrv.My) *dsn.DSN {
	t.Helper()
	b, err := os.ReadFile("testdata/rich.sql")
	if err != nil {
		t.Fatal(err)
	}
	name, d := newDB(t, my, "rich")
	loadScript(t, my, name, b)
	my.Exec(t, name, "UPDATE rich SET data = X'"+allBytes()+"' WHERE fixed = 'k1'")
	return d
}

func backup(t *testing.T, e *Engine, src *dsn.DSN, jobs int) (*enginetest.Memory, *engine.BackupResult) {
	t.Helper()
	mem := enginetest.NewMemory()
	res, err := e.Backup(ctxT(t), src, engine.BackupOptions{Jobs: jobs, Logger: quiet}, mem)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	mem.Finish(res, e.Name())
	return mem, res
}

func checksums(t *testing.T, e *Engine, d *dsn.DSN) map[string]manifest.Table {
	t.Helper()
	p := progress.New("verify", io.Discard)
	list, err := e.Checksums(ctxT(t), d, nil, engine.ChecksumOptions{Progress: p})
	if err != nil {
		t.Fatalf("checksums of %s: %v", d.Database(), err)
	}
	enginetest.CheckCounted(t, p, list)
	out := map[string]manifest.Table{}
	for _, x := range list {
		x.Bytes = 0
		out[x.Name] = x
	}
	return out
}

func compareTables(t *testing.T, want []manifest.Table, got map[string]manifest.Table) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("table count: snapshot %d, database %d", len(want), len(got))
	}
	for _, w := range want {
		g, ok := got[w.Name]
		if !ok {
			t.Errorf("table %s missing", w.Name)
			continue
		}
		if g.Rows != w.Rows || g.Checksum != w.Checksum {
			t.Errorf("table %s: snapshot %d rows %s, database %d rows %s", w.Name, w.Rows, w.Checksum, g.Rows, g.Checksum)
		}
	}
}

// showCreateSet returns SHOW CREATE output of every object in db, with the
// AUTO_INCREMENT counter kept (it must survive too).
func showCreateSet(t *testing.T, d *dsn.DSN) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	db, err := open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := d.Database()
	out := map[string]string{}
	objs, err := names(ctx, db, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", name)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		kind, col := "TABLE", "Create Table"
		if o[1] == "VIEW" {
			kind, col = "VIEW", "Create View"
		}
		r, err := showCreate(ctx, db, "SHOW CREATE "+kind+" "+quoteIdent(o[0]))
		if err != nil {
			t.Fatal(err)
		}
		out[kind+" "+o[0]] = r[col].String
	}
	rs, _ := names(ctx, db, "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?", name)
	for _, o := range rs {
		r, err := showCreate(ctx, db, "SHOW CREATE "+o[0]+" "+quoteIdent(o[1]))
		if err != nil {
			t.Fatal(err)
		}
		col := "Create Procedure"
		if o[0] == "FUNCTION" {
			col = "Create Function"
		}
		out[o[0]+" "+o[1]] = r[col].String + " mode=" + r["sql_mode"].String
	}
	trs, _ := names(ctx, db, "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", name)
	for _, o := range trs {
		r, err := showCreate(ctx, db, "SHOW CREATE TRIGGER "+quoteIdent(o[0]))
		if err != nil {
			t.Fatal(err)
		}
		out["TRIGGER "+o[0]] = r["SQL Original Statement"].String + " mode=" + r["sql_mode"].String + " order=" + o[1]
	}
	evs, _ := names(ctx, db, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", name)
	for _, o := range evs {
		r, err := showCreate(ctx, db, "SHOW CREATE EVENT "+quoteIdent(o[0]))
		if err != nil {
			t.Fatal(err)
		}
		out["EVENT "+o[0]] = r["Create Event"].String
	}
	var dbcs string
	if err := db.QueryRowContext(ctx, "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, '/', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&dbcs); err != nil {
		t.Fatal(err)
	}
	out["DATABASE"] = dbcs
	return out
}

func compareSchemas(t *testing.T, a, b map[string]string) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("%s differs:\nsource:   %q\nrestored: %q", k, a[k], b[k])
		}
	}
}

func restoreInto(t *testing.T, e *Engine, my *testsrv.My, mem *enginetest.Memory, name string, opts engine.RestoreOptions) *dsn.DSN {
	t.Helper()
	target := mustDSN(t, my.DSN(fmt.Sprintf("%s_%d", name, time.Now().UnixNano()%1e9)))
	opts.Logger = quiet
	if err := e.Restore(ctxT(t), mem, target, opts); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return target
}

// restoreAndCompare restores a backup into a new database and checks that
// every table's rows and every object's SHOW CREATE equal the source's.
func restoreAndCompare(t *testing.T, e *Engine, my *testsrv.My, mem *enginetest.Memory, res *engine.BackupResult, src *dsn.DSN, name string, opts engine.RestoreOptions) *dsn.DSN {
	t.Helper()
	target := restoreInto(t, e, my, mem, name, opts)
	compareTables(t, res.Tables, checksums(t, e, target))
	compareSchemas(t, showCreateSet(t, src), showCreateSet(t, target))
	return target
}

func TestChinookRoundTrip(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := loadChinook(t, my)
	mem, res := backup(t, e, src, 2)
	if res.Meta["consistency"] != ModeFTWRL {
		t.Errorf("consistency = %q, want %q", res.Meta["consistency"], ModeFTWRL)
	}
	if len(res.Tables) != 11 {
		t.Fatalf("tables = %d, want 11", len(res.Tables))
	}
	var tracks manifest.Table
	for _, x := range res.Tables {
		if x.Name == "Track" {
			tracks = x
		}
	}
	if tracks.Rows != 3503 {
		t.Errorf("Track rows = %d, want 3503", tracks.Rows)
	}
	compareTables(t, res.Tables, checksums(t, e, src))
	// Checksums read on several connections (one view under a brief
	// global read lock, or each its own view for a private database) are
	// those of one connection, in the same order.
	one, err := e.Checksums(ctxT(t), src, nil, engine.ChecksumOptions{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []engine.ChecksumOptions{{Jobs: 4}, {Jobs: 4, Private: true}} {
		got, err := e.Checksums(ctxT(t), src, nil, o)
		if err != nil || !reflect.DeepEqual(got, one) {
			t.Errorf("checksums with %+v differ from one connection's (%v):\n%v\n%v", o, err, got, one)
		}
	}
	// A private database's checksums take no global read lock: they finish
	// while another session holds a table of another database locked for
	// writing, which FLUSH TABLES WITH READ LOCK would wait for.
	other, _ := newDB(t, my, "locked")
	my.Exec(t, other, "CREATE TABLE t (x int)")
	locker, err := sql.Open("mysql", my.DriverDSN(other))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	lc, err := locker.Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.ExecContext(ctxT(t), "LOCK TABLES t WRITE"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	priv, err := e.Checksums(short, src, nil, engine.ChecksumOptions{Jobs: 4, Private: true})
	cancel()
	if _, uerr := lc.ExecContext(ctxT(t), "UNLOCK TABLES"); uerr != nil {
		t.Fatal(uerr)
	}
	lc.Close()
	if err != nil || !reflect.DeepEqual(priv, one) {
		t.Errorf("private checksums beside a held table lock: %v", err)
	}
	target := restoreAndCompare(t, e, my, mem, res, src, "chinook_restored", engine.RestoreOptions{Jobs: 3})

	// Checksums are XXH3-128 row sums, named in the manifest.
	if res.Meta["checksum"] != "xxh3-128-sum" {
		t.Errorf("meta checksum = %q", res.Meta["checksum"])
	}
	for _, x := range res.Tables {
		if rowsum.AlgoOf(x.Checksum) != rowsum.XXH3 || !strings.HasPrefix(x.Checksum, "xxh3-128:") {
			t.Errorf("table %s checksum %q is not an xxh3-128 sum", x.Name, x.Checksum)
		}
	}
	// A snapshot taken before them (SHA-256 row sums) still verifies:
	// ChecksumsLike recomputes each table in its manifest's format, and
	// still catches a changed row.
	ctx := ctxT(t)
	old, err := e.checksums(ctx, src, nil, func(string) rowsum.Algo { return rowsum.SHA256 }, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range old {
		if rowsum.AlgoOf(x.Checksum) != rowsum.SHA256 {
			t.Fatalf("table %s: %q is not a SHA-256 sum", x.Name, x.Checksum)
		}
	}
	got, err := e.ChecksumsLike(ctx, target, old, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]manifest.Table{}
	for _, x := range got {
		byName[x.Name] = x
	}
	compareTables(t, old, byName)
	db, err := open(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE Track SET Name = CONCAT(Name, '!') WHERE TrackId = 7"); err != nil {
		t.Fatal(err)
	}
	got, err = e.ChecksumsLike(ctx, target, old, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(old) {
		t.Fatalf("%d tables, want %d", len(got), len(old))
	}
	for i := range old {
		if changed := got[i].Checksum != old[i].Checksum; changed != (old[i].Name == "Track") || got[i].Name != old[i].Name {
			t.Errorf("after changing one Track row, table %s (%s): checksum changed = %v", old[i].Name, got[i].Name, changed)
		}
	}
}

func TestRichRoundTrip(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := loadRich(t, my)
	mem, res := backup(t, e, src, 3)
	compareTables(t, res.Tables, checksums(t, e, src))
	target := restoreAndCompare(t, e, my, mem, res, src, "rich_restored", engine.RestoreOptions{Jobs: 2})

	ctx := ctxT(t)
	db, err := open(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Triggers did not fire on load: audit_log holds exactly the source rows.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_log").Scan(&n); err != nil || n != 7 {
		t.Errorf("audit_log rows = %d (%v), want 7", n, err)
	}
	var nulls, empties, literal int
	db.QueryRowContext(ctx, "SELECT SUM(name IS NULL), SUM(name = ''), SUM(name = 'NULL') FROM rich").Scan(&nulls, &empties, &literal)
	if nulls != 1 || empties != 1 || literal != 1 {
		t.Errorf("NULL/''/'NULL' = %d/%d/%d, want 1/1/1", nulls, empties, literal)
	}
	var data []byte
	var bits, flag int64
	var note, latin, upper string
	if err := db.QueryRowContext(ctx, "SELECT data, bits+0, flag+0, note, latin, name_upper FROM rich WHERE fixed = 'k1'").Scan(&data, &bits, &flag, &note, &latin, &upper); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", data) != allBytes() {
		t.Errorf("blob = %x", data)
	}
	if bits != 8191 || flag != 1 {
		t.Errorf("bits = %d, flag = %d", bits, flag)
	}
	if note != "line1\nline2\r\nend\ttab\\back\\\\slash" || latin != "café" || upper != "EMOJI 😀🎉 ÜNÏCÖDÉ" {
		t.Errorf("note %q latin %q upper %q", note, latin, upper)
	}
	// YEAR 0000 stays 0000 (printed as 0 it would load as 2000).
	var years string
	if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, y, z, b) ORDER BY id SEPARATOR ' ') FROM years").Scan(&years); err != nil {
		t.Fatal(err)
	}
	if want := "1:0000:00042:00000000000000000007 2:2024:00007:18446744073709551615 3:2000:00000:00000000000000000000 4:2069:99999 5"; years != want {
		t.Errorf("years = %q, want %q", years, want)
	}
	var next int64
	// Like mariadb-dump, the restored sequence continues after the values
	// the source had cached (never hands out a used value).
	if err := db.QueryRowContext(ctx, "SELECT NEXTVAL(seq_orders)").Scan(&next); err != nil || next < 1010 || next%5 != 0 {
		t.Errorf("sequence next = %d (%v), want >= 1010 in steps of 5", next, err)
	}
	var dbl int
	if err := db.QueryRowContext(ctx, "SELECT MAX(dbl) FROM a_top").Scan(&dbl); err != nil || dbl != 14 {
		t.Errorf("view a_top max = %d (%v), want 14", dbl, err)
	}
	// FLOAT keeps its single-precision value (the text protocol alone
	// would round it to 6 digits).
	var f1, f2 float64
	if err := db.QueryRowContext(ctx, "SELECT (SELECT f*1e0 FROM rich WHERE fixed = 'k6'), (SELECT f*1e0 FROM rich WHERE fixed = 'k7')").Scan(&f1, &f2); err != nil {
		t.Fatal(err)
	}
	if f1 != 16777215 || float32(f2) != float32(1.2345678) {
		t.Errorf("floats restored as %v, %v", f1, f2)
	}
	// An insert after restore uses the restored AUTO_INCREMENT and triggers.
	if _, err := db.ExecContext(ctx, "INSERT INTO rich (name, fixed) VALUES ('new', 'k9')"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_log").Scan(&n); err != nil || n != 8 {
		t.Errorf("audit_log rows after insert = %d (%v), want 8", n, err)
	}

	// Restoring only chosen tables.
	part := restoreInto(t, e, my, mem, "rich_part", engine.RestoreOptions{Jobs: 2, Tables: []string{"rich", "composite"}})
	got := checksums(t, e, part)
	if len(got) != 2 {
		t.Errorf("partial restore has tables %v", got)
	}
	var want []manifest.Table
	for _, x := range res.Tables {
		if x.Name == "rich" || x.Name == "composite" {
			want = append(want, x)
		}
	}
	compareTables(t, want, got)
}

func TestByteStableAndSplit(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "stable")
	my.Exec(t, name, "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(200))",
		"INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), 150) FROM seq_1_to_3000",
		"ANALYZE TABLE big")
	e := &Engine{SplitBytes: 64 << 10}
	m1, r1 := backup(t, e, src, 3)
	m2, r2 := backup(t, e, src, 2)
	s1, s2 := m1.Manifest().StreamsOf(manifest.KindData), m2.Manifest().StreamsOf(manifest.KindData)
	if len(s1) < 2 {
		t.Fatalf("big table not split: %d streams", len(s1))
	}
	if len(s1) != len(s2) {
		t.Fatalf("stream counts differ: %d vs %d", len(s1), len(s2))
	}
	for _, st := range m1.Manifest().Streams {
		if !bytes.Equal(m1.Bytes(st.Name), m2.Bytes(st.Name)) {
			t.Errorf("stream %s differs between two backups of unchanged data", st.Name)
		}
	}
	if r1.Tables[0] != r2.Tables[0] {
		t.Errorf("table summaries differ: %+v vs %+v", r1.Tables[0], r2.Tables[0])
	}
	if r1.Tables[0].Rows != 3000 {
		t.Errorf("rows = %d", r1.Tables[0].Rows)
	}
	// The split backup's checksum equals the unsplit recomputation.
	compareTables(t, r1.Tables, checksums(t, e, src))
	target := restoreInto(t, e, my, m1, "stable_restored", engine.RestoreOptions{Jobs: 2})
	compareTables(t, r1.Tables, checksums(t, e, target))
}

func TestSplitRange(t *testing.T) {
	for _, c := range []struct {
		lo, hi string
		parts  int64
		want   string
	}{
		{"1", "100", 4, "26 51 76"},
		{"-9223372036854775808", "9223372036854775807", 2, "0"},
		{"0", "18446744073709551615", 2, "9223372036854775808"},
		{"5", "6", 4, "6"},
	} {
		got, ok := splitRange(c.lo, c.hi, c.parts)
		if !ok || strings.Join(got, " ") != c.want {
			t.Errorf("splitRange(%s, %s, %d) = %v %v, want %s", c.lo, c.hi, c.parts, got, ok, c.want)
		}
	}
	if _, ok := splitRange("5", "5", 4); ok {
		t.Error("splitRange of one value should not split")
	}
}

func TestEncodeDecode(t *testing.T) {
	vals := [][]byte{nil, {}, []byte("NULL"), []byte(`\N`), []byte("a\tb\nc\rd\\e\x00f"), {0xff, 0x1a}}
	row := appendRow(nil, vals)
	if bytes.Count(row, []byte("\n")) != 1 {
		t.Fatalf("row has raw newlines: %q", row)
	}
	d := newRowDecoder(bytes.NewReader(append(row, row...)), len(vals))
	for k := 0; k < 2; k++ {
		got, err := d.next()
		if err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if (vals[i] == nil) != (got[i] == nil) || !bytes.Equal(vals[i], got[i]) {
				t.Errorf("field %d: %q, want %q", i, got[i], vals[i])
			}
		}
	}
	if _, err := d.next(); err != io.EOF {
		t.Errorf("want EOF, got %v", err)
	}
}

func TestStripDefiner(t *testing.T) {
	in := "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1"
	want := "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"
	if got := stripDefiner(in); got != want {
		t.Errorf("got %q", got)
	}
	in = "CREATE DEFINER=`a b`@`%` PROCEDURE `p`() BEGIN SELECT 1; END"
	if got := stripDefiner(in); got != "CREATE PROCEDURE `p`() BEGIN SELECT 1; END" {
		t.Errorf("got %q", got)
	}
}

func TestConsistencyUnderLoad(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "bank")
	my.Exec(t, name, "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, pad VARCHAR(200)) ENGINE=InnoDB",
		"INSERT INTO accounts SELECT seq, 1000, REPEAT('x', 200) FROM seq_1_to_400",
		"CREATE TABLE transfers (id INT AUTO_INCREMENT PRIMARY KEY, src INT, dst INT, amount INT)",
		"ANALYZE TABLE accounts")
	ctx := ctxT(t)
	wdb, err := open(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wdb.Close()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a, b := 1+(i*7919)%400, 1+(i*104729+13)%400
			if a == b {
				continue
			}
			tx, err := wdb.BeginTx(ctx, nil)
			if err != nil {
				return
			}
			_, err1 := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - 7 WHERE id = ?", a)
			_, err2 := tx.ExecContext(ctx, "INSERT INTO transfers (src, dst, amount) VALUES (?, ?, 7)", a, b)
			_, err3 := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + 7 WHERE id = ?", b)
			if err1 != nil || err2 != nil || err3 != nil {
				tx.Rollback()
				continue
			}
			if tx.Commit() == nil {
				n++
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	e := &Engine{SplitBytes: 16 << 10}
	var mem *enginetest.Memory
	var res *engine.BackupResult
	for i := 0; i < 3; i++ { // several backups while the writer runs
		mem, res = backup(t, e, src, 4)
	}
	close(stop)
	transfers := <-done
	if transfers < 10 {
		t.Fatalf("writer made only %d transfers", transfers)
	}
	if len(mem.Manifest().TableStreams("accounts")) < 2 {
		t.Errorf("accounts not split into ranges")
	}
	target := restoreInto(t, e, my, mem, "bank_restored", engine.RestoreOptions{Jobs: 4})
	tdb, err := open(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tdb.Close()
	var total, moved, count int64
	if err := tdb.QueryRowContext(ctx, "SELECT SUM(balance), COUNT(*) FROM accounts").Scan(&total, &count); err != nil {
		t.Fatal(err)
	}
	if err := tdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM transfers").Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if total != 400*1000 || count != 400 {
		t.Errorf("restored total = %d over %d accounts, want %d", total, count, 400*1000)
	}
	// The transfers table is from the same instant as the balances.
	var debit int64
	if err := tdb.QueryRowContext(ctx, "SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE src = 1").Scan(&debit); err != nil {
		t.Fatal(err)
	}
	var credit int64
	tdb.QueryRowContext(ctx, "SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE dst = 1").Scan(&credit)
	var bal1 int64
	tdb.QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&bal1)
	if bal1 != 1000-debit+credit {
		t.Errorf("account 1 balance %d does not match the restored transfers (%d out, %d in)", bal1, debit, credit)
	}
	t.Logf("writer committed %d transfers; snapshot holds %d", transfers, moved)
	compareTables(t, res.Tables, checksums(t, e, target))
}

func TestSourceSessionReadOnly(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "ro")
	my.Exec(t, name, "CREATE TABLE t (id INT PRIMARY KEY)")
	ctx := ctxT(t)
	db, err := open(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snap, err := takeSnapshot(ctx, db, 2, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.close()
	for i, c := range snap.conns {
		_, err := c.ExecContext(ctx, "INSERT INTO t VALUES (1)")
		if err == nil || mysqlErr(err) != 1792 {
			t.Errorf("worker %d: insert in the backup session: %v, want error 1792 (read-only transaction)", i, err)
		}
	}
}

func TestSingleTransactionFallback(t *testing.T) {
	my := testsrv.MariaDB(t)
	src := loadRich(t, my)
	name := src.Database()
	user := "noreload_" + fmt.Sprint(time.Now().UnixNano()%1e6)
	my.Exec(t, "", "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'pw-Secret-123'",
		"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, EXECUTE ON `"+name+"`.* TO '"+user+"'@'%'",
		"GRANT SELECT ON mysql.proc TO '"+user+"'@'%'")
	u := *src.URL
	u.User = urlUser(user, "pw-Secret-123")
	ro := mustDSN(t, u.String())
	e := New()
	mem, res := backup(t, e, ro, 4)
	if res.Meta["consistency"] != ModeSingle {
		t.Errorf("consistency = %q, want %q", res.Meta["consistency"], ModeSingle)
	}
	compareTables(t, res.Tables, checksums(t, e, src))
	// Without RELOAD the checksums fall back to one connection too.
	got, err := e.Checksums(ctxT(t), ro, nil, engine.ChecksumOptions{Jobs: 4})
	if err != nil {
		t.Fatalf("checksums without RELOAD: %v", err)
	}
	byName := map[string]manifest.Table{}
	for _, x := range got {
		x.Bytes = 0
		byName[x.Name] = x
	}
	compareTables(t, res.Tables, byName)
	restoreAndCompare(t, e, my, mem, res, src, "fallback_restored", engine.RestoreOptions{})
}

// waitNoConnections waits until the server has let go of every session of
// user: it ends a session a moment after the client has closed it, and a
// user limited to a few connections would be refused meanwhile.
func waitNoConnections(t *testing.T, my *testsrv.My, user string) {
	t.Helper()
	db, err := sql.Open("mysql", my.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of %s still open 10 s after the checksums returned", n, user)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Checksums open no more connections than there are tables: a user
// limited to 3 connections gets the checksums of a 2-table database with
// --jobs 8, aligned (FLUSH TABLES WITH READ LOCK) and private alike.
func TestChecksumsOpenAConnectionPerTableAtMost(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "two")
	my.Exec(t, name, "CREATE TABLE a (id INT PRIMARY KEY, v TEXT)", "INSERT INTO a VALUES (1, 'x'), (2, 'y')",
		"CREATE TABLE b (id INT PRIMARY KEY)", "INSERT INTO b VALUES (1)")
	user := "few_" + fmt.Sprint(time.Now().UnixNano()%1e6)
	my.Exec(t, "", "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'pw-Secret-123' WITH MAX_USER_CONNECTIONS 3",
		"GRANT ALL ON `"+name+"`.* TO '"+user+"'@'%'", "GRANT RELOAD ON *.* TO '"+user+"'@'%'")
	u := *src.URL
	u.User = urlUser(user, "pw-Secret-123")
	few := mustDSN(t, u.String())
	e := New()
	want := checksums(t, e, src)
	for _, o := range []engine.ChecksumOptions{{Jobs: 8}, {Jobs: 8, Private: true}} {
		got, err := e.Checksums(ctxT(t), few, nil, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if len(got) != 2 {
			t.Fatalf("%+v: %d tables, want 2", o, len(got))
		}
		for i := range got {
			got[i].Bytes = 0
		}
		compareTables(t, got, want)
		waitNoConnections(t, my, user)
	}
}

func TestBadInput(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	ctx := ctxT(t)
	name, src := newDB(t, my, "bad")
	my.Exec(t, name, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")

	u := *src.URL
	u.User = urlUser(my.User, "wrong-Password-42")
	_, err := e.Backup(ctx, mustDSN(t, u.String()), engine.BackupOptions{Logger: quiet}, enginetest.NewMemory())
	if err == nil {
		t.Fatal("backup with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-Password-42") || strings.Contains(err.Error(), my.Password) {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "Access denied") {
		t.Errorf("error does not say access was denied: %v", err)
	}

	_, err = e.Backup(ctx, mustDSN(t, my.DSN("no_such_db_x")), engine.BackupOptions{Logger: quiet}, enginetest.NewMemory())
	if err == nil || !strings.Contains(err.Error(), "no_such_db_x") || strings.Contains(err.Error(), my.Password) {
		t.Errorf("unknown database: %v", err)
	}

	mem, _ := backup(t, e, src, 1)
	err = e.Restore(ctx, mem, src, engine.RestoreOptions{Logger: quiet})
	if !errors.Is(err, engine.ErrTargetNotEmpty) {
		t.Errorf("restore into a non-empty database: %v, want ErrTargetNotEmpty", err)
	}
	err = e.Restore(ctx, mem, src, engine.RestoreOptions{Logger: quiet, Tables: []string{"t"}})
	if !errors.Is(err, engine.ErrTargetNotEmpty) {
		t.Errorf("restore of an existing table: %v, want ErrTargetNotEmpty", err)
	}
	// --clean replaces it.
	my.Exec(t, name, "INSERT INTO t VALUES (2)")
	if err := e.Restore(ctx, mem, src, engine.RestoreOptions{Logger: quiet, Clean: true}); err != nil {
		t.Fatalf("restore --clean: %v", err)
	}
	var n int
	db, _ := open(ctx, src, nil)
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Errorf("after clean restore: %d rows (%v), want 1", n, err)
	}
	if _, err := config(mustDSN(t, my.DSN("x")+"?bogus=1"), nil); err == nil {
		t.Error("unknown DSN parameter accepted")
	}
}

func TestExportSQLLoadsWithClient(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := loadRich(t, my)
	mem, res := backup(t, e, src, 2)
	var out bytes.Buffer
	if err := e.ExportSQL(ctxT(t), mem, &out); err != nil {
		t.Fatal(err)
	}
	name, target := newDB(t, my, "exported")
	loadScript(t, my, name, out.Bytes())
	compareTables(t, res.Tables, checksums(t, e, target))
	compareSchemas(t, showCreateSet(t, src), showCreateSet(t, target))

	// Chinook too (many rows, several INSERT batches).
	csrc := loadChinook(t, my)
	cmem, cres := backup(t, e, csrc, 2)
	out.Reset()
	if err := e.ExportSQL(ctxT(t), cmem, &out); err != nil {
		t.Fatal(err)
	}
	cname, ctarget := newDB(t, my, "chinook_exported")
	loadScript(t, my, cname, out.Bytes())
	compareTables(t, cres.Tables, checksums(t, e, ctarget))
}

func TestRowReaderAndImport(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := loadRich(t, my)
	mem, res := backup(t, e, src, 2)
	ctx := ctxT(t)
	schema, err := e.Schema(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	var rich engine.TableSchema
	for _, s := range schema {
		if s.Name == "rich" {
			rich = s
		}
	}
	col := map[string]int{}
	for i, c := range rich.Columns {
		col[c.Name] = i
	}
	if _, gen := col["name_upper"]; gen {
		t.Error("generated column in the portable schema")
	}
	var rows [][]any
	if err := e.ReadRows(ctx, mem, "rich", func(r []any) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Fatalf("rows = %d", len(rows))
	}
	r0 := rows[0]
	checks := map[string]any{"name": "emoji 😀🎉 ünïcödé", "flag": true, "bits": int64(8191), "amount": "12345678901234.123456",
		"latin": "café", "u": "18446744073709551615", "created": "2024-02-29 23:59:59.999999", "f": 1.5,
		"ts": "2024-01-01 12:00:00.123+00:00"}
	for c, want := range checks {
		if got := r0[col[c]]; fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
			t.Errorf("column %s = %#v, want %#v", c, got, want)
		}
	}
	if b, ok := r0[col["data"]].([]byte); !ok || fmt.Sprintf("%x", b) != allBytes() {
		t.Errorf("data = %#v", r0[col["data"]])
	}
	if rows[2][col["name"]] != "NULL" || rows[3][col["name"]] != nil || rows[1][col["name"]] != "" {
		t.Errorf("NULL/''/'NULL' decoded as %#v %#v %#v", rows[3][col["name"]], rows[1][col["name"]], rows[2][col["name"]])
	}

	name, target := newDB(t, my, "imported")
	_ = name
	readAll := func(table string, fn func([]any) error) error { return e.ReadRows(ctx, mem, table, fn) }
	if err := e.Import(ctx, target, schema, readAll, engine.RestoreOptions{Logger: quiet}); err != nil {
		t.Fatalf("import: %v", err)
	}
	db, err := open(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, x := range res.Tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(x.Name)).Scan(&n); err != nil || n != x.Rows {
			t.Errorf("imported %s: %d rows (%v), want %d", x.Name, n, err, x.Rows)
		}
	}
	var blob []byte
	var nm, ts string
	if err := db.QueryRowContext(ctx, "SELECT data, name, CAST(ts AS CHAR) FROM rich WHERE fixed = 'k1'").Scan(&blob, &nm, &ts); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", blob) != allBytes() || nm != "emoji 😀🎉 ünïcödé" || ts != "2024-01-01 12:00:00.123000" {
		t.Errorf("imported values: %x %q %q", blob, nm, ts)
	}
	// Each table was created without automatic statistics recalculation
	// for the load; it has its default back and its statistics computed.
	for _, x := range res.Tables {
		var createOpts string
		var statRows int64
		if err := db.QueryRowContext(ctx, "SELECT CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", x.Name).Scan(&createOpts); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(createOpts), "stats_auto_recalc") {
			t.Errorf("imported %s has options %q, want STATS_AUTO_RECALC at its default", x.Name, createOpts)
		}
		if err := db.QueryRowContext(ctx, "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = DATABASE() AND table_name = ?", x.Name).Scan(&statRows); err != nil || (x.Rows > 0 && statRows == 0) {
			t.Errorf("statistics of imported %s: n_rows = %d (%v), want about %d (ANALYZE TABLE not run?)", x.Name, statRows, err, x.Rows)
		}
	}
	// A failed import does the same for the table it was loading.
	_, failed := newDB(t, my, "import_failed")
	failing := func(table string, fn func([]any) error) error {
		if table == "rich" {
			return errors.New("injected read failure")
		}
		return readAll(table, fn)
	}
	if err := e.Import(ctx, failed, schema, failing, engine.RestoreOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "table rich") {
		t.Errorf("import with a failing reader: %v, want the injected error naming table rich", err)
	}
	var createOpts string
	if err := db.QueryRowContext(ctx, "SELECT CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'rich'", failed.Database()).Scan(&createOpts); err != nil {
		t.Fatalf("reading the options of rich after the failed import: %v", err)
	}
	if strings.Contains(strings.ToLower(createOpts), "stats_auto_recalc") {
		t.Errorf("after a failed import rich has options %q, want STATS_AUTO_RECALC back at its default", createOpts)
	}

	if err := e.Import(ctx, target, schema, readAll, engine.RestoreOptions{Logger: quiet}); !errors.Is(err, engine.ErrTargetNotEmpty) {
		t.Errorf("second import: %v, want ErrTargetNotEmpty", err)
	}
	bad := []engine.TableSchema{{Name: "x", Columns: []engine.Column{{Name: "c", Type: "interval"}}}}
	if err := e.Import(ctx, target, bad, readAll, engine.RestoreOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "x.c (interval)") {
		t.Errorf("unmappable column: %v", err)
	}
}

func TestScratchAndDatabases(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	ctx := ctxT(t)
	server := mustDSN(t, my.DSN(""))
	d, err := e.CreateScratch(ctx, server, "scratch_x1")
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.Databases(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range list {
		if n == "scratch_x1" {
			found = true
		}
		if systemDatabases[n] {
			t.Errorf("system database %s listed", n)
		}
	}
	if !found {
		t.Errorf("scratch database not listed: %v", list)
	}
	if err := e.DropScratch(ctx, d); err != nil {
		t.Fatal(err)
	}
	list, _ = e.Databases(ctx, server)
	for _, n := range list {
		if n == "scratch_x1" {
			t.Error("scratch database still there")
		}
	}
	if err := e.DropScratch(ctx, mustDSN(t, my.DSN("mysql"))); err == nil {
		t.Error("dropping mysql allowed")
	}
	_ = sql.ErrNoRows
}

func urlUser(u, p string) *url.Userinfo { return url.UserPassword(u, p) }

// failingSink fails the data stream of one table after some bytes.
type failingSink struct {
	*enginetest.Memory
	table string
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n > 1000 {
		return 0, errors.New("disk full (injected)")
	}
	return len(p), nil
}
func (w *failingWriter) Close() error { return nil }

func (f failingSink) Create(ctx context.Context, s manifest.Stream) (engine.StreamWriter, error) {
	if s.Table == f.table {
		return &failingWriter{}, nil
	}
	return f.Memory.Create(ctx, s)
}

func TestWorkerErrorNamesTableAndChecksumsCatchChanges(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "failing")
	my.Exec(t, name, "CREATE TABLE a (id INT PRIMARY KEY, v TEXT)", "CREATE TABLE b_victim (id INT PRIMARY KEY, v TEXT)",
		"INSERT INTO a SELECT seq, REPEAT('a', 100) FROM seq_1_to_200",
		"INSERT INTO b_victim SELECT seq, REPEAT('b', 100) FROM seq_1_to_200")
	e := New()
	_, err := e.Backup(ctxT(t), src, engine.BackupOptions{Jobs: 2, Logger: quiet}, failingSink{enginetest.NewMemory(), "b_victim"})
	if err == nil || !strings.Contains(err.Error(), "b_victim") || !strings.Contains(err.Error(), "injected") {
		t.Errorf("backup with a failing stream: %v; want an error naming table b_victim", err)
	}
	before := checksums(t, e, src)
	my.Exec(t, name, "UPDATE a SET v = 'changed' WHERE id = 150")
	after := checksums(t, e, src)
	if before["a"].Checksum == after["a"].Checksum || before["b_victim"] != after["b_victim"] {
		t.Errorf("checksums: before %v after %v", before, after)
	}
}
