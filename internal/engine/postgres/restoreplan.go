package postgres

import (
	"context"
	"fmt"
	"slices"
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
	// validateFKs adds foreign keys NOT VALID and validates them in
	// separate tasks.
	validateFKs bool
	// jobs: sessions; a table with more than 1/jobs of the load work is
	// loaded part by part on several sessions.
	jobs int
	// kinds: relkind of every table on the target ('r' plain table).
	kinds map[string]byte
	// colTypes: table key -> column -> type as format_type prints it,
	// from the snapshot.
	colTypes map[string]map[string]string
	// sortMem: maintenance_work_mem of the restore sessions in bytes (a
	// foreign key's validation sorts within it).
	sortMem int64
}

// dataLoad is one table's rows.
type dataLoad struct {
	table string // key: qualified name
	bytes int64  // COPY text
	rows  int64
	parts []int64 // bytes of each stream, in order
}

// Costs of the tasks in "COPY text bytes" for priorities, fitted on
// bench/run's dataset (PostgreSQL 15, 2 cores): COPY costs per byte and
// per row (a narrow table with many rows loads slower than its size
// says), an index build about a quarter of the load, a foreign key
// validation per row of both tables.
func loadCost(bytes, rows int64) float64  { return float64(bytes) + 43*float64(rows) }
func indexCost(bytes, rows int64) float64 { return 0.25*float64(bytes) + 40*float64(rows) }
func fkCost(from, to int64) float64       { return 30*float64(from) + 10*float64(to) }

// keyCost is the cost of building a B-tree index on the columns cols ("(a,
// b)") of a table: a pass over the table, and per row the sort's
// comparisons, which depend on the columns' types. Measured on the
// bench's 1 GB restore (PostgreSQL 15, C.UTF-8, one unit ≈ 15 ns there):
// 0.5–1.1 µs per row for an integer or timestamp key, 2.5–2.9 µs for a
// text key (the libc collation), against 0.8 µs that indexCost gives every
// index of those tables. Columns it cannot read, or whose types it does not
// know, fall back to indexCost.
func keyCost(bytes, rows int64, types map[string]string, cols string) float64 {
	names, ok := columnNames(cols)
	if !ok {
		return indexCost(bytes, rows)
	}
	perRow := 0.0
	for _, n := range names {
		typ, ok := types[n]
		if !ok {
			return indexCost(bytes, rows)
		}
		perRow += compareCost(typ)
	}
	return 0.02*float64(bytes) + perRow*float64(rows)
}

// compareCost is a sort's cost per row for one key column of type typ (as
// format_type prints it), in keyCost's units.
func compareCost(typ string) float64 {
	if i := strings.IndexByte(typ, '('); i >= 0 {
		typ = typ[:i] // character varying(200), numeric(12,2), timestamp(3) …
	}
	switch strings.TrimSpace(typ) {
	case "smallint", "integer", "bigint", "oid", "boolean", "date", "real", "double precision", "uuid",
		"timestamp with time zone", "timestamp without time zone", "timestamp", "time without time zone", "time":
		return 45
	case "numeric":
		return 70
	case "text", "character varying", "character", "citext":
		return 180
	default:
		return 60
	}
}

// planned is the graph with what each task stands for.
type planned struct {
	tasks []*task
	data  map[string]*task   // table key -> load task (all parts, one transaction)
	parts map[string][]*task // table key -> one load task per part (split tables)
	post  []*task            // parallel to planInput.post
	sql   map[*task]taskSQL  // what each post-data task runs
}

// taskSQL is a post-data statement and the session settings it needs.
type taskSQL struct {
	prefix string
	sql    string
}

