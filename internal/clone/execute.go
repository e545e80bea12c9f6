package clone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/hooks"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
)

// Result is what a clone did.
type Result struct {
	Plan      *Plan              `json:"plan"`
	Snapshot  string             `json:"snapshot"`
	Kept      *engine.KeepReport `json:"kept,omitempty"`
	Reset     int                `json:"passwords_reset,omitempty"`
	Previous  string             `json:"previous,omitempty"` // the kept previous copy
	Leftovers []string           `json:"dropped_leftovers,omitempty"`
	Duration  time.Duration      `json:"-"`
}

// run holds one clone's state.
type run struct {
	c     *Cloner
	s     *Spec
	p     *Plan
	res   *Result
	repo  *repository.Repository
	snap  *manifest.Snapshot
	label Record // the build's record
}

// Execute runs a planned clone. On any error, or when killed, the target
// is as it was (swap: true); what was built is dropped now, or by the next
// clone when the process died.
func (c *Cloner) Execute(ctx context.Context, s *Spec, p *Plan) (*Result, error) {
	start := time.Now()
	r := &run{c: c, s: s, p: p, res: &Result{Plan: p}}
	defer func() {
		if r.repo != nil {
			r.repo.Close()
		}
	}()
	cleanup, err := r.snapshot(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return nil, err
	}
	r.res.Snapshot = r.snap.ID
	r.label = newRecord("build", s.Name, p.target.String(), time.Now())
	r.label.Snapshot, r.label.Source, r.label.SnapshotTime = r.snap.ID, r.snap.Source, r.snap.Time.UTC()
	reader := engine.SnapshotReader(r.repo.Reader(r.snap))
	reader = filterReader(reader, s.Tables)
	if c.Wrap != nil {
		reader = c.Wrap(reader)
	}
	switch p.TargetKind {
	case "sql-file", "tar.gz":
		err = r.toFile(ctx, reader)
	case "sqlite":
		err = r.toSQLite(ctx, reader)
	default:
		err = r.toDatabase(ctx, reader)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("clone %s interrupted, the target %s was not changed: %w", s.Name, p.Target, context.Cause(ctx))
		}
		return nil, err
	}
	r.res.Duration = time.Since(start)
	c.App.Logger.Info("clone done", "clone", s.Name, "snapshot", r.snap.ShortID(), "target", p.Target, "duration_seconds", r.res.Duration.Round(time.Millisecond).Seconds())
	return r.res, nil
}

