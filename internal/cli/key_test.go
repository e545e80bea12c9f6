package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/testsrv"
)

type keyOut struct {
	ID       string `json:"id"`
	Current  bool   `json:"current"`
	Created  string `json:"created"`
	Host     string `json:"host"`
	Username string `json:"username"`
}

func listKeys(t *testing.T, repo string) []keyOut {
	t.Helper()
	r := must(t, "key", "list", "--repo", repo, "--json")
	var keys []keyOut
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
		t.Fatalf("key list --json: %v\n%s", err, r.stdout)
	}
	return keys
}

func currentKey(t *testing.T, repo string) string {
	t.Helper()
	for _, k := range listKeys(t, repo) {
		if k.Current {
			return k.ID
		}
	}
	t.Fatal("key list marks no key as current")
	return ""
}

// key add, list, passwd and remove through the CLI, on a local directory
// and on S3: every password that should open the repository does, the ones
// that should not do not, the refusals exit 3 and leave the repository
// openable, and no password appears in any output.
func TestKeyCommands(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			setup(t)
			repo := "repo"
			if kind == "s3" {
				srv := testsrv.S3(t)
				srv.SetEnv(t)
				repo = srv.URL(srv.NewBucket(t), "keys")
			}
			secrets := []string{"alpha-secret", "beta-secret", "gamma-secret", "wrong-secret"}
			var outputs []string
			run := func(password string, env map[string]string, args ...string) result {
				t.Helper()
				t.Setenv("SNAPDATA_PASSWORD", password)
				for k, v := range env {
					t.Setenv(k, v)
				}
				r := snap(t, append(args, "--repo", repo)...)
				for k := range env {
					t.Setenv(k, "")
				}
				outputs = append(outputs, r.stdout+r.stderr)
				return r
			}
			ok := func(password string, env map[string]string, args ...string) result {
				t.Helper()
				r := run(password, env, args...)
				if r.code != 0 {
					t.Fatalf("snapdata %s (password %s): %s", strings.Join(args, " "), password, r)
				}
				return r
			}
			opensWith := func(password string, want bool) {
				t.Helper()
				r := run(password, nil, "snapshots")
				if want && r.code != 0 {
					t.Fatalf("%s does not open the repository: %s", password, r)
				}
				if !want && (r.code != ExitFailure || !strings.Contains(r.stderr, "wrong password")) {
					t.Fatalf("%s still opens the repository: %s", password, r)
				}
			}
			chinook(t, "chinook.sqlite")
			ok("alpha-secret", nil, "init")
			ok("alpha-secret", nil, "backup", "sqlite:chinook.sqlite")

			t.Setenv("SNAPDATA_PASSWORD", "alpha-secret")
			keys := listKeys(t, repo)
			if len(keys) != 1 || !keys[0].Current || len(keys[0].ID) != 64 || keys[0].Created == "" || keys[0].Host == "" {
				t.Fatalf("key list of a new repository: %+v", keys)
			}
			alpha := keys[0].ID

			// Wrong password: key commands fail like any other, nothing added.
			if r := run("wrong-secret", nil, "key", "list"); r.code != ExitFailure || !strings.Contains(r.stderr, "wrong password") {
				t.Fatalf("key list with a wrong password: %s", r)
			}
			if r := run("wrong-secret", map[string]string{EnvNewPassword: "beta-secret"}, "key", "add"); r.code != ExitFailure {
				t.Fatalf("key add with a wrong password: %s", r)
			}
			opensWith("beta-secret", false)
			// No new password and no terminal; the password in use again.
			if r := run("alpha-secret", nil, "key", "add"); r.code != ExitUsage || !strings.Contains(r.stderr, "--new-password-file") {
				t.Fatalf("key add without a new password: %s", r)
			}
			if r := run("alpha-secret", map[string]string{EnvNewPassword: "alpha-secret"}, "key", "add"); r.code != ExitUsage {
				t.Fatalf("key add of the password in use: %s", r)
			}
			if r := run("alpha-secret", map[string]string{EnvNewPassword: "beta-secret"}, "key", "add", "--no-lock"); r.code != ExitUsage {
				t.Fatalf("key add --no-lock: %s", r)
			}

			r := ok("alpha-secret", map[string]string{EnvNewPassword: "beta-secret"}, "key", "add")
			if !strings.HasPrefix(r.stdout, "added key ") {
				t.Errorf("key add output: %s", r)
			}
			opensWith("alpha-secret", true)
			opensWith("beta-secret", true)
			t.Setenv("SNAPDATA_PASSWORD", "beta-secret")
			beta := currentKey(t, repo)
			if beta == alpha || len(listKeys(t, repo)) != 2 {
				t.Fatalf("after key add: %+v", listKeys(t, repo))
			}
			// The table marks the current key.
			r = ok("beta-secret", nil, "key", "list")
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
				if strings.Contains(line, beta[:8]) != strings.HasPrefix(line, "*") {
					t.Errorf("key list line %q: * should mark %s only", line, beta[:8])
				}
			}

			// passwd from beta to gamma (from a file).
			if err := os.WriteFile("gamma.pw", []byte("gamma-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ok("beta-secret", nil, "key", "passwd", "--new-password-file", "gamma.pw")
			opensWith("beta-secret", false)
			opensWith("gamma-secret", true)
			opensWith("alpha-secret", true)
			t.Setenv("SNAPDATA_PASSWORD", "gamma-secret")
			gamma := currentKey(t, repo)

			// Refusals exit 3: the key in use without --force.
			if r := run("gamma-secret", nil, "key", "remove", gamma[:8]); r.code != ExitRefused || !strings.Contains(r.stderr, "key passwd") {
				t.Fatalf("key remove of the key in use: %s", r)
			}
			if r := run("gamma-secret", nil, "key", "remove", "ffffffffff"); r.code != ExitUsage {
				t.Fatalf("key remove of an unknown key: %s", r)
			}
			r = ok("gamma-secret", nil, "key", "remove", alpha[:8], "--dry-run")
			if !strings.Contains(r.stdout, "would remove key "+alpha[:8]) {
				t.Errorf("key remove --dry-run: %s", r)
			}
			opensWith("alpha-secret", true)
			ok("gamma-secret", nil, "key", "remove", alpha[:8])
			opensWith("alpha-secret", false)
			// The last key, even with --force; the repository still opens.
			for _, args := range [][]string{{"key", "remove", gamma[:8], "--force"}, {"key", "remove", gamma[:8], "--force", "--dry-run"}} {
				if r := run("gamma-secret", nil, args...); r.code != ExitRefused || !strings.Contains(r.stderr, "last key") {
					t.Fatalf("snapdata %s: %s", strings.Join(args, " "), r)
				}
			}
			opensWith("gamma-secret", true)
			ok("gamma-secret", nil, "restore", "latest", "--to", "sqlite:restored.db")
			if v := scalar(t, openDB(t, "restored.db"), `SELECT count(*) FROM Track`); v != int64(3503) {
				t.Errorf("Track rows restored after the key changes: %v", v)
			}
			ok("gamma-secret", nil, "check")

			for _, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Fatalf("a password was printed: %q in\n%s", s, out)
					}
				}
			}
		})
	}
}

