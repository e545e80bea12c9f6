package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestExportNoOwner: export --no-owner writes no DEFINER= clause, so its
// views, routines and triggers work where their definer does not exist;
// the plain export keeps the definer (and its view fails there).
func TestExportNoOwner(t *testing.T) {
	my := testsrv.MariaDB(t)
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb client not installed: %v", err)
	}
	src := my.CreateDatabase(t, "export_definer")
	db := src[strings.LastIndexByte(src, '/')+1:]
	my.Exec(t, db,
		"CREATE USER 'definer_x'@'%' IDENTIFIED BY 'definer-pw-5e'",
		"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO items VALUES (1, 'one'), (2, 'two')",
		// No column reference: MariaDB's view text names the source
		// database there, which a load into another database lacks.
		"CREATE DEFINER = 'definer_x'@'%' SQL SECURITY DEFINER VIEW names AS SELECT 'one' AS name UNION ALL SELECT 'two'",
		"CREATE DEFINER = 'definer_x'@'%' PROCEDURE count_items(OUT n INT) SQL SECURITY DEFINER SELECT COUNT(*) INTO n FROM items",
	)
	t.Cleanup(func() { my.Exec(t, "", "DROP USER IF EXISTS 'definer_x'@'%'") })
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "export-definer-pw")
	c := &secretCLI{t: t, secrets: []string{my.Password, "definer-pw-5e"}}
	c.must("init", "--repo", repo)
	c.must("backup", "--repo", repo, src)
	dir := t.TempDir()
	plain, bare := filepath.Join(dir, "plain.sql"), filepath.Join(dir, "bare.sql")
	c.must("export", "latest", "--repo", repo, "-o", plain)
	c.must("export", "latest", "--repo", repo, "-o", bare, "--no-owner", "--no-privileges")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(read(plain), "DEFINER=`definer_x`@`%`") {
		t.Fatal("the plain export has no DEFINER clause: the test proves nothing")
	}
	if s := read(bare); strings.Contains(s, "DEFINER=") || strings.Contains(s, "GRANT ") {
		t.Error("export --no-owner --no-privileges has a DEFINER= clause or a GRANT")
	}
	my.Exec(t, "", "DROP USER 'definer_x'@'%'")
	load := func(file, name string) *sql.DB {
		t.Helper()
		d := my.CreateDatabase(t, name)
		dbname := d[strings.LastIndexByte(d, '/')+1:]
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(client, "--no-defaults", "-h", my.Host, "-P", fmt.Sprint(my.Port), "-u", my.User, dbname)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+my.Password)
		cmd.Stdin = f
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("loading %s: %v: %s", filepath.Base(file), err, b)
		}
		conn, err := sql.Open("mysql", my.DriverDSN(dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int
	if err := load(plain, "export_definer_plain").QueryRowContext(ctx, "SELECT COUNT(*) FROM names").Scan(&n); err == nil {
		t.Error("the plain export's view works without its definer: the test proves nothing")
	}
	conn := load(bare, "export_definer_bare")
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM names").Scan(&n); err != nil || n != 2 {
		t.Errorf("the --no-owner export's view: %d rows, %v", n, err)
	}
	var definer string
	if err := conn.QueryRowContext(ctx, "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'count_items'").Scan(&definer); err != nil || !strings.HasPrefix(definer, my.User+"@") {
		t.Errorf("count_items' definer is %q (%v), want the loading user", definer, err)
	}
}
