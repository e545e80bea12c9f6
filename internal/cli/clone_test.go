package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// loadPGScript creates a database and loads a psql script into it.
func loadPGScript(t *testing.T, pg *testsrv.PG, name, script string) string {
	t.Helper()
	d := pg.CreateDatabase(t, name)
	cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d, "-f", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load %s: %v\n%s", script, err, out)
	}
	return d
}

func pgChinook(t *testing.T, pg *testsrv.PG) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "internal/engine/postgres/testdata/chinook_postgresql.sql"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`\c chinook;`))
	if i < 0 {
		t.Fatal(`chinook script has no \c chinook`)
	}
	f := filepath.Join(t.TempDir(), "chinook.sql")
	if err := os.WriteFile(f, b[i+len(`\c chinook;`):], 0o644); err != nil {
		t.Fatal(err)
	}
	return loadPGScript(t, pg, "chinook", f)
}

func myScript(t *testing.T, my *testsrv.My, name, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile("(?m)^(DROP DATABASE|CREATE DATABASE|USE) .*$").ReplaceAll(b, nil)
	d := my.CreateDatabase(t, name)
	db := strings.TrimPrefix(d[strings.LastIndex(d, "/"):], "/")
	myLoad(t, my, db, b)
	return d
}

func myLoad(t *testing.T, my *testsrv.My, db string, script []byte) {
	t.Helper()
	cmd := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, db)
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load into %s: %v\n%s", db, err, out)
	}
}

func mustParse(t *testing.T, s string) *dsn.DSN {
	t.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// latestTables is the latest snapshot's manifest tables in repo.
func latestTables(t *testing.T, repo string) []manifest.Table {
	t.Helper()
	snaps := listSnapshots(t, "--repo", repo)
	if len(snaps) == 0 {
		t.Fatalf("no snapshots in %s", repo)
	}
	var out []manifest.Table
	for _, tb := range snaps[len(snaps)-1].Tables {
		out = append(out, manifest.Table{Name: tb.Name, Rows: tb.Rows, Checksum: tb.Checksum})
	}
	return out
}

// sameRows checks that database d holds exactly the rows of the snapshot
// tables want (row counts and checksums, as verify compares them).
func sameRows(t *testing.T, d string, want []manifest.Table) {
	t.Helper()
	target := mustParse(t, d)
	eng := app.DefaultEngines()[target.Engine]
	var got []manifest.Table
	var err error
	opts := engine.ChecksumOptions{Private: true}
	if cm, ok := eng.(engine.ChecksumMatcher); ok {
		got, err = cm.ChecksumsLike(context.Background(), target, want, opts)
	} else {
		got, err = eng.(engine.Checksummer).Checksums(context.Background(), target, nil, opts)
	}
	if err != nil {
		t.Fatalf("checksums of %s: %v", target, err)
	}
	verdicts, ok := app.CompareTables(want, got)
	if !ok || len(got) != len(want) {
		t.Fatalf("%s does not hold the snapshot's rows (%d tables, want %d): %+v", target, len(got), len(want), verdicts)
	}
}

// pgSchema is pg_dump --schema-only of d without owners, grants and the
// lines that name the database.
func pgSchema(t *testing.T, pg *testsrv.PG, d string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pg.BinDir(), "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", "--no-comments", "-d", d).Output()
	if err != nil {
		t.Fatalf("pg_dump %s: %v", d, err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "--") || strings.HasPrefix(l, `\restrict`) || strings.HasPrefix(l, `\unrestrict`) || l == "" {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// myTables is SHOW CREATE TABLE of every table of d.
func myTables(t *testing.T, my *testsrv.My, d string) string {
	t.Helper()
	db := mustParse(t, d).Database()
	out, err := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, "-N", "-B", "-e",
		"SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '"+db+"' ORDER BY 1").Output()
	if err != nil {
		t.Fatalf("list tables of %s: %v", db, err)
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, _, _ := strings.Cut(l, "\t")
		if name == "" {
			continue
		}
		o, err := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, "-N", "-B", db, "-e", "SHOW CREATE TABLE `"+name+"`").Output()
		if err != nil {
			t.Fatalf("show create table %s: %v", name, err)
		}
		s := regexp.MustCompile(` AUTO_INCREMENT=\d+`).ReplaceAllString(string(o), "")
		b.WriteString(strings.ReplaceAll(s, "`"+db+"`.", "") + "\n")
	}
	return b.String()
}

// databasesLike lists the databases of a server whose names start with
// prefix.
func pgDatabasesLike(t *testing.T, pg *testsrv.PG, prefix string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-At", "-d", pg.DSN("postgres"), "-c",
		"SELECT datname FROM pg_database WHERE left(datname, "+fmt.Sprint(len(prefix))+") = '"+prefix+"' ORDER BY 1").Output()
	if err != nil {
		t.Fatalf("list databases: %v", err)
	}
	s := strings.Fields(string(out))
	sort.Strings(s)
	return s
}

