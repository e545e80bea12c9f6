package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// tampered serves one table's first data stream with other bytes.
type tampered struct {
	*enginetest.Memory
	stream string
	data   []byte
}

func (t *tampered) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	if s.Name == t.stream {
		return io.NopCloser(bytes.NewReader(t.data)), nil
	}
	return t.Memory.Open(ctx, s)
}

func TestRestoreErrorsNameTheObject(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	mem, _ := backupMem(t, e, src, 2)
	first := func(table string) string {
		sts := mem.Manifest().TableStreams(table)
		if len(sts) == 0 {
			t.Fatalf("no stream for %s", table)
		}
		return sts[0].Name
	}
	cases := []struct {
		name, table string
		edit        func([]byte) []byte
		want        string
	}{
		{"bad COPY data", "app.nopk", func([]byte) []byte { return []byte("not\tenough\n") }, "restore table app.nopk"},
		{"duplicate key", "app.users", func(b []byte) []byte {
			return append(append([]byte{}, b...), b[:bytes.IndexByte(b, '\n')+1]...)
		}, "users users_"}, // the primary key or the unique e-mail, whichever is built first
		{"foreign key violated", `"Mixed Schema"."OrderItems"`, func(b []byte) []byte {
			return append(append([]byte{}, b...), "9\t9\t999\t1\t1\n"...)
		}, "OrderItems_user_id_fkey"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := first(c.table)
			snap := &tampered{Memory: mem, stream: st, data: c.edit(mem.Bytes(st))}
			dst := mustDSN(t, pg.DSN("rich_bad"+string(rune('a'+i))))
			err := e.Restore(context.Background(), snap, dst, engine.RestoreOptions{Jobs: 2, Logger: testLogger(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore error = %v, want one naming %s", err, c.want)
			}
			// The caller can tell that the target holds part of the
			// snapshot (and say so, with how to retry).
			if !errors.Is(err, engine.ErrTargetChanged) {
				t.Errorf("restore error %v is not marked ErrTargetChanged", err)
			}
		})
	}
}

func TestRestoreFreezeCleanAndChosenPartition(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	e.SplitThreshold = 1 // several parts per table
	mem, res := backupMem(t, e, src, 2)
	dst := mustDSN(t, pg.DSN("rich_freeze"))
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 3})
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 1, Clean: true})
	compareChecksums(t, e, res.Tables, dst)
	sameSchema(t, pg, src, dst)
	// The rows were written frozen (COPY FREEZE sets the visibility map
	// from PostgreSQL 14 on); needs contrib's pg_visibility.
	if _, err := pgxExec(dst, "CREATE EXTENSION IF NOT EXISTS pg_visibility"); err != nil {
		t.Logf("pg_visibility not available, frozen rows not checked: %v", err)
	} else if v := query[int](t, dst, "SELECT current_setting('server_version_num')::int"); v >= 140000 {
		for _, tb := range []string{"app.users", "app.events_2023", `"Mixed Schema"."OrderItems"`} {
			if n := query[int64](t, dst, "SELECT count(*) FROM pg_visibility_map($1::regclass) WHERE NOT all_frozen", tb); n != 0 {
				t.Errorf("%s: %d pages not all-frozen after COPY FREEZE", tb, n)
			}
		}
	}

	// A chosen partition: its rows, its partitioned table (which the
	// target lacked) and no other table.
	part := mustDSN(t, pg.DSN("rich_part"))
	restoreTo(t, e, mem, part, engine.RestoreOptions{Jobs: 2, Tables: []string{"app.events_2023"}})
	got, err := e.Checksums(context.Background(), part, []string{"app.events_2023"}, engine.ChecksumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mem.Manifest().Table("app.events_2023")
	if len(got) != 1 || got[0].Checksum != want.Checksum || got[0].Rows != want.Rows {
		t.Errorf("chosen partition: %+v, want %+v", got, want)
	}
	if n := query[int64](t, part, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'app' AND (c.relname IN ('events_2024', 'users', 'nopk') OR c.relkind IN ('v', 'm'))`); n != 0 {
		t.Errorf("%d tables or views that were not chosen were created", n)
	}
	if n := query[int64](t, part, "SELECT count(*) FROM pg_constraint WHERE conname = 'events_pkey'"); n != 1 {
		t.Errorf("partitioned primary key missing")
	}
}

func pgxExec(d *dsn.DSN, sql string) (int64, error) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, d.Raw)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, sql)
	return tag.RowsAffected(), err
}

// The restore names an older target only when both versions are known and
// the target's major is below the source's.
func TestOlderTarget(t *testing.T) {
	for _, c := range []struct {
		source, target string
		older          bool
	}{
		{"15.18 (Debian 15.18-0+deb12u1)", "12.22", true},
		{"15.18", "15.2", false},
		{"15.18", "17.10", false},
		{"", "12.22", false},              // a snapshot without the source's version
		{"PostgreSQL 15", "12.22", false}, // not a version string
		{"15.18", "", false},              // the server did not report its version
	} {
		got := olderTarget(c.source, c.target)
		if (got != "") != c.older {
			t.Errorf("olderTarget(%q, %q) = %q, want older %v", c.source, c.target, got, c.older)
		}
		if c.older && !strings.Contains(got, "PostgreSQL 15 and this server is PostgreSQL 12") {
			t.Errorf("olderTarget(%q, %q) = %q", c.source, c.target, got)
		}
	}
}