// Key commands on a repository without encryption exit 2 and say why.
func TestKeyCommandsUnencrypted(t *testing.T) {
	setup(t)
	must(t, "init", "--repo", "repo", "--no-encryption")
	t.Setenv(EnvNewPassword, "x-secret")
	for _, args := range [][]string{{"key", "list"}, {"key", "add"}, {"key", "passwd"}, {"key", "remove", "abcd"}} {
		r := snap(t, append(args, "--repo", "repo")...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "not encrypted") {
			t.Errorf("snapdata %s on a plain repository: %s", strings.Join(args, " "), r)
		}
	}
}

// key add on a terminal asks for the new password twice without echoing
// it; two different answers change nothing (exit 2).
func TestKeyPromptInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if testsrv.Required() {
			t.Fatal("tmux is not installed (scripts/install-deps installs it)")
		}
		t.Skip("tmux is not installed; set SNAPDATA_REQUIRE_SERVERS=1 to fail instead")
	}
	pkg := mustGetwd(t)
	dir := setup(t)
	bin := filepath.Join(dir, "snapdata")
	build := exec.Command("go", "build", "-o", bin, "github.com/snapdata/snapdata/cmd/snapdata")
	build.Dir = pkg
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	must(t, "init", "--repo", "repo")
	sock := fmt.Sprintf("snapdata-key-test-%d", os.Getpid())
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	tm("new-session", "-d", "-s", "keep", "sleep 600")
	waitFor := func(session, what string) string {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			screen := tm("capture-pane", "-p", "-t", session)
			if strings.Contains(screen, what) {
				return screen
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q did not appear:\n%s", what, screen)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, c := range []struct {
		name          string
		first, second string
		exit          string
	}{
		{"same", "prompt-secret", "prompt-secret", "__EXIT__ 0"},
		{"differ", "other-secret", "typo-secret", "__EXIT__ 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script := fmt.Sprintf("cd %q && SNAPDATA_PASSWORD='test password' %q key add --repo repo; echo __EXIT__ $?; sleep 600", dir, bin)
			tm("new-session", "-d", "-s", c.name, "-x", "120", "-y", "20", script)
			defer exec.Command(tmux, "-L", sock, "kill-session", "-t", c.name).Run()
			waitFor(c.name, "new password:")
			tm("send-keys", "-t", c.name, c.first, "Enter")
			waitFor(c.name, "enter it again:")
			tm("send-keys", "-t", c.name, c.second, "Enter")
			screen := waitFor(c.name, "__EXIT__")
			if !strings.Contains(screen, c.exit) {
				t.Fatalf("want %s:\n%s", c.exit, screen)
			}
			if strings.Contains(screen, c.first) || strings.Contains(screen, c.second) {
				t.Fatalf("the password was echoed:\n%s", screen)
			}
		})
	}
	t.Setenv("SNAPDATA_PASSWORD", "prompt-secret")
	must(t, "snapshots", "--repo", "repo")
	for _, pw := range []string{"other-secret", "typo-secret"} {
		t.Setenv("SNAPDATA_PASSWORD", pw)
		if r := snap(t, "snapshots", "--repo", "repo"); r.code != ExitFailure {
			t.Errorf("%s opens the repository after a mismatched prompt: %s", pw, r)
		}
	}
}