func myDatabasesLike(t *testing.T, my *testsrv.My, prefix string) []string {
	t.Helper()
	out, err := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, "-N", "-B", "-e",
		"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '"+prefix+"%'").Output()
	if err != nil {
		t.Fatalf("list databases: %v", err)
	}
	return strings.Fields(string(out))
}

func writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile("snapdata.yaml", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A PostgreSQL clone of Chinook and of the rich schema: into a database
// that does not exist yet, then again over it (the swap); rows identical
// to the snapshot, schema identical to the source, no leftovers, and the
// status names the snapshot.
func TestClonePostgres(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	for _, c := range []struct {
		name, src string
	}{
		{"chinook", pgChinook(t, pg)},
		{"rich", loadPGScript(t, pg, "rich", filepath.Join(repoRoot(t), "internal/engine/postgres/testdata/rich.sql"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := pg.DSN("dev_" + c.name + "_copy")
			writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo-%[1]s }
sources:
  prod: { dsn: "%[2]s" }
clones:
  dev:
    from: { source: prod }
    repository: main
    to: "%[3]s"
    allow: ["postgres://*@127.0.0.1:%[4]d/dev_*"]
`, c.name, c.src, target, pg.Port))
			must(t, "init", "--repo", "main")
			r := must(t, "clone", "dev", "--dry-run")
			for _, want := range []string{"does not exist yet", "allowed by:", "postgres://*@127.0.0.1", "a fresh snapshot", "steps:"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("dry run does not say %q:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, pg.Password) {
				t.Fatal("the plan shows a password")
			}
			if got := pgDatabasesLike(t, pg, "dev_"+c.name); len(got) != 0 {
				t.Fatalf("--dry-run created %v", got)
			}
			must(t, "clone", "dev")
			sameRows(t, target, latestTables(t, "repo-"+c.name))
			if a, b := pgSchema(t, pg, c.src), pgSchema(t, pg, target); a != b {
				t.Errorf("schema of the copy differs from the source's:\nsource:\n%s\ncopy:\n%s", a, b)
			}
			// Production changes; a second clone swaps the new copy in.
			pg.Exec(t, mustParse(t, c.src).Database(), "CREATE TABLE added_later (id int PRIMARY KEY)", "INSERT INTO added_later VALUES (1), (2)")
			must(t, "clone", "dev")
			tables := latestTables(t, "repo-"+c.name)
			sameRows(t, target, tables)
			if got := pgDatabasesLike(t, pg, "snapdata_"); len(got) != 0 {
				t.Errorf("leftover databases after the clone: %v", got)
			}
			// keep_previous keeps one previous copy: the newest.
			must(t, "clone", "dev", "--keep-previous")
			pg.Exec(t, mustParse(t, c.src).Database(), "INSERT INTO added_later VALUES (3)")
			r = must(t, "clone", "dev", "--keep-previous")
			prev := pgDatabasesLike(t, pg, "snapdata_prev_")
			if len(prev) != 1 || !strings.Contains(r.stdout, "previous copy kept as "+prev[0]) {
				t.Fatalf("previous copies: %v; %s", prev, r)
			}
			sameRows(t, pg.DSN(prev[0]), tables)
			pg.Exec(t, "postgres", "DROP DATABASE "+prev[0])
			tables = latestTables(t, "repo-"+c.name)
			sameRows(t, target, tables)
			st := must(t, "clone", "status", "dev")
			snaps := listSnapshots(t, "--repo", "repo-"+c.name)
			if !strings.Contains(st.stdout, snaps[len(snaps)-1].ID[:8]) {
				t.Errorf("status does not name the latest snapshot %s: %s", snaps[len(snaps)-1].ID[:8], st.stdout)
			}
		})
	}
}

func TestCloneMariaDB(t *testing.T) {
	my := testsrv.MariaDB(t)
	setup(t)
	for _, c := range []struct {
		name, src string
	}{
		{"chinook", myScript(t, my, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))},
		{"rich", myScript(t, my, "rich", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/rich.sql"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := my.DSN("dev_" + c.name + "_copy")
			writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo-%[1]s }
sources:
  prod: { dsn: "%[2]s" }
clones:
  dev:
    from: { source: prod }
    repository: main
    to: "%[3]s"
    allow: ["mysql://*@127.0.0.1:%[4]d/dev_*"]
`, c.name, c.src, target, my.Port))
			must(t, "init", "--repo", "main")
			must(t, "clone", "dev")
			sameRows(t, target, latestTables(t, "repo-"+c.name))
			want := myTables(t, my, c.src)
			if got := myTables(t, my, target); got != want {
				t.Errorf("tables of the copy differ from the source's:\nsource:\n%s\ncopy:\n%s", want, got)
			}
			must(t, "clone", "dev")
			sameRows(t, target, latestTables(t, "repo-"+c.name))
			if got := myTables(t, my, target); got != want {
				t.Errorf("after the swap, tables differ from the source's:\nsource:\n%s\ncopy:\n%s", want, got)
			}
			if c.name != "rich" {
				return
			}
			if a, b := myObjects(t, my, c.src), myObjects(t, my, target); a != b {
				t.Errorf("after the swap, routines, triggers and events differ: source %s, copy %s", a, b)
			}
			if got := myDatabasesLike(t, my, "snapdata\\_"); len(got) != 0 {
				t.Errorf("leftover databases after the clone: %v", got)
			}
			snaps := listSnapshots(t, "--repo", "repo-"+c.name)
			if st := must(t, "clone", "status", "dev"); !strings.Contains(st.stdout, "holds snapshot "+snaps[len(snaps)-1].ID[:8]) {
				t.Errorf("status: %s", st.stdout)
			}
		})
	}
}

