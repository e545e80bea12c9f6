package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/engine"
)

// Schema returns the portable description of the snapshot's tables.
func (e *Engine) Schema(ctx context.Context, snap engine.SnapshotReader) ([]engine.TableSchema, error) {
	ss, err := readSnapshotSchema(ctx, snap)
	if err != nil {
		return nil, err
	}
	return portableSchema(ss.tables), nil
}

// ReadRows decodes the rows of one table. Values follow engine.RowReader:
// integers int64, BIT(1) bool, floats float64, text string (converted to
// UTF-8), binary []byte; DECIMAL, BIGINT UNSIGNED, dates, times and JSON
// as strings; TIMESTAMP as UTC with a "+00:00" suffix.
func (e *Engine) ReadRows(ctx context.Context, snap engine.SnapshotReader, tableName string, fn func(row []any) error) error {
	ss, err := readSnapshotSchema(ctx, snap)
	if err != nil {
		return err
	}
	t := ss.table(tableName)
	if t == nil {
		return fmt.Errorf("table %q is not in the snapshot", tableName)
	}
	types := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		types[i] = portableType(c)
	}
	for _, s := range snap.Manifest().TableStreams(tableName) {
		r, err := snap.Open(ctx, s)
		if err != nil {
			return fmt.Errorf("opening stream %s: %w", s.Name, err)
		}
		dec := newRowDecoder(r, len(t.Columns))
		for {
			fields, err := dec.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("reading stream %s: %w", s.Name, err)
			}
			row := make([]any, len(fields))
			for i, f := range fields {
				v, err := decodeValue(t.Columns[i], types[i], f)
				if err != nil {
					r.Close()
					return fmt.Errorf("table %s column %s: %w", tableName, t.Columns[i].Name, err)
				}
				row[i] = v
			}
			if err := fn(row); err != nil {
				r.Close()
				return err
			}
		}
		r.Close()
	}
	return nil
}

func decodeValue(c column, typ string, f []byte) (any, error) {
	if f == nil {
		return nil, nil
	}
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q: %w", f, err)
		}
		return n, nil
	case "boolean":
		return string(f) != "0", nil
	case "float":
		x, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			return nil, fmt.Errorf("bad float %q: %w", f, err)
		}
		return x, nil
	case "bytes":
		return append([]byte{}, f...), nil
	case "text":
		return decodeText(c.Charset, f)
	case "timestamptz":
		return string(f) + "+00:00", nil
	}
	return string(f), nil
}

// cp1252 maps bytes 0x80..0x9f of MySQL's latin1 (which is Windows-1252).
var cp1252 = [32]rune{
	0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f,
	0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
}

func decodeText(charset string, f []byte) (any, error) {
	switch charset {
	case "utf8mb4", "utf8mb3", "utf8", "ascii", "":
		if !utf8.Valid(f) {
			return nil, fmt.Errorf("text is not valid UTF-8")
		}
		return string(f), nil
	case "latin1":
		var b strings.Builder
		for _, c := range f {
			if c >= 0x80 && c < 0xa0 {
				b.WriteRune(cp1252[c-0x80])
			} else {
				b.WriteRune(rune(c))
			}
		}
		return b.String(), nil
	case "binary":
		return append([]byte{}, f...), nil
	}
	return nil, fmt.Errorf("cannot convert character set %s to UTF-8", charset)
}

