package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/cli"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine/postgres"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// issue 18 (12): a killed verify left its scratch database forever. The
// next verify drops the leftovers it can prove are a verify's (a marker
// naming a process of this host that is gone, or older than a day) and
// says so; a database that only has the name, or whose verify still
// runs, is left alone.
func TestVerifyDropsLeftoverScratch(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := postgres.LoadRich(t, pg)
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
	run("backup", "--repo", repo, src.Raw)

	// A process of this host that is gone.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := cmd.Process.Pid
	host, _ := os.Hostname()
	ns, _ := os.Readlink("/proc/self/ns/pid")
	marker := func(host string, pid int, started time.Time) string {
		return fmt.Sprintf(`snapdata verify scratch {"host":%q,"pid":%d,"pidns":%q,"started":%q,"token":"0123456789abcdef"}`,
			host, pid, ns, started.UTC().Format(time.RFC3339))
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for name, comment := range map[string]string{
		"snapdata_verify_killed_1":    marker(host, gone, time.Now().Add(-time.Minute)),
		"snapdata_verify_old_2":       marker("another-host", 1, time.Now().Add(-48*time.Hour)),
		"snapdata_verify_running_3":   marker(host, os.Getpid(), time.Now().Add(-time.Minute)),
		"snapdata_verify_lookalike_4": "",
	} {
		if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		if comment != "" {
			if _, err := c.Exec(ctx, "COMMENT ON DATABASE "+name+" IS '"+comment+"'"); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, errs := run("verify", "latest", "--repo", repo, "--scratch", pg.DSN("postgres"))
	for _, name := range []string{"snapdata_verify_killed_1", "snapdata_verify_old_2"} {
		if !strings.Contains(errs, name) {
			t.Errorf("verify did not report dropping %s:\n%s", name, errs)
		}
	}
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'snapdata\\_verify\\_%' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left, " "); got != "snapdata_verify_lookalike_4 snapdata_verify_running_3" {
		t.Errorf("scratch databases after verify: %s; want the look-alike and the running verify's only", got)
	}
	// The engine labels the scratch databases it makes and lists them
	// with their labels.
	e := postgres.New()
	server := mustParse(t, pg.DSN("postgres"))
	d, err := e.CreateLabeledScratch(ctx, server, "snapdata_verify_label_5", marker(host, 7, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.DropScratch(ctx, d) //nolint:errcheck // cleanup
	list, err := e.ListScratch(ctx, server, "snapdata_verify_label_")
	if err != nil || len(list) != 1 || !strings.Contains(list[0].Marker, `"pid":7,`) {
		t.Errorf("ListScratch = %+v, %v", list, err)
	}
}

func mustParse(t *testing.T, s string) *dsn.DSN {
	t.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
