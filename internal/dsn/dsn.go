// Package dsn parses the data source names that name a database to back up
// or restore into: sqlite:PATH, postgres://…, mysql://… and mariadb://….
//
// A DSN may carry secrets: the password of its user information and query
// parameters such as password= and sslpassword=. They are hidden
// structurally: String and Redact parse the DSN and blank those fields, never
// search a message for the password's text.
package dsn

import (
	"errors"
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

// Mask replaces a secret wherever a DSN is shown.
const Mask = "xxxxx"

// expected is what every "not a DSN" message offers.
const expected = "expected sqlite:PATH, postgres://user@host/db or mysql://user@host/db"

// DSN is a parsed data source name.
type DSN struct {
	Engine string   // SQLite, Postgres or MySQL
	Raw    string   // the connection URL (may hold a password: never print it)
	Path   string   // sqlite: the database file
	URL    *url.URL // server engines: the parsed URL
}

// Parse reads a DSN. It returns an error that names what is wrong and never
// shows a password.
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
	u, raw, err := parseURL(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return &DSN{Engine: Postgres, Raw: raw, URL: u}, nil
	case "mysql", "mariadb":
		return &DSN{Engine: MySQL, Raw: raw, URL: u}, nil
	}
	return nil, fmt.Errorf("%s is not a DSN: unknown scheme %q (expected sqlite, postgres, postgresql, mysql or mariadb)", Redact(s), u.Scheme)
}

