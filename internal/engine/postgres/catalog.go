package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/zeebo/xxh3"

	"github.com/snapdata/snapdata/internal/rowsum"
)

// column is one copied column of a table.
type column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`     // format_type(atttypid, atttypmod)
	Portable string `json:"portable"` // engine.Column.Type
	Nullable bool   `json:"nullable"`
	PK       bool   `json:"pk,omitempty"`
}

// tableInfo describes one table whose rows are copied.
type tableInfo struct {
	Name    string   `json:"name"` // quoted, qualified
	Schema  string   `json:"schema"`
	Table   string   `json:"table"`
	Columns []column `json:"columns"` // copied columns (generated columns excluded)
	PK      []string `json:"pk,omitempty"`
	PKType  string   `json:"pk_type,omitempty"` // type of the first PK column
	Parts   int      `json:"parts"`

	oid      uint32
	size     int64
	unlogged bool
}

// columnsMeta is the JSON body of meta/columns.
type columnsMeta struct {
	Version  int          `json:"version"`
	Database string       `json:"database"`
	Server   string       `json:"server_version"`
	Tables   []*tableInfo `json:"tables"`
}

// sequenceValue is one entry of meta/sequences.
type sequenceValue struct {
	Name      string `json:"name"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
}

// queryer is what pgx.Conn and pgx.Tx have in common.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const userRelFilter = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND c.relpersistence <> 't'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

