package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/sqlscript"
)

var _ engine.SQLRunner = (*Engine)(nil)

// RunSQL implements engine.SQLRunner: it splits script into statements
// (sqlscript's PostgreSQL rules: quotes, dollar quotes, comments, BEGIN
// ATOMIC bodies) and runs them in one transaction on one session, so a
// failing script leaves nothing applied. The error names name:LINE of the
// failing statement (the line of the error's position inside it when the
// server gives one) and the server's message. A script's own COMMIT ends
// that transaction early (what follows runs in autocommit); statements
// that cannot run in a transaction (VACUUM, CREATE INDEX CONCURRENTLY,
// CREATE DATABASE) fail.
func (e *Engine) RunSQL(ctx context.Context, db *dsn.DSN, name string, script io.Reader) error {
	text, err := io.ReadAll(script)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	stmts, err := sqlscript.Split(string(text), sqlscript.Postgres)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	// The hook runs with the server's, database's and role's settings
	// (DateStyle, TimeZone, statement_timeout, …), as psql would, not with
	// the fixed ones snapdata's own sessions use.
	cfg, err := connConfig(db, false)
	if err != nil {
		return err
	}
	for k := range sessionParams(false) {
		if k != "application_name" && k != "standard_conforming_strings" {
			delete(cfg.RuntimeParams, k)
		}
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", db, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := execSQL(ctx, c, "BEGIN"); err != nil {
		return fmt.Errorf("%s: begin a transaction on %s: %w", name, db, err)
	}
	for _, st := range stmts {
		if copyStdinRE.MatchString(st.SQL) {
			return fmt.Errorf("%s:%d: COPY … FROM STDIN reads psql's data lines, which a hook script cannot carry: use INSERT, COPY FROM a server file, or a command hook running psql", name, st.Line)
		}
		if err := execSQL(ctx, c, st.SQL); err != nil {
			return fmt.Errorf("%s:%d: %w", name, errorLine(st, err), serverMessage(err))
		}
	}
	if err := execSQL(ctx, c, "COMMIT"); err != nil {
		return fmt.Errorf("%s: commit: %w", name, serverMessage(err))
	}
	return nil
}

var copyStdinRE = regexp.MustCompile(`(?is)^COPY\b.*\bFROM\s+STDIN\b`)

// errorLine is the line of the statement, moved to the line of the
// server's error position when it gives one (a syntax error).
func errorLine(st sqlscript.Statement, err error) int {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position <= 0 {
		return st.Line
	}
	line, n := st.Line, 0
	for _, r := range st.SQL { // Position counts characters from 1
		n++
		if n >= int(pe.Position) {
			break
		}
		if r == '\n' {
			line++
		}
	}
	return line
}

// serverMessage shows a server error as "ERROR: message (SQLSTATE code)"
// with its detail and hint, which is what psql prints.
func serverMessage(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	msg := fmt.Sprintf("%s: %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
	if pe.Detail != "" {
		msg += "; DETAIL: " + pe.Detail
	}
	if pe.Hint != "" {
		msg += "; HINT: " + pe.Hint
	}
	return &scriptError{msg: msg, err: err}
}

type scriptError struct {
	msg string
	err error
}

func (e *scriptError) Error() string { return e.msg }
func (e *scriptError) Unwrap() error { return e.err }