func TestCloneSQLite(t *testing.T) {
	dir := setup(t)
	chinook(t, "prod.db")
	writeConfig(t, `
repositories:
  main: { url: ./repo }
sources:
  prod: { dsn: "sqlite:prod.db" }
clones:
  dev:
    from: { source: prod }
    repository: main
    to: "sqlite:dev/app.db"
    allow: ["sqlite:./dev/*.db"]
`)
	if err := os.Mkdir("dev", 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, "init", "--repo", "main")
	must(t, "clone", "dev")
	sameRows(t, "sqlite:"+filepath.Join(dir, "dev/app.db"), latestTables(t, "repo"))
	schema := func(p string) string {
		var b strings.Builder
		rows, err := openDB(t, p).Query("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY 1, 2")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, n, s string
			if err := rows.Scan(&a, &n, &s); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s %s\n", a, n, s)
		}
		return b.String()
	}
	if a, b := schema("prod.db"), schema("dev/app.db"); a != b {
		t.Errorf("schema differs:\n%s\n%s", a, b)
	}
	db := openDB(t, "prod.db")
	if _, err := db.Exec("INSERT INTO Genre (GenreId, Name) VALUES (1000, 'Later')"); err != nil {
		t.Fatal(err)
	}
	must(t, "clone", "dev", "--keep-previous")
	sameRows(t, "sqlite:"+filepath.Join(dir, "dev/app.db"), latestTables(t, "repo"))
	entries, _ := os.ReadDir("dev")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "app.db app.db.previous app.db.snapdata-clone.json" {
		t.Errorf("dev/ holds %v", names)
	}
	st := must(t, "clone", "status", "dev")
	if !strings.Contains(st.stdout, "holds snapshot") {
		t.Errorf("status: %s", st.stdout)
	}
}

