package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/retention"
)

// ForgetGroup is the verdict for one source.
type ForgetGroup struct {
	Source    string
	Decisions []retention.Decision
}

// ForgetResult says what forget kept and removed.
type ForgetResult struct {
	Groups  []ForgetGroup
	Removed []*manifest.Snapshot
	DryRun  bool
}

// Forget applies keep rules per source (only to source when given) and
// removes the snapshots no rule keeps. It holds an exclusive lock.
func (a *App) Forget(ctx context.Context, repo *repository.Repository, p retention.Policy, source string, dryRun bool) (*ForgetResult, error) {
	if p.Empty() {
		return nil, Usagef("forget needs at least one keep rule (--keep-last, --keep-daily, --keep-within, …); it never removes everything")
	}
	if err := a.RefuseNoLock("forget"); err != nil {
		return nil, err
	}
	lock, err := repo.Lock(ctx, true, "forget", LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock() //nolint:errcheck // best effort
	all, err := repo.List(ctx)
	if err != nil {
		return nil, err
	}
	groups := GroupBySource(all)
	match := func(string) bool { return true }
	if source != "" {
		m, _ := a.SourceMatcher(source)
		match = func(name string) bool {
			for _, s := range groups[name] {
				if m(s.Source) {
					return true
				}
			}
			return false
		}
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		if match(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	res := &ForgetResult{DryRun: dryRun}
	for _, n := range names {
		ds := retention.Apply(groups[n], p)
		res.Groups = append(res.Groups, ForgetGroup{Source: n, Decisions: ds})
		for _, d := range ds {
			if !d.Keep {
				res.Removed = append(res.Removed, d.Snapshot)
			}
		}
	}
	if dryRun {
		return res, nil
	}
	for _, s := range res.Removed {
		if err := repo.RemoveSnapshot(ctx, s.ID); err != nil {
			return res, fmt.Errorf("forget snapshot %s: %w", s.ShortID(), err)
		}
	}
	return res, nil
}

// ForgetIDs removes the named snapshots (full ids or unique prefixes),
// damaged ones included, under an exclusive lock, and returns their full
// ids. Nothing is removed when any ref matches no snapshot or several.
func (a *App) ForgetIDs(ctx context.Context, repo *repository.Repository, refs []string, dryRun bool) ([]string, error) {
	if err := a.RefuseNoLock("forget"); err != nil {
		return nil, err
	}
	lock, err := repo.Lock(ctx, true, "forget", LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock() //nolint:errcheck // best effort
	ids, err := repo.ResolveIDs(ctx, refs)
	if err != nil {
		return nil, err
	}
	if dryRun {
		return ids, nil
	}
	for i, id := range ids {
		if err := repo.RemoveSnapshot(ctx, id); err != nil {
			return ids[:i], fmt.Errorf("forget snapshot %s: %w", id[:8], err)
		}
	}
	return ids, nil
}

// Prune removes unreferenced data under an exclusive lock.
func (a *App) Prune(ctx context.Context, repo *repository.Repository) (*repository.PruneReport, error) {
	if err := a.RefuseNoLock("prune"); err != nil {
		return nil, err
	}
	lock, err := repo.Lock(ctx, true, "prune", LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock() //nolint:errcheck // best effort
	return repo.Prune(ctx, false)
}

// TableVerdict compares one table after a test restore.
type TableVerdict struct {
	Table        string `json:"table"`
	WantRows     int64  `json:"want_rows"`
	GotRows      int64  `json:"got_rows"`
	WantChecksum string `json:"want_checksum"`
	GotChecksum  string `json:"got_checksum"`
	OK           bool   `json:"ok"`
	Problem      string `json:"problem,omitempty"`
}

// VerifyResult is the outcome of a test restore.
type VerifyResult struct {
	Snapshot *manifest.Snapshot `json:"-"`
	Scratch  string             `json:"scratch"`
	Tables   []TableVerdict     `json:"tables"`
	// DroppedLeftovers are scratch databases of earlier verifies that did
	// not finish, dropped before this one.
	DroppedLeftovers []string      `json:"dropped_leftovers,omitempty"`
	OK               bool          `json:"ok"`
	Duration         time.Duration `json:"-"`
}

// Verify restores a snapshot into a scratch database, recomputes every
// table's row count and checksum, compares them with the manifest and
// drops the scratch database.
func (a *App) Verify(ctx context.Context, repo *repository.Repository, snap *manifest.Snapshot, scratch string, jobs int, p *progress.Progress) (*VerifyResult, error) {
	res, err := a.verify(ctx, repo, snap, scratch, jobs, p)
	if err != nil && ctx.Err() != nil {
		// Interrupted: the step under way failed because of it; the
		// scratch database is dropped on the way out, or by the next
		// verify when this process was killed.
		return nil, fmt.Errorf("verify of snapshot %s interrupted: %w", snap.ShortID(), context.Cause(ctx))
	}
	return res, err
}

func (a *App) verify(ctx context.Context, repo *repository.Repository, snap *manifest.Snapshot, scratch string, jobs int, p *progress.Progress) (*VerifyResult, error) {
	start := time.Now()
	eng, err := a.Engines.Get(snap.Engine)
	if err != nil {
		return nil, err
	}
	sc, ok1 := eng.(engine.Scratcher)
	cs, ok2 := eng.(engine.Checksummer)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("verify of %s snapshots: %w", snap.Engine, engine.ErrUnsupported)
	}
	var server *dsn.DSN
	if scratch != "" {
		server, err = a.Target(scratch)
		if err != nil {
			return nil, err
		}
		if server.Engine != snap.Engine {
			return nil, Usagef("--scratch %s is a %s server but snapshot %s is a %s snapshot", server, server.Engine, snap.ShortID(), snap.Engine)
		}
	} else if snap.Engine != dsn.SQLite {
		return nil, Usagef("verify of a %s snapshot needs --scratch with a server DSN where a scratch database may be created (e.g. %s://user@host:port/)", snap.Engine, snap.Engine)
	}
	name := fmt.Sprintf("%s%s_%d", scratchPrefix, snap.ShortID(), time.Now().UnixNano()%1e9)
	var db *dsn.DSN
	var dropped []string
	if lab, ok := eng.(engine.ScratchLabeler); ok && server != nil {
		if dropped, err = a.dropLeftoverScratch(ctx, sc, lab, server); err != nil {
			a.Logger.Warn("drop leftover scratch databases", "err", err)
		}
		db, err = lab.CreateLabeledScratch(ctx, server, name, newScratchMarker(time.Now()).String())
		if err != nil && db != nil {
			_ = sc.DropScratch(context.WithoutCancel(ctx), db)
		}
	} else {
		db, err = sc.CreateScratch(ctx, server, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		if err := sc.DropScratch(context.WithoutCancel(ctx), db); err != nil {
			a.Logger.Warn("drop scratch database", "db", db.String(), "err", err)
		}
	}()
	res := &VerifyResult{Snapshot: snap, Scratch: db.String(), DroppedLeftovers: dropped}
	if err := a.restore(ctx, repo, snap, db, RestoreOptions{Jobs: jobs, NoOwner: true, NoPrivileges: true, Logger: a.Logger, Progress: p}); err != nil {
		return nil, err
	}
	var total int64
	for _, t := range snap.Tables {
		total += t.Bytes
	}
	p.Restart(fmt.Sprintf("verify %s: checksums", snap.ShortID()), total)
	copts := engine.ChecksumOptions{Jobs: jobs, Progress: p, Private: true}
	var got []manifest.Table
	if cm, ok := eng.(engine.ChecksumMatcher); ok {
		got, err = cm.ChecksumsLike(ctx, db, snap.Tables, copts)
	} else {
		got, err = cs.Checksums(ctx, db, nil, copts)
	}
	if err != nil {
		return nil, fmt.Errorf("checksum scratch database: %w", err)
	}
	res.Tables, res.OK = CompareTables(snap.Tables, got)
	res.Duration = time.Since(start)
	return res, nil
}

// CompareTables compares manifest tables with recomputed ones.
func CompareTables(want, got []manifest.Table) ([]TableVerdict, bool) {
	gm := map[string]manifest.Table{}
	for _, t := range got {
		gm[t.Name] = t
	}
	ok := true
	var out []TableVerdict
	for _, w := range want {
		g, present := gm[w.Name]
		v := TableVerdict{Table: w.Name, WantRows: w.Rows, WantChecksum: w.Checksum, GotRows: g.Rows, GotChecksum: g.Checksum}
		var problems []string
		if !present {
			problems = append(problems, "table missing after restore")
		} else {
			if g.Rows != w.Rows {
				problems = append(problems, fmt.Sprintf("rows %d, manifest says %d", g.Rows, w.Rows))
			}
			if g.Checksum != w.Checksum {
				problems = append(problems, "checksum differs")
			}
		}
		delete(gm, w.Name)
		v.OK = len(problems) == 0
		v.Problem = strings.Join(problems, "; ")
		if !v.OK {
			ok = false
		}
		out = append(out, v)
	}
	for name, g := range gm {
		ok = false
		out = append(out, TableVerdict{Table: name, GotRows: g.Rows, GotChecksum: g.Checksum, Problem: "table not in the manifest"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, ok
}
