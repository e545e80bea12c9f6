package cli

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// markers returns the id-… tag of each snapshot, sorted: which of the test's
// snapshots a listing holds.
func markers(snaps []snapshotOut) []string {
	out := []string{}
	for _, s := range snaps {
		for _, t := range s.Tags {
			if strings.HasPrefix(t, "id-") {
				out = append(out, strings.TrimPrefix(t, "id-"))
			}
		}
	}
	sort.Strings(out)
	return out
}

// tagRepo makes a repository with five snapshots of two sources: a1, a2,
// a3 of a.sqlite and b1, b2 of b.sqlite, oldest first, each tagged id-<name>.
func tagRepo(t *testing.T) {
	t.Helper()
	setup(t)
	chinook(t, "a.sqlite")
	chinook(t, "b.sqlite")
	must(t, "init", "--repo", "repo")
	for _, b := range []struct {
		src  string
		tags []string
	}{
		{"a", []string{"nightly", "id-a1"}},
		{"a", []string{"nightly", "keep", "id-a2"}},
		{"b", []string{"nightly", "id-b1"}},
		{"a", []string{"id-a3"}},
		{"b", []string{"weekly", "id-b2"}},
	} {
		args := []string{"backup", "--repo", "repo", "sqlite:" + b.src + ".sqlite"}
		for _, tg := range b.tags {
			args = append(args, "--tag", tg)
		}
		must(t, args...)
	}
}

// snapshots --tag/--host/--latest/--source combine as documented.
func TestSnapshotFilters(t *testing.T) {
	tagRepo(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"a1", "a2", "a3", "b1", "b2"}},
		{[]string{"--tag", "nightly"}, []string{"a1", "a2", "b1"}},
		{[]string{"--tag", "nightly,keep"}, []string{"a2"}},
		{[]string{"--tag", "keep", "--tag", "weekly"}, []string{"a2", "b2"}},
		{[]string{"--tag", "nightly,weekly"}, []string{}},
		{[]string{"--latest", "1"}, []string{"a3", "b2"}},
		{[]string{"--latest", "2"}, []string{"a2", "a3", "b1", "b2"}},
		{[]string{"--latest", "1", "--tag", "nightly"}, []string{"a2", "b1"}},
		{[]string{"--source", "sqlite:a.sqlite", "--latest", "2"}, []string{"a2", "a3"}},
		{[]string{"--source", "sqlite:b.sqlite", "--tag", "nightly"}, []string{"b1"}},
		{[]string{"--host", host}, []string{"a1", "a2", "a3", "b1", "b2"}},
		{[]string{"--host", "no-such-host", "--host", host, "--latest", "1"}, []string{"a3", "b2"}},
		{[]string{"--host", "no-such-host"}, []string{}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			got := markers(listSnapshots(t, append([]string{"--repo", "repo"}, c.args...)...))
			if !slices.Equal(got, c.want) {
				t.Fatalf("snapshots %s = %v, want %v", strings.Join(c.args, " "), got, c.want)
			}
		})
	}
	for _, args := range [][]string{{"--latest", "-1"}, {"--tag", "a b"}, {"--tag", "a,"}, {"--host", ""}} {
		if r := snap(t, append([]string{"snapshots", "--repo", "repo"}, args...)...); r.code != ExitUsage {
			t.Errorf("snapshots %s: %s", strings.Join(args, " "), r)
		}
	}
}

// repoDigest is a digest of every file under dir with its content.
func repoDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %x\n", path, sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func byMarker(t *testing.T, name string) snapshotOut {
	t.Helper()
	snaps := listSnapshots(t, "--repo", "repo", "--tag", "id-"+name)
	if len(snaps) != 1 {
		t.Fatalf("snapshot %s: %d found", name, len(snaps))
	}
	return snaps[0]
}

