package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

// LockWait is how long operations wait for a conflicting lock.
const LockWait = 30 * time.Second

// BackupOptions tune one backup.
type BackupOptions struct {
	Tags          []string
	SkipUnchanged bool
	Jobs          int
	Progress      *progress.Progress
	RowOrder      string // overrides the source's row_order when set
	TextCopy      bool   // PostgreSQL: read every table as COPY text
}

// BackupOutcome is what a backup did.
type BackupOutcome struct {
	Snapshot *manifest.Snapshot // the new snapshot; nil when skipped
	Skipped  bool
	Reason   string             // why it was skipped
	Parent   *manifest.Snapshot // the source's previous snapshot, if any
}

// latestOf returns the newest snapshot of a source, or nil.
func (a *App) latestOf(ctx context.Context, repo *repository.Repository, source string) (*manifest.Snapshot, error) {
	s, err := a.FindSnapshot(ctx, repo, "latest", source)
	if errors.Is(err, repository.ErrSnapshotNotFound) {
		return nil, nil
	}
	return s, err
}

// Backup takes one snapshot of src. On any error nothing is committed: the
// manifest is written last, after every chunk is stored.
func (a *App) Backup(ctx context.Context, repo *repository.Repository, src Source, opts BackupOptions) (*BackupOutcome, error) {
	out, err := a.backup(ctx, repo, src, opts)
	if err != nil && ctx.Err() != nil {
		// Interrupted (Ctrl-C, SIGTERM, a daemon stopping): whatever step
		// was under way failed because of it, and naming that step (the
		// repository listing, say) would blame the wrong thing.
		var noAnswer *engine.NoAnswerError
		if !errors.As(err, &noAnswer) {
			return nil, fmt.Errorf("backup of %s interrupted, no snapshot was written: %w", src.Name, context.Cause(ctx))
		}
	}
	return out, err
}

