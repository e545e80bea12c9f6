package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
)

// checkInboundFKs warns about the foreign keys of tables a restore of
// chosen tables kept that the restored rows no longer satisfy: the tables
// were replaced with foreign_key_checks off, which keeps every row of the
// other tables but does not check them.
func checkInboundFKs(ctx context.Context, db *sql.DB, schema string, chosen map[string]bool, log *slog.Logger) error {
	rows, err := db.QueryContext(ctx, `SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`, schema, schema)
	if err != nil {
		return fmt.Errorf("list foreign keys that reference the restored tables: %w", err)
	}
	type fk struct {
		name, table, ref string
		cols, refCols    []string
	}
	var fks []*fk
	for rows.Next() {
		var name, table, ref, col, refCol string
		if err := rows.Scan(&name, &table, &ref, &col, &refCol); err != nil {
			rows.Close()
			return fmt.Errorf("list foreign keys that reference the restored tables: %w", err)
		}
		if !chosen[ref] || chosen[table] {
			continue
		}
		if n := len(fks); n == 0 || fks[n-1].name != name || fks[n-1].table != table {
			fks = append(fks, &fk{name: name, table: table, ref: ref})
		}
		f := fks[len(fks)-1]
		f.cols = append(f.cols, col)
		f.refCols = append(f.refCols, refCol)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list foreign keys that reference the restored tables: %w", err)
	}
	for _, f := range fks {
		var notNull, match []string
		for i, c := range f.cols {
			notNull = append(notNull, "c."+quoteIdent(c)+" IS NOT NULL")
			match = append(match, "p."+quoteIdent(f.refCols[i])+" = c."+quoteIdent(c))
		}
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s.%s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s.%s p WHERE %s)",
			quoteIdent(schema), quoteIdent(f.table), strings.Join(notNull, " AND "), quoteIdent(schema), quoteIdent(f.ref), strings.Join(match, " AND "))
		var n int64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("check foreign key %s of %s: %w", f.name, f.table, err)
		}
		if n > 0 {
			log.Warn("rows of a table the restore kept reference rows the restored table does not have: the foreign key is not checked for them",
				"table", f.table, "foreign_key", f.name, "references", f.ref, "rows", n)
		}
	}
	return nil
}
