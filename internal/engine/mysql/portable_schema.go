package mysql

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// PortableSchema implements engine.SchemaDescriber: the tables' columns
// (with precision, scale and lengths) and, read from SHOW CREATE TABLE,
// unique and secondary indexes, foreign keys, constant defaults and
// AUTO_INCREMENT with its next value. Views, routines, triggers, events,
// sequences, CHECK constraints, generated columns and the rest are listed
// in NotCarried.
func (e *Engine) PortableSchema(ctx context.Context, snap engine.SnapshotReader) (*engine.PortableSchema, error) {
	ss, err := readSnapshotSchema(ctx, snap)
	if err != nil {
		return nil, err
	}
	ps := &engine.PortableSchema{Tables: portableSchema(ss.tables)}
	report := func(table, kind, object, format string, args ...any) {
		ps.NotCarried = append(ps.NotCarried, engine.NotCarried{Table: table, Kind: kind, Object: object, Reason: fmt.Sprintf(format, args...)})
	}
	byName := map[string]*engine.TableSchema{}
	for i := range ps.Tables {
		byName[ps.Tables[i].Name] = &ps.Tables[i]
	}
	for _, t := range ss.tables {
		ts := byName[t.Name]
		for i, c := range t.Columns {
			pc := &ts.Columns[i]
			if m := myNumRE.FindStringSubmatch(c.ColumnType); m != nil && pc.Type == "numeric" {
				pc.Precision, _ = strconv.Atoi(m[1])
				if m[2] != "" {
					pc.Scale, _ = strconv.Atoi(m[2])
				}
			}
			if m := myLenRE.FindStringSubmatch(c.ColumnType); m != nil && pc.Type == "text" {
				pc.Length, _ = strconv.Atoi(m[1])
			}
			switch c.DataType {
			case "enum", "set":
				report(t.Name, "column type", c.Name+" "+c.ColumnType, "stored as text (its list of values is not carried)")
			case "bit":
				if pc.Type != "boolean" {
					report(t.Name, "column type", c.Name+" "+c.ColumnType, "stored as a number")
				}
			case "year":
				report(t.Name, "column type", c.Name+" "+c.ColumnType, "stored as a number")
			case "inet4", "inet6", "geometry", "point", "linestring", "polygon":
				report(t.Name, "column type", c.Name+" "+c.ColumnType, "stored as %s", pc.Type)
			}
			if strings.Contains(c.ColumnType, "unsigned") && pc.Type == "integer" {
				report(t.Name, "column type", c.Name+" "+c.ColumnType, "UNSIGNED is not carried (no CHECK is added)")
			}
		}
		for _, g := range t.Generated {
			report(t.Name, "generated column", g, "generated columns are not carried")
		}
	}
	for _, st := range ss.pre {
		switch st.Type {
		case "table":
			if ts := byName[st.Name]; ts != nil {
				describeCreate(ts, st.SQL, report)
			}
		default:
			report("", st.Type, st.Name, "not carried across engines")
		}
	}
	for _, st := range ss.post {
		switch st.Type {
		case "setval":
		case "trigger":
			report(st.Table, "trigger", st.Name, "not carried across engines")
		default:
			report(st.Table, st.Type, st.Name, "not carried across engines")
		}
	}
	return ps, nil
}

var (
	myNumRE     = regexp.MustCompile(`^(?:decimal|numeric)\((\d+)(?:,(\d+))?\)`)
	myLenRE     = regexp.MustCompile(`^(?:varchar|char)\((\d+)\)`)
	myAutoRE    = regexp.MustCompile(`\) ENGINE=.*? AUTO_INCREMENT=(\d+)`)
	myKeyRE     = regexp.MustCompile("^(UNIQUE KEY|KEY|FULLTEXT KEY|SPATIAL KEY|VECTOR KEY|INDEX) (`(?:[^`]|``)*`) \\((.*)\\)(.*)$")
	myFKRE      = regexp.MustCompile("^CONSTRAINT (`(?:[^`]|``)*`) FOREIGN KEY \\((.*?)\\) REFERENCES (`(?:[^`]|``)*`(?:\\.`(?:[^`]|``)*`)?) \\((.*?)\\)(.*)$")
	myCheckRE   = regexp.MustCompile("^CONSTRAINT (`(?:[^`]|``)*`) CHECK (.*)$")
	myDefaultRE = regexp.MustCompile(`\sDEFAULT (.*)$`)
)

