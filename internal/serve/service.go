package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/lockfile"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/notify"
	"github.com/snapdata/snapdata/internal/precheck"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/retention"
)

// generation is one loaded config with everything built from it. A reload
// swaps the generation; runs that started keep theirs.
type generation struct {
	cfg      *config.Config
	app      *app.App
	notifier *notify.Dispatcher
	scrub    *notify.Scrubber
}

// Service runs tasks. It is shared by Serve and RunOnce.
type Service struct {
	opts     Options
	log      *slog.Logger
	stateDir string
	metrics  *metrics

	mu      sync.Mutex
	gen     *generation
	running map[string]time.Time // task -> start, in this process
	states  map[string]*TaskState
	repos   map[string]*repoView // status page cache, by repository name

	sched func() *scheduler // the daemon's current schedule; nil for RunOnce
}

type repoView struct {
	at    time.Time
	snaps []*manifest.Snapshot
	stats repository.Stats
	err   string
}

func newService(opts Options, cfg *config.Config, dir string) (*Service, error) {
	s := &Service{opts: opts, log: opts.Logger, stateDir: dir, metrics: newMetrics(),
		running: map[string]time.Time{}, states: map[string]*TaskState{}, repos: map[string]*repoView{}}
	g, err := s.build(cfg)
	if err != nil {
		return nil, err
	}
	s.gen = g
	return s, nil
}

func (s *Service) build(cfg *config.Config) (*generation, error) {
	n, err := notify.FromConfig(cfg, s.log)
	if err != nil {
		return nil, err
	}
	return &generation{cfg: cfg, app: s.opts.NewApp(cfg, s.log, s.opts.Getenv), notifier: n, scrub: n.Scrubber}, nil
}

func (s *Service) current() *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *Service) swap(g *generation) {
	s.mu.Lock()
	s.gen = g
	s.repos = map[string]*repoView{}
	s.mu.Unlock()
}

// state returns the remembered state of a task, loading it from disk once.
func (s *Service) state(task string) *TaskState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[task]; ok {
		return st
	}
	st, err := loadState(s.stateDir, task)
	if err != nil {
		s.log.Warn("state file unreadable, starting afresh", "task", task, "error", err.Error())
	}
	s.states[task] = st
	return st
}

// task is one schedulable unit.
type task struct {
	Name     string
	Kind     string
	Job      *config.Job // backup and verify
	Repo     string
	Schedule string
}

func jobTasks(cfg *config.Config) []task {
	var out []task
	for _, j := range cfg.Jobs {
		if j.Clone != "" {
			repo := ""
			if cl := cfg.Clones[j.Clone]; cl != nil && cl.Repository != "none" {
				repo = cl.Repository
			}
			out = append(out, task{Name: j.Name, Kind: KindClone, Job: j, Repo: repo, Schedule: j.Schedule})
			continue
		}
		out = append(out, task{Name: j.Name, Kind: KindBackup, Job: j, Repo: cfg.JobRepository(j), Schedule: j.Schedule})
		if j.Verify != nil {
			out = append(out, task{Name: j.Name + "/verify", Kind: KindVerify, Job: j, Repo: cfg.JobRepository(j), Schedule: j.Verify.Schedule})
		}
	}
	names := make([]string, 0, len(cfg.Repositories))
	for n := range cfg.Repositories {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if r := cfg.Repositories[n]; r != nil && r.Prune != nil && r.Prune.Schedule != "" {
			out = append(out, task{Name: "prune/" + n, Kind: KindPrune, Repo: n, Schedule: r.Prune.Schedule})
		}
	}
	return out
}

// findTask resolves a name given to `snapdata run`: a job name (its
// backup), "JOB/verify" or "prune/REPO".
func findTask(cfg *config.Config, name string) (task, bool) {
	for _, t := range jobTasks(cfg) {
		if t.Name == name {
			return t, true
		}
	}
	if len(name) > 6 && name[:6] == "prune/" {
		if _, ok := cfg.Repositories[name[6:]]; ok {
			return task{Name: name, Kind: KindPrune, Repo: name[6:]}, true
		}
	}
	if j, ok := cfg.Job(trimSuffix(name, "/verify")); ok && j.Verify != nil {
		return task{Name: name, Kind: KindVerify, Job: j, Repo: cfg.JobRepository(j)}, true
	}
	return task{}, false
}

func trimSuffix(s, suf string) string {
	if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)]
	}
	return s
}

