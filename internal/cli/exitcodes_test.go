package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the CLI in-process and returns the error behind its exit code.
func runErr(t *testing.T, args ...string) (error, result) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	err := e.execute(args)
	code := ExitOK
	if err != nil {
		code = exitCode(err)
	}
	return err, result{out.String(), errb.String(), code}
}

// Every row of the table of causes and exit codes, each caused by running
// the CLI, exits with its row's code; every row is exercised.
func TestExitCodeTable(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	db := openDB(t, "other.sqlite")
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	must(t, "restore", "--repo", "repo", "latest", "--to", "sqlite:restored.db")
	// Two snapshots whose ids share a first hex digit: at most 17 backups.
	byFirst := map[byte]string{}
	prefix := ""
	for i := 0; i < 17 && prefix == ""; i++ {
		must(t, "backup", "--repo", "repo", "sqlite:other.sqlite", "--tag", strings.Repeat("x", i+1))
		for _, s := range listSnapshots(t, "--repo", "repo") {
			if id, ok := byFirst[s.ID[0]]; ok && id != s.ID {
				prefix = s.ID[:1]
				break
			}
			byFirst[s.ID[0]] = s.ID
		}
	}
	if prefix == "" {
		t.Fatal("no two snapshot ids share a first digit")
	}
	if err := os.WriteFile("neg.yaml", []byte("repositories:\n  main: { url: ./repo }\nsources:\n  app: { dsn: sqlite:chinook.sqlite }\njobs:\n  - name: app\n    source: app\n    retention:\n      keep_daily: 7\n      keep_last: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second repository with one damaged manifest, for prune's refusal.
	must(t, "init", "--repo", "damaged")
	must(t, "backup", "--repo", "damaged", "sqlite:other.sqlite")
	manifests, err := filepath.Glob("damaged/snapshots/*")
	if err != nil || len(manifests) != 1 {
		t.Fatalf("manifests %v, %v", manifests, err)
	}
	if err := os.Truncate(manifests[0], 10); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("keep.yaml", []byte("sources:\n  app: { dsn: sqlite:chinook.sqlite }\nclones:\n  acc:\n    from: { source: app }\n    to: sqlite:restored.db\n    allow: [sqlite:./restored.db]\n    keep_rows: [ { table: Genre, where: \"no_such_col = 1\" } ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := []string{"--repo", "repo"}
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		cause string // a prefix of the exitCauses row
		want  string // in the message
	}{
		{"restore over an existing file", nil, append(repo, "restore", "latest", "--source", "sqlite:"+dir+"/chinook.sqlite", "--to", "sqlite:restored.db"), "refused", "--clean"},
		{"init over a repository", nil, append(repo, "init"), "refused", "already holds repository objects"},
		{"prune with a damaged manifest", nil, []string{"prune", "--repo", "damaged"}, "refused", "prune refused: snapshot manifest is damaged"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command", `unknown command "frobnicate"`},
		{"extra argument", nil, append(repo, "snapshots", "extra"), "unknown command", `snapshots takes no arguments, got ["extra"]`},
		{"second snapshot argument", nil, append(repo, "verify", "latest", "again"), "unknown command", "one SNAPSHOT"},
		{"unknown flag", nil, append(repo, "snapshots", "--frob"), "unknown command", "unknown flag: --frob"},
		{"negative --keep-last", nil, append(repo, "forget", "--keep-last", "-1"), "unknown command", "--keep-last -1: expected 0 or more"},
		{"negative --keep-within", nil, append(repo, "forget", "--keep-within", "-3h"), "unknown command", "--keep-within -3h"},
		{"missing config file", nil, append(repo, "--config", "nope.yaml", "snapshots"), "config file", "nope.yaml: cannot read the config file"},
		{"negative keep_last in the config", nil, []string{"--config", "neg.yaml", "snapshots"}, "config file", `neg.yaml:10: job "app": retention.keep_last is -1`},
		{"no password", map[string]string{"SNAPDATA_PASSWORD": ""}, append(repo, "snapshots"), "no repository password", "SNAPDATA_PASSWORD"},
		{"unknown id", nil, append(repo, "restore", "deadbeef", "--to", "sqlite:x.db"), "no such snapshot", `no snapshot with id "deadbeef"`},
		{"latest of an unknown source", nil, append(repo, "verify", "latest", "--source", "sqlite:/nowhere.db"), "no such snapshot", "no snapshot of source"},
		{"ambiguous latest", nil, append(repo, "restore", "latest", "--to", "sqlite:x.db"), "ambiguous", "latest is ambiguous"},
		{"ambiguous id prefix", nil, append(repo, "verify", prefix), "ambiguous", "is ambiguous"},
		{"ambiguous id prefix to forget", nil, append(repo, "forget", prefix), "ambiguous", "is ambiguous"},
		{"unknown table", nil, append(repo, "restore", "latest", "--source", "sqlite:"+dir+"/chinook.sqlite", "--to", "sqlite:x.db", "--table", "public.nope"), "--table", `"public.nope" is not in snapshot`},
		{"keep_rows where the target rejects", nil, []string{"--config", "keep.yaml", "clone", "acc", "--dry-run"}, "a clone's keep_rows", "no_such_col"},
		{"clone target not allowed", nil, []string{"--config", "keep.yaml", "clone", "--from", "app", "--to", "sqlite:x.db", "--allow", "sqlite:./y.db"}, "refused", "matches none of the allow patterns"},
		{"not a DSN", nil, append(repo, "backup", "chinook"), "any other error", "is neither a DSN"},
		{"missing source file", nil, append(repo, "backup", "sqlite:missing.db"), "", "missing.db does not exist"},
		{"no repository there", nil, []string{"snapshots", "--repo", "nowhere"}, "", "no repository found"},
	}
	seen := map[int]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			err, r := runErr(t, c.args...)
			if err == nil {
				t.Fatalf("no error: %s", r)
			}
			row, code := exitCause(err), ExitFailure
			if row >= 0 {
				code = exitCauses[row].code
				seen[row] = true
			}
			if c.cause == "" && row >= 0 {
				t.Errorf("%v: matched row %q, want exit 1", err, exitCauses[row].cause)
			}
			if c.cause != "" && (row < 0 || !strings.HasPrefix(exitCauses[row].cause, c.cause)) {
				t.Errorf("%v: row %d, want the row %q", err, row, c.cause)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("message %q lacks %q", err, c.want)
			}
			// The process exit code is the row's.
			if got := snap(t, c.args...); got.code != code {
				t.Errorf("exit %d, want %d: %s", got.code, code, got)
			}
		})
	}
	for i, c := range exitCauses {
		if !seen[i] {
			t.Errorf("no case exercises the row %q", c.cause)
		}
	}
}

// With --log-json every line on stderr is JSON, the final error included.
func TestLogJSONError(t *testing.T) {
	setup(t)
	for _, args := range [][]string{
		{"--log-json", "snapshots", "--repo", "nowhere"},
		{"--log-json", "frobnicate"},
		{"snapshots", "--log-json", "--frob"},
	} {
		r := snap(t, args...)
		if r.code == 0 || strings.TrimSpace(r.stderr) == "" {
			t.Fatalf("%v: %s", args, r)
		}
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Errorf("%v: stderr line is not JSON: %q", args, l)
				continue
			}
			if m["level"] != "ERROR" || m["msg"] == "" || m["exit_code"] != float64(r.code) {
				t.Errorf("%v: error line %q", args, l)
			}
		}
	}
}

// snapshots --source that matches nothing names the sources there are;
// verify prints whole checksums, as snapshots --json records them.
func TestSnapshotsHintAndVerifyChecksums(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	r := must(t, "snapshots", "--repo", "repo", "--source", "orders")
	if !strings.Contains(r.stderr, "no snapshot of source orders;") || !strings.Contains(r.stderr, "sqlite:"+dir+"/chinook.sqlite") {
		t.Errorf("no hint naming the known sources: %s", r)
	}
	s := listSnapshots(t, "--repo", "repo")[0]
	r = must(t, "verify", "--repo", "repo", "latest")
	for _, tb := range s.Tables {
		if !strings.Contains(r.stdout, tb.Checksum) {
			t.Errorf("verify does not print table %s's whole checksum %s:\n%s", tb.Name, tb.Checksum, r.stdout)
		}
	}
}

// Every command that changes or inspects a repository shows examples.
func TestHelpExamples(t *testing.T) {
	for _, cmd := range []string{"snapshots", "prune", "check", "unlock", "tag", "key"} {
		r := must(t, cmd, "--help")
		if !strings.Contains(r.stdout, "  snapdata "+cmd) {
			t.Errorf("%s --help has no example:\n%s", cmd, r.stdout)
		}
	}
}