// planRestore builds the task graph. run functions are left nil; the
// caller fills them in. Entries whose table cannot be read from their SQL
// wait for every load (and, for foreign keys, every key) and lock
// everything, so an unexpected form costs time, never correctness.
func planRestore(in planInput) *planned {
	p := &planned{data: map[string]*task{}, parts: map[string][]*task{}, post: make([]*task, len(in.post)), sql: map[*task]taskSQL{}}
	var totalCost float64
	for _, d := range in.data {
		totalCost += loadCost(d.bytes, d.rows)
	}
	bytes := map[string]int64{}
	rows := map[string]int64{}
	all := map[string]bool{}
	var loads []*task
	for _, d := range in.data {
		bytes[d.table] += d.bytes
		rows[d.table] += d.rows
		all[d.table] = true
		if cost := loadCost(d.bytes, d.rows); in.jobs > 1 && len(d.parts) > 1 && cost > totalCost/float64(in.jobs) {
			// One table holds more work than a session's share: loading
			// it on one session would make the restore wait for it, so
			// its parts load on several sessions, each in its own
			// transaction (no COPY FREEZE), other tables first while
			// there is a choice (the scheduler's groups).
			for i, b := range d.parts {
				var r int64
				if d.bytes > 0 {
					r = d.rows * b / d.bytes
				}
				t := &task{name: fmt.Sprintf("table %s part %d/%d", d.table, i+1, len(d.parts)), cost: loadCost(b, r), group: d.table}
				t.lock(d.table, lockRowExclusive)
				t.lock(lockEverything, lockAccessShare)
				p.parts[d.table] = append(p.parts[d.table], t)
				p.tasks = append(p.tasks, t)
				loads = append(loads, t)
			}
			continue
		}
		t := &task{name: "table " + d.table, cost: loadCost(d.bytes, d.rows), group: d.table}
		t.lock(d.table, lockAccessExclusive) // TRUNCATE
		t.lock(lockEverything, lockAccessShare)
		p.data[d.table] = t
		p.tasks = append(p.tasks, t)
		loads = append(loads, t)
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
	treeRows := func(keys []string) (n int64) {
		for _, k := range keys {
			n += rows[k]
		}
		return n
	}
	loadsOf := func(keys []string) (ts []*task) {
		for _, k := range keys {
			if t := p.data[k]; t != nil {
				ts = append(ts, t)
			}
			ts = append(ts, p.parts[k]...)
		}
		return ts
	}
	lockAll := func(t *task) {
		for k := range all {
			t.lock(k, lockAccessExclusive)
		}
		t.lock(lockEverything, lockAccessExclusive)
	}

	keysOf := map[string][]*task{} // table key -> index and key tasks
	type builtIndex struct {
		cols string // "(a, b)"
		t    *task  // the task that builds it
	}
	indexesOf := map[string][]builtIndex{} // table key -> its plain B-tree indexes
	// The unique keys and unique indexes of each table that a foreign key
	// can reference, by their columns; opaqueKeys marks a table with a key
	// or unique index whose columns could not be read.
	type uniqueKey struct {
		cols  string // sameCols form
		tasks []*task
	}
	uniqueOf := map[string][]uniqueKey{}
	opaqueKeys := map[string]bool{}
	var keyTasks, unknownKeys, attaches []*task
	type fk struct {
		t         *task
		idx       int
		stmt      string
		fromTable string
		name      string
		cols      string // referencing columns, "(a, b)"
		refCols   string // referenced columns, "(a, b)"
		toTable   string
		from      []string
		to        []string
		unknown   bool
	}
	partition := map[string]bool{}
	for _, kids := range in.partitions {
		for _, k := range kids {
			partition[k] = true
		}
	}
	var fks []fk
	for i, en := range in.post {
		stmt := entrySQL(en.Body)
		t := &task{name: fmt.Sprintf("schema entry %q", en.Title)}
		p.post[i] = t
		p.sql[t] = taskSQL{en.Prefix, stripComments(en.Body)}
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
			// The key's columns: a plain key constraint's, or a plain
			// B-tree index's.
			kc, simple := parseSimpleKey(stmt)
			cols, colsOK := parseIndexCols(stmt)
			if simple {
				cols, colsOK = kc.cols, true
			}
			t.cost = indexCost(treeBytes(keys), treeRows(keys))
			if colsOK && len(keys) == 1 {
				t.cost = keyCost(treeBytes(keys), treeRows(keys), in.colTypes[table], cols)
			}
			mode := lockAccessExclusive // ALTER TABLE ADD PRIMARY KEY/UNIQUE
			if en.Type == entryIndex {
				mode = lockShare
			}
			if simple && len(keys) == 1 && !partition[table] && in.kinds[table] == 'r' {
				// Build the key's index with CREATE UNIQUE INDEX (SHARE
				// lock: beside the table's other index builds), then
				// make it the constraint with ADD … USING INDEX (a catalog
				// change under ACCESS EXCLUSIVE). Same catalog result.
				t.name += " (index)"
				t.lock(table, lockShare)
				t.lock(lockEverything, lockAccessShare)
				p.sql[t] = taskSQL{en.Prefix, "CREATE UNIQUE INDEX " + kc.name + " ON " + table + " USING btree " + kc.cols + ";\n"}
				c := &task{name: fmt.Sprintf("schema entry %q", en.Title), deps: []*task{t}}
				c.lock(table, lockAccessExclusive)
				c.lock(lockEverything, lockAccessShare)
				p.sql[c] = taskSQL{en.Prefix, "ALTER TABLE ONLY " + table + " ADD CONSTRAINT " + kc.name + " " + kc.kind + " USING INDEX " + kc.name + ";\n"}
				p.tasks = append(p.tasks, c)
				indexesOf[table] = append(indexesOf[table], builtIndex{kc.cols, t})
				keysOf[table] = append(keysOf[table], t, c)
				uniqueOf[table] = append(uniqueOf[table], uniqueKey{sameCols(kc.cols), []*task{t, c}})
				keyTasks = append(keyTasks, t, c)
				continue
			}
			for _, k := range keys {
				t.lock(k, mode)
			}
			t.lock(lockEverything, lockAccessShare)
			if colsOK && en.Type == entryIndex && len(keys) == 1 {
				indexesOf[table] = append(indexesOf[table], builtIndex{cols, t})
			}
			switch {
			case en.Type == entryConstraint:
				// A key or exclusion constraint of another form.
				opaqueKeys[table] = true
			case isUniqueIndex(stmt) && colsOK && len(keys) == 1:
				uniqueOf[table] = append(uniqueOf[table], uniqueKey{sameCols(cols), []*task{t}})
			case isUniqueIndex(stmt):
				opaqueKeys[table] = true
			}
			keysOf[table] = append(keysOf[table], t)
			keyTasks = append(keyTasks, t)
		case entryIndexAttach:
			// Cheap; after every index and key, one at a time.
			t.lock(lockAttach, lockAccessExclusive)
			t.lock(lockEverything, lockAccessShare)
			attaches = append(attaches, t)
		case entryFK:
			from, name, cols, to, refCols, ok := parseFKCols(stmt)
			if !ok {
				fks = append(fks, fk{t: t, unknown: true})
				continue
			}
			fks = append(fks, fk{t: t, idx: i, stmt: stmt, fromTable: from, name: name, cols: cols, refCols: refCols, toTable: to, from: tree(from), to: tree(to)})
		default:
			// Not expected here: run it after everything else scheduled.
			fks = append(fks, fk{t: t, unknown: true})
		}
	}
	for _, a := range attaches {
		a.deps = keyTasks
	}
	// referencedKey returns the tasks that build the one unique key or
	// unique index of a plain table whose columns are refCols, or nil when
	// there is none, more than one (PostgreSQL would tie the foreign key to
	// whichever exists first), or a key whose columns are unknown.
	referencedKey := func(table, refCols string) []*task {
		if refCols == "" || opaqueKeys[table] || partition[table] || in.kinds[table] != 'r' {
			return nil
		}
		want := sameCols(refCols)
		var found []*task
		n := 0
		for _, k := range uniqueOf[table] {
			if k.cols == want {
				found = k.tasks
				n++
			}
		}
		if n != 1 {
			return nil
		}
		return found
	}
	for _, f := range fks {
		t := f.t
		if f.unknown {
			t.deps = append(append(append([]*task{}, loads...), keyTasks...), attaches...)
			lockAll(t)
			continue
		}
		t.deps = append(loadsOf(f.from), loadsOf(f.to)...)
		if key := referencedKey(f.toTable, f.refCols); key != nil && len(f.to) == 1 {
			// Only the key it references: the table's other index builds
			// need not finish first (they do not run beside it: adding
			// the key takes SHARE ROW EXCLUSIVE on both tables).
			t.deps = append(t.deps, key...)
		} else {
			for _, k := range f.to {
				t.deps = append(t.deps, keysOf[k]...)
			}
		}
		t.deps = append(t.deps, unknownKeys...)
		if len(f.from) > 1 || len(f.to) > 1 || partition[f.from[0]] || partition[f.to[0]] {
			// A partitioned table's key is valid once its partitions'
			// indexes are attached; and attachments lock partitions in
			// ways not modelled here.
			t.deps = append(t.deps, attaches...)
		}
		for _, k := range append(f.from, f.to...) {
			t.lock(k, lockShareRowExclusive)
		}
		t.lock(lockEverything, lockAccessShare)
		t.cost = fkCost(treeRows(f.from), treeRows(f.to))
		if !in.validateFKs || len(f.from) > 1 || partition[f.from[0]] || strings.Contains(f.stmt, "NOT VALID") {
			continue
		}
		// Add the key NOT VALID (a catalog change), then validate it in
		// its own task: VALIDATE CONSTRAINT takes only SHARE UPDATE
		// EXCLUSIVE on the table and ROW SHARE on the referenced one, so
		// it runs beside index builds on the referenced table and beside
		// other foreign keys to it. Not on partitioned tables (PostgreSQL
		// up to 17 refuses NOT VALID foreign keys there).
		en := in.post[f.idx]
		v := &task{name: t.name + " (validate)", cost: t.cost, deps: []*task{t}}
		for _, k := range f.from {
			v.lock(k, lockShareUpdateExclusive)
		}
		for _, k := range f.to {
			v.lock(k, lockRowShare)
		}
		v.lock(lockEverything, lockAccessShare)
		t.cost = 0
		p.sql[t] = taskSQL{en.Prefix, fkRE.ReplaceAllString(stripComments(en.Body), "$1 NOT VALID;")}
		validate := "ALTER TABLE ONLY " + f.fromTable + " VALIDATE CONSTRAINT " + quoteName(f.name) + ";\n"
		noHash := "BEGIN;\nSET LOCAL enable_hashjoin = off;\n" + validate + "COMMIT;\n"
		if sortsInMemory(treeRows(f.from), in.colTypes[f.fromTable], f.cols, in.sortMem) {
			// Without an index on the referencing columns the planner
			// hashes the referenced keys and probes the hash table once
			// per referencing row, in random order. Sorting the
			// referencing keys and merging them with the referenced
			// key's index costs less, as long as the sort stays in
			// memory (PostgreSQL 15, VALIDATE CONSTRAINT of 5.9 million
			// bigints against 142,000 keys: 3.2-3.6 s hashed, 1.9-2.2 s
			// sorted and merged).
			validate = noHash
		}
		for _, ix := range indexesOf[f.from[0]] {
			if !leadingCols(ix.cols, f.cols) {
				continue
			}
			// The validation is an anti-join of the two tables. Left to
			// itself the planner hashes the referenced keys and scans the
			// whole referencing table; with an index on the referencing
			// columns a merge join of two index-only scans (the loaded
			// pages are all-visible) does the same in half the time or
			// less (PostgreSQL 15, 5.9 million rows against 1.8 million:
			// 2.2 s against 1.0 s). So wait for that index and turn hash
			// joins off for this statement.
			v.deps = append(v.deps, ix.t)
			validate = noHash
			v.cost /= 2
			break
		}
		p.sql[v] = taskSQL{en.Prefix, validate}
		p.tasks = append(p.tasks, v)
	}
	return p
}