// run runs a task once with all the bookkeeping: in-process and
// cross-process exclusion, logging, metrics, state and notifications.
func (s *Service) run(ctx context.Context, t task) *Outcome {
	g := s.current()
	o := &Outcome{Task: t.Name, Kind: t.Kind, Repository: t.Repo, Start: time.Now().UTC()}
	if t.Job != nil {
		o.Job = t.Job.Name
	}
	s.mu.Lock()
	since, busy := s.running[t.Name]
	if !busy {
		s.running[t.Name] = o.Start
	}
	s.mu.Unlock()
	if busy {
		o.Status, o.Reason = StatusSkipped, ReasonAlreadyRunning
		o.Message = fmt.Sprintf("already running in this process since %s", since.Format(time.RFC3339))
		s.finish(ctx, g, t, o)
		return o
	}
	defer func() {
		s.mu.Lock()
		delete(s.running, t.Name)
		s.mu.Unlock()
	}()
	lock, err := lockfile.TryLock(lockPath(s.stateDir, t.Name), "task "+t.Name)
	if err != nil {
		var le *lockfile.LockedError
		if errors.As(err, &le) {
			o.Status, o.Reason = StatusSkipped, ReasonAlreadyRunning
			o.Message = "already running: " + le.Error()
		} else {
			o.Status, o.Message = StatusFailure, err.Error()
		}
		s.finish(ctx, g, t, o)
		return o
	}
	defer lock.Unlock() //nolint:errcheck // released by the kernel at exit anyway
	s.metrics.running.WithLabelValues(t.Name).Set(1)
	defer s.metrics.running.WithLabelValues(t.Name).Set(0)
	if t.Job != nil && t.Job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Job.Timeout.D())
		defer cancel()
	}
	s.log.Info("run started", "task", t.Name, "kind", t.Kind, "repository", t.Repo)
	switch t.Kind {
	case KindBackup:
		s.runBackup(ctx, g, t, o)
	case KindVerify:
		s.runVerify(ctx, g, t, o)
	case KindPrune:
		s.runPrune(ctx, g, t, o)
	case KindClone:
		s.runClone(ctx, g, t, o)
	}
	s.finish(ctx, g, t, o)
	return o
}

func (s *Service) runBackup(ctx context.Context, g *generation, t task, o *Outcome) {
	a, j := g.app, t.Job
	repo, err := a.OpenRepository(ctx, t.Repo)
	if err != nil {
		o.Status, o.Message = StatusFailure, fmt.Sprintf("open repository %s: %v", t.Repo, err)
		return
	}
	defer repo.Close()
	var snaps []*manifest.Snapshot
	if j.Prechecks != nil && j.Prechecks.MinInterval > 0 {
		if snaps, err = repo.List(ctx); err != nil {
			o.Status, o.Message = StatusFailure, fmt.Sprintf("list snapshots: %v", err)
			return
		}
	}
	for _, name := range j.Source {
		so := s.backupSource(ctx, g, repo, j, name, snaps)
		o.Sources = append(o.Sources, so)
		o.BytesAdded += so.BytesAdded
		if so.Snapshot != "" {
			o.Snapshots = append(o.Snapshots, so.Snapshot)
		}
	}
	s.aggregate(o)
	if o.Status != StatusSkipped {
		s.refreshRepo(ctx, t.Repo, repo)
	}
	s.copyTo(ctx, g, repo, j, o)
}

// copyTo runs the job's copy_to: each named repository receives the
// snapshots of the job's sources that it lacks (the new ones, and any an
// earlier failed copy left behind). A failed copy fails the run, and is
// logged, counted and notified as such, but leaves the backup as it is.
func (s *Service) copyTo(ctx context.Context, g *generation, repo *repository.Repository, j *config.Job, o *Outcome) {
	if len(j.CopyTo) == 0 || len(o.Snapshots) == 0 && o.Status != StatusSuccess {
		return
	}
	var sources []string
	for _, name := range j.Source {
		if src, err := g.app.Source(name); err == nil {
			sources = append(sources, src.Name)
		}
	}
	for _, to := range j.CopyTo {
		co := CopyOutcome{Repository: to, Status: StatusSuccess}
		res, err := g.app.CopyTo(ctx, repo, to, sources)
		if err != nil {
			co.Status, co.Message = StatusFailure, err.Error()
			s.log.Error("copy after backup failed; the backup stands", "task", o.Task, "repository", to, "err", err)
			o.Status = StatusFailure
			o.Reason = ""
			o.Message += "; " + co.Message
		} else {
			co.Snapshots, co.BytesAdded = len(res.Copied), res.AddedBytes
			co.Message = fmt.Sprintf("copied %d snapshots to %s, %s added", len(res.Copied), to, progress.Bytes(res.AddedBytes))
			s.log.Info("copied after backup", "task", o.Task, "repository", to, "snapshots", len(res.Copied), "bytes_added", res.AddedBytes)
			o.Message += "; " + co.Message
		}
		o.Copies = append(o.Copies, co)
	}
}

