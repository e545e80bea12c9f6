package serve

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Jobs every second against SQLite for several cycles: snapshots appear,
// retention keeps exactly keep_last, an unchanged source is skipped (and
// counted), and /metrics and /api/jobs follow.
func TestJobsEverySecondSQLite(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app-every-1s
    source: app
    schedule: "@every 1s"
    retention: { keep_last: 3 }
  - name: app-unchanged
    source: app
    schedule: "@every 1s"
    skip_unchanged: true
    tags: [unchanged]
`)
	s := startServe(t, e.opts(t))
	before := s.get(t, "/metrics")
	if v := metric(before, `snapdata_job_runs_total{job="app-every-1s",outcome="success"}`); v > 1 {
		t.Fatalf("runs before start: %v", v)
	}
	waitFor(t, 60*time.Second, "6 successful runs", func() bool {
		return metric(s.get(t, "/metrics"), `snapdata_job_runs_total{job="app-every-1s",outcome="success"}`) >= 6
	})
	after := s.get(t, "/metrics")
	for _, m := range []string{
		`snapdata_job_last_success_timestamp_seconds{job="app-every-1s"}`,
		`snapdata_job_last_duration_seconds{job="app-every-1s"}`,
		`snapdata_repository_stored_bytes{repository="main"}`,
		`snapdata_repository_dedup_ratio{repository="main"}`,
	} {
		if metric(after, m) <= 0 {
			t.Errorf("%s is not set after runs:\n%s", m, after)
		}
	}
	if metric(after, `snapdata_job_skips_total{job="app-unchanged",reason="unchanged"}`) < 1 {
		t.Errorf("unchanged runs are not counted as skips")
	}
	jobs := s.jobs(t)
	j := jobs["app-every-1s"]
	if j.Last == nil || j.Last.Status != StatusSuccess || j.NextRun == nil || j.Schedule != "@every 1s" {
		t.Fatalf("/api/jobs: %+v", j)
	}
	s.stop(t)

	var every, unchanged int
	for _, sn := range e.snapshots(t) {
		if sn.HasTag("unchanged") {
			unchanged++
		} else {
			every++
		}
	}
	// Every run of app-every-1s forgets down to keep_last 3 for source app;
	// the unchanged job's snapshots belong to the same source, so the last
	// forget keeps the 3 newest of both. What must hold: at most 3 in all.
	if every+unchanged != 3 {
		t.Fatalf("after retention keep_last 3: %d snapshots (%d + %d unchanged), want 3", every+unchanged, every, unchanged)
	}
	e.check(t)
}

// Retention keeps exactly what the rules say, with a changing database.
func TestRetentionKeepLast(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app
    source: app
    skip_unchanged: true
    retention: { keep_last: 2 }
`)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 4; i++ {
		e.sqlite(t, fmt.Sprintf("INSERT INTO users (name) VALUES ('u%d')", i))
		o, err := RunOnce(ctx, e.opts(t), "app")
		if err != nil || o.Status != StatusSuccess || len(o.Snapshots) != 1 {
			t.Fatalf("run %d: %+v %v", i, o, err)
		}
		ids = append(ids, o.Snapshots[0])
	}
	o, err := RunOnce(ctx, e.opts(t), "app")
	if err != nil || o.Status != StatusSuccess || o.Reason != ReasonUnchanged || len(o.Snapshots) != 0 {
		t.Fatalf("unchanged run: %+v %v", o, err)
	}
	snaps := e.snapshots(t)
	if len(snaps) != 2 || snaps[0].ID != ids[2] || snaps[1].ID != ids[3] {
		t.Fatalf("kept %d snapshots, want the last two of %v", len(snaps), ids)
	}
}

