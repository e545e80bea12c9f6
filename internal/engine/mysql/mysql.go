// Package mysql is snapdata's MySQL/MariaDB engine.
//
// Backup takes one consistent InnoDB view for all workers (snapshots started
// under a brief FLUSH TABLES WITH READ LOCK, or a single consistent
// transaction when the user lacks RELOAD), captures the schema with SHOW
// CREATE statements and writes one loss-free text stream per table (or per
// primary-key range of a big table) that LOAD DATA LOCAL INFILE reads back.
//
// Stream layout of a snapshot:
//
//	meta/database     kind meta,        format mysql-meta/1     (JSON: charset, collation, server)
//	meta/columns      kind meta,        format mysql-columns/1  (JSON: per table, dumped columns and portable types)
//	schema/pre        kind schema-pre,  format mysql-ddl/1      (JSON lines: tables, sequences)
//	data/<t>/<part>   kind data,        format mysql-tsv/1      (rows, see encode.go)
//	schema/post       kind schema-post, format mysql-ddl/1      (JSON lines: routines, views, triggers, events, sequence values)
//
// The schema streams are JSON lines of statements rather than one SQL text:
// routines and triggers contain semicolons and each needs its own sql_mode
// and client character set, so replaying a list of statements avoids
// re-implementing the mariadb client's delimiter parser. ExportSQL renders
// the same statements as a client-loadable script with DELIMITER lines.
package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/lowat"
	"github.com/snapdata/snapdata/internal/mycnf"
	"github.com/snapdata/snapdata/internal/stall"
)

// Stream formats.
const (
	FormatMeta    = "mysql-meta/1"
	FormatColumns = "mysql-columns/1"
	FormatDDL     = "mysql-ddl/1"
	FormatTSV     = "mysql-tsv/1"
)

// DefaultSplitBytes is the table size (information_schema data_length) above
// which a table with a single integer primary key is dumped as several
// primary-key ranges.
const DefaultSplitBytes = 256 << 20

// DefaultStatsHoldBytes is the data size from which a restore holds a
// table's InnoDB statistics recalculation while loading it (see
// holdStatsRecalc): below it the recalculations cost less than the two
// ALTER TABLEs and the ANALYZE TABLE that holding takes.
const DefaultStatsHoldBytes = 32 << 20

// Engine is the MySQL/MariaDB engine.
type Engine struct {
	// SplitBytes overrides DefaultSplitBytes when > 0.
	SplitBytes int64
	// StatsHoldBytes overrides DefaultStatsHoldBytes when > 0.
	StatsHoldBytes int64
}

func (e *Engine) statsHoldBytes() int64 {
	if e.StatsHoldBytes > 0 {
		return e.StatsHoldBytes
	}
	return DefaultStatsHoldBytes
}

// New returns the engine.
func New() *Engine { return &Engine{} }

// Name is the DSN engine name.
func (e *Engine) Name() string { return dsn.MySQL }

var (
	_ engine.Engine              = (*Engine)(nil)
	_ engine.Checksummer         = (*Engine)(nil)
	_ engine.Scratcher           = (*Engine)(nil)
	_ engine.SQLExporter         = (*Engine)(nil)
	_ engine.RowReader           = (*Engine)(nil)
	_ engine.Importer            = (*Engine)(nil)
	_ engine.DatabaseLister      = (*Engine)(nil)
	_ engine.Fingerprinter       = (*Engine)(nil)
	_ engine.GlobalsBackuper     = (*Engine)(nil)
	_ engine.GlobalsRestorer     = (*Engine)(nil)
	_ engine.FilteredSQLExporter = (*Engine)(nil)
)

func (e *Engine) splitBytes() int64 {
	if e.SplitBytes > 0 {
		return e.SplitBytes
	}
	return DefaultSplitBytes
}

