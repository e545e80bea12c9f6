package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/sqlscript"
)

var _ engine.SQLRunner = (*Engine)(nil)

// RunSQL implements engine.SQLRunner. The script is split the way the
// mysql client splits it (quotes, backticks, comments, DELIMITER lines)
// and its statements run one by one on one session, with the server's
// default sql_mode and time zone (not snapdata's neutral ones), inside
// START TRANSACTION … COMMIT. MySQL and MariaDB commit implicitly before
// and after DDL (CREATE, ALTER, DROP, RENAME, TRUNCATE, …), so only a
// script of row changes is all or nothing; a failing script that ran DDL
// leaves what ran before the failure applied (the clone then discards the
// copy). The error names name:LINE of the failing statement (of the line
// inside it when the server's syntax error says "at line N") and the
// server's message as the mysql client prints it.
func (e *Engine) RunSQL(ctx context.Context, d *dsn.DSN, name string, script io.Reader) error {
	text, err := io.ReadAll(script)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	stmts, err := sqlscript.Split(string(text), sqlscript.MySQL)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	db, err := open(ctx, d, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", d, err)
	}
	defer conn.Close()
	for _, s := range []string{
		"SET SESSION sql_mode = @@GLOBAL.sql_mode, time_zone = @@GLOBAL.time_zone, max_sort_length = @@GLOBAL.max_sort_length",
		"START TRANSACTION",
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: prepare the session on %s: %w", name, d, err)
		}
	}
	for _, st := range stmts {
		if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			line, msg := describe(st, err)
			return fmt.Errorf("%s:%d: %s", name, line, msg)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("%s: commit: %w", name, err)
	}
	return nil
}

var atLineRE = regexp.MustCompile(` at line (\d+)$`)

// describe returns the line of the error (the statement's, moved by the
// "at line N" of a syntax error) and the message as the mysql client
// shows it: ERROR 1064 (42000): ….
func describe(st sqlscript.Statement, err error) (int, string) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return st.Line, err.Error()
	}
	line := st.Line
	if m := atLineRE.FindStringSubmatch(me.Message); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 {
			line += n - 1
		}
	}
	state := string(me.SQLState[:])
	if state == "\x00\x00\x00\x00\x00" {
		return line, fmt.Sprintf("ERROR %d: %s", me.Number, me.Message)
	}
	return line, fmt.Sprintf("ERROR %d (%s): %s", me.Number, state, me.Message)
}
