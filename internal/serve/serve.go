package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/lockfile"
	"github.com/snapdata/snapdata/internal/manifest"
)

// AlreadyServingError says another `snapdata serve` runs on the same config.
type AlreadyServingError struct {
	Config string
	Holder *lockfile.Holder // nil if unknown
	Lock   string
}

func (e *AlreadyServingError) Error() string {
	who := "another process"
	if e.Holder != nil {
		who = e.Holder.String()
	}
	return fmt.Sprintf("another snapdata serve is already running for %s: %s (lock %s)", e.Config, who, e.Lock)
}

// scheduler is one generation's cron.
type scheduler struct {
	cron    *cron.Cron
	entries map[string]cron.EntryID
	tasks   []task
}

// daemon is the running serve loop.
type daemon struct {
	*Service
	runCtx context.Context
	wg     sync.WaitGroup

	smu      sync.Mutex
	sched    *scheduler
	stopping bool
}

// Serve runs every job of the config on its schedule and serves metrics and
// the status page until ctx is cancelled (SIGTERM/SIGINT in the CLI). It
// then stops scheduling, gives running jobs opts.Grace to finish, cancels
// those that do not (a cancelled backup writes no snapshot) and returns
// nil. SIGHUP reloads the config; a config that does not load is logged and
// the running one is kept. Serve refuses to start (*AlreadyServingError)
// when another serve holds the config's lock.
func Serve(ctx context.Context, opts Options) error {
	opts.defaults()
	if opts.ConfigPath == "" {
		return app.Usagef("serve needs a config file: use --config or set %s", config.EnvConfig)
	}
	cfg, err := LoadConfig(opts.ConfigPath, opts.Lookup)
	if err != nil {
		return err
	}
	dir, err := stateDir(&opts)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(opts.ConfigPath)
	lp := filepath.Join(dir, "serve.lock")
	lock, err := lockfile.TryLock(lp, "snapdata serve --config "+abs)
	if err != nil {
		var le *lockfile.LockedError
		if errors.As(err, &le) {
			return &AlreadyServingError{Config: abs, Holder: le.Holder, Lock: lp}
		}
		return err
	}
	defer lock.Unlock() //nolint:errcheck // released by the kernel at exit anyway

	svc, err := newService(opts, cfg, dir)
	if err != nil {
		return err
	}
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	d := &daemon{Service: svc, runCtx: runCtx}
	svc.sched = d.currentSched
	httpSrv, addr, err := svc.startHTTP(cfg)
	if err != nil {
		return err
	}
	log := svc.log
	log.Info("snapdata serve started", "config", abs, "state_dir", dir, "listen", addr, "pid", os.Getpid(), "jobs", len(cfg.Jobs))
	if opts.Ready != nil {
		opts.Ready(addr)
	}

	d.start(cfg, true)

	hup := make(chan os.Signal, 1)
	if !opts.NoSignals {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	reload := opts.Reload
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			d.reload(abs)
		case _, ok := <-reload:
			if !ok {
				reload = nil
				continue
			}
			d.reload(abs)
		}
	}

	log.Info("shutting down: no new runs; waiting for running jobs", "grace", opts.Grace.String())
	d.smu.Lock()
	d.stopping = true
	old := d.sched
	d.smu.Unlock()
	if old != nil {
		old.cron.Stop()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(opts.Grace):
		log.Warn("grace period over: cancelling running jobs (a cancelled backup writes no snapshot)")
		cancelRuns()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			log.Error("running jobs did not stop after cancellation; exiting anyway")
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(sctx)
	log.Info("snapdata serve stopped")
	return nil
}

func (d *daemon) currentSched() *scheduler {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.sched
}

// launch runs a task unless the daemon is stopping.
func (d *daemon) launch(t task) {
	d.smu.Lock()
	if d.stopping {
		d.smu.Unlock()
		return
	}
	d.wg.Add(1)
	d.smu.Unlock()
	defer d.wg.Done()
	d.run(d.runCtx, t)
}

// start schedules a config's tasks; with overdue, tasks missed while the
// service was down run once now.
func (d *daemon) start(cfg *config.Config, overdue bool) {
	s := &scheduler{cron: cron.New(cron.WithParser(cronParser)), entries: map[string]cron.EntryID{}}
	for _, t := range jobTasks(cfg) {
		// The gauges start from the state files, so that an alert on the
		// last success is not blind until each job runs again.
		d.metrics.restore(t.Name, d.state(t.Name))
		if t.Schedule == "" {
			continue
		}
		t := t
		id, err := s.cron.AddFunc(t.Schedule, func() { d.launch(t) })
		if err != nil { // checked at load; keep going with the others
			d.log.Error("schedule", "task", t.Name, "error", err.Error())
			continue
		}
		s.entries[t.Name] = id
		s.tasks = append(s.tasks, t)
	}
	s.cron.Start()
	d.smu.Lock()
	d.sched = s
	d.smu.Unlock()
	for _, t := range s.tasks {
		e := s.cron.Entry(s.entries[t.Name])
		d.log.Info("scheduled", "task", t.Name, "kind", t.Kind, "schedule", t.Schedule, "next_run", e.Next)
	}
	if overdue {
		for _, t := range d.overdue(cfg, s.tasks) {
			d.log.Info("overdue at start-up: running now", "task", t.Name)
			go d.launch(t)
		}
	}
}

