package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestNoPasswordInAnyOutput runs every command with a password in every
// place a DSN or the config can hold one (userinfo with an unencoded '/', a
// password= and an sslpassword= parameter, a config ${VAR}, the scratch DSN,
// $SNAPDATA_PASSWORD), with -v and --log-json, on success and on failure,
// and searches everything snapdata wrote (stdout, stderr, logs, webhook
// bodies) for any of the passwords or a piece of one. It also checks that
// --source finds a source's snapshots whatever the DSN's spelling.
func TestNoPasswordInAnyOutput(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	setup(t)
	const (
		pgPW    = "Pg2024/Sum!mer"
		myPW    = "My2024/Win!ter"
		sslPW   = "SslPw-Secret-7"
		repoPW  = "RepoPw-Secret-7"
		wrongPW = "Wr0ng/Secret-7"
	)
	secrets := []string{pgPW, myPW, sslPW, repoPW, wrongPW, url.QueryEscape(pgPW), url.PathEscape(pgPW), url.QueryEscape(myPW)}
	for _, s := range []string{pgPW, myPW, wrongPW} {
		for _, part := range strings.Split(s, "/") {
			secrets = append(secrets, part)
		}
	}
	t.Setenv("SNAPDATA_PASSWORD", repoPW)
	t.Setenv("PG_PW", pgPW)
	t.Setenv("MY_PW", myPW)
	t.Setenv("SSL_PW", sslPW)
	t.Setenv("BAD_PW", wrongPW)
	t.Setenv("SNAPDATA_STATE_DIR", t.TempDir())

	pgDB := strings.TrimPrefix(mustURL(t, pg.CreateDatabase(t, "leaks")).Path, "/")
	pg.Exec(t, pgDB, "CREATE ROLE leaky LOGIN SUPERUSER PASSWORD '"+pgPW+"'",
		"CREATE TABLE items (id int PRIMARY KEY, name text)", "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
	t.Cleanup(func() {
		for _, db := range []string{"_r1", "_r2", "_i1"} {
			pg.Exec(t, "postgres", "DROP DATABASE IF EXISTS "+pgDB+db)
		}
		pg.Exec(t, pgDB, "DROP OWNED BY leaky")
		pg.Exec(t, "postgres", "DROP ROLE IF EXISTS leaky")
	})
	myDB := strings.TrimPrefix(mustURL(t, my.CreateDatabase(t, "leaks")).Path, "/")
	my.Exec(t, myDB, "CREATE USER IF NOT EXISTS 'leaky'@'%' IDENTIFIED BY '"+myPW+"'", "GRANT ALL PRIVILEGES ON *.* TO 'leaky'@'%'",
		"CREATE TABLE items (id int PRIMARY KEY, name text)", "INSERT INTO items VALUES (1, 'one'), (2, 'two')")
	t.Cleanup(func() { my.Exec(t, "", "DROP USER IF EXISTS 'leaky'@'%'") })

	var hookMu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks = append(hooks, string(b))
		hookMu.Unlock()
	}))
	defer hook.Close()

	pgHost := fmt.Sprintf("127.0.0.1:%d", pg.Port)
	myHost := fmt.Sprintf("127.0.0.1:%d", my.Port)
	pgUser := "postgres://leaky:" + pgPW + "@" + pgHost + "/" + pgDB + "?sslmode=disable"
	pgQuery := fmt.Sprintf("postgresql://localhost:%d/%s?user=leaky&password=%s&sslmode=disable", pg.Port, pgDB, url.QueryEscape(pgPW))
	pgSSL := pgUser + "&sslpassword=" + sslPW
	pgServer := "postgres://leaky:" + pgPW + "@" + pgHost + "/?sslmode=disable&sslpassword=" + sslPW
	pgTo := func(db string) string {
		return "postgres://leaky:" + pgPW + "@" + pgHost + "/" + db + "?sslmode=disable&sslpassword=" + sslPW
	}
	myUser := "mariadb://leaky:" + myPW + "@" + myHost + "/" + myDB
	cfg := `repositories:
  main: { url: ./backups }
sources:
  pgcfg: { dsn: "postgres://leaky:${PG_PW}@` + pgHost + `/` + pgDB + `?sslmode=disable&sslpassword=${SSL_PW}" }
  mycfg: { dsn: "mysql://leaky:${MY_PW}@` + myHost + `/` + myDB + `" }
  badpg: { dsn: "postgres://leaky:${BAD_PW}@` + pgHost + `/` + pgDB + `?sslmode=disable" }
  onep:  { dsn: "postgres://leaky:p@` + pgHost + `/` + pgDB + `?sslmode=disable" }
jobs:
  - { name: good, source: [pgcfg, mycfg], retention: { keep_last: 10 } }
  - { name: pgjob, source: pgcfg, verify: { scratch: "postgres://leaky:${PG_PW}@` + pgHost + `/?sslmode=disable" } }
  - { name: bad, source: [badpg, onep] }
notify:
  - { on: [failure, success, recovery, skip], webhook: "` + hook.URL + `/hook" }
`
	if err := os.WriteFile("snapdata.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	var all strings.Builder
	mangled := regexp.MustCompile(`[A-Za-z0-9]xxxxx|xxxxx[A-Za-z0-9]`)
	run := func(want int, args ...string) result {
		t.Helper()
		r := snap(t, args...)
		all.WriteString(r.stdout + r.stderr)
		if r.code != want {
			t.Errorf("snapdata %s: exit %d, want %d\n%s", args[0], r.code, want, r.stdout+r.stderr)
		}
		for _, s := range secrets {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("snapdata %s printed the secret %q:\n%s", strings.Join(args[:1], " "), s, r.stdout+r.stderr)
			}
		}
		if m := mangled.FindString(r.stdout + r.stderr); m != "" {
			t.Errorf("snapdata %s mangled a message by replacing text (%q):\n%s", args[0], m, r.stdout+r.stderr)
		}
		return r
	}

	run(0, "init", "-v")
	run(0, "backup", pgUser, "-v")
	run(0, "backup", pgQuery, "--log-json", "-v")
	run(0, "backup", pgSSL, "-v")
	run(0, "backup", "pgcfg", "--log-json", "-v")
	run(0, "backup", myUser, "--log-json", "-v")
	run(0, "backup", "mycfg", "-v")
	r := run(1, "backup", "postgres://leaky:"+wrongPW+"@"+pgHost+"/"+pgDB+"?sslmode=disable", "-v")
	if !strings.Contains(r.stderr, "password authentication failed") {
		t.Errorf("a wrong password: %s", r)
	}
	run(1, "backup", "mysql://leaky:"+wrongPW+"@"+myHost+"/"+myDB, "--log-json", "-v")
	r = run(2, "backup", "postgres://leaky:"+pgPW+"@"+pgHost+"x/"+pgDB)
	if !strings.Contains(r.stderr, "port after the host is not a number") {
		t.Errorf("a bad port: %s", r)
	}
	run(2, "backup", "leaky:"+pgPW+"@"+pgHost+"/"+pgDB)

	// Every spelling of the PostgreSQL source is one source; the config
	// source with that DSN (pgcfg) is found too.
	r = run(0, "snapshots", "-v")
	if want := fmt.Sprintf("postgres://localhost:%d/%s", pg.Port, pgDB); strings.Count(r.stdout, want) != 3 {
		t.Errorf("snapshots: want 3 snapshots of %s:\n%s", want, r.stdout)
	}
	for _, source := range []string{pgUser, pgQuery, pgSSL, fmt.Sprintf("postgres://%s/%s", pgHost, pgDB)} {
		if got := len(listSnapshots(t, "--source", source)); got != 4 {
			t.Errorf("snapshots --source %s: %d snapshots, want 4", source, got)
		}
	}
	run(0, "snapshots", "--source", pgQuery, "--json", "--log-json", "-v")

	run(0, "restore", "latest", "--source", pgSSL, "--to", pgTo(pgDB+"_r1"), "-v")
	run(0, "restore", "latest", "--source", pgQuery, "--to", pgTo(pgDB+"_r2"), "--log-json", "-v")
	run(0, "restore", "latest", "--source", myUser, "--to", "mysql://leaky:"+myPW+"@"+myHost+"/"+myDB+"_r1", "-v")
	r = run(2, "restore", "latest", "--source", "postgres://leaky:"+pgPW+"@"+pgHost+"/nosuchdb", "--to", pgTo(pgDB+"_r3"))
	if want := fmt.Sprintf("no snapshot of source postgres://localhost:%d/nosuchdb", pg.Port); !strings.Contains(r.stderr, want) {
		t.Errorf("restore of an unknown source: want %q in\n%s", want, r)
	}
	run(1, "restore", "latest", "--source", pgUser, "--to", "postgres://leaky:"+wrongPW+"@"+pgHost+"/"+pgDB+"_r4?sslmode=disable", "-v")

	run(0, "verify", "latest", "--source", pgUser, "--scratch", pgServer, "-v")
	run(0, "verify", "latest", "--source", pgQuery, "--scratch", pgServer, "--log-json", "-v")
	run(2, "verify", "latest", "--source", "postgres://leaky:"+pgPW+"@"+pgHost+"/nosuchdb", "--scratch", pgServer)
	run(0, "export", "latest", "--source", pgQuery, "--format", "sql", "-o", "pg.sql", "-v")
	run(0, "export", "latest", "--source", pgSSL, "--format", "tar.gz", "-o", "pg.tar.gz", "--log-json", "-v")
	run(2, "export", "latest", "--source", "postgresql://leaky:"+pgPW+"@"+pgHost+"/nosuchdb", "--format", "sql", "-o", "x.sql")
	run(0, "import", "pg.tar.gz", "--to", pgTo(pgDB+"_i1"), "-v")
	run(1, "import", "pg.tar.gz", "--to", "postgres://leaky:"+wrongPW+"@"+pgHost+"/"+pgDB+"_i2?sslmode=disable", "--log-json", "-v")

	r = run(0, "forget", "--source", pgQuery, "--keep-last", "1", "--dry-run", "-v")
	if !strings.Contains(r.stdout+r.stderr, "remove") && !strings.Contains(r.stdout+r.stderr, "forget") {
		t.Logf("forget --dry-run: %s", r)
	}
	run(0, "forget", "--keep-last", "10", "--log-json", "-v")
	run(0, "prune", "-v")
	run(0, "check", "--log-json", "-v")

	run(0, "run", "good")
	run(0, "run", "pgjob/verify", "--json")
	run(1, "run", "bad")

	hookMu.Lock()
	defer hookMu.Unlock()
	if len(hooks) < 3 {
		t.Errorf("%d webhook notifications, want at least 3", len(hooks))
	}
	for _, h := range hooks {
		for _, s := range secrets {
			if strings.Contains(h, s) {
				t.Errorf("a webhook notification holds the secret %q: %s", s, h)
			}
		}
		if m := mangled.FindString(h); m != "" {
			t.Errorf("a webhook notification was mangled (%q): %s", m, h)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSourceNamesOfEarlierReleases checks that snapshots recorded under the
// names earlier releases gave a bare DSN (engine://host:port/db as typed,
// e.g. mysql://127.0.0.1:PORT/db) are found by every spelling of the DSN:
// backup --skip-unchanged takes them as the parent, restore, export and
// snapshots --source find them, and forget treats both names as one source.
func TestSourceNamesOfEarlierReleases(t *testing.T) {
	my := testsrv.MariaDB(t)
	dir := setup(t)
	dbURL := mustURL(t, my.CreateDatabase(t, "oldnames"))
	db := strings.TrimPrefix(dbURL.Path, "/")
	my.Exec(t, db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
	repo := dir + "/repo"
	must(t, "init", "--repo", repo)

	// A snapshot recorded as an earlier release named it.
	oldName := fmt.Sprintf("mysql://127.0.0.1:%d/%s", my.Port, db)
	a := app.New(nil, nil, os.Getenv)
	ctx := context.Background()
	r, err := a.OpenRepository(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	src, err := a.Source(dbURL.String())
	if err != nil {
		t.Fatal(err)
	}
	if src.Name == oldName {
		t.Errorf("the source name is still the old form %q", src.Name)
	}
	src.Name = oldName
	if _, err := a.Backup(ctx, r, src, app.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	r.Close()

	spelled := fmt.Sprintf("mariadb://%s:%s@localhost:%d/%s", my.User, my.Password, my.Port, db)
	res := must(t, "backup", "--repo", repo, spelled, "--skip-unchanged")
	if !strings.Contains(res.stdout+res.stderr, "skipped, data identical") {
		t.Errorf("backup --skip-unchanged did not find the snapshot recorded under %s: %s", oldName, res)
	}
	must(t, "backup", "--repo", repo, dbURL.String(), "--tag", "new")
	if got := listSnapshots(t, "--repo", repo, "--source", spelled); len(got) != 2 {
		t.Errorf("snapshots --source %s: %d snapshots, want 2 (old and new name)", spelled, len(got))
	}
	must(t, "restore", "latest", "--repo", repo, "--source", oldName, "--to", "mysql://"+my.User+":"+my.Password+"@"+dbURL.Host+"/"+db+"_copy")
	must(t, "export", "latest", "--repo", repo, "--source", spelled, "--format", "sql", "-o", "x.sql")
	res = must(t, "forget", "--repo", repo, "--source", spelled, "--keep-last", "1", "--json")
	var plan []struct {
		Source string
		Keep   bool
	}
	if err := json.Unmarshal([]byte(res.stdout), &plan); err != nil {
		t.Fatalf("forget --json: %v\n%s", err, res.stdout)
	}
	kept := 0
	for _, p := range plan {
		if p.Keep {
			kept++
		}
	}
	if len(plan) != 2 || kept != 1 {
		t.Errorf("forget --keep-last 1 over the old and the new name: %+v, want one source of two snapshots, one kept", plan)
	}
	if got := listSnapshots(t, "--repo", repo); len(got) != 1 {
		t.Errorf("%d snapshots after forget, want 1", len(got))
	}
	my.Exec(t, "", "DROP DATABASE IF EXISTS `"+db+"_copy`")
}

// A name recorded by an earlier release could hold a password that holds
// a '/' (it was parsed as host and path): snapshots --json prints it
// redacted like the table does.
func TestSnapshotsJSONRedactsRecordedNames(t *testing.T) {
	got := snapshotsJSON([]*manifest.Snapshot{{ID: "x", Source: "postgres://u:2024/Summer!@db.example:5432/orders"}})
	if len(got) != 1 || strings.Contains(got[0].Source, "Summer") || strings.Contains(got[0].Source, "2024") {
		t.Errorf("snapshots --json source %q shows the password", got[0].Source)
	}
	if !strings.Contains(got[0].Source, "db.example") {
		t.Errorf("snapshots --json source %q lost the host", got[0].Source)
	}
}
