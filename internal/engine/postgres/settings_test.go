package postgres

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// The restore's sessions take maintenance_work_mem and the parallel
// maintenance workers from the target: at least 256 MB of memory (a server
// set higher keeps its own), its own limit of workers; and they turn
// synchronous commits off.
func TestRestoreSessionSettings(t *testing.T) {
	pg := testsrv.Postgres(t)
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		set     []string // ALTER DATABASE … SET
		mem     int64
		workers int
		show    string // maintenance_work_mem in a session set up with it
	}{
		{name: "server default", mem: 256 << 20, workers: 2, show: "256MB"},
		{name: "lower", set: []string{"maintenance_work_mem = '16MB'"}, mem: 256 << 20, workers: 2, show: "256MB"},
		{name: "higher", set: []string{"maintenance_work_mem = '1GB'", "max_parallel_maintenance_workers = 5"}, mem: 1 << 30, workers: 5, show: "1GB"},
		{name: "no parallel workers", set: []string{"max_parallel_maintenance_workers = 0"}, mem: 256 << 20, workers: 0, show: "256MB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDB(t, pg, "settings")
			for _, s := range c.set {
				pg.Exec(t, "postgres", "ALTER DATABASE "+pgx.Identifier{d.Database()}.Sanitize()+" SET "+s)
			}
			conn, err := connect(ctx, d, false)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			ss, err := restoreSessionSettings(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if ss.maintenanceWorkMem != c.mem || ss.maxParallelMaintenanceWorkers != c.workers {
				t.Fatalf("settings = %+v, want %d bytes and %d workers", ss, c.mem, c.workers)
			}
			if err := execSQL(ctx, conn, ss.sql()); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"maintenance_work_mem": c.show, "synchronous_commit": "off"} {
				var got string
				if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s = %s, want %s", name, got, want)
				}
			}
		})
	}
}

// An index build gets as many parallel workers as sessions sat idle, up to
// the server's limit; a restore on one session leaves the server's setting.
func TestParallelWorkersFollowIdleSessions(t *testing.T) {
	for _, c := range []struct{ idle, jobs, max, want int }{
		{idle: 0, jobs: 2, max: 2, want: 0},
		{idle: 1, jobs: 2, max: 2, want: 1},
		{idle: 3, jobs: 4, max: 2, want: 2},
		{idle: 3, jobs: 4, max: 0, want: 0},
		{idle: 0, jobs: 1, max: 2, want: -1},
	} {
		ss := sessionSettings{maxParallelMaintenanceWorkers: c.max}
		if got := ss.parallelWorkers(c.idle, c.jobs); got != c.want {
			t.Errorf("parallelWorkers(idle %d, jobs %d, max %d) = %d, want %d", c.idle, c.jobs, c.max, got, c.want)
		}
	}
}

// A whole restore sets its sessions up as restoreSessionSettings says and
// gives each post-data task its parallel workers: the target database logs
// every statement, and its maintenance_work_mem (777 MB) marks the lines.
func TestRestoreSessionsUseTheirSettings(t *testing.T) {
	pg := testsrv.Postgres(t)
	e := New()
	mem, _ := backupMem(t, e, loadRich(t, pg), 2)
	for _, jobs := range []int{2, 1} {
		d := newDB(t, pg, "settings_restore")
		name := pgx.Identifier{d.Database()}.Sanitize()
		pg.Exec(t, "postgres", "ALTER DATABASE "+name+" SET log_statement = 'all'",
			"ALTER DATABASE "+name+" SET maintenance_work_mem = '777MB'")
		before, err := os.ReadFile(pg.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		restoreTo(t, e, mem, d, engine.RestoreOptions{Jobs: jobs})
		all, err := os.ReadFile(pg.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		log := string(all[len(before):])
		if n := strings.Count(log, "SET maintenance_work_mem = '795648kB'"); n != jobs {
			t.Errorf("jobs %d: %d sessions set the server's maintenance_work_mem, want %d", jobs, n, jobs)
		}
		sets := regexp.MustCompile(`SET max_parallel_maintenance_workers = (\d+)`).FindAllStringSubmatch(log, -1)
		switch {
		case jobs == 1 && len(sets) > 0:
			t.Errorf("jobs 1: parallel workers set %d times, want the server's setting left alone", len(sets))
		case jobs == 2 && len(sets) == 0:
			t.Errorf("jobs 2: parallel workers never set")
		}
		for _, m := range sets {
			if m[1] != "0" && m[1] != "1" {
				t.Errorf("jobs %d: %s, but at most one other session can be idle", jobs, m[0])
			}
		}
	}
}
