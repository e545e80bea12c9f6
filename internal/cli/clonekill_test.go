package cli

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// state is a database's tables with their row counts and checksums, or ""
// when it cannot be read.
func state(t *testing.T, d string) (string, error) {
	t.Helper()
	target := mustParse(t, d)
	got, err := app.DefaultEngines()[target.Engine].(engine.Checksummer).Checksums(context.Background(), target, nil, engine.ChecksumOptions{Private: true})
	if err != nil {
		return "", err
	}
	var lines []string
	for _, tb := range got {
		lines = append(lines, fmt.Sprintf("%s %d %s", tb.Name, tb.Rows, tb.Checksum))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// kill -9 at random moments of a clone: the target always holds either
// its old content or the new one, whole; the next clone succeeds and
// leaves no database or file behind.
func TestCloneKill9(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	src := pgChinook(t, pg)
	srcDB := mustParse(t, src).Database()
	target := pg.DSN("kill_target")
	writeConfig(t, fmt.Sprintf(`
sources:
  prod: { dsn: "%s" }
clones:
  dev:
    from: { source: prod }
    repository: none
    to: "%s"
    allow: ["postgres://*@127.0.0.1:%d/kill_*"]
`, src, target, pg.Port))
	start := time.Now()
	must(t, "clone", "dev")
	window := time.Since(start) * 5 / 4
	old, err := state(t, target)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	const runs = 12
	killed := 0
	for i := 0; i < runs; i++ {
		pg.Exec(t, srcDB, fmt.Sprintf("INSERT INTO genre (genre_id, name) VALUES (%d, 'run %d')", 1000+i, i))
		want, err := state(t, src)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "clone", "dev")
		cmd.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(window))))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		now, err := state(t, target)
		if err != nil {
			t.Fatalf("run %d: the target cannot be read after kill -9: %v", i, err)
		}
		switch {
		case now == want:
			old = now
		case now == old:
			if werr == nil {
				t.Fatalf("run %d: the clone succeeded but the target holds the old content", i)
			}
			killed++
		default:
			t.Fatalf("run %d: after kill -9 the target holds neither the old content nor the new one", i)
		}
	}
	t.Logf("%d of %d runs were killed before the swap", killed, runs)
	if killed < runs/3 {
		t.Errorf("only %d of %d runs were killed before the swap: the test did not exercise crashes", killed, runs)
	}
	must(t, "clone", "dev")
	want, _ := state(t, src)
	if now, _ := state(t, target); now != want {
		t.Fatal("the clone after the kills does not hold the source's rows")
	}
	if got := pgDatabasesLike(t, pg, "snapdata_"); len(got) != 0 {
		t.Errorf("databases left behind: %v", got)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "snapdata-*"))
	if len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}
