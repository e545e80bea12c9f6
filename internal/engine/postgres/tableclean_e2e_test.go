package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/engine/postgres"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// issue 18, as reported: restore a snapshot into a database, create
// another table there, then restore --table T --clean. Every other table
// keeps its rows, the extra table survives, and the summary counts one
// table.
func TestRestoreTableCleanCLI(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := postgres.LoadRich(t, pg)
	repo := t.TempDir() + "/repo"
	t.Setenv("SNAPDATA_PASSWORD", "table-clean-pw")
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("snapdata %s: exit %d\n%s\n%s", args[0], code, out.String(), errb.String())
		}
		return out.String()
	}
	run("init", "--repo", repo)
	run("backup", "--repo", repo, src.Raw)
	dst := src.WithDatabase("rich_cli_table_clean")
	run("restore", "latest", "--repo", repo, "--to", dst.Raw)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dst.Raw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE public.extra AS SELECT g AS id FROM generate_series(1, 16000) g;
DELETE FROM app.nopk`); err != nil {
		t.Fatal(err)
	}
	out := run("restore", "latest", "--repo", repo, "--to", dst.Raw, "--table", "app.nopk", "--clean")
	if !strings.Contains(out, ", 1 tables)") {
		t.Errorf("summary: %s, want 1 table", out)
	}
	for q, want := range map[string]int64{
		"SELECT count(*) FROM public.extra":   16000,
		"SELECT count(*) FROM app.nopk":       5,
		"SELECT count(*) FROM app.users":      4,
		"SELECT count(*) FROM app.events":     300,
		"SELECT count(*) FROM app.user_names": 4,
	} {
		var n int64
		if err := c.QueryRow(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", q, n, err, want)
		}
	}
}