// A slow job with a schedule shorter than its run never runs twice at once
// in one process: overlapping ticks are skipped with "already_running".
func TestOverlapInProcess(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: slow
    source: app
    schedule: "@every 1s"
`)
	g := &concurrency{}
	opts := e.opts(t)
	opts.NewApp = slowApp(700*time.Millisecond, g)
	s := startServe(t, opts)
	waitFor(t, 60*time.Second, "two runs and an overlap skip", func() bool {
		m := s.get(t, "/metrics")
		return metric(m, `snapdata_job_runs_total{job="slow",outcome="success"}`) >= 2 &&
			metric(m, `snapdata_job_skips_total{job="slow",reason="already_running"}`) >= 1
	})
	s.stop(t)
	if g.Max() != 1 {
		t.Fatalf("%d backups of one job ran at once", g.Max())
	}
}

// A second serve on the same config refuses to start and names the holder;
// a `run` of a job that the serve process is running (a real second
// process) is skipped as already running.
func TestTwoProcesses(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: slow
    source: app
    schedule: "@every 1s"
`)
	a := startProc(t, e.cfg, "SERVE_HELPER_SLOW=1s")
	if a.addr == "" {
		t.Fatalf("first serve did not start: %v", a.allLogs())
	}
	b := startProc(t, e.cfg)
	if code := b.wait(t, 30*time.Second); code != 5 {
		t.Fatalf("second serve exited %d, want refusal (5); logs %v", code, b.allLogs())
	}
	if b.count("already running", fmt.Sprintf("pid %d", a.cmd.Process.Pid), "since") != 1 {
		t.Fatalf("the refusal does not name the holder: %v", b.allLogs())
	}
	// Wait until the serve process is inside a run, then run the job here.
	waitFor(t, 30*time.Second, "a run in the serve process", func() bool { return a.count(`"msg":"run started"`) > 0 })
	var o *Outcome
	waitFor(t, 30*time.Second, "an already_running skip from a second process", func() bool {
		var err error
		o, err = RunOnce(context.Background(), e.opts(t), "slow")
		if err != nil {
			t.Fatal(err)
		}
		return o.Status == StatusSkipped
	})
	if o.Reason != ReasonAlreadyRunning || !strings.Contains(o.Message, fmt.Sprintf("pid %d", a.cmd.Process.Pid)) {
		t.Fatalf("run while serve runs the job: %+v", o)
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
}