// reload reads the config again; on success the new schedule replaces the
// old one (runs in progress finish with the old config).
func (d *daemon) reload(path string) {
	d.log.Info("reloading config", "config", path)
	cfg, err := LoadConfig(d.opts.ConfigPath, d.opts.Lookup)
	var g *generation
	if err == nil {
		g, err = d.build(cfg)
	}
	if err != nil {
		d.metrics.reloads.WithLabelValues("error").Inc()
		d.log.Error("config reload rejected; the previous config keeps running", "config", path, "error", d.current().scrub.Scrub(err.Error()))
		return
	}
	old := d.current().cfg
	if listenOf(old) != listenOf(cfg) || tokenChanged(old, cfg) {
		d.log.Warn("server settings changed; they take effect after a restart")
	}
	d.swap(g)
	d.smu.Lock()
	prev := d.sched
	stopping := d.stopping
	d.smu.Unlock()
	if stopping {
		return
	}
	if prev != nil {
		prev.cron.Stop() // running jobs continue
	}
	d.start(cfg, false)
	d.metrics.reloads.WithLabelValues("ok").Inc()
	d.log.Info("config reloaded", "jobs", len(cfg.Jobs))
}

func listenOf(c *config.Config) string {
	if c.Server == nil {
		return ""
	}
	return c.Server.Listen
}

func tokenChanged(a, b *config.Config) bool {
	var x, y config.Server
	if a.Server != nil {
		x = *a.Server
	}
	if b.Server != nil {
		y = *b.Server
	}
	return x.Token != y.Token || x.TokenFile != y.TokenFile
}

// overdue returns the tasks whose last success is older than their
// schedule's previous fire time: backups by their sources' newest
// snapshots (or the remembered last success), verify and prune by the
// remembered state once they have run.
func (d *daemon) overdue(cfg *config.Config, tasks []task) []task {
	now := time.Now()
	lists := map[string][]*manifest.Snapshot{}
	listErr := map[string]bool{}
	var out []task
	for _, t := range tasks {
		sch, err := ParseSchedule(t.Schedule)
		if err != nil {
			continue
		}
		prev, ok := prevFire(sch, now)
		if !ok {
			continue
		}
		st := d.state(t.Name)
		last := st.LastSuccess
		if t.Kind == KindBackup {
			snaps, seen := lists[t.Repo]
			if !seen && !listErr[t.Repo] {
				snaps, err = d.listRepo(t.Repo)
				if err != nil {
					listErr[t.Repo] = true
					d.log.Warn("overdue check: cannot list snapshots", "repository", t.Repo, "error", d.current().scrub.Scrub(err.Error()))
				}
				lists[t.Repo] = snaps
			}
			if sl := jobSnapshotTime(d.current().app, t.Job, snaps); sl.After(last) {
				last = sl
			}
		} else if st.Last == nil {
			continue
		}
		if last.Before(prev) {
			out = append(out, t)
		}
	}
	return out
}

func (d *daemon) listRepo(name string) ([]*manifest.Snapshot, error) {
	ctx, cancel := context.WithTimeout(d.runCtx, 2*time.Minute)
	defer cancel()
	repo, err := d.current().app.OpenRepository(ctx, name)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	return repo.List(ctx)
}

// jobSnapshotTime is the oldest of the newest snapshots of the job's
// sources (zero when a source has none).
func jobSnapshotTime(a *app.App, j *config.Job, snaps []*manifest.Snapshot) time.Time {
	var oldest time.Time
	for i, name := range j.Source {
		src, err := a.Source(name)
		if err != nil {
			return time.Time{}
		}
		var newest time.Time
		for _, s := range snaps {
			if s.Source == src.Name && s.Time.After(newest) {
				newest = s.Time
			}
		}
		if newest.IsZero() {
			return time.Time{}
		}
		if i == 0 || newest.Before(oldest) {
			oldest = newest
		}
	}
	return oldest
}

// prevFire returns the last time at or before now the schedule fired.
func prevFire(s cron.Schedule, now time.Time) (time.Time, bool) {
	if c, ok := s.(cron.ConstantDelaySchedule); ok {
		return now.Add(-c.Delay), true
	}
	for _, w := range []time.Duration{time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour} {
		t := s.Next(now.Add(-w))
		if t.IsZero() || t.After(now) {
			continue
		}
		for {
			n := s.Next(t)
			if n.IsZero() || n.After(now) {
				return t, true
			}
			t = n
		}
	}
	return time.Time{}, false
}

// RunOnce runs one task once with exactly the logic of the daemon: a job
// name runs its backup (pre-checks, backup, retention), "JOB/verify" its
// test restore and "prune/REPO" a prune. When ctx is cancelled the run gets
// opts.Grace to finish before it is cancelled. A skipped run is not an
// error; a failed run returns its Outcome (Status "failure") and a nil
// error: errors are for config and usage problems.
func RunOnce(ctx context.Context, opts Options, name string) (*Outcome, error) {
	opts.defaults()
	if opts.ConfigPath == "" {
		return nil, app.Usagef("run needs a config file that defines the job: use --config or set %s", config.EnvConfig)
	}
	cfg, err := LoadConfig(opts.ConfigPath, opts.Lookup)
	if err != nil {
		return nil, err
	}
	t, ok := findTask(cfg, name)
	if !ok {
		names := []string{}
		for _, t := range jobTasks(cfg) {
			names = append(names, t.Name)
		}
		return nil, app.Usagef("no job %q in %s (jobs: %v)", name, cfg.Path, names)
	}
	dir, err := stateDir(&opts)
	if err != nil {
		return nil, err
	}
	svc, err := newService(opts, cfg, dir)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			svc.log.Warn("stop requested: letting the run finish", "grace", opts.Grace.String())
			select {
			case <-time.After(opts.Grace):
				svc.log.Warn("grace period over: cancelling the run (a cancelled backup writes no snapshot)")
				cancel()
			case <-runCtx.Done():
			}
		case <-runCtx.Done():
		}
	}()
	return svc.run(runCtx, t), nil
}
