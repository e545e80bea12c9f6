package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/cli/clitest"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/engine/mysql"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestEndToEnd drives the command line against MariaDB and a local
// repository: init, backup, restore, verify, export, and the refusal of a
// non-empty target.
func TestEndToEnd(t *testing.T) {
	my := testsrv.MariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	srcDSN := my.CreateDatabase(t, "e2e_src")
	src, err := dsn.Parse(srcDSN)
	if err != nil {
		t.Fatal(err)
	}
	my.Exec(t, src.Database(),
		"CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) NOT NULL, photo BLOB, flags BIT(3), note TEXT)",
		"INSERT INTO customers (name, photo, flags, note) VALUES ('Zoë 🚀', X'00FF0A0D09', b'101', 'a\\tb\\nc'), ('', NULL, NULL, 'NULL'), ('x', X'', b'0', NULL)",
		"CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT, total DECIMAL(12,2), at DATETIME(6), FOREIGN KEY (customer_id) REFERENCES customers (id))",
		"INSERT INTO orders SELECT seq, 1 + seq % 3, seq * 1.25, '2024-05-01 10:00:00.123456' + INTERVAL seq SECOND FROM seq_1_to_500",
		"CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100",
	)

	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("repo-password-e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		full := append([]string{"--repo", repo, "--password-file", pwFile}, args...)
		code := cli.Run(ctx, full, strings.NewReader(""), &out, &errOut)
		for _, s := range []string{out.String(), errOut.String()} {
			if strings.Contains(s, my.Password) {
				t.Errorf("snapdata %s printed the database password", args[0])
			}
		}
		return code, out.String(), errOut.String()
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("snapdata %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	mustRun("init")
	mustRun("backup", srcDSN, "--jobs", "2")
	mustRun("backup", srcDSN) // a second, unchanged backup

	// A wrong password and an unknown database: exit 1, a message that says
	// which, no password shown, no snapshot written.
	wrong := strings.Replace(srcDSN, ":"+my.Password+"@", ":wrong-Password-42@", 1)
	for _, c := range []struct{ dsn, want string }{
		{wrong, "Access denied"},
		{my.DSN("no_such_db_e2e"), "no_such_db_e2e"},
	} {
		code, _, errOut := run("backup", c.dsn)
		if code != 1 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "wrong-Password-42") {
			t.Errorf("backup naming %s: exit %d, %q; want 1 and a message saying %q", c.want, code, errOut, c.want)
		}
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(mustRun("snapshots", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Errorf("after two failed backups the repository holds %d snapshots (%v), want the two before", len(snaps), err)
	}

	targetDSN := my.DSN(src.Database() + "_restored")
	mustRun("restore", "latest", "--to", targetDSN, "--jobs", "2")
	target, _ := dsn.Parse(targetDSN)

	e := mysql.New()
	want, err := e.Checksums(ctx, src, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Checksums(ctx, target, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("checksums differ:\nsource:   %v\nrestored: %v", want, got)
	}

	// A second restore into the now non-empty target is refused with exit 3.
	if code, _, errOut := run("restore", "latest", "--to", targetDSN); code != 3 || !strings.Contains(errOut, "not empty") {
		t.Errorf("restore into a non-empty database: exit %d, stderr %q; want 3", code, errOut)
	}
	mustRun("restore", "latest", "--to", targetDSN, "--clean")

	// verify restores into a scratch database on the server and compares.
	out := mustRun("verify", "latest", "--scratch", my.DSN(""))
	if !strings.Contains(out, "customers") || !strings.Contains(out, "orders") {
		t.Errorf("verify output lacks the tables: %s", out)
	}

	// A manifest that no longer matches its data: verify exits 1. A row
	// count the data lacks already stops the load, naming the table; a
	// checksum the data does not have is flagged in the table-by-table
	// verdict. Either way the scratch database is dropped.
	tampered := enginetest.TamperLatest(t, repo, "repo-password-e2e", "", "orders")
	vcode, vout, verrs := run("verify", tampered[:10], "--scratch", my.DSN(""))
	if vcode != 1 || !strings.Contains(verrs, "failed verification") {
		t.Errorf("verify of a tampered manifest: exit %d, %s", vcode, verrs)
	}
	flagged := map[string]string{}
	for _, line := range strings.Split(vout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, "MISMATCH") {
			flagged[f[0]] = line
		}
	}
	if len(flagged) != 1 || !strings.Contains(flagged["orders"], "checksum differs") {
		t.Errorf("verify of a tampered manifest flagged %q, want orders (checksum):\n%s", flagged, vout)
	}
	// (on top of the tampered copy, now the latest)
	tampered = enginetest.TamperLatest(t, repo, "repo-password-e2e", "customers", "")
	vcode, _, verrs = run("verify", tampered[:10], "--scratch", my.DSN(""))
	if vcode != 1 || !strings.Contains(verrs, "loading table customers: the server took 3 rows, the snapshot has 4") {
		t.Errorf("verify of a manifest with a row too many: exit %d, %s", vcode, verrs)
	}
	sdb, err := sql.Open("mysql", my.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	var left int
	if err := sdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'snapdata\\_verify\\_%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("verify left %d scratch databases (%v)", left, err)
	}
	sdb.Close()

	// export --format sql loads with the mariadb client.
	sqlFile := filepath.Join(dir, "dump.sql")
	mustRun("export", "latest", "--format", "sql", "-o", sqlFile)
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb client not installed: %v", err)
	}
	expDSN := my.CreateDatabase(t, "e2e_exported")
	exp, _ := dsn.Parse(expDSN)
	f, err := os.Open(sqlFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(client, "--no-defaults", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, exp.Database())
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+my.Password)
	cmd.Stdin = f
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loading the export: %v: %s", err, b)
	}
	got, err = e.Checksums(ctx, exp, nil, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("checksums of the loaded export differ:\nsource:   %v\nexported: %v", want, got)
	}
}

// TestAllDatabasesCLI: backup --all-databases makes one snapshot per user
// database (not mysql, sys or the server's own schemas) and picks up new
// ones.
func TestAllDatabasesCLI(t *testing.T) {
	my := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{}) // its own server: a known list of databases
	server := my.DSN("")
	clitest.AllDatabases(t, clitest.Server{
		DSN:         server,
		OtherScheme: strings.Replace(server, "mysql://", "mariadb://", 1),
		Secret:      my.Password,
		CreateDatabase: func(t *testing.T, db string) {
			my.Exec(t, "", "CREATE DATABASE "+db)
			my.Exec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, at DATETIME(6))", "INSERT INTO t VALUES (1, NOW(6)), (2, NULL)")
		},
	})
}
