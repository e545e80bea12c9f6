package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"math/bits"
	"strings"

	"github.com/jackc/pgx/v5"
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

// selectQuery is the ordered SELECT whose COPY text is the table's stream.
// Tables with a primary key are ordered by it; others by the text form of
// the whole row (collation "C"), which every type has.
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

func (t *tableInfo) copyOut(where string) string {
	return "COPY (" + t.selectQuery(where) + ") TO STDOUT"
}

func (t *tableInfo) copyIn() string {
	if len(t.Columns) == 0 {
		return "COPY " + t.Name + " FROM STDIN"
	}
	return "COPY " + t.Name + " (" + t.columnList() + ") FROM STDIN"
}

// rowSum hashes COPY text rows as they pass: it counts rows and adds the
// SHA-256 of each row (with its newline) into a 256-bit sum.
type rowSum struct {
	h       hash.Hash
	sum     [4]uint64 // big-endian limbs
	rows    int64
	bytes   int64
	partial bool
	buf     [sha256.Size]byte
}

func newRowSum() *rowSum { return &rowSum{h: sha256.New()} }

func (r *rowSum) Write(p []byte) (int, error) {
	n := len(p)
	r.bytes += int64(n)
	for len(p) > 0 {
		i := indexNL(p)
		if i < 0 {
			r.h.Write(p)
			r.partial = true
			break
		}
		r.h.Write(p[:i+1])
		r.endRow()
		p = p[i+1:]
	}
	return n, nil
}

func indexNL(p []byte) int {
	for i, c := range p {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func (r *rowSum) endRow() {
	d := r.h.Sum(r.buf[:0])
	r.h.Reset()
	r.partial = false
	r.rows++
	var carry uint64
	for i := 3; i >= 0; i-- {
		v := uint64(d[i*8])<<56 | uint64(d[i*8+1])<<48 | uint64(d[i*8+2])<<40 | uint64(d[i*8+3])<<32 |
			uint64(d[i*8+4])<<24 | uint64(d[i*8+5])<<16 | uint64(d[i*8+6])<<8 | uint64(d[i*8+7])
		r.sum[i], carry = bits.Add64(r.sum[i], v, carry)
	}
}

// finish ends a last row without newline (never produced by COPY).
func (r *rowSum) finish() {
	if r.partial {
		r.endRow()
	}
}

// add merges another sum (another part of the same table).
func (r *rowSum) add(o *rowSum) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		r.sum[i], carry = bits.Add64(r.sum[i], o.sum[i], carry)
	}
	r.rows += o.rows
	r.bytes += o.bytes
}

func (r *rowSum) hex() string {
	var b [32]byte
	for i := 0; i < 4; i++ {
		v := r.sum[i]
		for j := 0; j < 8; j++ {
			b[i*8+j] = byte(v >> (56 - 8*j))
		}
	}
	return hex.EncodeToString(b[:])
}