// myIdent unquotes one backquoted identifier.
func myIdent(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '`' || s[len(s)-1] != '`' {
		return "", false
	}
	return strings.ReplaceAll(s[1:len(s)-1], "``", "`"), true
}

// myIdentList parses "`a`,`b`(10) DESC"; prefix lengths and orders are
// dropped and reported through prefix.
func myIdentList(s string) (cols []string, prefix bool, ok bool) {
	for _, p := range splitTopMy(s) {
		p = strings.TrimSpace(p)
		p = strings.TrimSuffix(strings.TrimSuffix(p, " DESC"), " ASC")
		if i := strings.LastIndexByte(p, '`'); i >= 0 && i < len(p)-1 {
			if strings.HasPrefix(p[i+1:], "(") {
				prefix = true
			}
			p = p[:i+1]
		}
		id, good := myIdent(p)
		if !good {
			return nil, false, false
		}
		cols = append(cols, id)
	}
	return cols, prefix, len(cols) > 0
}

func splitTopMy(s string) []string {
	var out []string
	depth, start := 0, 0
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ:
			if c == '`' {
				inQ = false
			}
		case c == '`':
			inQ = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// describeCreate reads SHOW CREATE TABLE output into ts.
func describeCreate(ts *engine.TableSchema, sql string, report func(table, kind, object, format string, args ...any)) {
	lines := strings.Split(sql, "\n")
	for _, line := range lines[1:] {
		line = strings.TrimSuffix(strings.TrimSpace(line), ",")
		switch {
		case line == "" || strings.HasPrefix(line, "PRIMARY KEY"):
		case strings.HasPrefix(line, ")"):
			if m := myAutoRE.FindStringSubmatch(line); m != nil {
				ts.NextIdentity, _ = strconv.ParseInt(m[1], 10, 64)
			}
		case strings.HasPrefix(line, "PARTITION BY") || strings.HasPrefix(line, "/*!50100 PARTITION BY") || strings.HasPrefix(line, "(PARTITION"):
			report(ts.Name, "partitioning", line, "partitioning is not carried; the rows are imported into one table")
		case strings.HasPrefix(line, "`"):
			describeColumnLine(ts, line, report)
		case strings.HasPrefix(line, "CONSTRAINT "):
			if m := myFKRE.FindStringSubmatch(line); m != nil {
				name, _ := myIdent(m[1])
				cols, _, ok1 := myIdentList(m[2])
				refCols, _, ok2 := myIdentList(m[4])
				ref := m[3]
				if i := strings.Index(ref, "`.`"); i >= 0 {
					report(ts.Name, "foreign key", name, "references a table of another database (%s), not carried", ref)
					continue
				}
				refName, ok3 := myIdent(ref)
				if !ok1 || !ok2 || !ok3 {
					report(ts.Name, "foreign key", line, "not understood, not carried")
					continue
				}
				fk := engine.ForeignKey{Name: name, Columns: cols, RefTable: refName, RefColumns: refCols}
				tail := m[5] + " "
				fk.OnDelete = myAction(tail, " ON DELETE ")
				fk.OnUpdate = myAction(tail, " ON UPDATE ")
				ts.ForeignKeys = append(ts.ForeignKeys, fk)
			} else if m := myCheckRE.FindStringSubmatch(line); m != nil {
				name, _ := myIdent(m[1])
				if strings.HasPrefix(m[2], "(json_valid(") {
					continue // MariaDB's JSON type
				}
				report(ts.Name, "check", name+" CHECK "+m[2], "CHECK constraints are not carried")
			} else {
				report(ts.Name, "constraint", line, "not carried")
			}
		default:
			m := myKeyRE.FindStringSubmatch(line)
			if m == nil {
				report(ts.Name, "index", line, "not understood, not carried")
				continue
			}
			name, _ := myIdent(m[2])
			kind := m[1]
			if kind != "KEY" && kind != "UNIQUE KEY" && kind != "INDEX" {
				report(ts.Name, "index", name, "%s indexes are not carried", strings.TrimSuffix(kind, " KEY"))
				continue
			}
			cols, prefix, ok := myIdentList(m[3])
			if !ok {
				report(ts.Name, "index", name+" ("+m[3]+")", "expression indexes are not carried")
				continue
			}
			if prefix {
				report(ts.Name, "index", name, "prefix lengths are not carried; the index covers whole columns")
			}
			ts.Indexes = append(ts.Indexes, engine.Index{Name: name, Columns: cols, Unique: kind == "UNIQUE KEY"})
		}
	}
}

// describeColumnLine reads a column's default, AUTO_INCREMENT and ON
// UPDATE from its SHOW CREATE TABLE line.
func describeColumnLine(ts *engine.TableSchema, line string, report func(table, kind, object, format string, args ...any)) {
	end := 1
	for end < len(line) {
		if line[end] == '`' {
			if end+1 < len(line) && line[end+1] == '`' {
				end += 2
				continue
			}
			break
		}
		end++
	}
	name, ok := myIdent(line[:end+1])
	if !ok {
		return
	}
	idx := -1
	for i, c := range ts.Columns {
		if c.Name == name {
			idx = i
		}
	}
	if idx < 0 {
		return // a generated column
	}
	rest := line[end+1:]
	c := &ts.Columns[idx]
	if strings.Contains(rest, " AUTO_INCREMENT") {
		if c.Type == "integer" {
			c.Identity = true
		} else {
			report(ts.Name, "identity", name, "AUTO_INCREMENT on a %s column is not carried", c.SourceType)
		}
	}
	if i := strings.Index(rest, " ON UPDATE "); i >= 0 {
		report(ts.Name, "on update", name+rest[i:], "ON UPDATE defaults are not carried")
		rest = rest[:i]
	}
	if i := strings.Index(rest, " COMMENT '"); i >= 0 {
		report(ts.Name, "comment", name, "column comments are not carried")
		rest = rest[:i]
	}
	m := myDefaultRE.FindStringSubmatch(rest)
	if m == nil {
		return
	}
	expr := strings.TrimSpace(m[1])
	expr = strings.TrimSuffix(expr, " AUTO_INCREMENT")
	def, ok := myConstantDefault(expr)
	if !ok {
		report(ts.Name, "default", name+" DEFAULT "+expr, "not a constant")
		return
	}
	c.Default = def
}

var myNumLitRE = regexp.MustCompile(`^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$`)

// myConstantDefault classifies a default as SHOW CREATE TABLE prints it
// (MariaDB: numbers bare, strings quoted, expressions as SQL; MySQL:
// every literal quoted).
func myConstantDefault(expr string) (*engine.Default, bool) {
	e := strings.TrimSpace(expr)
	low := strings.ToLower(e)
	switch {
	case low == "null":
		return nil, true
	case strings.HasPrefix(low, "current_timestamp"), low == "now()", strings.HasPrefix(low, "localtimestamp"):
		return &engine.Default{Kind: engine.DefaultCurrentTimestamp}, true
	case low == "curdate()" || low == "current_date()" || low == "current_date":
		return &engine.Default{Kind: engine.DefaultCurrentDate}, true
	case low == "curtime()" || strings.HasPrefix(low, "current_time"):
		return &engine.Default{Kind: engine.DefaultCurrentTime}, true
	case myNumLitRE.MatchString(e):
		return &engine.Default{Kind: engine.DefaultLiteral, Value: e}, true
	case low == "b'1'" || low == "b'0'":
		return &engine.Default{Kind: engine.DefaultLiteral, Value: e[2:3]}, true
	}
	if len(e) >= 2 && e[0] == '\'' && e[len(e)-1] == '\'' {
		inner := e[1 : len(e)-1]
		if v, ok := unquoteMy(inner); ok {
			return &engine.Default{Kind: engine.DefaultLiteral, Value: v}, true
		}
	}
	return nil, false
}

// unquoteMy undoes the escapes of a quoted MySQL string.
func unquoteMy(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return "", false
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func myAction(tail, key string) string {
	i := strings.Index(tail, key)
	if i < 0 {
		return ""
	}
	rest := tail[i+len(key):]
	for _, a := range []string{"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"} {
		if strings.HasPrefix(rest, a) {
			if a == "NO ACTION" {
				return ""
			}
			return a
		}
	}
	return ""
}