// myObjects names d's routines, triggers and events.
func myObjects(t *testing.T, my *testsrv.My, d string) string {
	t.Helper()
	db := mustParse(t, d).Database()
	out, err := exec.Command("mariadb", "--no-defaults", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, "-N", "-B", "-e",
		"SELECT GROUP_CONCAT(x ORDER BY x) FROM (SELECT CONCAT('routine ', ROUTINE_NAME) x FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '"+db+"'"+
			" UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME, ' ', ACTION_STATEMENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '"+db+"'"+
			" UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '"+db+"') o").Output()
	if err != nil {
		t.Fatalf("list objects of %s: %v", db, err)
	}
	s := strings.TrimSpace(string(out))
	if s == "NULL" || s == "" {
		t.Fatalf("%s has no routines, triggers or events", db)
	}
	return s
}

// Refusals: exit 3, the target's rows unchanged, nothing created, and the
// message names the target and the patterns.
func TestCloneRefusals(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pgChinook(t, pg)
	target := pg.CreateDatabase(t, "acc")
	pg.Exec(t, mustParse(t, target).Database(), "CREATE TABLE marker (v text)", "INSERT INTO marker VALUES ('old')")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", target)
	accTables := latestTables(t, "repo")
	localhostSrc := strings.Replace(src, "127.0.0.1", "localhost", 1)
	writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo }
sources:
  prod: { dsn: "%[1]s" }
  prodlocal: { dsn: "%[5]s" }
protect: ["mysql://prod-db", "postgres://*@127.0.0.1:%[3]d/acc_protected"]
clones:
  notallowed:
    from: { source: prod }
    to: "%[2]s"
    allow: ["postgres://*@127.0.0.1:%[3]d/dev_*", "file:./*.sql"]
  protected:
    from: { source: prod }
    to: "%[6]s"
    allow: ["postgres://*@*:*/*"]
  itself:
    from: { source: prod }
    to: "%[1]s"
    allow: ["postgres://*@*:*/*"]
  othername:
    from: { source: prodlocal }
    to: "%[1]s"
    allow: ["postgres://*@*:*/*"]
  sqlitefile:
    from: { source: "sqlite:./prod.db" }
    to: "sqlite:./link/prod.db"
    allow: ["sqlite:./**", "sqlite:./*/*.db"]
