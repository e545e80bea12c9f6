package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestBulkLoadsEmptyTables(t *testing.T) {
	for _, c := range []struct {
		version string
		want    bool
	}{
		{"10.11.19-MariaDB-0+deb12u1", true},
		{"10.6.0-MariaDB", true},
		{"11.4.2-MariaDB-log", true},
		{"5.5.5-10.11.6-MariaDB-0+deb12u1", true},
		{"5.5.5-10.5.9-MariaDB", false},
		{"10.5.23-MariaDB-0+deb11u1", false},
		{"10.3.39-MariaDB", false},
		{"8.0.36", false},
		{"8.4.0-commercial", false},
		{"5.7.44-log", false},
		{"garbage-MariaDB", false},
		{"", false},
	} {
		if got := bulkLoadsEmptyTables(c.version); got != c.want {
			t.Errorf("bulkLoadsEmptyTables(%q) = %v, want %v", c.version, got, c.want)
		}
	}
}

func TestLoadUnits(t *testing.T) {
	ss := &snapshotSchema{tables: []*table{{Name: "wide"}, {Name: "narrow"}, {Name: "tiny"}}}
	streams := []manifest.Stream{
		{Name: "data/wide/0001", Table: "wide", Part: 1, Size: 300},
		{Name: "data/narrow/0000", Table: "narrow", Part: 0, Size: 100},
		{Name: "data/wide/0000", Table: "wide", Part: 0, Size: 300},
		{Name: "data/tiny/0000", Table: "tiny", Part: 0, Size: 10},
		{Name: "data/narrow/0001", Table: "narrow", Part: 1, Size: 100},
	}
	// wide: 600 bytes in 1 row; narrow: 200 bytes in 10 rows, which costs
	// more (200 bytes a row) and so goes first.
	rows := map[string]int64{"wide": 1, "narrow": 10, "tiny": 0}
	names := func(units []loadUnit) string {
		var out []string
		for _, u := range units {
			var s []string
			for _, st := range u.streams {
				s = append(s, st.Name)
			}
			out = append(out, strings.Join(s, "+"))
		}
		return strings.Join(out, " ")
	}
	got := names(loadUnits(streams, ss, rows, true))
	want := "data/narrow/0000+data/narrow/0001 data/wide/0000+data/wide/0001 data/tiny/0000"
	if got != want {
		t.Errorf("bulk units = %s\nwant %s", got, want)
	}
	got = names(loadUnits(streams, ss, rows, false))
	want = "data/narrow/0000 data/narrow/0001 data/wide/0000 data/wide/0001 data/tiny/0000"
	if got != want {
		t.Errorf("per-stream units = %s\nwant %s", got, want)
	}
}

// failingSnapshot fails to open one stream.
type failingSnapshot struct {
	*enginetest.Memory
	fail string
}

func (f failingSnapshot) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	if s.Name == f.fail {
		return nil, errors.New("injected: object damaged")
	}
	return f.Memory.Open(ctx, s)
}

// TestRestoreLoadsTablesInBulk restores a table backed up in several parts
// in one statement (the bulk path of MariaDB 10.6+), holds InnoDB's
// statistics recalculation during the load and puts every table's own
// setting back, with fresh statistics.
func TestRestoreLoadsTablesInBulk(t *testing.T) {
	my := testsrv.MariaDB(t)
	name, src := newDB(t, my, "bulk")
	my.Exec(t, name,
		"CREATE TABLE parent (id INT PRIMARY KEY, v VARCHAR(200))",
		"CREATE TABLE big (id INT PRIMARY KEY, parent_id INT NOT NULL, v VARCHAR(200), KEY (v(20)), UNIQUE KEY (parent_id, id), FOREIGN KEY (parent_id) REFERENCES parent (id))",
		"CREATE TABLE kept (id INT PRIMARY KEY) STATS_AUTO_RECALC=0",
		"CREATE TABLE transient (id INT PRIMARY KEY) STATS_PERSISTENT=0",
		"CREATE TABLE isam (id INT PRIMARY KEY) ENGINE=MyISAM",
		"INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
		"INSERT INTO big SELECT seq, 1 + seq % 50, REPEAT(CHAR(65 + seq % 26), 150) FROM seq_1_to_4000",
		"INSERT INTO kept SELECT seq FROM seq_1_to_10",
		"INSERT INTO transient SELECT seq FROM seq_1_to_10",
		"INSERT INTO isam SELECT seq FROM seq_1_to_10",
		"ANALYZE TABLE big")
	e := &Engine{SplitBytes: 64 << 10, StatsHoldBytes: 1}
	mem, res := backup(t, e, src, 2)
	parts := 0
	for _, s := range mem.Manifest().StreamsOf(manifest.KindData) {
		if s.Table == "big" {
			parts++
		}
	}
	if parts < 4 {
		t.Fatalf("big table backed up in %d parts, want ≥ 4", parts)
	}

	// The SHOW CREATE comparison includes each table's STATS_AUTO_RECALC and
	// STATS_PERSISTENT options.
	target := restoreAndCompare(t, e, my, mem, res, src, "bulk_restored", engine.RestoreOptions{Jobs: 2})

	ctx := ctxT(t)
	db, err := open(ctx, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Statistics are current after the load: the optimizer sees the rows.
	var statRows int64
	if err := db.QueryRowContext(ctx, "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = DATABASE() AND table_name = 'big'").Scan(&statRows); err != nil {
		t.Fatal(err)
	}
	if statRows < 1000 {
		t.Errorf("statistics of big after restore: n_rows = %d, want about 4000 (ANALYZE TABLE not run?)", statRows)
	}

	// A damaged part in the middle of a table fails the restore, naming
	// the table and the stream.
	var second string
	for _, s := range mem.Manifest().StreamsOf(manifest.KindData) {
		if s.Table == "big" && s.Part == 1 {
			second = s.Name
		}
	}
	bad := mustDSN(t, my.DSN(fmt.Sprintf("bulk_bad_%d", len(second))))
	err = e.Restore(ctx, failingSnapshot{mem, second}, bad, engine.RestoreOptions{Jobs: 2, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "table big") || !strings.Contains(err.Error(), second) || !strings.Contains(err.Error(), "injected") {
		t.Errorf("restore with a damaged stream: error %v, want one naming table big and stream %s", err, second)
	}
	// The failed restore gave the tables it held their automatic
	// statistics back.
	var createOpts string
	if err := db.QueryRowContext(ctx, "SELECT CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'big'", bad.Database()).Scan(&createOpts); err != nil {
		t.Fatalf("reading the options of big in the failed restore's database: %v", err)
	}
	if strings.Contains(strings.ToLower(createOpts), "stats_auto_recalc") {
		t.Errorf("after a failed restore big has options %q, want STATS_AUTO_RECALC back at its default", createOpts)
	}
}
