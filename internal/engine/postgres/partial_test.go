package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
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
		Jobs: 2, Clean: true, Tables: []string{"public.visits_2024", "public.notes"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("partial restore with a foreign key on a partitioned table: %v", err)
	}
	if n := query[int64](t, dst, "SELECT count(*) FROM visits"); n != 100 {
		t.Errorf("visits: %d rows, want 100", n)
	}
	if n := query[int64](t, dst, "SELECT count(*) FROM users"); n != 0 {
		t.Errorf("users restored too: %d rows", n)
	}
	if !strings.Contains(logs.String(), "visits_user_id_fkey") {
		t.Errorf("no warning naming the left-out foreign key:\n%s", logs.String())
	}
	// The foreign key of the plain table is there, NOT VALID.
	if v := query[bool](t, dst, "SELECT convalidated FROM pg_constraint WHERE conname = 'notes_user_id_fkey'"); v {
		t.Error("notes_user_id_fkey validated in a partial restore")
	}
}
