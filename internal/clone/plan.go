package clone

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/guard"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

// Plan is everything a clone will do, printed by --dry-run and logged
// before a run. It never holds a password.
type Plan struct {
	Clone        string     `json:"clone"`
	Source       string     `json:"source"`
	Fresh        bool       `json:"fresh_snapshot"` // a new snapshot of the live source is taken first
	Repository   string     `json:"repository"`     // where the snapshot is (or goes); "temporary" for none
	Snapshot     string     `json:"snapshot,omitempty"`
	SnapshotTime *time.Time `json:"snapshot_time,omitempty"`
	// TablesFrom says which snapshot the table figures come from (for a
	// fresh snapshot: the source's latest, as an estimate).
	TablesFrom   string      `json:"tables_from,omitempty"`
	Target       string      `json:"target"`
	TargetKind   string      `json:"target_kind"` // database, sqlite, sql-file, tar.gz
	Engine       string      `json:"engine,omitempty"`
	TargetEngine string      `json:"target_engine"`
	CrossEngine  bool        `json:"cross_engine,omitempty"`
	AllowedBy    string      `json:"allowed_by"`
	TargetExists bool        `json:"target_exists"`
	Tables       []PlanTable `json:"tables"`
	Users        []PlanUser  `json:"users,omitempty"`
	// ResetPasswords lists the logins that get a random password.
	ResetOtherPasswords bool               `json:"reset_other_passwords,omitempty"`
	ResetPasswords      []string           `json:"reset_passwords,omitempty"`
	Keep                []PlanKeep         `json:"keep_rows,omitempty"`
	KeptNow             *engine.KeepReport `json:"kept_now,omitempty"`
	KeyOffset           int64              `json:"key_offset,omitempty"`
	Hooks               PlanHooks          `json:"hooks"`
	Swap                bool               `json:"swap"`
	Steps               []string           `json:"steps"`

	// What Execute needs, resolved once.
	target   guard.Target
	snap     *manifest.Snapshot // stored snapshot (nil: fresh)
	source   app.Source
	repoName string
}

// PlanTable is one table of the copy.
type PlanTable struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
	Data  bool   `json:"data"` // false: schema only (exclude_data)
}

// PlanUser is a user to create (never its password).
type PlanUser struct {
	Name   string        `json:"name"`
	Access engine.Access `json:"access"`
}

// PlanKeep is a keep_rows rule.
type PlanKeep struct {
	Rule string `json:"rule"`
}

// PlanHooks lists the hooks.
type PlanHooks struct {
	PreData []string `json:"pre_data,omitempty"`
	Post    []string `json:"post,omitempty"`
}

// Cloner runs clones.
type Cloner struct {
	App *app.App
	// Wrap, when set, wraps the snapshot reader on its way to the
	// target (the masking slot): the target engine reads only what it
	// returns.
	Wrap func(engine.SnapshotReader) engine.SnapshotReader
	// Hooks runs hooks; nil: the clone's own runner.
	Hooks HookRunner
	// Progress reports the snapshot and the load; may be nil.
	Progress *progress.Progress
}

func targetKind(t guard.Target) string {
	switch {
	case t.DSN != nil && t.DSN.Engine == dsn.SQLite:
		return "sqlite"
	case t.DSN != nil:
		return "database"
	case strings.HasSuffix(t.File, ".tar.gz"):
		return "tar.gz"
	}
	return "sql-file"
}