// sortsInMemory reports whether sorting rows keys of the columns cols
// ("(a, b)" as pg_dump writes them) fits in mem bytes: integer columns
// only (their width is known), estimated as PostgreSQL 15 sorts them. A
// sort's array of 24-byte slots doubles as it grows; a single by-value
// column sorts in the slots alone, several take a tuple each besides.
// Measured: 5,862,068 bigints sort in 196,609 kB.
func sortsInMemory(rows int64, types map[string]string, cols string, mem int64) bool {
	names, ok := columnNames(cols)
	if !ok || rows <= 0 || mem <= 0 {
		return false
	}
	width := int64(0)
	for _, n := range names {
		switch types[n] {
		case "smallint", "integer", "bigint":
			width += 8
		default:
			return false
		}
	}
	slots := int64(1024)
	for slots < rows {
		slots *= 2
	}
	need := 24 * slots
	if len(names) > 1 {
		need += rows * (32 + width) // minimal tuple and its allocation header
	}
	return need <= mem
}

// columnNames splits a column list "(a, \"B c\")" into unquoted names.
func columnNames(cols string) ([]string, bool) {
	s := strings.TrimSpace(cols)
	if !strings.HasPrefix(s, "(") {
		return nil, false
	}
	s = skipSpace(s[1:])
	var out []string
	for {
		id, rest, ok := scanIdent(s)
		if !ok {
			return nil, false
		}
		out = append(out, id)
		rest = skipSpace(rest)
		switch {
		case strings.HasPrefix(rest, ","):
			s = skipSpace(rest[1:])
		case strings.TrimSpace(rest) == ")":
			return out, true
		default:
			return nil, false
		}
	}
}

