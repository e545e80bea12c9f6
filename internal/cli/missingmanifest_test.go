package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manifest deleted behind snapdata's back: check names the snapshot and
// exits 1, prune warns naming it (and still prunes), forget ID of it
// removes its record and check is healthy again. In both repository modes.
func TestDeletedManifestReported(t *testing.T) {
	for _, enc := range []bool{true, false} {
		t.Run(map[bool]string{true: "encrypted", false: "no-encryption"}[enc], func(t *testing.T) {
			setup(t)
			chinook(t, "a.sqlite")
			chinook(t, "b.sqlite")
			if enc {
				must(t, "init", "--repo", "repo")
			} else {
				must(t, "init", "--repo", "repo", "--no-encryption")
			}
			must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
			must(t, "backup", "--repo", "repo", "sqlite:b.sqlite")
			var gone, kept string
			for _, s := range listSnapshots(t, "--repo", "repo") {
				if strings.HasSuffix(s.Source, "a.sqlite") {
					gone = s.ID
				} else {
					kept = s.ID
				}
			}
			if gone == "" || kept == "" {
				t.Fatal("two snapshots expected")
			}
			if err := os.Remove(filepath.Join("repo", "snapshots", gone)); err != nil {
				t.Fatal(err)
			}

			r := snap(t, "check", "--repo", "repo")
			if r.code != ExitFailure || !strings.Contains(r.stdout, "snapshot "+gone[:8]+" (") || !strings.Contains(r.stdout, "a.sqlite") ||
				!strings.Contains(r.stdout, "manifest missing") || !strings.Contains(r.stdout, "snapdata forget "+gone[:8]) {
				t.Fatalf("check after deleting a manifest: %s", r)
			}
			if strings.Contains(r.stdout, kept[:8]) {
				t.Errorf("check names the intact snapshot: %s", r)
			}

			r = must(t, "prune", "--repo", "repo", "--dry-run")
			if !strings.Contains(r.stdout, "warning: snapshot "+gone[:8]) || !strings.Contains(r.stdout, "would delete the data only it used") {
				t.Fatalf("prune --dry-run does not warn: %s", r)
			}
			r = must(t, "prune", "--repo", "repo")
			if !strings.Contains(r.stdout, "warning: snapshot "+gone[:8]) || !strings.Contains(r.stdout, "manifest missing") ||
				!strings.Contains(r.stderr, gone[:8]) {
				t.Fatalf("prune does not warn: %s", r)
			}
			if r := snap(t, "check", "--repo", "repo"); r.code != ExitFailure || !strings.Contains(r.stdout, gone[:8]) {
				t.Fatalf("check after prune, before forget: %s", r)
			}

			r = must(t, "forget", "--repo", "repo", gone[:8])
			if !strings.Contains(r.stdout, gone[:8]) {
				t.Fatalf("forget of the missing snapshot: %s", r)
			}
			if _, err := os.Stat(filepath.Join("repo", "index", "snapshots", gone)); !os.IsNotExist(err) {
				t.Fatalf("forget left the record: %v", err)
			}
			r = must(t, "check", "--repo", "repo", "--read-data")
			if !strings.Contains(r.stdout, "no errors found") {
				t.Fatalf("check after forget: %s", r)
			}
			must(t, "restore", "--repo", "repo", kept[:8], "--to", "sqlite:restored.sqlite")
		})
	}
}

// forget by keep rules removes the records of the snapshots it removes: a
// later check has nothing to report.
func TestForgetByRulesRemovesRecords(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	records := func() []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join("repo", "index", "snapshots"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if n := len(records()); n != 3 {
		t.Fatalf("%d records after 3 backups", n)
	}
	must(t, "forget", "--repo", "repo", "--keep-last", "1", "--prune")
	snaps := listSnapshots(t, "--repo", "repo")
	if got := records(); len(snaps) != 1 || len(got) != 1 || got[0] != snaps[0].ID {
		t.Fatalf("after forget --keep-last 1: records %v, snapshots %v", got, snaps)
	}
	must(t, "check", "--repo", "repo")
}

// Snapshots made before records existed (no index/snapshots/) stay healthy
// in check when their manifest is deleted (nothing records them); a
// snapshot made now is watched.
func TestSnapshotsBeforeRecordsStayHealthy(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	chinook(t, "b.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:b.sqlite")
	if err := os.RemoveAll(filepath.Join("repo", "index", "snapshots")); err != nil {
		t.Fatal(err)
	}
	var old string
	for _, s := range listSnapshots(t, "--repo", "repo") {
		if strings.HasSuffix(s.Source, "a.sqlite") {
			old = s.ID
		}
	}
	if err := os.Remove(filepath.Join("repo", "snapshots", old)); err != nil {
		t.Fatal(err)
	}
	r := must(t, "check", "--repo", "repo")
	if !strings.Contains(r.stdout, "no errors found") {
		t.Fatalf("check of old snapshots: %s", r)
	}
	must(t, "prune", "--repo", "repo")

	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	var fresh string
	for _, s := range listSnapshots(t, "--repo", "repo") {
		if strings.HasSuffix(s.Source, "a.sqlite") {
			fresh = s.ID
		}
	}
	if err := os.Remove(filepath.Join("repo", "snapshots", fresh)); err != nil {
		t.Fatal(err)
	}
	if r := snap(t, "check", "--repo", "repo"); r.code != ExitFailure || !strings.Contains(r.stdout, "snapshot "+fresh[:8]) {
		t.Fatalf("check does not name a snapshot made with records: %s", r)
	}
}