// Plan resolves a clone without writing anything: the guard, the
// snapshot, what the target holds now, and the steps.
func (c *Cloner) Plan(ctx context.Context, s *Spec) (*Plan, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	a := c.App
	src, err := a.Source(s.Source)
	if err != nil {
		return nil, err
	}
	target, err := guard.ParseTarget(s.To, s.Base)
	if err != nil {
		return nil, app.Usagef("clone %s: to: %v", s.Name, err)
	}
	if strings.HasPrefix(s.To, "file:") && !strings.HasSuffix(target.File, ".sql") && !strings.HasSuffix(target.File, ".tar.gz") {
		return nil, app.Usagef("clone %s: to %s: a file target ends in .sql (plain SQL) or .tar.gz (portable export)", s.Name, target)
	}
	srcTarget := guard.Target{DSN: src.DSN}
	g := guard.Guard{Allow: s.Allow, Protect: s.Protect, Base: s.Base}
	if g.Allow == nil {
		g.Allow = []string{}
	}
	rule, err := g.Check(ctx, target, srcTarget)
	if err != nil {
		return nil, err
	}
	p := &Plan{Clone: s.Name, Source: dsn.ShowSource(src.Name), Target: target.String(), TargetKind: targetKind(target),
		AllowedBy: rule, Swap: s.Swap, KeyOffset: s.KeyOffset, ResetOtherPasswords: s.ResetOtherPasswords,
		target: target, source: src}
	for _, u := range s.Users {
		p.Users = append(p.Users, PlanUser{Name: u.Name, Access: u.Access})
	}
	for _, k := range s.Keep {
		p.Keep = append(p.Keep, PlanKeep{Rule: keepString(k)})
	}
	for _, h := range s.PreData {
		p.Hooks.PreData = append(p.Hooks.PreData, h.String())
	}
	for _, h := range s.Post {
		p.Hooks.Post = append(p.Hooks.Post, h.String())
	}
	if err := c.planSnapshot(ctx, s, p); err != nil {
		return nil, err
	}
	if p.TargetKind == "sql-file" || p.TargetKind == "tar.gz" {
		p.TargetEngine = p.Engine
		if len(s.Users) > 0 || s.ResetOtherPasswords || len(s.Keep) > 0 || len(s.PreData)+len(s.Post) > 0 {
			return nil, app.Usagef("clone %s: a file target (%s) gets the snapshot as it is: credentials, keep_rows and hooks need a database target", s.Name, target)
		}
		if len(s.Tables.Include)+len(s.Tables.Exclude) > 0 {
			return nil, app.Usagef("clone %s: tables.include and tables.exclude need a database target (a file target takes every table; tables.exclude_data works)", s.Name)
		}
		if _, err := os.Stat(target.File); err == nil {
			p.TargetExists = true
		}
		p.Steps = c.fileSteps(p)
		return p, nil
	}
	p.TargetEngine = target.DSN.Engine
	p.CrossEngine = p.Engine != "" && p.Engine != p.TargetEngine
	eng, err := a.Engine(target.DSN)
	if err != nil {
		return nil, err
	}
	if err := c.checkCaps(s, eng, target.DSN); err != nil {
		return nil, err
	}
	if err := c.inspectTarget(ctx, s, p, eng); err != nil {
		return nil, err
	}
	p.Steps = c.dbSteps(s, p)
	return p, nil
}

func keepString(k engine.KeepRule) string {
	var b strings.Builder
	if k.Table != "" {
		b.WriteString("table " + k.Table)
	} else {
		b.WriteString("tables " + k.Tables)
	}
	if k.Where != "" {
		b.WriteString(" where " + k.Where)
	}
	if k.KeyAtLeast > 0 {
		fmt.Fprintf(&b, " key at least %d", k.KeyAtLeast)
	}
	return b.String()
}

