package postgres

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// PortableSchema implements engine.SchemaDescriber. It reads the
// snapshot's column catalog and pg_dump's pre-data and post-data sections:
// a partitioned table becomes one table holding the rows of its
// partitions; unique constraints and plain-column indexes become indexes;
// foreign keys, constant defaults and identity (identity columns, serial
// and other nextval defaults, with the sequence's next value) are carried;
// everything else is listed in NotCarried.
func (e *Engine) PortableSchema(ctx context.Context, snap engine.SnapshotReader) (*engine.PortableSchema, error) {
	sm, err := loadSnapshotMeta(ctx, snap)
	if err != nil {
		return nil, err
	}
	var sections [2][]dumpEntry
	for i, name := range []string{streamPre, streamPost} {
		b, ok, err := readStream(ctx, snap, name)
		if err != nil {
			return nil, err
		}
		if ok {
			_, sections[i] = parseDump(string(b))
		}
	}
	return describeDump(sm, sections[0], sections[1]), nil
}

// normName turns a dumped qualified name into the snapshot's form.
func normName(schema, table string) string { return qualified(schema, table) }

// pgDesc builds a PortableSchema.
type pgDesc struct {
	ps       engine.PortableSchema
	byName   map[string]*engine.TableSchema // exported tables by qualified name
	parentOf map[string]string              // partition -> its partitioned table
	seqNext  map[string]int64               // sequence -> next value
	seqUsed  map[string]bool
}

func (d *pgDesc) report(table, kind, object, format string, args ...any) {
	d.ps.NotCarried = append(d.ps.NotCarried, engine.NotCarried{Table: table, Kind: kind, Object: object, Reason: fmt.Sprintf(format, args...)})
}

// root follows partitions up to the table that is exported.
func (d *pgDesc) root(name string) string {
	for i := 0; i < 64; i++ {
		p, ok := d.parentOf[name]
		if !ok {
			return name
		}
		name = p
	}
	return name
}

var (
	attachRE   = regexp.MustCompile(`(?s)^ALTER TABLE ONLY (.+?) ATTACH PARTITION (.+?) (?:FOR VALUES|DEFAULT)`)
	identityRE = regexp.MustCompile(`(?s)^ALTER TABLE (?:ONLY )?(.+?) ALTER COLUMN (.+?) ADD GENERATED (?:ALWAYS|BY DEFAULT) AS IDENTITY \(\s*SEQUENCE NAME (\S+)`)
	setDefRE   = regexp.MustCompile(`(?s)^ALTER TABLE (?:ONLY )?(.+?) ALTER COLUMN (.+?) SET DEFAULT (.*);\s*$`)
	createTbRE = regexp.MustCompile(`(?s)^CREATE (?:UNLOGGED )?TABLE (.+?) \(\n(.*?)\n\)`)
	addConRE   = regexp.MustCompile(`(?s)^ALTER TABLE (?:ONLY )?(.+?)\s+ADD CONSTRAINT (.+?) (PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK|EXCLUDE)(.*?);\s*$`)
	indexRE    = regexp.MustCompile(`(?s)^CREATE (UNIQUE )?INDEX (.+?) ON (?:ONLY )?(.+?) USING (\w+) \((.*)\)(.*?);\s*$`)
	fkRefRE    = regexp.MustCompile(`(?s)^\s*\((.*?)\) REFERENCES (.+?)\((.*?)\)(.*)$`)
	titleRE    = regexp.MustCompile(`^Name: (.*?); Type: [A-Z ]+; Schema: (.*?);`)
	numTypeRE  = regexp.MustCompile(`^numeric\((\d+)(?:,(\d+))?\)$`)
	lenTypeRE  = regexp.MustCompile(`^(?:character varying|character|bit varying|bit)\((\d+)\)$`)
	nextvalRE  = regexp.MustCompile(`^nextval\('(.+?)'::regclass\)$`)
	strLitRE   = regexp.MustCompile(`^'((?:[^']|'')*)'(?:::[a-z][a-z ]*(?:\(\d+(?:,\d+)?\))?)*$`)
	numLitRE   = regexp.MustCompile(`^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$`)
)

