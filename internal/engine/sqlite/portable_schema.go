package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

var (
	declNumRE = regexp.MustCompile(`\((\d+)\s*(?:,\s*(\d+))?\s*\)`)
)

// PortableSchema implements engine.SchemaDescriber. It replays the
// snapshot's schema into an in-memory database and reads it back with
// SQLite's own pragmas: indexes (expression and partial ones reported),
// foreign keys, constant defaults, the INTEGER PRIMARY KEY as identity
// (with sqlite_sequence's next value for AUTOINCREMENT), numeric
// precision and text lengths from the declared types. Views and triggers
// are reported.
func (e *Engine) PortableSchema(ctx context.Context, snap engine.SnapshotReader) (*engine.PortableSchema, error) {
	m, pre, post, err := loadMeta(ctx, snap)
	if err != nil {
		return nil, err
	}
	tables, err := e.Schema(ctx, snap)
	if err != nil {
		return nil, err
	}
	ps := &engine.PortableSchema{Tables: tables}
	report := func(table, kind, object, format string, args ...any) {
		ps.NotCarried = append(ps.NotCarried, engine.NotCarried{Table: table, Kind: kind, Object: object, Reason: fmt.Sprintf(format, args...)})
	}
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("open an in-memory database: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, o := range append(append([]schemaObject{}, pre...), post...) {
		switch o.Type {
		case "table":
			if _, err := db.ExecContext(ctx, o.SQL); err != nil {
				return nil, fmt.Errorf("replay the schema of table %s: %w", o.Name, err)
			}
		case "index":
			if o.SQL == "" {
				continue
			}
			if _, err := db.ExecContext(ctx, o.SQL); err != nil {
				report(o.Table, "index", o.Name, "could not be read: %v", err)
			}
		default:
			report(o.Table, o.Type, o.Name, "not carried across engines")
		}
	}
	seq := map[string]int64{}
	for _, s := range m.SQLiteSequence {
		seq[s.Name] = s.Seq
	}
	for i := range ps.Tables {
		t := &ps.Tables[i]
		var src *table
		for j := range m.Tables {
			if m.Tables[j].Name == t.Name {
				src = &m.Tables[j]
			}
		}
		if err := describeTable(ctx, db, t, src, seq, report); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func describeTable(ctx context.Context, db *sql.DB, t *engine.TableSchema, src *table, seq map[string]int64, report func(table, kind, object, format string, args ...any)) error {
	col := func(name string) *engine.Column {
		for i := range t.Columns {
			if t.Columns[i].Name == name {
				return &t.Columns[i]
			}
		}
		return nil
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		if m := declNumRE.FindStringSubmatch(c.SourceType); m != nil {
			switch c.Type {
			case "numeric":
				c.Precision, _ = strconv.Atoi(m[1])
				if m[2] != "" {
					c.Scale, _ = strconv.Atoi(m[2])
				}
			case "text":
				c.Length, _ = strconv.Atoi(m[1])
			}
		}
	}
	// Defaults, and the rowid alias.
	rows, err := db.QueryContext(ctx, "SELECT name, type, dflt_value, pk FROM pragma_table_xinfo(?)", t.Name)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", t.Name, err)
	}
	var pkCols []string
	var pkType string
	for rows.Next() {
		var name, typ string
		var dflt sql.NullString
		var pk int
		if err := rows.Scan(&name, &typ, &dflt, &pk); err != nil {
			rows.Close()
			return err
		}
		if pk > 0 {
			pkCols = append(pkCols, name)
			pkType = typ
		}
		c := col(name)
		if c == nil || !dflt.Valid {
			continue
		}
		if d, ok := sqliteConstantDefault(dflt.String); ok {
			c.Default = d
		} else {
			report(t.Name, "default", name+" DEFAULT "+dflt.String, "not a constant")
		}
	}
	rows.Close()
	if len(pkCols) == 1 && strings.EqualFold(pkType, "INTEGER") && src != nil && !src.WithoutRowid {
		if c := col(pkCols[0]); c != nil {
			c.Identity = true
			c.Default = nil
			if n, ok := seq[t.Name]; ok {
				t.NextIdentity = n + 1
			}
		}
	}
	// Indexes.
	type idx struct {
		name    string
		unique  bool
		origin  string
		partial bool
	}
	var idxs []idx
	rows, err = db.QueryContext(ctx, "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?) ORDER BY seq DESC", t.Name)
	if err != nil {
		return fmt.Errorf("read the indexes of %s: %w", t.Name, err)
	}
	for rows.Next() {
		var x idx
		if err := rows.Scan(&x.name, &x.unique, &x.origin, &x.partial); err != nil {
			rows.Close()
			return err
		}
		idxs = append(idxs, x)
	}
	rows.Close()
	for _, x := range idxs {
		if x.origin == "pk" {
			continue
		}
		if x.partial {
			report(t.Name, "index", x.name, "partial indexes are not carried")
			continue
		}
		r, err := db.QueryContext(ctx, "SELECT cid, name FROM pragma_index_info(?) ORDER BY seqno", x.name)
		if err != nil {
			return fmt.Errorf("read index %s: %w", x.name, err)
		}
		var cols []string
		expr := false
		for r.Next() {
			var cid int
			var name sql.NullString
			if err := r.Scan(&cid, &name); err != nil {
				r.Close()
				return err
			}
			if cid < 0 || !name.Valid {
				expr = true
			}
			cols = append(cols, name.String)
		}
		r.Close()
		if expr {
			report(t.Name, "index", x.name, "expression indexes are not carried")
			continue
		}
		name := x.name
		if strings.HasPrefix(name, "sqlite_autoindex_") {
			name = t.Name + "_" + strings.Join(cols, "_") + "_key"
		}
		t.Indexes = append(t.Indexes, engine.Index{Name: name, Columns: cols, Unique: x.unique})
	}
	// Foreign keys.
	rows, err = db.QueryContext(ctx, `SELECT id, "table", "from", "to", on_update, on_delete, "match" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t.Name)
	if err != nil {
		return fmt.Errorf("read the foreign keys of %s: %w", t.Name, err)
	}
	byID := map[int]*engine.ForeignKey{}
	var order []int
	for rows.Next() {
		var id int
		var ref, from, onUpd, onDel, match string
		var to sql.NullString
		if err := rows.Scan(&id, &ref, &from, &to, &onUpd, &onDel, &match); err != nil {
			rows.Close()
			return err
		}
		fk, ok := byID[id]
		if !ok {
			fk = &engine.ForeignKey{RefTable: ref, OnDelete: sqliteAction(onDel), OnUpdate: sqliteAction(onUpd)}
			byID[id] = fk
			order = append(order, id)
		}
		fk.Columns = append(fk.Columns, from)
		fk.RefColumns = append(fk.RefColumns, to.String)
	}
	rows.Close()
	for i := len(order) - 1; i >= 0; i-- { // pragma lists them last first
		fk := byID[order[i]]
		if len(fk.RefColumns) > 0 && fk.RefColumns[0] == "" {
			// REFERENCES t without columns: t's primary key.
			r, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", fk.RefTable)
			if err != nil {
				return err
			}
			fk.RefColumns = nil
			for r.Next() {
				var n string
				if err := r.Scan(&n); err != nil {
					r.Close()
					return err
				}
				fk.RefColumns = append(fk.RefColumns, n)
			}
			r.Close()
			if len(fk.RefColumns) != len(fk.Columns) {
				report(t.Name, "foreign key", fk.RefTable, "references a table without a matching primary key, not carried")
				continue
			}
		}
		fk.Name = "fk_" + t.Name + "_" + strings.Join(fk.Columns, "_")
		t.ForeignKeys = append(t.ForeignKeys, *fk)
	}
	if src != nil && src.WithoutRowid {
		report(t.Name, "table option", "WITHOUT ROWID", "not carried")
	}
	return nil
}

func sqliteAction(a string) string {
	switch a = strings.ToUpper(a); a {
	case "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT":
		return a
	}
	return ""
}

var sqliteNumLitRE = regexp.MustCompile(`^[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$`)

// sqliteConstantDefault classifies a default as pragma table_info shows
// it (its SQL text).
func sqliteConstantDefault(expr string) (*engine.Default, bool) {
	e := strings.TrimSpace(expr)
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	switch strings.ToUpper(e) {
	case "NULL":
		return nil, true
	case "CURRENT_TIMESTAMP":
		return &engine.Default{Kind: engine.DefaultCurrentTimestamp}, true
	case "CURRENT_DATE":
		return &engine.Default{Kind: engine.DefaultCurrentDate}, true
	case "CURRENT_TIME":
		return &engine.Default{Kind: engine.DefaultCurrentTime}, true
	case "TRUE":
		return &engine.Default{Kind: engine.DefaultLiteral, Value: "true"}, true
	case "FALSE":
		return &engine.Default{Kind: engine.DefaultLiteral, Value: "false"}, true
	}
	if sqliteNumLitRE.MatchString(e) {
		return &engine.Default{Kind: engine.DefaultLiteral, Value: strings.TrimPrefix(e, "+")}, true
	}
	if len(e) >= 2 && e[0] == '\'' && e[len(e)-1] == '\'' {
		inner := e[1 : len(e)-1]
		if !strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
			return &engine.Default{Kind: engine.DefaultLiteral, Value: strings.ReplaceAll(inner, "''", "'")}, true
		}
	}
	return nil, false
}
