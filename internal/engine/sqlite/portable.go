package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// portableType maps a declared SQLite type to a portable type, following
// SQLite's affinity rules with the common date, boolean and JSON names.
func portableType(decl string) string {
	d := strings.ToUpper(decl)
	switch {
	case strings.Contains(d, "INT"):
		return "integer"
	case strings.Contains(d, "BOOL"):
		return "boolean"
	case strings.Contains(d, "TIMESTAMP"), strings.Contains(d, "DATETIME"):
		return "timestamp"
	case strings.Contains(d, "DATE"):
		return "date"
	case strings.Contains(d, "TIME"):
		return "time"
	case strings.Contains(d, "JSON"):
		return "json"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case strings.Contains(d, "BLOB"), d == "":
		return "bytes"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "float"
	}
	return "numeric"
}

// Schema implements engine.RowReader.
func (e *Engine) Schema(ctx context.Context, snap engine.SnapshotReader) ([]engine.TableSchema, error) {
	m, _, _, err := loadMeta(ctx, snap)
	if err != nil {
		return nil, err
	}
	var out []engine.TableSchema
	for _, t := range m.Tables {
		ts := engine.TableSchema{Name: t.Name}
		for _, c := range t.stored() {
			ts.Columns = append(ts.Columns, engine.Column{Name: c.Name, Type: portableType(c.Decl), SourceType: c.Decl, Nullable: !c.NotNull && c.PK == 0, PrimaryKey: c.PK > 0})
		}
		out = append(out, ts)
	}
	return out, nil
}

// ReadRows implements engine.RowReader: the stored columns, without the
// rowid. Values keep SQLite's storage classes (int64, float64, string,
// []byte, nil).
func (e *Engine) ReadRows(ctx context.Context, snap engine.SnapshotReader, name string, fn func(row []any) error) error {
	m, _, _, err := loadMeta(ctx, snap)
	if err != nil {
		return err
	}
	var t *table
	for i := range m.Tables {
		if m.Tables[i].Name == name {
			t = &m.Tables[i]
		}
	}
	if t == nil {
		return fmt.Errorf("table %q is not in the snapshot", name)
	}
	// SQLite stores booleans as integers; the portable form says boolean.
	var boolCols []int
	for i, c := range t.stored() {
		if portableType(c.Decl) == "boolean" {
			boolCols = append(boolCols, i)
		}
	}
	return eachRow(ctx, snap, *t, func(vals []any) error {
		row := vals
		if t.Rowid {
			row = vals[1:]
		}
		for _, i := range boolCols {
			if n, ok := row[i].(int64); ok && (n == 0 || n == 1) {
				row[i] = n == 1
			}
		}
		return fn(row)
	}, nil)
}

var sqliteDecl = map[string]string{
	"integer": "INTEGER", "float": "REAL", "numeric": "NUMERIC", "text": "TEXT", "bytes": "BLOB",
	"boolean": "BOOLEAN", "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP",
	"json": "JSON", "uuid": "TEXT",
}

// Import implements engine.Importer: it creates each table with mapped
// column types and loads its rows, in a temporary file renamed into place
// when complete.
func (e *Engine) Import(ctx context.Context, target *dsn.DSN, tables []engine.TableSchema, rows func(table string, fn func(row []any) error) error, opts engine.RestoreOptions) (err error) {
	var unmapped []string
	for _, t := range tables {
		for _, c := range t.Columns {
			if _, ok := sqliteDecl[c.Type]; !ok {
				unmapped = append(unmapped, fmt.Sprintf("%s.%s (%s)", t.Name, c.Name, c.Type))
			}
		}
	}
	if len(unmapped) > 0 {
		return fmt.Errorf("cannot map these columns to SQLite types: %s", strings.Join(unmapped, ", "))
	}
	path := target.Path
	if _, serr := os.Stat(path); serr == nil && !opts.Clean {
		return fmt.Errorf("%s already exists: %w", path, engine.ErrTargetNotEmpty)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", path, err)
	}
	tmp := path + ".snapdata-import"
	_ = os.Remove(tmp)
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	db, conn, err := openDB(ctx, tmp, false)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF"); err != nil {
		return err
	}
	for _, t := range tables {
		var defs, pk, cols, marks []string
		for _, c := range t.Columns {
			d := quote(c.Name) + " " + sqliteDecl[c.Type]
			if !c.Nullable && !c.PrimaryKey {
				d += " NOT NULL"
			}
			defs = append(defs, d)
			if c.PrimaryKey {
				pk = append(pk, quote(c.Name))
			}
			cols = append(cols, quote(c.Name))
			marks = append(marks, "?")
		}
		if len(pk) > 0 {
			defs = append(defs, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
		}
		if _, err := conn.ExecContext(ctx, "CREATE TABLE "+quote(t.Name)+" (\n  "+strings.Join(defs, ",\n  ")+"\n)"); err != nil {
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+quote(t.Name)+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
		if err != nil {
			tx.Rollback() //nolint:errcheck // failing anyway
			return fmt.Errorf("load table %s: %w", t.Name, err)
		}
		err = rows(t.Name, func(row []any) error {
			for i, v := range row {
				if b, ok := v.(bool); ok {
					if b {
						row[i] = int64(1)
					} else {
						row[i] = int64(0)
					}
				}
			}
			_, err := stmt.ExecContext(ctx, row...)
			return err
		})
		stmt.Close()
		if err != nil {
			tx.Rollback() //nolint:errcheck // failing anyway
			return fmt.Errorf("load table %s: %w", t.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("load table %s: %w", t.Name, err)
		}
		opts.Progress.TableDone()
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = DELETE"); err != nil {
		return err
	}
	conn.Close()
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var (
	_ engine.RowReader = (*Engine)(nil)
	_ engine.Importer  = (*Engine)(nil)
)