// tag --add/--remove/--set change exactly the chosen snapshots; the data
// restores, check is healthy with no missing manifest, --dry-run writes
// nothing, forget --keep-tag keeps what was tagged, and bad selections exit
// 2.
func TestTagCommand(t *testing.T) {
	tagRepo(t)
	a1 := byMarker(t, "a1")

	// --dry-run writes nothing.
	before := repoDigest(t, "repo")
	r := must(t, "tag", "--repo", "repo", "--tag", "nightly", "--add", "monthly", "--dry-run")
	if !strings.Contains(r.stdout, "would change 3 of 3 snapshots") || !strings.Contains(r.stdout, "would tag  "+a1.ID[:8]) {
		t.Errorf("tag --dry-run output: %s", r)
	}
	if repoDigest(t, "repo") != before {
		t.Fatal("tag --dry-run changed the repository")
	}

	r = must(t, "tag", "--repo", "repo", "--tag", "nightly", "--source", "sqlite:a.sqlite", "--add", "monthly,audit")
	if !strings.Contains(r.stdout, "changed 2 of 2 snapshots") {
		t.Errorf("tag --add output: %s", r)
	}
	if got := markers(listSnapshots(t, "--repo", "repo", "--tag", "monthly,audit")); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("tagged monthly and audit: %v", got)
	}
	na1 := byMarker(t, "a1")
	if na1.ID == a1.ID || na1.Time != a1.Time || !slices.Equal(na1.Tags, []string{"nightly", "id-a1", "monthly", "audit"}) {
		t.Fatalf("a1 after tag: %+v (was %s)", na1, a1.ID)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(must(t, "snapshots", "--repo", "repo", "--json", "--tag", "id-a1").stdout), &raw); err != nil || raw[0]["original"] != a1.ID {
		t.Fatalf("snapshots --json original: %v, %v", raw, err)
	}
	// The old id is gone; the new one restores; check is healthy.
	if r := snap(t, "restore", "--repo", "repo", a1.ID[:12], "--to", "sqlite:old.db"); r.code != ExitUsage || !strings.Contains(r.stderr, "now snapshot "+na1.ID[:8]) {
		t.Errorf("restore of the replaced id: %s", r)
	}
	must(t, "restore", "--repo", "repo", na1.ID[:12], "--to", "sqlite:a1.db")
	if v := scalar(t, openDB(t, "a1.db"), `SELECT count(*) FROM Track`); v != int64(3503) {
		t.Errorf("Track rows of the retagged snapshot: %v", v)
	}
	r = must(t, "check", "--repo", "repo", "--read-data")
	if strings.Contains(r.stdout, "missing") || strings.Contains(r.stdout, "note:") {
		t.Errorf("check after tag: %s", r)
	}

	// --remove by id prefix, --set, --set '' and --json.
	must(t, "tag", "--repo", "repo", "--remove", "audit", na1.ID[:10])
	if got := byMarker(t, "a1").Tags; !slices.Equal(got, []string{"nightly", "id-a1", "monthly"}) {
		t.Fatalf("a1 after --remove: %q", got)
	}
	b2 := byMarker(t, "b2")
	r = must(t, "tag", "--repo", "repo", "--set", "release,id-b2", b2.ID[:8], "--json")
	var res []tagResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || res[0].ID != b2.ID || !res[0].Changed ||
		!slices.Equal(res[0].NewTags, []string{"release", "id-b2"}) || res[0].NewID == "" {
		t.Fatalf("tag --set --json: %+v, %v\n%s", res, err, r)
	}
	// Unchanged snapshots are not rewritten.
	r = must(t, "tag", "--repo", "repo", "--add", "release", "--tag", "id-b2")
	if !strings.Contains(r.stdout, "changed 0 of 1") || byMarker(t, "b2").ID != res[0].NewID {
		t.Errorf("tag that changes nothing: %s", r)
	}
	b1 := byMarker(t, "b1")
	must(t, "tag", "--repo", "repo", "--set", "", b1.ID[:8])
	if got := markers(listSnapshots(t, "--repo", "repo")); !slices.Equal(got, []string{"a1", "a2", "a3", "b2"}) {
		t.Fatalf("after --set '': %v", got)
	}

	// forget --keep-tag keeps what tag marked.
	r = must(t, "forget", "--repo", "repo", "--keep-last", "1", "--keep-tag", "monthly", "--dry-run", "--json")
	var decisions []struct {
		ID   string `json:"id"`
		Keep bool   `json:"keep"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &decisions); err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, d := range decisions {
		kept[d.ID] = d.Keep
	}
	if !kept[byMarker(t, "a1").ID] || !kept[byMarker(t, "a2").ID] {
		t.Errorf("forget --keep-tag monthly: %+v", decisions)
	}

	for _, args := range [][]string{
		{"tag", "--add", "x"},                              // no selection
		{"tag", "--add", "x", "--all", "--tag", "nightly"}, // --all with a filter
		{"tag", "--tag", "nightly"},                        // no change
		{"tag", "--set", "x", "--add", "y", "--all"},       // --set with --add
		{"tag", "--add", "a b", "--all"},                   // bad tag
		{"tag", "--add", "x", "ffffffffffff"},              // unknown id
		{"tag", "--add", "x", "--all", "--no-lock"},        // writes need the lock
	} {
		if r := snap(t, append(args, "--repo", "repo")...); r.code != ExitUsage {
			t.Errorf("snapdata %s: %s", strings.Join(args, " "), r)
		}
	}
	must(t, "check", "--repo", "repo")
}

// A tag run that died after it stored the new manifest and before it
// removed the old one leaves two snapshots with the same data: check
// explains it and exits 0, the next tag finishes the change.
func TestTagInterrupted(t *testing.T) {
	tagRepo(t)
	a3 := byMarker(t, "a3")
	oldManifest, err := os.ReadFile(filepath.Join("repo", "snapshots", a3.ID))
	if err != nil {
		t.Fatal(err)
	}
	oldRecord, err := os.ReadFile(filepath.Join("repo", "index", "snapshots", a3.ID))
	if err != nil {
		t.Fatal(err)
	}
	must(t, "tag", "--repo", "repo", "--add", "keep", a3.ID[:8])
	// Put the old manifest and record back: the state of the crash.
	if err := os.WriteFile(filepath.Join("repo", "snapshots", a3.ID), oldManifest, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("repo", "index", "snapshots", a3.ID), oldRecord, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := len(listSnapshots(t, "--repo", "repo", "--tag", "id-a3")); n != 2 {
		t.Fatalf("%d snapshots of a3 after the simulated crash", n)
	}
	r := must(t, "check", "--repo", "repo")
	if !strings.Contains(r.stdout, "note: snapshot ") || !strings.Contains(r.stdout, "replaces "+a3.ID[:8]) {
		t.Errorf("check after an interrupted tag: %s", r)
	}
	// The next tag, here naming the old id, finishes it and tags the new one.
	r = must(t, "tag", "--repo", "repo", "--add", "audit", a3.ID[:8])
	if !strings.Contains(r.stderr, "removed "+a3.ID[:8]) || !strings.Contains(r.stdout, "changed 1 of 1") {
		t.Errorf("tag after an interrupted tag: %s", r)
	}
	snaps := listSnapshots(t, "--repo", "repo", "--tag", "id-a3")
	if len(snaps) != 1 || !slices.Equal(snaps[0].Tags, []string{"id-a3", "keep", "audit"}) {
		t.Fatalf("a3 after finishing: %+v", snaps)
	}
	r = must(t, "check", "--repo", "repo")
	if strings.Contains(r.stdout, "note:") {
		t.Errorf("check after finishing: %s", r)
	}
}

// tag on an S3 repository: the retagged snapshot restores and check finds
// no missing manifest.
func TestTagS3(t *testing.T) {
	srv := testsrv.S3(t)
	setup(t)
	srv.SetEnv(t)
	repo := srv.URL(srv.NewBucket(t), "tags")
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", repo)
	must(t, "backup", "--repo", repo, "sqlite:chinook.sqlite", "--tag", "nightly")
	old := listSnapshots(t, "--repo", repo)[0]
	must(t, "tag", "--repo", repo, "--add", "keep", "--tag", "nightly")
	snaps := listSnapshots(t, "--repo", repo, "--tag", "nightly,keep")
	if len(snaps) != 1 || snaps[0].ID == old.ID || len(listSnapshots(t, "--repo", repo)) != 1 {
		t.Fatalf("snapshots after tag on S3: %+v", snaps)
	}
	r := must(t, "check", "--repo", repo)
	if strings.Contains(r.stdout, "missing") || strings.Contains(r.stdout, "note:") {
		t.Errorf("check after tag on S3: %s", r)
	}
	must(t, "restore", "--repo", repo, "latest", "--to", "sqlite:restored.db")
	if v := scalar(t, openDB(t, "restored.db"), `SELECT count(*) FROM Track`); v != int64(3503) {
		t.Errorf("Track rows restored after tag on S3: %v", v)
	}
}
