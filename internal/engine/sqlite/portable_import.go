package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

var sqliteDecl = map[string]string{
	"integer": "INTEGER", "float": "REAL", "numeric": "NUMERIC", "text": "TEXT", "bytes": "BLOB",
	"boolean": "BOOLEAN", "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP",
	"json": "JSON", "uuid": "TEXT",
}

// DecimalText is the declared type of exact numerics imported as text:
// the name holds "TEXT", so SQLite gives the column TEXT affinity and keeps
// 1.99 as the string "1.99" (a REAL would hold 1.99000000000000002); the
// portable export reads DECIMAL_TEXT columns back as numeric.
const DecimalText = "DECIMAL_TEXT"

// declFor is the declared SQLite type of an imported column.
func declFor(c engine.Column, decimal string) string {
	switch c.Type {
	case "numeric":
		base := DecimalText
		if decimal == "real" {
			base = "NUMERIC"
		}
		if c.Precision > 0 {
			return fmt.Sprintf("%s(%d,%d)", base, c.Precision, c.Scale)
		}
		return base
	case "text":
		if c.Length > 0 {
			return fmt.Sprintf("VARCHAR(%d)", c.Length)
		}
	}
	return sqliteDecl[c.Type]
}

func sqliteDefault(c engine.Column) string {
	d := c.Default
	if d == nil {
		return ""
	}
	switch d.Kind {
	case engine.DefaultCurrentTimestamp:
		if c.Type == "date" {
			return "CURRENT_DATE"
		}
		return "CURRENT_TIMESTAMP"
	case engine.DefaultCurrentDate:
		return "CURRENT_DATE"
	case engine.DefaultCurrentTime:
		return "CURRENT_TIME"
	case engine.DefaultLiteral:
		switch c.Type {
		case "integer", "float":
			if sqliteNumLitRE.MatchString(d.Value) {
				return d.Value
			}
		case "boolean":
			switch strings.ToLower(d.Value) {
			case "1", "true", "t":
				return "1"
			case "0", "false", "f":
				return "0"
			}
			return ""
		}
		return "'" + strings.ReplaceAll(d.Value, "'", "''") + "'"
	}
	return ""
}

// Import implements engine.Importer: it creates each table with mapped
// column types (exact numerics as text unless opts.Import.SQLiteDecimal is
// "real"), constant defaults, its primary key (an identity INTEGER PRIMARY
// KEY stays the rowid) and foreign keys, loads its rows, then creates the
// indexes, in a temporary file renamed into place when complete.
func (e *Engine) Import(ctx context.Context, target *dsn.DSN, tables []engine.TableSchema, rows func(table string, fn func(row []any) error) error, opts engine.RestoreOptions) (err error) {
	rep := opts.Import
	decimal := "text"
	if rep != nil && rep.SQLiteDecimal != "" {
		decimal = rep.SQLiteDecimal
	}
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
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF"); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, t := range tables {
		have[t.Name] = true
	}
	for _, t := range tables {
		var defs, pk, cols, marks []string
		var pkCols []engine.Column
		for _, c := range t.Columns {
			if c.PrimaryKey {
				pkCols = append(pkCols, c)
			}
		}
		rowid := len(pkCols) == 1 && pkCols[0].Identity && pkCols[0].Type == "integer"
		for _, c := range t.Columns {
			d := quote(c.Name) + " " + declFor(c, decimal)
			if rowid && c.PrimaryKey {
				d = quote(c.Name) + " INTEGER PRIMARY KEY"
				if t.NextIdentity > 0 {
					d += " AUTOINCREMENT"
				}
			} else if c.Identity {
				rep.Reportf(t.Name, "identity", c.Name, "SQLite numbers rows only through a single INTEGER PRIMARY KEY; this column is not one")
			}
			if !c.Nullable && !c.PrimaryKey {
				d += " NOT NULL"
			}
			if def := sqliteDefault(c); def != "" && !c.Identity {
				d += " DEFAULT " + def
			} else if c.Default != nil && !c.Identity {
				rep.Reportf(t.Name, "default", c.Name, "default %q cannot be written for a %s column", c.Default.Value, c.Type)
			}
			defs = append(defs, d)
			if c.PrimaryKey {
				pk = append(pk, quote(c.Name))
			}
			cols = append(cols, quote(c.Name))
			marks = append(marks, "?")
		}
		if len(pk) > 0 && !rowid {
			defs = append(defs, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
		}
		// SQLite has no ALTER TABLE … ADD FOREIGN KEY: the keys are
		// declared here and not checked while loading (foreign_keys is off).
		for _, fk := range t.ForeignKeys {
			if !have[fk.RefTable] {
				rep.Reportf(t.Name, "foreign key", fk.Name, "references %s, which is not imported", fk.RefTable)
				continue
			}
			d := "FOREIGN KEY (" + quoteJoin(fk.Columns) + ") REFERENCES " + quote(fk.RefTable) + " (" + quoteJoin(fk.RefColumns) + ")"
			if fk.OnDelete != "" {
				d += " ON DELETE " + fk.OnDelete
			}
			if fk.OnUpdate != "" {
				d += " ON UPDATE " + fk.OnUpdate
			}
			defs = append(defs, d)
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
	used := map[string]bool{}
	for _, t := range tables {
		used[strings.ToLower(t.Name)] = true
	}
	for _, t := range tables {
		for _, ix := range t.Indexes {
			if len(ix.Columns) == 0 {
				continue
			}
			name := ix.Name
			if name == "" {
				name = t.Name + "_" + strings.Join(ix.Columns, "_") + "_idx"
			}
			base := name
			for i := 2; used[strings.ToLower(name)]; i++ {
				name = base + "_" + strconv.Itoa(i)
			}
			used[strings.ToLower(name)] = true
			u := ""
			if ix.Unique {
				u = "UNIQUE "
			}
			if _, err := conn.ExecContext(ctx, "CREATE "+u+"INDEX "+quote(name)+" ON "+quote(t.Name)+" ("+quoteJoin(ix.Columns)+")"); err != nil {
				return fmt.Errorf("create index %s on %s: %w", name, t.Name, err)
			}
		}
		if t.NextIdentity > 0 {
			for _, c := range t.Columns {
				if c.Identity && c.PrimaryKey {
					q := "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?"
					res, err := conn.ExecContext(ctx, q, t.NextIdentity-1, t.Name)
					if err != nil {
						return fmt.Errorf("set the next id of %s: %w", t.Name, err)
					}
					if n, _ := res.RowsAffected(); n == 0 {
						if _, err := conn.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", t.Name, t.NextIdentity-1); err != nil {
							return fmt.Errorf("set the next id of %s: %w", t.Name, err)
						}
					}
				}
			}
		}
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

func quoteJoin(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quote(c)
	}
	return strings.Join(q, ", ")
}
