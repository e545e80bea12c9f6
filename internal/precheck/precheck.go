// Package precheck decides whether a scheduled backup should run now: the
// replication lag of a replica source, and the age of the source's last good
// snapshot. A failed pre-check skips a run with a reason; it is not a
// failure. Only an error while checking (the source is unreachable, access
// is denied) is one.
package precheck

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/mycnf"
)

// Lag is the replication state of a source.
type Lag struct {
	Replica bool          // the source replicates from another server
	Known   bool          // Lag is meaningful (always true for a primary)
	Lag     time.Duration // how far behind the primary; 0 for a primary
	Detail  string        // what was measured, for logs and skip reasons
}

// ReplicationLag measures the replication lag of src. A primary (or SQLite)
// has no lag. Errors never contain the DSN's password.
func ReplicationLag(ctx context.Context, src *dsn.DSN) (Lag, error) {
	switch src.Engine {
	case dsn.Postgres:
		return postgresLag(ctx, src)
	case dsn.MySQL:
		return mysqlLag(ctx, src)
	default:
		return Lag{Known: true, Detail: src.Engine + " has no replication"}, nil
	}
}

func postgresLag(ctx context.Context, src *dsn.DSN) (Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// pgx gets the DSN without its secrets (its messages quote what it is
	// given); the password is set on the parsed config.
	public, sec := src.SplitSecrets()
	opts := pgx.ParseConfigOptions{}
	if sec.SSLPassword != "" {
		opts.GetSSLPassword = func(context.Context) string { return sec.SSLPassword }
	}
	cfg, err := pgx.ParseConfigWithOptions(public.String(), opts)
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
	}
	if sec.HasPassword {
		cfg.Password = sec.Password
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: connect: %w", src, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: pg_is_in_recovery(): %w", src, err)
	}
	if !inRecovery {
		return Lag{Known: true, Detail: "primary (not in recovery)"}, nil
	}
	// A standby that has replayed everything it received is caught up even
	// if the primary has been idle for a long time; otherwise the lag is the
	// age of the last replayed transaction.
	var caughtUp *bool
	var seconds *float64
	err = conn.QueryRow(ctx, `SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
		EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8`).Scan(&caughtUp, &seconds)
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
	}
	if caughtUp != nil && *caughtUp {
		return Lag{Replica: true, Known: true, Detail: "standby has replayed all WAL it received"}, nil
	}
	if seconds == nil {
		return Lag{Replica: true, Detail: "standby has not replayed any transaction yet (pg_last_xact_replay_timestamp() is NULL)"}, nil
	}
	d := time.Duration(*seconds * float64(time.Second))
	if d < 0 {
		d = 0
	}
	return Lag{Replica: true, Known: true, Lag: d, Detail: "standby replay lag " + d.Round(time.Second).String()}, nil
}

// MySQLConfig turns a mysql:// or mariadb:// DSN into a driver config.
// Query parameters: socket (a unix socket path), tls (as the driver's tls).
func MySQLConfig(src *dsn.DSN) (*mysql.Config, error) {
	u := src.URL
	if u == nil {
		return nil, fmt.Errorf("%s is not a MySQL URL", src)
	}
	c := mysql.NewConfig()
	// What the DSN lacks comes from MYSQL_PWD and the option file, as
	// for backups (internal/mycnf).
	cred, err := mycnf.Resolve(src, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("dsn %s: %w", src, err)
	}
	c.User, c.Passwd = cred.User, cred.Password
	c.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	switch {
	case q.Get("socket") != "":
		c.Net, c.Addr = "unix", q.Get("socket")
	case (cred.Host == "" || cred.Host == "localhost") && cred.Socket != "":
		c.Net, c.Addr = "unix", cred.Socket
	case cred.Host == "":
		c.Net, c.Addr = "unix", "/run/mysqld/mysqld.sock"
	default:
		port := cred.Port
		if port == "" {
			port = "3306"
		}
		c.Net, c.Addr = "tcp", net.JoinHostPort(cred.Host, port)
	}
	if t := q.Get("tls"); t != "" {
		c.TLSConfig = t
	}
	c.Timeout = 30 * time.Second
	return c, nil
}