`, src, target, pg.Port, "", localhostSrc, pg.DSN("acc_protected")))
	chinook(t, "prod.db")
	if err := os.Symlink(".", "link"); err != nil {
		t.Fatal(err)
	}
	srcTables := func() []manifest.Table {
		must(t, "backup", "--repo", "main", "prod")
		return latestTables(t, "repo")
	}
	prodTables := srcTables()
	for _, c := range []struct {
		clone string
		says  []string
	}{
		{"notallowed", []string{"matches none of the allow patterns", mustParse(t, target).Database(), "postgres://*@127.0.0.1", "file:./*.sql"}},
		{"protected", []string{"protect", "acc_protected"}},
		{"itself", []string{"source itself"}},
		{"othername", []string{"source itself"}},
		{"sqlitefile", []string{"source itself"}},
	} {
		for _, dry := range []bool{true, false} {
			args := []string{"clone", c.clone}
			if dry {
				args = append(args, "--dry-run")
			}
			r := snap(t, args...)
			if r.code != ExitRefused {
				t.Errorf("clone %s (dry run %v): %s, want exit 3", c.clone, dry, r)
				continue
			}
			for _, w := range c.says {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("clone %s: refusal does not say %q: %s", c.clone, w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, pg.Password) {
				t.Errorf("refusal shows a password: %s", r.stderr)
			}
		}
	}
	sameRows(t, target, accTables)
	sameRows(t, src, prodTables)
	if got := pgDatabasesLike(t, pg, "snapdata_"); len(got) != 0 {
		t.Errorf("a refused clone created %v", got)
	}
	if got := pgDatabasesLike(t, pg, "acc_protected"); len(got) != 0 {
		t.Errorf("a refused clone created %v", got)
	}
	// Ad hoc: the same rules, and restore and import obey protect:.
	r := snap(t, "clone", "--from", "prod", "--to", target)
	if r.code != ExitRefused || !strings.Contains(r.stderr, "allow list is empty") {
		t.Errorf("ad hoc clone without --allow: %s", r)
	}
	r = snap(t, "restore", "--repo", "main", "latest", "--source", "prod", "--to", pg.DSN("acc_protected"))
	if r.code != ExitRefused || !strings.Contains(r.stderr, "protect") {
		t.Errorf("restore into a protected database: %s", r)
	}
	must(t, "export", "--repo", "main", "latest", "--source", "prod", "--format", "tar.gz", "-o", "x.tar.gz")
	r = snap(t, "import", "x.tar.gz", "--to", pg.DSN("acc_protected"))
	if r.code != ExitRefused || !strings.Contains(r.stderr, "protect") {
		t.Errorf("import into a protected database: %s", r)
	}
}

// A failing post hook fails the clone; the old target stays as it was and
// nothing is left behind.
func TestCloneFailingHookKeepsTarget(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	dir := setup(t)
	chinook(t, "prod.db")
	pgTarget := pg.CreateDatabase(t, "hook")
	pg.Exec(t, mustParse(t, pgTarget).Database(), "CREATE TABLE marker (v text)", "INSERT INTO marker VALUES ('old')")
	myTarget := my.CreateDatabase(t, "hook")
	my.Exec(t, mustParse(t, myTarget).Database(), "CREATE TABLE marker (id int PRIMARY KEY, v varchar(10))", "INSERT INTO marker VALUES (1, 'old')")
	pgSrc := pgChinook(t, pg)
	mySrc := myScript(t, my, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
	must(t, "init", "--repo", "before")
	must(t, "backup", "--repo", "before", pgTarget)
	pgOld := latestTables(t, "before")
	must(t, "backup", "--repo", "before", myTarget)
	myOld := latestTables(t, "before")
	chinook(t, "old.db")
	must(t, "backup", "--repo", "before", "sqlite:old.db")
	if err := os.Rename("old.db", "dev.db"); err != nil {
		t.Fatal(err)
	}
	liteOld := latestTables(t, "before")
	writeConfig(t, fmt.Sprintf(`
sources:
  pg: { dsn: "%s" }
  my: { dsn: "%s" }
clones:
  pg:
    from: { source: pg }
    to: "%s"
    allow: ["postgres://*@127.0.0.1:*/*"]
    hooks: { post: [ { command: [sh, -c, "test -n \"$SNAPDATA_TARGET_DSN\" && echo hook ran >&2 && exit 7"] } ] }
  my:
    from: { source: my }
    to: "%s"
    allow: ["mysql://*@127.0.0.1:*/*"]
    hooks: { post: [ { command: ["false"] } ] }
  lite:
    from: { source: "sqlite:prod.db" }
    to: "sqlite:dev.db"
    allow: ["sqlite:./dev.db"]
    hooks: { pre_data: [ { command: ["false"] } ] }
