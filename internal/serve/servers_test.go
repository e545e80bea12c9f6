package serve

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// Jobs every second against real PostgreSQL and MariaDB sources for several
// cycles, with data changing in between: snapshots appear and retention
// keeps exactly keep_last per source.
func TestJobsEverySecondServers(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	pgDSN := pg.CreateDatabase(t, "serve_pg")
	myDSN := my.CreateDatabase(t, "serve_my")
	e := newEnv(t, "")
	e.writeConfig(t, baseConfig+fmt.Sprintf(`  pg: { dsn: %q }
  my: { dsn: %q }
jobs:
  - name: servers
    source: [pg, my]
    schedule: "@every 1s"
    retention: { keep_last: 2 }
`, pgDSN, myDSN))
	pgName, myName := dbName(t, pgDSN), dbName(t, myDSN)
	pg.Exec(t, pgName, "CREATE TABLE items (id serial PRIMARY KEY, v text)", "INSERT INTO items (v) VALUES ('a'), ('b')")
	my.Exec(t, myName, "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)", "INSERT INTO items (v) VALUES ('a'), ('b')")
	s := startServe(t, e.opts(t))
	for i := 0; i < 4; i++ {
		pg.Exec(t, pgName, fmt.Sprintf("INSERT INTO items (v) VALUES ('x%d')", i))
		my.Exec(t, myName, fmt.Sprintf("INSERT INTO items (v) VALUES ('x%d')", i))
		n := metric(s.get(t, "/metrics"), `snapdata_job_runs_total{job="servers",outcome="success"}`)
		waitFor(t, 60*time.Second, "another successful run", func() bool {
			return metric(s.get(t, "/metrics"), `snapdata_job_runs_total{job="servers",outcome="success"}`) > n
		})
	}
	if f := metric(s.get(t, "/metrics"), `snapdata_job_runs_total{job="servers",outcome="failure"}`); f > 0 {
		t.Fatalf("%v failed runs: %+v", f, s.jobs(t)["servers"].Last)
	}
	s.stop(t)
	per := map[string]int{}
	engines := map[string]bool{}
	for _, sn := range e.snapshots(t) {
		per[sn.Source]++
		engines[sn.Engine] = true
		if len(sn.Tables) != 1 {
			t.Errorf("snapshot %s of %s has %d tables", sn.ShortID(), sn.Source, len(sn.Tables))
		}
	}
	if per["pg"] != 2 || per["my"] != 2 || !engines["postgres"] || !engines["mysql"] {
		t.Fatalf("snapshots per source %v (engines %v), want 2 each by keep_last", per, engines)
	}
	e.check(t)
}

// min_interval: a run younger than min_interval after the last good
// snapshot is skipped with its reason, counted, and not a failure.
func TestMinInterval(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app
    source: app
    prechecks: { min_interval: 1h }
`)
	ctx := context.Background()
	o, err := RunOnce(ctx, e.opts(t), "app")
	if err != nil || o.Status != StatusSuccess {
		t.Fatalf("first run: %+v %v", o, err)
	}
	o, err = RunOnce(ctx, e.opts(t), "app")
	if err != nil || o.Status != StatusSkipped || o.Reason != ReasonMinInterval {
		t.Fatalf("second run: %+v %v", o, err)
	}
	if n := len(e.snapshots(t)); n != 1 {
		t.Fatalf("%d snapshots", n)
	}
	e.writeConfig(t, baseConfig+"jobs:\n  - { name: app, source: app, prechecks: { min_interval: 1s } }\n")
	time.Sleep(1100 * time.Millisecond)
	o, err = RunOnce(ctx, e.opts(t), "app")
	if err != nil || o.Status != StatusSuccess {
		t.Fatalf("after min_interval: %+v %v", o, err)
	}
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	for i := len(dsn) - 1; i >= 0; i-- {
		if dsn[i] == '/' {
			name := dsn[i+1:]
			for j := 0; j < len(name); j++ {
				if name[j] == '?' {
					return name[:j]
				}
			}
			return name
		}
	}
	t.Fatalf("no database in %s", dsn)
	return ""
}

// A job over a PostgreSQL and a MariaDB source verifies both, each in a
// scratch database on its engine's server (verify.scratch per engine);
// with a single scratch DSN the other engine's verify fails with a message
// that names the config key, not a CLI flag.
func TestVerifyScratchPerEngine(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	pgDSN := pg.CreateDatabase(t, "verify_pg")
	myDSN := my.CreateDatabase(t, "verify_my")
	pg.Exec(t, dbName(t, pgDSN), "CREATE TABLE items (id serial PRIMARY KEY, v text)", "INSERT INTO items (v) VALUES ('a'), ('b')")
	my.Exec(t, dbName(t, myDSN), "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)", "INSERT INTO items (v) VALUES ('a'), ('b')")
	e := newEnv(t, "")
	cfg := func(scratch string) string {
		return baseConfig + fmt.Sprintf(`  pg: { dsn: %q }
  my: { dsn: %q }
jobs:
  - name: both
    source: [pg, my]
    verify:
      scratch: %s
`, pgDSN, myDSN, scratch)
	}
	e.writeConfig(t, cfg(fmt.Sprintf("{ postgres: %q, mariadb: %q }", pg.DSN(""), my.DSN(""))))
	ctx := context.Background()
	o, err := RunOnce(ctx, e.opts(t), "both")
	if err != nil || o.Status != StatusSuccess || len(o.Snapshots) != 2 {
		t.Fatalf("backup: %+v %v", o, err)
	}
	o, err = RunOnce(ctx, e.opts(t), "both/verify")
	if err != nil || o.Status != StatusSuccess || len(o.Sources) != 2 {
		t.Fatalf("verify with a scratch server per engine: %+v %v", o, err)
	}
	for _, so := range o.Sources {
		if so.Status != StatusSuccess || !strings.Contains(so.Message, "restored and matched: 1 tables") {
			t.Errorf("verify of %s: %+v", so.Source, so)
		}
	}

	// The single-string form still works for the engine it names and
	// fails the other with the config key in the message.
	e.writeConfig(t, cfg(fmt.Sprintf("%q", pg.DSN(""))))
	o, err = RunOnce(ctx, e.opts(t), "both/verify")
	if err != nil || o.Status != StatusFailure || len(o.Sources) != 2 {
		t.Fatalf("verify with one scratch DSN: %+v %v", o, err)
	}
	for _, so := range o.Sources {
		switch so.Source {
		case "pg":
			if so.Status != StatusSuccess {
				t.Errorf("pg verify: %+v", so)
			}
		case "my":
			if so.Status != StatusFailure || !strings.Contains(so.Message, "snapdata.yaml:11:") ||
				!strings.Contains(so.Message, "verify.scratch is a postgres server") || strings.Contains(so.Message, "--scratch") {
				t.Errorf("mysql verify message: %q", so.Message)
			}
		}
	}
	// A per-engine mapping without the engine names the key to set.
	e.writeConfig(t, cfg(fmt.Sprintf("{ postgres: %q }", pg.DSN(""))))
	o, _ = RunOnce(ctx, e.opts(t), "both/verify")
	for _, so := range o.Sources {
		if so.Source == "my" && (so.Status != StatusFailure || !strings.Contains(so.Message, "set verify.scratch.mysql")) {
			t.Errorf("message without a mysql scratch server: %q", so.Message)
		}
	}
}
