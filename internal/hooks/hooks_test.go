package hooks

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/postgres"
	"github.com/snapdata/snapdata/internal/engine/sqlite"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

// sqliteCopy makes a SQLite database with a settings table in a
// temporary directory.
func sqliteCopy(t *testing.T) (*dsn.DSN, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "copy.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	d, err := dsn.Parse("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

func settings(t *testing.T, d *dsn.DSN) string {
	t.Helper()
	db, err := sql.Open("sqlite", d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sql.NullString
	if err := db.QueryRow("SELECT group_concat(k || '=' || v, ',') FROM (SELECT * FROM settings ORDER BY k)").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}

func TestRunSQLHooks(t *testing.T) {
	target, dir := sqliteCopy(t)
	confDir := filepath.Join(dir, "conf")
	if err := os.MkdirAll(filepath.Join(confDir, "sql"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "sql", "post.sql"), []byte("-- post\nINSERT INTO settings VALUES ('file', 'yes;');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := []Hook{
		{SQL: "INSERT INTO settings VALUES ('inline', 'a'); INSERT INTO settings VALUES ('second', 'b')"},
		{SQLFile: "sql/post.sql"},
	}
	if err := Run(context.Background(), sqlite.New(), target, list, Options{Dir: confDir}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := settings(t, target), "file=yes;,inline=a,second=b"; got != want {
		t.Errorf("settings = %q, want %q", got, want)
	}

	if err := os.WriteFile(filepath.Join(confDir, "sql", "bad.sql"), []byte("INSERT INTO settings VALUES ('x', 'y');\n\nINSERT INTO nowhere VALUES (1);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		list []Hook
		want string
	}{
		{[]Hook{{SQL: "SELECT 1"}, {SQLFile: "sql/bad.sql"}}, "hook 2 (sql_file sql/bad.sql): sql/bad.sql:3: "},
		{[]Hook{{SQL: "SELECT 1;\nSELEC 2"}}, "hook 1 (sql): sql:2: "},
		{[]Hook{{SQLFile: "sql/missing.sql"}}, "hook 1 (sql_file sql/missing.sql): open the SQL file: "},
		{[]Hook{{SQL: "SELECT 1", Command: []string{"true"}}}, "hook 1: a hook has more than one of sql, sql_file and command"},
		{[]Hook{{}}, "hook 1: a hook needs one of sql, sql_file or command"},
		{[]Hook{{Command: []string{}}}, "hook 1: a command hook needs a program"},
	} {
		err := Run(context.Background(), sqlite.New(), target, tt.list, Options{Dir: confDir})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%+v) = %v, want an error containing %q", tt.list, err, tt.want)
		}
	}
	if got, want := settings(t, target), "file=yes;,inline=a,second=b"; got != want {
		t.Errorf("after the failed hooks settings = %q, want %q", got, want)
	}
}

func TestCommandHooks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SNAPDATA_PASSWORD", "repo-secret-1")
	t.Setenv("PGPASSWORD", "prod-secret-2")
	t.Setenv("MYSQL_PWD", "prod-secret-3")
	t.Setenv("ORDERS_DSN", "postgres://prod:prod-secret-4@prod/orders")
	t.Setenv("LC_TEST_HOOKS", "kept")
	script := "#!/bin/sh\nenv > env.txt\necho \"hello from $1\"\necho 'to stderr' >&2\necho \"dsn $SNAPDATA_TARGET_DSN token $API_TOKEN\"\n"
	if err := os.WriteFile(filepath.Join(dir, "hook.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	opts := Options{Dir: dir, Logger: log, TargetDSN: "postgres://dev:dev-pw@copy/orders", Env: []string{"EXTRA=1", "API_TOKEN=tok-123"}}
	if err := Run(context.Background(), nil, nil, []Hook{{Command: []string{"./hook.sh", "argv"}}}, opts); err != nil {
		t.Fatalf("Run: %v", err)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SNAPDATA_TARGET_DSN=postgres://dev:dev-pw@copy/orders\n", "EXTRA=1\n", "LC_TEST_HOOKS=kept\n", "PATH="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("the command's environment lacks %q:\n%s", want, env)
		}
	}
	for _, secret := range []string{"repo-secret-1", "prod-secret-2", "prod-secret-3", "prod-secret-4", "SNAPDATA_PASSWORD", "PGPASSWORD", "MYSQL_PWD"} {
		if strings.Contains(string(env), secret) {
			t.Errorf("the command's environment holds %q:\n%s", secret, env)
		}
	}
	for _, want := range []string{`line="hello from argv"`, `stream=stderr line="to stderr"`} {
		if !strings.Contains(logBuf.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logBuf.String())
		}
	}

	if strings.Contains(logBuf.String(), "dev-pw") || strings.Contains(logBuf.String(), "tok-123") ||
		!strings.Contains(logBuf.String(), "dsn postgres://dev:xxxxx@copy/orders token xxxxx") {
		t.Errorf("the log shows a secret the command printed, or not the masked line:\n%s", logBuf.String())
	}
	fail := "#!/bin/sh\nfor i in $(seq 1 30); do echo \"err line $i\" >&2; done\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "fail.sh"), []byte(fail), 0o755); err != nil {
		t.Fatal(err)
	}
	target, _ := sqliteCopy(t)
	err = Run(context.Background(), sqlite.New(), target, []Hook{{SQL: "SELECT 1"}, {Command: []string{"./fail.sh"}}}, Options{Dir: dir})
	if err == nil {
		t.Fatal("a failing command succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"hook 2 (command ./fail.sh): exit status 3", "err line 30", "err line 21"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "err line 20\n") {
		t.Errorf("error %q shows more than the last %d lines", msg, TailLines)
	}

	err = Run(context.Background(), nil, nil, []Hook{{Command: []string{"no-such-program-snapdata"}}}, Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "hook 1 (command no-such-program-snapdata): find the program") {
		t.Errorf("a missing program: %v", err)
	}
}

func TestCommandHookTimeout(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	// A shell whose child holds the output open: the whole group dies.
	err := Run(context.Background(), nil, nil, []Hook{{Command: []string{"sh", "-c", "sleep 60 & sleep 60"}}},
		Options{Dir: dir, Timeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "hook 1 (command sh): did not finish within 500ms (stopped)") {
		t.Fatalf("Run = %v, want a timeout naming the hook", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the timeout took %s", d)
	}
}

// TestCommandHookOnPostgres runs psql from a command hook with the DSN it
// is given: the dev user writes to the copy.
func TestCommandHookOnPostgres(t *testing.T) {
	pg := testsrv.Postgres(t)
	ctx := context.Background()
	copyDSN := pg.CreateDatabase(t, "hookcopy")
	target, err := dsn.Parse(copyDSN)
	if err != nil {
		t.Fatal(err)
	}
	e := postgres.New()
	if err := Run(ctx, e, target, []Hook{{SQL: "CREATE TABLE notes (id serial PRIMARY KEY, body text)"}}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateUsers(ctx, target, []engine.User{{Name: "hook_dev", Password: "hook-dev-pw", Access: engine.AccessReadWrite}}); err != nil {
		t.Fatal(err)
	}
	u := *target.URL
	u.User = url.UserPassword("hook_dev", "hook-dev-pw")
	psql := filepath.Join(pg.BinDir(), "psql")
	if _, err := exec.LookPath(psql); err != nil {
		t.Fatalf("psql: %v", err)
	}
	t.Setenv("PGPASSWORD", pg.Password) // production's: must not reach the command
	t.Setenv("PGUSER", pg.User)
	// argv is not expanded: a shell passes the variable on.
	hook := Hook{Command: []string{"sh", "-c", `exec "$0" -X -v ON_ERROR_STOP=1 -d "$SNAPDATA_TARGET_DSN" -c "INSERT INTO notes (body) VALUES (current_user)"`, psql}}
	err = Run(ctx, e, target, []Hook{hook}, Options{TargetDSN: u.String(), Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// An SQL hook past its timeout is stopped, and its transaction with it.
	start := time.Now()
	err = Run(ctx, e, target, []Hook{{SQL: "INSERT INTO notes (body) VALUES ('slow');\nSELECT pg_sleep(30)"}}, Options{Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "hook 1 (sql): did not finish within 1s (stopped): sql:2: ") {
		t.Errorf("a slow SQL hook: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the slow SQL hook took %s to stop", d)
	}
	c, err := pgx.Connect(ctx, copyDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var who string
	if err := c.QueryRow(ctx, "SELECT string_agg(body, ',') FROM notes").Scan(&who); err != nil || who != "hook_dev" {
		t.Errorf("notes written by %q (%v), want hook_dev", who, err)
	}
}

func TestLineLogLimits(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	hide := secrets(Options{TargetDSN: "postgres://dev:sekrit-pw@copy/db"})
	l := &lineLog{mu: &sync.Mutex{}, logged: new(int), hide: hide, log: log, hook: 1, stream: "stdout", keep: 2}
	long := strings.Repeat("a", MaxLineBytes-4) + "sekrit-pw" + strings.Repeat("b", 3*MaxLineBytes)
	// Written in small pieces, as a pipe delivers it.
	in := []byte("first\n" + long + "\nafter long\nlast")
	for len(in) > 0 {
		k := min(len(in), 100)
		if _, err := l.Write(in[:k]); err != nil {
			t.Fatal(err)
		}
		in = in[k:]
	}
	l.flush()
	out := buf.String()
	if strings.Contains(out, "sekrit") || strings.Contains(out, "sekr") {
		t.Errorf("a secret across the cut is logged: %s", out)
	}
	if strings.Contains(out, "bbbb") {
		t.Error("the rest of the overlong line was logged")
	}
	for _, want := range []string{"line=first", `line="after long"`, "line=last"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if got := l.tail(); got != "after long\nlast" {
		t.Errorf("tail = %q", got)
	}
	for i := 0; i < MaxLogLines+10; i++ {
		l.Write([]byte("x\n"))
	}
	if n := strings.Count(buf.String(), "\n"); n != MaxLogLines+1 {
		t.Errorf("%d log records, want %d lines and one notice", n, MaxLogLines+1)
	}
}