// statement is an entry's SQL without comment lines and owner changes.
func statement(e dumpEntry) string {
	var b strings.Builder
	for _, l := range strings.Split(e.Body, "\n") {
		if strings.HasPrefix(l, "--") || strings.HasPrefix(l, "SET ") || strings.HasPrefix(l, "SELECT pg_catalog.set_config") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	s := strings.TrimSpace(b.String())
	s = ownerLineRE.ReplaceAllString(s+"\n", "")
	return strings.TrimSpace(s)
}

func dumpTitle(e dumpEntry) string {
	if m := titleRE.FindStringSubmatch(e.Title); m != nil {
		if m[2] != "-" && m[2] != "" {
			return m[2] + "." + m[1]
		}
		return m[1]
	}
	return e.Title
}

// dumpName parses a dumped qualified name into the snapshot's form.
func dumpName(s string) (string, bool) {
	sc, tb, ok := splitQualified(strings.TrimSpace(s))
	if !ok {
		return "", false
	}
	return normName(sc, tb), true
}

// dumpIdent parses one (possibly quoted) identifier.
func dumpIdent(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	if s[0] == '"' {
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", false
		}
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			return "", false
		}
		return strings.ReplaceAll(inner, `""`, `"`), true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			return "", false
		}
	}
	return s, true
}

// splitTop splits s at commas outside parentheses and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	inQ, inS := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQ:
			if c == '"' {
				inQ = false
			}
		case inS:
			if c == '\'' {
				inS = false
			}
		case c == '"':
			inQ = true
		case c == '\'':
			inS = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// identList parses "a, "B", c" into names; ok is false when an element is
// not a plain column (an expression, an operator class, a sort order).
func identList(s string) ([]string, bool) {
	var out []string
	for _, p := range splitTop(s) {
		id, ok := dumpIdent(p)
		if !ok {
			return nil, false
		}
		out = append(out, id)
	}
	return out, len(out) > 0
}

