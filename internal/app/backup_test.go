package app

import (
	"context"
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
	db := filepath.Join(t.TempDir(), "app.db")
	data, err := os.ReadFile("../../testdata/chinook.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := backupWithin(t, context.Background(), 60*time.Second, source(t, "sqlite:"+db))
	if err != nil {
		t.Fatal(err)
	}
	if out.Snapshot == nil || len(out.Snapshot.Tables) == 0 {
		t.Fatalf("no snapshot or no tables: %+v", out)
	}
}
