package mysql

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// systemDatabases are never listed as user databases.
var systemDatabases = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// CreateScratch creates an empty database name on server's server.
func (e *Engine) CreateScratch(ctx context.Context, server *dsn.DSN, name string) (*dsn.DSN, error) {
	if name == "" || systemDatabases[name] {
		return nil, fmt.Errorf("refusing scratch database name %q", name)
	}
	none := ""
	db, err := open(ctx, server, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)+" CHARACTER SET utf8mb4"); err != nil {
		return nil, fmt.Errorf("creating scratch database %s: %w", name, err)
	}
	return server.WithDatabase(name), nil
}

// CreateLabeledScratch implements engine.ScratchLabeler: the marker is the
// database's comment (MariaDB 10.5 and later; a server that has no
// database comments gets an unlabeled scratch database, which is never
// taken for a leftover).
func (e *Engine) CreateLabeledScratch(ctx context.Context, server *dsn.DSN, name, marker string) (*dsn.DSN, error) {
	if name == "" || systemDatabases[name] {
		return nil, fmt.Errorf("refusing scratch database name %q", name)
	}
	none := ""
	db, err := open(ctx, server, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	create := "CREATE DATABASE " + quoteIdent(name) + " CHARACTER SET utf8mb4"
	if _, err := db.ExecContext(ctx, create+" COMMENT "+quoteString(marker)); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1064 { // a syntax error: no database comments
			return nil, fmt.Errorf("creating scratch database %s: %w", name, err)
		}
		if _, err := db.ExecContext(ctx, create); err != nil {
			return nil, fmt.Errorf("creating scratch database %s: %w", name, err)
		}
	}
	return server.WithDatabase(name), nil
}

// ListScratch implements engine.ScratchLabeler. Sessions counts the
// connections this user may see.
func (e *Engine) ListScratch(ctx context.Context, server *dsn.DSN, prefix string) ([]engine.ScratchDB, error) {
	none := ""
	db, err := open(ctx, server, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	comment := "SCHEMA_COMMENT"
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'").Scan(&n); err != nil {
		return nil, fmt.Errorf("list scratch databases: %w", err)
	}
	if n == 0 {
		comment = "''"
	}
	rows, err := db.QueryContext(ctx, `SELECT s.SCHEMA_NAME, `+comment+`,
  (SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.DB = s.SCHEMA_NAME)
FROM information_schema.SCHEMATA s WHERE LEFT(s.SCHEMA_NAME, CHAR_LENGTH(?)) = ? ORDER BY 1`, prefix, prefix)
	if err != nil {
		return nil, fmt.Errorf("list scratch databases: %w", err)
	}
	defer rows.Close()
	var out []engine.ScratchDB
	for rows.Next() {
		var s engine.ScratchDB
		if err := rows.Scan(&s.Name, &s.Marker, &s.Sessions); err != nil {
			return nil, fmt.Errorf("list scratch databases: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DropScratch drops the database db names.
func (e *Engine) DropScratch(ctx context.Context, d *dsn.DSN) error {
	name := d.Database()
	if name == "" || systemDatabases[name] {
		return fmt.Errorf("refusing to drop database %q", name)
	}
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); err != nil {
		return fmt.Errorf("dropping scratch database %s: %w", name, err)
	}
	return nil
}

// Databases lists the user databases of server (system schemas excluded).
func (e *Engine) Databases(ctx context.Context, server *dsn.DSN) ([]string, error) {
	none := ""
	db, err := open(ctx, server, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := names(ctx, db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return nil, fmt.Errorf("listing databases on %s: %w", server, err)
	}
	var out []string
	for _, r := range rows {
		if !systemDatabases[r[0]] {
			out = append(out, r[0])
		}
	}
	return out, nil
}
