package dsn

import (
	"net"
	"path/filepath"
	"strings"
)

// Default ports, filled in when a DSN names none.
const (
	PostgresPort = "5432"
	MySQLPort    = "3306"
)

// SourceName derives the name under which snapshots of a DSN that is not
// named in the config are recorded: engine://host:port/database, never a
// user or a password. It is the one normal form of a server's address:
//
//   - the scheme is the engine's (postgresql:// is postgres://, mariadb://
//     is mysql://), and a missing port is the engine's default;
//   - the host is lower-cased, and every way of reaching the local machine
//     is "localhost": localhost, 127.0.0.0/8, ::1, an empty host and a unix
//     socket. PostgreSQL names its socket after its port (.s.PGSQL.5432),
//     so a socket and localhost at one port are the same server. A MySQL
//     socket's path says nothing about a port: it is taken as the server
//     at the DSN's port (3306 when none is given);
//   - SQLite: sqlite: and the file's absolute path.
//
// A source named in the config is recorded under its config name instead.
func (d *DSN) SourceName() string {
	if d.Engine == SQLite {
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			abs = d.Path
		}
		return "sqlite:" + abs
	}
	host, port := d.URL.Hostname(), d.URL.Port()
	q := d.URL.Query()
	def := MySQLPort
	if d.Engine == Postgres {
		def = PostgresPort
		if host == "" {
			host = q.Get("host")
		}
		if port == "" {
			port = q.Get("port")
		}
	} else if q.Get("socket") != "" {
		host = ""
	}
	if strings.Contains(host, ",") || strings.Contains(port, ",") {
		// Several hosts (PostgreSQL's failover list): kept as written.
		return d.Engine + "://" + strings.ToLower(d.URL.Host) + "/" + d.Database()
	}
	if port == "" {
		port = def
	}
	return d.Engine + "://" + net.JoinHostPort(canonicalHost(host), port) + "/" + d.Database()
}

// canonicalHost lower-cases a host name and calls every address of the
// local machine "localhost".
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || h == "localhost" || strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
		return "localhost"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return "localhost"
	}
	return h
}

// SourceKey returns the normal form of a source's name, for comparing the
// name recorded in a snapshot with the name a user gives: a DSN (in any
// spelling, with or without credentials, and the forms earlier releases
// recorded, such as postgres://127.0.0.1/db) becomes its SourceName; any
// other name (a config source name) stays as it is.
func SourceKey(name string) string {
	if !Looks(name) {
		return name
	}
	d, err := Parse(name)
	if err != nil {
		return name
	}
	return d.SourceName()
}

// ShowSource returns a source name fit to print: a DSN-shaped name with its
// secrets blanked (names recorded by old releases may hold a password that
// had an unencoded '/'), any other name as it is.
func ShowSource(name string) string {
	if !Looks(name) {
		return name
	}
	return Redact(name)
}
