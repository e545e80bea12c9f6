package postgres

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// A --table restore adds foreign keys NOT VALID, which PostgreSQL up to 17
// refuses on partitioned tables: those are left out with a warning naming
// them, and the rest of the restore goes on.
func TestPartialRestorePartitionedForeignKey(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "pfk")
	exec1(t, src, `CREATE TABLE users (id int PRIMARY KEY);
INSERT INTO users SELECT generate_series(1, 10);
CREATE TABLE visits (id int, user_id int REFERENCES users (id), at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE visits_2024 PARTITION OF visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO visits SELECT i, 1 + i % 10, '2024-03-01' FROM generate_series(1, 100) i;
CREATE TABLE notes (id int PRIMARY KEY, user_id int REFERENCES users (id));
INSERT INTO notes VALUES (1, 1);`)
	e := New()
	mem, _ := backupMem(t, e, src, 2)
	dst := newDB(t, pg, "pfk_part")
	var logs bytes.Buffer
	err := e.Restore(context.Background(), mem, dst, engine.RestoreOptions{
		Jobs: 2, Clean: true, Tables: []string{"public.visits_2024", "public.notes", "public.users"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("partial restore with a foreign key on a partitioned table: %v", err)
	}
	if n := query[int64](t, dst, "SELECT count(*) FROM visits"); n != 100 {
		t.Errorf("visits: %d rows, want 100", n)
	}
	if n := query[int64](t, dst, "SELECT count(*) FROM users"); n != 10 {
		t.Errorf("users: %d rows, want 10", n)
	}
	if !strings.Contains(logs.String(), "visits_user_id_fkey") {
		t.Errorf("no warning naming the left-out foreign key:\n%s", logs.String())
	}
	// The foreign key of the plain table is there, NOT VALID.
	if v := query[bool](t, dst, "SELECT convalidated FROM pg_constraint WHERE conname = 'notes_user_id_fkey'"); v {
		t.Error("notes_user_id_fkey validated in a partial restore")
	}
}

// issue 18: restore --table T --clean into a database that holds the
// snapshot and more replaced the whole database. It must replace T only:
// every other table keeps its rows, a table the snapshot does not know
// survives with its foreign key to T, and a sequence T does not own keeps
// its value.
func TestTableCleanReplacesOnlyTheChosenTable(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	exec1(t, src, `COMMENT ON TYPE app.mood IS 'from the snapshot';
ALTER TABLE "Mixed Schema"."OrderItems" ADD CONSTRAINT qty_floor CHECK ("Qty" > -100) NOT VALID`)
	e := New()
	mem, res := backupMem(t, e, src, 2)
	dst := mustDSN(t, pg.DSN("rich_table_clean"))
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2})
	exec1(t, dst, `COMMENT ON TYPE app.mood IS 'the target''s own';
UPDATE "Mixed Schema"."OrderItems" SET "Qty" = -1;
SELECT setval('app.ticket_seq', 99999);
CREATE TABLE public.extra (id int PRIMARY KEY, o int, l smallint,
  CONSTRAINT extra_item_fkey FOREIGN KEY (o, l) REFERENCES "Mixed Schema"."OrderItems" ("OrderID", "Line"));
INSERT INTO public.extra SELECT row_number() OVER (), "OrderID", "Line" FROM "Mixed Schema"."OrderItems";`)
	extra := query[int64](t, dst, "SELECT count(*) FROM public.extra")
	if extra == 0 {
		t.Fatal("no order items in the rich schema")
	}
	var logs bytes.Buffer
	err := e.Restore(context.Background(), mem, dst, engine.RestoreOptions{
		Jobs: 2, Clean: true, Tables: []string{`"Mixed Schema"."OrderItems"`},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("restore --table --clean: %v\n%s", err, logs.String())
	}
	// Every table of the snapshot as the snapshot has it: the chosen one
	// restored, the others untouched.
	names := make([]string, len(res.Tables))
	for i, tb := range res.Tables {
		names[i] = tb.Name
	}
	got, err := e.Checksums(context.Background(), dst, names, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gm := map[string]int64{}
	for _, g := range got {
		gm[g.Name] = g.Rows
	}
	for _, w := range res.Tables {
		if gm[w.Name] != w.Rows {
			t.Errorf("%s: %d rows after restoring another table, want %d", w.Name, gm[w.Name], w.Rows)
		}
	}
	compareTables(t, e, mem, dst, names)
	if n := query[int64](t, dst, "SELECT count(*) FROM public.extra"); n != extra {
		t.Errorf("extra table: %d rows, want %d", n, extra)
	}
	if v := query[bool](t, dst, "SELECT convalidated FROM pg_constraint WHERE conname = 'extra_item_fkey'"); !v {
		t.Error("the extra table's foreign key to the replaced table is not back and validated")
	}
	if n := query[int64](t, dst, "SELECT last_value FROM app.ticket_seq"); n != 99999 {
		t.Errorf("a sequence the chosen table does not own was reset to %d", n)
	}
	if c := query[string](t, dst, `SELECT obj_description('app.mood'::regtype, 'pg_type')`); c != "the target's own" {
		t.Errorf("a type the target had got the snapshot's comment: %q", c)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_constraint WHERE conname = 'qty_floor'`); n != 1 {
		t.Errorf("the chosen table's NOT VALID check constraint: %d, want 1", n)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_trigger WHERE tgname = 'order_items_touch'`); n != 1 {
		t.Errorf("the chosen table's trigger: %d, want 1", n)
	}

	// A view depends on app.users: replacing it is refused, nothing changes.
	before := query[int64](t, dst, "SELECT count(*) FROM app.users")
	err = e.Restore(context.Background(), mem, dst, engine.RestoreOptions{Jobs: 2, Clean: true, Tables: []string{"app.users"}, Logger: testLogger(t)})
	if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "user_names") {
		t.Fatalf("replacing a table a view depends on: %v, want a refusal naming the view", err)
	}
	if n := query[int64](t, dst, "SELECT count(*) FROM app.users"); n != before {
		t.Errorf("app.users: %d rows after the refusal, want %d", n, before)
	}
	if n := query[int64](t, dst, `SELECT count(*) FROM pg_constraint WHERE conname = 'OrderItems_user_id_fkey'`); n != 1 {
		t.Error("the refusal lost a foreign key")
	}

	// Without --clean an existing chosen table is refused.
	err = e.Restore(context.Background(), mem, dst, engine.RestoreOptions{Jobs: 2, Tables: []string{"app.nopk"}, Logger: testLogger(t)})
	if !errors.Is(err, engine.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "app.nopk") {
		t.Fatalf("restore of an existing table without --clean: %v", err)
	}
	// A missing chosen table is added without --clean, beside the others.
	exec1(t, dst, "DROP TABLE app.nopk")
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2, Tables: []string{"app.nopk"}})
	compareTables(t, e, mem, dst, names)
	if n := query[int64](t, dst, "SELECT count(*) FROM public.extra"); n != extra {
		t.Errorf("extra table: %d rows, want %d", n, extra)
	}
}

// compareTables checks the named tables of target against the snapshot.
func compareTables(t *testing.T, e *Engine, mem *enginetest.Memory, target *dsn.DSN, names []string) {
	t.Helper()
	got, err := e.Checksums(context.Background(), target, names, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Errorf("%d of %d tables in the target", len(got), len(names))
	}
	for _, g := range got {
		w, _ := mem.Manifest().Table(g.Name)
		if g.Rows != w.Rows || g.Checksum != w.Checksum {
			t.Errorf("%s: rows=%d sum=%s, snapshot rows=%d sum=%s", g.Name, g.Rows, g.Checksum, w.Rows, w.Checksum)
		}
	}
}
