package mysql

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// issue 18: restore --table T --clean must replace T only: every other
// table keeps its rows, a table the snapshot does not know survives with
// its foreign key to T, and without --clean an existing T is refused.
func TestTableCleanReplacesOnlyTheChosenTable(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := loadRich(t, my)
	mem, res := backup(t, e, src, 2)
	dst := restoreInto(t, e, my, mem, "rich_table_clean", engine.RestoreOptions{Jobs: 2})
	ctx := ctxT(t)
	c := session(t, ctx, dst)
	for _, q := range []string{
		"CREATE TABLE extra (id INT PRIMARY KEY, parent_id INT, CONSTRAINT extra_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
		"INSERT INTO extra SELECT id, id FROM parent",
		"SET SESSION foreign_key_checks = 0",
		"UPDATE parent SET id = id + 1000",
		"INSERT INTO extra VALUES (999999, 999999)",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var extra int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM extra").Scan(&extra); err != nil || extra == 0 {
		t.Fatalf("extra rows: %d, %v", extra, err)
	}
	err := e.Restore(ctx, mem, dst, engine.RestoreOptions{Jobs: 2, Tables: []string{"parent"}, Logger: quiet})
	if !errors.Is(err, engine.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "parent") {
		t.Fatalf("restore of an existing table without --clean: %v", err)
	}
	var logs bytes.Buffer
	if err := e.Restore(ctx, mem, dst, engine.RestoreOptions{Jobs: 2, Tables: []string{"parent"}, Clean: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("restore --table parent --clean: %v", err)
	}
	// The kept row whose parent the snapshot lacks is kept and named.
	if w := logs.String(); !strings.Contains(w, "foreign_key=extra_parent") || !strings.Contains(w, "rows=1") || strings.Contains(w, "fk_rich_parent") {
		t.Errorf("warnings about kept rows that reference missing parents:\n%s", w)
	}
	got := checksums(t, e, dst)
	var n int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM extra").Scan(&n); err != nil || n != extra {
		t.Errorf("extra table: %d rows (%v), want %d", n, err, extra)
	}
	delete(got, "extra")
	compareTables(t, res.Tables, got)
	var orphans int
	err = c.QueryRowContext(ctx, "SELECT COUNT(*) FROM extra x LEFT JOIN parent p ON p.id = x.parent_id WHERE p.id IS NULL").Scan(&orphans)
	if err != nil || orphans != 1 {
		t.Errorf("extra rows whose parent is gone after the restore: %d (%v), want the one inserted without a parent", orphans, err)
	}
	for table, fk := range map[string]string{"extra": "extra_parent", "rich": "fk_rich_parent"} {
		var name, ddl string
		if err := c.QueryRowContext(ctx, "SHOW CREATE TABLE "+table).Scan(&name, &ddl); err != nil || !strings.Contains(ddl, fk) {
			t.Errorf("foreign key %s of %s lost (%v):\n%s", fk, table, err, ddl)
		}
	}
}
