package postgres

// A restore can send a table's rows to the server in COPY's binary format
// instead of the text format the snapshot holds (binaryRows converts them
// line by line). The server then skips its text input functions, of which
// the date and time parser is by far the most expensive: loading the bench
// data's orders table (two timestamptz columns) took 4.6 server CPU-seconds
// as text and 2.1–2.3 as binary, customers (one) 2.0–2.2 against 1.1–1.2,
// while a table of integers and numerics gained nothing. The conversion
// costs the client far less than the parse costs the server (Go parses a
// timestamp in tens of nanoseconds), and on a host where both share the
// cores the difference is wall time.
//
// Only tables whose every column has a codec here are converted (integers,
// numeric, float4, float8, text and its kin, json, jsonb, bytea, uuid, inet,
// cidr, bool, date,
// time, timetz, timestamp, timestamptz, interval, enums, domains over these and
// arrays of these), and only when one of them is a date or time
// (binaryCodecs); every other table is loaded as text, as before. The
// snapshot's text comes from sessions with DateStyle ISO, TimeZone UTC,
// IntervalStyle postgres, bytea_output hex and extra_float_digits 1 (see
// connConfig): a field that does not read as that output (a snapshot from
// elsewhere, a value this code does not expect) ends the binary COPY with
// errTextOnly before the server sees a wrong value, and the table is loaded
// again as text in a new transaction.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// errTextOnly marks a field that binaryRows cannot convert: the caller
// loads the table as text instead.
var errTextOnly = errors.New("not convertible to COPY binary")

// textOnlyError says which field could not be converted.
type textOnlyError struct {
	line   int64 // 1-based, in the stream
	column int   // 1-based
	reason string
}

func (e *textOnlyError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.column, e.reason)
}

func (e *textOnlyError) Unwrap() error { return errTextOnly }

// fieldCodec appends the binary form of one field's text (never NULL) to
// dst: a field of COPY text (codecFor) or an array's element.
type fieldCodec func(dst, f []byte) ([]byte, error)