// Pseudo table keys (no real table key starts with a NUL byte).
const (
	lockEverything = "\x00all"    // held exclusively by entries whose table is unknown
	lockAttach     = "\x00attach" // index attachments one at a time
)

// stripComments drops the comment block that starts an entry, so that
// the server's log shows the statement.
func stripComments(body string) string {
	for {
		l, rest, ok := strings.Cut(body, "\n")
		if !ok || (strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "--")) {
			return body
		}
		body = rest
	}
}

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
	table, _, ok := indexHead(s)
	return table, ok
}

// indexHead reads "CREATE [UNIQUE] INDEX name ON [ONLY] schema.table": the
// table key and what follows it.
func indexHead(s string) (table, rest string, ok bool) {
	s, ok = expectWords(s, "CREATE")
	if !ok {
		return "", "", false
	}
	if r, ok := expectWords(s, "UNIQUE"); ok {
		s = r
	}
	if s, ok = expectWords(s, "INDEX"); !ok {
		return "", "", false
	}
	if _, s, ok = scanIdent(skipSpace(s)); !ok {
		return "", "", false
	}
	if s, ok = expectWords(s, "ON"); !ok {
		return "", "", false
	}
	if r, ok := expectWords(s, "ONLY"); ok {
		s = r
	}
	return scanQualified(skipSpace(s))
}

