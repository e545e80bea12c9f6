package cli

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// --row-order and a source's row_order choose how PostgreSQL tables are
// read; the snapshot records it. Other engines refuse "physical", and an
// unknown order is a usage error.
func TestRowOrder(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pg.CreateDatabase(t, "roworder")
	pgExec(t, src, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i")
	must(t, "init", "--repo", "repo")
	order := func(args ...string) string {
		t.Helper()
		r := must(t, append([]string{"backup", "--repo", "repo", "--json"}, args...)...)
		var out []struct {
			Meta map[string]string `json:"meta"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 {
			t.Fatalf("backup --json: %v\n%s", err, r.stdout)
		}
		return out[0].Meta["row_order"]
	}
	if got := order(src); got != "key" {
		t.Errorf("default row_order %q, want key", got)
	}
	if got := order("--row-order", "physical", src); got != "physical" {
		t.Errorf("--row-order physical recorded %q", got)
	}
	cfg := "repositories: {main: {url: ./repo}}\nsources:\n  app:\n    dsn: " + src + "\n    row_order: physical\n"
	if err := os.WriteFile("snapdata.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := order("app"); got != "physical" {
		t.Errorf("source row_order physical recorded %q", got)
	}
	if got := order("--row-order", "key", "app"); got != "key" {
		t.Errorf("--row-order key over the source's physical recorded %q", got)
	}

	chinook(t, "chinook.sqlite")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--row-order", "physical", "sqlite:chinook.sqlite"}, "supported for PostgreSQL sources only"},
		{[]string{"--row-order", "heap", src}, `row order "heap": expected key or physical`},
	} {
		r := snap(t, append([]string{"backup", "--repo", "repo"}, c.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("backup %v: %s", c.args, r)
		}
	}
}

// pgExec runs sql on the PostgreSQL database at dsn.
func pgExec(t *testing.T, dsn, sql string) {
	t.Helper()
	pgConn(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql)
		return err
	})
}

// pgString returns the one value sql selects from the database at dsn, as text.
func pgString(t *testing.T, dsn, sql string) string {
	t.Helper()
	var v string
	pgConn(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, sql).Scan(&v)
	})
	return v
}

func pgConn(t *testing.T, dsn string, fn func(context.Context, *pgx.Conn) error) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := fn(ctx, c); err != nil {
		t.Fatal(err)
	}
}
