package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// bigValue is the size of the one huge value of the big-value tests: the
// size that made a backup peak at 852 MB RSS on PostgreSQL and 1.2 GB on
// MariaDB, and a MariaDB restore never finish (issue 18).
const bigValue = 200 << 20

// The peak RSS the backups and restores of the big-value tests must stay
// under (the shipped Kubernetes CronJob's limit is 512 MiB): on
// PostgreSQL a row costs no more than a small one; the MySQL driver holds
// a row whole and grows its buffer as the packets come, so about twice
// the row, plus the usual 150-190 MiB (docs/architecture.md).
const (
	bigValueRSSPostgres = 300 << 20
	bigValueRSSMariaDB  = 2*bigValue + 160<<20
)

// snapExec runs the CLI as a child process (the test binary doubles as
// snapdata) and returns its result and peak RSS in bytes.
func snapExec(t *testing.T, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("snapdata %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	t.Logf("snapdata %s: exit %d in %v, peak RSS %d MiB", args[0], r.code, time.Since(start).Round(time.Millisecond), rss>>20)
	return r, rss
}

// bigRoundTrip backs up src and restores it into dst in child processes
// (calling between, if not nil, in between), asserting that each succeeds
// under bound bytes of peak RSS.
func bigRoundTrip(t *testing.T, src, dst string, bound int64, between func()) {
	t.Helper()
	setup(t)
	must(t, "init", "--repo", "repo")
	for i, args := range [][]string{
		{"backup", "--repo", "repo", "-q", src},
		{"restore", "--repo", "repo", "-q", "latest", "--to", dst},
	} {
		if i == 1 && between != nil {
			between()
		}
		r, rss := snapExec(t, args...)
		if r.code != 0 {
			t.Fatalf("snapdata %s: %s", args[0], r)
		}
		if rss > bound {
			t.Errorf("snapdata %s of a %d MiB value peaked at %d MiB RSS, want under %d MiB", args[0], bigValue>>20, rss>>20, bound>>20)
		}
	}
}

func TestBigValuePostgres(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := pg.CreateDatabase(t, "bigsrc")
	srcDB := src[strings.LastIndex(src, "/")+1 : strings.Index(src, "?")]
	// One bytea and one text value of bigValue bytes, beside ordinary rows.
	pg.Exec(t, srcDB,
		`CREATE TABLE small (id int PRIMARY KEY, name text, at timestamptz)`,
		`INSERT INTO small SELECT i, md5(i::text), '2026-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 50000) i`,
		`CREATE TABLE big (id int PRIMARY KEY, b bytea, s text)`,
		`ALTER TABLE big ALTER b SET STORAGE EXTERNAL, ALTER s SET STORAGE EXTERNAL`,
		`INSERT INTO big VALUES (1, NULL, NULL), (2, NULL, NULL), (3, '\x00ff', 'tab	here')`,
		// 1 MiB of pseudo-random bytes, repeated (400 MiB of COPY text), and
		// 32 MiB of text with a tab to escape every 33 characters.
		`UPDATE big SET b = (SELECT decode(repeat(string_agg(md5(i::text), ''), `+strconv.Itoa(bigValue>>20)+`), 'hex') FROM generate_series(1, 65536) i) WHERE id = 1`,
		`UPDATE big SET s = (SELECT repeat(string_agg(md5(i::text) || E'\t', ''), 32) FROM generate_series(1, 32768) i) WHERE id = 2`,
	)
	dst := pg.CreateDatabase(t, "bigdst")
	bigRoundTrip(t, src, dst, bigValueRSSPostgres, nil)
	sum := func(dsn string) string {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var s string
		q := `SELECT string_agg(id || ':' || coalesce(md5(b), '-') || ':' || coalesce(md5(s), '-') || ':' || coalesce(length(b), -1) || ':' || coalesce(length(s), -1), ' ' ORDER BY id) FROM big`
		if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := sum(src), sum(dst); a != b {
		t.Fatalf("restored big values differ:\nsource   %s\nrestored %s", a, b)
	}
}

// A table with a date column is read in COPY binary and printed as COPY
// text (textcopy.go): a row holding a huge bytea is printed from the read
// buffer in pieces too, not read whole.
func TestBigValuePostgresBinary(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := pg.CreateDatabase(t, "bigbinsrc")
	srcDB := src[strings.LastIndex(src, "/")+1 : strings.Index(src, "?")]
	pg.Exec(t, srcDB,
		`CREATE TABLE dated (id int PRIMARY KEY, d date, b bytea, j jsonb)`,
		`ALTER TABLE dated ALTER b SET STORAGE EXTERNAL`,
		`INSERT INTO dated VALUES (1, '2026-12-04', NULL, '{"a": "tab\there"}'), (2, NULL, '\x00ff', NULL), (3, '1999-01-08', '', '[]')`,
		// 1 MiB of pseudo-random bytes, repeated: 400 MiB of COPY text.
		`UPDATE dated SET b = (SELECT decode(repeat(string_agg(md5(i::text), ''), `+strconv.Itoa(bigValue>>20)+`), 'hex') FROM generate_series(1, 65536) i) WHERE id = 1`,
	)
	dst := pg.CreateDatabase(t, "bigbindst")
	setup(t)
	must(t, "init", "--repo", "repo")
	type snap struct {
		AddedBytes int64 `json:"added_bytes"`
		Tables     []struct {
			Name     string `json:"name"`
			Rows     int64  `json:"rows"`
			Checksum string `json:"checksum"`
			Bytes    int64  `json:"bytes"`
		} `json:"tables"`
		Meta map[string]string `json:"meta"`
	}
	backup := func(args ...string) (snap, int64) {
		t.Helper()
		r, rss := snapExec(t, append([]string{"backup", "--repo", "repo", "--json"}, append(args, src)...)...)
		if r.code != 0 {
			t.Fatalf("snapdata backup: %s", r)
		}
		var out []snap
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 {
			t.Fatalf("backup --json: %v\n%s", err, r.stdout)
		}
		return out[0], rss
	}
	bin, rss := backup()
	if got := bin.Meta["copy_binary_tables"]; got != "1" {
		t.Fatalf("the backup read %q tables in COPY binary, want the one", got)
	}
	if rss > bigValueRSSPostgres {
		t.Errorf("snapdata backup of a %d MiB value read in COPY binary peaked at %d MiB RSS, want under %d MiB", bigValue>>20, rss>>20, bigValueRSSPostgres>>20)
	}
	// Read as text, the table's rows, checksum and bytes are the same, and
	// its chunks are already stored.
	text, _ := backup("--text-copy")
	if got := text.Meta["copy_binary_tables"]; got != "0" {
		t.Fatalf("backup --text-copy read %q tables in COPY binary", got)
	}
	if fmt.Sprint(text.Tables) != fmt.Sprint(bin.Tables) {
		t.Errorf("tables read as text %+v, in binary %+v", text.Tables, bin.Tables)
	}
	if text.AddedBytes > 1<<20 {
		t.Errorf("the backup read as text added %d bytes to the repository", text.AddedBytes)
	}
	// The restore sends the table in COPY binary (binarycopy.go) until it
	// meets the huge row, then loads it as COPY text, which streams the
	// row: its memory stays bounded too.
	r, rss := snapExec(t, "restore", "--repo", "repo", "-v", "latest", "--to", dst)
	if r.code != 0 {
		t.Fatalf("snapdata restore: %s", r)
	}
	if !strings.Contains(r.stderr, "loading the table as COPY text") || !strings.Contains(r.stderr, "a row of more than 16 MiB") {
		t.Errorf("the restore did not fall back to COPY text for the huge row:\n%s", r.stderr)
	}
	if rss > bigValueRSSPostgres {
		t.Errorf("snapdata restore of a %d MiB value in a table loaded in COPY binary peaked at %d MiB RSS, want under %d MiB", bigValue>>20, rss>>20, bigValueRSSPostgres>>20)
	}
	sum := func(dsn string) string {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var s string
		q := `SELECT string_agg(id || ':' || coalesce(d::text, '-') || ':' || coalesce(md5(b), '-') || ':' || coalesce(length(b), -1) || ':' || coalesce(j::text, '-'), ' ' ORDER BY id) FROM dated`
		if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := sum(src), sum(dst); a != b {
		t.Fatalf("restored rows differ:\nsource   %s\nrestored %s", a, b)
	}
}

func TestBigValueMariaDB(t *testing.T) {
	my := testsrv.MariaDB(t)
	src := my.CreateDatabase(t, "bigsrc")
	srcDB := src[strings.LastIndex(src, "/")+1:]
	// Writing the value needs a large packet on the source server (a
	// server holding such a value has one), and so does restoring it
	// (TestBigRowNeedsMaxAllowedPacket in internal/engine/mysql checks the
	// message of a target whose packets are too small).
	my.Exec(t, "", `SET GLOBAL max_allowed_packet = 1073741824`)
	my.Exec(t, srcDB,
		`CREATE TABLE small (id int PRIMARY KEY, name varchar(40), at datetime)`,
		`INSERT INTO small SELECT seq, md5(seq), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_50000`,
		`CREATE TABLE big (id int PRIMARY KEY, b longblob)`,
		`INSERT INTO big VALUES (1, NULL), (2, x'0009000aff5c')`,
	)
	db, err := sql.Open("mysql", my.DriverDSN(srcDB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// 8 MiB of every byte value (tabs, newlines and backslashes
	// included), repeated into one value by the server.
	piece := make([]byte, 8<<20)
	for i := range piece {
		piece[i] = byte(i*7 + i>>9)
	}
	if _, err := db.Exec(`UPDATE big SET b = REPEAT(?, `+strconv.Itoa(bigValue/len(piece))+`) WHERE id = 1`, piece); err != nil {
		t.Fatal(err)
	}
	dst := my.CreateDatabase(t, "bigdst")
	dstDB := dst[strings.LastIndex(dst, "/")+1:]
	t.Cleanup(func() { my.Exec(t, "", `SET GLOBAL max_allowed_packet = DEFAULT`) })
	bigRoundTrip(t, src, dst, bigValueRSSMariaDB, nil)
	sum := func(name string) string {
		db, err := sql.Open("mysql", my.DriverDSN(name))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s string
		if err := db.QueryRow(`SELECT GROUP_CONCAT(id, ':', COALESCE(MD5(b), '-'), ':', COALESCE(LENGTH(b), -1) ORDER BY id SEPARATOR ' ') FROM big`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := sum(srcDB), sum(dstDB); a != b {
		t.Fatalf("restored big values differ:\nsource   %s\nrestored %s", a, b)
	}
}