// snapshot takes the fresh snapshot (into a temporary repository when
// none is named) or opens the stored one.
func (r *run) snapshot(ctx context.Context) (func(), error) {
	a := r.c.App
	if !r.p.Fresh {
		repo, err := a.OpenRepository(ctx, r.p.repoName)
		if err != nil {
			return nil, err
		}
		r.repo = repo
		snap, err := repo.Find(ctx, r.p.Snapshot, "")
		if err != nil {
			return nil, err
		}
		r.snap = snap
		return nil, nil
	}
	var cleanup func()
	if r.p.repoName == "" || r.p.repoName == "none" {
		removeDeadTempRepos(a)
		dir, err := os.MkdirTemp("", tempRepoPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return nil, fmt.Errorf("clone %s: temporary repository: %w", r.s.Name, err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		pw := make([]byte, 24)
		_, _ = rand.Read(pw)
		be, err := app.OpenBackend(ctx, dir)
		if err != nil {
			return cleanup, err
		}
		repo, err := repository.Init(ctx, be, repository.InitOptions{Password: []byte(hex.EncodeToString(pw))}, a.Logger)
		if err != nil {
			be.Close()
			return cleanup, fmt.Errorf("clone %s: temporary repository: %w", r.s.Name, err)
		}
		r.repo = repo
	} else {
		repo, err := a.OpenRepository(ctx, r.p.repoName)
		if err != nil {
			return nil, err
		}
		r.repo = repo
	}
	r.c.Progress.Restart("clone "+r.s.Name+": snapshot", 0)
	out, err := a.Backup(ctx, r.repo, r.p.source, app.BackupOptions{Progress: r.c.Progress})
	if err != nil {
		return cleanup, fmt.Errorf("clone %s: %w", r.s.Name, err)
	}
	r.snap = out.Snapshot
	r.p.Snapshot = out.Snapshot.ID
	return cleanup, nil
}

// load restores (or, across engines, imports) the snapshot into db.
func (r *run) load(ctx context.Context, reader engine.SnapshotReader, db *dsn.DSN, clean bool) error {
	a := r.c.App
	eng, err := a.Engine(db)
	if err != nil {
		return err
	}
	snap := reader.Manifest()
	r.c.Progress.Restart("clone "+r.s.Name+": load "+snap.ShortID(), snap.LogicalBytes)
	opts := engine.RestoreOptions{Tables: chosenTables(snap, r.s.Tables), Clean: clean, NoOwner: true, NoPrivileges: true,
		Logger: a.Logger.With("clone", r.s.Name), Progress: r.c.Progress}
	if snap.Engine == db.Engine {
		if err := eng.Restore(ctx, reader, db, opts); err != nil {
			return fmt.Errorf("clone %s: load snapshot %s: %w", r.s.Name, snap.ShortID(), err)
		}
		return nil
	}
	srcEng, err := a.Engines.Get(snap.Engine)
	if err != nil {
		return err
	}
	rr, ok1 := srcEng.(engine.RowReader)
	im, ok2 := eng.(engine.Importer)
	if !ok1 || !ok2 {
		return app.Usagef("clone %s: from %s to %s: %v", r.s.Name, snap.Engine, db.Engine, engine.ErrUnsupported)
	}
	schema, err := rr.Schema(ctx, reader)
	if err != nil {
		return fmt.Errorf("clone %s: read the snapshot's tables: %w", r.s.Name, err)
	}
	if opts.Tables != nil {
		want := map[string]bool{}
		for _, t := range opts.Tables {
			want[t] = true
		}
		var keep []engine.TableSchema
		for _, t := range schema {
			if want[t.Name] {
				keep = append(keep, t)
			}
		}
		schema = keep
	}
	opts.Tables = nil
	err = im.Import(ctx, db, schema, func(table string, fn func(row []any) error) error {
		return rr.ReadRows(ctx, reader, table, fn)
	}, opts)
	if err != nil {
		return fmt.Errorf("clone %s: load snapshot %s into %s: %w", r.s.Name, snap.ShortID(), db.Engine, err)
	}
	return nil
}

// finish does what follows the load on the new copy db: kept rows, key
// offset, users, post hooks. old is the current target (nil when none);
// final is the name the copy will have (MySQL/MariaDB grants name it).
func (r *run) finish(ctx context.Context, db, old, final *dsn.DSN) error {
	a := r.c.App
	s := r.s
	eng, err := a.Engine(db)
	if err != nil {
		return err
	}
	if len(s.Keep) > 0 && old != nil {
		rk := eng.(engine.RowKeeper) // checked by Plan
		rep, err := rk.KeepRows(ctx, old, db, s.Keep, engine.KeepOptions{OnConflict: s.OnConflict, Orphans: s.Orphans, Logger: a.Logger.With("clone", s.Name)})
		if err != nil {
			return fmt.Errorf("clone %s: keep rows: %w", s.Name, err)
		}
		r.res.Kept = &rep
	}
	if s.KeyOffset > 0 {
		if err := eng.(engine.RowKeeper).RestartKeys(ctx, db, s.KeyOffset); err != nil {
			return fmt.Errorf("clone %s: key_offset: %w", s.Name, err)
		}
	}
	if len(s.Users) > 0 || s.ResetOtherPasswords {
		cm := eng.(engine.CredentialManager)
		grantOn := db
		if db.Engine == dsn.MySQL {
			// Grants name a database: the target's final name, where
			// RENAME TABLE moves the copy's tables.
			grantOn = final
		}
		if len(s.Users) > 0 {
			if err := cm.CreateUsers(ctx, grantOn, s.Users); err != nil {
				return fmt.Errorf("clone %s: create users: %w", s.Name, err)
			}
		}
		if s.ResetOtherPasswords {
			keep := make([]string, 0, len(s.Users))
			for _, u := range s.Users {
				keep = append(keep, u.Name)
			}
			changed, err := cm.ResetOtherPasswords(ctx, db, keep)
			if err != nil {
				return fmt.Errorf("clone %s: reset other passwords: %w", s.Name, err)
			}
			r.res.Reset = len(changed)
		}
	}
	return r.hooks(ctx, "post", s.Post, db)
}

// hooks runs a hook list on db, handing commands the copy's DSN with the
// first configured user's credentials (never the management login's).
func (r *run) hooks(ctx context.Context, kind string, list []Hook, db *dsn.DSN) error {
	if len(list) == 0 {
		return nil
	}
	eng, err := r.c.App.Engine(db)
	if err != nil {
		return err
	}
	runner, _ := eng.(engine.SQLRunner)
	run := r.c.Hooks
	if run == nil {
		run = hooks.Run
	}
	opts := hooks.Options{TargetDSN: r.hookDSN(db).Raw, Env: []string{"SNAPDATA_CLONE=" + r.s.Name}, Dir: r.s.HookDir,
		Logger: r.c.App.Logger.With("clone", r.s.Name, "hooks", kind)}
	if err := run(ctx, runner, db, list, opts); err != nil {
		return fmt.Errorf("clone %s: %s hook failed, the target was not changed: %w", r.s.Name, kind, err)
	}
	return nil
}

// hookDSN is the DSN command hooks get: db with the first configured
// user's credentials; without users, or on MySQL/MariaDB (where the users
// are granted the target's final name only), db with the clone's own
// login, the target's management login (never the source's).
func (r *run) hookDSN(db *dsn.DSN) *dsn.DSN {
	if db.URL == nil || db.Engine == dsn.MySQL || len(r.s.Users) == 0 {
		return db
	}
	u := *db.URL
	u.User = url.UserPassword(r.s.Users[0].Name, r.s.Users[0].Password)
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return &dsn.DSN{Engine: db.Engine, Raw: u.String(), URL: &u}
}

// tempRepoPrefix names the temporary repositories of clones (in
// os.TempDir), followed by the PID of the clone that made it.
const tempRepoPrefix = "snapdata-clone-repo-"

// removeDeadTempRepos removes the temporary repositories of clones that
// were killed.
func removeDeadTempRepos(a *app.App) {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempRepoPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		full := filepath.Join(os.TempDir(), e.Name())
		if err := os.RemoveAll(full); err == nil {
			a.Logger.Warn("removed the temporary repository of an earlier clone that did not finish", "dir", full)
		}
	}
}