func (s *Service) backupSource(ctx context.Context, g *generation, repo *repository.Repository, j *config.Job, name string, snaps []*manifest.Snapshot) (so SourceOutcome) {
	start := time.Now()
	so = SourceOutcome{Source: name}
	// A named result: the deferred assignment must reach the caller.
	defer func() { so.Duration = time.Since(start).Seconds() }()
	src, err := g.app.Source(name)
	if err != nil {
		so.Status, so.Message = StatusFailure, err.Error()
		return so
	}
	if pc := j.Prechecks; pc != nil {
		if pc.MinInterval > 0 {
			var last time.Time
			for _, sn := range snaps {
				if sn.Source == src.Name && sn.Time.After(last) {
					last = sn.Time
				}
			}
			if d := precheck.CheckMinInterval(last, pc.MinInterval.D(), time.Now()); d.Skip {
				so.Status, so.Reason, so.Message = StatusSkipped, d.Reason, d.Detail
				return so
			}
		}
		if pc.MaxReplicationLag > 0 {
			lag, err := precheck.ReplicationLag(ctx, src.DSN)
			if err != nil {
				so.Status, so.Message = StatusFailure, fmt.Sprintf("pre-check: %v", err)
				return so
			}
			if d := precheck.CheckLag(lag, pc.MaxReplicationLag.D()); d.Skip {
				so.Status, so.Reason, so.Message = StatusSkipped, d.Reason, d.Detail
				return so
			}
		}
	}
	out, err := g.app.Backup(ctx, repo, src, app.BackupOptions{Tags: j.Tags, SkipUnchanged: j.SkipUnchanged, Jobs: j.Jobs})
	if err != nil {
		so.Status, so.Message = StatusFailure, err.Error()
		return so
	}
	if out.Skipped {
		so.Status, so.Reason, so.Message = StatusSuccess, ReasonUnchanged, out.Reason
		return so
	}
	so.Status = StatusSuccess
	so.Snapshot = out.Snapshot.ID
	so.BytesAdded = out.Snapshot.AddedBytes
	so.Logical = out.Snapshot.LogicalBytes
	so.Message = fmt.Sprintf("snapshot %s: %d tables, %s logical, %s added", out.Snapshot.ShortID(), len(out.Snapshot.Tables), progress.Bytes(out.Snapshot.LogicalBytes), progress.Bytes(out.Snapshot.AddedBytes))
	if p := policy(j.Retention); !p.Empty() {
		res, err := g.app.Forget(ctx, repo, p, src.Name, false)
		if err != nil {
			so.Status = StatusFailure
			so.Message += "; retention failed: " + err.Error()
			return so
		}
		so.Forgotten = len(res.Removed)
		if so.Forgotten > 0 {
			so.Message += fmt.Sprintf("; retention (%s) removed %d snapshots", p, so.Forgotten)
		}
	}
	return so
}

func policy(r *config.Retention) retention.Policy {
	if r == nil {
		return retention.Policy{}
	}
	return retention.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin.D(), Tags: r.KeepTags}
}

// aggregate derives a run's status from its sources: any failure fails the
// run; all skipped skips it; else it succeeded.
func (s *Service) aggregate(o *Outcome) {
	var fails, oks, skips []SourceOutcome
	for _, so := range o.Sources {
		switch so.Status {
		case StatusFailure:
			fails = append(fails, so)
		case StatusSkipped:
			skips = append(skips, so)
		default:
			oks = append(oks, so)
		}
	}
	msg := func(list []SourceOutcome) string {
		out := ""
		for i, so := range list {
			if i > 0 {
				out += "; "
			}
			if len(o.Sources) > 1 {
				out += so.Source + ": "
			}
			out += so.Message
		}
		return out
	}
	switch {
	case len(fails) > 0:
		o.Status, o.Message = StatusFailure, msg(fails)
	case len(oks) > 0:
		o.Status, o.Message = StatusSuccess, msg(append(oks, skips...))
		if len(oks) == 1 && len(skips) == 0 {
			o.Reason = oks[0].Reason
		}
	case len(skips) > 0:
		o.Status, o.Reason, o.Message = StatusSkipped, skips[0].Reason, msg(skips)
	default:
		o.Status, o.Message = StatusSkipped, "no sources"
	}
}

