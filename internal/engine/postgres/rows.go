package postgres

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/engine"
)

// ExportSQL implements engine.SQLExporter: pre-data, every table as
// COPY … FROM stdin, setval for every sequence, then post-data; psql loads
// it into an empty database (psql -v ON_ERROR_STOP=1 -d db -f file).
func (e *Engine) ExportSQL(ctx context.Context, snap engine.SnapshotReader, w io.Writer) error {
	return e.ExportSQLWith(ctx, snap, w, engine.ExportOptions{})
}

// ExportSQLWith implements engine.FilteredSQLExporter: ExportSQL without
// the ALTER … OWNER TO lines (NoOwner) or the GRANT/REVOKE entries, default
// privileges included (NoPrivileges), as restore --no-owner and
// --no-privileges leave them out.
func (e *Engine) ExportSQLWith(ctx context.Context, snap engine.SnapshotReader, w io.Writer, opts engine.ExportOptions) error {
	sm, err := loadSnapshotMeta(ctx, snap)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := copySchema(ctx, snap, streamPre, bw, opts); err != nil {
		return err
	}
	fmt.Fprint(bw, "\n--\n-- Table data (snapdata)\n--\n\nSET client_encoding = 'UTF8';\nSET DateStyle = 'ISO, YMD';\nSET IntervalStyle = 'postgres';\nSET standard_conforming_strings = on;\n")
	for _, t := range sm.cols.Tables {
		fmt.Fprintf(bw, "\n--\n-- Data for %s\n--\n\n%s;\n", strings.ReplaceAll(t.Name, "\n", " "), strings.Replace(t.copyIn(), "FROM STDIN", "FROM stdin", 1))
		for _, st := range snap.Manifest().TableStreams(t.Name) {
			r, err := snap.Open(ctx, st)
			if err != nil {
				return fmt.Errorf("open stream %s: %w", st.Name, err)
			}
			_, err = io.Copy(bw, r)
			r.Close()
			if err != nil {
				return fmt.Errorf("export table %s: %w", t.Name, err)
			}
		}
		fmt.Fprint(bw, "\\.\n")
	}
	if len(sm.seqs) > 0 {
		fmt.Fprint(bw, "\n--\n-- Sequence values (snapdata)\n--\n\n")
	}
	for _, s := range sm.seqs {
		fmt.Fprintf(bw, "SELECT pg_catalog.setval(%s, %d, %t);\n", quoteLiteral(s.Name), s.LastValue, s.IsCalled)
	}
	fmt.Fprint(bw, "\n")
	if err := copySchema(ctx, snap, streamPost, bw, opts); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write SQL export: %w", err)
	}
	return nil
}

// copySchema copies a schema stream, without owners or privileges as opts
// say.
func copySchema(ctx context.Context, snap engine.SnapshotReader, name string, w io.Writer, opts engine.ExportOptions) error {
	if !opts.NoOwner && !opts.NoPrivileges {
		return copyStream(ctx, snap, name, w)
	}
	b, ok, err := readStream(ctx, snap, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("snapshot has no %s stream", name)
	}
	header, entries := parseDump(string(b))
	if _, err := io.WriteString(w, header); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	for _, en := range filterEntries(entries, opts.NoOwner, opts.NoPrivileges) {
		if _, err := io.WriteString(w, en.Body); err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
	}
	return nil
}