func describeDump(sm *snapshotMeta, pre, post []dumpEntry) *engine.PortableSchema {
	d := &pgDesc{byName: map[string]*engine.TableSchema{}, parentOf: map[string]string{}, seqNext: map[string]int64{}, seqUsed: map[string]bool{}}
	for _, s := range sm.seqs {
		next := s.LastValue
		if s.IsCalled {
			next++
		}
		if n, ok := dumpName(s.Name); ok {
			d.seqNext[n] = next
		}
	}
	created := map[string]string{} // table -> CREATE TABLE column list
	for _, e := range pre {
		st := statement(e)
		switch e.Type {
		case "TABLE ATTACH":
			if m := attachRE.FindStringSubmatch(st); m != nil {
				p, ok1 := dumpName(m[1])
				c, ok2 := dumpName(m[2])
				if ok1 && ok2 {
					d.parentOf[c] = p
				}
			}
		case "TABLE":
			if m := createTbRE.FindStringSubmatch(st); m != nil {
				if n, ok := dumpName(m[1]); ok {
					created[n] = m[2]
				}
			}
		}
	}
	// Tables: every copied table that is not a partition, and one table per
	// partitioned root with the rows of its partitions.
	index := map[string]int{}
	for _, t := range sm.cols.Tables {
		name := d.root(t.Name)
		i, ok := index[name]
		if !ok {
			sc, tb := t.Schema, t.Table
			if name != t.Name {
				sc, tb, _ = splitQualified(name)
			}
			ts := engine.TableSchema{Name: name, Schema: sc, Table: tb}
			for _, c := range t.Columns {
				ts.Columns = append(ts.Columns, portableColumn(c))
			}
			i = len(d.ps.Tables)
			index[name] = i
			d.ps.Tables = append(d.ps.Tables, ts)
		}
		if name != t.Name {
			d.ps.Tables[i].Partitions = append(d.ps.Tables[i].Partitions, t.Name)
		}
	}
	for i := range d.ps.Tables {
		d.byName[d.ps.Tables[i].Name] = &d.ps.Tables[i]
	}
	for i := range d.ps.Tables {
		t := &d.ps.Tables[i]
		for _, c := range t.Columns {
			d.typeReport(t.Name, c)
		}
		if len(t.Partitions) > 0 {
			sort.Strings(t.Partitions)
		}
	}
	// Column defaults written inside CREATE TABLE, and generated columns
	// and CHECK constraints there.
	for name, body := range created {
		if _, isPart := d.parentOf[name]; isPart {
			continue // its parent's definition counts
		}
		ts := d.byName[name]
		for _, line := range strings.Split(body, "\n") {
			line = strings.TrimSuffix(strings.TrimSpace(line), ",")
			if line == "" {
				continue
			}
			if strings.HasPrefix(line, "CONSTRAINT ") {
				if ts != nil {
					d.report(name, "check", line, "CHECK constraints are not carried")
				}
				continue
			}
			col, rest, ok := leadingIdent(line)
			if !ok || ts == nil {
				continue
			}
			if strings.Contains(rest, " GENERATED ALWAYS AS (") {
				d.report(name, "generated column", col, "generated columns are not carried (%s)", strings.TrimSpace(rest))
				continue
			}
			if i := strings.Index(rest, " DEFAULT "); i >= 0 {
				expr := strings.TrimSuffix(strings.TrimSpace(rest[i+len(" DEFAULT "):]), " NOT NULL")
				d.setDefault(ts, col, expr)
			}
		}
	}
	for _, e := range pre {
		st := statement(e)
		switch e.Type {
		case "TABLE", "TABLE ATTACH", "SCHEMA", "SEQUENCE OWNED BY", "ACL", "DEFAULT ACL", "COMMENT":
			if e.Type == "ACL" {
				d.report("", "privileges", dumpTitle(e), "grants are not carried")
			} else if e.Type == "COMMENT" {
				d.report("", "comment", dumpTitle(e), "comments are not carried")
			}
		case "DEFAULT":
			if m := setDefRE.FindStringSubmatch(st); m != nil {
				tn, ok1 := dumpName(m[1])
				col, ok2 := dumpIdent(m[2])
				if ts := d.byName[tn]; ok1 && ok2 && ts != nil {
					d.setDefault(ts, col, strings.TrimSpace(m[3]))
				}
			}
		case "SEQUENCE":
			if m := identityRE.FindStringSubmatch(st); m != nil {
				tn, ok1 := dumpName(m[1])
				col, ok2 := dumpIdent(m[2])
				seq, ok3 := dumpName(m[3])
				if ts := d.byName[d.root(tn)]; ok1 && ok2 && ok3 && ts != nil {
					d.setIdentity(ts, col, seq)
				}
			}
		case "TYPE":
			d.report("", "type", dumpTitle(e), "user-defined types are not carried; their columns are stored as text")
		case "DOMAIN":
			d.report("", "domain", dumpTitle(e), "domains are not carried; their columns are stored as the base type, without the domain's constraints")
		default:
			d.report("", strings.ToLower(e.Type), dumpTitle(e), "not carried across engines")
		}
	}
	// Sequences that no identity column took over.
	for _, e := range pre {
		if e.Type == "SEQUENCE" && !identityRE.MatchString(statement(e)) {
			if m := regexp.MustCompile(`^CREATE SEQUENCE (\S+)`).FindStringSubmatch(statement(e)); m != nil {
				if n, ok := dumpName(m[1]); ok && !d.seqUsed[n] {
					d.report("", "sequence", n, "sequences that are not an identity column's are not carried")
				}
			}
		}
	}
	for _, e := range post {
		d.postEntry(e)
	}
	return &d.ps
}

// leadingIdent splits a column line into its (possibly quoted) name and
// the rest.
func leadingIdent(line string) (string, string, bool) {
	if strings.HasPrefix(line, `"`) {
		for i := 1; i < len(line); i++ {
			if line[i] == '"' {
				if i+1 < len(line) && line[i+1] == '"' {
					i++
					continue
				}
				id, ok := dumpIdent(line[:i+1])
				return id, line[i+1:], ok
			}
		}
		return "", "", false
	}
	i := strings.IndexByte(line, ' ')
	if i < 0 {
		return "", "", false
	}
	id, ok := dumpIdent(line[:i])
	return id, line[i:], ok
}

func portableColumn(c column) engine.Column {
	pc := engine.Column{Name: c.Name, Type: c.Portable, SourceType: c.Type, Nullable: c.Nullable, PrimaryKey: c.PK}
	if m := numTypeRE.FindStringSubmatch(c.Type); m != nil && c.Portable == "numeric" {
		pc.Precision, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			pc.Scale, _ = strconv.Atoi(m[2])
		}
	}
	if m := lenTypeRE.FindStringSubmatch(c.Type); m != nil && c.Portable == "text" {
		pc.Length, _ = strconv.Atoi(m[1])
	}
	return pc
}

