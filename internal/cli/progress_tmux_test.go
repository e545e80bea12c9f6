package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// The progress line of a real snapdata binary, drawn in tmux panes 60, 80
// and 200 columns wide during a backup long enough for many redraws, is
// always one line that fits (never wrapped, never stacked); shrinking the
// window mid-backup (SIGWINCH) fits the next redraws to the new width.
func TestProgressLineInTmux(t *testing.T) {
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
	// A long path makes a label wider than the narrow panes.
	data := filepath.Join(dir, "a-rather-long-folder-name-so-that-the-label-of-the-progress-line-is-wide")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(data, "app.db"))
	for _, q := range []string{
		"CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)",
		// 2 × 150 MB of random hex: a backup of several seconds.
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 150000) INSERT INTO a SELECT x, hex(randomblob(500)) FROM c",
		"INSERT INTO b SELECT * FROM a",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	must(t, "init", "--repo", "repo")

	sock := fmt.Sprintf("snapdata-test-%d", os.Getpid())
	tm := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	// A session that lives as long as the test keeps one tmux server.
	tm(t, "new-session", "-d", "-s", "keep", "sleep 600")

	for _, c := range []struct {
		width, shrinkTo int
	}{{60, 0}, {80, 0}, {200, 60}} {
		t.Run(fmt.Sprint(c.width), func(t *testing.T) {
			name := fmt.Sprintf("w%d", c.width)
			script := fmt.Sprintf("cd %q && SNAPDATA_PASSWORD='test password' %q backup --repo repo --jobs 1 sqlite:%s; echo __EXIT__ $?; sleep 600",
				dir, bin, filepath.Join(data, "app.db"))
			tm(t, "new-session", "-d", "-s", name, "-x", fmt.Sprint(c.width), "-y", "40", script)
			defer exec.Command(tmux, "-L", sock, "kill-session", "-t", name).Run()
			if c.shrinkTo > 0 {
				tm(t, "set-option", "-t", name, "window-size", "manual")
			}
			width := c.width
			seen := map[string]bool{}
			shrunk, afterResize := false, 0
			deadline := time.Now().Add(5 * time.Minute)
			for {
				if time.Now().After(deadline) {
					t.Fatalf("the backup did not finish:\n%s", tm(t, "capture-pane", "-p", "-t", name))
				}
				rows := strings.Split(strings.TrimRight(tm(t, "capture-pane", "-p", "-t", name), "\n"), "\n")
				joined := strings.Split(strings.TrimRight(tm(t, "capture-pane", "-p", "-J", "-t", name), "\n"), "\n")
				screen := strings.Join(rows, "\n")
				if strings.Contains(screen, "__EXIT__") {
					if !strings.Contains(screen, "__EXIT__ 0") || !strings.Contains(screen, "saved") {
						t.Fatalf("backup failed:\n%s", screen)
					}
					// The progress line is cleared at the end.
					if strings.Contains(screen, "/s") {
						t.Errorf("a progress line is left on the screen:\n%s", screen)
					}
					break
				}
				var progress []string
				lastRow := ""
				for _, r := range rows {
					if strings.Contains(r, "backup sqlite:") {
						progress = append(progress, r)
					}
					if strings.TrimSpace(r) != "" {
						lastRow = strings.TrimRight(r, " ")
					}
				}
				// The result line may wrap (in either capture).
				done := strings.Contains(screen, "saved") || strings.Contains(strings.Join(joined, "\n"), "saved")
				// One progress row, never wrapped (before a resize: the
				// terminal reflows the line drawn at the old width).
				if !shrunk && !done {
					if len(progress) > 1 {
						t.Fatalf("%d progress rows at %d columns:\n%s", len(progress), width, screen)
					}
					// capture-pane -J joins wrapped rows: none is wider
					// than the pane.
					for _, j := range joined {
						if l := len([]rune(strings.TrimRight(j, " "))); l > width {
							t.Fatalf("a line of %d columns wrapped at %d columns: %q\n%s", l, width, j, screen)
						}
					}
				}
				// The current line (the last row) fits the width.
				if strings.Contains(lastRow, "backup sqlite:") && !done {
					if l := len([]rune(lastRow)); l >= width {
						t.Fatalf("progress line of %d columns at %d: %q", l, width, lastRow)
					}
					seen[lastRow] = true
					if shrunk {
						afterResize++
					}
				}
				if c.shrinkTo > 0 && !shrunk && len(seen) >= 3 {
					tm(t, "resize-window", "-t", name, "-x", fmt.Sprint(c.shrinkTo))
					width, shrunk = c.shrinkTo, true
					time.Sleep(300 * time.Millisecond) // the redraw on SIGWINCH
				}
				time.Sleep(60 * time.Millisecond)
			}
			if len(seen) < 3 {
				t.Errorf("saw %d different progress lines, want several redraws: %v", len(seen), seen)
			}
			if c.shrinkTo > 0 && afterResize == 0 {
				t.Error("the backup ended before a line was drawn after the resize")
			}
			t.Logf("%d columns: %d progress lines, e.g. %q", c.width, len(seen), firstKey(seen))
		})
	}
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}
