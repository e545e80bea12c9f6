package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// loginDSN is pg's DSN for db with another login.
func loginDSN(pg *testsrv.PG, db, user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: fmt.Sprintf("%s:%d", pg.Host, pg.Port), Path: "/" + db, RawQuery: "sslmode=disable&connect_timeout=10"}
	return u.String()
}

// tryAs runs stmt in db as user and returns the error (nil: it worked).
func tryAs(t *testing.T, pg *testsrv.PG, db, user, password, stmt string) error {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, loginDSN(pg, db, user, password))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, stmt)
	return err
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestCredentials(t *testing.T) {
	for _, major := range []int{0, 12} { // Debian's, and the oldest supported
		t.Run(fmt.Sprint(major), func(t *testing.T) { credentials(t, testsrv.NewPostgres(t, testsrv.PGOptions{Major: major})) })
	}
}

func credentials(t *testing.T, pg *testsrv.PG) {
	ctx := context.Background()
	const db = "copy_db"
	pg.Exec(t, "postgres", "CREATE DATABASE "+db,
		"CREATE ROLE prod_app LOGIN PASSWORD 'prod-pw'",
		"CREATE ROLE dev_rw LOGIN SUPERUSER PASSWORD 'old-pw'",
		"CREATE ROLE nologin_role NOLOGIN")
	pg.Exec(t, db,
		"CREATE SCHEMA app",
		"CREATE TABLE app.items (id serial PRIMARY KEY, name text)",
		"CREATE TABLE public.notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)",
		"INSERT INTO app.items (name) VALUES ('a'), ('b')",
		"CREATE VIEW public.item_names AS SELECT name FROM app.items",
		"CREATE FUNCTION app.twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2'",
		"CREATE TYPE app.mood AS ENUM ('ok', 'sad')",
		"GRANT SELECT ON app.items TO prod_app")
	target := mustDSN(t, pg.DSN(db))
	e := New()
	users := []engine.User{
		{Name: "dev_ro", Password: "ro-Pw;'\"x", Access: engine.AccessReadOnly},
		{Name: "dev_rw", Password: "rw-pw", Access: engine.AccessReadWrite},
		{Name: "dev_owner", Password: "owner-pw", Access: engine.AccessOwner},
	}
	if err := e.CreateUsers(ctx, target, users); err != nil {
		t.Fatalf("CreateUsers: %v", err)
	}
	ro, rw, own := users[0], users[1], users[2]
	for _, c := range []struct {
		who     engine.User
		stmt    string
		allowed bool
	}{
		{ro, "SELECT count(*) FROM app.items", true},
		{ro, "SELECT count(*) FROM public.item_names", true},
		{ro, "SELECT count(*) FROM public.notes", true},
		{ro, "INSERT INTO app.items (name) VALUES ('x')", false},
		{ro, "UPDATE public.notes SET body = 'x'", false},
		{rw, "INSERT INTO app.items (name) VALUES ('x')", true},
		{rw, "INSERT INTO public.notes (body) VALUES ('x')", true},
		{rw, "DELETE FROM app.items WHERE name = 'x'", true},
		{rw, "ALTER TABLE app.items ADD COLUMN y int", false},
		{rw, "CREATE ROLE sneaky", false}, // its SUPERUSER was taken away
		{ro, "CREATE TABLE public.ro_new (id int)", false},
		{rw, "CREATE TABLE public.rw_new (id int)", false},
		{own, "ALTER TABLE app.items ADD COLUMN z int", true},
		{own, "ALTER TABLE public.notes ADD COLUMN z int", true},
		{own, "ALTER FUNCTION app.twice(int) RENAME TO thrice", true},
		{own, "INSERT INTO app.items (name) VALUES ('o')", true},
		{own, "CREATE TABLE app.own_new (id int)", true},
	} {
		err := tryAs(t, pg, db, c.who.Name, c.who.Password, c.stmt)
		if c.allowed && err != nil {
			t.Errorf("%s: %q failed: %v", c.who.Name, c.stmt, err)
		}
		if !c.allowed && sqlState(err) != "42501" {
			t.Errorf("%s: %q: got %v, want permission denied (42501)", c.who.Name, c.stmt, err)
		}
	}
	// A table a hook creates later (as the session's role) is readable.
	pg.Exec(t, db, "CREATE TABLE public.later (id int)")
	if err := tryAs(t, pg, db, ro.Name, ro.Password, "SELECT * FROM public.later"); err != nil {
		t.Errorf("readonly user cannot read a table created after CreateUsers: %v", err)
	}
	if err := tryAs(t, pg, db, ro.Name, ro.Password, "SELECT * FROM app.own_new"); err != nil {
		t.Errorf("readonly user cannot read a table the owner user created: %v", err)
	}
	// The old password of the existing user no longer works; the copy is
	// closed to logins not asked for.
	if err := tryAs(t, pg, db, "dev_rw", "old-pw", "SELECT 1"); err == nil {
		t.Error("dev_rw still logs in with its old password")
	}
	if err := tryAs(t, pg, db, "prod_app", "prod-pw", "SELECT 1"); sqlState(err) != "42501" {
		t.Errorf("prod_app connecting to the copy: got %v, want permission denied", err)
	}
	// Running it again (the next refresh) works and keeps the access.
	if err := e.CreateUsers(ctx, target, users); err != nil {
		t.Fatalf("CreateUsers again: %v", err)
	}
	if err := tryAs(t, pg, db, ro.Name, ro.Password, "INSERT INTO app.items (name) VALUES ('x')"); sqlState(err) != "42501" {
		t.Errorf("readonly after a second CreateUsers: got %v, want permission denied", err)
	}
	// Access asked for changes: readwrite becomes readonly, also for
	// tables created later.
	rw.Access = engine.AccessReadOnly
	if err := e.CreateUsers(ctx, target, []engine.User{rw}); err != nil {
		t.Fatalf("CreateUsers with less access: %v", err)
	}
	pg.Exec(t, db, "CREATE TABLE public.later2 (id int)")
	for _, stmt := range []string{"INSERT INTO app.items (name) VALUES ('x')", "INSERT INTO public.later2 VALUES (1)"} {
		if err := tryAs(t, pg, db, rw.Name, rw.Password, stmt); sqlState(err) != "42501" {
			t.Errorf("%q by a user turned readonly: got %v, want permission denied", stmt, err)
		}
	}
	if err := tryAs(t, pg, db, rw.Name, rw.Password, "SELECT * FROM public.later2"); err != nil {
		t.Errorf("a user turned readonly cannot read a later table: %v", err)
	}
	rw.Access = engine.AccessReadWrite
	if err := e.CreateUsers(ctx, target, users); err != nil {
		t.Fatalf("CreateUsers back: %v", err)
	}

	logins, err := e.Logins(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dev_owner", "dev_ro", "dev_rw", "prod_app", pg.User}; !reflect.DeepEqual(logins, want) {
		t.Errorf("Logins = %v, want %v", logins, want)
	}

	changed, err := e.ResetOtherPasswords(ctx, target, []string{"dev_ro", "dev_rw", "dev_owner"})
	if err != nil {
		t.Fatalf("ResetOtherPasswords: %v", err)
	}
	if want := []string{"prod_app"}; !reflect.DeepEqual(changed, want) {
		t.Errorf("ResetOtherPasswords changed %v, want %v", changed, want)
	}
	if err := tryAs(t, pg, "postgres", "prod_app", "prod-pw", "SELECT 1"); err == nil || sqlState(err) != "28P01" {
		t.Errorf("prod_app after the reset: got %v, want a failed password authentication", err)
	}
	if err := tryAs(t, pg, "postgres", pg.User, pg.Password, "SELECT 1"); err != nil {
		t.Errorf("the connecting login after the reset: %v", err)
	}
	for _, u := range users {
		if err := tryAs(t, pg, db, u.Name, u.Password, "SELECT 1"); err != nil {
			t.Errorf("kept user %s after the reset: %v", u.Name, err)
		}
	}
}