// Built-in type OIDs: fixed in every PostgreSQL release.
const (
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidCidr        = 650
	oidInet        = 869
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimeTZ      = 1266
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// colType is a column's type in the target database: its OID and kind
// (pg_type.typtype), and for a domain those of its base type.
type colType struct {
	oid      uint32
	typtype  byte
	baseOID  uint32
	baseType byte
	elemOID  uint32 // of an array type (typcategory 'A'): its element type
	elemType byte
	// of an array of a domain: the domain's base type
	elemBaseOID  uint32
	elemBaseType byte
}

// codecFor returns the codec of a column type for a field of COPY text, and
// whether the type is a date or time; nil when the type has none here. Only
// the codecs of types whose text may hold a backslash undo COPY's escapes
// (text and its kin into the output as they go); the others never print
// one, and a field that has one is refused like any other they cannot read.
func codecFor(ct colType) (fieldCodec, bool) { return typeCodec(ct, true) }

// typeCodec is codecFor for a field of COPY text (copyText) or for text
// without COPY's escapes (an array's element).
func typeCodec(ct colType, copyText bool) (fieldCodec, bool) {
	pick := func(plain, escaped fieldCodec) fieldCodec {
		if copyText {
			return escaped
		}
		return plain
	}
	oid, kind := ct.oid, ct.typtype
	if kind == 'd' { // a domain: binary input goes through its base type
		oid, kind = ct.baseOID, ct.baseType
	}
	if kind == 'e' { // an enum's binary form is its label
		return pick(appendText, appendTextEscaped), false
	}
	if kind != 'b' {
		return nil, false
	}
	if ct.elemOID != 0 && ct.typtype == 'b' { // an array of a base type, an enum or a domain
		elem, datetime := typeCodec(colType{oid: ct.elemOID, typtype: ct.elemType, baseOID: ct.elemBaseOID, baseType: ct.elemBaseType}, false)
		if elem == nil {
			return nil, false
		}
		array := appendArray(ct.elemOID, elem)
		return pick(array, unescaping(array)), datetime
	}
	switch oid {
	case oidBool:
		return appendBool, false
	case oidBytea:
		return pick(appendBytea, appendByteaEscaped), false
	case oidInt2:
		return appendInt(16), false
	case oidInt4:
		return appendInt(32), false
	case oidInt8:
		return appendInt(64), false
	case oidOID:
		return appendOID, false
	case oidText, oidVarchar, oidBpchar, oidName, oidJSON:
		return pick(appendText, appendTextEscaped), false
	case oidJSONB:
		return pick(appendJSONB, appendJSONBEscaped), false
	case oidFloat4:
		return appendFloat4, false
	case oidFloat8:
		return appendFloat8, false
	case oidNumeric:
		return appendNumeric, false
	case oidUUID:
		return appendUUID, false
	case oidInet:
		return appendInet(false), false
	case oidCidr:
		return appendInet(true), false
	case oidDate:
		return appendDate, true
	case oidTime:
		return appendTime, true
	case oidTimestamp:
		return appendTimestamp(false), true
	case oidTimestamptz:
		return appendTimestamp(true), true
	case oidInterval:
		return appendInterval, true
	case oidTimeTZ:
		return appendTimeTZ, true
	}
	return nil, false
}

// unescaping wraps a codec of plain text for a field of COPY text (an
// array's: its quotes and backslashes come escaped).
func unescaping(codec fieldCodec) fieldCodec {
	return func(dst, f []byte) ([]byte, error) {
		if bytes.IndexByte(f, '\\') >= 0 {
			f = appendUnescaped(nil, f)
		}
		return codec(dst, f)
	}
}

func appendTextEscaped(dst, f []byte) ([]byte, error) { return appendUnescaped(dst, f), nil }

func appendJSONBEscaped(dst, f []byte) ([]byte, error) {
	return appendUnescaped(append(dst, 1), f), nil
}

// appendByteaEscaped reads bytea's hex output as COPY text has it: its
// leading backslash doubled, the hex digits as they are.
func appendByteaEscaped(dst, f []byte) ([]byte, error) {
	if len(f) < 2 || f[0] != '\\' || f[1] != '\\' {
		return nil, errors.New("bytea is not in hex format")
	}
	return appendBytea(dst, f[1:])
}

// binaryCodecs returns the codecs of a table's copied columns, in order, when
// the table is worth loading in binary: every column has a codec and one of
// them is a date or time. types holds the target's columns by name.
func binaryCodecs(t *tableInfo, types map[string]colType) []fieldCodec {
	if len(t.Columns) == 0 {
		return nil
	}
	codecs := make([]fieldCodec, len(t.Columns))
	worth := false
	for i, c := range t.Columns {
		ct, ok := types[c.Name]
		if !ok {
			return nil
		}
		codec, datetime := codecFor(ct)
		if codec == nil {
			return nil
		}
		codecs[i] = codec
		worth = worth || datetime
	}
	if !worth {
		return nil
	}
	return codecs
}

// columnTypes reads the column types of the database's tables (the
// restore's target, the backup's source), keyed by qualified table name (as
// tableInfo.Name) and column name.
func columnTypes(ctx context.Context, q queryer) (map[string]map[string]colType, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, a.attname, t.oid, t.typtype::text,
  coalesce(b.oid, 0), coalesce(b.typtype::text, ''), coalesce(e.oid, 0), coalesce(e.typtype::text, ''),
  coalesce(eb.oid, 0), coalesce(eb.typtype::text, '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd'
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' AND t.typlen = -1
LEFT JOIN pg_type eb ON eb.oid = e.typbasetype AND e.typtype = 'd'
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`)
	if err != nil {
		return nil, fmt.Errorf("read the tables' column types: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]colType{}
	for rows.Next() {
		var schema, table, col, typtype, baseType, elemType, elemBaseType string
		var ct colType
		if err := rows.Scan(&schema, &table, &col, &ct.oid, &typtype, &ct.baseOID, &baseType, &ct.elemOID, &elemType,
			&ct.elemBaseOID, &elemBaseType); err != nil {
			return nil, fmt.Errorf("read the tables' column types: %w", err)
		}
		if typtype != "" {
			ct.typtype = typtype[0]
		}
		if baseType != "" {
			ct.baseType = baseType[0]
		}
		if elemType != "" {
			ct.elemType = elemType[0]
		}
		if elemBaseType != "" {
			ct.elemBaseType = elemBaseType[0]
		}
		key := qualified(schema, table)
		if out[key] == nil {
			out[key] = map[string]colType{}
		}
		out[key][col] = ct
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the tables' column types: %w", err)
	}
	return out, nil
}

// binaryHeader starts a COPY binary stream: the signature, no flags, no
// header extension.
var binaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// binaryRows reads COPY text rows from src and returns them as one COPY
// binary stream. A field it cannot convert ends the stream with a
// *textOnlyError (kept in convErr); an error of src is returned as it is.
type binaryRows struct {
	src     io.Reader
	codecs  []fieldCodec
	in      []byte // text read but not converted: a partial line
	out     []byte // binary not yet returned, from off
	off     int
	started bool
	done    bool
	line    int64
	convErr error
}

// readSize is how much text binaryRows asks src for at a time.
const readSize = 256 << 10

// maxBinaryLine bounds the text of one row that binaryRows holds: a longer
// row (a huge bytea, text or jsonb value) makes the table load as COPY
// text, which streams a row of any length to the server, instead of
// holding the row and its binary form whole (a 200 MiB bytea: 650 MiB).
const maxBinaryLine = 16 << 20

func newBinaryRows(src io.Reader, codecs []fieldCodec) *binaryRows {
	return &binaryRows{src: src, codecs: codecs}
}

func (b *binaryRows) Read(p []byte) (int, error) {
	for b.off == len(b.out) {
		if b.done {
			return 0, io.EOF
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.out[b.off:])
	b.off += n
	return n, nil
}

// fill reads more text and converts its complete lines into out.
func (b *binaryRows) fill() error {
	b.out, b.off = b.out[:0], 0
	if !b.started {
		b.out = append(b.out, binaryHeader...)
		b.started = true
	}
	if cap(b.in)-len(b.in) < readSize/2 {
		// Room for another read; a line longer than the buffer grows it.
		grown := make([]byte, len(b.in), 2*len(b.in)+readSize)
		copy(grown, b.in)
		b.in = grown
	}
	// At most readSize at a time, so that a long row is seen passing
	// maxBinaryLine before it is complete.
	n, err := b.src.Read(b.in[len(b.in):min(cap(b.in), len(b.in)+readSize)])
	b.in = b.in[:len(b.in)+n]
	used, cerr := b.convert(b.in)
	if cerr != nil {
		b.convErr = cerr
		return cerr
	}
	rest := copy(b.in, b.in[used:])
	b.in = b.in[:rest]
	if len(b.in) > maxBinaryLine {
		b.convErr = &textOnlyError{line: b.line + 1, column: 1,
			reason: fmt.Sprintf("a row of more than %d MiB: loaded as COPY text, which streams it", maxBinaryLine>>20)}
		return b.convErr
	}
	switch {
	case err == io.EOF:
		if len(b.in) > 0 {
			b.convErr = &textOnlyError{line: b.line + 1, column: 1, reason: "the stream ends inside a line"}
			return b.convErr
		}
		b.out = append(b.out, 0xff, 0xff) // the trailer: a tuple of -1 fields
		b.done = true
	case err != nil:
		return err
	}
	return nil
}

// convert appends the binary tuples of the complete lines in text to out
// and returns how many bytes of text they took.
func (b *binaryRows) convert(text []byte) (int, error) {
	used := 0
	ncols := len(b.codecs)
	for {
		nl := bytes.IndexByte(text[used:], '\n')
		if nl < 0 {
			return used, nil
		}
		line := text[used : used+nl]
		used += nl + 1
		b.line++
		b.out = binary.BigEndian.AppendUint16(b.out, uint16(ncols))
		for col, codec := range b.codecs {
			var f []byte
			if col < ncols-1 {
				tab := bytes.IndexByte(line, '\t')
				if tab < 0 {
					return 0, &textOnlyError{line: b.line, column: col + 2, reason: fmt.Sprintf("%d fields, want %d", col+1, ncols)}
				}
				f, line = line[:tab], line[tab+1:]
			} else {
				if bytes.IndexByte(line, '\t') >= 0 {
					return 0, &textOnlyError{line: b.line, column: col + 1, reason: fmt.Sprintf("more than %d fields", ncols)}
				}
				f = line
			}
			if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
				b.out = binary.BigEndian.AppendUint32(b.out, math.MaxUint32) // NULL: length -1
				continue
			}
			at := len(b.out)
			b.out = append(b.out, 0, 0, 0, 0)
			var err error
			b.out, err = codec(b.out, f)
			if err != nil {
				return 0, &textOnlyError{line: b.line, column: col + 1, reason: err.Error()}
			}
			binary.BigEndian.PutUint32(b.out[at:], uint32(len(b.out)-at-4))
		}
	}
}