`, pgSrc, mySrc, pgTarget, myTarget))
	for _, name := range []string{"pg", "my", "lite"} {
		r := snap(t, "clone", name)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "hook failed, the target was not changed") {
			t.Errorf("clone %s with a failing hook: %s", name, r)
		}
		if name == "pg" && !strings.Contains(r.stderr, "hook ran") {
			t.Errorf("the hook's output is not in the error: %s", r.stderr)
		}
	}
	sameRows(t, pgTarget, pgOld)
	sameRows(t, myTarget, myOld)
	sameRows(t, "sqlite:"+filepath.Join(dir, "dev.db"), liteOld)
	if got := pgDatabasesLike(t, pg, "snapdata_"); len(got) != 0 {
		t.Errorf("leftovers: %v", got)
	}
	if got := myDatabasesLike(t, my, "snapdata\\_"); len(got) != 0 {
		t.Errorf("leftovers: %v", got)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(entries) != 0 {
		t.Errorf("leftover files: %v", entries)
	}
}

// Bad input exits 2 with a message that says what is wrong.
func TestCloneBadInput(t *testing.T) {
	setup(t)
	chinook(t, "prod.db")
	base := `
sources:
  prod: { dsn: "sqlite:prod.db" }
clones:
  dev:
    from: { source: prod }
    to: "sqlite:dev.db"
    allow: ["sqlite:./dev.db"]
`
	writeConfig(t, base)
	r := snap(t, "clone", "nosuch")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `unknown clone "nosuch"`) || !strings.Contains(r.stderr, "dev") {
		t.Errorf("unknown clone: %s", r)
	}
	writeConfig(t, base+`    credentials:
      users: [ { name: dev, password: x, access: superuser } ]
`)
	r = snap(t, "clone", "dev")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `unknown access "superuser"`) || !strings.Contains(r.stderr, "snapdata.yaml:") {
		t.Errorf("unknown access: %s", r)
	}
	t.Setenv("DEV_PASSWORD_UNSET", "")
	os.Unsetenv("DEV_PASSWORD_UNSET")
	writeConfig(t, base+`    credentials:
      users: [ { name: dev, password: "${DEV_PASSWORD_UNSET?set the dev password}", access: readonly } ]
`)
	r = snap(t, "clone", "dev")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "set the dev password") {
		t.Errorf("missing password variable: %s", r)
	}
	writeConfig(t, base+`    credentials:
      users: [ { name: dev, password: "pw", access: readonly } ]
`)
	r = snap(t, "clone", "dev")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "SQLite database has no logins") {
		t.Errorf("users on SQLite: %s", r)
	}
	writeConfig(t, base+`    keep_rows: [ { table: t } ]
