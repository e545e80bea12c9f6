package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// restore sends a PostgreSQL table with a timestamp in COPY binary, and
// --text-copy sends it as text; both restore every row.
func TestRestoreTextCopy(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pg.CreateDatabase(t, "textcopy")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL); INSERT INTO t SELECT i, now() - i * interval '1 hour' FROM generate_series(1, 1000) i"); err != nil {
		t.Fatal(err)
	}
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", src)
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{nil, "format=binary"},
		{[]string{"--text-copy"}, "format=text"},
	} {
		target := pg.DSN("textcopy_restored_" + strings.TrimPrefix(c.want, "format="))
		r := must(t, append([]string{"restore", "--repo", "repo", "latest", "--to", target, "-v"}, c.flags...)...)
		if !strings.Contains(r.stderr, "table=public.t "+c.want) {
			t.Errorf("restore %v: no %q in the log:\n%s", c.flags, "table=public.t "+c.want, r.stderr)
		}
		tc, err := pgx.Connect(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = tc.QueryRow(ctx, "SELECT count(*) FROM t JOIN (SELECT 1) x ON true").Scan(&n)
		tc.Close(ctx)
		if err != nil || n != 1000 {
			t.Errorf("restore %v: %d rows (%v), want 1000", c.flags, n, err)
		}
	}
}
