package mysql

import (
	"context"
	"fmt"

	"github.com/snapdata/snapdata/internal/dsn"
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
