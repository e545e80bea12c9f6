package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/keeprows"
)

var _ engine.RowKeeper = (*Engine)(nil)

// keepCatalog reads the tables, keys and foreign keys of database schema
// from information_schema.
func keepCatalog(ctx context.Context, q keeprows.Querier, schema string) (*keeprows.Catalog, error) {
	cat := &keeprows.Catalog{}
	byName := map[string]*keeprows.Table{}
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, schema)
	if err != nil {
		return nil, fmt.Errorf("read tables of %s: %w", schema, err)
	}
	for rows.Next() {
		t := &keeprows.Table{}
		if err := rows.Scan(&t.Name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tables of %s: %w", schema, err)
		}
		cat.Tables = append(cat.Tables, t)
		byName[t.Name] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tables of %s: %w", schema, err)
	}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE, DATA_TYPE, EXTRA FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`, schema)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", schema, err)
	}
	for rows.Next() {
		var tbl, col, nullable, typ, extra string
		if err := rows.Scan(&tbl, &col, &nullable, &typ, &extra); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns of %s: %w", schema, err)
		}
		t := byName[tbl]
		if t == nil {
			continue
		}
		switch strings.ToLower(typ) {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			t.Columns = append(t.Columns, keeprows.Column{Name: col, Nullable: nullable == "YES", Integer: true,
				Generated: strings.Contains(strings.ToUpper(extra), "GENERATED")})
		default:
			t.Columns = append(t.Columns, keeprows.Column{Name: col, Nullable: nullable == "YES",
				Generated: strings.Contains(strings.ToUpper(extra), "GENERATED")})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", schema, err)
	}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COALESCE(COLUMN_NAME, '') FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, schema)
	if err != nil {
		return nil, fmt.Errorf("read keys of %s: %w", schema, err)
	}
	type key struct{ table, index string }
	keys := map[key][]string{}
	var order []key
	for rows.Next() {
		var k key
		var col string
		if err := rows.Scan(&k.table, &k.index, &col); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read keys of %s: %w", schema, err)
		}
		if _, ok := keys[k]; !ok {
			order = append(order, k)
		}
		keys[k] = append(keys[k], col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys of %s: %w", schema, err)
	}
	for _, k := range order {
		t, cols := byName[k.table], keys[k]
		if t == nil || slices.Contains(cols, "") {
			continue
		}
		if k.index == "PRIMARY" {
			t.PK = cols
		} else {
			t.Uniques = append(t.Uniques, cols)
		}
	}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
		FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
		ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`, schema, schema)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys of %s: %w", schema, err)
	}
	defer rows.Close()
	var last *keeprows.FK
	var lastTable string
	for rows.Next() {
		var tbl, name, col, parent, pcol string
		if err := rows.Scan(&tbl, &name, &col, &parent, &pcol); err != nil {
			return nil, fmt.Errorf("read foreign keys of %s: %w", schema, err)
		}
		t := byName[tbl]
		if t == nil {
			continue
		}
		if last == nil || lastTable != tbl || last.Name != name {
			t.FKs = append(t.FKs, keeprows.FK{Name: name, Parent: parent})
			last, lastTable = &t.FKs[len(t.FKs)-1], tbl
		}
		last.Cols = append(last.Cols, col)
		last.ParentCols = append(last.ParentCols, pcol)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read foreign keys of %s: %w", schema, err)
	}
	return cat, nil
}

// keepDialect runs everything in one session of the server: the current
// target and the new copy are two databases of it, the kept rows go
// through temporary tables with INSERT … SELECT in the server.
type keepDialect struct {
	s        keeprows.SQL
	src, dst string
}

func (d keepDialect) Quote(id string) string { return quoteIdent(id) }
func (d keepDialect) Src(t string) string    { return quoteIdent(d.src) + "." + quoteIdent(t) }
func (d keepDialect) Dst(t string) string    { return quoteIdent(d.dst) + "." + quoteIdent(t) }
func (d keepDialect) CreateTempAs(n, q string) string {
	return "CREATE TEMPORARY TABLE " + n + " AS " + q
}
func (d keepDialect) DropTemp(n string) string  { return "DROP TEMPORARY TABLE " + n }
func (d keepDialect) Closure() keeprows.Session { return d.s }
func (d keepDialect) Apply() keeprows.Session   { return d.s }
func (d keepDialect) Stage(_ context.Context, keep string, _ *keeprows.Table, _ []string) (string, error) {
	return keep, nil
}
func (d keepDialect) Insert(dst, st string, c []string) string {
	return "INSERT INTO " + dst + " (" + quoteList("", c) + ") SELECT " + quoteList(st+".", c) + " FROM " + st
}
func (d keepDialect) Overwrite(dst, st string, key, cols []string) string {
	on := make([]string, len(key))
	for i, k := range key {
		on[i] = "snapdata_d." + quoteIdent(k) + " = snapdata_s." + quoteIdent(k)
	}
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = "snapdata_d." + quoteIdent(c) + " = snapdata_s." + quoteIdent(c)
	}
	return "UPDATE " + dst + " AS snapdata_d JOIN " + st + " AS snapdata_s ON " + strings.Join(on, " AND ") + " SET " + strings.Join(sets, ", ")
}

