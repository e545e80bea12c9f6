// Package guard is the target guard every command that writes a database or
// a file outside the repository consults before it writes anything: the
// target must match an allow pattern (when the command has an allow-list),
// must match no protect pattern (the config's global list of production
// servers), and must not be the source itself, under any name.
//
// Patterns are DSN-shaped with '*' globs in each part:
//
//	mysql://*@acc-db:3306/orders   any user, host acc-db, port 3306, database orders
//	postgres://acc-*/              any database on hosts acc-… at the default port
//	postgres://prod-db:*           every database of prod-db on any port
//	sqlite:./dev/*.db              SQLite files (paths relative to the config's folder)
//	file:./*.sql                   file targets of clone (SQL files, .tar.gz exports)
//
// A pattern that names no user matches every user; one that names no
// database matches every database; one that names no port matches the
// engine's default port in an allow pattern and every port in a protect
// pattern (protect errs on the side of refusing). postgresql:// is
// postgres:// and mariadb:// is mysql://; "*://" matches every server
// engine. Host names are compared lower-cased, and every loopback address is
// "localhost".
package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
)

// ErrRefused is wrapped by every refusal (the CLI exits 3).
var ErrRefused = errors.New("refused by a safety rule")

// Target is what a command is about to write: a database or a file.
type Target struct {
	DSN  *dsn.DSN // a database (SQLite: its file)
	File string   // a file target (file:PATH); absolute once Resolve'd
}

// ParseTarget reads "file:PATH" (a file) or a DSN. base is the folder
// relative paths are taken from ("" for the working directory).
func ParseTarget(s, base string) (Target, error) {
	if p, ok := strings.CutPrefix(s, "file:"); ok {
		if p == "" {
			return Target{}, fmt.Errorf("target %q: no path after file:", s)
		}
		return Target{File: absPath(p, base)}, nil
	}
	d, err := dsn.Parse(s)
	if err != nil {
		return Target{}, err
	}
	if d.Engine == dsn.SQLite {
		c := *d
		c.Path = absPath(d.Path, base)
		c.Raw = "sqlite:" + c.Path
		d = &c
	}
	return Target{DSN: d}, nil
}

func absPath(p, base string) string {
	if !filepath.IsAbs(p) && base != "" {
		p = filepath.Join(base, p)
	}
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	return filepath.Clean(p)
}

// String shows the target without secrets.
func (t Target) String() string {
	if t.DSN != nil {
		return t.DSN.String()
	}
	return "file:" + t.File
}

// Path is the file a file or SQLite target writes ("" for servers).
func (t Target) Path() string {
	if t.DSN == nil {
		return t.File
	}
	if t.DSN.Engine == dsn.SQLite {
		return t.DSN.Path
	}
	return ""
}

// Guard holds the rules. A nil Allow means the command has no allow-list
// (restore, import): only Protect and the source apply.
type Guard struct {
	Allow   []string
	Protect []string
	// Base is the folder relative file patterns are taken from (the
	// config's folder).
	Base string
	// Lookup resolves a host name to addresses; nil means
	// net.DefaultResolver.LookupHost.
	Lookup func(ctx context.Context, host string) ([]string, error)
}

// Refusal is the error of a refused target.
type Refusal struct {
	Target   string   // redacted
	Reason   string   // what rule refused it
	Patterns []string // the patterns involved (redacted)
}

