package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

func newRepo(t *testing.T) *repository.Repository {
	t.Helper()
	r, err := repository.Init(context.Background(), local.New(filepath.Join(t.TempDir(), "repo")),
		repository.InitOptions{NoEncryption: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func source(t *testing.T, s string) Source {
	t.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: "src", DSN: d}
}

// backupWithin runs a backup and fails t if it has not returned in limit.
func backupWithin(t *testing.T, ctx context.Context, limit time.Duration, src Source) (*BackupOutcome, error) {
	t.Helper()
	a := New(nil, nil, nil)
	repo := newRepo(t)
	type result struct {
		out *BackupOutcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := a.Backup(ctx, repo, src, BackupOptions{})
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(limit):
		t.Fatalf("backup of %s still running after %s: it hangs", src.DSN, limit)
		return nil, nil
	}
}

// A PostgreSQL or MySQL server that accepts the connection and never
// answers fails the backup within the connect timeout, with a message that
// names the server and no password.
func TestBackupSilentServer(t *testing.T) {
	addr := testsrv.Silent(t)
	for _, tc := range []struct{ engine, dsn string }{
		{"postgres", "postgres://backup:S3cretPW@" + addr + "/db?sslmode=disable&connect_timeout=1"},
		{"postgres", "postgres://backup:S3cretPW@" + addr + "/db?connect_timeout=1"}, // TLS first, then plain
		{"mysql", "mysql://backup:S3cretPW@" + addr + "/db?timeout=1s"},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			start := time.Now()
			_, err := backupWithin(t, context.Background(), 20*time.Second, source(t, tc.dsn))
			took := time.Since(start)
			if err == nil {
				t.Fatal("backup of a silent server succeeded")
			}
			msg := err.Error()
			want := tc.engine + " server " + addr + " accepted the connection but did not answer within 1s"
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
			if strings.Contains(msg, "S3cretPW") {
				t.Errorf("error shows the password: %s", msg)
			}
			// The fingerprint's connection fails first; the backup does not
			// list the repository and wait for the server a second time.
			if took > 1900*time.Millisecond {
				t.Errorf("took %s, want about 1s", took)
			}
		})
	}
}

// Ctrl-C while the server does not answer reports an interrupted backup,
// not a failed repository listing.
func TestBackupInterrupted(t *testing.T) {
	addr := testsrv.Silent(t)
	for _, tc := range []struct{ engine, dsn string }{
		{"postgres", "postgres://backup:S3cretPW@" + addr + "/db?sslmode=disable"},
		{"mysql", "mysql://backup:S3cretPW@" + addr + "/db"},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			_, err := backupWithin(t, ctx, 10*time.Second, source(t, tc.dsn))
			if err == nil {
				t.Fatal("interrupted backup succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "backup of src interrupted, no snapshot was written") || strings.Contains(msg, "list") {
				t.Errorf("interrupted backup: %s", msg)
			}
		})
	}
}

// SQLite has no server: its backups are untouched by the timeouts.
func TestBackupSQLiteUnaffected(t *testing.T) {
	db := chinookCopy(t, t.TempDir())
	out, err := backupWithin(t, context.Background(), 60*time.Second, source(t, "sqlite:"+db))
	if err != nil {
		t.Fatal(err)
	}
	if out.Snapshot == nil || len(out.Snapshot.Tables) == 0 {
		t.Fatalf("no snapshot or no tables: %+v", out)
	}
}

