package mysql

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/snapdata/snapdata/internal/engine"
)

// valueKind says how a dumped column's text is written as an SQL literal.
type valueKind int

const (
	kindNumber valueKind = iota // written as is
	kindText                    // quoted string (UTF-8 columns) or _charset X'..'
	kindQuoted                  // quoted ASCII: dates, times, uuid, inet
	kindBinary                  // X'..'
)

func (c column) kind() valueKind {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "numeric", "float", "double", "real", "year", "bit":
		return kindNumber
	case "date", "time", "datetime", "timestamp", "uuid", "inet4", "inet6", "json":
		return kindQuoted
	}
	if c.Charset != "" && c.Charset != "binary" {
		return kindText
	}
	return kindBinary
}

func isUTF8Charset(cs string) bool {
	switch cs {
	case "utf8mb4", "utf8mb3", "utf8", "ascii":
		return true
	}
	return false
}

// appendLiteral appends the SQL literal of one field (nil is NULL).
func appendLiteral(b *strings.Builder, c column, v []byte) {
	if v == nil {
		b.WriteString("NULL")
		return
	}
	switch c.kind() {
	case kindNumber:
		b.Write(v)
	case kindQuoted:
		b.WriteString(quoteString(string(v)))
	case kindText:
		if isUTF8Charset(c.Charset) && utf8.Valid(v) {
			b.WriteString(quoteString(string(v)))
			return
		}
		b.WriteString("_" + c.Charset + " X'")
		b.WriteString(hex.EncodeToString(v))
		b.WriteString("'")
	default:
		b.WriteString("X'")
		b.WriteString(hex.EncodeToString(v))
		b.WriteString("'")
	}
}

const insertBatchBytes = 1 << 20

// ExportSQL writes the snapshot as one SQL script that
// `mariadb DBNAME < file.sql` (or `mysql`) loads into an empty database.
func (e *Engine) ExportSQL(ctx context.Context, snap engine.SnapshotReader, w io.Writer) error {
	return e.ExportSQLWith(ctx, snap, w, engine.ExportOptions{})
}

// ExportSQLWith implements engine.FilteredSQLExporter. NoOwner leaves out
// the DEFINER= clauses of views, routines, triggers and events (the client
// then makes the loading user their definer), as restore --no-owner does.
// The script holds no GRANT statements (the database's grants name
// server-wide accounts and are restored by restore only), so NoPrivileges
// changes nothing.
func (e *Engine) ExportSQLWith(ctx context.Context, snap engine.SnapshotReader, w io.Writer, opts engine.ExportOptions) error {
	ss, err := readSnapshotSchema(ctx, snap)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	p := func(s string) {
		bw.WriteString(s)
	}
	p("-- snapdata SQL export of MySQL/MariaDB database " + sqlComment(ss.meta.Database) + " (server " + sqlComment(ss.meta.ServerVersion) + ")\n")
	p("-- Load into an empty database: mariadb DBNAME < this-file.sql\n")
	p("SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS = 0;\nSET UNIQUE_CHECKS = 0;\n")
	p("SET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION';\nSET TIME_ZONE = '+00:00';\n")
	if ss.meta.Charset != "" {
		p("ALTER DATABASE CHARACTER SET " + ss.meta.Charset + collateClause(ss.meta.Charset, ss.meta.Collation) + ";\n")
	}
	p("\n")
	definer := func(q string) string {
		if opts.NoOwner {
			return stripDefiner(q)
		}
		return q
	}
	for _, st := range ss.pre {
		p("-- " + st.Type + " " + sqlComment(st.Name) + "\n" + definer(st.SQL) + ";\n\n")
	}
	m := snap.Manifest()
	for _, t := range ss.tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(t.Columns) == 0 {
			continue
		}
		head := "INSERT INTO " + quoteIdent(t.Name) + " ("
		for i, c := range t.Columns {
			if i > 0 {
				head += ", "
			}
			head += quoteIdent(c.Name)
		}
		head += ") VALUES\n"
		var b strings.Builder
		n := 0
		flush := func() {
			if n > 0 {
				b.WriteString(";\n")
				bw.WriteString(b.String())
			}
			b.Reset()
			n = 0
		}
		for _, s := range m.TableStreams(t.Name) {
			r, err := snap.Open(ctx, s)
			if err != nil {
				return fmt.Errorf("opening stream %s: %w", s.Name, err)
			}
			dec := newRowDecoder(r, len(t.Columns))
			for {
				row, err := dec.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					r.Close()
					return fmt.Errorf("reading stream %s: %w", s.Name, err)
				}
				if n == 0 {
					b.WriteString(head)
				} else {
					b.WriteString(",\n")
				}
				b.WriteString("(")
				for i, v := range row {
					if i > 0 {
						b.WriteString(",")
					}
					appendLiteral(&b, t.Columns[i], v)
				}
				b.WriteString(")")
				n++
				if b.Len() >= insertBatchBytes {
					flush()
				}
			}
			r.Close()
		}
		flush()
	}
	p("\n")
	for _, st := range ss.post {
		p("-- " + st.Type + " " + sqlComment(st.Name) + "\n")
		if st.Charset != "" {
			p("SET NAMES " + st.Charset + collateClause(st.Charset, st.Collation) + ";\n")
		}
		if st.Type == "procedure" || st.Type == "function" || st.Type == "trigger" || st.Type == "event" {
			p("SET SESSION sql_mode = " + quoteString(st.SQLMode) + ";\n")
		}
		if st.TimeZone != "" {
			p("SET SESSION time_zone = " + quoteString(st.TimeZone) + ";\n")
		}
		p("DELIMITER ;;\n" + definer(st.SQL) + " ;;\nDELIMITER ;\n")
		p("SET NAMES utf8mb4;\nSET SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION';\nSET TIME_ZONE = '+00:00';\n\n")
	}
	p("SET FOREIGN_KEY_CHECKS = 1;\nSET UNIQUE_CHECKS = 1;\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing SQL export: %w", err)
	}
	return nil
}

// sqlComment makes s safe inside a -- comment.
func sqlComment(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