func (r *Refusal) Error() string {
	msg := fmt.Sprintf("refused to write %s: %s", r.Target, r.Reason)
	if len(r.Patterns) > 0 {
		msg += " (" + strings.Join(r.Patterns, ", ") + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (r *Refusal) Unwrap() error { return ErrRefused }

// Check refuses target when it is not allowed, is protected, or is one of
// sources. It returns the allow pattern that matched ("" without an
// allow-list). It connects to nothing; it resolves host names.
func (g Guard) Check(ctx context.Context, target Target, sources ...Target) (string, error) {
	for _, p := range g.Protect {
		ok, err := g.match(p, target, true)
		if err != nil {
			return "", fmt.Errorf("protect pattern %s: %w", redact(p), err)
		}
		if ok {
			return "", &Refusal{Target: target.String(), Reason: "it matches the config's protect list, which no target may ever match", Patterns: []string{redact(p)}}
		}
	}
	for _, s := range sources {
		same, err := g.Same(ctx, target, s)
		if err != nil {
			return "", err
		}
		if same {
			return "", &Refusal{Target: target.String(), Reason: "it is the source itself (" + s.String() + ")"}
		}
	}
	if g.Allow == nil {
		return "", nil
	}
	for _, p := range g.Allow {
		ok, err := g.match(p, target, false)
		if err != nil {
			return "", fmt.Errorf("allow pattern %s: %w", redact(p), err)
		}
		if ok {
			return redact(p), nil
		}
	}
	pats := make([]string, len(g.Allow))
	for i, p := range g.Allow {
		pats[i] = redact(p)
	}
	reason := "it matches none of the allow patterns"
	if len(pats) == 0 {
		reason = "the allow list is empty (name the targets this command may write in allow:)"
	}
	return "", &Refusal{Target: target.String(), Reason: reason, Patterns: pats}
}

// redact hides a password written in a pattern's user information, and
// leaves the globs as written.
func redact(p string) string {
	i := strings.Index(p, "://")
	if i < 0 {
		return p
	}
	rest := p[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		if strings.Contains(rest, "@") {
			return dsn.Redact(p)
		}
		return p
	}
	if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
		return p[:i+3] + user + ":" + dsn.Mask + rest[at:]
	}
	return p
}

// match reports whether pattern p matches target. protect makes an
// omitted port match every port.
func (g Guard) match(p string, t Target, protect bool) (bool, error) {
	switch {
	case strings.HasPrefix(p, "file:"):
		if t.DSN != nil {
			return false, nil
		}
		return globPath(strings.TrimPrefix(p, "file:"), g.Base, t.File)
	case strings.HasPrefix(p, "sqlite:"), strings.HasPrefix(p, "sqlite3:"):
		if t.DSN == nil || t.DSN.Engine != dsn.SQLite {
			return false, nil
		}
		gp := p[strings.IndexByte(p, ':')+1:]
		gp = strings.TrimPrefix(gp, "//")
		return globPath(gp, g.Base, t.DSN.Path)
	}
	pp, err := parsePattern(p)
	if err != nil {
		return false, err
	}
	if t.DSN == nil || t.DSN.Engine == dsn.SQLite {
		return false, nil
	}
	return pp.matches(t.DSN, protect), nil
}

func globPath(pattern, base, file string) (bool, error) {
	if pattern == "" {
		return false, errors.New("no path after the scheme")
	}
	abs := absPath(pattern, base)
	if _, err := filepath.Match(abs, ""); err != nil {
		return false, fmt.Errorf("bad glob: %w", err)
	}
	if ok, _ := filepath.Match(abs, file); ok {
		return true, nil
	}
	// The same file through symbolic links in its folder.
	if real := realPath(file); real != file {
		if ok, _ := filepath.Match(realPath(abs), real); ok {
			return true, nil
		}
	}
	return false, nil
}

// pattern is a parsed server pattern.
type pattern struct {
	engine   string // "postgres", "mysql" or "*"
	user     string // "" any
	host     string
	port     string // "" unset
	database string // "" any
}

func parsePattern(p string) (pattern, error) {
	i := strings.Index(p, "://")
	if i <= 0 {
		return pattern{}, errors.New("expected scheme://[user@]host[:port][/database], sqlite:PATH or file:PATH")
	}
	var out pattern
	switch strings.ToLower(p[:i]) {
	case "postgres", "postgresql":
		out.engine = dsn.Postgres
	case "mysql", "mariadb":
		out.engine = dsn.MySQL
	case "*":
		out.engine = "*"
	default:
		return pattern{}, fmt.Errorf("unknown scheme %q (expected postgres, mysql, mariadb, *, sqlite: or file:)", p[:i])
	}
	rest := p[i+3:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	hostport, db, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
		out.user, _, _ = strings.Cut(hostport[:at], ":")
		hostport = hostport[at+1:]
	}
	out.host = hostport
	if strings.HasPrefix(hostport, "[") {
		if j := strings.IndexByte(hostport, ']'); j > 0 {
			out.host = hostport[1:j]
			out.port = strings.TrimPrefix(hostport[j+1:], ":")
		}
	} else if j := strings.LastIndexByte(hostport, ':'); j >= 0 {
		out.host, out.port = hostport[:j], hostport[j+1:]
	}
	if out.host == "" {
		return pattern{}, errors.New("no host (write * for every host)")
	}
	out.database = db
	for _, part := range []string{out.user, out.host, out.port, out.database} {
		if _, err := path.Match(part, ""); err != nil {
			return pattern{}, fmt.Errorf("bad glob %q: %w", part, err)
		}
	}
	if out.host != "*" {
		out.host = canonicalHost(out.host)
	}
	return out, nil
}

func (p pattern) matches(d *dsn.DSN, protect bool) bool {
	if p.engine != "*" && p.engine != d.Engine {
		return false
	}
	host, port := hostPort(d)
	if !glob(p.host, host) {
		return false
	}
	wantPort := p.port
	if wantPort == "" {
		if protect {
			wantPort = "*"
		} else {
			wantPort = defaultPort(d.Engine)
		}
	}
	if !glob(wantPort, port) {
		return false
	}
	if p.user != "" && p.user != "*" {
		user := ""
		if d.URL.User != nil {
			user = d.URL.User.Username()
		}
		if !glob(p.user, user) {
			return false
		}
	}
	if p.database != "" && !glob(p.database, d.Database()) {
		return false
	}
	return true
}

func glob(p, s string) bool {
	ok, _ := path.Match(p, s)
	return ok
}

func defaultPort(engine string) string {
	if engine == dsn.Postgres {
		return dsn.PostgresPort
	}
	return dsn.MySQLPort
}

// hostPort returns a server DSN's host (canonical: lower-case, loopback is
// localhost) and port (the engine's default when none is given), as
// dsn.SourceName normalizes them.
func hostPort(d *dsn.DSN) (string, string) {
	name := strings.TrimPrefix(d.SourceName(), d.Engine+"://")
	hp, _, _ := strings.Cut(name, "/")
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, defaultPort(d.Engine)
	}
	return h, p
}