func mysqlLag(ctx context.Context, src *dsn.DSN) (Lag, error) {
	cfg, err := MySQLConfig(src)
	if err != nil {
		return Lag{}, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, "SHOW REPLICA STATUS")
	if err != nil {
		// Servers before MySQL 8.0.22 / MariaDB 10.5.1 only know the old name.
		rows, err = db.QueryContext(ctx, "SHOW SLAVE STATUS")
	}
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: SHOW REPLICA STATUS: %w", src, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
	}
	idx := func(names ...string) int {
		for i, c := range cols {
			for _, n := range names {
				if strings.EqualFold(c, n) {
					return i
				}
			}
		}
		return -1
	}
	iSec := idx("Seconds_Behind_Master", "Seconds_Behind_Source")
	iSQL := idx("Slave_SQL_Running", "Replica_SQL_Running")
	iIO := idx("Slave_IO_Running", "Replica_IO_Running")
	iConn := idx("Connection_name", "Channel_Name")
	if iSec < 0 {
		return Lag{}, fmt.Errorf("replication lag of %s: SHOW REPLICA STATUS has no Seconds_Behind_Master column", src)
	}
	out := Lag{Known: true}
	n := 0
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
		}
		n++
		out.Replica = true
		name := ""
		if iConn >= 0 && len(vals[iConn]) > 0 {
			name = " (" + string(vals[iConn]) + ")"
		}
		if iSQL >= 0 && !strings.EqualFold(string(vals[iSQL]), "Yes") {
			return Lag{Replica: true, Detail: "replica SQL thread is not running" + name + ", lag unknown"}, nil
		}
		if vals[iSec] == nil {
			io := ""
			if iIO >= 0 {
				io = ", IO thread " + string(vals[iIO])
			}
			return Lag{Replica: true, Detail: "Seconds_Behind_Master is NULL" + name + io + ", lag unknown"}, nil
		}
		s, err := strconv.ParseInt(string(vals[iSec]), 10, 64)
		if err != nil {
			return Lag{}, fmt.Errorf("replication lag of %s: Seconds_Behind_Master %q: %w", src, vals[iSec], err)
		}
		if d := time.Duration(s) * time.Second; d >= out.Lag {
			out.Lag = d
			out.Detail = "replica lag " + d.String() + name
		}
	}
	if err := rows.Err(); err != nil {
		return Lag{}, fmt.Errorf("replication lag of %s: %w", src, err)
	}
	if n == 0 {
		return Lag{Known: true, Detail: "primary (no replica status)"}, nil
	}
	return out, nil
}

// Decision is the verdict of the pre-checks for one source.
type Decision struct {
	Skip   bool
	Reason string // short, for metrics labels: "replication_lag", "lag_unknown", "min_interval"
	Detail string // for logs and notifications
}

// CheckLag decides on a measured lag against a maximum (0: no limit).
func CheckLag(l Lag, max time.Duration) Decision {
	if max <= 0 || !l.Replica {
		return Decision{}
	}
	if !l.Known {
		return Decision{Skip: true, Reason: "lag_unknown", Detail: l.Detail}
	}
	if l.Lag > max {
		return Decision{Skip: true, Reason: "replication_lag", Detail: fmt.Sprintf("%s exceeds max_replication_lag %s", l.Detail, max)}
	}
	return Decision{}
}

// CheckMinInterval skips when the last good snapshot (zero: none) is younger
// than min (0: no limit) at now.
func CheckMinInterval(last time.Time, min time.Duration, now time.Time) Decision {
	if min <= 0 || last.IsZero() {
		return Decision{}
	}
	if age := now.Sub(last); age < min {
		return Decision{Skip: true, Reason: "min_interval", Detail: fmt.Sprintf("last good snapshot is %s old, younger than min_interval %s", age.Round(time.Second), min)}
	}
	return Decision{}
}
