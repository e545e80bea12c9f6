package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// querier is what *sql.DB and *sql.Conn share.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// column is one dumped column, as recorded in meta/columns.
type column struct {
	Name       string `json:"name"`
	DataType   string `json:"data_type"`   // information_schema DATA_TYPE, e.g. varchar
	ColumnType string `json:"column_type"` // full type, e.g. varchar(20), bit(13), bigint(20) unsigned
	Charset    string `json:"charset,omitempty"`
	Nullable   bool   `json:"nullable"`
	PrimaryKey bool   `json:"primary_key,omitempty"`
}

func (c column) isBit() bool { return c.DataType == "bit" }

func (c column) isString() bool {
	switch c.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json",
		"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}

// table is one base table's dump plan, as recorded in meta/columns.
type table struct {
	Name       string   `json:"name"`
	Columns    []column `json:"columns"`   // dumped columns (generated columns excluded), in order
	OrderBy    []string `json:"order_by"`  // key columns; empty: every column
	KeyKind    string   `json:"key_kind"`  // primary, unique or none
	Generated  []string `json:"generated"` // generated columns (not dumped)
	DataLength int64    `json:"-"`
	Engine     string   `json:"-"` // storage engine (InnoDB, MyISAM, …)
	splitCol   string   // single integer primary key column, "" if none
}

// selectSQL is the dump query of a table; where may be "".
func (t *table) selectSQL(where string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case c.isBit():
			b.WriteString(quoteIdent(c.Name) + "+0")
		case c.DataType == "float":
			// The text protocol prints FLOAT with 6 significant digits
			// (16777215 becomes 16777200); as a DOUBLE it is exact and
			// loads back into the same single-precision value.
			b.WriteString(quoteIdent(c.Name) + "*1e0")
		case c.DataType == "year":
			// As text, "0000": the driver parses YEAR into an integer,
			// and YEAR 0000 printed as 0 loads (LOAD DATA reads text)
			// as 2000.
			b.WriteString("CAST(" + quoteIdent(c.Name) + " AS CHAR)")
		default:
			b.WriteString(quoteIdent(c.Name))
		}
	}
	if len(t.Columns) == 0 {
		b.WriteString("1")
	}
	b.WriteString(" FROM " + quoteIdent(t.Name))
	if where != "" {
		b.WriteString(" WHERE " + where)
	}
	b.WriteString(" ORDER BY ")
	if len(t.OrderBy) > 0 {
		for i, k := range t.OrderBy {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(k))
		}
	} else if len(t.Columns) == 0 {
		b.WriteString("1")
	} else {
		// No key: order by every column; strings compare as bytes so that
		// rows equal under a case-insensitive collation still sort stably.
		for i, c := range t.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			switch {
			case c.isString():
				b.WriteString("CAST(" + quoteIdent(c.Name) + " AS BINARY)")
			case c.isBit():
				b.WriteString(quoteIdent(c.Name) + "+0")
			default:
				b.WriteString(quoteIdent(c.Name))
			}
		}
	}
	return b.String()
}

// loadSQL is the LOAD DATA statement that reads a mysql-tsv/1 stream of t.
func (t *table) loadSQL(reader string) string {
	var cols, sets []string
	for i, c := range t.Columns {
		if c.isBit() {
			v := fmt.Sprintf("@v%d", i)
			cols = append(cols, v)
			sets = append(sets, quoteIdent(c.Name)+" = CAST("+v+" AS UNSIGNED)")
		} else {
			cols = append(cols, quoteIdent(c.Name))
		}
	}
	q := "LOAD DATA LOCAL INFILE " + quoteString("Reader::"+reader) + " INTO TABLE " + quoteIdent(t.Name) +
		` CHARACTER SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (` +
		strings.Join(cols, ", ") + ")"
	if len(sets) > 0 {
		q += " SET " + strings.Join(sets, ", ")
	}
	return q
}