// canonicalHost mirrors dsn's normal form of a host.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || h == "localhost" || strings.HasPrefix(h, "/") {
		return "localhost"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return "localhost"
	}
	return h
}

// Same reports whether a and b name the same database: the same file
// (through symbolic links too), or the same database on the same server,
// also when the two host names differ but resolve to a common address
// at the same port.
func (g Guard) Same(ctx context.Context, a, b Target) (bool, error) {
	pa, pb := a.Path(), b.Path()
	if pa != "" || pb != "" {
		if pa == "" || pb == "" {
			return false, nil
		}
		return sameFile(pa, pb), nil
	}
	da, db := a.DSN, b.DSN
	if da.Engine != db.Engine || da.Database() != db.Database() {
		return false, nil
	}
	ha, porta := hostPort(da)
	hb, portb := hostPort(db)
	if porta != portb {
		return false, nil
	}
	if ha == hb {
		return true, nil
	}
	ipa, err := g.addrs(ctx, ha)
	if err != nil {
		return false, err
	}
	ipb, err := g.addrs(ctx, hb)
	if err != nil {
		return false, err
	}
	for x := range ipa {
		if ipb[x] {
			return true, nil
		}
	}
	return false, nil
}

// addrs resolves a host to its addresses; every loopback address and
// every address of this machine's interfaces count as "local".
func (g Guard) addrs(ctx context.Context, host string) (map[string]bool, error) {
	out := map[string]bool{}
	var list []string
	if host == "localhost" {
		return map[string]bool{"local": true}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		list = []string{ip.String()}
	} else {
		lookup := g.Lookup
		if lookup == nil {
			lookup = net.DefaultResolver.LookupHost
		}
		var err error
		list, err = lookup(ctx, host)
		if err != nil {
			// Fail closed: a target whose host does not resolve cannot be
			// proven to differ from the source.
			return nil, &Refusal{Target: host, Reason: fmt.Sprintf("cannot resolve host %s to prove it is not the source: %v", host, err)}
		}
	}
	local := localAddrs()
	for _, s := range list {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		if ip.IsLoopback() || local[ip.String()] {
			out["local"] = true
			continue
		}
		out[ip.String()] = true
	}
	return out, nil
}

func localAddrs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}

// realPath resolves symbolic links in p, or in its folder when p does not
// exist yet.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(d, filepath.Base(p))
	}
	return p
}

func sameFile(a, b string) bool {
	if realPath(a) == realPath(b) {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
