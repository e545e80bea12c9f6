package config

import (
	"fmt"
	"sort"
	"strings"
)

// Clone is one entry of clones: a safe copy of a source (issue 20).
type Clone struct {
	From              CloneFrom         `yaml:"from"`
	Repository        string            `yaml:"repository"` // where a live source's fresh snapshot goes; "none": a temporary one
	To                string            `yaml:"to"`         // a DSN, or file:PATH.sql / file:PATH.tar.gz
	Allow             []string          `yaml:"allow"`
	Tables            *CloneTables      `yaml:"tables"`
	Credentials       *CloneCredentials `yaml:"credentials"`
	KeepRows          []*KeepRow        `yaml:"keep_rows"`
	KeyOffset         int64             `yaml:"key_offset"`
	Orphans           string            `yaml:"orphans"`     // drop (default), null, fail
	OnConflict        string            `yaml:"on_conflict"` // fail (default), skip, overwrite
	Hooks             *CloneHooks       `yaml:"hooks"`
	Swap              *bool             `yaml:"swap"` // default true
	KeepPrevious      bool              `yaml:"keep_previous"`
	TerminateSessions bool              `yaml:"terminate_sessions"`
	SessionWait       Duration          `yaml:"session_wait"` // how long to wait for sessions on the old target (default 60s)
}

// CloneFrom is a live source (Source alone) or a stored snapshot
// (Repository, Source, Snapshot).
type CloneFrom struct {
	Source     string `yaml:"source"`
	Repository string `yaml:"repository"`
	Snapshot   string `yaml:"snapshot"` // latest or an id; set: a stored snapshot
}

// CloneTables chooses tables.
type CloneTables struct {
	Include     []string `yaml:"include"`
	Exclude     []string `yaml:"exclude"`
	ExcludeData []string `yaml:"exclude_data"`
}

// CloneCredentials are the users a clone creates.
type CloneCredentials struct {
	Users               []*CloneUser `yaml:"users"`
	ResetOtherPasswords bool         `yaml:"reset_other_passwords"`
}

// CloneUser is one login of the copy. Password is a secret.
type CloneUser struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	Access   string `yaml:"access"` // readonly, readwrite, owner
}

// KeepRow is one keep_rows rule.
type KeepRow struct {
	Table      string `yaml:"table"`
	Tables     string `yaml:"tables"`
	Where      string `yaml:"where"`
	KeyAtLeast int64  `yaml:"key_at_least"`
}

// CloneHooks run on the new copy.
type CloneHooks struct {
	PreData []*Hook `yaml:"pre_data"`
	Post    []*Hook `yaml:"post"`
}

// Hook is one hook: exactly one of SQL, SQLFile, Command.
type Hook struct {
	SQL     string   `yaml:"sql"`
	SQLFile string   `yaml:"sql_file"`
	Command []string `yaml:"command"`
}

// SwapOn reports whether the clone builds beside the target and swaps.
func (c *Clone) SwapOn() bool { return c.Swap == nil || *c.Swap }

