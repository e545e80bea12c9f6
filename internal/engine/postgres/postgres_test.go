package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func mustDSN(t *testing.T, s string) *dsn.DSN {
	t.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// newDB creates an empty database and returns its DSN.
func newDB(t *testing.T, pg *testsrv.PG, name string) *dsn.DSN {
	t.Helper()
	return mustDSN(t, pg.CreateDatabase(t, name))
}

// psql runs psql with a script file against d.
func psql(t *testing.T, pg *testsrv.PG, d *dsn.DSN, file string) {
	t.Helper()
	u, env, cleanup, err := pgDumpConn(d)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", u, "-f", file)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql -f %s: %v\n%s", file, err, out)
	}
}

func loadChinook(t *testing.T, pg *testsrv.PG) *dsn.DSN {
	t.Helper()
	b, err := os.ReadFile("testdata/chinook_postgresql.sql")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`\c chinook;`))
	if i < 0 {
		t.Fatal("chinook script has no \\c chinook")
	}
	f := filepath.Join(t.TempDir(), "chinook.sql")
	if err := os.WriteFile(f, b[i+len(`\c chinook;`):], 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDB(t, pg, "chinook")
	psql(t, pg, d, f)
	return d
}

func loadRich(t *testing.T, pg *testsrv.PG) *dsn.DSN {
	t.Helper()
	d := newDB(t, pg, "rich")
	psql(t, pg, d, "testdata/rich.sql")
	return d
}

func backupMem(t *testing.T, e *Engine, src *dsn.DSN, jobs int) (*enginetest.Memory, *engine.BackupResult) {
	t.Helper()
	return backupMemWith(t, e, src, engine.BackupOptions{Jobs: jobs})
}

// sameStreams checks that two backups of unchanged data wrote the same
// streams with the same bytes.
func sameStreams(t *testing.T, m1, m2 *enginetest.Memory) {
	t.Helper()
	if len(m1.Manifest().Streams) != len(m2.Manifest().Streams) {
		t.Fatalf("stream count differs: %d vs %d", len(m1.Manifest().Streams), len(m2.Manifest().Streams))
	}
	for _, st := range m1.Manifest().Streams {
		if !bytes.Equal(m1.Bytes(st.Name), m2.Bytes(st.Name)) {
			t.Errorf("stream %s differs between two backups of unchanged data", st.Name)
		}
	}
}

func backupMemWith(t *testing.T, e *Engine, src *dsn.DSN, opts engine.BackupOptions) (*enginetest.Memory, *engine.BackupResult) {
	t.Helper()
	mem := enginetest.NewMemory()
	opts.Logger = testLogger(t)
	res, err := e.Backup(context.Background(), src, opts, mem)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	mem.Finish(res, dsn.Postgres)
	return mem, res
}

func restoreTo(t *testing.T, e *Engine, mem *enginetest.Memory, target *dsn.DSN, opts engine.RestoreOptions) {
	t.Helper()
	opts.Logger = testLogger(t)
	if err := e.Restore(context.Background(), mem, target, opts); err != nil {
		t.Fatalf("restore: %v", err)
	}
}

// compareChecksums checks the live target against the manifest.
func compareChecksums(t *testing.T, e *Engine, want []manifest.Table, target *dsn.DSN) {
	t.Helper()
	got, err := e.Checksums(context.Background(), target, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatalf("checksums: %v", err)
	}
	gm := map[string]manifest.Table{}
	for _, g := range got {
		gm[g.Name] = g
	}
	if len(got) != len(want) {
		t.Errorf("target has %d tables, snapshot %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := gm[w.Name]
		if !ok {
			t.Errorf("table %s missing in target", w.Name)
			continue
		}
		if g.Rows != w.Rows || g.Checksum != w.Checksum {
			t.Errorf("table %s: target rows=%d sum=%s, snapshot rows=%d sum=%s", w.Name, g.Rows, g.Checksum, w.Rows, w.Checksum)
		}
	}
}

var dumpNoise = regexp.MustCompile(`(?m)^(--.*|\\(un)?restrict .*|)\n`)

// schemaDump is pg_dump --schema-only without comments and blank lines.
func schemaDump(t *testing.T, pg *testsrv.PG, d *dsn.DSN) string {
	t.Helper()
	u, env, cleanup, err := pgDumpConn(d)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	cmd := exec.Command(filepath.Join(pg.BinDir(), "pg_dump"), "--schema-only", "-d", u)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump --schema-only: %v", err)
	}
	return dumpNoise.ReplaceAllString(string(out), "")
}

