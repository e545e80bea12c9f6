package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return New(filepath.Join(t.TempDir(), "repo"))
	})
}

// unwritable returns a path below a regular file, which nobody (not even
// root) can create.
func unwritable(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(file, "repo")
}

func TestCreateUnwritableDirectory(t *testing.T) {
	dir := unwritable(t)
	err := New(dir).Create(context.Background())
	if err == nil {
		t.Fatal("Create below a regular file succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Create error %q does not name the directory and the cause", err)
	}
}

func TestSaveUnwritableDirectory(t *testing.T) {
	dir := unwritable(t)
	h := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	err := New(dir).Save(context.Background(), h, []byte("x"))
	if err == nil {
		t.Fatal("Save below a regular file succeeded")
	}
	if !strings.Contains(err.Error(), h.String()) {
		t.Errorf("Save error %q does not name the object", err)
	}
}

// TestFailedSaveLeavesNothing makes the final rename fail (the target name
// is a non-empty directory) and checks that no partial object or temporary
// file is left behind.
func TestFailedSaveLeavesNothing(t *testing.T) {
	ctx := context.Background()
	b := New(filepath.Join(t.TempDir(), "repo"))
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Snapshot, Name: backendtest.RandomName()}
	blocker := filepath.Join(b.dir, "snapshots", h.Name)
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, h, []byte("data")); err == nil {
		t.Fatal("Save over a non-empty directory succeeded")
	}
	tmp, err := os.ReadDir(filepath.Join(b.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tmp) != 0 {
		t.Errorf("failed Save left %d temporary files", len(tmp))
	}
	if _, err := os.ReadFile(blocker); err == nil {
		t.Error("a file appeared under the object's name")
	}
	// A canceled Save leaves nothing either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	h2 := backend.Handle{Type: backend.Snapshot, Name: backendtest.RandomName()}
	if err := b.Save(cctx, h2, []byte("data")); err == nil {
		t.Fatal("canceled Save succeeded")
	}
	if _, err := os.Stat(filepath.Join(b.dir, "snapshots", h2.Name)); !os.IsNotExist(err) {
		t.Errorf("canceled Save left the object: %v", err)
	}
}

func TestCleanTemp(t *testing.T) {
	ctx := context.Background()
	b := New(filepath.Join(t.TempDir(), "repo"))
	if n, err := b.CleanTemp(ctx); err != nil || n != 0 {
		t.Fatalf("CleanTemp before Create = %d, %v; want 0, nil", n, err)
	}
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	if err := b.Save(ctx, h, []byte("real")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data-ab.1", "snapshots-cd.2", "config.3"} {
		if err := os.WriteFile(filepath.Join(b.dir, "tmp", name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.CleanTemp(ctx)
	if err != nil || n != 3 {
		t.Fatalf("CleanTemp = %d, %v; want 3, nil", n, err)
	}
	if left, _ := os.ReadDir(filepath.Join(b.dir, "tmp")); len(left) != 0 {
		t.Errorf("%d temporary files left after CleanTemp", len(left))
	}
	if data, err := b.Load(ctx, h); err != nil || string(data) != "real" {
		t.Errorf("CleanTemp harmed a real object: %q, %v", data, err)
	}
	// Temporary files never show up in listings.
	for _, ft := range backend.AllTypes {
		_ = b.List(ctx, ft, func(fi backend.FileInfo) error {
			if strings.Contains(fi.Name, ".") {
				t.Errorf("List(%s) returned a temporary file %s", ft, fi.Name)
			}
			return nil
		})
	}
}

func TestLocation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if got := New(dir + "/").Location(); got != dir {
		t.Errorf("Location = %q, want %q", got, dir)
	}
}
