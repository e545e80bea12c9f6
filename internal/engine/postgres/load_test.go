package postgres

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestConsistencyUnderLoad moves money between accounts while a parallel,
// split backup runs: every restored copy must hold the same total.
func TestConsistencyUnderLoad(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "bank")
	exec1(t, src, `CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text);
INSERT INTO accounts SELECT i, 100, md5(i::text) FROM generate_series(1, 3000) i;
CREATE TABLE transfers (id bigserial PRIMARY KEY, src int, dst int, amount int);`)
	const total = 300000
	ctx, cancel := context.WithCancel(context.Background())
	var moved atomic.Int64
	var wg sync.WaitGroup
	writerErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := pgx.Connect(ctx, src.Raw)
		if err != nil {
			writerErr <- err
			return
		}
		defer c.Close(context.Background())
		r := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			a, b, x := 1+r.IntN(3000), 1+r.IntN(3000), 1+r.IntN(50)
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", x, a); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO transfers (src, dst, amount) VALUES ($1, $2, $3)", a, b, x); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", x, b)
				return err
			})
			if err != nil {
				if ctx.Err() == nil {
					writerErr <- err
				}
				return
			}
			moved.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	e := New()
	e.SplitThreshold = 16 << 10
	for round := 0; round < 2; round++ {
		before := moved.Load()
		mem, res := backupMem(t, e, src, 4)
		if n := len(mem.Manifest().TableStreams("public.accounts")); n < 4 {
			t.Fatalf("accounts split into %d parts, want several", n)
		}
		during := moved.Load() - before
		dst := newDB(t, pg, "bank_restored")
		restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 4, Clean: true})
		if got := query[int64](t, dst, "SELECT sum(balance) FROM accounts"); got != total {
			t.Errorf("round %d: restored total %d, want %d (%d transfers during the backup)", round, got, total, during)
		}
		compareChecksums(t, e, res.Tables, dst)
		t.Logf("round %d: %d transfers during backup", round, during)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-writerErr:
		t.Fatalf("writer: %v", err)
	default:
	}
	if moved.Load() == 0 {
		t.Fatal("the writer moved no money")
	}
}

func TestLargeObjectsRefused(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "lo")
	exec1(t, src, `CREATE TABLE "Docs" (id int PRIMARY KEY, body oid);
INSERT INTO "Docs" VALUES (1, lo_from_bytea(4242001, 'hello')), (2, lo_from_bytea(4242002, 'world'))`)
	_, err := New().Backup(context.Background(), src, engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
	// The refusal names the objects and the column that refers to them.
	for _, want := range []string{"2 large objects", "oids 4242001, 4242002", `public."Docs".body`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("backup with large objects: error %v, want one containing %q", err, want)
		}
	}
}

func TestTextKeySplitAndProgress(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "textkey")
	exec1(t, src, `CREATE TABLE words (w text PRIMARY KEY, n int);
INSERT INTO words SELECT md5(i::text), i FROM generate_series(1, 4000) i; ANALYZE words;`)
	e := New()
	e.SplitThreshold = 32 << 10
	mem := enginetest.NewMemory()
	p := progress.New("backup", nil)
	res, err := e.Backup(context.Background(), src, engine.BackupOptions{Jobs: 2, Progress: p, Logger: testLogger(t)}, mem)
	if err != nil {
		t.Fatal(err)
	}
	mem.Finish(res, "postgres")
	if n := len(mem.Manifest().TableStreams("public.words")); n < 3 {
		t.Errorf("text-keyed table split into %d parts", n)
	}
	if p.Rows() != 4000 || p.Bytes() != res.Tables[0].Bytes {
		t.Errorf("progress rows=%d bytes=%d, table %+v", p.Rows(), p.Bytes(), res.Tables[0])
	}
	if res.Tables[0].Rows != 4000 {
		t.Errorf("rows %d", res.Tables[0].Rows)
	}
	dst := newDB(t, pg, "textkey_restored")
	restoreTo(t, e, mem, dst, engine.RestoreOptions{Jobs: 2, Clean: true})
	compareChecksums(t, e, res.Tables, dst)
	// Two backups, same parts.
	m2, _ := backupMem(t, e, src, 1)
	for _, st := range mem.Manifest().Streams {
		if string(mem.Bytes(st.Name)) != string(m2.Bytes(st.Name)) {
			t.Errorf("stream %s not stable", st.Name)
		}
	}
}

func TestNoPrivilegesNoOwner(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	e := New()
	mem, _ := backupMem(t, e, src, 2)
	dst := newDB(t, pg, "noprivs")
	restoreTo(t, e, mem, dst, engine.RestoreOptions{NoOwner: true, NoPrivileges: true})
	if acl := query[*string](t, dst, "SELECT relacl::text FROM pg_class WHERE oid = 'app.users'::regclass"); acl != nil {
		t.Errorf("grants restored with NoPrivileges: %s", *acl)
	}
	if acl := query[*string](t, src, "SELECT relacl::text FROM pg_class WHERE oid = 'app.users'::regclass"); acl == nil {
		t.Errorf("source has no grant to compare with")
	}
}

// cancelSink cancels the backup's context when the first data stream starts.
type cancelSink struct {
	*enginetest.Memory
	cancel context.CancelFunc
}

func (c *cancelSink) Create(ctx context.Context, s manifest.Stream) (engine.StreamWriter, error) {
	if s.Kind == manifest.KindData {
		c.cancel()
	}
	return c.Memory.Create(ctx, s)
}

// TestCancelledBackupFails: a backup interrupted part-way returns an error
// promptly (so the caller writes no snapshot) and leaves no session behind.
func TestCancelledBackupFails(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := loadRich(t, pg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	_, err := New().Backup(ctx, src, engine.BackupOptions{Jobs: 2, Logger: testLogger(t)}, &cancelSink{Memory: enginetest.NewMemory(), cancel: cancel})
	if err == nil {
		t.Fatal("cancelled backup succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancelled backup took %s", time.Since(start))
	}
	t.Logf("cancelled after %s: %v", time.Since(start), err)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := query[int64](t, src, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name IN ('snapdata', 'pg_dump') AND pid <> pg_backend_pid()")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapdata/pg_dump sessions left after a cancelled backup", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
