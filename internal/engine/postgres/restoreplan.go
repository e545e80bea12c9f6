package postgres

import (
	"context"
	"fmt"
	"strings"
)

// Post-data entries that run in the dependency graph; the others (index
// attachments excepted) run in pg_dump's order after it.
const (
	entryIndex       = "INDEX"
	entryConstraint  = "CONSTRAINT"
	entryFK          = "FK CONSTRAINT"
	entryIndexAttach = "INDEX ATTACH"
)

// planInput is what planRestore needs to know.
type planInput struct {
	// data: one per table with rows to load, in the chosen tables' order.
	data []dataLoad
	// post: post-data entries to schedule (indexes, keys, attachments,
	// foreign keys); others are not looked at.
	post []dumpEntry
	// partitions: partitioned table key -> its partitions (direct
	// children), from the target after pre-data.
	partitions map[string][]string
}

// dataLoad is one table's rows.
type dataLoad struct {
	table string // key: qualified name
	bytes int64
}

// planned is the graph with what each task stands for.
type planned struct {
	tasks []*task
	data  map[string]*task // table key -> load task
	post  []*task          // parallel to planInput.post
}

// planRestore builds the task graph. run functions are left nil; the
// caller fills them in. Entries whose table cannot be read from their SQL
// wait for every load (and, for foreign keys, every key) and lock
// everything, so an unexpected form costs time, never correctness.
func planRestore(in planInput) *planned {
	p := &planned{data: map[string]*task{}, post: make([]*task, len(in.post))}
	bytes := map[string]int64{}
	all := map[string]bool{}
	var loads []*task
	for _, d := range in.data {
		t := &task{name: "table " + d.table, cost: float64(d.bytes)}
		t.lock(d.table, lockExclusive)
		p.data[d.table] = t
		p.tasks = append(p.tasks, t)
		loads = append(loads, t)
		bytes[d.table] += d.bytes
		all[d.table] = true
	}
	for parent, kids := range in.partitions {
		all[parent] = true
		for _, k := range kids {
			all[k] = true
		}
	}
	tree := func(key string) []string {
		out := []string{key}
		for i := 0; i < len(out); i++ {
			out = append(out, in.partitions[out[i]]...)
		}
		return out
	}
	treeBytes := func(keys []string) (n int64) {
		for _, k := range keys {
			n += bytes[k]
		}
		return n
	}
	loadsOf := func(keys []string) (ts []*task) {
		for _, k := range keys {
			if t := p.data[k]; t != nil {
				ts = append(ts, t)
			}
		}
		return ts
	}
	lockAll := func(t *task) {
		for k := range all {
			t.lock(k, lockExclusive)
		}
		t.lock(lockEverything, lockExclusive)
	}

	keysOf := map[string][]*task{} // table key -> index and key tasks
	var keyTasks, unknownKeys, attaches []*task
	type fk struct {
		t       *task
		from    []string
		to      []string
		unknown bool
	}
	var fks []fk
	for i, en := range in.post {
		stmt := entrySQL(en.Body)
		t := &task{name: fmt.Sprintf("schema entry %q", en.Title)}
		p.post[i] = t
		p.tasks = append(p.tasks, t)
		switch en.Type {
		case entryIndex, entryConstraint:
			var table string
			var ok bool
			if en.Type == entryIndex {
				table, ok = parseIndexTable(stmt)
			} else {
				table, ok = parseAlterTable(stmt)
			}
			if !ok {
				t.deps = loads
				lockAll(t)
				unknownKeys = append(unknownKeys, t)
				keyTasks = append(keyTasks, t)
				continue
			}
			keys := tree(table)
			t.deps = loadsOf(keys)
			t.cost = float64(treeBytes(keys)) / 2
			mode := lockExclusive // ALTER TABLE ADD PRIMARY KEY/UNIQUE takes ACCESS EXCLUSIVE
			if en.Type == entryIndex {
				mode = lockShare
			}
			for _, k := range keys {
				t.lock(k, mode)
			}
			t.lock(lockEverything, lockShare)
			keysOf[table] = append(keysOf[table], t)
			keyTasks = append(keyTasks, t)
		case entryIndexAttach:
			// Cheap; after every index and key, one at a time.
			t.lock(lockAttach, lockExclusive)
			t.lock(lockEverything, lockShare)
			attaches = append(attaches, t)
		case entryFK:
			from, ok1 := parseAlterTable(stmt)
			to, ok2 := parseFKReferences(stmt)
			if !ok1 || !ok2 {
				fks = append(fks, fk{t: t, unknown: true})
				continue
			}
			fks = append(fks, fk{t: t, from: tree(from), to: tree(to)})
		default:
			// Not expected here: run it after everything else scheduled.
			fks = append(fks, fk{t: t, unknown: true})
		}
	}
	for _, a := range attaches {
		a.deps = keyTasks
	}
	for _, f := range fks {
		t := f.t
		if f.unknown {
			t.deps = append(append(append([]*task{}, loads...), keyTasks...), attaches...)
			lockAll(t)
			continue
		}
		t.deps = append(loadsOf(f.from), loadsOf(f.to)...)
		for _, k := range f.to {
			t.deps = append(t.deps, keysOf[k]...)
		}
		t.deps = append(t.deps, unknownKeys...)
		if len(f.from) > 1 || len(f.to) > 1 {
			// A partitioned table's key is valid once its partitions'
			// indexes are attached.
			t.deps = append(t.deps, attaches...)
		}
		for _, k := range f.from {
			t.lock(k, lockExclusive)
		}
		for _, k := range f.to {
			t.lock(k, lockExclusive)
		}
		t.lock(lockEverything, lockShare)
		t.cost = float64(treeBytes(f.from)+treeBytes(f.to)) / 4
	}
	return p
}

