package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

var _ engine.Swapper = (*Engine)(nil)

// DatabaseExists implements engine.Swapper.
func (e *Engine) DatabaseExists(ctx context.Context, d *dsn.DSN) (bool, error) {
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", d.Database()).Scan(&n); err != nil {
		return false, fmt.Errorf("look up database %s: %w", d.Database(), err)
	}
	return n > 0, nil
}

// Label implements engine.Swapper: the database's comment (MariaDB 10.5+).
func (e *Engine) Label(ctx context.Context, d *dsn.DSN) (string, error) {
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return "", err
	}
	defer db.Close()
	return schemaComment(ctx, db, d.Database())
}

func schemaComment(ctx context.Context, db *sql.DB, name string) (string, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'").Scan(&n); err != nil {
		return "", fmt.Errorf("read the comment of database %s: %w", name, err)
	}
	if n == 0 {
		return "", nil
	}
	var s string
	err := db.QueryRowContext(ctx, "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("database %s does not exist", name)
	}
	if err != nil {
		return "", fmt.Errorf("read the comment of database %s: %w", name, err)
	}
	return s, nil
}

// schemaObject is a view, trigger, routine or event with its definition.
type schemaObject struct {
	kind, name, create string
}

// Swap implements engine.Swapper. MySQL and MariaDB cannot rename a
// database, so the tables move: one RENAME TABLE statement moves every
// table of the target into previous and every table of built into the
// target, atomically. Views, triggers, routines and events cannot move
// between databases: the new copy's are read from built first and created
// in the target right after the rename (the old target's are dropped; the
// previous copy keeps its tables only). Triggers of the old target are
// dropped just before the rename, as RENAME TABLE refuses to move a table
// with triggers to another database: between those two statements the old
// target's tables have no triggers.
//
// RENAME TABLE waits for sessions that use the target's tables (their
// metadata locks) up to opts.Wait; with opts.Terminate the sessions whose
// current database is the target are ended first.
func (e *Engine) Swap(ctx context.Context, built, target *dsn.DSN, previous, previousLabel string, opts engine.SwapOptions) error {
	none := ""
	pool, err := open(ctx, target, &none)
	if err != nil {
		return err
	}
	defer pool.Close()
	c, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tname, bname := target.Database(), built.Database()
	if tname == "" || bname == "" || tname == bname || systemDatabases[tname] {
		return fmt.Errorf("swap %q for %q: refusing these names", bname, tname)
	}
	label, err := schemaComment(ctx, pool, bname)
	if err != nil {
		return err
	}
	var exists int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", tname).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", tname, err)
	}
	newTables, err := baseTables(ctx, c, bname)
	if err != nil {
		return err
	}
	objects, err := definitions(ctx, c, bname)
	if err != nil {
		return err
	}
	var oldTables []string
	var oldObjects []schemaObject
	if exists > 0 {
		if oldTables, err = baseTables(ctx, c, tname); err != nil {
			return err
		}
		if oldObjects, err = definitions(ctx, c, tname); err != nil {
			return err
		}
		if _, err := e.CreateLabeledScratch(ctx, target, previous, previousLabel); err != nil {
			return fmt.Errorf("create the database for the previous copy: %w", err)
		}
	} else if _, err := e.CreateLabeledScratch(ctx, target, tname, label); err != nil {
		return fmt.Errorf("create database %s: %w", tname, err)
	}
	// Triggers (of both) must go before the tables move.
	for _, o := range objects {
		if o.kind == "TRIGGER" {
			if _, err := c.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quoteIdent(bname)+"."+quoteIdent(o.name)); err != nil {
				return fmt.Errorf("swap: drop trigger %s of the new copy: %w", o.name, err)
			}
		}
	}
	if opts.Terminate {
		if err := killSessions(ctx, c, tname, opts); err != nil {
			return err
		}
	}
	wait := int(opts.Wait / time.Second)
	if wait < 1 {
		wait = 1
	}
	if _, err := c.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+itoa(wait)); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	for _, o := range oldObjects {
		if o.kind == "TRIGGER" {
			if _, err := c.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quoteIdent(tname)+"."+quoteIdent(o.name)); err != nil {
				return fmt.Errorf("swap: drop trigger %s of the old target: %w", o.name, err)
			}
		}
	}
	var moves []string
	for _, t := range oldTables {
		moves = append(moves, quoteIdent(tname)+"."+quoteIdent(t)+" TO "+quoteIdent(previous)+"."+quoteIdent(t))
	}
	for _, t := range newTables {
		moves = append(moves, quoteIdent(bname)+"."+quoteIdent(t)+" TO "+quoteIdent(tname)+"."+quoteIdent(t))
	}
	if len(moves) > 0 {
		if _, err := c.ExecContext(ctx, "RENAME TABLE "+strings.Join(moves, ", ")); err != nil {
			if mysqlErr(err) == 1205 {
				return fmt.Errorf("swap into %s: %w", tname, engine.ErrSessionsRemain)
			}
			return fmt.Errorf("swap: move the tables into %s: %w", tname, err)
		}
	}
	// The new copy's tables are in place: now its other objects.
	if _, err := c.ExecContext(ctx, "USE "+quoteIdent(tname)); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	for _, o := range oldObjects {
		if o.kind == "TRIGGER" {
			continue
		}
		if _, err := c.ExecContext(ctx, "DROP "+o.kind+" IF EXISTS "+quoteIdent(tname)+"."+quoteIdent(o.name)); err != nil {
			return fmt.Errorf("swap: drop %s %s of the old target: %w", strings.ToLower(o.kind), o.name, err)
		}
	}
	if err := createObjects(ctx, c, objects, bname, tname); err != nil {
		return err
	}
	if label != "" {
		if _, err := c.ExecContext(ctx, "ALTER DATABASE "+quoteIdent(tname)+" COMMENT "+quoteString(label)); err != nil && mysqlErr(err) != 1064 {
			return fmt.Errorf("swap: label %s: %w", tname, err)
		}
	}
	if _, err := c.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(bname)); err != nil {
		return fmt.Errorf("swap: drop the emptied database %s: %w", bname, err)
	}
	return nil
}

