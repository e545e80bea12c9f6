package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/keeprows"
)

var _ engine.RowKeeper = (*Engine)(nil)

// keepDst is the schema name the new copy is attached as.
const keepDst = "snapdata_dst"

// keepCatalog reads the tables, keys and foreign keys of schema.
func keepCatalog(ctx context.Context, q keeprows.Querier, schema string) (*keeprows.Catalog, error) {
	names, err := strings1(ctx, q, `SELECT name FROM `+quote(schema)+`.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	cat := &keeprows.Catalog{}
	for _, name := range names {
		t := &keeprows.Table{Name: name}
		rows, err := q.QueryContext(ctx, `SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?, ?) ORDER BY cid`, name, schema)
		if err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		type pkcol struct {
			name string
			pos  int
		}
		var pks []pkcol
		for rows.Next() {
			var c keeprows.Column
			var decl string
			var notnull, pk, hidden int
			if err := rows.Scan(&c.Name, &decl, &notnull, &pk, &hidden); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read columns of %s: %w", name, err)
			}
			if hidden == 1 {
				continue
			}
			c.Nullable = notnull == 0
			c.Integer = strings.Contains(strings.ToUpper(decl), "INT")
			c.Generated = hidden >= 2
			t.Columns = append(t.Columns, c)
			if pk > 0 {
				pks = append(pks, pkcol{c.Name, pk})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		slices.SortFunc(pks, func(a, b pkcol) int { return a.pos - b.pos })
		for _, p := range pks {
			t.PK = append(t.PK, p.name)
		}
		idx, err := strings1(ctx, q, `SELECT name FROM pragma_index_list(?, ?) WHERE "unique" = 1 AND origin <> 'pk' AND partial = 0 ORDER BY name`, name, schema)
		if err != nil {
			return nil, fmt.Errorf("read indexes of %s: %w", name, err)
		}
		for _, ix := range idx {
			cols, err := strings1(ctx, q, `SELECT coalesce(name, '') FROM pragma_index_info(?, ?) ORDER BY seqno`, ix, schema)
			if err != nil {
				return nil, fmt.Errorf("read index %s of %s: %w", ix, name, err)
			}
			if len(cols) > 0 && !slices.Contains(cols, "") {
				t.Uniques = append(t.Uniques, cols)
			}
		}
		fk, err := q.QueryContext(ctx, `SELECT id, "table", "from", coalesce("to", '') FROM pragma_foreign_key_list(?, ?) ORDER BY id, seq`, name, schema)
		if err != nil {
			return nil, fmt.Errorf("read foreign keys of %s: %w", name, err)
		}
		byID := map[int]*keeprows.FK{}
		var ids []int
		for fk.Next() {
			var id int
			var parent, from, to string
			if err := fk.Scan(&id, &parent, &from, &to); err != nil {
				fk.Close()
				return nil, fmt.Errorf("read foreign keys of %s: %w", name, err)
			}
			f, ok := byID[id]
			if !ok {
				f = &keeprows.FK{Name: fmt.Sprintf("%s_fk%d", name, id), Parent: parent}
				byID[id] = f
				ids = append(ids, id)
			}
			f.Cols = append(f.Cols, from)
			f.ParentCols = append(f.ParentCols, to)
		}
		fk.Close()
		if err := fk.Err(); err != nil {
			return nil, fmt.Errorf("read foreign keys of %s: %w", name, err)
		}
		for _, id := range ids {
			t.FKs = append(t.FKs, *byID[id])
		}
		cat.Tables = append(cat.Tables, t)
	}
	// A foreign key naming no parent columns references the parent's
	// primary key.
	for _, t := range cat.Tables {
		for i, f := range t.FKs {
			if slices.Contains(f.ParentCols, "") {
				if p := cat.Lookup(f.Parent); p != nil && len(p.PK) == len(f.Cols) {
					t.FKs[i].ParentCols = slices.Clone(p.PK)
				}
			}
		}
	}
	return cat, nil
}

func strings1(ctx context.Context, q keeprows.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// keepDialect runs everything on one connection: the current target is
// main, the new copy is attached.
type keepDialect struct {
	s        keeprows.SQL
	src, dst string
}

func (d keepDialect) Quote(id string) string          { return quote(id) }
func (d keepDialect) Src(t string) string             { return quote(d.src) + "." + quote(t) }
func (d keepDialect) Dst(t string) string             { return quote(d.dst) + "." + quote(t) }
func (d keepDialect) CreateTempAs(n, q string) string { return "CREATE TEMP TABLE " + n + " AS " + q }
func (d keepDialect) DropTemp(n string) string        { return "DROP TABLE temp." + n }
func (d keepDialect) Closure() keeprows.Session       { return d.s }
func (d keepDialect) Apply() keeprows.Session         { return d.s }
func (d keepDialect) Insert(dst, st string, c []string) string {
	return "INSERT INTO " + dst + " (" + quoteList("", c) + ") SELECT " + quoteList(st+".", c) + " FROM " + st
}
func (d keepDialect) Stage(_ context.Context, keep string, _ *keeprows.Table, _ []string) (string, error) {
	return keep, nil
}
func (d keepDialect) Overwrite(dst, st string, key, cols []string) string {
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = quote(c) + " = snapdata_s." + quote(c)
	}
	on := make([]string, len(key))
	for i, k := range key {
		on[i] = "snapdata_d." + quote(k) + " = snapdata_s." + quote(k)
	}
	return "UPDATE " + dst + " AS snapdata_d SET " + strings.Join(sets, ", ") + " FROM " + st + " AS snapdata_s WHERE " + strings.Join(on, " AND ")
}

func (d keepDialect) CreateKeep(n, q string, indexes [][]string) []string {
	out := []string{"CREATE TEMP TABLE " + n + " AS " + q}
	for i, c := range indexes {
		out = append(out, fmt.Sprintf("CREATE INDEX temp.%s_i%d ON %s (%s)", n, i, n, quoteList("", c)))
	}
	return out
}

func quoteList(prefix string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = prefix + quote(c)
	}
	return strings.Join(parts, ", ")
}

// CountKept counts the rows rules keep in db, with their dependents.
func (e *Engine) CountKept(ctx context.Context, db *dsn.DSN, rules []engine.KeepRule) (engine.KeepReport, error) {
	if err := checkFile(db.Path); err != nil {
		return engine.KeepReport{}, err
	}
	sdb, conn, err := openDB(ctx, db.Path, true)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer sdb.Close()
	defer conn.Close()
	cat, err := keepCatalog(ctx, conn, "main")
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db.Path, err)
	}
	rep, err := keeprows.Count(ctx, keepDialect{s: keeprows.SQL{Q: conn}, src: "main"}, cat, rules, nil)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db.Path, err)
	}
	return rep, nil
}

// KeepRows copies the kept rows of from into to in one transaction of to.
// The connection opens from as main, so a rule's where that names
// other tables reads the current target's, and attaches to.
func (e *Engine) KeepRows(ctx context.Context, from, to *dsn.DSN, rules []engine.KeepRule, opts engine.KeepOptions) (rep engine.KeepReport, err error) {
	for _, d := range []*dsn.DSN{from, to} {
		if err := checkFile(d.Path); err != nil {
			return rep, err
		}
	}
	// Opened read-write because an attached database inherits main's
	// flags; nothing here writes main (every write names keepDst or a
	// temporary table).
	sdb, conn, err := openDB(ctx, from.Path, false)
	if err != nil {
		return rep, err
	}
	defer sdb.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS "+quote(keepDst), fileURI(to.Path, false)); err != nil {
		return rep, fmt.Errorf("keep rows: attach %s: %w", to.Path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE "+quote(keepDst))
	cat, err := keepCatalog(ctx, conn, "main")
	if err != nil {
		return rep, fmt.Errorf("keep rows: read %s: %w", from.Path, err)
	}
	dst, err := keepCatalog(ctx, conn, keepDst)
	if err != nil {
		return rep, fmt.Errorf("keep rows: read %s: %w", to.Path, err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return rep, fmt.Errorf("keep rows: begin on %s: %w", to.Path, err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// Rows of a foreign-key cycle go in one statement per table: checks
	// wait for the commit (when the connection enforces keys at all).
	if _, err = conn.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
		return rep, fmt.Errorf("keep rows: defer foreign keys: %w", err)
	}
	rep, err = keeprows.Keep(ctx, keepDialect{s: keeprows.SQL{Q: conn}, src: "main", dst: keepDst}, cat, dst, rules, opts)
	if err != nil {
		return engine.KeepReport{}, err
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: commit on %s: %w", to.Path, err)
	}
	return rep, nil
}

var autoincrement = regexp.MustCompile(`(?i)\bAUTOINCREMENT\b`)

// RestartKeys sets sqlite_sequence of every AUTOINCREMENT table so the next
// rowid is at least atLeast and above the largest in use. A rowid table
// without AUTOINCREMENT has no counter: SQLite gives a new row the largest
// rowid plus one, so it starts above the largest in use (which, after
// KeepRows, includes the kept rows at or above atLeast) but cannot be
// made to start at atLeast in an empty range.
func (e *Engine) RestartKeys(ctx context.Context, db *dsn.DSN, atLeast int64) (err error) {
	if err := checkFile(db.Path); err != nil {
		return err
	}
	sdb, conn, err := openDB(ctx, db.Path, false)
	if err != nil {
		return err
	}
	defer sdb.Close()
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return fmt.Errorf("restart keys of %s: %w", db.Path, err)
	}
	var tables []string
	for rows.Next() {
		var name string
		var ddl sql.NullString
		if err := rows.Scan(&name, &ddl); err != nil {
			rows.Close()
			return fmt.Errorf("restart keys of %s: %w", db.Path, err)
		}
		if autoincrement.MatchString(ddl.String) {
			tables = append(tables, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db.Path, err)
	}
	if len(tables) == 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db.Path, err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for _, t := range tables {
		var maxRowid, seq sql.NullInt64
		if err = conn.QueryRowContext(ctx, "SELECT max(rowid) FROM "+quote(t)).Scan(&maxRowid); err != nil {
			return fmt.Errorf("restart keys of %s: table %s: %w", db.Path, t, err)
		}
		next := max(atLeast-1, maxRowid.Int64)
		if err = conn.QueryRowContext(ctx, "SELECT max(seq) FROM sqlite_sequence WHERE name = ?", t).Scan(&seq); err != nil {
			return fmt.Errorf("restart keys of %s: table %s: %w", db.Path, t, err)
		}
		if seq.Valid {
			_, err = conn.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", next, t)
		} else {
			_, err = conn.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", t, next)
		}
		if err != nil {
			return fmt.Errorf("restart keys of %s: table %s: %w", db.Path, t, err)
		}
	}
	if _, err = conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db.Path, err)
	}
	return nil
}
