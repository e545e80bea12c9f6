package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/cli/clitest"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/engine/postgres"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestEndToEndCLI runs init, backup, restore, verify and export through
// the command line against a local repository.
func TestEndToEndCLI(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := postgres.LoadRich(t, pg)
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "e2e-repo-pw")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
		for _, s := range []string{out.String(), errb.String()} {
			if strings.Contains(s, pg.Password) {
				t.Fatalf("snapdata %s printed the database password", args[0])
			}
		}
		return code, out.String(), errb.String()
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errs := run(args...)
		if code != 0 {
			t.Fatalf("snapdata %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args[:1], " "), code, out, errs)
		}
		return out
	}
	mustRun("init", "--repo", repo)
	mustRun("backup", "--repo", repo, src.Raw)

	// A wrong password and an unknown database: exit 1, a message that says
	// which, no password shown, no snapshot written.
	wrong := strings.Replace(src.Raw, ":"+pg.Password+"@", ":wrong-secret-pw@", 1)
	for _, c := range []struct{ dsn, want string }{
		{wrong, "password authentication failed"},
		{src.WithDatabase("no_such_db").Raw, `database "no_such_db" does not exist`},
	} {
		code, _, errs := run("backup", "--repo", repo, c.dsn)
		if code != 1 || !strings.Contains(errs, c.want) || strings.Contains(errs, "wrong-secret-pw") {
			t.Errorf("backup of %s: exit %d, %q; want 1 and a message saying %q", c.want, code, errs, c.want)
		}
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(mustRun("snapshots", "--repo", repo, "--json")), &snaps); err != nil || len(snaps) != 1 {
		t.Errorf("after two failed backups the repository holds %d snapshots (%v), want the one before", len(snaps), err)
	}

	dst := src.WithDatabase("rich_e2e_restored")
	mustRun("restore", "latest", "--repo", repo, "--to", dst.Raw, "--jobs", "2")
	e := postgres.New()
	want, err := e.Checksums(context.Background(), src, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	postgres.CompareChecksums(t, e, want, dst)
	postgres.SameSchema(t, pg, src, dst)

	// A second restore into the now non-empty target is refused by a
	// safety rule (exit 3) with a clear message, and works with --clean.
	code, _, errs := run("restore", "latest", "--repo", repo, "--to", dst.Raw)
	if code != 3 || !strings.Contains(errs, "not empty") {
		t.Errorf("restore into a non-empty target: exit %d, %s; want 3", code, errs)
	}
	mustRun("restore", "latest", "--repo", repo, "--to", dst.Raw, "--clean")

	out := mustRun("verify", "latest", "--repo", repo, "--scratch", pg.DSN("postgres"))
	if !strings.Contains(out, "app.users") {
		t.Errorf("verify output names no tables:\n%s", out)
	}

	// A manifest that no longer matches its data: verify exits 1, flags
	// exactly the two tables, and drops its scratch database all the same.
	tampered := enginetest.TamperLatest(t, repo, "e2e-repo-pw", "app.users", "app.events_2023")
	vcode, vout, verrs := run("verify", tampered[:10], "--repo", repo, "--scratch", pg.DSN("postgres"))
	if vcode != 1 || !strings.Contains(verrs, "failed verification") {
		t.Errorf("verify of a tampered manifest: exit %d, %s", vcode, verrs)
	}
	flagged := map[string]string{}
	for _, line := range strings.Split(vout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, "MISMATCH") {
			flagged[f[0]] = line
		}
	}
	if len(flagged) != 2 || !strings.Contains(flagged["app.users"], "manifest says") || !strings.Contains(flagged["app.events_2023"], "checksum differs") {
		t.Errorf("verify of a tampered manifest flagged %q, want app.users (rows) and app.events_2023 (checksum):\n%s", flagged, vout)
	}
	conn, err := pgx.Connect(context.Background(), pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var left int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'snapdata\\_verify\\_%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("verify left %d scratch databases (%v)", left, err)
	}
	conn.Close(context.Background())

	sqlFile := filepath.Join(t.TempDir(), "dump.sql")
	mustRun("export", "latest", "--repo", repo, "--format", "sql", "-o", sqlFile)
	if fi, err := os.Stat(sqlFile); err != nil || fi.Size() == 0 {
		t.Fatalf("export wrote nothing: %v", err)
	}
	exported := postgres.NewDB(t, pg, "rich_e2e_exported")
	postgres.Psql(t, pg, exported, sqlFile)
	postgres.CompareChecksums(t, e, want, exported)
}

// TestAllDatabasesCLI: backup --all-databases makes one snapshot per user
// database (not postgres or the templates) and picks up new ones.
func TestAllDatabasesCLI(t *testing.T) {
	pg := testsrv.NewPostgres(t, testsrv.PGOptions{}) // its own server: a known list of databases
	server := pg.DSN("postgres")
	clitest.AllDatabases(t, clitest.Server{
		DSN:         server,
		OtherScheme: strings.Replace(server, "postgres://", "postgresql://", 1),
		Secret:      pg.Password,
		CreateDatabase: func(t *testing.T, db string) {
			pg.Exec(t, "postgres", "CREATE DATABASE "+db)
			pg.Exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz)", "INSERT INTO t SELECT i, now() FROM generate_series(1, 10) i")
		},
	})
}
