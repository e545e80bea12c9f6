package cli

import (
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// restore sends a PostgreSQL table with a timestamp in COPY binary, and
// --text-copy sends it as text; both restore the same rows.
func TestRestoreTextCopy(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pg.CreateDatabase(t, "textcopy")
	pgExec(t, src, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL); INSERT INTO t SELECT i, now() - i * interval '1 hour 1.5 seconds' FROM generate_series(1, 1000) i")
	const digest = "SELECT count(*) || ' ' || md5(string_agg(id || '@' || at, ',' ORDER BY id)) FROM t"
	want := pgString(t, src, digest)
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
		if got := pgString(t, target, digest); got != want {
			t.Errorf("restore %v: rows %q, want %q", c.flags, got, want)
		}
	}
}