`)
	r = snap(t, "clone", "dev")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "keep_rows[0]") {
		t.Errorf("keep rule without where: %s", r)
	}
	r = snap(t, "clone", "dev", "--from", "prod")
	if r.code != ExitUsage {
		t.Errorf("NAME and --from: %s", r)
	}
	r = snap(t, "clone")
	if r.code != ExitUsage {
		t.Errorf("no NAME: %s", r)
	}
	if _, err := os.Stat("dev.db"); err == nil {
		t.Error("a refused clone wrote dev.db")
	}
}

// Clones to a .sql file load with the engine's own client; to a .tar.gz
// with snapdata import; the rows are the snapshot's.
func TestCloneToFiles(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	dir := setup(t)
	chinook(t, "prod.db")
	pgSrc := pgChinook(t, pg)
	mySrc := myScript(t, my, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
	writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo }
sources:
  pg: { dsn: "%s" }
  my: { dsn: "%s" }
  lite: { dsn: "sqlite:prod.db" }
`, pgSrc, mySrc))
	must(t, "init", "--repo", "main")
	for _, c := range []struct {
		source string
		load   func(t *testing.T, file string) string // returns the DSN loaded
	}{
		{"pg", func(t *testing.T, file string) string {
			d := pg.CreateDatabase(t, "fromsql")
			cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d, "-f", file)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("psql -f %s: %v\n%s", file, err, out)
			}
			return d
		}},
		{"my", func(t *testing.T, file string) string {
			d := my.CreateDatabase(t, "fromsql")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			myLoad(t, my, mustParse(t, d).Database(), b)
			return d
		}},
		{"lite", func(t *testing.T, file string) string {
			out := filepath.Join(dir, "fromsql.db")
			cmd := exec.Command("sqlite3", "-bail", out, ".read "+file)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sqlite3 .read %s: %v\n%s", file, err, b)
			}
			return "sqlite:" + out
		}},
	} {
		t.Run(c.source, func(t *testing.T) {
			file := "out/" + c.source + ".sql"
			if err := os.MkdirAll("out", 0o755); err != nil {
				t.Fatal(err)
			}
			must(t, "clone", "--from", c.source, "--repository", "main", "--to", "file:"+file, "--allow", "file:./out/*.sql")
			tables := latestTables(t, "repo")
			sameRows(t, c.load(t, filepath.Join(dir, file)), tables)
			// From the stored snapshot, as a portable archive.
			tgz := "out/" + c.source + ".tar.gz"
			must(t, "clone", "--from", c.source, "--snapshot", "latest", "--from-repository", "main", "--to", "file:"+tgz, "--allow", "file:./out/*.tar.gz")
			into := "sqlite:" + filepath.Join(dir, "imported-"+c.source+".db")
			must(t, "import", tgz, "--to", into)
			got, err := app.DefaultEngines()["sqlite"].(engine.Checksummer).Checksums(context.Background(), mustParse(t, into), nil, engine.ChecksumOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rows := map[string]int64{}
			for _, tb := range got {
				rows[tb.Name] = tb.Rows
			}
			for _, tb := range tables {
				short := tb.Name[strings.LastIndex(tb.Name, ".")+1:]
				if rows[tb.Name] != tb.Rows && rows[short] != tb.Rows {
					t.Errorf("imported %s: table %s has %d rows, want %d", tgz, tb.Name, rows[short], tb.Rows)
				}
			}
			// A file target outside allow is refused.
			r := snap(t, "clone", "--from", c.source, "--repository", "main", "--to", "file:"+c.source+".sql", "--allow", "file:./out/*.sql")
			if r.code != ExitRefused {
				t.Errorf("file outside allow: %s", r)
			}
		})
	}
	left, _ := filepath.Glob(filepath.Join(dir, "out", ".*"))
	if len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

// A clone job: `run` (as serve would) refreshes the target; the plan and
// the outcome are logged as JSON; a refused target fails the job.
func TestCloneJob(t *testing.T) {
	dir := setup(t)
	chinook(t, "prod.db")
	writeConfig(t, `
repositories:
  main: { url: ./repo }
sources:
  prod: { dsn: "sqlite:prod.db" }
clones:
  dev:
    from: { source: prod }
    repository: main
    to: "sqlite:dev.db"
    allow: ["sqlite:./dev.db"]
  bad:
    from: { source: prod }
    to: "sqlite:prod-copy.db"
    allow: ["sqlite:./dev.db"]
jobs:
  - { name: nightly, clone: dev, schedule: "0 3 * * *" }
  - { name: badjob, clone: bad, schedule: "0 3 * * *" }
`)
	must(t, "init", "--repo", "main")
	t.Setenv("SNAPDATA_STATE_DIR", filepath.Join(dir, "state"))
	r := must(t, "run", "nightly", "--log-json")
	if !strings.Contains(r.stderr, `"msg":"clone plan"`) || !strings.Contains(r.stdout, "success") {
		t.Errorf("run nightly: %s", r)
	}
	sameRows(t, "sqlite:"+filepath.Join(dir, "dev.db"), latestTables(t, "repo"))
	r = snap(t, "run", "badjob")
	if r.code != ExitFailure || !strings.Contains(r.stdout+r.stderr, "matches none of the allow patterns") {
		t.Errorf("run badjob: %s", r)
	}
	if _, err := os.Stat("prod-copy.db"); err == nil {
		t.Error("the refused job wrote its target")
	}
	writeConfig(t, `
sources:
  prod: { dsn: "sqlite:prod.db" }
jobs:
  - { name: nightly, clone: nosuch }
`)
	r = snap(t, "run", "nightly")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `unknown clone "nosuch"`) {
		t.Errorf("job with an unknown clone: %s", r)
	}
}

