package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// rolesCLI runs snapdata and fails the test when its output holds any of
// secrets (passwords and password hashes), without printing them.
type rolesCLI struct {
	t       *testing.T
	secrets []string
}

func (c *rolesCLI) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	for i, s := range c.secrets {
		if s != "" && strings.Contains(out.String()+errb.String(), s) {
			c.t.Fatalf("snapdata %s printed secret #%d (a password or a password hash)", args[0], i)
		}
	}
	return code, out.String(), errb.String()
}

func (c *rolesCLI) must(args ...string) (string, string) {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("snapdata %s: exit %d\nstdout: %s\nstderr: %s", args[0], code, out, errs)
	}
	return out, errs
}

// userDSN is pg's DSN for database db as user with password pw.
func userDSN(pg *testsrv.PG, user, pw, db string) string {
	u, _ := url.Parse(pg.DSN(db))
	u.User = url.UserPassword(user, pw)
	return u.String()
}

// canLogin reports whether user logs in to pg with pw.
func canLogin(t *testing.T, pg *testsrv.PG, user, pw string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, userDSN(pg, user, pw, "postgres"))
	if err != nil {
		return false
	}
	c.Close(ctx)
	return true
}

func pgQuery[T any](t *testing.T, pg *testsrv.PG, db, q string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v T
	if err := c.QueryRow(ctx, q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// TestRolesBackupRestore: an --all-databases backup stores the server's
// roles with their password hashes, memberships and settings; restore
// creates none without --roles; restore --roles creates them on a fresh
// server (the login role logs in with its original password), and into a
// server where they exist it changes nothing, the connecting role's
// password least of all.
func TestRolesBackupRestore(t *testing.T) {
	src := testsrv.NewPostgres(t, testsrv.PGOptions{})
	dst := testsrv.NewPostgres(t, testsrv.PGOptions{})
	const appPW = "app-login-secret-7f3a"
	src.Exec(t, "postgres",
		"CREATE ROLE readers NOLOGIN",
		"CREATE ROLE app LOGIN PASSWORD '"+appPW+"' CONNECTION LIMIT 5 CREATEDB",
		"CREATE ROLE auditor LOGIN PASSWORD 'auditor-secret-91c2' VALID UNTIL '2100-01-01 00:00:00+00'",
		"GRANT readers TO app WITH ADMIN OPTION",
		"GRANT readers TO auditor",
		"ALTER ROLE app SET search_path TO app, public",
		"ALTER ROLE app SET work_mem = '8MB'",
		"CREATE DATABASE shop OWNER app",
		"ALTER ROLE auditor IN DATABASE shop SET statement_timeout = '5s'",
	)
	src.Exec(t, "shop",
		"SET ROLE app",
		"CREATE TABLE items (id int PRIMARY KEY, name text)",
		"INSERT INTO items VALUES (1, 'one'), (2, 'two')",
		"GRANT SELECT ON items TO readers",
	)
	appHash := pgQuery[string](t, src, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
	dstSuperHash := pgQuery[string](t, dst, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = current_user")
	c := &rolesCLI{t: t, secrets: []string{appPW, "auditor-secret-91c2", appHash, src.Password, dst.Password, dstSuperHash}}
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "roles-repo-pw")
	c.must("init", "--repo", repo)
	out, _ := c.must("backup", "--repo", repo, "--all-databases", src.DSN(""), "--json")
	var snaps []struct {
		Source string            `json:"source"`
		Meta   map[string]string `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("backup --all-databases --json: %v, %d snapshots (want the one of shop)\n%s", err, len(snaps), out)
	}
	if m := snaps[0].Meta; !strings.HasPrefix(m["roles_passwords"], "stored") || !strings.Contains(m["roles"], "memberships") {
		t.Errorf("manifest meta says roles %q, passwords %q", m["roles"], m["roles_passwords"])
	}
	source := snaps[0].Source

	// Without --roles: no role is created (the data goes in without its
	// owners and grants).
	c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop_plain"), "--no-owner", "--no-privileges")
	if n := pgQuery[int](t, dst, "postgres", "SELECT count(*)::int FROM pg_roles WHERE rolname IN ('app', 'readers', 'auditor')"); n != 0 {
		t.Fatalf("restore without --roles created %d roles", n)
	}

	// With --roles: the roles, then the data with owners and grants. The
	// target database exists (empty), so the role's settings for the
	// source's database are set for it.
	dst.Exec(t, "postgres", "CREATE DATABASE shop")
	out, _ = c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop"), "--roles")
	for _, want := range []string{"role app: created", "role readers: created", "role auditor: created", "role snapdata: exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore --roles output lacks %q:\n%s", want, out)
		}
	}
	if !canLogin(t, dst, "app", appPW) {
		t.Error("app cannot log in to the new server with its original password: the hash was not carried")
	}
	if canLogin(t, dst, "app", "wrong-password") {
		t.Error("app logs in with a wrong password")
	}
	if got := pgQuery[string](t, dst, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'"); got != appHash {
		t.Error("app's password hash on the new server differs from the source's")
	}
	for _, q := range []struct{ sql, want string }{
		{"SELECT rolconnlimit::text || ' ' || rolcreatedb::text || ' ' || rolcanlogin::text FROM pg_roles WHERE rolname = 'app'", "5 true true"},
		{"SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'readers'", "false"},
		{"SELECT to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM pg_roles WHERE rolname = 'auditor'", "2100-01-01"},
		{"SELECT string_agg(m.rolname || ':' || am.admin_option, ',' ORDER BY m.rolname) FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE r.rolname = 'readers'", "app:true,auditor:false"},
		{"SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'app' AND setdatabase = 0", "search_path=app, public;work_mem=8MB"},
		{"SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = 'auditor' AND d.datname = 'shop'", "statement_timeout=5s"},
	} {
		if got := pgQuery[string](t, dst, "postgres", q.sql); got != q.want {
			t.Errorf("%s\n= %q, want %q", q.sql, got, q.want)
		}
	}
	if got := pgQuery[string](t, dst, "shop", "SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'"); got != "app" {
		t.Errorf("items belongs to %q on the new server, want app", got)
	}
	if !pgQuery[bool](t, dst, "shop", "SELECT has_table_privilege('readers', 'items', 'SELECT')") {
		t.Error("readers lost SELECT on items")
	}

	// Into a server where the roles exist: nothing changes, the roles'
	// passwords (changed on the target) and the connecting role's least.
	dst.Exec(t, "postgres", "ALTER ROLE app PASSWORD 'changed-on-target-55'", "ALTER ROLE app CONNECTION LIMIT 9")
	c.secrets = append(c.secrets, "changed-on-target-55")
	out, _ = c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop_again"), "--roles")
	if !strings.Contains(out, "roles: 0 created") || !strings.Contains(out, "role app: exists") {
		t.Errorf("restore --roles into a server that has the roles:\n%s", out)
	}
	if !canLogin(t, dst, "app", "changed-on-target-55") || canLogin(t, dst, "app", appPW) {
		t.Error("restore --roles changed the password of a role that existed on the target")
	}
	if n := pgQuery[int](t, dst, "postgres", "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'"); n != 9 {
		t.Errorf("restore --roles altered an existing role: connection limit %d, want 9", n)
	}
	if got := pgQuery[string](t, dst, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = current_user"); got != dstSuperHash || !canLogin(t, dst, dst.User, dst.Password) {
		t.Error("restore --roles changed the password of the role it connects as")
	}

	// A snapshot without roles (not --all-databases): --roles is refused
	// with exit 2 before anything is written.
	c.must("backup", "--repo", repo, src.DSN("shop"))
	code, _, errs := c.run("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop_refused"), "--roles")
	if code != 2 || !strings.Contains(errs, "--all-databases") {
		t.Errorf("restore --roles of a snapshot without roles: exit %d, %s", code, errs)
	}
	if n := pgQuery[int](t, dst, "postgres", "SELECT count(*)::int FROM pg_database WHERE datname = 'shop_refused'"); n != 0 {
		t.Error("the refused restore created its target database")
	}
}

// TestRolesWithoutPasswordAccess: a backup user that cannot read pg_authid
// stores the roles without passwords, says so in a warning and in the
// manifest, and restore --roles creates them without a password.
func TestRolesWithoutPasswordAccess(t *testing.T) {
	src := testsrv.NewPostgres(t, testsrv.PGOptions{})
	dst := testsrv.NewPostgres(t, testsrv.PGOptions{})
	src.Exec(t, "postgres",
		"CREATE ROLE app LOGIN PASSWORD 'app-secret-no-access-1'",
		"CREATE ROLE backup_user LOGIN PASSWORD 'backup-secret-2b'",
		"CREATE DATABASE shop OWNER app",
	)
	src.Exec(t, "shop", "SET ROLE app", "CREATE TABLE items (id int PRIMARY KEY)", "INSERT INTO items VALUES (1)", "GRANT SELECT ON items TO backup_user")
	appHash := pgQuery[string](t, src, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
	c := &rolesCLI{t: t, secrets: []string{"app-secret-no-access-1", "backup-secret-2b", appHash, src.Password, dst.Password}}
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "roles-repo-pw")
	c.must("init", "--repo", repo)
	out, errs := c.must("backup", "--repo", repo, "--all-databases", userDSN(src, "backup_user", "backup-secret-2b", ""), "--json")
	if !strings.Contains(errs, "without their passwords") {
		t.Errorf("backup as a user without pg_authid access gave no warning:\n%s", errs)
	}
	var snaps []struct {
		Source string            `json:"source"`
		Meta   map[string]string `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if got := snaps[0].Meta["roles_passwords"]; !strings.HasPrefix(got, "not stored") {
		t.Errorf("manifest meta roles_passwords = %q, want not stored", got)
	}
	out, _ = c.must("restore", "latest", "--repo", repo, "--source", snaps[0].Source, "--to", dst.DSN("shop"), "--roles")
	if !strings.Contains(out, "role app: created (no password") {
		t.Errorf("restore --roles does not say app was created without a password:\n%s", out)
	}
	if n := pgQuery[int](t, dst, "postgres", "SELECT count(*)::int FROM pg_authid WHERE rolname = 'app' AND rolpassword IS NULL"); n != 1 {
		t.Error("app was not created, or was created with a password")
	}
	if got := pgQuery[string](t, dst, "shop", "SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'"); got != "app" {
		t.Errorf("items belongs to %q, want app", got)
	}
}

// TestRolesUnencryptedRepository: a repository without encryption never
// holds a password hash: the roles are stored without passwords, and the
// manifest says why.
func TestRolesUnencryptedRepository(t *testing.T) {
	src := testsrv.NewPostgres(t, testsrv.PGOptions{})
	src.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD 'app-secret-plain-4'", "CREATE DATABASE shop OWNER app")
	src.Exec(t, "shop", "CREATE TABLE items (id int PRIMARY KEY)")
	appHash := pgQuery[string](t, src, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
	c := &rolesCLI{t: t, secrets: []string{"app-secret-plain-4", appHash, src.Password}}
	repo := filepath.Join(t.TempDir(), "repo")
	c.must("init", "--repo", repo, "--no-encryption")
	out, errs := c.must("backup", "--repo", repo, "--all-databases", src.DSN(""), "--json")
	if !strings.Contains(errs, "not encrypted") {
		t.Errorf("no warning that the passwords were left out:\n%s", errs)
	}
	var snaps []struct {
		Source string            `json:"source"`
		Meta   map[string]string `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if got := snaps[0].Meta["roles_passwords"]; got != "not stored: the repository is not encrypted" {
		t.Errorf("manifest meta roles_passwords = %q", got)
	}
	dst := testsrv.Postgres(t)
	dst.Exec(t, "postgres", "DROP ROLE IF EXISTS app")
	t.Cleanup(func() {
		dst.Exec(t, "postgres", "DROP DATABASE IF EXISTS shop_plainrepo WITH (FORCE)", "DROP ROLE IF EXISTS app")
	})
	out, _ = c.must("restore", "latest", "--repo", repo, "--source", snaps[0].Source, "--to", dst.DSN("shop_plainrepo"), "--roles")
	if !strings.Contains(out, "role app: created (no password") {
		t.Errorf("restore --roles:\n%s", out)
	}
	if n := pgQuery[int](t, dst, "postgres", "SELECT count(*)::int FROM pg_authid WHERE rolname = 'app' AND rolpassword IS NULL"); n != 1 {
		t.Error("app was created with a password from an unencrypted repository")
	}
}