func sameSchema(t *testing.T, pg *testsrv.PG, a, b *dsn.DSN) {
	t.Helper()
	sa, sb := schemaDump(t, pg, a), schemaDump(t, pg, b)
	if sa != sb {
		la, lb := strings.Split(sa, "\n"), strings.Split(sb, "\n")
		for i := 0; i < len(la) && i < len(lb); i++ {
			if la[i] != lb[i] {
				t.Fatalf("schemas differ at line %d:\nsource: %s\ntarget: %s", i+1, la[i], lb[i])
			}
		}
		t.Fatalf("schemas differ in length: %d vs %d lines", len(la), len(lb))
	}
}

func query[T any](t *testing.T, d *dsn.DSN, sql string, args ...any) T {
	t.Helper()
	c, err := pgx.Connect(context.Background(), d.Raw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var v T
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// walPos is the WAL position at the end of a PostgreSQL fingerprint.
func walPos(fp string) string { return fp[strings.LastIndexByte(fp, ':')+1:] }

// walRecordsBesideStandby lists the WAL records between two positions
// other than those that change no row: the background writer's standby
// snapshots, and what reads write (pruning of dead row versions on the
// pages they visit, hint-bit page images) (pg_walinspect, which the
// caller creates before the first position: creating it writes WAL). It
// switches to a new WAL segment, which writes WAL after both positions.
func walRecordsBesideStandby(t *testing.T, d *dsn.DSN, from, to string) string {
	t.Helper()
	// The positions are insert positions and pg_walinspect reads only
	// flushed WAL: a WAL switch (a record after both positions) flushes
	// everything before it.
	exec1(t, d, "SELECT pg_switch_wal()")
	return query[string](t, d, `SELECT coalesce(string_agg(resource_manager || '/' || record_type, ', '), '')
		FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
		WHERE resource_manager <> 'Standby' AND record_type <> 'FPI_FOR_HINT'
		  AND NOT (resource_manager = 'Heap2' AND record_type LIKE 'PRUNE%')`, from, to)
}

func exec1(t *testing.T, d *dsn.DSN, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), d.Raw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestChinookRoundTrip(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadChinook(t, pg)
	e := New()
	mem, res := backupMem(t, e, src, 2)
	if len(res.Tables) != 11 {
		t.Fatalf("backed up %d tables, want 11", len(res.Tables))
	}
	if tb, ok := mem.Manifest().Table("public.track"); !ok || tb.Rows != 3503 {
		t.Fatalf("public.track: %+v", tb)
	}
	dst := mustDSN(t, pg.DSN("chinook_restored"))
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2})
	compareChecksums(t, e, res.Tables, dst)
	sameSchema(t, pg, src, dst)
}