func TestCreateUsersErrorsHideThePassword(t *testing.T) {
	pg := testsrv.Postgres(t)
	target := newDB(t, pg, "credfail")
	e := New()
	const secret = "Sup3r-Secret-Pw"
	for _, users := range [][]engine.User{
		{{Name: "pg_reserved_name", Password: secret, Access: engine.AccessReadOnly}},
		{{Name: "ok_user_" + strings.ToLower(t.Name()), Password: secret, Access: "admin"}},
		{{Name: strings.Repeat("n", 80) + "\x00", Password: secret, Access: engine.AccessReadWrite}},
	} {
		err := e.CreateUsers(context.Background(), target, users)
		if err == nil {
			t.Fatalf("CreateUsers(%q) succeeded", users[0].Name)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
		t.Logf("error: %v", err)
	}
	err := e.CreateUsers(context.Background(), target, []engine.User{{Name: pg.User, Password: secret, Access: engine.AccessReadOnly}})
	if err == nil || !strings.Contains(err.Error(), "is the login the clone connects with") {
		t.Errorf("CreateUsers for the connecting login = %v, want a refusal", err)
	}
	// The failed transaction left no role behind.
	c, err := pgx.Connect(context.Background(), pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	var super bool
	if err := c.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Errorf("the connecting login is no longer a superuser (%v)", err)
	}
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pg_reserved%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("roles left: %d, %v", n, err)
	}
}

