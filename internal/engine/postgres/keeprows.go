package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/keeprows"
)

var _ engine.RowKeeper = (*Engine)(nil)

// keepCatalog reads the tables (named schema.table), keys and foreign keys
// of the database c is connected to. quoted gets each name's quoted form.
func keepCatalog(ctx context.Context, c pgx.Tx, quoted map[string]string) (*keeprows.Catalog, error) {
	var version int
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	generated := "false"
	if version >= 120000 {
		generated = "a.attgenerated <> ''"
	}
	rows, err := c.Query(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%' ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	cat := &keeprows.Catalog{Aliases: map[string]string{}}
	byOID := map[uint32]*keeprows.Table{}
	bare := map[string]int{}
	for rows.Next() {
		var oid uint32
		var schema, name string
		if err := rows.Scan(&oid, &schema, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tables: %w", err)
		}
		t := &keeprows.Table{Name: schema + "." + name}
		quoted[t.Name] = qualified(schema, name)
		cat.Tables = append(cat.Tables, t)
		byOID[oid] = t
		bare[name]++
		if schema == "public" {
			cat.Aliases[name] = t.Name
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	// A bare name is the public table's, or the only table of that name.
	for _, t := range cat.Tables {
		name := t.Name[strings.IndexByte(t.Name, '.')+1:]
		if _, ok := cat.Aliases[name]; !ok && bare[name] == 1 {
			cat.Aliases[name] = t.Name
		}
	}
	oids := make([]uint32, 0, len(byOID))
	for oid := range byOID {
		oids = append(oids, oid)
	}
	rows, err = c.Query(ctx, `SELECT a.attrelid, a.attname, NOT a.attnotnull, a.atttypid IN (20, 21, 23), `+generated+`
		FROM pg_attribute a WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var col keeprows.Column
		if err := rows.Scan(&oid, &col.Name, &col.Nullable, &col.Integer, &col.Generated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns: %w", err)
		}
		if t := byOID[oid]; t != nil {
			t.Columns = append(t.Columns, col)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	rows, err = c.Query(ctx, `SELECT i.indrelid, i.indisprimary,
		array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
		FROM pg_index i WHERE i.indrelid = ANY($1::oid[]) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indisvalid
		ORDER BY i.indrelid, i.indisprimary DESC, i.indexrelid`, oids)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var primary bool
		var cols []string
		if err := rows.Scan(&oid, &primary, &cols); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read keys: %w", err)
		}
		if t := byOID[oid]; t != nil && len(cols) > 0 {
			if primary {
				t.PK = cols
			} else {
				t.Uniques = append(t.Uniques, cols)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	rows, err = c.Query(ctx, `SELECT f.conrelid, f.confrelid, f.conname,
		array(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n ORDER BY k.o),
		array(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.n ORDER BY k.o)
		FROM pg_constraint f WHERE f.contype = 'f' AND f.conrelid = ANY($1::oid[]) ORDER BY f.conrelid, f.conname`, oids)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var child, parent uint32
		var fk keeprows.FK
		if err := rows.Scan(&child, &parent, &fk.Name, &fk.Cols, &fk.ParentCols); err != nil {
			return nil, fmt.Errorf("read foreign keys: %w", err)
		}
		t, p := byOID[child], byOID[parent]
		if t == nil || p == nil {
			continue
		}
		fk.Parent = p.Name
		t.FKs = append(t.FKs, fk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	return cat, nil
}

// pgSession is a keeprows.Session over a transaction.
type pgSession struct{ tx pgx.Tx }

func (s pgSession) Exec(ctx context.Context, q string) (int64, error) {
	tag, err := s.tx.Exec(ctx, q)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (s pgSession) Row(ctx context.Context, q string) ([]string, bool, error) {
	rows, err := s.tx.Query(ctx, q)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	vals, err := rows.Values()
	if err != nil {
		return nil, false, err
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = keeprows.Text(v)
	}
	rows.Close()
	return out, true, rows.Err()
}

// keepDialect computes the kept rows in temporary tables of a session on
// the current target (from) and copies them (COPY, streamed) into
// temporary tables of the new copy's session (to), where they are checked
// and inserted. to is nil when only counting.
type keepDialect struct {
	from, to pgx.Tx
	quoted   map[string]string
}

func (d keepDialect) Quote(id string) string { return quoteIdent(id) }
func (d keepDialect) Src(t string) string    { return d.quoted[t] }
func (d keepDialect) Dst(t string) string    { return d.quoted[t] }
func (d keepDialect) CreateTempAs(n, q string) string {
	return "CREATE TEMP TABLE " + n + " ON COMMIT DROP AS " + q
}
func (d keepDialect) DropTemp(n string) string { return "DROP TABLE " + n }
func (d keepDialect) CreateKeep(n, q string, indexes [][]string) []string {
	out := []string{d.CreateTempAs(n, q)}
	for _, c := range indexes {
		out = append(out, "CREATE INDEX ON "+n+" ("+quoteList("", c)+")")
	}
	return out
}
func (d keepDialect) Closure() keeprows.Session { return pgSession{d.from} }
func (d keepDialect) Apply() keeprows.Session   { return pgSession{d.to} }

func (d keepDialect) Insert(dst, st string, c []string) string {
	return "INSERT INTO " + dst + " (" + quoteList("", c) + ") OVERRIDING SYSTEM VALUE SELECT " + quoteList(st+".", c) + " FROM " + st
}

func (d keepDialect) Overwrite(dst, st string, key, cols []string) string {
	on := make([]string, len(key))
	for i, k := range key {
		on[i] = "snapdata_d." + quoteIdent(k) + " = snapdata_s." + quoteIdent(k)
	}
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = quoteIdent(c) + " = snapdata_s." + quoteIdent(c)
	}
	return "UPDATE " + dst + " AS snapdata_d SET " + strings.Join(sets, ", ") + " FROM " + st + " AS snapdata_s WHERE " + strings.Join(on, " AND ")
}

// Stage creates a temporary table shaped like the new copy's table and
// streams the kept rows into it with COPY.
func (d keepDialect) Stage(ctx context.Context, keep string, dst *keeprows.Table, cols []string) (string, error) {
	list := quoteList("", cols)
	if _, err := d.to.Exec(ctx, "CREATE TEMP TABLE "+keep+" ON COMMIT DROP AS SELECT "+list+" FROM "+d.quoted[dst.Name]+" WHERE false"); err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := d.from.Conn().PgConn().CopyTo(ctx, pw, "COPY (SELECT "+list+" FROM "+keep+") TO STDOUT")
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := d.to.Conn().PgConn().CopyFrom(ctx, pr, "COPY "+keep+" ("+list+") FROM STDIN")
	pr.CloseWithError(errors.New("copy into the new copy ended"))
	if rerr := <-done; rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return "", err
	}
	return keep, nil
}

func quoteList(prefix string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = prefix + quoteIdent(c)
	}
	return strings.Join(parts, ", ")
}

// CountKept counts the rows rules keep in db, with their dependents, in
// temporary tables of one transaction that is rolled back.
func (e *Engine) CountKept(ctx context.Context, db *dsn.DSN, rules []engine.KeepRule) (engine.KeepReport, error) {
	c, err := connect(ctx, db, false)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	quoted := map[string]string{}
	cat, err := keepCatalog(ctx, tx, quoted)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	rep, err := keeprows.Count(ctx, keepDialect{from: tx, quoted: quoted}, cat, rules, nil)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("count kept rows of %s: %w", db, err)
	}
	return rep, nil
}

// KeepRows copies the kept rows of from into to: one snapshot of from, one
// transaction of to (a failure leaves to as it was).
func (e *Engine) KeepRows(ctx context.Context, from, to *dsn.DSN, rules []engine.KeepRule, opts engine.KeepOptions) (engine.KeepReport, error) {
	fc, err := connect(ctx, from, false)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer fc.Close(context.WithoutCancel(ctx))
	tc, err := connect(ctx, to, false)
	if err != nil {
		return engine.KeepReport{}, err
	}
	defer tc.Close(context.WithoutCancel(ctx))
	ftx, err := fc.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: begin on %s: %w", from, err)
	}
	defer ftx.Rollback(context.WithoutCancel(ctx))
	ttx, err := tc.Begin(ctx)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: begin on %s: %w", to, err)
	}
	defer ttx.Rollback(context.WithoutCancel(ctx))
	// Deferrable foreign keys wait for the commit, so rows of a cycle can
	// go in table by table; others are checked per statement, which is
	// enough for a table that references itself.
	if _, err := ttx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: defer constraints: %w", err)
	}
	quoted := map[string]string{}
	cat, err := keepCatalog(ctx, ftx, quoted)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: read %s: %w", from, err)
	}
	dst, err := keepCatalog(ctx, ttx, quoted)
	if err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: read %s: %w", to, err)
	}
	rep, err := keeprows.Keep(ctx, keepDialect{from: ftx, to: ttx, quoted: quoted}, cat, dst, rules, opts)
	if err != nil {
		return engine.KeepReport{}, err
	}
	if err := ttx.Commit(ctx); err != nil {
		return engine.KeepReport{}, fmt.Errorf("keep rows: commit on %s: %w", to, err)
	}
	return rep, nil
}

// RestartKeys sets every sequence of db (owned by a column, an identity, or
// only named in a column's default) so that its next value is at least
// atLeast and above the largest value of every integer column it fills.
func (e *Engine) RestartKeys(ctx context.Context, db *dsn.DSN, atLeast int64) error {
	c, err := connect(ctx, db, false)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT s.seqrelid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), s.seqmax, s.seqincrement
		FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 2`)
	if err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	type seq struct {
		oid       uint32
		name      string
		max, step int64
	}
	var seqs []seq
	for rows.Next() {
		var s seq
		if err := rows.Scan(&s.oid, &s.name, &s.max, &s.step); err != nil {
			rows.Close()
			return fmt.Errorf("restart keys of %s: %w", db, err)
		}
		seqs = append(seqs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	for _, s := range seqs {
		if s.step < 0 {
			continue
		}
		cols, err := tx.Query(ctx, `SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname)
			FROM (SELECT d.refobjid AS rel, d.refobjsubid AS att FROM pg_depend d
			        WHERE d.classid = 'pg_class'::regclass AND d.objid = $1 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
			      UNION
			      SELECT ad.adrelid, ad.adnum FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
			        WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1) u
			JOIN pg_class c ON c.oid = u.rel JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att
			WHERE a.atttypid IN (20, 21, 23) AND c.relkind IN ('r', 'p')`, s.oid)
		if err != nil {
			return fmt.Errorf("restart keys of %s: sequence %s: %w", db, s.name, err)
		}
		type use struct{ table, col string }
		var uses []use
		for cols.Next() {
			var u use
			if err := cols.Scan(&u.table, &u.col); err != nil {
				cols.Close()
				return fmt.Errorf("restart keys of %s: sequence %s: %w", db, s.name, err)
			}
			uses = append(uses, u)
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return fmt.Errorf("restart keys of %s: sequence %s: %w", db, s.name, err)
		}
		next := atLeast
		for _, u := range uses {
			var m *int64
			if err := tx.QueryRow(ctx, "SELECT max("+u.col+")::bigint FROM "+u.table).Scan(&m); err != nil {
				return fmt.Errorf("restart keys of %s: %s.%s: %w", db, u.table, u.col, err)
			}
			if m != nil && *m+1 > next {
				next = *m + 1
			}
		}
		if next > s.max {
			return fmt.Errorf("restart keys of %s: sequence %s cannot restart at %d: its maximum is %d", db, s.name, next, s.max)
		}
		// is_called false: the next nextval returns next itself.
		if _, err := tx.Exec(ctx, "SELECT setval($1::text::regclass, $2, false)", s.name, next); err != nil {
			return fmt.Errorf("restart keys of %s: sequence %s: %w", db, s.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("restart keys of %s: %w", db, err)
	}
	return nil
}
