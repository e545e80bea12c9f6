package postgres_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// psqlLoad loads a script into database db of pg with psql (stopping at
// the first error) and returns its error and output.
func psqlLoad(t *testing.T, pg *testsrv.PG, db, file string) (string, error) {
	t.Helper()
	u := mustURL(t, pg.DSN(db))
	u.User = nil
	u.RawQuery = "sslmode=disable&user=" + pg.User
	cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", u.String(), "-f", file)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pg.Password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestExportNoOwnerNoPrivileges: export --no-owner --no-privileges writes
// no ALTER … OWNER TO and no GRANT/REVOKE, and the script loads into a
// server where the owner and the grantee do not exist; the plain export
// (which has both) does not.
func TestExportNoOwnerNoPrivileges(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := pg.CreateDatabase(t, "export_owner_src")
	srcDB := strings.TrimPrefix(mustURL(t, src).Path, "/")
	pg.Exec(t, "postgres", "CREATE ROLE export_owner_x NOLOGIN", "CREATE ROLE export_reader_x NOLOGIN", "GRANT CREATE ON DATABASE "+srcDB+" TO export_owner_x")
	pg.Exec(t, srcDB,
		"CREATE SCHEMA app AUTHORIZATION export_owner_x",
		"SET ROLE export_owner_x",
		"CREATE TABLE app.items (id int PRIMARY KEY, name text)",
		"INSERT INTO app.items VALUES (1, 'one'), (2, 'two')",
		"CREATE VIEW app.names AS SELECT name FROM app.items",
		"GRANT SELECT ON app.items TO export_reader_x",
		"ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO export_reader_x",
		"RESET ROLE",
	)
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "export-owner-pw")
	c := &rolesCLI{t: t, secrets: []string{pg.Password}}
	c.must("init", "--repo", repo)
	c.must("backup", "--repo", repo, src)
	dir := t.TempDir()
	plain, bare, noOwner := filepath.Join(dir, "plain.sql"), filepath.Join(dir, "bare.sql"), filepath.Join(dir, "noowner.sql")
	c.must("export", "latest", "--repo", repo, "-o", plain)
	c.must("export", "latest", "--repo", repo, "-o", bare, "--no-owner", "--no-privileges")
	c.must("export", "latest", "--repo", repo, "-o", noOwner, "--no-owner")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	owner := regexp.MustCompile(`(?m)^ALTER .* OWNER TO `)
	grant := regexp.MustCompile(`(?m)^(GRANT|REVOKE|ALTER DEFAULT PRIVILEGES) `)
	if s := read(plain); !owner.MatchString(s) || !grant.MatchString(s) {
		t.Fatalf("the plain export lacks OWNER TO or GRANT lines: the test proves nothing")
	}
	if s := read(bare); owner.MatchString(s) || grant.MatchString(s) {
		t.Errorf("export --no-owner --no-privileges still has %q / %q", owner.FindString(s), grant.FindString(s))
	}
	if s := read(noOwner); owner.MatchString(s) || !grant.MatchString(s) {
		t.Errorf("export --no-owner: OWNER TO present %v, GRANT present %v (want false, true)", owner.MatchString(s), grant.MatchString(s))
	}

	// A server without the roles: drop them (and the source).
	pg.Exec(t, "postgres", "DROP DATABASE "+srcDB+" WITH (FORCE)",
		"REVOKE CREATE ON DATABASE postgres FROM export_owner_x",
		"DROP ROLE export_owner_x", "DROP ROLE export_reader_x")
	target := strings.TrimPrefix(mustURL(t, pg.CreateDatabase(t, "export_owner_plain")).Path, "/")
	if out, err := psqlLoad(t, pg, target, plain); err == nil || !strings.Contains(out, "does not exist") {
		t.Errorf("the plain export loaded where its roles do not exist (%v): %s", err, out)
	}
	target = strings.TrimPrefix(mustURL(t, pg.CreateDatabase(t, "export_owner_bare")).Path, "/")
	if out, err := psqlLoad(t, pg, target, bare); err != nil {
		t.Fatalf("export --no-owner --no-privileges does not load where its roles do not exist: %v\n%s", err, out)
	}
	if n := pgQuery[int](t, pg, target, "SELECT count(*)::int FROM app.names"); n != 2 {
		t.Errorf("loaded %d rows", n)
	}
	if got := pgQuery[string](t, pg, target, "SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'"); got != pg.User {
		t.Errorf("items belongs to %q, want the loading user %q", got, pg.User)
	}
}