// parseURL parses scheme://[userinfo@]host[:port][/path][?query]. A user or
// password holding an unencoded '/', '?', '#' or '@' is accepted: when an
// '@' follows the first '/', '?' or '#' in a way no database name or
// parameter name would (see userinfoEnd), everything before the last '@'
// that precedes a host is the user information. raw is s, or s re-encoded
// when its user information needed that.
func parseURL(s string) (u *url.URL, raw string, err error) {
	i := strings.Index(s, "://")
	if i < 0 {
		return nil, "", fmt.Errorf("%s is not a DSN: it has no scheme:// (%s)", Redact(s), expected)
	}
	if i == 0 {
		return nil, "", fmt.Errorf("%s is not a DSN: the scheme before :// is empty (%s)", Redact(s), expected)
	}
	scheme, rest := s[:i], s[i+3:]
	if !validScheme(scheme) {
		return nil, "", fmt.Errorf("%s is not a DSN: the scheme %q is not a word (%s)", Redact(s), scheme, expected)
	}
	if at := userinfoEnd(rest); at >= 0 {
		u, err := url.Parse(scheme + "://" + rest[at+1:])
		if err != nil {
			return nil, "", fmt.Errorf("%s is not a DSN: %s", Redact(s), why(err))
		}
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		user, pass = unescapeUserinfo(user), unescapeUserinfo(pass)
		if hasPass {
			u.User = url.UserPassword(user, pass)
		} else {
			u.User = url.User(user)
		}
		return u, u.String(), nil
	}
	u, err = url.Parse(s)
	if err != nil {
		return nil, "", fmt.Errorf("%s is not a DSN: %s", Redact(s), why(err))
	}
	if u.Opaque != "" {
		return nil, "", fmt.Errorf("%s is not a DSN: nothing may come between the scheme and :// (%s)", Redact(s), expected)
	}
	return u, s, nil
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// why explains a net/url parse error without repeating the input (which
// url.Error quotes whole, password included).
func why(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var esc url.EscapeError
	var host url.InvalidHostError
	msg := err.Error()
	switch {
	case errors.As(err, &esc):
		return "a %-escape is not % followed by two hex digits (write a literal % as %25)"
	case errors.As(err, &host):
		return "the host holds a character a host name cannot (percent-encode '/', '?', '#' and '@' in a user or password)"
	case strings.HasPrefix(msg, "invalid port"):
		return "the port after the host is not a number (percent-encode ':' and '/' in a password, or put it in the config with ${VAR})"
	case strings.Contains(msg, "control character"):
		return "it holds a control character (a newline or tab?)"
	}
	return "it is not a URL of the form scheme://user@host:port/database"
}

// userinfoEnd returns the index in rest (the text after "scheme://") of the
// '@' that ends a user information holding an unencoded '/', '?' or '#', or
// -1 when rest parses the usual way (user information, if any, before the
// first '/', '?' or '#').
//
// Such an '@' is recognised where no database or parameter name puts one: in
// the path (database names with '@' must be written %40), in a parameter's
// name, in a fragment, or anywhere when the usual reading fails (a port that
// is not a number) and the first '/', '?' or '#' comes before any '@'.
func userinfoEnd(rest string) int {
	end := strings.IndexAny(rest, "/?#")
	if end < 0 || !strings.Contains(rest[end:], "@") {
		return -1
	}
	tail := rest[end:]
	path, query, fragment := tail, "", ""
	if j := strings.IndexAny(path, "?#"); j >= 0 {
		path, query = path[:j], path[j:]
	}
	if j := strings.IndexByte(query, '#'); j >= 0 {
		query, fragment = query[:j], query[j:]
	}
	suspicious := strings.Contains(path, "@") || strings.Contains(fragment, "@")
	for _, kv := range strings.Split(strings.TrimPrefix(query, "?"), "&") {
		if k, _, _ := strings.Cut(kv, "="); strings.Contains(k, "@") {
			suspicious = true
		}
	}
	if !suspicious {
		if _, err := url.Parse("x://" + rest); err == nil || strings.Contains(rest[:end], "@") {
			return -1
		}
	}
	for at := strings.LastIndexByte(rest, '@'); at > 0; at = strings.LastIndexByte(rest[:at], '@') {
		host := rest[at+1:]
		if j := strings.IndexAny(host, "/?#"); j >= 0 {
			host = host[:j]
		}
		if validHosts(host) {
			return at
		}
	}
	return -1
}

// validHosts reports whether s is a host list as PostgreSQL and MySQL URLs
// write it: comma-separated host[:port] items, hosts being names, IPv4
// addresses or [IPv6] literals; empty for a socket.
func validHosts(s string) bool {
	for _, item := range strings.Split(s, ",") {
		h, port := item, ""
		if strings.HasPrefix(item, "[") {
			j := strings.IndexByte(item, ']')
			if j < 0 {
				return false
			}
			h, port = item[1:j], item[j+1:]
			if strings.ContainsAny(h, "[]@/?# ") {
				return false
			}
		} else if j := strings.LastIndexByte(item, ':'); j >= 0 {
			h, port = item[:j], item[j:]
		}
		if port != "" {
			if port[0] != ':' {
				return false
			}
			for _, c := range port[1:] {
				if c < '0' || c > '9' {
					return false
				}
			}
		}
		if strings.ContainsAny(h, "@/?#:[] \t\r\n\\\"<>{}|^`") {
			return false
		}
	}
	return true
}

func unescapeUserinfo(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	return s // a literal '%': taken as it is
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
	if db := strings.TrimPrefix(d.URL.Path, "/"); db != "" || d.Engine != Postgres {
		return db
	}
	return d.URL.Query().Get("dbname")
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
	if d.Engine == Postgres {
		q := u.Query()
		if q.Has("dbname") {
			q.Del("dbname")
			u.RawQuery = q.Encode()
		}
	}
	return &DSN{Engine: d.Engine, Raw: u.String(), URL: &u}
}

// Password returns the password of the DSN's user information.
func (d *DSN) Password() (string, bool) {
	if d.URL == nil || d.URL.User == nil {
		return "", false
	}
	return d.URL.User.Password()
}

// String returns the DSN with every secret (the password, and parameters
// such as password= or sslpassword=) replaced by "xxxxx".
func (d *DSN) String() string {
	if d.Engine == SQLite {
		return "sqlite:" + d.Path
	}
	return redactURL(d.URL)
}

func redactURL(src *url.URL) string {
	u := *src
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	u.RawQuery = redactQuery(u.RawQuery)
	u.ForceQuery = false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// IsSecretParam reports whether a URL query parameter holds a secret:
// password, sslpassword and anything else named like a password, secret
// or token.
func IsSecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactQuery blanks the values of secret parameters in a raw query,
// leaving the others as written.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, kv := range parts {
		k, _, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if IsSecretParam(name) {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

// Redact returns a URL-shaped string (a DSN, an SMTP or webhook URL) with
// its password and secret parameters replaced by "xxxxx". It parses the
// string; one that does not parse is shown as its scheme, "xxxxx" for
// anything before an '@', and what follows the last '@' with its secret
// parameters blanked.
func Redact(s string) string {
	if strings.HasPrefix(s, "sqlite:") || strings.HasPrefix(s, "sqlite3:") {
		return s
	}
	i := strings.Index(s, "://")
	if i > 0 && validScheme(s[:i]) {
		rest := s[i+3:]
		var u *url.URL
		if at := userinfoEnd(rest); at >= 0 {
			if v, err := url.Parse(s[:i] + "://" + rest[at+1:]); err == nil {
				u = v
				if name, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
					u.User = url.UserPassword(unescapeUserinfo(name), Mask)
				} else {
					u.User = url.User(unescapeUserinfo(name))
				}
			}
		} else if v, err := url.Parse(s); err == nil && v.Opaque == "" {
			u = v
		}
		if u != nil {
			return redactURL(u)
		}
	}
	return redactLoose(s)
}

// redactLoose shows a string that does not parse: the scheme, then (after
// the last '@', everything before it hidden) the rest with the values of
// secret parameters blanked.
func redactLoose(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		prefix += Mask + "@"
		rest = rest[at+1:]
	}
	if j := strings.IndexByte(rest, '#'); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest = rest[:j+1] + redactQuery(rest[j+1:])
	}
	return prefix + rest
}

// Secrets are the secrets a server DSN carries, taken out of its URL.
type Secrets struct {
	Password    string // the userinfo password, or a password= parameter
	HasPassword bool
	SSLPassword string // PostgreSQL's sslpassword= (decrypts the client key)
}

// SplitSecrets returns the DSN's URL without its secrets (no userinfo
// password, no password= or sslpassword= parameter) and the secrets, so that
// a driver or a child process can be handed a connection string that holds
// none: whatever it prints cannot show them.
func (d *DSN) SplitSecrets() (*url.URL, Secrets) {
	var s Secrets
	u := *d.URL
	if u.User != nil {
		s.Password, s.HasPassword = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k, vs := range q {
			switch strings.ToLower(k) {
			case "password":
				s.Password, s.HasPassword = vs[len(vs)-1], true
			case "sslpassword":
				s.SSLPassword = vs[len(vs)-1]
			default:
				continue
			}
			q.Del(k)
			changed = true
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return &u, s
}