// loadTables reads the dump plans of the base tables of database db (all
// when names is empty), sorted by name.
func loadTables(ctx context.Context, q querier, db string, names []string) ([]*table, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0), COALESCE(ENGINE, '') FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`, db)
	if err != nil {
		return nil, fmt.Errorf("listing tables of %s: %w", db, err)
	}
	var tables []*table
	byName := map[string]*table{}
	for rows.Next() {
		t := &table{}
		if err := rows.Scan(&t.Name, &t.DataLength, &t.Engine); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing tables of %s: %w", db, err)
		}
		if len(want) > 0 && !want[t.Name] {
			continue
		}
		tables = append(tables, t)
		byName[t.Name] = t
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("listing tables of %s: %w", db, err)
	}
	for n := range want {
		if byName[n] == nil {
			return nil, fmt.Errorf("table %q not found in database %s", n, db)
		}
	}
	if len(tables) == 0 {
		return tables, nil
	}

	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, ''),
		IS_NULLABLE, COLUMN_KEY, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`, db)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", db, err)
	}
	for rows.Next() {
		var tn, nullable, key, extra string
		var c column
		if err := rows.Scan(&tn, &c.Name, &c.DataType, &c.ColumnType, &c.Charset, &nullable, &key, &extra); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading columns of %s: %w", db, err)
		}
		t := byName[tn]
		if t == nil {
			continue
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Nullable = nullable == "YES"
		c.PrimaryKey = key == "PRI"
		ex := strings.ToUpper(extra)
		if strings.Contains(ex, "VIRTUAL GENERATED") || strings.Contains(ex, "STORED GENERATED") || strings.Contains(ex, "PERSISTENT GENERATED") {
			t.Generated = append(t.Generated, c.Name)
			continue
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", db, err)
	}

	// Keys: the primary key, else the first unique key on NOT NULL columns.
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, COALESCE(NULLABLE, ''), SEQ_IN_INDEX
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND NON_UNIQUE = 0
		ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, db)
	if err != nil {
		return nil, fmt.Errorf("reading keys of %s: %w", db, err)
	}
	type key struct {
		cols     []string
		nullable bool
		primary  bool
	}
	keys := map[string][]*key{}
	idx := map[string]*key{}
	for rows.Next() {
		var tn, in, cn, nullable string
		var seq int
		if err := rows.Scan(&tn, &in, &cn, &nullable, &seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading keys of %s: %w", db, err)
		}
		k := idx[tn+"\x00"+in]
		if k == nil {
			k = &key{primary: in == "PRIMARY"}
			idx[tn+"\x00"+in] = k
			keys[tn] = append(keys[tn], k)
		}
		k.cols = append(k.cols, cn)
		if nullable == "YES" {
			k.nullable = true
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading keys of %s: %w", db, err)
	}
	for _, t := range tables {
		dumped := map[string]column{}
		for _, c := range t.Columns {
			dumped[c.Name] = c
		}
		t.KeyKind = "none"
		for _, k := range keys[t.Name] {
			if k.nullable {
				continue
			}
			ok := true
			for _, c := range k.cols {
				if _, d := dumped[c]; !d {
					ok = false // a key over a generated column
				}
			}
			if !ok {
				continue
			}
			t.OrderBy = k.cols
			t.KeyKind = "unique"
			if k.primary {
				t.KeyKind = "primary"
			}
			break
		}
		if len(t.OrderBy) == 1 {
			switch dumped[t.OrderBy[0]].DataType {
			case "tinyint", "smallint", "mediumint", "int", "bigint":
				t.splitCol = t.OrderBy[0]
			}
		}
	}
	return tables, nil
}

// stmt is one schema statement of a mysql-ddl/1 stream (one JSON object per
// line) with the session context it must run in.
type stmt struct {
	Type      string `json:"type"` // table, sequence, procedure, function, view, trigger, event, setval
	Name      string `json:"name"`
	Table     string `json:"table,omitempty"` // triggers: the table they belong to
	SQL       string `json:"sql"`
	SQLMode   string `json:"sql_mode,omitempty"`
	Charset   string `json:"character_set_client,omitempty"`
	Collation string `json:"collation_connection,omitempty"`
	TimeZone  string `json:"time_zone,omitempty"`
}

// showCreate runs a SHOW CREATE statement and returns its single row by
// column name.
func showCreate(ctx context.Context, q querier, query string) (map[string]sql.NullString, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no result")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := map[string]sql.NullString{}
	for i, c := range cols {
		out[c] = vals[i]
	}
	return out, rows.Err()
}

