package cli

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// The copy's users log in with exactly their access; the source's login
// does not exist on the target's server; every other login of the target
// server has lost its password. Source and target are separate servers,
// as in production.
func TestCloneDevUsers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		srcSrv := testsrv.Postgres(t)
		tgtSrv := testsrv.NewPostgres(t, testsrv.PGOptions{HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
		setup(t)
		src := pgChinook(t, srcSrv)
		srcSrv.Exec(t, mustParse(t, src).Database(), "CREATE ROLE prod_app LOGIN PASSWORD 'prod-secret-1'", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO prod_app")
		tgtSrv.Exec(t, "postgres", "CREATE ROLE other_login LOGIN PASSWORD 'other-secret-1'")
		login := func(user, pw, db string) (*pgx.Conn, error) {
			u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: fmt.Sprintf("127.0.0.1:%d", tgtSrv.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
			return pgx.Connect(context.Background(), u.String())
		}
		if c, err := login("other_login", "other-secret-1", "postgres"); err != nil {
			t.Fatalf("other_login cannot log in before the clone: %v", err)
		} else {
			c.Close(context.Background())
		}
		t.Setenv("DEV_RO_PASSWORD", "ro-secret-1")
		t.Setenv("DEV_RW_PASSWORD", "rw-secret-1")
		writeConfig(t, fmt.Sprintf(`
sources:
  prod: { dsn: "%s" }
clones:
  dev:
    from: { source: prod }
    to: "%s"
    allow: ["postgres://*@127.0.0.1:%d/dev"]
    credentials:
      users:
        - { name: dev_ro, password: "${DEV_RO_PASSWORD}", access: readonly }
        - { name: dev_rw, password: "${DEV_RW_PASSWORD}", access: readwrite }
      reset_other_passwords: true
    hooks:
      post: [ { command: [sh, -c, "test \"$SNAPDATA_TARGET_DSN\" != \"\""] } ]
`, src, tgtSrv.DSN("dev"), tgtSrv.Port))
		r := must(t, "clone", "dev", "--dry-run")
		if !strings.Contains(r.stdout, "dev_ro (readonly access)") || !strings.Contains(r.stdout, "other_login") {
			t.Errorf("plan: %s", r.stdout)
		}
		r = must(t, "clone", "dev", "-v")
		for _, secret := range []string{"ro-secret-1", "rw-secret-1", "prod-secret-1", "other-secret-1", tgtSrv.Password, srcSrv.Password} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Fatalf("the clone's output shows a password")
			}
		}
		ro, err := login("dev_ro", "ro-secret-1", "dev")
		if err != nil {
			t.Fatalf("dev_ro cannot log in: %v", err)
		}
		defer ro.Close(context.Background())
		var n int
		if err := ro.QueryRow(context.Background(), "SELECT count(*) FROM genre").Scan(&n); err != nil || n == 0 {
			t.Errorf("dev_ro reads genre: %d, %v", n, err)
		}
		if _, err := ro.Exec(context.Background(), "INSERT INTO genre (genre_id, name) VALUES (9001, 'x')"); err == nil {
			t.Error("the readonly user could write")
		}
		rw, err := login("dev_rw", "rw-secret-1", "dev")
		if err != nil {
			t.Fatalf("dev_rw cannot log in: %v", err)
		}
		defer rw.Close(context.Background())
		if _, err := rw.Exec(context.Background(), "INSERT INTO genre (genre_id, name) VALUES (9001, 'x')"); err != nil {
			t.Errorf("the readwrite user cannot write: %v", err)
		}
		if _, err := rw.Exec(context.Background(), "CREATE TABLE nope (id int)"); err == nil {
			t.Error("the readwrite user could change the schema")
		}
		if c, err := login("prod_app", "prod-secret-1", "dev"); err == nil {
			c.Close(context.Background())
			t.Error("the source's login works on the target")
		}
		if c, err := login("other_login", "other-secret-1", "postgres"); err == nil {
			c.Close(context.Background())
			t.Error("another login's password was not reset")
		}
	})
	t.Run("mariadb", func(t *testing.T) {
		srcSrv := testsrv.MariaDB(t)
		tgtSrv := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{})
		setup(t)
		src := myScript(t, srcSrv, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
		srcSrv.Exec(t, "", "CREATE USER 'prod_app'@'%' IDENTIFIED BY 'prod-secret-2'", "GRANT SELECT ON `"+mustParse(t, src).Database()+"`.* TO 'prod_app'@'%'")
		tgtSrv.Exec(t, "", "CREATE USER 'other_login'@'%' IDENTIFIED BY 'other-secret-2'")
		login := func(user, pw, db string) (*sql.DB, error) {
			c := mysql.NewConfig()
			c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, pw, "tcp", fmt.Sprintf("127.0.0.1:%d", tgtSrv.Port), db
			d, err := sql.Open("mysql", c.FormatDSN())
			if err != nil {
				return nil, err
			}
			if err := d.Ping(); err != nil {
				d.Close()
				return nil, err
			}
			return d, nil
		}
		t.Setenv("DEV_RO_PASSWORD", "ro-secret-2")
		t.Setenv("DEV_RW_PASSWORD", "rw-secret-2")
		writeConfig(t, fmt.Sprintf(`
sources:
  prod: { dsn: "%s" }
clones:
  dev:
    from: { source: prod }
    to: "%s"
    allow: ["mysql://*@127.0.0.1:%d/dev"]
    credentials:
      users:
        - { name: dev_ro, password: "${DEV_RO_PASSWORD}", access: readonly }
        - { name: dev_rw, password: "${DEV_RW_PASSWORD}", access: readwrite }
      reset_other_passwords: true
`, src, tgtSrv.DSN("dev"), tgtSrv.Port))
		r := must(t, "clone", "dev")
		for _, secret := range []string{"ro-secret-2", "rw-secret-2", "prod-secret-2", "other-secret-2"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Fatalf("the clone's output shows a password")
			}
		}
		ro, err := login("dev_ro", "ro-secret-2", "dev")
		if err != nil {
			t.Fatalf("dev_ro cannot log in: %v", err)
		}
		defer ro.Close()
		var n int
		if err := ro.QueryRow("SELECT count(*) FROM Genre").Scan(&n); err != nil || n == 0 {
			t.Errorf("dev_ro reads Genre: %d, %v", n, err)
		}
		if _, err := ro.Exec("INSERT INTO Genre (GenreId, Name) VALUES (9001, 'x')"); err == nil {
			t.Error("the readonly user could write")
		}
		rw, err := login("dev_rw", "rw-secret-2", "dev")
		if err != nil {
			t.Fatalf("dev_rw cannot log in: %v", err)
		}
		defer rw.Close()
		if _, err := rw.Exec("INSERT INTO Genre (GenreId, Name) VALUES (9001, 'x')"); err != nil {
			t.Errorf("the readwrite user cannot write: %v", err)
		}
		if _, err := rw.Exec("CREATE TABLE nope (id int)"); err == nil {
			t.Error("the readwrite user could change the schema")
		}
		if d, err := login("prod_app", "prod-secret-2", "dev"); err == nil {
			d.Close()
			t.Error("the source's login works on the target")
		}
		if d, err := login("other_login", "other-secret-2", ""); err == nil {
			d.Close()
			t.Error("another login's password was not reset")
		}
	})
}