// mariadbType maps a portable column type to a MariaDB column type; keyed
// says the column is part of a key, index or foreign key (MariaDB cannot
// index LONGTEXT or LONGBLOB without a prefix).
func mariadbType(c engine.Column, keyed bool) (string, bool) {
	switch c.Type {
	case "integer":
		return "BIGINT", true
	case "float":
		return "DOUBLE", true
	case "numeric":
		if c.Precision > 0 && c.Precision <= 65 && c.Scale <= 30 && c.Scale <= c.Precision {
			return fmt.Sprintf("DECIMAL(%d,%d)", c.Precision, c.Scale), true
		}
		return "DECIMAL(65,30)", true
	case "boolean":
		return "BOOLEAN", true
	case "text":
		if c.Length > 0 && c.Length <= maxVarchar {
			return fmt.Sprintf("VARCHAR(%d)", c.Length), true
		}
		if keyed || c.PrimaryKey {
			return "VARCHAR(255)", true
		}
		return "LONGTEXT", true
	case "bytes":
		if keyed || c.PrimaryKey {
			return "VARBINARY(255)", true
		}
		return "LONGBLOB", true
	case "date":
		return "DATE", true
	case "time":
		return "TIME(6)", true
	case "timestamp", "timestamptz":
		return "DATETIME(6)", true
	case "json":
		return "JSON", true
	case "uuid":
		return "CHAR(36)", true
	}
	return "", false
}

// maxVarchar is the longest text column created as VARCHAR: longer ones
// (and those without a length) are LONGTEXT, which does not count against
// InnoDB's 65,535-byte row limit.
const maxVarchar = 4000

func importRows(ctx context.Context, c querier, t engine.TableSchema, rows func(table string, fn func(row []any) error) error, opts engine.RestoreOptions) error {
	tbl := &table{Name: t.Name}
	for _, col := range t.Columns {
		tbl.Columns = append(tbl.Columns, column{Name: col.Name, DataType: "import"})
	}
	pr, pw := io.Pipe()
	var sent int64
	nonFinite := make([]int64, len(t.Columns)) // written by the producer, read once the load took every row
	go func() {
		var buf []byte
		vals := make([][]byte, len(t.Columns))
		err := rows(t.Name, func(row []any) error {
			if len(row) != len(t.Columns) {
				return fmt.Errorf("row has %d values, table has %d columns", len(row), len(t.Columns))
			}
			var scratch []byte
			for i, v := range row {
				if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) && t.Columns[i].Nullable {
					// MariaDB has no NaN or infinities: NULL, and reported.
					nonFinite[i]++
					v = nil
				}
				b, err := importValue(scratch[:0], t.Columns[i], v)
				if err != nil {
					return fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
				}
				vals[i] = b
			}
			buf = appendRow(buf[:0], vals)
			sent++
			opts.Progress.AddRows(1)
			opts.Progress.AddBytes(int64(len(buf)))
			_, err := pw.Write(buf)
			return err
		})
		pw.CloseWithError(err)
	}()
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("naming reader: %w", err)
	}
	name := "snapdata-import-" + hex.EncodeToString(id[:])
	mysql.RegisterReaderHandler(name, func() io.Reader { return pr })
	defer mysql.DeregisterReaderHandler(name)
	res, err := c.ExecContext(ctx, tbl.loadSQL(name))
	pr.CloseWithError(fmt.Errorf("load ended"))
	if err != nil {
		return localInfileHint(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != sent {
		return fmt.Errorf("the server took %d of %d rows", n, sent)
	}
	for i, n := range nonFinite {
		if n > 0 {
			opts.Import.Reportf(t.Name, "value", t.Columns[i].Name, "%d NaN or infinite values stored as NULL: MariaDB has no such floats", n)
		}
	}
	return nil
}

// importValue encodes a portable value as a mysql-tsv/1 field (nil: NULL).
func importValue(dst []byte, c engine.Column, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("MariaDB cannot store %v", x)
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64), nil
	case bool:
		if x {
			return append(dst, '1'), nil
		}
		return append(dst, '0'), nil
	case []byte:
		return append(dst, x...), nil
	case time.Time:
		return x.UTC().AppendFormat(dst, "2006-01-02 15:04:05.999999"), nil
	case string:
		if c.Type == "timestamptz" {
			if t, ok := parseTimestamptz(x); ok {
				return t.UTC().AppendFormat(dst, "2006-01-02 15:04:05.999999"), nil
			}
		}
		if c.Type == "boolean" {
			switch strings.ToLower(x) {
			case "t", "true", "1":
				return append(dst, '1'), nil
			case "f", "false", "0":
				return append(dst, '0'), nil
			}
		}
		return append(dst, x...), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func parseTimestamptz(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07",
		time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
