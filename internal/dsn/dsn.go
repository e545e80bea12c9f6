// Package dsn parses the data source names that name a database to back up
// or restore into: sqlite:PATH, postgres://…, mysql://… and mariadb://….
package dsn

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Engine names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// DSN is a parsed data source name.
type DSN struct {
	Engine string   // SQLite, Postgres or MySQL
	Raw    string   // as given (may hold a password: never print it)
	Path   string   // sqlite: the database file
	URL    *url.URL // server engines: the parsed URL
}

// Parse reads a DSN. It returns an error that names what is wrong.
func Parse(s string) (*DSN, error) {
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		p := strings.TrimPrefix(s, "sqlite://")
		if p == "" {
			return nil, fmt.Errorf("dsn %q: no file path after sqlite://", s)
		}
		// sqlite:///abs/path -> /abs/path; sqlite://rel -> rel
		return &DSN{Engine: SQLite, Raw: s, Path: filepath.Clean(p)}, nil
	case strings.HasPrefix(s, "sqlite:"), strings.HasPrefix(s, "sqlite3:"):
		p := s[strings.IndexByte(s, ':')+1:]
		if p == "" {
			return nil, fmt.Errorf("dsn %q: no file path after sqlite:", s)
		}
		return &DSN{Engine: SQLite, Raw: s, Path: filepath.Clean(p)}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("%q is not a DSN: expected sqlite:PATH, postgres://user@host/db or mysql://user@host/db", Redact(s))
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return &DSN{Engine: Postgres, Raw: s, URL: u}, nil
	case "mysql", "mariadb":
		return &DSN{Engine: MySQL, Raw: s, URL: u}, nil
	}
	return nil, fmt.Errorf("dsn %q: unknown scheme %q (expected sqlite, postgres, postgresql, mysql or mariadb)", Redact(s), u.Scheme)
}

// Looks reports whether s looks like a DSN rather than a config name.
func Looks(s string) bool {
	return strings.HasPrefix(s, "sqlite:") || strings.HasPrefix(s, "sqlite3:") || strings.Contains(s, "://")
}

// Database returns the database name (server engines) or the file's base
// name (SQLite).
func (d *DSN) Database() string {
	if d.Engine == SQLite {
		return filepath.Base(d.Path)
	}
	return strings.TrimPrefix(d.URL.Path, "/")
}

// WithDatabase returns a copy of a server DSN that names another database.
func (d *DSN) WithDatabase(db string) *DSN {
	if d.Engine == SQLite {
		c := *d
		c.Path = db
		c.Raw = "sqlite:" + db
		return &c
	}
	u := *d.URL
	u.Path = "/" + db
	u.RawPath = ""
	return &DSN{Engine: d.Engine, Raw: u.String(), URL: &u}
}

// String returns the DSN with any password replaced by "xxxxx".
func (d *DSN) String() string {
	if d.Engine == SQLite {
		return "sqlite:" + d.Path
	}
	return Redact(d.Raw)
}

// Redact hides the password in a URL-shaped string.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "://"); i >= 0 {
			if at := strings.LastIndex(s, "@"); at > i {
				return s[:i+3] + "xxxxx" + s[at:]
			}
		}
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// SourceName derives a stable source name for snapshots taken from a DSN
// that is not named in the config: engine, host and database, never a
// password.
func (d *DSN) SourceName() string {
	if d.Engine == SQLite {
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			abs = d.Path
		}
		return "sqlite:" + abs
	}
	return d.Engine + "://" + d.URL.Host + "/" + d.Database()
}