// CreateKeep declares the indexes in CREATE TEMPORARY TABLE: a CREATE
// INDEX would commit the transaction.
func (d keepDialect) CreateKeep(n, q string, indexes [][]string) []string {
	if len(indexes) == 0 {
		return []string{"CREATE TEMPORARY TABLE " + n + " AS " + q}
	}
	defs := make([]string, len(indexes))
	for i, c := range indexes {
		defs[i] = "INDEX (" + quoteList("", c) + ")"
	}
	return []string{"CREATE TEMPORARY TABLE " + n + " (" + strings.Join(defs, ", ") + ") AS " + q}
}

func quoteList(prefix string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = prefix + quoteIdent(c)
	}
	return strings.Join(parts, ", ")
}

// CountKept counts the rows rules keep in db, with their dependents, using
// temporary tables of one session only.
func (e *Engine) CountKept(ctx context.Context, db *dsn.DSN, rules []engine.KeepRule) (engine.KeepReport, error) {
	pool, err := open(ctx, db, nil)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer pool.Close()
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	defer tx.Rollback()
	cat, err := keepCatalog(ctx, tx, db.Database())
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	rep, err := keeprows.Count(ctx, keepDialect{s: keeprows.SQL{Q: tx}, src: db.Database(), dst: db.Database()}, cat, rules, nil)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	return rep, nil
}

// KeepRows copies the kept rows of database from into database to of the
// same server in one transaction, in the server (INSERT … SELECT).
func (e *Engine) KeepRows(ctx context.Context, from, to *dsn.DSN, rules []engine.KeepRule, opts engine.KeepOptions) (engine.KeepReport, error) {
	if from.URL == nil || to.URL == nil || !strings.EqualFold(from.URL.Host, to.URL.Host) {
		return engine.KeepReport{}, fmt.Errorf("keep rows: %s and %s must be databases of the same server", from, to)
	}
	if from.Database() == "" || to.Database() == "" {
		return engine.KeepReport{}, fmt.Errorf("keep rows: %s and %s must each name a database", from, to)
	}
	// The session's default database is from: a rule's where that names
	// other tables unqualified reads the current target's. Every write
	// names to's database or a temporary table.
	pool, err := open(ctx, from, nil)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer pool.Close()
	conn, err := pool.Conn(ctx)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: connect to %s: %w", to, err)
	}
	defer conn.Close()
	// Kept rows are checked against their parents by keeprows itself
	// (orphans); rows of a foreign-key cycle or a self-reference can then
	// go in one statement per table in any order.
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: begin on %s: %w", to, err)
	}
	defer tx.Rollback()
	cat, err := keepCatalog(ctx, tx, from.Database())
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: read %s: %w", from, err)
	}
	dst, err := keepCatalog(ctx, tx, to.Database())
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: read %s: %w", to, err)
	}
	rep, err := keeprows.Keep(ctx, keepDialect{s: keeprows.SQL{Q: tx}, src: from.Database(), dst: to.Database()}, cat, dst, rules, opts)
	if err != nil {
		return engine.KeepReport{}, err
	}
	if err := tx.Commit(); err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: commit on %s: %w", to, err)
	}
	return rep, nil
}

// RestartKeys sets every AUTO_INCREMENT of db to at least atLeast and above
// the largest value in use, and moves every MariaDB sequence of db to at
// least atLeast (a sequence's users are not known, so only forward).
func (e *Engine) RestartKeys(ctx context.Context, db *dsn.DSN, atLeast int64) error {
	pool, err := open(ctx, db, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	schema := db.Database()
	rows, err := pool.QueryContext(ctx, `SELECT c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c
		JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE'
		WHERE c.TABLE_SCHEMA = ? AND c.EXTRA LIKE '%auto_increment%' ORDER BY c.TABLE_NAME`, schema)
	if err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	type col struct{ table, name string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.name); err != nil {
			rows.Close()
			return fmt.Errorf("restart keys of %s: %w", db, err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	for _, c := range cols {
		var m sql.NullInt64
		if err := pool.QueryRowContext(ctx, "SELECT MAX("+quoteIdent(c.name)+") FROM "+quoteIdent(schema)+"."+quoteIdent(c.table)).Scan(&m); err != nil {
			return fmt.Errorf("restart keys of %s: table %s: %w", db, c.table, err)
		}
		next := max(atLeast, m.Int64+1)
		if _, err := pool.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s.%s AUTO_INCREMENT = %d", quoteIdent(schema), quoteIdent(c.table), next)); err != nil {
			return fmt.Errorf("restart keys of %s: table %s: %w", db, c.table, err)
		}
	}
	seqs, err := pool.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE'`, schema)
	if err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	var names []string
	for seqs.Next() {
		var n string
		if err := seqs.Scan(&n); err != nil {
			seqs.Close()
			return fmt.Errorf("restart keys of %s: %w", db, err)
		}
		names = append(names, n)
	}
	seqs.Close()
	if err := seqs.Err(); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	for _, n := range names {
		// SETVAL moves a sequence forward only.
		if _, err := pool.ExecContext(ctx, fmt.Sprintf("SELECT SETVAL(%s.%s, %d)", quoteIdent(schema), quoteIdent(n), atLeast-1)); err != nil {
			return fmt.Errorf("restart keys of %s: sequence %s: %w", db, n, err)
		}
	}
	return nil
}
