package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// issue 18 (12), on MariaDB: the next verify drops the scratch databases
// of verifies that were killed (a marker in the database comment naming a
// process of this host that is gone, or older than a day) and says so; a
// database that only has the name, or whose verify still runs, stays.
func TestVerifyDropsLeftoverScratch(t *testing.T) {
	my := testsrv.MariaDB(t)
	src := my.CreateDatabase(t, "leftover_src")
	my.Exec(t, src[strings.LastIndexByte(src, '/')+1:], "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	repo := t.TempDir() + "/repo"
	t.Setenv("SNAPDATA_PASSWORD", "leftover-pw")
	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("snapdata %s: exit %d\n%s\n%s", args[0], code, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	run("init", "--repo", repo)
	run("backup", "--repo", repo, src)

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ns, _ := os.Readlink("/proc/self/ns/pid")
	marker := func(host string, pid int, started time.Time) string {
		return fmt.Sprintf(`snapdata verify scratch {"host":%q,"pid":%d,"pidns":%q,"started":%q,"token":"0123456789abcdef"}`,
			host, pid, ns, started.UTC().Format(time.RFC3339))
	}
	db, err := sql.Open("mysql", my.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, comment := range map[string]string{
		"snapdata_verify_killed_1":    marker(host, cmd.Process.Pid, time.Now().Add(-time.Minute)),
		"snapdata_verify_old_2":       marker("another-host", 1, time.Now().Add(-48*time.Hour)),
		"snapdata_verify_running_3":   marker(host, os.Getpid(), time.Now().Add(-time.Minute)),
		"snapdata_verify_lookalike_4": "",
	} {
		q := "CREATE DATABASE " + name
		if comment != "" {
			q += " COMMENT '" + strings.ReplaceAll(comment, `"`, `\"`) + "'"
		}
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + name) }) //nolint:errcheck // cleanup
	}
	_, errs := run("verify", "latest", "--repo", repo, "--scratch", my.DSN(""))
	for _, name := range []string{"snapdata_verify_killed_1", "snapdata_verify_old_2"} {
		if !strings.Contains(errs, name) {
			t.Errorf("verify did not report dropping %s:\n%s", name, errs)
		}
	}
	rows, err := db.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'snapdata\\_verify\\_%' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		left = append(left, n)
	}
	if got := strings.Join(left, " "); got != "snapdata_verify_lookalike_4 snapdata_verify_running_3" {
		t.Errorf("scratch databases after verify: %s; want the look-alike and the running verify's only", got)
	}
}