// tables: include/exclude/exclude_data, --dry-run --json, and a clone
// across engines (MariaDB to SQLite through the portable format).
func TestCloneTablesJSONAndCrossEngine(t *testing.T) {
	my := testsrv.MariaDB(t)
	dir := setup(t)
	mySrc := myScript(t, my, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
	writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo }
sources:
  prod: { dsn: "%s" }
clones:
  laptop:
    from: { source: prod }
    repository: main
    to: "sqlite:laptop.db"
    allow: ["sqlite:./laptop.db"]
    tables: { exclude: [Playlist*], exclude_data: [InvoiceLine] }
    hooks:
      post: [ { command: [sh, -c, "echo $SNAPDATA_TARGET_DSN > hook-dsn.txt"] } ]
  same:
    from: { source: prod }
    repository: main
    to: "%s"
    allow: ["mysql://*@127.0.0.1:*/tables_*"]
    tables: { include: [Artist, Album, Track, Genre, MediaType], exclude_data: [Track] }
`, mySrc, my.DSN("tables_copy")))
	must(t, "init", "--repo", "main")
	must(t, "backup", "--repo", "main", "prod")
	r := must(t, "clone", "laptop", "--dry-run", "--json")
	var plan struct {
		Source      string `json:"source"`
		AllowedBy   string `json:"allowed_by"`
		CrossEngine bool   `json:"cross_engine"`
		Tables      []struct {
			Name string `json:"name"`
			Rows int64  `json:"rows"`
			Data bool   `json:"data"`
		} `json:"tables"`
		Hooks struct {
			Post []string `json:"post"`
		} `json:"hooks"`
		Steps []string `json:"steps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("--dry-run --json: %v\n%s", err, r.stdout)
	}
	names := map[string]bool{}
	for _, tb := range plan.Tables {
		names[tb.Name] = true
		if tb.Name == "InvoiceLine" && (tb.Data || tb.Rows != 0) {
			t.Errorf("InvoiceLine in the plan: %+v", tb)
		}
		if tb.Name == "Track" && tb.Rows != 3503 {
			t.Errorf("Track in the plan: %+v", tb)
		}
	}
	if !plan.CrossEngine || plan.AllowedBy != "sqlite:./laptop.db" || names["Playlist"] || names["PlaylistTrack"] || !names["Track"] || len(plan.Hooks.Post) != 1 || len(plan.Steps) == 0 {
		t.Errorf("plan: %+v", plan)
	}
	if _, err := os.Stat("laptop.db"); err == nil {
		t.Fatal("--dry-run wrote the target")
	}
	must(t, "clone", "laptop")
	lite := openDB(t, filepath.Join(dir, "laptop.db"))
	if n := scalar(t, lite, "SELECT count(*) FROM Track"); n != int64(3503) {
		t.Errorf("laptop Track rows: %v", n)
	}
	if n := scalar(t, lite, "SELECT count(*) FROM InvoiceLine"); n != int64(0) {
		t.Errorf("laptop InvoiceLine rows (exclude_data): %v", n)
	}
	if n := scalar(t, lite, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'Playlist%'"); n != int64(0) {
		t.Errorf("excluded tables present: %v", n)
	}
	hookDSN, err := os.ReadFile("hook-dsn.txt")
	if err != nil || !strings.Contains(string(hookDSN), "sqlite:") {
		t.Errorf("the hook did not get the copy's DSN: %q %v", hookDSN, err)
	}
	must(t, "clone", "same")
	target := mustParse(t, my.DSN("tables_copy")).Database()
	out, err := exec.Command("mariadb", "--no-defaults", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, "-p"+my.Password, "-N", "-B", target, "-e",
		"SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME), (SELECT COUNT(*) FROM Track), (SELECT COUNT(*) FROM Album) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "Album,Artist,Genre,MediaType,Track\t0\t347" {
		t.Errorf("include/exclude_data on MariaDB: %q", got)
	}
}
