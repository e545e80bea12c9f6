package postgres_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestPasswordFromEnvironment: a DSN without a password takes it from
// PGPASSWORD or a password file (~/.pgpass, PGPASSFILE), in snapdata's own
// sessions and in pg_dump alike: backup and restore work, and nothing
// prints the password. A wrong PGPASSWORD fails with exit 1.
func TestPasswordFromEnvironment(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := pg.CreateDatabase(t, "pgpass_src")
	pg.Exec(t, strings.TrimPrefix(mustURL(t, src).Path, "/"), "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
	noPW := func(raw string) string {
		u := mustURL(t, raw)
		u.User = url.User(pg.User)
		return u.String()
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PGPASSFILE", "")
	t.Setenv("PGPASSWORD", "")
	pgpass := fmt.Sprintf("%s:%d:*:%s:%s\n", pg.Host, pg.Port, pg.User, pg.Password)
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "pgpass-repo-pw")
	c := &rolesCLI{t: t, secrets: []string{pg.Password}}
	c.must("init", "--repo", repo)

	// No password anywhere: refused by the server.
	if code, _, errs := c.run("backup", "--repo", repo, noPW(src)); code != 1 || !strings.Contains(errs, "password") {
		t.Fatalf("backup without any password: exit %d, %s", code, errs)
	}
	for i, setup := range []func(){
		func() { t.Setenv("PGPASSWORD", pg.Password) },
		func() {
			t.Setenv("PGPASSWORD", "")
			if err := os.WriteFile(filepath.Join(home, ".pgpass"), []byte(pgpass), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			os.Remove(filepath.Join(home, ".pgpass"))
			f := filepath.Join(t.TempDir(), "pgpass")
			if err := os.WriteFile(f, []byte(pgpass), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PGPASSFILE", f)
		},
	} {
		setup()
		c.must("backup", "--repo", repo, noPW(src))
		dst := noPW(pg.DSN(fmt.Sprintf("pgpass_dst_%d_%d", i, os.Getpid())))
		c.must("restore", "latest", "--repo", repo, "--to", dst)
		if n := pgQuery[int](t, pg, strings.TrimPrefix(mustURL(t, dst).Path, "/"), "SELECT count(*)::int FROM t"); n != 2 {
			t.Errorf("case %d: restored %d rows", i, n)
		}
	}
	t.Setenv("PGPASSFILE", "")
	t.Setenv("PGPASSWORD", "wrong-pw-3c9a")
	c.secrets = append(c.secrets, "wrong-pw-3c9a")
	if code, _, errs := c.run("backup", "--repo", repo, noPW(src)); code != 1 || !strings.Contains(errs, "password authentication failed") {
		t.Errorf("backup with a wrong PGPASSWORD: exit %d, %s", code, errs)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