func baseTables(ctx context.Context, c *sql.Conn, db string) ([]string, error) {
	rows, err := names(ctx, c, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE') ORDER BY TABLE_NAME", db)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", db, err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out, nil
}

// definitions reads db's routines, views, triggers and events with their
// CREATE statements, in the order to create them.
func definitions(ctx context.Context, c *sql.Conn, db string) ([]schemaObject, error) {
	list, err := names(ctx, c, `SELECT 'FUNCTION', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'
UNION ALL SELECT 'PROCEDURE', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'
UNION ALL SELECT 'VIEW', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`, db, db, db, db, db)
	if err != nil {
		return nil, fmt.Errorf("list the views, triggers and routines of %s: %w", db, err)
	}
	// The column of SHOW CREATE's result that holds the statement.
	col := map[string]int{"FUNCTION": 2, "PROCEDURE": 2, "VIEW": 1, "TRIGGER": 2, "EVENT": 3}
	var out []schemaObject
	for _, r := range list {
		kind, name := r[0], r[1]
		rows, err := c.QueryContext(ctx, "SHOW CREATE "+kind+" "+quoteIdent(db)+"."+quoteIdent(name))
		if err != nil {
			return nil, fmt.Errorf("read %s %s.%s: %w", strings.ToLower(kind), db, name, err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if !rows.Next() {
			rows.Close()
			return nil, fmt.Errorf("read %s %s.%s: no definition (missing privileges?)", strings.ToLower(kind), db, name)
		}
		err = rows.Scan(ptrs...)
		rows.Close()
		if err != nil || col[kind] >= len(vals) || !vals[col[kind]].Valid {
			return nil, fmt.Errorf("read %s %s.%s: no definition (%v)", strings.ToLower(kind), db, name, err)
		}
		out = append(out, schemaObject{kind: kind, name: name, create: vals[col[kind]].String})
	}
	return out, nil
}

// createObjects creates objects (read from database from) in the current
// database: routines, then views (retrying those that name a view not yet
// made), then triggers and events.
func createObjects(ctx context.Context, c *sql.Conn, objects []schemaObject, from, to string) error {
	fix := func(s string) string {
		return strings.ReplaceAll(s, quoteIdent(from)+".", quoteIdent(to)+".")
	}
	for _, pass := range [][]string{{"FUNCTION", "PROCEDURE"}, {"VIEW"}, {"TRIGGER", "EVENT"}} {
		var todo []schemaObject
		for _, o := range objects {
			for _, k := range pass {
				if o.kind == k {
					todo = append(todo, o)
				}
			}
		}
		for len(todo) > 0 {
			var failed []schemaObject
			var lastErr error
			for _, o := range todo {
				if _, err := c.ExecContext(ctx, fix(o.create)); err != nil {
					failed = append(failed, o)
					lastErr = fmt.Errorf("swap: create %s %s in %s: %w", strings.ToLower(o.kind), o.name, to, err)
				}
			}
			if len(failed) == len(todo) {
				return lastErr
			}
			todo = failed
		}
	}
	return nil
}

// killSessions ends the sessions whose current database is db.
func killSessions(ctx context.Context, c *sql.Conn, db string, opts engine.SwapOptions) error {
	rows, err := names(ctx, c, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", db)
	if err != nil {
		return fmt.Errorf("list sessions on %s: %w", db, err)
	}
	if len(rows) > 0 && opts.Logger != nil {
		opts.Logger.Warn("ending sessions on the clone target before the swap", "database", db, "sessions", len(rows))
	}
	for _, r := range rows {
		if _, err := c.ExecContext(ctx, "KILL CONNECTION "+r[0]); err != nil && mysqlErr(err) != 1094 { // 1094: already gone
			return fmt.Errorf("end session %s on %s: %w", r[0], db, err)
		}
	}
	return nil
}