// A server that stops answering in the middle of a backup (the proxy in
// front of it freezes during a table's rows) fails the backup soon after
// stall_check, naming the server, instead of hanging.
func TestBackupServerStopsAnswering(t *testing.T) {
	const rows = "300000"
	for _, tc := range []struct {
		engine string
		setup  func(t *testing.T) (dsnText, target string)
	}{
		{"postgres", func(t *testing.T) (string, string) {
			pg := testsrv.Postgres(t)
			raw := pg.CreateDatabase(t, "stall_pg")
			pg.Exec(t, source(t, raw).DSN.Database(), "CREATE TABLE t (id int PRIMARY KEY, v text)",
				"INSERT INTO t SELECT i, md5(i::text) || md5((i+1)::text) FROM generate_series(1, "+rows+") i")
			return raw, fmt.Sprintf("%s:%d", pg.Host, pg.Port)
		}},
		{"mysql", func(t *testing.T) (string, string) {
			my := testsrv.MariaDB(t)
			raw := my.CreateDatabase(t, "stall_my")
			my.Exec(t, source(t, raw).DSN.Database(), "CREATE TABLE t (id int PRIMARY KEY, v text)",
				"INSERT INTO t SELECT seq, concat(md5(seq), md5(seq+1)) FROM seq_1_to_"+rows)
			return raw, fmt.Sprintf("%s:%d", my.Host, my.Port)
		}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			raw, target := tc.setup(t)
			proxy := testsrv.NewProxy(t, target)
			proxy.FreezeAfter = 4 << 20 // inside the table's rows
			raw = strings.Replace(raw, target, proxy.Addr, 1)
			sep := "?"
			if strings.Contains(raw, "?") {
				sep = "&"
			}
			timeout := "connect_timeout=1"
			if tc.engine == "mysql" {
				timeout = "timeout=1s"
			}
			raw += sep + "stall_check=300ms&" + timeout
			start := time.Now()
			_, err := backupWithin(t, context.Background(), 30*time.Second, source(t, raw))
			if !proxy.Frozen() {
				t.Fatalf("the proxy never froze (backup: %v)", err)
			}
			if err == nil {
				t.Fatal("backup through a frozen server succeeded")
			}
			want := tc.engine + " server " + proxy.Addr + " stopped answering: a session got nothing for 300ms and a new connection was not answered within 1s"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// An interrupted restore or verify says it was interrupted, not which step
// the cancellation broke.
func TestRestoreAndVerifyInterrupted(t *testing.T) {
	dir := t.TempDir()
	db := chinookCopy(t, dir)
	a := New(nil, nil, nil)
	repo := newRepo(t)
	out, err := a.Backup(context.Background(), repo, source(t, "sqlite:"+db), BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target := filepath.Join(dir, "copy.db")
	err = a.Restore(ctx, repo, out.Snapshot, source(t, "sqlite:"+target).DSN, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "restore of snapshot "+out.Snapshot.ShortID()+" into sqlite:") ||
		!strings.Contains(err.Error(), "interrupted: context canceled") {
		t.Errorf("interrupted restore: %v", err)
	}
	_, err = a.Verify(ctx, repo, out.Snapshot, "", 1, nil)
	if err == nil || !strings.Contains(err.Error(), "verify of snapshot "+out.Snapshot.ShortID()+" interrupted: context canceled") {
		t.Errorf("interrupted verify: %v", err)
	}
}

// The "backup done" log line gives the duration as a number of seconds,
// as run --json and the job logs do, not as a string.
func TestBackupDoneLogsSeconds(t *testing.T) {
	db := chinookCopy(t, t.TempDir())
	var logs bytes.Buffer
	a := New(nil, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	if _, err := a.Backup(context.Background(), newRepo(t), source(t, "sqlite:"+db), BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "backup done" {
			continue
		}
		if d, ok := m["duration_seconds"].(float64); !ok || d <= 0 {
			t.Errorf("backup done: duration_seconds = %v (%T) in %s", m["duration_seconds"], m["duration_seconds"], l)
		}
		return
	}
	t.Fatalf("no backup done line in:\n%s", logs.String())
}

// chinookCopy copies the Chinook SQLite sample into dir and returns its path.
func chinookCopy(t *testing.T, dir string) string {
	t.Helper()
	db := filepath.Join(dir, "app.db")
	data, err := os.ReadFile("../../testdata/chinook.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return db
}