// config turns our URL DSN into the driver's configuration. database
// overrides the DSN's database when not nil ("" connects without one).
func config(d *dsn.DSN, database *string) (*mysql.Config, error) {
	if d == nil || d.URL == nil || d.Engine != dsn.MySQL {
		return nil, fmt.Errorf("not a mysql:// or mariadb:// DSN")
	}
	u := d.URL
	cfg := mysql.NewConfig()
	// The DSN's user, password, host and port; what it lacks from
	// MYSQL_PWD and the option file (~/.my.cnf or ?defaults-file=), as
	// the mysql client does.
	cred, err := mycnf.Resolve(d, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("dsn %s: %w", d, err)
	}
	cfg.User, cfg.Passwd = cred.User, cred.Password
	host, port := cred.Host, cred.Port
	if port == "" {
		port = "3306"
	}
	cfg.Net = "tcp"
	switch {
	case (host == "" || host == "localhost") && cred.Socket != "":
		cfg.Net, cfg.Addr = "unix", cred.Socket
	case host == "":
		cfg.Addr = net.JoinHostPort("127.0.0.1", port)
	default:
		cfg.Addr = net.JoinHostPort(host, port)
	}
	cfg.DBName = d.Database()
	if database != nil {
		cfg.DBName = *database
	}
	q := u.Query()
	stallCheck := stall.DefaultIdle
	for k, vs := range q {
		v := ""
		if len(vs) > 0 {
			v = vs[len(vs)-1]
		}
		switch k {
		case "socket":
			cfg.Net, cfg.Addr = "unix", v
		case "defaults-file", "defaults_file":
			// read by mycnf.Resolve
		case "tls":
			cfg.TLSConfig = v
		case "timeout":
			t, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("dsn %s: parameter timeout=%q: %w", d, v, err)
			}
			cfg.Timeout = t
		case "stall_check":
			t, err := time.ParseDuration(v)
			if err != nil || t < 0 {
				return nil, fmt.Errorf("dsn %s: stall_check=%q is not a duration (like 2m, or 0 to turn the check off)", d, v)
			}
			stallCheck = t
		default:
			return nil, fmt.Errorf("dsn %s: unknown parameter %q (supported: socket, tls, timeout, stall_check, defaults-file)", d, k)
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = engine.DefaultConnectTimeout
	}
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("configuring charset: %w", err)
	}
	cfg.ParseTime = false
	cfg.InterpolateParams = false
	cfg.AllowAllFiles = false // LOAD DATA LOCAL only reads registered readers
	cfg.MultiStatements = false
	cfg.Logger = nopLogger{}
	cfg.Params = map[string]string{
		"time_zone": "'+00:00'",
		// Neutral SQL mode: SHOW CREATE output and values are not
		// affected by ANSI_QUOTES, PAD_CHAR_TO_FULL_LENGTH and friends; zero
		// dates load; 0 in AUTO_INCREMENT columns stays 0.
		"sql_mode": "'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
		// Tables without a key are ordered by every column: compare whole
		// values, not their first 1024 bytes, so the order is stable.
		"max_sort_length": "8388608",
	}
	// A session that waits stallCheck without a byte asks the server for
	// a new session (authenticated: failed handshakes count towards the
	// server's max_connect_errors) and fails if it does not answer.
	probeCfg := cfg.Clone()
	probeCfg.DialFunc = dialPlain
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialBuffered(ctx, network, addr, stall.Options{Engine: dsn.MySQL, Addr: addr, Idle: stallCheck, Recorder: stall.RecorderFrom(ctx),
			ProbeTimeout: cfg.Timeout, Probe: func(ctx context.Context) error {
				pc, err := mysql.NewConnector(probeCfg)
				if err != nil {
					return err
				}
				c, err := (&boundedConnector{Connector: pc, timeout: probeCfg.Timeout, addr: addr}).Connect(ctx)
				if err != nil {
					return err
				}
				return c.Close()
			}})
	}
	return cfg, nil
}

// readBufferSize is what one read from the server's socket may fetch. The
// driver reads at most 4 KiB at a time while packets are small: a backup of
// 1 GB of rows made about 250,000 read calls.
const readBufferSize = 256 << 10

// dialBuffered connects like the driver does, watched for a server that
// stops answering (stall), and reads through a buffer.
func dialBuffered(ctx context.Context, network, addr string, watch stall.Options) (net.Conn, error) {
	c, err := dialPlain(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c = stall.Wrap(lowat.Wrap(c), watch)
	return &bufferedConn{Conn: c, r: newConnReader(c)}, nil
}

// dialPlain connects like the driver does.
func dialPlain(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer // keep-alive on, as the driver sets it
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	engine.Dialed(ctx, addr)
	return c, nil
}

func newConnReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, readBufferSize) }

// bufferedConn is a connection whose reads go through a buffer. It hands
// out its socket (syscall.Conn) for the driver's liveness check of an idle
// pooled connection, which finds the buffer empty: the protocol sends
// nothing unasked.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no socket")
	}
	return sc.SyscallConn()
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// open returns a connection pool to d (database overrides the DSN's when not nil).
func open(ctx context.Context, d *dsn.DSN, database *string) (*sql.DB, error) {
	cfg, err := config(d, database)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d, err)
	}
	db := sql.OpenDB(&boundedConnector{Connector: conn, timeout: cfg.Timeout, addr: cfg.Addr})
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", d, err)
	}
	return db, nil
}

// boundedConnector opens sessions within a time limit. The driver's
// timeout bounds only the dial: a server that accepts the connection and
// never sends its greeting would hang the handshake forever.
type boundedConnector struct {
	driver.Connector
	timeout time.Duration
	addr    string
}

func (c *boundedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	wctx, watch := engine.WatchDial(tctx)
	conn, err := c.Connector.Connect(wctx)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return nil, watch.NoAnswer(dsn.MySQL, c.addr, c.timeout, err)
	}
	return conn, err
}

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// quoteString returns a single-quoted SQL string literal that is valid in
// any sql_mode (no backslash escapes needed except for backslash itself,
// which is doubled; NO_BACKSLASH_ESCAPES is never set by snapdata sessions).
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// mysqlErr returns the server error number of err, or 0.
func mysqlErr(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// isPrivilegeError reports access-denied errors.
func isPrivilegeError(err error) bool {
	switch mysqlErr(err) {
	case 1044, 1045, 1142, 1143, 1227, 1370:
		return true
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }
