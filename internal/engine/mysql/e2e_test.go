package mysql_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
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