// parseAlterTable reads the table of "ALTER TABLE [ONLY] schema.table …".
func parseAlterTable(s string) (string, bool) {
	table, _, ok := alterTableHead(s)
	return table, ok
}

// alterTableHead reads "ALTER TABLE [ONLY] schema.table": the table key and
// what follows it.
func alterTableHead(s string) (table, rest string, ok bool) {
	s, ok = expectWords(s, "ALTER", "TABLE")
	if !ok {
		return "", "", false
	}
	if r, ok := expectWords(s, "ONLY"); ok {
		s = r
	}
	return scanQualified(skipSpace(s))
}

// parseFK reads "ALTER TABLE [ONLY] schema.table ADD CONSTRAINT name
// FOREIGN KEY (cols) REFERENCES schema.table(cols) …": the table key, the
// constraint name (unquoted) and the referenced table key.
func parseFK(s string) (from, name, to string, ok bool) {
	from, name, _, to, _, ok = parseFKCols(s)
	return from, name, to, ok
}

// parseFKCols is parseFK that also returns the referencing and the
// referenced columns as pg_dump wrote them, parentheses included (refCols
// is empty when the statement does not name them).
func parseFKCols(s string) (from, name, cols, to, refCols string, ok bool) {
	if from, s, ok = alterTableHead(s); !ok {
		return "", "", "", "", "", false
	}
	if s, ok = expectWords(s, "ADD", "CONSTRAINT"); !ok {
		return "", "", "", "", "", false
	}
	if name, s, ok = scanIdent(skipSpace(s)); !ok {
		return "", "", "", "", "", false
	}
	if s, ok = expectWords(s, "FOREIGN", "KEY"); !ok {
		return "", "", "", "", "", false
	}
	s = skipSpace(s)
	rest, ok := skipParens(s)
	if !ok {
		return "", "", "", "", "", false
	}
	cols, s = s[:len(s)-len(rest)], rest
	if s, ok = expectWords(s, "REFERENCES"); !ok {
		return "", "", "", "", "", false
	}
	if to, s, ok = scanQualified(skipSpace(s)); !ok {
		return "", "", "", "", "", false
	}
	// The referenced columns, "(a, b)"; pg_dump always names them.
	s = skipSpace(s)
	if rest, ok := skipParens(s); ok {
		refCols = s[:len(s)-len(rest)]
	}
	return from, name, cols, to, refCols, true
}

// isUniqueIndex reports whether s is "CREATE UNIQUE INDEX …".
func isUniqueIndex(s string) bool {
	_, ok := expectWords(s, "CREATE", "UNIQUE", "INDEX")
	return ok
}

