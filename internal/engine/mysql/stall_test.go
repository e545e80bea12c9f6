package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// A long query sends nothing while it runs; the stall watchdog probes the
// server, finds it answering, and leaves the query alone.
func TestLongQuerySurvivesStallCheck(t *testing.T) {
	_, d := newDB(t, testsrv.MariaDB(t), "longquery")
	sep := "?"
	if strings.Contains(d.Raw, "?") {
		sep = "&"
	}
	d = mustDSN(t, d.Raw+sep+"stall_check=200ms")
	db, err := open(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT 7 FROM (SELECT SLEEP(1.5)) s").Scan(&n); err != nil || n != 7 {
		t.Fatalf("long query: %d, %v", n, err)
	}
}
