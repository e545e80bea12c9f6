package postgres_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/engine"
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

	dst := src.WithDatabase("rich_e2e_restored")
	mustRun("restore", "latest", "--repo", repo, "--to", dst.Raw, "--jobs", "2")
	e := postgres.New()
	want, err := e.Checksums(context.Background(), src, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	postgres.CompareChecksums(t, e, want, dst)
	postgres.SameSchema(t, pg, src, dst)

	// A second restore into the now non-empty target is refused (exit 1)
	// with a clear message, and works with --clean.
	code, _, errs := run("restore", "latest", "--repo", repo, "--to", dst.Raw)
	if code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("restore into a non-empty target: exit %d, %s", code, errs)
	}
	mustRun("restore", "latest", "--repo", repo, "--to", dst.Raw, "--clean")

	out := mustRun("verify", "latest", "--repo", repo, "--scratch", pg.DSN("postgres"))
	if !strings.Contains(out, "app.users") {
		t.Errorf("verify output names no tables:\n%s", out)
	}

	sqlFile := filepath.Join(t.TempDir(), "dump.sql")
	mustRun("export", "latest", "--repo", repo, "--format", "sql", "-o", sqlFile)
	if fi, err := os.Stat(sqlFile); err != nil || fi.Size() == 0 {
		t.Fatalf("export wrote nothing: %v", err)
	}
	exported := postgres.NewDB(t, pg, "rich_e2e_exported")
	postgres.Psql(t, pg, exported, sqlFile)
	postgres.CompareChecksums(t, e, want, exported)
}