func (s *Service) runVerify(ctx context.Context, g *generation, t task, o *Outcome) {
	repo, err := g.app.OpenRepository(ctx, t.Repo)
	if err != nil {
		o.Status, o.Message = StatusFailure, fmt.Sprintf("open repository %s: %v", t.Repo, err)
		return
	}
	defer repo.Close()
	for _, name := range t.Job.Source {
		start := time.Now()
		so := SourceOutcome{Source: name}
		src, err := g.app.Source(name)
		if err == nil {
			var snap *manifest.Snapshot
			snap, err = repo.Find(ctx, "latest", src.Name)
			if errors.Is(err, repository.ErrSnapshotNotFound) {
				so.Status, so.Reason, so.Message = StatusSkipped, ReasonNoSnapshot, "no snapshot to verify yet"
			} else if err == nil {
				var scratch string
				var res *app.VerifyResult
				scratch, err = s.scratchFor(g, t.Job, snap)
				if err == nil {
					res, err = g.app.Verify(ctx, repo, snap, scratch, t.Job.Jobs, nil)
				}
				if err == nil {
					so.Snapshot = snap.ID
					if res.OK {
						so.Status, so.Message = StatusSuccess, fmt.Sprintf("snapshot %s restored and matched: %d tables", snap.ShortID(), len(res.Tables))
					} else {
						bad := 0
						for _, tv := range res.Tables {
							if !tv.OK {
								bad++
							}
						}
						so.Status, so.Message = StatusFailure, fmt.Sprintf("snapshot %s: %d of %d tables differ after restore", snap.ShortID(), bad, len(res.Tables))
					}
				}
			}
		}
		if err != nil {
			so.Status, so.Message = StatusFailure, "verify: "+err.Error()
		}
		so.Duration = time.Since(start).Seconds()
		o.Sources = append(o.Sources, so)
		if so.Snapshot != "" {
			o.Snapshots = append(o.Snapshots, so.Snapshot)
		}
	}
	s.aggregate(o)
}

// scratchFor picks the job's scratch server for a snapshot's engine, with
// errors that name the config key (not the CLI's --scratch).
func (s *Service) scratchFor(g *generation, j *config.Job, snap *manifest.Snapshot) (string, error) {
	if snap.Engine == dsn.SQLite {
		return "", nil // a temporary file
	}
	sc := j.Verify.Scratch
	d := sc.For(snap.Engine)
	path := fmt.Sprintf("jobs[%d].%s", jobIndex(g.cfg, j), sc.Key(snap.Engine))
	if d == "" {
		return "", g.cfg.Errorf(path, "job %q: verify of a %s snapshot needs a scratch server: set verify.scratch.%s to a server DSN where a scratch database may be created (e.g. %s://user@host:port/)",
			j.Name, snap.Engine, snap.Engine, snap.Engine)
	}
	server, err := g.app.Target(d)
	if err != nil {
		return "", g.cfg.Errorf(path, "job %q: %s: %v", j.Name, sc.Key(snap.Engine), err)
	}
	if server.Engine != snap.Engine {
		return "", g.cfg.Errorf(path, "job %q: %s is a %s server but snapshot %s is a %s snapshot: give one scratch server per engine, verify: { scratch: { %s: \"…\", %s: \"…\" } }",
			j.Name, sc.Key(snap.Engine), server.Engine, snap.ShortID(), snap.Engine, server.Engine, snap.Engine)
	}
	return d, nil
}

func jobIndex(cfg *config.Config, j *config.Job) int {
	for i, c := range cfg.Jobs {
		if c == j || c.Name == j.Name {
			return i
		}
	}
	return 0
}

