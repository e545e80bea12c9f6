package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// tryAs runs stmt in database db as user and returns the error (nil: it
// worked).
func tryAs(t *testing.T, my *testsrv.My, db, user, password, stmt string) error {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "tcp", fmt.Sprintf("%s:%d", my.Host, my.Port), db
	conn, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), stmt)
	return err
}

func TestCredentials(t *testing.T) {
	my := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{})
	ctx := ctxT(t)
	const db = "copy_db"
	my.Exec(t, "",
		"CREATE DATABASE "+db, "CREATE DATABASE copyXdb",
		"CREATE TABLE copyXdb.secret (id int)",
		"CREATE TABLE "+db+".items (id int AUTO_INCREMENT PRIMARY KEY, name varchar(20))",
		"INSERT INTO "+db+".items (name) VALUES ('a'), ('b')",
		"CREATE VIEW "+db+".item_names AS SELECT name FROM "+db+".items",
		"CREATE USER 'prod_app'@'%' IDENTIFIED BY 'prod-pw'",
		"GRANT ALL ON *.* TO 'prod_app'@'%'",
		"CREATE USER 'dev_rw'@'%' IDENTIFIED BY 'old-pw'",
		"GRANT ALL ON "+db+".* TO 'dev_rw'@'%'",
		"GRANT ALTER ON "+db+".items TO 'dev_rw'@'%'",
		"CREATE USER 'sock_user'@'localhost' IDENTIFIED VIA unix_socket",
		"CREATE ROLE app_role")
	target := mustDSN(t, my.DSN(db))
	e := New()
	users := []engine.User{
		{Name: "dev_ro", Password: `ro-Pw;'"\x`, Access: engine.AccessReadOnly},
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
		{ro, "SELECT count(*) FROM items", true},
		{ro, "SELECT count(*) FROM item_names", true},
		{ro, "INSERT INTO items (name) VALUES ('x')", false},
		{ro, "SELECT * FROM copyXdb.secret", false}, // '_' is not a wildcard in the grant
		{rw, "INSERT INTO items (name) VALUES ('x')", true},
		{rw, "UPDATE items SET name = 'y' WHERE name = 'x'", true},
		{rw, "DELETE FROM items WHERE name = 'y'", true},
		{rw, "ALTER TABLE items ADD COLUMN y int", false}, // its old grants were revoked
		{rw, "DROP TABLE items", false},
		{own, "ALTER TABLE items ADD COLUMN z int", true},
		{own, "CREATE TABLE own_new (id int)", true},
		{own, "INSERT INTO items (name) VALUES ('o')", true},
	} {
		err := tryAs(t, my, db, c.who.Name, c.who.Password, c.stmt)
		if c.allowed && err != nil {
			t.Errorf("%s: %q failed: %v", c.who.Name, c.stmt, err)
		}
		if !c.allowed && !isPrivilegeError(err) {
			t.Errorf("%s: %q: got %v, want access denied", c.who.Name, c.stmt, err)
		}
	}
	if err := tryAs(t, my, db, "dev_rw", "old-pw", "SELECT 1"); mysqlErr(err) != 1045 {
		t.Errorf("dev_rw with its old password: got %v, want access denied", err)
	}
	if err := e.CreateUsers(ctx, target, users); err != nil {
		t.Fatalf("CreateUsers again: %v", err)
	}

	logins, err := e.Logins(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	// mariadb-install-db makes root@ accounts for the machine's names:
	// compare the others.
	withoutRoot := func(names []string) (out []string) {
		for _, n := range names {
			if !strings.HasPrefix(n, "root@") {
				out = append(out, n)
			}
		}
		return out
	}
	want := []string{"dev_owner@%", "dev_ro@%", "dev_rw@%", "prod_app@%", "snapdata@%", "snapdata@localhost", "sock_user@localhost"}
	if !reflect.DeepEqual(withoutRoot(logins), want) || !slices.Contains(logins, "root@localhost") {
		t.Errorf("Logins = %v, want %v", logins, want)
	}
	changed, err := e.ResetOtherPasswords(ctx, target, []string{"dev_ro", "dev_rw@%", "dev_owner"})
	if err != nil {
		t.Fatalf("ResetOtherPasswords: %v", err)
	}
	if want := []string{"prod_app@%"}; !reflect.DeepEqual(withoutRoot(changed), want) ||
		!slices.Contains(changed, "root@localhost") || !slices.Contains(changed, "root@127.0.0.1") {
		t.Errorf("ResetOtherPasswords changed %v, want %v", changed, want)
	}
	if err := tryAs(t, my, "", "prod_app", "prod-pw", "SELECT 1"); mysqlErr(err) != 1045 {
		t.Errorf("prod_app after the reset: got %v, want access denied", err)
	}
	if err := tryAs(t, my, "", my.User, my.Password, "SELECT 1"); err != nil {
		t.Errorf("the connecting login after the reset: %v", err)
	}
	for _, u := range users {
		if err := tryAs(t, my, db, u.Name, u.Password, "SELECT 1"); err != nil {
			t.Errorf("kept user %s after the reset: %v", u.Name, err)
		}
	}
	var plugin string
	if err := session(t, ctx, target).QueryRowContext(ctx, "SELECT plugin FROM mysql.user WHERE User = 'sock_user'").Scan(&plugin); err != nil || plugin != "unix_socket" {
		t.Errorf("the unix_socket login was changed: plugin %q, %v", plugin, err)
	}
}

func TestCreateUsersErrorsHideThePassword(t *testing.T) {
	my := testsrv.MariaDB(t)
	_, target := newDB(t, my, "credfail")
	e := New()
	const secret = "Sup3r-Secret-Pw"
	for _, users := range [][]engine.User{
		{{Name: strings.Repeat("n", 300), Password: secret, Access: engine.AccessReadOnly}},
		{{Name: "ok_user", Password: secret, Access: "admin"}},
	} {
		err := e.CreateUsers(ctxT(t), target, users)
		if err == nil {
			t.Fatalf("CreateUsers(%.20q…) succeeded", users[0].Name)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), nativeHash(secret)) {
			t.Errorf("the error shows the password: %v", err)
		}
		t.Logf("error: %v", err)
	}
	err := e.CreateUsers(ctxT(t), target, []engine.User{{Name: my.User, Password: secret, Access: engine.AccessReadOnly}})
	if err == nil || !strings.Contains(err.Error(), "is the login the clone connects with") {
		t.Errorf("CreateUsers for the connecting login = %v, want a refusal", err)
	}
	// MySQL's syntax errors quote the statement: such a message is replaced.
	err = hidePassword(&mysql.MySQLError{Number: 1064, Message: "You have an error near '" + secret + "'"}, secret)
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "1064") {
		t.Errorf("hidePassword = %v", err)
	}
}
