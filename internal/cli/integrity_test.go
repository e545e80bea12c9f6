package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// One damaged manifest must not stop the repository: listings skip it with
// a warning naming it, backups and restores of other snapshots go on,
// prune refuses with a message that says how to remove it, and forget ID
// removes it.
func TestDamagedManifestIsSkippedAndForgettable(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	chinook(t, "b.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:b.sqlite")
	snaps := listSnapshots(t, "--repo", "repo")
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	var bad, good, goodSource string
	for _, s := range snaps {
		if strings.HasSuffix(s.Source, "a.sqlite") {
			bad = s.ID
		} else {
			good, goodSource = s.ID, s.Source
		}
	}
	path := filepath.Join("repo", "snapshots", bad)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}

	r := must(t, "snapshots", "--repo", "repo")
	if !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "forget "+bad[:8]) || !strings.Contains(r.stdout, good[:8]) {
		t.Fatalf("snapshots with a damaged manifest: %s", r)
	}
	must(t, "backup", "--repo", "repo", "sqlite:b.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "restore", "--repo", "repo", "latest", "--source", goodSource, "--to", "sqlite:restored.sqlite")
	must(t, "forget", "--repo", "repo", "--keep-last", "1")

	r = snap(t, "prune", "--repo", "repo")
	if r.code != ExitRefused || !strings.Contains(r.stderr, bad[:8]) || !strings.Contains(r.stderr, "snapdata forget "+bad[:8]) {
		t.Fatalf("prune with a damaged manifest: %s", r)
	}
	r = snap(t, "check", "--repo", "repo")
	if r.code != 1 || !strings.Contains(r.stdout, "snapshots/"+bad) || !strings.Contains(r.stdout, "forget "+bad[:8]) {
		t.Fatalf("check with a damaged manifest: %s", r)
	}

	r = must(t, "forget", "--repo", "repo", bad[:8], "--dry-run")
	if !strings.Contains(r.stdout, "would remove snapshot "+bad[:8]) {
		t.Fatalf("forget --dry-run: %s", r)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("--dry-run removed the manifest: %v", err)
	}
	if r := snap(t, "forget", "--repo", "repo", "ffffffffff"); r.code != 2 {
		t.Fatalf("forget of an unknown id: %s", r)
	}
	if r := snap(t, "forget", "--repo", "repo", bad[:8], "--keep-last", "1"); r.code != 2 {
		t.Fatalf("forget with ids and keep rules: %s", r)
	}
	must(t, "forget", "--repo", "repo", bad[:8], "--prune")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("forget did not remove the manifest: %v", err)
	}
	r = must(t, "check", "--repo", "repo")
	if strings.Contains(r.stderr, "damaged") {
		t.Fatalf("check after forget: %s", r)
	}
	must(t, "snapshots", "--repo", "repo")
}

// On a read-only filesystem (a read-only bind mount: the tests run as root,
// whom chmod does not stop) restore, verify and check read the repository
// with a warning instead of failing on their lock; --no-lock skips the lock;
// commands that write fail, and refuse --no-lock.
func TestReadOnlyRepository(t *testing.T) {
	dir := setup(t)
	chinook(t, "a.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--bind", "repo", ro}, {"-o", "remount,bind,ro", ro}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v (the tests need root): %v: %s", args, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })
	}
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o600); err == nil {
		t.Fatal("the read-only mount takes writes")
	}
	for _, args := range [][]string{
		{"check", "--repo", ro},
		{"check", "--repo", ro, "--read-data"},
		{"restore", "--repo", ro, "latest", "--to", "sqlite:restored.sqlite"},
		{"verify", "--repo", ro, "latest"},
	} {
		r := must(t, args...)
		if !strings.Contains(r.stderr, "reading without one") {
			t.Errorf("%v: no warning about the lock: %s", args, r)
		}
	}
	r := must(t, "check", "--repo", ro, "--no-lock")
	if strings.Contains(r.stderr, "lock") {
		t.Errorf("check --no-lock: %s", r)
	}
	if r := snap(t, "backup", "--repo", ro, "sqlite:a.sqlite"); r.code != 1 {
		t.Errorf("backup into a read-only repository: %s", r)
	}
	if r := snap(t, "backup", "--repo", "repo", "--no-lock", "sqlite:a.sqlite"); r.code != 2 {
		t.Errorf("backup --no-lock: %s", r)
	}
	if r := snap(t, "prune", "--repo", "repo", "--no-lock"); r.code != 2 {
		t.Errorf("prune --no-lock: %s", r)
	}
}
