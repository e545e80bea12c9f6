package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// Every session has a connect timeout, engine.DefaultConnectTimeout unless
// the DSN's connect_timeout says otherwise: without one, pgx waits forever
// for a server that accepts the connection and never answers.
func TestConnectTimeout(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"postgres://u:pw@127.0.0.1:5432/db":                   engine.DefaultConnectTimeout,
		"postgres://u:pw@127.0.0.1:5432/db?connect_timeout=5": 5 * time.Second,
	} {
		d, err := dsn.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := connConfig(d, true)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectTimeout != want {
			t.Errorf("%s: connect timeout %s, want %s", d, cfg.ConnectTimeout, want)
		}
	}
}

// A long query sends nothing while it runs; the stall watchdog probes the
// server, finds it answering, and leaves the query alone.
func TestLongQuerySurvivesStallCheck(t *testing.T) {
	d := newDB(t, testsrv.Postgres(t), "longquery")
	d = mustDSN(t, d.Raw+"&stall_check=200ms")
	c, err := connect(context.Background(), d, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), "SELECT 7 FROM pg_sleep(1.5)").Scan(&n); err != nil || n != 7 {
		t.Fatalf("long query: %d, %v", n, err)
	}
}

// pg_dump gets the connect timeout too (libpq's connect_timeout), and
// never snapdata's own stall_check, which libpq would refuse.
func TestPgDumpConnectTimeout(t *testing.T) {
	for s, want := range map[string]string{
		"postgres://u:pw@127.0.0.1:5432/db":                                  "connect_timeout=30",
		"postgres://u:pw@127.0.0.1:5432/db?connect_timeout=5&stall_check=1m": "connect_timeout=5",
	} {
		u, _, cleanup, err := pgDumpConn(mustDSN(t, s))
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
		if !strings.Contains(u, want) || strings.Contains(u, "stall_check") {
			t.Errorf("%s: pg_dump URL %s, want %s and no stall_check", s, u, want)
		}
	}
}
