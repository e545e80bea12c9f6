// Package clone makes safe copies of a database (snapdata clone): a
// snapshot (a fresh one of a live source, or a stored one) flows one way,
// snapshot → engine.SnapshotReader (filtered by tables:, then Wrap, the
// masking slot) → the target engine's Restore (or, across engines, the
// portable Importer), into a new database built beside the target, which
// replaces the target only when everything succeeded (engine.Swapper). The
// target guard (internal/guard) refuses any target the allow-list does not
// name, any protected server, and the source itself, before anything is
// written.
package clone

import (
	"path"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/hooks"
)

// Spec is one clone: from the config (FromConfig) or ad hoc.
type Spec struct {
	Name string
	// From: Source is a config source name or a DSN. With Snapshot
	// ("latest" or an id) the clone uses a stored snapshot of
	// FromRepository; without it, it takes a fresh snapshot of the
	// live source into Repository ("" or "none": a temporary one).
	Source         string
	FromRepository string
	Snapshot       string
	Repository     string

	To      string
	Allow   []string
	Protect []string
	Base    string // folder of relative paths (the config's)

	Tables Tables

	Users               []engine.User
	ResetOtherPasswords bool

	Keep       []engine.KeepRule
	KeyOffset  int64
	Orphans    string
	OnConflict string

	PreData []Hook
	Post    []Hook
	// HookDir is where relative sql_file and command paths are found and
	// commands run (the config's folder; "" for the working directory).
	HookDir string

	Swap              bool
	KeepPrevious      bool
	TerminateSessions bool
	SessionWait       time.Duration
}

// Hook is one hook (internal/hooks runs them).
type Hook = hooks.Hook

// Tables chooses what tables the copy gets: globs over table names (a
// pattern without a dot also matches the name without its schema).
type Tables struct {
	Include     []string `json:"include,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
	ExcludeData []string `json:"exclude_data,omitempty"`
}

func matchAny(patterns []string, table string) bool {
	short := table
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		short = table[i+1:]
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, table); ok {
			return true
		}
		if !strings.Contains(p, ".") {
			if ok, _ := path.Match(p, short); ok {
				return true
			}
		}
	}
	return false
}

// chosen reports whether a table is in the copy at all.
func (t Tables) chosen(table string) bool {
	if len(t.Include) > 0 && !matchAny(t.Include, table) {
		return false
	}
	return !matchAny(t.Exclude, table)
}

// DefaultSessionWait is how long a swap waits for sessions on the target.
const DefaultSessionWait = time.Minute

// FromConfig builds the Spec of the config's clone name. A name the config
// does not hold is a usage error naming the clones it does.
func FromConfig(cfg *config.Config, name string) (*Spec, error) {
	cl, ok := cfg.Clones[name]
	if !ok {
		have := strings.Join(cfg.CloneNames(), ", ")
		if have == "" {
			have = "none"
		}
		where := "the config"
		if cfg.Path != "" {
			where = cfg.Path
		}
		return nil, usagef("unknown clone %q: %s defines these clones: %s", name, where, have)
	}
	s := &Spec{
		Name: name, Source: cl.From.Source, FromRepository: cl.From.Repository, Snapshot: cl.From.Snapshot,
		Repository: cl.Repository, To: cl.To, Allow: cl.Allow, Protect: cfg.Protect,
		KeyOffset: cl.KeyOffset, Orphans: cl.Orphans, OnConflict: cl.OnConflict,
		Swap: cl.SwapOn(), KeepPrevious: cl.KeepPrevious, TerminateSessions: cl.TerminateSessions,
		SessionWait: cl.SessionWait.D(),
	}
	if cfg.Path != "" {
		s.Base = dir(cfg.Path)
		s.HookDir = s.Base
	}
	if cl.Tables != nil {
		s.Tables = Tables{Include: cl.Tables.Include, Exclude: cl.Tables.Exclude, ExcludeData: cl.Tables.ExcludeData}
	}
	if c := cl.Credentials; c != nil {
		for _, u := range c.Users {
			s.Users = append(s.Users, engine.User{Name: u.Name, Password: u.Password, Access: engine.Access(u.Access)})
		}
		s.ResetOtherPasswords = c.ResetOtherPasswords
	}
	for _, k := range cl.KeepRows {
		s.Keep = append(s.Keep, engine.KeepRule{Table: k.Table, Tables: k.Tables, Where: k.Where, KeyAtLeast: k.KeyAtLeast})
	}
	if h := cl.Hooks; h != nil {
		for _, x := range h.PreData {
			s.PreData = append(s.PreData, Hook{SQL: x.SQL, SQLFile: x.SQLFile, Command: x.Command})
		}
		for _, x := range h.Post {
			s.Post = append(s.Post, Hook{SQL: x.SQL, SQLFile: x.SQLFile, Command: x.Command})
		}
	}
	return s, nil
}

func dir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return "."
}

// check validates what the config cannot: the combination of keys.
func (s *Spec) check() error {
	for _, u := range s.Users {
		switch u.Access {
		case engine.AccessReadOnly, engine.AccessReadWrite, engine.AccessOwner:
		default:
			return usagef("clone %s: user %q: unknown access %q (expected readonly, readwrite or owner)", s.Name, u.Name, u.Access)
		}
	}
	if len(s.Keep) > 0 && !s.Swap {
		return usagef("clone %s: keep_rows needs swap: true (kept rows are read from the old target while the new copy is built beside it)", s.Name)
	}
	if s.Snapshot == "" && s.FromRepository != "" {
		return usagef("clone %s: from.repository needs from.snapshot (latest or an id)", s.Name)
	}
	return nil
}

func usagef(format string, args ...any) error { return app.Usagef(format, args...) }
