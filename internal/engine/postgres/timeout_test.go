package postgres

import (
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
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