// loadTables reads the copied tables (regular tables and partition
// leaves; not partitioned parents, views, foreign tables or tables that
// belong to extensions), with their columns and primary keys.
func loadTables(ctx context.Context, q queryer) ([]*tableInfo, error) {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relpersistence = 'u', pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND `+userRelFilter+`
ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tabs []*tableInfo
	byOID := map[uint32]*tableInfo{}
	for rows.Next() {
		t := &tableInfo{}
		if err := rows.Scan(&t.oid, &t.Schema, &t.Table, &t.unlogged, &t.size); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.Name = qualified(t.Schema, t.Table)
		tabs = append(tabs, t)
		byOID[t.oid] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if len(tabs) == 0 {
		return nil, nil
	}
	oids := make([]uint32, 0, len(tabs))
	for _, t := range tabs {
		oids = append(oids, t.oid)
	}
	rows, err = q.Query(ctx, `SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
  CASE WHEN t.typcategory = 'A' THEN 'array' WHEN t.typtype = 'e' OR bt.typtype = 'e' THEN 'enum'
       ELSE coalesce(bt.typname, t.typname) END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var c column
		var base string
		if err := rows.Scan(&oid, &c.Name, &c.Type, &c.Nullable, &base); err != nil {
			return nil, fmt.Errorf("list columns: %w", err)
		}
		c.Portable = portableType(base)
		byOID[oid].Columns = append(byOID[oid].Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT con.conrelid, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_constraint con
CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
WHERE con.contype = 'p' AND con.conrelid = ANY($1::oid[])
ORDER BY con.conrelid, k.ord`, oids)
	if err != nil {
		return nil, fmt.Errorf("list primary keys: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var name, typ string
		if err := rows.Scan(&oid, &name, &typ); err != nil {
			return nil, fmt.Errorf("list primary keys: %w", err)
		}
		t := byOID[oid]
		if len(t.PK) == 0 {
			t.PKType = typ
		}
		t.PK = append(t.PK, name)
		for i := range t.Columns {
			if t.Columns[i].Name == name {
				t.Columns[i].PK = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list primary keys: %w", err)
	}
	return tabs, nil
}

// loadSequenceNames lists the user sequences (including identity and
// serial sequences).
func loadSequenceNames(ctx context.Context, q queryer) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND `+userRelFilter+` ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	var out []string
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("list sequences: %w", err)
		}
		out = append(out, qualified(s, n))
	}
	return out, rows.Err()
}

func readSequences(ctx context.Context, q queryer, names []string) ([]sequenceValue, error) {
	out := make([]sequenceValue, 0, len(names))
	for _, n := range names {
		v := sequenceValue{Name: n}
		if err := q.QueryRow(ctx, "SELECT last_value, is_called FROM "+n).Scan(&v.LastValue, &v.IsCalled); err != nil {
			return nil, fmt.Errorf("read sequence %s: %w", n, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// portableType maps a PostgreSQL base type name to a portable type.
func portableType(base string) string {
	switch base {
	case "int2", "int4", "int8", "oid":
		return "integer"
	case "float4", "float8":
		return "float"
	case "numeric":
		return "numeric"
	case "bytea":
		return "bytes"
	case "bool":
		return "boolean"
	case "date":
		return "date"
	case "time", "timetz":
		return "time"
	case "timestamp":
		return "timestamp"
	case "timestamptz":
		return "timestamptz"
	case "json", "jsonb":
		return "json"
	case "uuid":
		return "uuid"
	}
	return "text"
}

func (t *tableInfo) columnList() string {
	cs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cs[i] = quoteIdent(c.Name)
	}
	return strings.Join(cs, ", ")
}

// selectQuery is the key-ordered SELECT whose COPY text is the table's
// stream on PostgreSQL 12 and 13 (no TID Range Scan). Tables with a primary
// key are ordered by it; others by the text form of the whole row (collation
// "C"), which every type has.
func (t *tableInfo) selectQuery(where string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(t.columnList())
	b.WriteString(" FROM ONLY ")
	b.WriteString(t.Name)
	b.WriteString(" AS _sd_row")
	if where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(where)
	}
	if len(t.PK) > 0 {
		b.WriteString(" ORDER BY ")
		for i, c := range t.PK {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(c))
		}
	} else {
		b.WriteString(` ORDER BY (ROW(_sd_row.*)::text) COLLATE "C"`)
	}
	return b.String()
}

// copyOut is the key-ordered COPY of a table or of one key range.
func (t *tableInfo) copyOut(where string) string {
	return "COPY (" + t.selectQuery(where) + ") TO STDOUT"
}

// copyOutPhysical is the COPY of a table (where == "") or of one TID range
// in physical (heap) order: a plain COPY of the table or a TID Range Scan,
// without sorting. The workers' sessions turn off synchronized sequential
// scans and parallel plans, so an unchanged table gives the same bytes on
// every run.
func (t *tableInfo) copyOutPhysical(where string) string {
	if where == "" && len(t.Columns) > 0 {
		return "COPY " + t.Name + " (" + t.columnList() + ") TO STDOUT"
	}
	// No copied columns (none, or only generated ones): a plain COPY
	// would copy the generated ones, so select the empty column list.
	q := "COPY (SELECT " + t.columnList() + " FROM ONLY " + t.Name
	if where != "" {
		q += " WHERE " + where
	}
	return q + ") TO STDOUT"
}

func (t *tableInfo) copyIn() string {
	if len(t.Columns) == 0 {
		return "COPY " + t.Name + " FROM STDIN"
	}
	return "COPY " + t.Name + " (" + t.columnList() + ") FROM STDIN"
}

// rowSum hashes COPY text rows as they pass into a table checksum (see
// package rowsum): it counts rows and bytes and adds the hash of each row
// (with its newline). A row that lies in one Write is hashed in one call; a
// row that spans writes (a large value) goes through a streaming hasher, so
// no row is ever buffered.
type rowSum struct {
	rowsum.Sum
	sha     hash.Hash    // rowsum.SHA256: a row that spans writes
	xh      *xxh3.Hasher // rowsum.XXH3: a row that spans writes
	bytes   int64
	partial bool // a row is in the streaming hasher
}

func newRowSum() *rowSum { return newRowSumAlgo(rowsum.XXH3) }

func newRowSumAlgo(a rowsum.Algo) *rowSum {
	r := &rowSum{Sum: rowsum.New(a)}
	if a == rowsum.SHA256 {
		r.sha = sha256.New()
	} else {
		r.xh = xxh3.New()
	}
	return r
}

func (r *rowSum) Write(p []byte) (int, error) {
	n := len(p)
	r.bytes += int64(n)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.stream().Write(p) //nolint:errcheck // hashes never fail
			r.partial = true
			break
		}
		if r.partial {
			r.stream().Write(p[:i+1]) //nolint:errcheck // hashes never fail
			r.endStreamed()
		} else {
			r.AddRow(p[:i+1])
		}
		p = p[i+1:]
	}
	return n, nil
}

// stream is the hasher of rows that span writes.
func (r *rowSum) stream() io.Writer {
	if r.Algo == rowsum.SHA256 {
		return r.sha
	}
	return r.xh
}

// endStreamed adds the hash of the row in the streaming hasher.
func (r *rowSum) endStreamed() {
	if r.Algo == rowsum.SHA256 {
		var buf [sha256.Size]byte
		r.Add256(r.sha.Sum(buf[:0]))
		r.sha.Reset()
	} else {
		r.Add128(r.xh.Sum128())
		r.xh.Reset()
	}
	r.partial = false
}

// finish ends a last row without newline (never produced by COPY).
func (r *rowSum) finish() {
	if r.partial {
		r.endStreamed()
	}
}

// add merges another sum of the same format (another part of the same
// table).
func (r *rowSum) add(o *rowSum) {
	r.Merge(o.Sum)
	r.bytes += o.bytes
}