// typeReport names columns whose type another engine cannot hold as it is.
func (d *pgDesc) typeReport(table string, c engine.Column) {
	t := c.SourceType
	switch {
	case strings.HasSuffix(t, "[]"):
		d.report(table, "column type", c.Name+" "+t, "arrays are stored as their PostgreSQL text form ({a,b})")
	case c.Type == "text" && !(t == "text" || t == "name" || t == `"char"` || t == "citext" ||
		strings.HasPrefix(t, "character varying") || strings.HasPrefix(t, "character")):
		d.report(table, "column type", c.Name+" "+t, "stored as text")
	case strings.Contains(t, ".") && c.Type != "text":
		d.report(table, "column type", c.Name+" "+t, "a domain: stored as its base type (%s), without the domain's constraints", c.Type)
	case t == "time with time zone":
		d.report(table, "column type", c.Name+" "+t, "stored as a time without its zone offset")
	}
}

// setDefault records a column default, or reports it when it is not a
// constant; nextval defaults make the column an identity.
func (d *pgDesc) setDefault(ts *engine.TableSchema, col, expr string) {
	i := colIndex(ts, col)
	if i < 0 {
		return
	}
	if m := nextvalRE.FindStringSubmatch(expr); m != nil {
		if seq, ok := dumpName(m[1]); ok {
			d.setIdentity(ts, col, seq)
			return
		}
	}
	def, ok := constantDefault(expr)
	if !ok {
		d.report(ts.Name, "default", col+" DEFAULT "+expr, "not a constant")
		return
	}
	ts.Columns[i].Default = def
}

func (d *pgDesc) setIdentity(ts *engine.TableSchema, col, seq string) {
	i := colIndex(ts, col)
	if i < 0 {
		return
	}
	d.seqUsed[seq] = true
	for _, c := range ts.Columns {
		if c.Identity && c.Name != col {
			d.report(ts.Name, "identity", col, "a second counter in one table (sequence %s) is not carried", seq)
			return
		}
	}
	if ts.Columns[i].Type != "integer" {
		d.report(ts.Name, "identity", col, "a counter on a %s column is not carried", ts.Columns[i].SourceType)
		return
	}
	ts.Columns[i].Identity = true
	ts.Columns[i].Default = nil
	ts.NextIdentity = d.seqNext[seq]
}

func colIndex(ts *engine.TableSchema, col string) int {
	for i, c := range ts.Columns {
		if c.Name == col {
			return i
		}
	}
	return -1
}

// constantDefault classifies a default expression as pg_dump prints it.
func constantDefault(expr string) (*engine.Default, bool) {
	e := strings.TrimSpace(expr)
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	switch strings.ToLower(e) {
	case "now()", "current_timestamp", "transaction_timestamp()", "localtimestamp", "statement_timestamp()":
		return &engine.Default{Kind: engine.DefaultCurrentTimestamp}, true
	case "current_date":
		return &engine.Default{Kind: engine.DefaultCurrentDate}, true
	case "current_time", "localtime":
		return &engine.Default{Kind: engine.DefaultCurrentTime}, true
	case "true", "false":
		return &engine.Default{Kind: engine.DefaultLiteral, Value: strings.ToLower(e)}, true
	}
	if strings.HasPrefix(e, "- ") {
		e = "-" + e[2:]
	}
	if numLitRE.MatchString(e) {
		return &engine.Default{Kind: engine.DefaultLiteral, Value: e}, true
	}
	if m := strLitRE.FindStringSubmatch(e); m != nil {
		v := strings.ReplaceAll(m[1], "''", "'")
		if strings.HasSuffix(e, "::timestamp with time zone") || strings.HasSuffix(e, "::timestamp without time zone") {
			if strings.EqualFold(v, "now") {
				return &engine.Default{Kind: engine.DefaultCurrentTimestamp}, true
			}
		}
		return &engine.Default{Kind: engine.DefaultLiteral, Value: v}, true
	}
	if strings.HasPrefix(strings.ToUpper(e), "NULL") {
		return nil, true
	}
	return nil, false
}