// CloneNames lists the clones, sorted.
func (c *Config) CloneNames() []string {
	out := make([]string, 0, len(c.Clones))
	for n := range c.Clones {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Config) validateClones() error {
	for i, p := range c.Protect {
		if strings.TrimSpace(p) == "" {
			return c.Errorf(fmt.Sprintf("protect[%d]", i), "protect[%d] is empty: expected a pattern such as postgres://prod-db or mysql://*@prod-*:3306", i)
		}
	}
	for _, name := range c.CloneNames() {
		cl := c.Clones[name]
		p := "clones." + name
		if cl == nil {
			return c.Errorf(p, "clone %q is empty: from, to and allow are required", name)
		}
		if cl.From.Source == "" {
			return c.Errorf(p+".from", "clone %q: from.source is required (a source of the config or a DSN; with from.snapshot, the source whose snapshot to use)", name)
		}
		if cl.From.Snapshot == "" && cl.From.Repository != "" {
			return c.Errorf(p+".from.repository", "clone %q: from.repository names a stored snapshot's repository: add from.snapshot (latest or an id), or drop it to take a fresh snapshot of the live source", name)
		}
		if cl.From.Snapshot == "" {
			if _, ok := c.Sources[cl.From.Source]; !ok && !strings.Contains(cl.From.Source, ":") {
				return c.Errorf(p+".from.source", "clone %q: unknown source %q (defined sources: %s)", name, cl.From.Source, strings.Join(keys(c.Sources), ", "))
			}
		}
		for _, r := range []struct{ key, name string }{{".repository", cl.Repository}, {".from.repository", cl.From.Repository}} {
			if r.name != "" && r.name != "none" {
				if _, ok := c.Repositories[r.name]; !ok {
					return c.Errorf(p+r.key, "clone %q: unknown repository %q (defined repositories: %s)", name, r.name, strings.Join(keys(c.Repositories), ", "))
				}
			}
		}
		if cl.To == "" {
			return c.Errorf(p, "clone %q: to is required (a DSN, or file:PATH.sql or file:PATH.tar.gz)", name)
		}
		if cl.Allow == nil {
			return c.Errorf(p, "clone %q: allow is required: the patterns of the only targets this clone may write (e.g. mysql://*@acc-db:3306/orders, file:./*.sql)", name)
		}
		if cl.Credentials != nil {
			for i, u := range cl.Credentials.Users {
				up := fmt.Sprintf("%s.credentials.users[%d]", p, i)
				if u == nil || u.Name == "" {
					return c.Errorf(up, "clone %q: credentials.users[%d]: name is required", name, i)
				}
				switch u.Access {
				case "readonly", "readwrite", "owner":
				default:
					return c.Errorf(up+".access", "clone %q: user %q: unknown access %q (expected readonly, readwrite or owner)", name, u.Name, u.Access)
				}
				if u.Password == "" {
					return c.Errorf(up+".password", "clone %q: user %q: password is required (use ${VAR} or ${VAR?message}, never a literal)", name, u.Name)
				}
			}
		}
		for i, k := range cl.KeepRows {
			kp := fmt.Sprintf("%s.keep_rows[%d]", p, i)
			if k == nil || (k.Table == "") == (k.Tables == "") {
				return c.Errorf(kp, "clone %q: keep_rows[%d]: set exactly one of table and tables", name, i)
			}
			if k.Where == "" && k.KeyAtLeast == 0 {
				return c.Errorf(kp, "clone %q: keep_rows[%d]: set where or key_at_least", name, i)
			}
			if k.KeyAtLeast < 0 {
				return c.Errorf(kp+".key_at_least", "clone %q: keep_rows[%d]: key_at_least is negative", name, i)
			}
		}
		if cl.KeyOffset < 0 {
			return c.Errorf(p+".key_offset", "clone %q: key_offset is negative", name)
		}
		switch cl.Orphans {
		case "", "drop", "null", "fail":
		default:
			return c.Errorf(p+".orphans", "clone %q: orphans %q: expected drop, null or fail", name, cl.Orphans)
		}
		switch cl.OnConflict {
		case "", "fail", "skip", "overwrite":
		default:
			return c.Errorf(p+".on_conflict", "clone %q: on_conflict %q: expected fail, skip or overwrite", name, cl.OnConflict)
		}
		if cl.Hooks != nil {
			for kind, list := range map[string][]*Hook{"pre_data": cl.Hooks.PreData, "post": cl.Hooks.Post} {
				for i, h := range list {
					hp := fmt.Sprintf("%s.hooks.%s[%d]", p, kind, i)
					n := 0
					if h != nil {
						if h.SQL != "" {
							n++
						}
						if h.SQLFile != "" {
							n++
						}
						if len(h.Command) > 0 {
							n++
						}
					}
					if n != 1 {
						return c.Errorf(hp, "clone %q: hooks.%s[%d]: set exactly one of sql, sql_file, command", name, kind, i)
					}
				}
			}
		}
	}
	return nil
}
