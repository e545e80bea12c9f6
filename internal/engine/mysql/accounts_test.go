package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// secretCLI runs snapdata and fails the test, without printing them, when
// its output holds one of secrets.
type secretCLI struct {
	t       *testing.T
	secrets []string
}

func (c *secretCLI) run(args ...string) (int, string, string) {
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

func (c *secretCLI) must(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("snapdata %s: exit %d\nstdout: %s\nstderr: %s", args[0], code, out, errs)
	}
	return out
}

// myLogin reports whether user logs in to my over TCP with pw.
func myLogin(my *testsrv.My, user, pw string) bool {
	cfg := drv.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, pw, "tcp", fmt.Sprintf("%s:%d", my.Host, my.Port)
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}

// myQuery returns the first column of every row of q on my.
func myQuery(t *testing.T, my *testsrv.My, q string) []string {
	t.Helper()
	db, err := sql.Open("mysql", my.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestAccountsBackupRestore: an --all-databases backup stores the server's
// accounts (on several hosts), roles and grants with their password
// hashes, not root's nor the system accounts; restore creates none without
// --roles; restore --roles creates them on a fresh server (the user logs
// in with its original password), and into a server where they exist it
// changes nothing, the connecting account's password least of all.
func TestAccountsBackupRestore(t *testing.T) {
	src := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{})
	dst := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{})
	const pwA, pwB, pwR = "app-any-host-pw-41", "app-subnet-pw-77", "reporter-pw-19"
	src.Exec(t, "",
		"CREATE DATABASE shop",
		"CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO shop.items VALUES (1, 'one')",
		"CREATE USER 'app'@'%' IDENTIFIED BY '"+pwA+"'",
		"CREATE USER 'app'@'10.1.2.%' IDENTIFIED BY '"+pwB+"'",
		"CREATE USER 'reporter'@'%' IDENTIFIED BY '"+pwR+"'",
		"CREATE ROLE analyst",
		"GRANT SELECT ON shop.* TO analyst",
		"GRANT analyst TO 'reporter'@'%'",
		"SET DEFAULT ROLE analyst FOR 'reporter'@'%'",
		"GRANT PROCESS ON *.* TO 'app'@'%'",
		"GRANT ALL ON shop.* TO 'app'@'%'",
		"GRANT SELECT (name) ON shop.items TO 'app'@'10.1.2.%'",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY 'root-secret-src-3'",
	)
	createOf := func(my *testsrv.My, acct string) string {
		t.Helper()
		r := myQuery(t, my, "SHOW CREATE USER "+acct)
		if len(r) != 1 {
			t.Fatalf("SHOW CREATE USER %s: %d rows", acct, len(r))
		}
		return r[0]
	}
	hashOf := func(my *testsrv.My, user, host string) string {
		t.Helper()
		r := myQuery(t, my, "SELECT authentication_string FROM mysql.user WHERE User = '"+user+"' AND Host = '"+host+"'")
		if len(r) != 1 {
			t.Fatalf("account %s@%s: %d rows", user, host, len(r))
		}
		return r[0]
	}
	secrets := []string{pwA, pwB, pwR, "root-secret-src-3", src.Password, dst.Password,
		hashOf(src, "app", "%"), hashOf(src, "app", "10.1.2.%"), hashOf(src, "reporter", "%"), hashOf(dst, dst.User, "%")}
	rootHash := hashOf(dst, "root", "localhost")
	c := &secretCLI{t: t, secrets: secrets}
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "accounts-repo-pw")
	c.must("init", "--repo", repo)
	out := c.must("backup", "--repo", repo, "--all-databases", src.DSN(""), "--json")
	var snaps []struct {
		Source string            `json:"source"`
		Meta   map[string]string `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("backup --all-databases --json: %v, %d snapshots\n%s", err, len(snaps), out)
	}
	if m := snaps[0].Meta["accounts"]; !strings.Contains(m, "1 roles") || !strings.Contains(m, "password hashes") {
		t.Errorf("manifest meta accounts = %q", m)
	}
	source := snaps[0].Source
	count := func(my *testsrv.My) string {
		return myQuery(t, my, "SELECT COUNT(*) FROM mysql.user WHERE User IN ('app', 'reporter', 'analyst')")[0]
	}

	// Without --roles: no account (the grants restore warns and creates none).
	c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop_plain"))
	if n := count(dst); n != "0" {
		t.Fatalf("restore without --roles created %s accounts", n)
	}

	out = c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop"), "--roles")
	for _, want := range []string{"role 'app'@'%': created", "role 'app'@'10.1.2.%': created", "role 'reporter'@'%': created", "role 'analyst': created", "role 'snapdata'@'%': exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore --roles output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "root") || strings.Contains(out, "mariadb.sys") {
		t.Errorf("restore --roles touched root or a system account:\n%s", out)
	}
	if !myLogin(dst, "app", pwA) || !myLogin(dst, "reporter", pwR) {
		t.Error("app or reporter cannot log in to the new server with the original password: the hash was not carried")
	}
	if myLogin(dst, "app", pwB) {
		t.Error("app@% logs in with app@10.1.2.%'s password")
	}
	if createOf(src, "'app'@'10.1.2.%'") != createOf(dst, "'app'@'10.1.2.%'") {
		t.Error("'app'@'10.1.2.%' differs between the source and the new server")
	}
	if hashOf(dst, "root", "localhost") != rootHash {
		t.Error("restore --roles changed the new server's root account")
	}
	grants := strings.Join(myQuery(t, dst, "SHOW GRANTS FOR 'app'@'%'"), "\n") + "\n" +
		strings.Join(myQuery(t, dst, "SHOW GRANTS FOR 'app'@'10.1.2.%'"), "\n") + "\n" +
		strings.Join(myQuery(t, dst, "SHOW GRANTS FOR 'reporter'@'%'"), "\n") + "\n" +
		strings.Join(myQuery(t, dst, "SHOW GRANTS FOR analyst"), "\n")
	for _, want := range []string{"GRANT PROCESS ON *.* TO `app`@`%`", "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`",
		"GRANT SELECT (`name`) ON `shop`.`items` TO `app`@`10.1.2.%`", "GRANT `analyst` TO `reporter`@`%`",
		"SET DEFAULT ROLE `analyst` FOR `reporter`@`%`", "GRANT SELECT ON `shop`.* TO `analyst`"} {
		if !strings.Contains(grants, want) {
			t.Errorf("the new server lacks %q", want)
		}
	}

	for _, g := range myQuery(t, dst, "SHOW GRANTS FOR CURRENT_USER") {
		if strings.Contains(g, "analyst") && !strings.Contains(g, "IDENTIFIED") { // a line with a hash is never printed
			t.Errorf("restore --roles left the new role granted to the account it connects as: %s", g)
		}
	}

	// Into a server where the accounts exist: nothing changes.
	dst.Exec(t, "", "ALTER USER 'app'@'%' IDENTIFIED BY 'changed-on-target-8'")
	c.secrets = append(c.secrets, "changed-on-target-8", hashOf(dst, "app", "%"))
	superHash := hashOf(dst, dst.User, "%")
	out = c.must("restore", "latest", "--repo", repo, "--source", source, "--to", dst.DSN("shop_again"), "--roles")
	if !strings.Contains(out, "roles: 0 created") {
		t.Errorf("restore --roles into a server with the accounts:\n%s", out)
	}
	if !myLogin(dst, "app", "changed-on-target-8") || myLogin(dst, "app", pwA) {
		t.Error("restore --roles changed the password of an account that existed")
	}
	if hashOf(dst, dst.User, "%") != superHash || !myLogin(dst, dst.User, dst.Password) {
		t.Error("restore --roles changed the password of the account it connects as")
	}

	// An unencrypted repository holds no account (their definitions hold
	// the password hashes): the manifest says so and --roles is refused.
	plainRepo := filepath.Join(t.TempDir(), "plain")
	c.must("init", "--repo", plainRepo, "--no-encryption")
	out = c.must("backup", "--repo", plainRepo, "--all-databases", src.DSN(""), "--json")
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || snaps[0].Meta["accounts"] != "not stored: the repository is not encrypted" {
		t.Fatalf("backup --all-databases into an unencrypted repository: %v\n%s", err, out)
	}
	if code, _, errs := c.run("restore", "latest", "--repo", plainRepo, "--source", source, "--to", dst.DSN("shop_plainrepo"), "--roles"); code != 2 {
		t.Errorf("restore --roles from an unencrypted repository: exit %d, %s", code, errs)
	}

	// A backup user without SELECT on mysql.user: no accounts, a warning
	// and a note in the manifest; the databases are backed up all the same.
	src.Exec(t, "", "CREATE USER 'limited'@'%' IDENTIFIED BY 'limited-pw-2f'",
		"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON shop.* TO 'limited'@'%'")
	c.secrets = append(c.secrets, "limited-pw-2f")
	limited := strings.Replace(src.DSN(""), src.User+":"+src.Password+"@", "limited:limited-pw-2f@", 1)
	code, out, errs := c.run("backup", "--repo", repo, "--all-databases", limited, "--json")
	if code != 0 {
		t.Fatalf("backup --all-databases as a user without SELECT on mysql.user: exit %d\n%s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || !strings.HasPrefix(snaps[0].Meta["accounts"], "not stored: the backup user cannot read mysql.user") {
		t.Errorf("manifest meta of a backup without SELECT on mysql.user: %v\n%s", err, out)
	}
	if !strings.Contains(errs, "accounts and grants not stored") {
		t.Errorf("no warning that the accounts were not stored:\n%s", errs)
	}
}