func names(ctx context.Context, q querier, query string, args ...any) ([][]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// captureSchema reads the schema of db with SHOW CREATE statements: pre
// holds tables and sequences (replayed with FOREIGN_KEY_CHECKS=0, so their
// order does not matter), post holds routines, views in dependency order,
// triggers, events and sequence positions (replayed after the data).
func captureSchema(ctx context.Context, q querier, db string) (pre, post []stmt, err error) {
	objs, err := names(ctx, q, `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("listing tables of %s: %w", db, err)
	}
	var views []stmt
	for _, o := range objs {
		name, typ := o[0], o[1]
		switch typ {
		case "VIEW":
			r, err := showCreate(ctx, q, "SHOW CREATE VIEW "+quoteIdent(name))
			if err != nil {
				return nil, nil, fmt.Errorf("reading definition of view %s: %w", name, err)
			}
			views = append(views, stmt{Type: "view", Name: name, SQL: r["Create View"].String,
				Charset: r["character_set_client"].String, Collation: r["collation_connection"].String})
		default:
			if typ == "SEQUENCE" {
				r, err := showCreate(ctx, q, "SHOW CREATE SEQUENCE "+quoteIdent(name))
				if err != nil {
					return nil, nil, fmt.Errorf("reading definition of sequence %s: %w", name, err)
				}
				pre = append(pre, stmt{Type: "sequence", Name: name, SQL: r["Create Table"].String})
				var next sql.NullString
				if err := q.QueryRowContext(ctx, "SELECT next_not_cached_value FROM "+quoteIdent(name)).Scan(&next); err != nil {
					return nil, nil, fmt.Errorf("reading sequence %s: %w", name, err)
				}
				post = append(post, stmt{Type: "setval", Name: name,
					SQL: "DO SETVAL(" + quoteIdent(name) + ", " + next.String + ", 0)"})
				continue
			}
			r, err := showCreate(ctx, q, "SHOW CREATE TABLE "+quoteIdent(name))
			if err != nil {
				return nil, nil, fmt.Errorf("reading definition of table %s: %w", name, err)
			}
			pre = append(pre, stmt{Type: "table", Name: name, SQL: r["Create Table"].String})
		}
	}

	routines, err := names(ctx, q, `SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES
		WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE') ORDER BY ROUTINE_TYPE, ROUTINE_NAME`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("listing routines of %s: %w", db, err)
	}
	var routineStmts []stmt
	for _, rt := range routines {
		typ, name := rt[0], rt[1]
		r, err := showCreate(ctx, q, "SHOW CREATE "+typ+" "+quoteIdent(name))
		if err != nil {
			return nil, nil, fmt.Errorf("reading definition of %s %s: %w", strings.ToLower(typ), name, err)
		}
		col := "Create Procedure"
		if typ == "FUNCTION" {
			col = "Create Function"
		}
		if !r[col].Valid {
			return nil, nil, fmt.Errorf("reading definition of %s %s: the server hides it (the user needs SELECT on mysql.proc on MariaDB or the SHOW_ROUTINE privilege on MySQL 8, or to be its definer)", strings.ToLower(typ), name)
		}
		routineStmts = append(routineStmts, stmt{Type: strings.ToLower(typ), Name: name, SQL: r[col].String,
			SQLMode: r["sql_mode"].String, Charset: r["character_set_client"].String, Collation: r["collation_connection"].String})
	}

	triggers, err := names(ctx, q, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
		ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("listing triggers of %s: %w", db, err)
	}
	var triggerStmts []stmt
	for _, tr := range triggers {
		r, err := showCreate(ctx, q, "SHOW CREATE TRIGGER "+quoteIdent(tr[0]))
		if err != nil {
			return nil, nil, fmt.Errorf("reading definition of trigger %s: %w", tr[0], err)
		}
		triggerStmts = append(triggerStmts, stmt{Type: "trigger", Name: tr[0], Table: tr[1], SQL: r["SQL Original Statement"].String,
			SQLMode: r["sql_mode"].String, Charset: r["character_set_client"].String, Collation: r["collation_connection"].String})
	}

	events, err := names(ctx, q, `SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("listing events of %s: %w", db, err)
	}
	var eventStmts []stmt
	for _, ev := range events {
		r, err := showCreate(ctx, q, "SHOW CREATE EVENT "+quoteIdent(ev[0]))
		if err != nil {
			return nil, nil, fmt.Errorf("reading definition of event %s: %w", ev[0], err)
		}
		eventStmts = append(eventStmts, stmt{Type: "event", Name: ev[0], SQL: r["Create Event"].String,
			SQLMode: r["sql_mode"].String, TimeZone: r["time_zone"].String, Charset: r["character_set_client"].String,
			Collation: r["collation_connection"].String})
	}

	// Functions before views (views may call them), views in dependency
	// order, then triggers (after the data, so they do not fire on load)
	// and events.
	post = append(append(append(append(routineStmts, orderViews(views)...), triggerStmts...), eventStmts...), post...)
	return pre, post, nil
}

// orderViews sorts views so that a view comes after the views it names.
// SHOW CREATE VIEW quotes every identifier with backticks, so a reference
// is a backticked name; a false positive only adds a harmless edge.
func orderViews(views []stmt) []stmt {
	byName := map[string]int{}
	for i, v := range views {
		byName[v.Name] = i
	}
	deps := make([][]int, len(views))
	for i, v := range views {
		body := v.SQL
		if j := strings.Index(body, " AS "); j >= 0 {
			body = body[j:]
		}
		for n, k := range byName {
			if k != i && strings.Contains(body, quoteIdent(n)) {
				deps[i] = append(deps[i], k)
			}
		}
		sort.Ints(deps[i])
	}
	state := make([]int, len(views)) // 0 new, 1 visiting, 2 done
	var out []stmt
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return // done, or a cycle (a false positive): keep name order
		}
		state[i] = 1
		for _, d := range deps[i] {
			visit(d)
		}
		state[i] = 2
		out = append(out, views[i])
	}
	for i := range views {
		visit(i)
	}
	return out
}

var definerRE = regexp.MustCompile("(?i)\\s*DEFINER\\s*=\\s*(`[^`]*`|'[^']*'|[^\\s@]+)(@(`[^`]*`|'[^']*'|[^\\s]+))?")

// stripDefiner removes the first DEFINER=user@host clause of a CREATE
// statement, so the object is owned by the restoring user.
func stripDefiner(s string) string {
	loc := definerRE.FindStringIndex(s)
	if loc == nil {
		return s
	}
	return s[:loc[0]] + " " + strings.TrimLeft(s[loc[1]:], " ")
}

// portableType maps a column to the portable export type.
func portableType(c column) string {
	unsigned := strings.Contains(c.ColumnType, "unsigned")
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "year":
		return "integer"
	case "bigint":
		if unsigned {
			return "numeric"
		}
		return "integer"
	case "bit":
		if c.ColumnType == "bit(1)" {
			return "boolean"
		}
		var n int
		fmt.Sscanf(c.ColumnType, "bit(%d)", &n)
		if n > 0 && n < 64 {
			return "integer"
		}
		return "numeric"
	case "float", "double", "real":
		return "float"
	case "decimal", "numeric":
		return "numeric"
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "inet4", "inet6":
		if c.Charset == "binary" {
			return "bytes"
		}
		return "text"
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return "bytes"
	case "date":
		return "date"
	case "time":
		return "time"
	case "datetime":
		return "timestamp"
	case "timestamp":
		return "timestamptz"
	case "json":
		return "json"
	case "uuid":
		return "uuid"
	}
	if c.isString() {
		return "text"
	}
	return "bytes" // geometry and other binary forms
}

// portableSchema turns dump plans into engine.TableSchema.
func portableSchema(tables []*table) []engine.TableSchema {
	out := make([]engine.TableSchema, 0, len(tables))
	for _, t := range tables {
		ts := engine.TableSchema{Name: t.Name}
		for _, c := range t.Columns {
			ts.Columns = append(ts.Columns, engine.Column{Name: c.Name, Type: portableType(c), SourceType: c.ColumnType,
				Nullable: c.Nullable, PrimaryKey: c.PrimaryKey})
		}
		out = append(out, ts)
	}
	return out
}