// planSnapshot finds the stored snapshot, or for a live source the
// repository the fresh one goes to and the source's latest snapshot
// there (for the table figures).
func (c *Cloner) planSnapshot(ctx context.Context, s *Spec, p *Plan) error {
	a := c.App
	p.Engine = p.source.DSN.Engine
	if s.Snapshot != "" {
		p.repoName = s.FromRepository
		repo, err := a.OpenRepository(ctx, s.FromRepository)
		if err != nil {
			return err
		}
		defer repo.Close()
		snap, err := a.FindSnapshot(ctx, repo, s.Snapshot, p.source.Name)
		if err != nil {
			return err
		}
		if s.Snapshot != "latest" {
			match, shown := a.SourceMatcher(p.source.Name)
			if !match(snap.Source) {
				return app.Usagef("clone %s: snapshot %s is a snapshot of %s, not of %s", s.Name, snap.ShortID(), dsn.ShowSource(snap.Source), shown)
			}
		}
		p.snap = snap
		p.Repository = repoLabel(s.FromRepository)
		p.Snapshot = snap.ID
		t := snap.Time
		p.SnapshotTime = &t
		p.Engine = snap.Engine
		p.TablesFrom = "snapshot " + snap.ShortID()
		p.Tables = planTables(snap, s.Tables)
		return nil
	}
	p.Fresh = true
	p.repoName = s.Repository
	if s.Repository == "" || s.Repository == "none" {
		p.Repository = "temporary (removed after the clone)"
		return nil
	}
	p.Repository = s.Repository
	repo, err := a.OpenRepository(ctx, s.Repository)
	if err != nil {
		return err
	}
	defer repo.Close()
	latest, err := a.FindSnapshot(ctx, repo, "latest", p.source.Name)
	if errors.Is(err, repository.ErrSnapshotNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p.TablesFrom = "the source's latest snapshot " + latest.ShortID() + " (the fresh snapshot may differ)"
	p.Tables = planTables(latest, s.Tables)
	return nil
}

func repoLabel(name string) string {
	if name == "" {
		return "default"
	}
	return name
}

func planTables(snap *manifest.Snapshot, t Tables) []PlanTable {
	var out []PlanTable
	for _, tb := range snap.Tables {
		if !t.chosen(tb.Name) {
			continue
		}
		pt := PlanTable{Name: tb.Name, Rows: tb.Rows, Bytes: tb.Bytes, Data: !matchAny(t.ExcludeData, tb.Name)}
		if !pt.Data {
			pt.Rows, pt.Bytes = 0, 0
		}
		out = append(out, pt)
	}
	return out
}

// checkCaps refuses (exit 2) what the target's engine cannot do.
func (c *Cloner) checkCaps(s *Spec, eng engine.Engine, target *dsn.DSN) error {
	if target.Engine == dsn.SQLite && (len(s.Users) > 0 || s.ResetOtherPasswords) {
		return app.Usagef("clone %s: credentials: a SQLite database has no logins (remove credentials.users and reset_other_passwords)", s.Name)
	}
	if len(s.Users) > 0 || s.ResetOtherPasswords {
		if _, ok := eng.(engine.CredentialManager); !ok {
			return app.Usagef("clone %s: credentials: creating users on %s is not available in this build (%v)", s.Name, target.Engine, engine.ErrUnsupported)
		}
	}
	if len(s.Keep) > 0 || s.KeyOffset > 0 {
		if _, ok := eng.(engine.RowKeeper); !ok {
			return app.Usagef("clone %s: keep_rows and key_offset on %s are not available in this build (%v)", s.Name, target.Engine, engine.ErrUnsupported)
		}
	}
	if target.Engine != dsn.SQLite && s.Swap {
		if _, ok := eng.(engine.Swapper); !ok {
			return app.Usagef("clone %s: swap on %s: %v", s.Name, target.Engine, engine.ErrUnsupported)
		}
		if _, ok := eng.(engine.ScratchLabeler); !ok {
			return app.Usagef("clone %s: swap on %s: %v", s.Name, target.Engine, engine.ErrUnsupported)
		}
	}
	return nil
}

// inspectTarget reads (never writes) what the target holds now.
func (c *Cloner) inspectTarget(ctx context.Context, s *Spec, p *Plan, eng engine.Engine) error {
	d := p.target.DSN
	if d.Engine == dsn.SQLite {
		_, err := os.Stat(d.Path)
		p.TargetExists = err == nil
	} else if sw, ok := eng.(engine.Swapper); ok {
		exists, err := sw.DatabaseExists(ctx, d)
		if err != nil {
			return fmt.Errorf("clone %s: look at the target %s: %w", s.Name, d, err)
		}
		p.TargetExists = exists
	}
	if s.ResetOtherPasswords {
		if cm, ok := eng.(engine.CredentialManager); ok {
			on := d
			if !p.TargetExists {
				// Logins are server-wide: ask through a database that exists.
				on = d.WithDatabase(map[string]string{dsn.Postgres: "postgres"}[d.Engine])
			}
			logins, err := cm.Logins(ctx, on)
			if err != nil {
				return fmt.Errorf("clone %s: list the logins of %s: %w", s.Name, d, err)
			}
			keep := map[string]bool{}
			for _, u := range s.Users {
				keep[u.Name] = true
			}
			if d.URL != nil && d.URL.User != nil {
				keep[d.URL.User.Username()] = true
			}
			for _, l := range logins {
				if !keep[l] {
					p.ResetPasswords = append(p.ResetPasswords, l)
				}
			}
		}
	}
	if len(s.Keep) > 0 && p.TargetExists {
		if rk, ok := eng.(engine.RowKeeper); ok {
			rep, err := rk.CountKept(ctx, d, s.Keep)
			if err != nil {
				return fmt.Errorf("clone %s: count the rows keep_rows keeps on %s: %w", s.Name, d, err)
			}
			p.KeptNow = &rep
		}
	}
	return nil
}

func (c *Cloner) fileSteps(p *Plan) []string {
	var st []string
	if p.Fresh {
		st = append(st, fmt.Sprintf("take a snapshot of %s (read-only sessions) into the %s repository", p.Source, p.Repository))
	}
	what := "plain SQL (the engine's own client loads it)"
	if p.TargetKind == "tar.gz" {
		what = "a portable export (snapdata import loads it into any engine)"
	}
	st = append(st, "write the snapshot as "+what+" to a temporary file beside "+p.target.File,
		"rename the temporary file to "+p.target.File+" (atomic)")
	return st
}

func (c *Cloner) dbSteps(s *Spec, p *Plan) []string {
	var st []string
	if p.Fresh {
		st = append(st, fmt.Sprintf("take a snapshot of %s (read-only sessions) into the %s repository", p.Source, p.Repository))
	}
	d := p.target.DSN
	built := "the target " + d.Database()
	if s.Swap {
		st = append(st, "drop leftovers of earlier clones of this target that were killed (only those whose label proves it)")
		if d.Engine == dsn.SQLite {
			built = "a new file beside " + d.Path
		} else {
			built = "a new database " + BuildPrefix + shortName(d.Database()) + "_… beside " + d.Database()
		}
		st = append(st, "create "+built+", labeled as this clone's")
	} else {
		st = append(st, "replace the content of the target "+d.Database()+" in place (swap: false: a failure leaves it partly loaded)")
	}
	for _, h := range p.Hooks.PreData {
		st = append(st, "pre_data hook on the new copy: "+h)
	}
	load := "restore the snapshot (no owners, no grants of the source)"
	if p.CrossEngine {
		load = "load the snapshot's rows through the portable format (" + p.Engine + " to " + p.TargetEngine + ")"
	}
	st = append(st, load+" into "+built)
	if len(s.Keep) > 0 {
		if p.TargetExists {
			st = append(st, "copy the rows keep_rows selects on the current target (and their dependents) into the new copy")
		} else {
			st = append(st, "keep_rows: the target does not exist yet, nothing to keep")
		}
	}
	if s.KeyOffset > 0 {
		st = append(st, fmt.Sprintf("restart every sequence and auto-increment at or above %d", s.KeyOffset))
	}
	for _, u := range p.Users {
		st = append(st, fmt.Sprintf("create user %s with %s access", u.Name, u.Access))
	}
	if s.ResetOtherPasswords {
		st = append(st, fmt.Sprintf("give %d other logins a random password (never shown)", len(p.ResetPasswords)))
	}
	for _, h := range p.Hooks.Post {
		st = append(st, "post hook on the new copy: "+h)
	}
	if s.Swap {
		switch {
		case !p.TargetExists:
			st = append(st, "the target does not exist: the new copy takes its name")
		case d.Engine == dsn.Postgres:
			st = append(st, "wait for sessions on "+d.Database()+" to end"+map[bool]string{true: " (terminate_sessions: ended)", false: ""}[s.TerminateSessions],
				"in one transaction: ALTER DATABASE "+d.Database()+" RENAME TO "+PreviousPrefix+"…; ALTER DATABASE "+BuildPrefix+"… RENAME TO "+d.Database())
		case d.Engine == dsn.MySQL:
			st = append(st, "one RENAME TABLE statement moves every table of "+d.Database()+" to "+PreviousPrefix+"… and every table of the new copy into "+d.Database()+"; then its views, routines, triggers and events are created in "+d.Database())
		default:
			st = append(st, "rename the new file over "+d.Path+" (atomic)")
		}
		if p.TargetExists {
			if s.KeepPrevious {
				st = append(st, "keep the previous copy (keep_previous: true)")
			} else {
				st = append(st, "drop the previous copy")
			}
		}
	}
	return st
}