func (s *Service) runPrune(ctx context.Context, g *generation, t task, o *Outcome) {
	repo, err := g.app.OpenRepository(ctx, t.Repo)
	if err != nil {
		o.Status, o.Message = StatusFailure, fmt.Sprintf("open repository %s: %v", t.Repo, err)
		return
	}
	defer repo.Close()
	rep, err := g.app.Prune(ctx, repo)
	if err != nil {
		o.Status, o.Message = StatusFailure, "prune: "+err.Error()
		return
	}
	o.Status = StatusSuccess
	o.Message = fmt.Sprintf("removed %d objects (%s), kept %d objects (%s)", rep.RemovedObjects, progress.Bytes(rep.RemovedBytes), rep.KeptObjects, progress.Bytes(rep.KeptBytes))
	s.refreshRepo(ctx, t.Repo, repo)
}

// refreshRepo updates the repository gauges and the status page cache.
func (s *Service) refreshRepo(ctx context.Context, name string, repo *repository.Repository) {
	v := &repoView{at: time.Now()}
	st, err := repo.Stats(ctx)
	if err == nil {
		v.stats = st
		s.metrics.repoStats(name, st)
		v.snaps, err = repo.List(ctx)
	}
	if err != nil {
		s.log.Warn("repository stats", "repository", name, "error", s.current().scrub.Scrub(err.Error()))
		return
	}
	s.mu.Lock()
	s.repos[name] = v
	s.mu.Unlock()
}

// finish logs, records and announces an outcome.
func (s *Service) finish(ctx context.Context, g *generation, t task, o *Outcome) {
	o.Duration = time.Since(o.Start).Seconds()
	o.Message = g.scrub.Scrub(o.Message)
	for i := range o.Sources {
		o.Sources[i].Message = g.scrub.Scrub(o.Sources[i].Message)
	}
	attrs := []any{"task", t.Name, "job", o.Job, "kind", t.Kind, "repository", t.Repo, "outcome", o.Status,
		"duration_seconds", round3(o.Duration), "bytes_added", o.BytesAdded}
	if o.Reason != "" {
		attrs = append(attrs, "reason", o.Reason)
	}
	if len(o.Snapshots) > 0 {
		attrs = append(attrs, "snapshots", o.Snapshots)
	}
	attrs = append(attrs, "message", o.Message)
	for _, so := range o.Sources {
		s.log.Info("source done", "task", t.Name, "job", o.Job, "source", so.Source, "outcome", so.Status, "reason", so.Reason,
			"snapshot", so.Snapshot, "bytes_added", so.BytesAdded, "logical_bytes", so.Logical,
			"duration_seconds", round3(so.Duration), "message", so.Message)
	}
	switch o.Status {
	case StatusFailure:
		s.log.Error("run failed", attrs...)
	case StatusSkipped:
		s.log.Info("run skipped", attrs...)
	default:
		s.log.Info("run succeeded", attrs...)
	}
	s.metrics.observe(o)

	st := s.state(t.Name)
	s.mu.Lock()
	prev := st.LastResult
	st.Last = o
	end := o.Start.Add(time.Duration(o.Duration * float64(time.Second)))
	switch o.Status {
	case StatusSuccess:
		st.LastResult, st.LastSuccess = StatusSuccess, end
	case StatusFailure:
		st.LastResult, st.LastFailure = StatusFailure, end
	}
	cp := *st
	s.mu.Unlock()
	if o.Reason != ReasonAlreadyRunning { // the running holder owns the state file
		if err := saveState(s.stateDir, t.Name, &cp); err != nil {
			s.log.Warn("save state", "task", t.Name, "error", err.Error())
		}
	}

	kind := ""
	switch {
	case o.Status == StatusFailure:
		kind = notify.Failure
	case o.Status == StatusSuccess && prev == StatusFailure:
		kind = notify.Recovery
	case o.Status == StatusSuccess:
		kind = notify.Success
	case o.Status == StatusSkipped:
		kind = notify.Skip
	}
	var sources []string
	if t.Job != nil {
		sources = append(sources, t.Job.Source...)
		if cl := g.cfg.Clones[t.Job.Clone]; t.Job.Clone != "" && cl != nil {
			sources = append(sources, cl.From.Source)
		}
	}
	g.notifier.Send(ctx, notify.Event{Kind: kind, Job: t.Name, Outcome: o.Status, Message: o.Message,
		Sources: sources, Repository: t.Repo, Snapshots: shortIDs(o.Snapshots), BytesAdded: o.BytesAdded,
		Duration: round3(o.Duration), Time: end})
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if len(id) > 8 {
			id = id[:8]
		}
		out[i] = id
	}
	return out
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// hostname for logs and the status page.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
