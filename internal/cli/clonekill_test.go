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

	"github.com/jackc/pgx/v5"

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

// kill -9 at random moments of a clone, on each engine: the target
// always holds either its old content or the new one, whole; the next
// clone succeeds and leaves no database or file behind.
func TestCloneKill9(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	t.Run("postgres", func(t *testing.T) {
		setup(t)
		src := pgChinook(t, pg)
		killRuns(t, src, pg.DSN("kill_target"), fmt.Sprintf("postgres://*@127.0.0.1:%d/kill_*", pg.Port), 12,
			func(i int) {
				pg.Exec(t, mustParse(t, src).Database(), fmt.Sprintf("INSERT INTO genre (genre_id, name) VALUES (%d, 'run %d')", 1000+i, i))
			},
			func() []string { return pgDatabasesLike(t, pg, "snapdata_") })
	})
	t.Run("mariadb", func(t *testing.T) {
		setup(t)
		src := myScript(t, my, "chinook", filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
		killRuns(t, src, my.DSN("kill_target"), fmt.Sprintf("mysql://*@127.0.0.1:%d/kill_*", my.Port), 10,
			func(i int) {
				my.Exec(t, mustParse(t, src).Database(), fmt.Sprintf("INSERT INTO Genre (GenreId, Name) VALUES (%d, 'run %d')", 1000+i, i))
			},
			func() []string { return myDatabasesLike(t, my, "snapdata\\_") })
	})
	t.Run("sqlite", func(t *testing.T) {
		dir := setup(t)
		chinook(t, "prod.db")
		db := openDB(t, "prod.db")
		killRuns(t, "sqlite:"+filepath.Join(dir, "prod.db"), "sqlite:"+filepath.Join(dir, "dev.db"), "sqlite:./dev.db", 10,
			func(i int) {
				if _, err := db.Exec(fmt.Sprintf("INSERT INTO Genre (GenreId, Name) VALUES (%d, 'run %d')", 1000+i, i)); err != nil {
					t.Fatal(err)
				}
			},
			func() []string {
				left, _ := filepath.Glob(filepath.Join(dir, ".*"))
				return left
			})
	})
}

func killRuns(t *testing.T, src, target, allow string, runs int, mutate func(int), leftovers func() []string) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("SNAPDATA_STATE_DIR", filepath.Join(tmp, "state"))
	writeConfig(t, fmt.Sprintf(`
sources:
  prod: { dsn: "%s" }
clones:
  dev:
    from: { source: prod }
    repository: none
    to: "%s"
    allow: ["%s"]
`, src, target, allow))
	start := time.Now()
	must(t, "clone", "dev")
	window := time.Since(start) * 5 / 4
	old, err := state(t, target)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	killed := 0
	for i := 0; i < runs; i++ {
		mutate(i)
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
	if got := leftovers(); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "snapdata-*"))
	intents, _ := filepath.Glob(filepath.Join(tmp, "state", "clone-intents", "*"))
	if len(left)+len(intents) != 0 {
		t.Errorf("temporary files left behind: %v %v", left, intents)
	}
}

// The swap waits for sessions on the PostgreSQL target (and fails when
// they stay, the target intact), or ends them with terminate_sessions.
// Databases that merely look like a clone's are never dropped.
func TestCloneSwapSessions(t *testing.T) {
	pg := testsrv.Postgres(t)
	setup(t)
	src := pgChinook(t, pg)
	target := pg.DSN("sess_target")
	cfg := func(terminate bool) {
		writeConfig(t, fmt.Sprintf(`
sources:
  prod: { dsn: "%s" }
clones:
  dev:
    from: { source: prod }
    to: "%s"
    allow: ["postgres://*@127.0.0.1:%d/sess_*"]
    session_wait: 2s
    terminate_sessions: %v
`, src, target, pg.Port, terminate))
	}
	cfg(false)
	must(t, "clone", "dev")
	before, err := state(t, target)
	if err != nil {
		t.Fatal(err)
	}
	// Look-alikes: no label, and a label of a clone that still runs (pid 1).
	pg.Exec(t, "postgres", "CREATE DATABASE snapdata_clone_lookalike", "CREATE DATABASE snapdata_prev_sess_target_alive",
		`COMMENT ON DATABASE snapdata_prev_sess_target_alive IS 'snapdata clone {"role":"previous","clone":"dev","target":"`+mustParse(t, target).String()+`","host":"`+hostname(t)+`","pid":1,"pidns":"`+pidns(t)+`","started":"`+time.Now().UTC().Format(time.RFC3339)+`","token":"abc"}'`)
	conn, err := pgxConnect(target)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, mustParse(t, src).Database(), "INSERT INTO genre (genre_id, name) VALUES (999, 'new')")
	r := snap(t, "clone", "dev")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "sessions are still connected") || !strings.Contains(r.stderr, "terminate_sessions") {
		t.Errorf("clone with a session on the target: %s", r)
	}
	if now, _ := state(t, target); now != before {
		t.Error("the target changed although the swap failed")
	}
	if err := conn.Ping(context.Background()); err != nil {
		t.Errorf("the waiting clone ended the session: %v", err)
	}
	cfg(true)
	must(t, "clone", "dev")
	want, _ := state(t, src)
	if now, _ := state(t, target); now != want {
		t.Error("terminate_sessions: the target does not hold the new copy")
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("terminate_sessions: the session on the target is still alive")
	}
	got := pgDatabasesLike(t, pg, "snapdata_")
	if strings.Join(got, " ") != "snapdata_clone_lookalike snapdata_prev_sess_target_alive" {
		t.Errorf("databases after the clones: %v (the look-alikes must stay, nothing else)", got)
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pidns(t *testing.T) string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func pgxConnect(d string) (*pgx.Conn, error) {
	return pgx.Connect(context.Background(), d)
}