func copyStream(ctx context.Context, snap engine.SnapshotReader, name string, w io.Writer) error {
	for _, st := range snap.Manifest().Streams {
		if st.Name != name {
			continue
		}
		r, err := snap.Open(ctx, st)
		if err != nil {
			return fmt.Errorf("open stream %s: %w", name, err)
		}
		defer r.Close()
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("snapshot has no %s stream", name)
}

// Schema implements engine.RowReader.
func (e *Engine) Schema(ctx context.Context, snap engine.SnapshotReader) ([]engine.TableSchema, error) {
	sm, err := loadSnapshotMeta(ctx, snap)
	if err != nil {
		return nil, err
	}
	out := make([]engine.TableSchema, 0, len(sm.cols.Tables))
	for _, t := range sm.cols.Tables {
		ts := engine.TableSchema{Name: t.Name}
		for _, c := range t.Columns {
			ts.Columns = append(ts.Columns, engine.Column{Name: c.Name, Type: c.Portable, SourceType: c.Type, Nullable: c.Nullable, PrimaryKey: c.PK})
		}
		out = append(out, ts)
	}
	return out, nil
}

// ReadRows implements engine.RowReader: it decodes COPY text rows.
func (e *Engine) ReadRows(ctx context.Context, snap engine.SnapshotReader, table string, fn func(row []any) error) error {
	sm, err := loadSnapshotMeta(ctx, snap)
	if err != nil {
		return err
	}
	t := findTable(sm.cols.Tables, table)
	if t == nil {
		return readPartitionedRows(ctx, snap, sm, table, fn)
	}
	for _, st := range snap.Manifest().TableStreams(t.Name) {
		if err := readCopyRows(ctx, snap, t, st.Name, func(row []any) error { return fn(row) }); err != nil {
			return err
		}
	}
	return nil
}

func readCopyRows(ctx context.Context, snap engine.SnapshotReader, t *tableInfo, name string, fn func([]any) error) error {
	var st = snap.Manifest().Streams
	for _, s := range st {
		if s.Name != name {
			continue
		}
		r, err := snap.Open(ctx, s)
		if err != nil {
			return fmt.Errorf("open stream %s: %w", name, err)
		}
		defer r.Close()
		br := bufio.NewReaderSize(r, 256<<10)
		for n := 1; ; n++ {
			line, err := br.ReadString('\n')
			if errors.Is(err, io.EOF) && line == "" {
				return nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read stream %s: %w", name, err)
			}
			row, derr := decodeCopyLine(strings.TrimSuffix(line, "\n"), t.Columns)
			if derr != nil {
				return fmt.Errorf("table %s row %d: %w", t.Name, n, derr)
			}
			if err := fn(row); err != nil {
				return err
			}
			if n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return fmt.Errorf("snapshot has no stream %s", name)
}

// decodeCopyLine turns one COPY text line into Go values.
func decodeCopyLine(line string, cols []column) ([]any, error) {
	fields := strings.Split(line, "\t")
	if len(cols) == 0 && line == "" {
		return []any{}, nil
	}
	if len(fields) != len(cols) {
		return nil, fmt.Errorf("%d fields, expected %d", len(fields), len(cols))
	}
	row := make([]any, len(cols))
	for i, f := range fields {
		if f == `\N` {
			continue
		}
		s := unescapeCopy(f)
		v, err := convertValue(s, cols[i].Portable)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
		row[i] = v
	}
	return row, nil
}

func convertValue(s, portable string) (any, error) {
	switch portable {
	case "integer":
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return s, nil //nolint:nilerr // out of int64 range (oid > 2^63 never; keep text)
		}
		return v, nil
	case "float":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad float %q", s)
		}
		return v, nil
	case "boolean":
		return s == "t", nil
	case "bytes":
		if !strings.HasPrefix(s, `\x`) {
			return nil, fmt.Errorf("bytea value not in hex format")
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, fmt.Errorf("bad bytea: %w", err)
		}
		return b, nil
	}
	return s, nil
}

// unescapeCopy undoes COPY text's backslash escapes in one field.
func unescapeCopy(f string) string {
	if strings.IndexByte(f, '\\') < 0 {
		return f
	}
	return string(appendUnescaped(make([]byte, 0, len(f)), []byte(f)))
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

func importRows(ctx context.Context, conn *pgx.Conn, ti *tableInfo, src string, rows func(string, func([]any) error) error, opts engine.RestoreOptions) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bw := bufio.NewWriterSize(pw, 256<<10)
		var buf []byte
		err := rows(src, func(row []any) error {
			if len(row) != len(ti.Columns) {
				return fmt.Errorf("row has %d values, table has %d columns", len(row), len(ti.Columns))
			}
			buf = buf[:0]
			for i, v := range row {
				if i > 0 {
					buf = append(buf, '\t')
				}
				buf = encodeCopyValue(buf, v, ti.Columns[i].Portable)
			}
			buf = append(buf, '\n')
			opts.Progress.AddRows(1)
			opts.Progress.AddBytes(int64(len(buf)))
			_, err := bw.Write(buf)
			return err
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	_, err := conn.PgConn().CopyFrom(ctx, pr, ti.copyIn())
	pr.CloseWithError(errors.New("copy ended"))
	<-done
	return err
}

// encodeCopyValue appends one value in COPY text form.
func encodeCopyValue(b []byte, v any, portable string) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, `\N`...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return append(b, "NaN"...)
		case math.IsInf(x, 1):
			return append(b, "Infinity"...)
		case math.IsInf(x, -1):
			return append(b, "-Infinity"...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case float32:
		return encodeCopyValue(b, float64(x), portable)
	case bool:
		if x {
			return append(b, 't')
		}
		return append(b, 'f')
	case []byte:
		if portable == "bytes" {
			b = append(b, `\\x`...)
			return hex.AppendEncode(b, x)
		}
		return appendEscapedCopy(b, x)
	case string:
		if portable == "bytes" {
			b = append(b, `\\x`...)
			return hex.AppendEncode(b, []byte(x))
		}
		return appendEscapedCopy(b, []byte(x))
	case time.Time:
		return x.AppendFormat(b, "2006-01-02 15:04:05.999999999Z07:00")
	}
	return appendEscapedCopy(b, []byte(fmt.Sprint(v)))
}