// SIGTERM during a backup: with a short grace the backup is cancelled and no
// (partial) snapshot is written; the process exits 0 and the repository
// checks clean. With a long grace the backup finishes.
func TestSIGTERMDuringBackup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  string
		snaps  int
		logMsg string
	}{
		{"cancelled", "300ms", 0, "grace period over"},
		{"finished", "60s", 1, `"msg":"run succeeded"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, `jobs:
  - name: slow
    source: app
    schedule: "0 0 1 1 *"
`)
			// Yearly schedule: the job is overdue at start and runs once.
			p := startProc(t, e.cfg, "SERVE_HELPER_SLOW=600ms", "SERVE_HELPER_GRACE="+tc.grace)
			waitFor(t, 30*time.Second, "the backup to start", func() bool { return p.count(`"msg":"run started"`) > 0 })
			time.Sleep(800 * time.Millisecond) // some streams are stored by now
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("exit code %d after SIGTERM", code)
			}
			if p.count(tc.logMsg) == 0 {
				t.Fatalf("no %q in logs", tc.logMsg)
			}
			if n := len(e.snapshots(t)); n != tc.snaps {
				t.Fatalf("%d snapshots after SIGTERM, want %d", n, tc.snaps)
			}
			e.check(t)
		})
	}
}

// SIGHUP with a broken config keeps the old config running; a good one
// replaces it.
func TestSIGHUPReload(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: first
    source: app
    schedule: "@every 1s"
    skip_unchanged: true
`)
	p := startProc(t, e.cfg)
	waitFor(t, 30*time.Second, "a run", func() bool { return p.count(`"msg":"run succeeded"`, `"task":"first"`) > 0 })
	e.writeConfig(t, baseConfig+"jobs:\n  - name: second\n    source: nope\n    schedule: \"@every 1s\"\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the reload to be rejected", func() bool { return p.count("config reload rejected", "unknown source") > 0 })
	n := p.count(`"msg":"run succeeded"`, `"task":"first"`)
	waitFor(t, 30*time.Second, "more runs of the old config", func() bool { return p.count(`"msg":"run succeeded"`, `"task":"first"`) >= n+2 })
	e.writeConfig(t, baseConfig+"jobs:\n  - name: second\n    source: app\n    schedule: \"@every 1s\"\n    skip_unchanged: true\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the new job to run", func() bool { return p.count(`"msg":"run succeeded"`, `"task":"second"`) > 0 })
	resp, err := http.Get("http://" + p.addr + "/api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// A job overdue at start-up runs once at start; after it, a restart does not
// run it again.
func TestOverdueAtStart(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: yearly
    source: app
    schedule: "0 0 1 1 *"
`)
	s := startServe(t, e.opts(t))
	waitFor(t, 30*time.Second, "the overdue run", func() bool {
		j := s.jobs(t)["yearly"]
		return j.Last != nil && j.Last.Status == StatusSuccess
	})
	s.stop(t)
	if n := len(e.snapshots(t)); n != 1 {
		t.Fatalf("%d snapshots after the overdue run", n)
	}
	s = startServe(t, e.opts(t))
	time.Sleep(2 * time.Second)
	s.stop(t)
	if n := len(e.snapshots(t)); n != 1 {
		t.Fatalf("%d snapshots after a restart: the job ran again although not overdue", n)
	}
}

func TestPrevFire(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 7, 30, 0, time.Local)
	for spec, want := range map[string]time.Time{
		"*/5 * * * *": time.Date(2025, 3, 10, 12, 5, 0, 0, time.Local),
		"@daily":      time.Date(2025, 3, 10, 0, 0, 0, 0, time.Local),
		"@every 90s":  now.Add(-90 * time.Second),
		"0 0 1 1 *":   time.Date(2025, 1, 1, 0, 0, 0, 0, time.Local),
		"30 2 * * 0":  time.Date(2025, 3, 9, 2, 30, 0, 0, time.Local),
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := prevFire(s, now)
		if !ok || !got.Equal(want) {
			t.Errorf("prevFire(%q) = %v, want %v", spec, got, want)
		}
	}
	if _, err := ParseSchedule("every minute"); err == nil {
		t.Error("bad schedule accepted")
	}
}

func TestBadScheduleNamesLine(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app
    source: app
    schedule: "61 * * * *"
`)
	err := Serve(context.Background(), e.opts(t))
	if err == nil || !strings.Contains(err.Error(), "snapdata.yaml:8") || !strings.Contains(err.Error(), "schedule") {
		t.Fatalf("got %v", err)
	}
}

// A restarted serve publishes the last success, run and duration of each
// job from its state file at once, before the job runs again.
func TestMetricsFromStateAtStart(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app-manual
    source: app
`)
	o, err := RunOnce(context.Background(), e.opts(t), "app-manual")
	if err != nil || o.Status != StatusSuccess {
		t.Fatalf("run: %+v %v", o, err)
	}
	s := startServe(t, e.opts(t))
	m := s.get(t, "/metrics")
	end := float64(o.Start.UnixNano())/1e9 + o.Duration
	if v := metric(m, `snapdata_job_last_success_timestamp_seconds{job="app-manual"}`); v < end-1 || v > end+1 {
		t.Errorf("last success after restart = %v, want about %v (from the state file)", v, end)
	}
	if v := metric(m, `snapdata_job_last_duration_seconds{job="app-manual"}`); v <= 0 {
		t.Errorf("last duration after restart = %v, want the recorded %v", v, o.Duration)
	}
	if v := metric(m, `snapdata_job_runs_total{job="app-manual",outcome="success"}`); v != 0 {
		t.Errorf("the job ran again at start (%v runs)", v)
	}
}

// Each source's duration is measured in (fractional) seconds.
func TestSourceDurationSeconds(t *testing.T) {
	e := newEnv(t, `jobs:
  - name: app
    source: app
`)
	opts := e.opts(t)
	opts.NewApp = slowApp(300*time.Millisecond, nil)
	o, err := RunOnce(context.Background(), opts, "app")
	if err != nil || o.Status != StatusSuccess || len(o.Sources) != 1 {
		t.Fatalf("run: %+v %v", o, err)
	}
	if d := o.Sources[0].Duration; d < 0.3 || d > o.Duration {
		t.Errorf("source duration_seconds = %v, want at least 0.3 and at most the run's %v", d, o.Duration)
	}
	// Sizes in messages (logs, notifications, the status page) are for
	// people: "1.2 KiB", not "1234 bytes".
	if regexp.MustCompile(`\d bytes`).MatchString(o.Message) || !strings.Contains(o.Message, "B logical") {
		t.Errorf("message shows raw byte counts: %q", o.Message)
	}
}