// TestCreateUsersAsNonSuperuser is the managed-server case (RDS): the
// clone's login may create roles but is no superuser. PostgreSQL 16
// changed what CREATEROLE allows (ADMIN OPTION on the roles it made):
// both sides of the change are tested.
func TestCreateUsersAsNonSuperuser(t *testing.T) {
	t.Run("default", func(t *testing.T) { createUsersAsNonSuperuser(t, testsrv.Postgres(t)) })
	t.Run("17", func(t *testing.T) { createUsersAsNonSuperuser(t, testsrv.NewPostgres(t, testsrv.PGOptions{Major: 17})) })
}

func createUsersAsNonSuperuser(t *testing.T, pg *testsrv.PG) {
	ctx := context.Background()
	db := "nonsuper_copy"
	pg.Exec(t, "postgres",
		"CREATE ROLE ns_mgmt LOGIN CREATEROLE CREATEDB PASSWORD 'mgmt-pw'",
		"CREATE DATABASE "+db+" OWNER ns_mgmt")
	t.Cleanup(func() {
		pg.Exec(t, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		for _, r := range []string{"ns_owner", "ns_owner2", "ns_ro", "ns_mgmt"} {
			pg.Exec(t, "postgres", "DROP ROLE IF EXISTS "+r)
		}
	})
	if err := tryAs(t, pg, db, "ns_mgmt", "mgmt-pw", "CREATE TABLE items (id serial PRIMARY KEY, name text); CREATE VIEW v AS SELECT name FROM items"); err != nil {
		t.Fatal(err)
	}
	target := mustDSN(t, loginDSN(pg, db, "ns_mgmt", "mgmt-pw"))
	users := []engine.User{
		{Name: "ns_owner", Password: "o-pw", Access: engine.AccessOwner},
		{Name: "ns_owner2", Password: "o2-pw", Access: engine.AccessOwner},
		{Name: "ns_ro", Password: "ro-pw", Access: engine.AccessReadOnly},
	}
	if err := New().CreateUsers(ctx, target, users); err != nil {
		t.Fatalf("CreateUsers as a non-superuser: %v", err)
	}
	for _, c := range []struct {
		user, pw, stmt string
		allowed        bool
	}{
		{"ns_owner", "o-pw", "ALTER TABLE items ADD COLUMN a int", true},
		{"ns_owner2", "o2-pw", "ALTER TABLE items ADD COLUMN b int", true},
		{"ns_ro", "ro-pw", "SELECT * FROM v", true},
		{"ns_ro", "ro-pw", "INSERT INTO items (name) VALUES ('x')", false},
		{"ns_mgmt", "mgmt-pw", "INSERT INTO items (name) VALUES ('still mine')", true}, // the clone's login keeps its hold
	} {
		err := tryAs(t, pg, db, c.user, c.pw, c.stmt)
		if c.allowed && err != nil {
			t.Errorf("%s: %q failed: %v", c.user, c.stmt, err)
		}
		if !c.allowed && sqlState(err) != "42501" {
			t.Errorf("%s: %q: got %v, want permission denied", c.user, c.stmt, err)
		}
	}
}

// TestCreateUsersOnRichSchema gives an owner user every kind of object the
// rich test schema holds (partitions, materialized views, domains, enums,
// ranges, functions, extensions' objects, several schemas).
func TestCreateUsersOnRichSchema(t *testing.T) {
	pg := testsrv.Postgres(t)
	target := loadRich(t, pg)
	users := []engine.User{
		{Name: "rich_owner", Password: "o-pw", Access: engine.AccessOwner},
		{Name: "rich_ro", Password: "ro-pw", Access: engine.AccessReadOnly},
		{Name: "rich_rw", Password: "rw-pw", Access: engine.AccessReadWrite},
	}
	if err := New().CreateUsers(context.Background(), target, users); err != nil {
		t.Fatalf("CreateUsers: %v", err)
	}
	c, err := pgx.Connect(context.Background(), pg.DSN(target.Database()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	// Every table and view is readable by the readonly user and owned by
	// the owner user.
	rows, err := c.Query(context.Background(), `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct{ name, owner string }
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.name, &x.owner)
	})
	if err != nil || len(rels) < 5 {
		t.Fatalf("relations: %d, %v", len(rels), err)
	}
	for _, r := range rels {
		if r.owner != "rich_owner" {
			t.Errorf("%s is owned by %s", r.name, r.owner)
		}
		if err := tryAs(t, pg, target.Database(), "rich_ro", "ro-pw", "SELECT * FROM "+r.name+" LIMIT 1"); err != nil {
			t.Errorf("readonly user reading %s: %v", r.name, err)
		}
	}
}