// Checksums read on several sessions in one exported snapshot give the same
// result, in the same order, as on one session, equal to the backup's; the
// progress counts every table, row and byte once.
func TestChecksumsInParallel(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadChinook(t, pg)
	e := New()
	_, res := backupMem(t, e, src, 2)
	ctx := context.Background()
	one, err := e.Checksums(ctx, src, nil, engine.ChecksumOptions{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := progress.New("verify", io.Discard)
	four, err := e.Checksums(ctx, src, nil, engine.ChecksumOptions{Jobs: 4, Progress: p})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, four) {
		t.Fatalf("checksums on 4 sessions differ from one session:\n%v\n%v", four, one)
	}
	compareChecksums(t, e, res.Tables, src)
	enginetest.CheckCounted(t, p, four)
}

func TestRichRoundTrip(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	e.SplitThreshold = 1 // split every table with a key and rows
	mem, res := backupMem(t, e, src, 3)
	names := map[string]bool{}
	for _, tb := range res.Tables {
		names[tb.Name] = true
	}
	for _, n := range []string{`"Mixed Schema"."OrderItems"`, `app.events_2023`, `app.nopk`, `app.empty`, `public."weird name.with dot"`} {
		if !names[n] {
			t.Errorf("table %s not backed up (have %v)", n, names)
		}
	}
	if names["app.events"] || names["app.user_names"] || names["app.user_counts"] {
		t.Errorf("partitioned parent, view or matview backed up as a table: %v", names)
	}
	if len(mem.Manifest().TableStreams("app.events_2023")) < 2 {
		t.Errorf("app.events_2023 was not split: %d streams", len(mem.Manifest().TableStreams("app.events_2023")))
	}
	dst := mustDSN(t, pg.DSN("rich_restored"))
	logs := &logLines{}
	if err := e.Restore(context.Background(), mem, dst, engine.RestoreOptions{Jobs: 2, Logger: slog.New(logs)}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	compareChecksums(t, e, res.Tables, dst)
	sameSchema(t, pg, src, dst)
	// app.users (arrays, enum, domain, json, jsonb, bytea, numeric, float8,
	// date, time, timestamptz) and the events partitions load in binary,
	// none falls back to text.
	for _, table := range []string{"app.users", "app.events_2023", "app.events_2024"} {
		if len(logs.grep("table="+table+" format=binary")) == 0 {
			t.Errorf("%s not loaded in COPY binary: %q", table, logs.grep("table="+table+" "))
		}
	}
	if got := logs.grep("did not convert"); len(got) > 0 {
		t.Errorf("fell back to text: %q", got)
	}
	// Sequence values, identity, matview data.
	if got := query[int64](t, dst, "SELECT nextval('app.ticket_seq')"); got != 4270 {
		t.Errorf("ticket_seq continues at %d, want 4270 (4242 + 3 rows × 7 + 7)", got)
	}
	if got := query[int64](t, dst, "INSERT INTO app.users (name) VALUES ('new') RETURNING id"); got != 5 {
		t.Errorf("identity continues at %d, want 5", got)
	}
	if got := query[int64](t, dst, "SELECT sum(n) FROM app.user_counts"); got != 4 {
		t.Errorf("materialized view holds %d, want 4", got)
	}
	if got := query[int64](t, dst, "SELECT name_len FROM app.users WHERE id = 1"); got != 3 {
		t.Errorf("generated column = %d", got)
	}
}

func TestByteStableAndFingerprint(t *testing.T) {
	// A server of its own: the WAL position is the whole cluster's, and on
	// the shared server autovacuum of other tests' databases (ANALYZE
	// writing pg_statistic, GIN pending lists flushed) moved it between
	// the backups on a busy machine. VACUUM ANALYZE after the load leaves
	// autovacuum nothing to do in this one.
	pg := testsrv.NewPostgres(t, testsrv.PGOptions{})
	src := loadRich(t, pg)
	exec1(t, src, "VACUUM ANALYZE")
	exec1(t, src, "CREATE EXTENSION pg_walinspect") // see walRecordsBesideStandby
	e := New()
	e.SplitThreshold = 8192
	ctx := context.Background()
	fp1, err := e.Fingerprint(ctx, src)
	if err != nil || fp1 == "" {
		t.Fatalf("fingerprint %q, %v", fp1, err)
	}
	m1, r1 := backupMem(t, e, src, 2)
	m2, r2 := backupMem(t, e, src, 1)
	sameStreams(t, m1, m2)
	// The server's background writer logs a snapshot of running
	// transactions (a few dozen bytes of WAL) within 15 s of the last
	// writes (loadRich's), and the backup's own reads prune dead row
	// versions of the pages they visit (catalog pages after the DDL): both
	// move the fingerprint (a needless backup, never a missed one) without
	// changing a row. Any other WAL record is a fault.
	unchanged := func(what, a, b string) {
		t.Helper()
		if a == "" || b == "" {
			t.Errorf("%s: empty fingerprint (%q, %q)", what, a, b)
			return
		}
		if a == b {
			return
		}
		if other := walRecordsBesideStandby(t, src, walPos(a), walPos(b)); other != "" {
			t.Errorf("%s: fingerprint moved without writes: %q -> %q (WAL records: %s)", what, a, b, other)
		}
	}
	fp2, _ := e.Fingerprint(ctx, src) // before unchanged, which writes WAL
	unchanged("second backup", r1.Fingerprint, r2.Fingerprint)
	unchanged("after the backups", r2.Fingerprint, fp2)
	exec1(t, src, "INSERT INTO app.empty VALUES (1, 'x')")
	fp3, _ := e.Fingerprint(ctx, src)
	if fp3 == fp2 {
		t.Errorf("fingerprint unchanged after INSERT: %q", fp3)
	}
	exec1(t, src, "CREATE UNLOGGED TABLE app.scratch (x int)")
	if fp, _ := e.Fingerprint(ctx, src); fp != "" {
		t.Errorf("fingerprint with unlogged table = %q, want unknown", fp)
	}
}

func TestAppendOnlyKeepsRangesStable(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "append")
	exec1(t, src, "CREATE TABLE log (id bigint PRIMARY KEY, msg text); INSERT INTO log SELECT i, md5(i::text) FROM generate_series(1, 5000) i; ANALYZE log")
	e := New()
	e.SplitThreshold = 64 << 10
	m1, _ := backupMem(t, e, src, 2)
	exec1(t, src, "INSERT INTO log SELECT i, md5(i::text) FROM generate_series(5001, 5100) i")
	m2, _ := backupMem(t, e, src, 2)
	s1, s2 := m1.Manifest().TableStreams("public.log"), m2.Manifest().TableStreams("public.log")
	if len(s1) < 3 {
		t.Fatalf("table not split: %d parts", len(s1))
	}
	same := 0
	for i := 0; i < len(s1)-1 && i < len(s2); i++ {
		if bytes.Equal(m1.Bytes(s1[i].Name), m2.Bytes(s2[i].Name)) {
			same++
		}
	}
	if same != len(s1)-1 {
		t.Errorf("after appending, only %d of the first %d parts are unchanged", same, len(s1)-1)
	}
}

func TestSourceSessionIsReadOnly(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "ro")
	exec1(t, src, "CREATE TABLE t (x int)")
	ctx := context.Background()
	c, err := connect(ctx, src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var ro string
	if err := c.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&ro); err != nil || ro != "on" {
		t.Fatalf("default_transaction_read_only = %q, %v", ro, err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("INSERT on a source session: %v", err)
	}
	// A worker session inside the exported snapshot refuses writes too.
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		t.Fatal(err)
	}
	var snap string
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		t.Fatal(err)
	}
	w, err := openWorker(ctx, src, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if _, err := w.Exec(ctx, "INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("INSERT on a worker session: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	pg := testsrv.Postgres(t)
	ctx := context.Background()
	e := New()
	src := newDB(t, pg, "bad")
	exec1(t, src, "CREATE TABLE t (x int PRIMARY KEY)")

	u, _ := url.Parse(src.Raw)
	u.User = url.UserPassword(pg.User, "wrong-secret-pw")
	_, err := e.Backup(ctx, mustDSN(t, u.String()), engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "wrong-secret-pw") {
		t.Errorf("wrong password: %v", err)
	}
	_, err = e.Backup(ctx, src.WithDatabase("no_such_db"), engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
	if err == nil || !strings.Contains(err.Error(), `"no_such_db" does not exist`) || strings.Contains(err.Error(), pg.Password) {
		t.Errorf("unknown database: %v", err)
	}

	t.Run("missing pg_dump", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		e := New()
		e.BinDirs = []string{t.TempDir()}
		_, err := e.Backup(ctx, src, engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
		if err == nil || !strings.Contains(err.Error(), "pg_dump not found") || !strings.Contains(err.Error(), "postgresql-client-15") {
			t.Errorf("missing pg_dump: %v", err)
		}
	})
	t.Run("old pg_dump", func(t *testing.T) {
		dir := t.TempDir()
		fake := filepath.Join(dir, "pg_dump")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.22'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		e := New()
		e.BinDirs = nil
		_, err := e.Backup(ctx, src, engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
		if err == nil || !strings.Contains(err.Error(), "pg_dump 11 is older than the server (15): install postgresql-client-15") {
			t.Errorf("old pg_dump: %v", err)
		}
	})

	mem, _ := backupMem(t, e, src, 1)
	err = e.Restore(ctx, mem, src, engine.RestoreOptions{Logger: testLogger(t)})
	if !errors.Is(err, engine.ErrTargetNotEmpty) || strings.Contains(err.Error(), pg.Password) {
		t.Errorf("non-empty target: %v", err)
	}
	// With Clean it is replaced.
	exec1(t, src, "INSERT INTO t VALUES (42)")
	if err := e.Restore(ctx, mem, src, engine.RestoreOptions{Clean: true, Logger: testLogger(t)}); err != nil {
		t.Fatalf("restore --clean: %v", err)
	}
	if n := query[int64](t, src, "SELECT count(*) FROM t"); n != 0 {
		t.Errorf("after --clean the table has %d rows", n)
	}
}

// failingSink fails the data stream of one table.
type failingSink struct {
	*enginetest.Memory
	table string
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full (injected)") }
func (failWriter) Close() error                { return nil }

func (f *failingSink) Create(ctx context.Context, s manifest.Stream) (engine.StreamWriter, error) {
	if s.Table == f.table {
		return failWriter{}, nil
	}
	return f.Memory.Create(ctx, s)
}

func TestWorkerErrorNamesTable(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	sink := &failingSink{Memory: enginetest.NewMemory(), table: "app.nopk"}
	_, err := e.Backup(context.Background(), src, engine.BackupOptions{Jobs: 2, Logger: testLogger(t)}, sink)
	if err == nil || !strings.Contains(err.Error(), "app.nopk") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("backup with a failing stream: %v", err)
	}
}

func TestExportSQL(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	mem, res := backupMem(t, e, src, 2)
	f := filepath.Join(t.TempDir(), "export.sql")
	out, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSQL(context.Background(), mem, out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	dst := newDB(t, pg, "exported")
	psql(t, pg, src.WithDatabase(dst.Database()), f)
	compareChecksums(t, e, res.Tables, dst)
	sameSchema(t, pg, src, dst)
	if got := query[int64](t, dst, "SELECT last_value FROM app.ticket_seq"); got != 4263 {
		t.Errorf("sequence after export = %d", got)
	}
}

func TestRowsAndImport(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	mem, res := backupMem(t, e, src, 2)
	ctx := context.Background()
	schema, err := e.Schema(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	var users engine.TableSchema
	for _, s := range schema {
		if s.Name == "app.users" {
			users = s
		}
	}
	types := map[string]string{}
	for _, c := range users.Columns {
		types[c.Name] = c.Type
	}
	if types["id"] != "integer" || types["avatar"] != "bytes" || types["prefs"] != "json" || types["balance"] != "numeric" || types["created"] != "timestamptz" {
		t.Errorf("portable types: %v", types)
	}
	if _, has := types["name_len"]; has {
		t.Errorf("generated column listed: %v", types)
	}
	var rows [][]any
	if err := e.ReadRows(ctx, mem, "app.users", func(r []any) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	col := func(name string) int {
		for i, c := range users.Columns {
			if c.Name == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	if v := rows[0][col("avatar")]; !bytes.Equal(v.([]byte), []byte{0, 1, 2, 3, 0xff}) {
		t.Errorf("bytea = %v", v)
	}
	if v := rows[2][col("name")]; v != "Line\nBreak \\ back" {
		t.Errorf("text with escapes = %q", v)
	}
	if v := rows[1][col("name")]; v != "Bob\tTab" {
		t.Errorf("text with tab = %q", v)
	}
	if v := rows[1][col("prefs")]; v != nil {
		t.Errorf("NULL = %v", v)
	}
	if v := rows[0][col("id")]; v != int64(1) {
		t.Errorf("id = %#v", v)
	}
	if v := rows[0][col("created")]; v != "2024-01-02 01:04:05.123456+00" {
		t.Errorf("timestamptz = %#v", v)
	}

	// Import the portable rows into a fresh database and compare values.
	dst := mustDSN(t, pg.DSN("imported"))
	err = e.Import(ctx, dst, schema, func(table string, fn func([]any) error) error {
		return e.ReadRows(ctx, mem, table, fn)
	}, engine.RestoreOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	for _, tb := range res.Tables {
		want := query[int64](t, src, "SELECT count(*) FROM "+tb.Name)
		if got := query[int64](t, dst, "SELECT count(*) FROM "+tb.Name); got != want {
			t.Errorf("imported %s has %d rows, want %d", tb.Name, got, want)
		}
	}
	if got := query[string](t, dst, `SELECT name FROM app.users WHERE id = 3`); got != "Line\nBreak \\ back" {
		t.Errorf("imported text = %q", got)
	}
	if got := query[[]byte](t, dst, `SELECT avatar FROM app.users WHERE id = 1`); !bytes.Equal(got, []byte{0, 1, 2, 3, 0xff}) {
		t.Errorf("imported bytea = %v", got)
	}
	if got := query[string](t, dst, `SELECT balance::text FROM app.users WHERE id = 3`); got != "99999999.99" {
		t.Errorf("imported numeric = %q", got)
	}
}

func TestRestoreChosenTable(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	mem, res := backupMem(t, e, src, 2)
	dst := mustDSN(t, pg.DSN("rich_partial"))
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2, Tables: []string{`"Mixed Schema"."OrderItems"`}})
	got, err := e.Checksums(context.Background(), dst, []string{`"Mixed Schema"."OrderItems"`}, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mem.Manifest().Table(`"Mixed Schema"."OrderItems"`)
	if len(got) != 1 || got[0].Checksum != want.Checksum || got[0].Rows != 3 {
		t.Errorf("chosen table: %+v, want %+v", got, want)
	}
	// Only the chosen table is created; its foreign key to app.users,
	// which is neither restored nor there, is left out.
	if n := query[int64](t, dst, "SELECT count(*) FROM pg_class WHERE relname = 'users'"); n != 0 {
		t.Errorf("app.users created too")
	}
	_ = res
}

func TestScratchAndDatabases(t *testing.T) {
	pg := testsrv.Postgres(t)
	e := New()
	ctx := context.Background()
	server := mustDSN(t, pg.DSN("postgres"))
	scratch, err := e.CreateScratch(ctx, server, "snapdata_scratch_x")
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := e.Databases(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(dbs, "snapdata_scratch_x") || contains(dbs, "postgres") || contains(dbs, "template1") {
		t.Errorf("databases: %v", dbs)
	}
	// A session left open does not stop the drop.
	c, err := pgx.Connect(ctx, scratch.Raw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := e.DropScratch(ctx, scratch); err != nil {
		t.Fatal(err)
	}
	dbs, _ = e.Databases(ctx, server)
	if contains(dbs, "snapdata_scratch_x") {
		t.Errorf("scratch database still listed: %v", dbs)
	}
}

func contains(xs []string, x string) bool {
	i := sort.SearchStrings(xs, x)
	return i < len(xs) && xs[i] == x
}

var _ = time.Second

// TestImportNamesUnmappableColumns: a portable export whose column types
// PostgreSQL has no type for here is refused before the target is
// contacted (this DSN points nowhere), naming each such column.
func TestImportNamesUnmappableColumns(t *testing.T) {
	target := mustDSN(t, "postgres://nobody@127.0.0.1:1/never?sslmode=disable")
	bad := []engine.TableSchema{
		{Name: "ok", Columns: []engine.Column{{Name: "id", Type: "integer"}}},
		{Name: "x", Columns: []engine.Column{{Name: "c", Type: "interval", SourceType: "INTERVAL"}, {Name: "d", Type: "point", SourceType: "POINT"}}},
	}
	err := New().Import(context.Background(), target, bad, nil, engine.RestoreOptions{Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "x.c (interval/INTERVAL), x.d (point/POINT)") {
		t.Errorf("import of unmappable columns: %v, want an error naming x.c and x.d with their types", err)
	}
}
