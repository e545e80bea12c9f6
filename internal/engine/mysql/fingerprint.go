package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
)

// Fingerprint implements engine.Fingerprinter with the server's binary log:
// every committed write (DML, DDL, also to non-transactional tables) is
// written to the binary log and moves its position, so an unchanged position
// means no data changed and `backup --skip-unchanged` need not read any.
//
// The fingerprint is "" (unknown: the backup reads the data and compares it
// with the previous snapshot instead) when:
//   - the binary log is off (@@log_bin = 0);
//   - the server is a replica that does not log what it replicates
//     (log_slave_updates = OFF), or whether it is a replica cannot be read;
//   - no position can be read: MariaDB's @@gtid_binlog_pos needs no privilege;
//     on MySQL it is @@gtid_executed with gtid_mode=ON, otherwise SHOW
//     BINARY LOG STATUS / SHOW MASTER STATUS (REPLICATION CLIENT privilege).
//
// Writes from sessions that turned binary logging off (SET sql_log_bin = 0,
// which needs SUPER) are invisible to it; so is a RESET MASTER that brings the
// position back to an earlier value. The application takes the fingerprint
// before the backup's consistent snapshot, so a write that races the backup
// can only cause one extra backup, never a skipped change.
func (e *Engine) Fingerprint(ctx context.Context, src *dsn.DSN) (string, error) {
	db, err := open(ctx, src, nil)
	if err != nil {
		return "", err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", src, err)
	}
	defer c.Close()
	return binlogFingerprint(ctx, c)
}

func binlogFingerprint(ctx context.Context, q querier) (string, error) {
	var (
		logBin            int
		serverID          int64
		version, hostname string
		port              int
	)
	err := q.QueryRowContext(ctx, "SELECT @@global.log_bin, @@global.server_id, @@version, @@hostname, @@port").
		Scan(&logBin, &serverID, &version, &hostname, &port)
	if err != nil {
		return "", fmt.Errorf("reading binary log settings: %w", err)
	}
	if logBin != 1 {
		return "", nil
	}
	// MySQL 8.0.26+ calls it log_replica_updates; MariaDB and older MySQL
	// log_slave_updates.
	logReplicaUpdates := 0
	if err := q.QueryRowContext(ctx, "SELECT @@global.log_replica_updates").Scan(&logReplicaUpdates); err != nil {
		if err := q.QueryRowContext(ctx, "SELECT @@global.log_slave_updates").Scan(&logReplicaUpdates); err != nil {
			return "", fmt.Errorf("reading log_slave_updates: %w", err)
		}
	}
	if logReplicaUpdates != 1 {
		replica, known := isReplica(ctx, q)
		if replica || !known {
			return "", nil
		}
	}
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	pos := ""
	if mariadb {
		var gtid sql.NullString
		if err := q.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&gtid); err != nil {
			return "", fmt.Errorf("reading @@gtid_binlog_pos: %w", err)
		}
		// Empty until the first transaction is logged; still a valid,
		// stable position ("nothing logged yet").
		pos = "gtid=" + gtid.String
	} else {
		var mode sql.NullString
		if err := q.QueryRowContext(ctx, "SELECT @@global.gtid_mode").Scan(&mode); err == nil && mode.String == "ON" {
			var executed sql.NullString
			if err := q.QueryRowContext(ctx, "SELECT @@global.gtid_executed").Scan(&executed); err != nil {
				return "", fmt.Errorf("reading @@gtid_executed: %w", err)
			}
			pos = "gtid=" + strings.ReplaceAll(executed.String, "\n", "")
		} else {
			file, offset, ok := binaryLogStatus(ctx, q)
			if !ok {
				return "", nil
			}
			pos = "file=" + file + ":" + offset
		}
	}
	return fmt.Sprintf("mysql1:%s:%d:%d:%s", hostname, port, serverID, pos), nil
}

// binaryLogStatus reads the current binary log file and offset with
// SHOW BINARY LOG STATUS (MySQL 8.2+) or SHOW MASTER STATUS.
func binaryLogStatus(ctx context.Context, q querier) (file, pos string, ok bool) {
	for _, stmt := range []string{"SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"} {
		r, err := showCreate(ctx, q, stmt)
		if err != nil {
			continue
		}
		if r["File"].String != "" && r["Position"].String != "" {
			return r["File"].String, r["Position"].String, true
		}
	}
	return "", "", false
}

// isReplica reports whether the server replicates from a source; known is
// false when that cannot be read (no privilege).
func isReplica(ctx context.Context, q querier) (replica, known bool) {
	for _, stmt := range []string{"SHOW ALL SLAVES STATUS", "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"} {
		n, err := countRows(ctx, q, stmt)
		if err != nil {
			continue
		}
		return n > 0, true
	}
	return false, false
}

func countRows(ctx context.Context, q querier, query string) (int, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