func (a *App) backup(ctx context.Context, repo *repository.Repository, src Source, opts BackupOptions) (*BackupOutcome, error) {
	eng, err := a.Engine(src.DSN)
	if err != nil {
		return nil, err
	}
	rowOrder := src.RowOrder
	if opts.RowOrder != "" {
		rowOrder = opts.RowOrder
	}
	switch rowOrder {
	case "", engine.RowOrderKey:
	case engine.RowOrderPhysical:
		if _, ok := eng.(engine.PhysicalOrderer); !ok {
			return nil, Usagef("source %s: row order %q is supported for PostgreSQL sources only (%s reads in key order)", src.Name, rowOrder, eng.Name())
		}
	default:
		return nil, Usagef("source %s: row order %q: expected key or physical", src.Name, rowOrder)
	}
	if err := a.RefuseNoLock("backup"); err != nil {
		return nil, err
	}
	lock, err := repo.Lock(ctx, false, "backup of "+src.Name, LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock() //nolint:errcheck // best effort; a stale lock is detected later
	start := time.Now()
	parent, err := a.latestOf(ctx, repo, src.Name)
	if err != nil {
		return nil, err
	}
	out := &BackupOutcome{Parent: parent}
	fp := ""
	if f, ok := eng.(engine.Fingerprinter); ok {
		fp, err = f.Fingerprint(ctx, src.DSN)
		var noAnswer *engine.NoAnswerError
		if errors.As(err, &noAnswer) {
			// The server does not answer: the backup would only wait for
			// it again after listing the repository.
			return nil, fmt.Errorf("backup of %s failed, no snapshot was written: %w", src.Name, err)
		}
		if err != nil {
			a.Logger.Debug("fingerprint unavailable", "source", src.Name, "err", err)
			fp = ""
		}
	}
	if opts.SkipUnchanged && parent != nil && fp != "" && parent.Fingerprint == fp {
		out.Skipped = true
		out.Reason = fmt.Sprintf("unchanged since snapshot %s (server change marker is the same; no data read)", parent.ShortID())
		return out, nil
	}
	sess, err := repo.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	res, err := eng.Backup(ctx, src.DSN, engine.BackupOptions{Jobs: opts.Jobs, Progress: opts.Progress, Logger: a.Logger.With("source", src.Name), RowOrder: rowOrder, TextCopy: opts.TextCopy}, sess)
	if err != nil {
		_ = sess.Wait()
		return nil, fmt.Errorf("backup of %s failed, no snapshot was written: %w", src.Name, err)
	}
	if src.Globals {
		if err := a.backupGlobals(ctx, eng, src, sess, !repo.Encrypted(), res); err != nil {
			_ = sess.Wait()
			return nil, fmt.Errorf("backup of %s failed, no snapshot was written: %w", src.Name, err)
		}
	}
	host, _ := os.Hostname()
	tags := append(append([]string{}, src.Tags...), opts.Tags...)
	snap := &manifest.Snapshot{
		Time:          start.UTC(),
		Host:          host,
		Source:        src.Name,
		Engine:        eng.Name(),
		EngineVersion: res.EngineVersion,
		Database:      res.Database,
		Tags:          tags,
		Tables:        res.Tables,
		Meta:          res.Meta,
	}
	if res.Fingerprint != "" {
		snap.Fingerprint = res.Fingerprint
	} else {
		snap.Fingerprint = fp
	}
	if parent != nil {
		snap.Parent = parent.ID
	}
	if err := sess.Wait(); err != nil {
		return nil, fmt.Errorf("backup of %s failed, no snapshot was written: %w", src.Name, err)
	}
	if opts.SkipUnchanged && parent != nil {
		cand := *snap
		cand.Streams = sess.Streams()
		cand.Normalize()
		if manifest.SameData(&cand, parent) {
			out.Skipped = true
			out.Reason = fmt.Sprintf("data identical to snapshot %s", parent.ShortID())
			return out, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backup of %s cancelled, no snapshot was written: %w", src.Name, err)
	}
	snap.Duration = time.Since(start).Seconds()
	if _, err := sess.Commit(ctx, snap); err != nil {
		return nil, fmt.Errorf("backup of %s failed, no snapshot was written: %w", src.Name, err)
	}
	out.Snapshot = snap
	a.Logger.Info("backup done", "source", src.Name, "snapshot", snap.ShortID(), "logical_bytes", snap.LogicalBytes, "added_bytes", snap.AddedBytes, "duration_seconds", time.Since(start).Round(time.Millisecond).Seconds())
	return out, nil
}

// backupGlobals adds the server's roles or accounts to the snapshot of one
// database of an --all-databases backup: every database's snapshot holds
// the same stream, which dedup stores once, so any of them restores the
// roles. Its notes (and what could not be stored) go to the manifest Meta.
// Password hashes are stored in encrypted repositories only.
func (a *App) backupGlobals(ctx context.Context, eng engine.Engine, src Source, sink engine.Sink, noSecrets bool, res *engine.BackupResult) error {
	gb, ok := eng.(engine.GlobalsBackuper)
	if !ok {
		return nil
	}
	meta, err := gb.BackupGlobals(ctx, src.DSN, sink, engine.GlobalsBackupOptions{NoSecrets: noSecrets, Logger: a.Logger.With("source", src.Name)})
	if err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if res.Meta == nil {
		res.Meta = map[string]string{}
	}
	for k, v := range meta {
		res.Meta[k] = v
	}
	return nil
}

// RestoreRoles recreates the roles or accounts that an --all-databases
// snapshot holds on the server of target (restore --roles): only those the
// server lacks; existing ones are left as they are and none is dropped.
// A snapshot without them is a usage error, before any change.
func (a *App) RestoreRoles(ctx context.Context, repo *repository.Repository, snap *manifest.Snapshot, target *dsn.DSN, dryRun bool) (*engine.GlobalsReport, error) {
	if snap.Engine != target.Engine {
		return nil, Usagef("snapshot %s holds a %s database and cannot be restored into %s", snap.ShortID(), snap.Engine, target)
	}
	eng, err := a.Engine(target)
	if err != nil {
		return nil, err
	}
	gr, ok := eng.(engine.GlobalsRestorer)
	if !ok {
		return nil, Usagef("--roles: %s has no roles or accounts to restore", eng.Name())
	}
	has := false
	for _, st := range snap.Streams {
		has = has || st.Name == engine.GlobalsStream
	}
	if !has {
		return nil, &UsageError{Err: fmt.Errorf("--roles: snapshot %s: %w", snap.ShortID(), engine.ErrNoGlobals)}
	}
	unlock, err := a.ReadLock(ctx, repo, "restore of the roles of "+snap.ShortID())
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep, err := gr.RestoreGlobals(ctx, repo.Reader(snap), target, engine.GlobalsOptions{DryRun: dryRun, SourceDatabase: snap.Database, Database: target.Database(), Logger: a.Logger})
	if err != nil {
		return nil, fmt.Errorf("restore roles of snapshot %s into %s: %w", snap.ShortID(), target, err)
	}
	for _, act := range rep.Actions {
		a.Logger.Info("role", "name", act.Name, "action", act.Action, "detail", act.Detail, "dry_run", dryRun)
	}
	return rep, nil
}

// RestoreOptions tune a restore.
type RestoreOptions = engine.RestoreOptions

// Restore writes a snapshot into target. When it fails after changing the
// target, its error says what the target may hold and how to retry.
func (a *App) Restore(ctx context.Context, repo *repository.Repository, snap *manifest.Snapshot, target *dsn.DSN, opts RestoreOptions) error {
	err := a.restore(ctx, repo, snap, target, opts)
	if err != nil && ctx.Err() != nil {
		// Interrupted (Ctrl-C, SIGTERM): say so rather than name the step
		// that the cancellation broke.
		changed := errors.Is(err, engine.ErrTargetChanged)
		err = fmt.Errorf("restore of snapshot %s into %s interrupted: %w", snap.ShortID(), target, context.Cause(ctx))
		if changed {
			err = engine.TargetChanged(err)
		}
	}
	if err != nil && errors.Is(err, engine.ErrTargetChanged) {
		return restoreHint(target, opts.Tables, err)
	}
	return err
}

func (a *App) restore(ctx context.Context, repo *repository.Repository, snap *manifest.Snapshot, target *dsn.DSN, opts RestoreOptions) error {
	if err := a.CheckProtect(ctx, target); err != nil {
		return err
	}
	if snap.Engine != target.Engine {
		return Usagef("snapshot %s holds a %s database and cannot be restored into %s (use 'snapdata export --format tar.gz' and 'snapdata import' to move data between engines)", snap.ShortID(), snap.Engine, target)
	}
	eng, err := a.Engine(target)
	if err != nil {
		return err
	}
	unlock, err := a.ReadLock(ctx, repo, "restore of "+snap.ShortID())
	if err != nil {
		return err
	}
	defer unlock()
	if opts.Logger == nil {
		opts.Logger = a.Logger
	}
	if err := eng.Restore(ctx, repo.Reader(snap), target, opts); err != nil {
		return fmt.Errorf("restore of snapshot %s into %s: %w", snap.ShortID(), target, err)
	}
	return nil
}

// restoreHint adds to the error of a restore that failed or was
// interrupted after changing its target what the target may hold and how
// to retry.
func restoreHint(target *dsn.DSN, tables []string, err error) error {
	if len(tables) == 0 {
		return fmt.Errorf("%w\ndatabase %s may hold part of the snapshot: run the same restore with --clean to replace it", err, target.Database())
	}
	var flags strings.Builder
	for _, t := range tables {
		flags.WriteString(" --table ")
		flags.WriteString(shellQuote(t))
	}
	return fmt.Errorf("%w\nthe chosen tables of database %s may be missing or partly restored (the other tables were not touched): run the same restore with --clean%s to replace them",
		err, target.Database(), flags.String())
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r == '.' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