// sameCols puts a column list "(b, a)" into a form in which two lists of
// the same columns in any order are equal (a foreign key's referenced
// columns match a unique key's as a set). A list with quoted names is kept
// as it is: equal only when written the same.
func sameCols(cols string) string {
	names, ok := columnNames(cols)
	if !ok || strings.Contains(cols, `"`) {
		return cols
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// parseIndexCols reads the column list of a plain B-tree index, "CREATE
// [UNIQUE] INDEX name ON [ONLY] schema.table USING btree (cols)
// [INCLUDE (…)];", parentheses included. Partial indexes and other access
// methods are refused.
func parseIndexCols(s string) (string, bool) {
	_, s, ok := indexHead(s)
	if !ok {
		return "", false
	}
	if s, ok = expectWords(s, "USING", "btree"); !ok {
		return "", false
	}
	s = skipSpace(s)
	rest, ok := skipParens(s)
	if !ok {
		return "", false
	}
	cols := s[:len(s)-len(rest)]
	if r, ok := expectWords(rest, "INCLUDE"); ok {
		if rest, ok = skipParens(skipSpace(r)); !ok {
			return "", false
		}
	}
	if strings.TrimSpace(rest) != ";" {
		return "", false
	}
	return cols, true
}

// leadingCols reports whether the column list fk ("(a, b)") is the start of
// the index column list idx, so that the index returns the referencing
// rows in key order. Plain names only; expressions never match.
func leadingCols(idx, fk string) bool {
	split := func(s string) []string {
		s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "("), ")")
		return strings.Split(s, ", ")
	}
	ic, fc := split(idx), split(fk)
	if len(fc) > len(ic) {
		return false
	}
	for i, c := range fc {
		if c == "" || ic[i] != c || strings.ContainsAny(c, "() ") {
			return false
		}
	}
	return true
}

// simpleKey is a primary key or unique constraint of the plain form
// "ALTER TABLE ONLY t ADD CONSTRAINT name PRIMARY KEY|UNIQUE (cols);".
type simpleKey struct {
	name string // as written by pg_dump (quoted when needed)
	kind string // "PRIMARY KEY" or "UNIQUE"
	cols string // "(a, b)" as written
}

// parseSimpleKey recognises a key without options (INCLUDE, WITH,
// DEFERRABLE, NULLS NOT DISTINCT, tablespace, …).
func parseSimpleKey(s string) (simpleKey, bool) {
	var k simpleKey
	s, ok := expectWords(s, "ALTER", "TABLE", "ONLY")
	if !ok {
		return k, false
	}
	if _, s, ok = scanQualified(skipSpace(s)); !ok {
		return k, false
	}
	if s, ok = expectWords(s, "ADD", "CONSTRAINT"); !ok {
		return k, false
	}
	s = skipSpace(s)
	_, rest, ok := scanIdent(s)
	if !ok {
		return k, false
	}
	k.name, s = s[:len(s)-len(rest)], rest
	if r, ok := expectWords(s, "PRIMARY", "KEY"); ok {
		k.kind, s = "PRIMARY KEY", r
	} else if r, ok := expectWords(s, "UNIQUE"); ok {
		k.kind, s = "UNIQUE", r
	} else {
		return k, false
	}
	s = skipSpace(s)
	rest, ok = skipParens(s)
	if !ok {
		return k, false
	}
	k.cols = s[:len(s)-len(rest)]
	if strings.TrimSpace(rest) != ";" {
		return k, false
	}
	return k, true
}

// quoteName always double-quotes an identifier.
func quoteName(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

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

// relations are the target's user tables after pre-data.
type relations struct {
	kinds      map[string]byte               // table key -> relkind ('r', 'p', 'f')
	partitions map[string][]string           // partitioned table key -> its partitions
	columns    map[string]map[string]colType // table key -> column -> type
}

// targetRelations reads, after pre-data, the kind of every user table
// ('r', 'p', …) and the partitions of every partitioned table.
func targetRelations(ctx context.Context, q queryer) (relations, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, c.relkind::text, pn.nspname, pc.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class pc ON pc.oid = i.inhparent AND pc.relkind = 'p'
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`)
	if err != nil {
		return relations{}, fmt.Errorf("list restored tables: %w", err)
	}
	defer rows.Close()
	kinds := map[string]byte{}
	partitions := map[string][]string{}
	for rows.Next() {
		var schema, name, kind string
		var ps, pn *string
		if err := rows.Scan(&schema, &name, &kind, &ps, &pn); err != nil {
			return relations{}, fmt.Errorf("list restored tables: %w", err)
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
		return relations{}, fmt.Errorf("list restored tables: %w", err)
	}
	return relations{kinds: kinds, partitions: partitions}, nil
}