// Pseudo table keys (no real table key starts with a NUL byte).
const (
	lockEverything = "\x00all"    // held exclusively by entries whose table is unknown
	lockAttach     = "\x00attach" // index attachments one at a time
)

// entrySQL drops the comment lines and blank lines of an entry body.
func entrySQL(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "--") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// parseIndexTable reads the table of "CREATE [UNIQUE] INDEX name ON [ONLY]
// schema.table …".
func parseIndexTable(s string) (string, bool) {
	s, ok := expectWords(s, "CREATE")
	if !ok {
		return "", false
	}
	if r, ok := expectWords(s, "UNIQUE"); ok {
		s = r
	}
	if s, ok = expectWords(s, "INDEX"); !ok {
		return "", false
	}
	if _, s, ok = scanIdent(skipSpace(s)); !ok {
		return "", false
	}
	if s, ok = expectWords(s, "ON"); !ok {
		return "", false
	}
	if r, ok := expectWords(s, "ONLY"); ok {
		s = r
	}
	table, _, ok := scanQualified(skipSpace(s))
	return table, ok
}

// parseAlterTable reads the table of "ALTER TABLE [ONLY] schema.table …".
func parseAlterTable(s string) (string, bool) {
	s, ok := expectWords(s, "ALTER", "TABLE")
	if !ok {
		return "", false
	}
	if r, ok := expectWords(s, "ONLY"); ok {
		s = r
	}
	table, _, ok := scanQualified(skipSpace(s))
	return table, ok
}

// parseFKReferences reads the referenced table of "ALTER TABLE … ADD
// CONSTRAINT name FOREIGN KEY (cols) REFERENCES schema.table(cols) …".
func parseFKReferences(s string) (string, bool) {
	s, ok := expectWords(s, "ALTER", "TABLE")
	if !ok {
		return "", false
	}
	if r, ok := expectWords(s, "ONLY"); ok {
		s = r
	}
	if _, s, ok = scanQualified(skipSpace(s)); !ok {
		return "", false
	}
	if s, ok = expectWords(s, "ADD", "CONSTRAINT"); !ok {
		return "", false
	}
	if _, s, ok = scanIdent(skipSpace(s)); !ok {
		return "", false
	}
	if s, ok = expectWords(s, "FOREIGN", "KEY"); !ok {
		return "", false
	}
	if s, ok = skipParens(skipSpace(s)); !ok {
		return "", false
	}
	if s, ok = expectWords(s, "REFERENCES"); !ok {
		return "", false
	}
	table, _, ok := scanQualified(skipSpace(s))
	return table, ok
}

func skipSpace(s string) string { return strings.TrimLeft(s, " \t\r\n") }

func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// expectWords consumes keywords separated by white space.
func expectWords(s string, words ...string) (string, bool) {
	for _, w := range words {
		s = skipSpace(s)
		if !strings.HasPrefix(s, w) || (len(s) > len(w) && identByte(s[len(w)])) {
			return "", false
		}
		s = s[len(w):]
	}
	return s, true
}

// scanIdent reads one identifier, quoted or not, and returns it unquoted.
// pg_dump leaves only lower-case names unquoted, so no case folding.
func scanIdent(s string) (id, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != '"' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			return b.String(), s[i+1:], true
		}
		return "", "", false
	}
	i := 0
	for i < len(s) && identByte(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// scanQualified reads schema.name and returns the table key (the quoted,
// qualified form of tableInfo.Name).
func scanQualified(s string) (key, rest string, ok bool) {
	schema, rest, ok := scanIdent(s)
	if !ok || !strings.HasPrefix(rest, ".") {
		return "", "", false
	}
	name, rest, ok := scanIdent(rest[1:])
	if !ok {
		return "", "", false
	}
	return qualified(schema, name), rest, true
}

// skipParens skips a parenthesised list (with quoted identifiers).
func skipParens(s string) (string, bool) {
	if !strings.HasPrefix(s, "(") {
		return "", false
	}
	depth := 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			if c == '"' {
				inQuote = false // a doubled quote re-enters at the next byte
			}
		case c == '"':
			inQuote = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return s[i+1:], true
			}
		}
	}
	return "", false
}

// targetRelations reads, after pre-data, the kind of every user table
// ('r', 'p', …) and the partitions of every partitioned table.
func targetRelations(ctx context.Context, q queryer) (kinds map[string]byte, partitions map[string][]string, err error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, c.relkind::text, pn.nspname, pc.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class pc ON pc.oid = i.inhparent AND pc.relkind = 'p'
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`)
	if err != nil {
		return nil, nil, fmt.Errorf("list restored tables: %w", err)
	}
	defer rows.Close()
	kinds = map[string]byte{}
	partitions = map[string][]string{}
	for rows.Next() {
		var schema, name, kind string
		var ps, pn *string
		if err := rows.Scan(&schema, &name, &kind, &ps, &pn); err != nil {
			return nil, nil, fmt.Errorf("list restored tables: %w", err)
		}
		key := qualified(schema, name)
		if kind != "" {
			kinds[key] = kind[0]
		}
		if ps != nil && pn != nil {
			parent := qualified(*ps, *pn)
			partitions[parent] = append(partitions[parent], key)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list restored tables: %w", err)
	}
	return kinds, partitions, nil
}
