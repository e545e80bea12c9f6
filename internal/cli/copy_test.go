package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

const (
	copySrcPassword = "source password"
	copyDstPassword = "destination password"
)

// asRepo runs the CLI with SNAPDATA_PASSWORD set to pw ("" unsets it).
func asRepo(t *testing.T, pw string, args ...string) result {
	t.Helper()
	t.Setenv("SNAPDATA_PASSWORD", pw)
	return snap(t, args...)
}

func mustAs(t *testing.T, pw string, args ...string) result {
	t.Helper()
	r := asRepo(t, pw, args...)
	if r.code != 0 {
		t.Fatalf("snapdata %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// copyJSON runs copy --json into dst (password dstPW) and decodes it.
func copyJSON(t *testing.T, dstPW string, args ...string) repository.CopyResult {
	t.Helper()
	r := mustAs(t, dstPW, append([]string{"copy", "--json"}, args...)...)
	var res repository.CopyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("copy --json: %v\n%s", err, r.stdout)
	}
	return res
}

// listObjects lists every object of a repository location with its size.
func listObjects(t *testing.T, loc string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	be, err := app.OpenBackend(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	out := map[string]int64{}
	for _, ft := range []backend.FileType{backend.Config, backend.Key, backend.Snapshot, backend.Data, backend.Lock, backend.DataIndex} {
		if ft == backend.Config {
			if fi, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
				out["config"] = fi.Size
			}
			continue
		}
		if err := be.List(ctx, ft, func(fi backend.FileInfo) error {
			out[string(ft)+"/"+fi.Name] = fi.Size
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func countPrefix(objs map[string]int64, prefix string) int {
	n := 0
	for k := range objs {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// tablesOf returns the table summaries (name, rows, checksum) of a
// repository's snapshots, oldest first.
func tablesOf(t *testing.T, pw, repo string) []string {
	t.Helper()
	t.Setenv("SNAPDATA_PASSWORD", pw)
	var out []string
	for _, s := range listSnapshots(t, "--repo", repo) {
		for _, tb := range s.Tables {
			out = append(out, fmt.Sprintf("%s %s %d %s", s.Time, tb.Name, tb.Rows, tb.Checksum))
		}
	}
	return out
}

// Copy into local and S3 destinations, with different passwords, with the
// source's chunk parameters and without, from an encrypted source and an
// unencrypted one.
func TestCopyBetweenRepositories(t *testing.T) {
	srv := testsrv.S3(t)
	setup(t)
	srv.SetEnv(t)
	t.Setenv("SNAPDATA_FROM_PASSWORD", copySrcPassword)
	bucket := srv.NewBucket(t)
	cases := []struct {
		name      string
		dst       string
		init      []string
		srcPlain  bool
		dstPW     string
		sameKeys  bool
		chunkSize string
	}{
		{name: "local-different-params", dst: "dst-local", dstPW: copyDstPassword},
		{name: "local-copy-params", dst: "dst-local-params", init: []string{"--copy-params-from", "src"}, dstPW: copyDstPassword, sameKeys: true},
		{name: "s3-different-params", dst: srv.URL(bucket, "diff"), dstPW: copyDstPassword, chunkSize: "64KiB"},
		{name: "s3-copy-params", dst: srv.URL(bucket, "same"), init: []string{"--copy-params-from", "src"}, dstPW: copyDstPassword, sameKeys: true},
		{name: "plain-source-to-s3", dst: srv.URL(bucket, "plain"), srcPlain: true, dstPW: copyDstPassword},
		{name: "to-unencrypted", dst: "dst-plain", init: []string{"--no-encryption"}, dstPW: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			chinook(t, "chinook.sqlite")
			srcPW := copySrcPassword
			initSrc := []string{"init", "--repo", "src", "--chunk-size", "64KiB"}
			if tc.srcPlain {
				srcPW = ""
				initSrc = append(initSrc, "--no-encryption")
			}
			mustAs(t, srcPW, initSrc...)
			mustAs(t, srcPW, "backup", "--repo", "src", "sqlite:chinook.sqlite")
			initDst := append([]string{"init", "--repo", tc.dst}, tc.init...)
			if tc.chunkSize != "" {
				initDst = append(initDst, "--chunk-size", tc.chunkSize)
			}
			mustAs(t, tc.dstPW, initDst...)

			// --dry-run lists and writes nothing.
			before := listObjects(t, tc.dst)
			r := mustAs(t, tc.dstPW, "copy", "--from-repo", "src", "--repo", tc.dst, "--dry-run")
			if !strings.Contains(r.stdout, "would copy snapshot") || !strings.Contains(r.stdout, "nothing was written") {
				t.Errorf("dry run output: %s", r)
			}
			if after := listObjects(t, tc.dst); !maps.Equal(before, after) {
				t.Fatalf("--dry-run changed the destination:\nbefore %v\nafter %v", before, after)
			}

			res := copyJSON(t, tc.dstPW, "--from-repo", "src", "--repo", tc.dst)
			if len(res.Copied) != 1 || res.Copied[0].To == "" || res.ChunksUploaded == 0 || res.SameKeys != tc.sameKeys {
				t.Fatalf("first copy: %+v", res)
			}
			if int(res.ChunksUploaded) != res.Chunks {
				t.Errorf("first copy uploaded %d chunks, planned %d", res.ChunksUploaded, res.Chunks)
			}
			srcData := countPrefix(listObjects(t, "src"), "data/")
			if got := countPrefix(listObjects(t, tc.dst), "data/"); got != srcData {
				t.Errorf("destination holds %d chunks, the source %d", got, srcData)
			}
			if s, d := tablesOf(t, srcPW, "src"), tablesOf(t, tc.dstPW, tc.dst); !slices.Equal(s, d) {
				t.Errorf("tables differ:\nsource %v\ndestination %v", s, d)
			}
			// The copy restores to the rows the source had: verify
			// compares every table's row count and checksum.
			r = mustAs(t, tc.dstPW, "verify", "--repo", tc.dst, "latest")
			if !strings.Contains(r.stdout, "Track") {
				t.Errorf("verify of the copy: %s", r)
			}
			mustAs(t, tc.dstPW, "restore", "--repo", tc.dst, "latest", "--to", "sqlite:restored.db")
			if v := scalar(t, openDB(t, "restored.db"), `SELECT count(*) FROM Track`); v != int64(3503) {
				t.Errorf("Track rows restored from the copy: %v", v)
			}

			// Nothing new: nothing read, nothing written.
			before = listObjects(t, tc.dst)
			res = copyJSON(t, tc.dstPW, "--from-repo", "src", "--repo", tc.dst)
			if len(res.Copied) != 0 || len(res.Present) != 1 || res.ChunksRead != 0 || res.ChunksUploaded != 0 {
				t.Errorf("second copy with nothing new: %+v", res)
			}
			if res.Seconds >= 1 {
				t.Errorf("a copy with nothing new took %.2f s once the repositories were open", res.Seconds)
			}
			if after := listObjects(t, tc.dst); !maps.Equal(before, after) {
				t.Errorf("a copy with nothing new changed the destination")
			}

			// A new backup: only its new chunks are read and stored.
			db := openDB(t, "chinook.sqlite")
			if _, err := db.Exec(`INSERT INTO Genre (GenreId, Name) SELECT GenreId + 1000, Name || ' (copy)' FROM Genre`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			r = mustAs(t, srcPW, "backup", "--repo", "src", "sqlite:chinook.sqlite", "--json")
			var snaps []snapshotOut
			if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) != 1 {
				t.Fatalf("backup --json: %v %s", err, r.stdout)
			}
			srcNew := countPrefix(listObjects(t, "src"), "data/") - srcData
			if srcNew == 0 {
				t.Fatal("the second backup stored no new chunk")
			}
			res = copyJSON(t, tc.dstPW, "--from-repo", "src", "--repo", tc.dst)
			if len(res.Copied) != 1 || res.Copied[0].From != snaps[0].ID {
				t.Fatalf("copy after a new backup: %+v", res)
			}
			if res.ChunksUploaded != int64(srcNew) || res.ChunksRead != int64(srcNew) {
				t.Errorf("copy after a new backup read %d and stored %d chunks; the backup added %d", res.ChunksRead, res.ChunksUploaded, srcNew)
			}
			if s, d := tablesOf(t, srcPW, "src"), tablesOf(t, tc.dstPW, tc.dst); !slices.Equal(s, d) {
				t.Errorf("tables differ after the second copy:\nsource %v\ndestination %v", s, d)
			}
			mustAs(t, tc.dstPW, "verify", "--repo", tc.dst, "latest")
			mustAs(t, tc.dstPW, "check", "--repo", tc.dst, "--read-data")
		})
	}
}

// A wrong source password, a missing one, a destination that is not a
// repository, the same repository twice, an unknown --source: clear
// refusals that write nothing.
func TestCopyRefusals(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	mustAs(t, copySrcPassword, "init", "--repo", "src")
	mustAs(t, copySrcPassword, "backup", "--repo", "src", "sqlite:chinook.sqlite")
	mustAs(t, copyDstPassword, "init", "--repo", "dst")

	t.Setenv("SNAPDATA_FROM_PASSWORD", "not the password")
	r := asRepo(t, copyDstPassword, "copy", "--from-repo", "src", "--repo", "dst")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "source repository") || !strings.Contains(r.stderr, "wrong password") {
		t.Errorf("wrong source password: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "not the password") || strings.Contains(r.stdout+r.stderr, copyDstPassword) {
		t.Errorf("a password was printed: %s", r)
	}

	t.Setenv("SNAPDATA_FROM_PASSWORD", "")
	r = asRepo(t, copyDstPassword, "copy", "--from-repo", "src", "--repo", "dst")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--from-password-file") {
		t.Errorf("no source password: %s", r)
	}
	pwFile := filepath.Join(t.TempDir(), "src-pw")
	if err := os.WriteFile(pwFile, []byte(copySrcPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r = asRepo(t, copyDstPassword, "copy", "--from-repo", "src", "--from-password-file", pwFile, "--repo", "nowhere")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "snapdata init --repo nowhere --copy-params-from src") {
		t.Errorf("non-initialised destination: %s", r)
	}
	if _, err := os.Stat("nowhere"); err == nil {
		t.Error("copy created the destination")
	}

	r = asRepo(t, copySrcPassword, "copy", "--from-repo", "src", "--from-password-file", pwFile, "--repo", "src")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "same repository") {
		t.Errorf("copy into itself: %s", r)
	}
	r = asRepo(t, copyDstPassword, "copy", "--from-repo", "src", "--from-password-file", pwFile, "--repo", "dst", "--source", "nosuch")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `--source "nosuch"`) {
		t.Errorf("unknown --source: %s", r)
	}
	r = asRepo(t, copyDstPassword, "copy", "--repo", "dst")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--from-repo") {
		t.Errorf("no --from-repo: %s", r)
	}
	if n := countPrefix(listObjects(t, "dst"), "snapshots/") + countPrefix(listObjects(t, "dst"), "data/"); n != 0 {
		t.Errorf("refused copies left %d objects in the destination", n)
	}
	// With the password from the file, it works.
	res := copyJSON(t, copyDstPassword, "--from-repo", "src", "--from-password-file", pwFile, "--repo", "dst")
	if len(res.Copied) != 1 {
		t.Errorf("copy with --from-password-file: %+v", res)
	}
}

// A copy killed with SIGKILL part-way leaves a destination that check
// calls healthy and holds no snapshot; the next copy stores only the
// chunks that had not arrived.
func TestCopyResumesAfterKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		init []string
	}{
		{"different-params", nil},
		{"copy-params", []string{"--copy-params-from", "src"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setup(t)
			t.Setenv("SNAPDATA_FROM_PASSWORD", copySrcPassword)
			db := openDB(t, "data.db")
			for _, q := range []string{
				`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`,
				`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 60000) INSERT INTO t SELECT x, hex(randomblob(100)) FROM c`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			mustAs(t, copySrcPassword, "init", "--repo", "src", "--chunk-size", "16KiB")
			mustAs(t, copySrcPassword, "backup", "--repo", "src", "sqlite:data.db")
			mustAs(t, copyDstPassword, append([]string{"init", "--repo", "dst"}, tc.init...)...)
			total := countPrefix(listObjects(t, "src"), "data/")

			cmd := exec.Command(os.Args[0], "copy", "--from-repo", "src", "--repo", "dst")
			cmd.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1", "SNAPDATA_PASSWORD="+copyDstPassword)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for {
				n := 0
				_ = filepath.Walk(filepath.Join("dst", "data"), func(_ string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() {
						n++
					}
					return nil
				})
				if n >= 20 || time.Now().After(deadline) {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if err := cmd.Wait(); err == nil {
				t.Fatalf("the copy finished before it was killed (%d chunks): make the data bigger", total)
			}
			mustAs(t, copyDstPassword, "check", "--repo", "dst")
			if n := len(listSnapshots(t, "--repo", "dst")); n != 0 {
				t.Fatalf("a killed copy left %d snapshots", n)
			}
			arrived := countPrefix(listObjects(t, "dst"), "data/")
			if arrived == 0 || arrived >= total {
				t.Fatalf("%d of %d chunks arrived before the kill: the test did not interrupt a copy", arrived, total)
			}
			t.Logf("%d of %d chunks arrived before kill -9", arrived, total)
			// The killed copy's locks are shared: the next copy runs
			// beside them, no unlock needed.
			res := copyJSON(t, copyDstPassword, "--from-repo", "src", "--repo", "dst")
			if len(res.Copied) != 1 {
				t.Fatalf("copy after the kill: %+v", res)
			}
			if int(res.ChunksUploaded) != total-arrived {
				t.Errorf("the resumed copy stored %d chunks; %d were missing", res.ChunksUploaded, total-arrived)
			}
			if res.Chunks != total-arrived && tc.init != nil {
				t.Errorf("the resumed copy planned %d chunks; %d were missing", res.Chunks, total-arrived)
			}
			mustAs(t, copyDstPassword, "check", "--repo", "dst", "--read-data")
			mustAs(t, copyDstPassword, "verify", "--repo", "dst", "latest")
		})
	}
}

// Repositories named in the config bring their own passwords: the source's
// is never taken from $SNAPDATA_PASSWORD, which is the destination's.
func TestCopyConfigRepositories(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	cfg := filepath.Join(dir, "snapdata.yaml")
	if err := os.WriteFile(cfg, []byte(`repositories:
  main: { url: ./main, password: "`+copySrcPassword+`" }
  offsite: { url: ./offsite, password_file: ./offsite.pw }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("offsite.pw", []byte(copyDstPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SNAPDATA_CONFIG", cfg)
	t.Setenv("SNAPDATA_FROM_PASSWORD", "")
	mustAs(t, "", "init", "--repo", "main")
	mustAs(t, "", "backup", "--repo", "main", "sqlite:chinook.sqlite")
	db := openDB(t, "chinook.sqlite")
	if _, err := db.Exec(`DELETE FROM PlaylistTrack WHERE PlaylistId = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	mustAs(t, "", "backup", "--repo", "main", "sqlite:chinook.sqlite")
	snaps := listSnapshots(t, "--repo", "main")
	if len(snaps) != 2 {
		t.Fatalf("main holds %d snapshots", len(snaps))
	}
	mustAs(t, "", "init", "--repo", "offsite", "--copy-params-from", "main")
	// A wrong $SNAPDATA_PASSWORD is ignored: both entries name theirs.
	res := copyJSON(t, "not used", "--from-repo", "main", "--repo", "offsite", "latest")
	if len(res.Copied) != 1 || res.Copied[0].From != snaps[1].ID || !res.SameKeys {
		t.Fatalf("copy latest between config repositories: %+v (want %s)", res, snaps[1].ID)
	}
	res = copyJSON(t, "not used", "--from-repo", "main", "--repo", "offsite")
	if len(res.Copied) != 1 || res.Copied[0].From != snaps[0].ID || len(res.Present) != 1 {
		t.Fatalf("copy of the rest: %+v (want %s)", res, snaps[0].ID)
	}
	mustAs(t, "", "verify", "--repo", "offsite", "latest")
	// Same chunker and hash key: the destination's own backup of the same
	// data deduplicates against the copied chunks.
	if snaps := listSnapshots(t, "--repo", "offsite"); len(snaps) != 2 {
		t.Fatalf("offsite holds %d snapshots", len(snaps))
	}
	mustAs(t, "", "backup", "--repo", "offsite", "sqlite:chinook.sqlite")
	if snaps := listSnapshots(t, "--repo", "offsite"); len(snaps) != 3 || snaps[2].AddedBytes != 0 {
		t.Errorf("a backup of the copied data into the destination added %d bytes, want 0", snaps[len(snaps)-1].AddedBytes)
	}
}
