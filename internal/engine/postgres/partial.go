package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// A restore of chosen tables (--table) touches only those tables: it never
// drops or recreates the database, replays only the chosen tables' schema
// objects (their sequences, defaults, indexes, keys, triggers, comments
// and grants), creates shared objects they may need (schemas, types,
// functions, …) only where they are missing, and, with --clean, drops only
// the chosen tables. A foreign key of another table that references a
// replaced table is dropped before and added back after the load.

// inboundFK is a foreign key of a kept table that references a table the
// restore replaces.
type inboundFK struct {
	table string // quoted, qualified
	name  string
	def   string // pg_get_constraintdef
}

// tableTarget is what preparing the target for chosen tables found.
type tableTarget struct {
	existing map[string]byte // relations of the target after the drops: key -> relkind
	inbound  []inboundFK     // foreign keys dropped, to add back
	replaced []string        // chosen tables that were dropped (--clean)
}

// prepareTargetTables makes sure the target database exists and that the
// chosen tables may be created in it: a chosen table that exists is
// refused without clean and dropped (alone) with it.
func prepareTargetTables(ctx context.Context, target *dsn.DSN, sel []*tableInfo, clean bool, log *slog.Logger) (*tableTarget, error) {
	name := target.Database()
	if name == "" {
		return nil, fmt.Errorf("restore target %s names no database", target.String())
	}
	mc, err := maintenanceConn(ctx, target)
	if err != nil {
		return nil, err
	}
	var exists bool
	err = mc.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err == nil && !exists {
		if _, err = mc.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0"); err != nil {
			err = fmt.Errorf("create database %s: %w", name, err)
		}
	} else if err != nil {
		err = fmt.Errorf("look up database %s: %w", name, err)
	}
	mc.Close(context.Background())
	if err != nil {
		return nil, err
	}
	c, err := connect(ctx, target, false)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	tt := &tableTarget{}
	var oids []uint32
	for _, t := range sel {
		var oid *uint32
		if err := c.QueryRow(ctx, "SELECT to_regclass($1)::oid", t.Name).Scan(&oid); err != nil {
			return nil, fmt.Errorf("look up table %s in database %s: %w", t.Name, name, err)
		}
		if oid != nil {
			oids = append(oids, *oid)
			tt.replaced = append(tt.replaced, t.Name)
		}
	}
	if len(oids) > 0 && !clean {
		return nil, fmt.Errorf("database %s already has the chosen table(s) %s: %w", name, strings.Join(tt.replaced, ", "), engine.ErrTargetNotEmpty)
	}
	if len(oids) > 0 {
		if err := dropChosen(ctx, c, name, oids, tt, log); err != nil {
			return nil, err
		}
	}
	if tt.existing, err = relationKinds(ctx, c); err != nil {
		return nil, err
	}
	return tt, nil
}

// dropChosen drops the chosen tables that exist (oids), after the foreign
// keys of other tables that reference them, in one transaction. It refuses
// when another table's partitions or other objects (views, …) depend on
// them: replacing those is for a restore of the whole database.
func dropChosen(ctx context.Context, c *pgx.Conn, db string, oids []uint32, tt *tableTarget, log *slog.Logger) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("clean chosen tables: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after commit, a no-op
	// Names as the restore's sessions (search_path '') read them.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return fmt.Errorf("clean chosen tables: %w", err)
	}
	var kids []string
	rows, err := tx.Query(ctx, `SELECT i.inhrelid::regclass::text FROM pg_inherits i
WHERE i.inhparent = ANY($1) AND NOT i.inhrelid = ANY($1) ORDER BY 1`, oids)
	if err == nil {
		kids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return fmt.Errorf("clean chosen tables: list partitions: %w", err)
	}
	if len(kids) > 0 {
		return fmt.Errorf("cannot replace the chosen tables of database %s: %s would be dropped with them (choose them too, or restore the whole database): %w",
			db, strings.Join(kids, ", "), engine.ErrRefused)
	}
	rows, err = tx.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(r.relname), c.conname, pg_catalog.pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.confrelid = ANY($1) AND NOT c.conrelid = ANY($1) AND c.conparentid = 0
ORDER BY 1, 2`, oids)
	if err != nil {
		return fmt.Errorf("clean chosen tables: list foreign keys that reference them: %w", err)
	}
	for rows.Next() {
		var fk inboundFK
		if err := rows.Scan(&fk.table, &fk.name, &fk.def); err != nil {
			rows.Close()
			return fmt.Errorf("clean chosen tables: list foreign keys that reference them: %w", err)
		}
		tt.inbound = append(tt.inbound, fk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clean chosen tables: list foreign keys that reference them: %w", err)
	}
	for _, fk := range tt.inbound {
		log.Info("dropping a foreign key that references a replaced table; it is added back after the restore", "table", fk.table, "constraint", fk.name)
		if _, err := tx.Exec(ctx, "ALTER TABLE "+fk.table+" DROP CONSTRAINT "+quoteIdent(fk.name)); err != nil {
			return fmt.Errorf("clean chosen tables: drop foreign key %s of %s: %w", fk.name, fk.table, err)
		}
	}
	names := make([]string, len(tt.replaced))
	copy(names, tt.replaced)
	log.Info("dropping the chosen tables before restoring them (--clean)", "database", db, "tables", names)
	if _, err := tx.Exec(ctx, "DROP TABLE "+strings.Join(names, ", ")); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "2BP01" { // dependent_objects_still_exist
			return fmt.Errorf("cannot replace the chosen tables of database %s: %s (%s); drop those objects first or restore the whole database: %w",
				db, pgErr.Message, strings.ReplaceAll(pgErr.Detail, "\n", "; "), engine.ErrRefused)
		}
		return fmt.Errorf("clean chosen tables: drop %s: %w", strings.Join(names, ", "), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("clean chosen tables: %w", err)
	}
	return nil
}

// relationKinds lists the target's user relations (tables, partitioned
// tables, sequences, views, indexes, …) by key.
func relationKinds(ctx context.Context, q queryer) (map[string]byte, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`)
	if err != nil {
		return nil, fmt.Errorf("list the target's relations: %w", err)
	}
	defer rows.Close()
	out := map[string]byte{}
	for rows.Next() {
		var s, n, k string
		if err := rows.Scan(&s, &n, &k); err != nil {
			return nil, fmt.Errorf("list the target's relations: %w", err)
		}
		out[qualified(s, n)] = k[0]
	}
	return out, rows.Err()
}

// addBackInbound adds back the foreign keys dropped to replace the tables
// they reference: NOT VALID first, then validated; one that the restored
// rows do not satisfy stays NOT VALID, with a warning.
func addBackInbound(ctx context.Context, c *pgx.Conn, fks []inboundFK, log *slog.Logger) error {
	for _, fk := range fks {
		add := "ALTER TABLE " + fk.table + " ADD CONSTRAINT " + quoteIdent(fk.name) + " " + fk.def
		if err := execSQL(ctx, c, add+" NOT VALID"); err != nil {
			// PostgreSQL up to 17 refuses NOT VALID on a partitioned table.
			if err2 := execSQL(ctx, c, add); err2 != nil {
				return fmt.Errorf("add back foreign key %s of %s (%s): %w", fk.name, fk.table, fk.def, err)
			}
			continue
		}
		if err := execSQL(ctx, c, "ALTER TABLE "+fk.table+" VALIDATE CONSTRAINT "+quoteIdent(fk.name)); err != nil {
			log.Warn("a foreign key of a kept table does not hold for the restored rows: it is left NOT VALID",
				"table", fk.table, "constraint", fk.name, "err", err)
		}
	}
	return nil
}

// entryName splits an entry's title ("Name: N; Type: T; Schema: S; Owner:
// O") into N and S.
func entryName(title string) (name, schema string) {
	rest := strings.TrimPrefix(title, "Name: ")
	i := strings.Index(rest, "; Type: ")
	if i < 0 {
		return rest, ""
	}
	name, rest = rest[:i], rest[i:]
	if j := strings.Index(rest, "; Schema: "); j >= 0 {
		schema = rest[j+len("; Schema: "):]
		if k := strings.Index(schema, "; Owner: "); k >= 0 {
			schema = schema[:k]
		}
	}
	return name, schema
}

// sanitized is a name as pg_dump prints it in an entry's title.
func sanitized(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// scanQualifiedRaw reads schema.name and returns both unquoted.
func scanQualifiedRaw(s string) (schema, name, rest string, ok bool) {
	schema, rest, ok = scanIdent(s)
	if !ok || !strings.HasPrefix(rest, ".") {
		return "", "", "", false
	}
	name, rest, ok = scanIdent(rest[1:])
	return schema, name, rest, ok
}

// chosenSchema selects the schema entries of a restore of chosen tables.
type chosenSchema struct {
	existing map[string]byte // the target's relations before the schema replay
	created  map[string]bool // table keys this restore creates
	titles   map[string]bool // schema + "\x00" + "KIND name" of objects this restore creates
	seqs     map[string]bool // sequence keys this restore creates (their values are set)
	// attachLater are attachments of chosen partitions to a partitioned
	// table the target already had: run after the partitions' indexes, so
	// that ATTACH PARTITION adopts them.
	attachLater []dumpEntry
	laterParent map[string]bool // partitions attached later (their INDEX ATTACH entries are skipped)
	skippedFKs  []string
	skipped     []string // objects of the snapshot not created
}

// attachParts reads "ALTER TABLE ONLY parent ATTACH PARTITION child …".
func attachParts(body string) (parent, child string, ok bool) {
	parent, rest, ok := alterTableHead(stripComments(body))
	if !ok {
		return "", "", false
	}
	if rest, ok = expectWords(rest, "ATTACH", "PARTITION"); !ok {
		return "", "", false
	}
	child, _, ok = scanQualified(skipSpace(rest))
	return parent, child, ok
}

// newChosenSchema decides which tables the restore creates: the chosen
// ones and the partitioned tables above a chosen partition that the target
// lacks (without their other partitions).
func newChosenSchema(sel []*tableInfo, pre []dumpEntry, existing map[string]byte) *chosenSchema {
	cs := &chosenSchema{existing: existing, created: map[string]bool{}, titles: map[string]bool{}, seqs: map[string]bool{}, laterParent: map[string]bool{}}
	parent := map[string]string{}
	raw := map[string][2]string{}
	for _, t := range sel {
		raw[t.Name] = [2]string{t.Schema, t.Table}
	}
	for _, en := range pre {
		switch en.Type {
		case "TABLE ATTACH":
			if p, c, ok := attachParts(en.Body); ok {
				parent[c] = p
			}
		case "TABLE":
			if s, n, _, ok := scanQualifiedRaw(skipSpace(tableNameAfterCreate(stripComments(en.Body)))); ok {
				raw[qualified(s, n)] = [2]string{s, n}
			}
		}
	}
	for _, t := range sel {
		cs.created[t.Name] = true
		for p := parent[t.Name]; p != "" && !cs.created[p]; p = parent[p] {
			if _, ok := existing[p]; ok {
				cs.laterParent[t.Name] = true
				break
			}
			cs.created[p] = true
		}
	}
	for k := range cs.created {
		if r, ok := raw[k]; ok {
			cs.titles[sanitized(r[0])+"\x00TABLE "+sanitized(r[1])] = true
		}
	}
	return cs
}

// tableNameAfterCreate returns what follows "CREATE [UNLOGGED|FOREIGN]
// TABLE" in s, or "".
func tableNameAfterCreate(s string) string {
	for _, words := range [][]string{{"CREATE", "TABLE"}, {"CREATE", "UNLOGGED", "TABLE"}, {"CREATE", "FOREIGN", "TABLE"}} {
		if rest, ok := expectWords(s, words...); ok {
			return rest
		}
	}
	return ""
}

// ownsTitle reports whether the entry named name in schema belongs to a
// table this restore creates: "TABLE t", "t obj" (defaults, keys,
// triggers, rules, policies), "COLUMN t.c", "CONSTRAINT c ON t", … or to
// an object it creates ("SEQUENCE s", "INDEX i", "TYPE x").
func (cs *chosenSchema) ownsTitle(name, schema string, tableBound bool) bool {
	if cs.titles[schema+"\x00"+name] {
		return true
	}
	for k := range cs.titles {
		s, obj, _ := strings.Cut(k, "\x00")
		if s != schema || !strings.HasPrefix(obj, "TABLE ") {
			continue
		}
		tn := strings.TrimPrefix(obj, "TABLE ")
		switch {
		case tableBound && (name == tn || strings.HasPrefix(name, tn+" ")):
			return true
		case !tableBound && (strings.HasPrefix(name, "COLUMN "+tn+".") || strings.HasSuffix(name, " ON "+tn)):
			return true
		}
	}
	return false
}

// sharedDuplicate reports whether err says the object exists already.
func sharedDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "42710", "42723", "42P06", "42P07", "42P04", "42712", "42P05": // duplicate object, function, schema, table, database, alias, prepared
		return true
	}
	return false
}

// filterPre picks the pre-data entries of the created tables, in dump
// order. Shared objects (schemas, types, functions, …) come as "create if
// missing": sharedEntry reports them.
func (cs *chosenSchema) filterPre(entries []dumpEntry) (out []dumpEntry, shared map[int]bool) {
	shared = map[int]bool{}      // indexes in out
	owned := map[string]string{} // sequence key -> owning table key
	for _, en := range entries {
		if en.Type != "SEQUENCE OWNED BY" {
			continue
		}
		s := stripComments(en.Body)
		rest, ok := expectWords(s, "ALTER", "SEQUENCE")
		if !ok {
			continue
		}
		seq, rest, ok := scanQualified(skipSpace(rest))
		if !ok {
			continue
		}
		if rest, ok = expectWords(rest, "OWNED", "BY"); !ok {
			continue
		}
		if tbl, _, ok := scanQualified(skipSpace(rest)); ok {
			owned[seq] = tbl
		}
	}
	var bodies strings.Builder // the created tables' definitions and defaults
	for _, en := range entries {
		name, schema := entryName(en.Title)
		if (en.Type == "TABLE" && cs.titles[schema+"\x00TABLE "+name]) || (en.Type == "DEFAULT" && cs.ownsTitle(name, schema, true)) {
			bodies.WriteString(en.Body)
		}
	}
	for _, en := range entries {
		name, schema := entryName(en.Title)
		keep := false
		switch en.Type {
		case "TABLE":
			keep = cs.titles[schema+"\x00TABLE "+name]
		case "DEFAULT", "ROW SECURITY", "CHECK CONSTRAINT":
			keep = cs.ownsTitle(name, schema, true)
		case "TABLE ATTACH":
			if p, c, ok := attachParts(en.Body); ok && cs.created[c] {
				if cs.created[p] {
					keep = true
				} else if cs.laterParent[c] {
					cs.attachLater = append(cs.attachLater, en)
				}
			}
		case "SEQUENCE":
			s := stripComments(en.Body)
			if tbl, ok := parseAlterTable(s); ok { // an identity column's sequence
				keep = cs.created[tbl]
			} else if rest, ok := expectWords(s, "CREATE", "SEQUENCE"); ok {
				if seq, _, ok := scanQualified(skipSpace(rest)); ok {
					if tbl, ok := owned[seq]; ok {
						keep = cs.created[tbl]
					} else if _, there := cs.existing[seq]; !there {
						// A free-standing sequence a created table's
						// default uses, missing from the target.
						keep = strings.Contains(bodies.String(), seq+"'")
					}
				}
			}
			if keep {
				cs.titles[schema+"\x00SEQUENCE "+name] = true
				cs.seqs[qualified(schema, name)] = true
			}
		case "SEQUENCE OWNED BY":
			keep = cs.titles[schema+"\x00SEQUENCE "+name]
		case "COMMENT", "ACL", "SECURITY LABEL":
			keep = cs.ownsTitle(name, schema, false)
		case "VIEW", "MATERIALIZED VIEW", "MATERIALIZED VIEW DATA", "FOREIGN TABLE", "RULE", "POLICY", "TRIGGER",
			"PUBLICATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION", "EVENT TRIGGER",
			"DEFAULT ACL", "DATABASE", "DATABASE PROPERTIES", "ENCODING", "STDSTRINGS", "SEARCHPATH", "":
			// other tables' objects, or not table-bound
		default:
			// A shared object (schema, type, domain, function, extension,
			// …): created where missing, left as it is where present.
			keep = true
			shared[len(out)] = true
			cs.titles[schema+"\x00"+en.Type+" "+name] = true
		}
		if keep {
			out = append(out, en)
		} else if en.Type == "TABLE" || en.Type == "VIEW" || en.Type == "MATERIALIZED VIEW" || en.Type == "SEQUENCE" {
			cs.skipped = append(cs.skipped, en.Title)
		}
	}
	return out, shared
}

// filterPost picks the post-data entries of the created tables: indexes,
// keys, triggers, rules, policies, statistics, their comments and grants,
// index attachments between created tables and foreign keys whose
// referenced table is there.
func (cs *chosenSchema) filterPost(entries []dumpEntry) []dumpEntry {
	var out []dumpEntry
	// Indexes first: their names make COMMENT ON INDEX and INDEX ATTACH.
	for _, en := range entries {
		if en.Type != entryIndex {
			continue
		}
		if tbl, ok := parseIndexTable(stripComments(en.Body)); ok && cs.created[tbl] {
			name, schema := entryName(en.Title)
			cs.titles[schema+"\x00INDEX "+name] = true
		}
	}
	for _, en := range entries {
		name, schema := entryName(en.Title)
		s := stripComments(en.Body)
		keep := false
		switch en.Type {
		case entryIndex:
			keep = cs.titles[schema+"\x00INDEX "+name]
		case entryConstraint, "CHECK CONSTRAINT", "TRIGGER", "RULE", "POLICY", "ROW SECURITY":
			keep = cs.ownsTitle(name, schema, true)
		case entryFK:
			from, fk, to, ok := parseFK(s)
			if !ok || !cs.created[from] {
				break
			}
			_, there := cs.existing[to]
			keep = cs.created[to] || there
			if !keep {
				cs.skippedFKs = append(cs.skippedFKs, from+"."+fk+" (references "+to+", which is neither restored nor in the target)")
			}
		case entryIndexAttach:
			rest, ok := expectWords(s, "ALTER", "INDEX")
			if !ok {
				break
			}
			parentS, parentN, rest, ok1 := scanQualifiedRaw(skipSpace(rest))
			rest, ok2 := expectWords(rest, "ATTACH", "PARTITION")
			childS, childN, _, ok3 := scanQualifiedRaw(skipSpace(rest))
			keep = ok1 && ok2 && ok3 && cs.titles[sanitized(parentS)+"\x00INDEX "+sanitized(parentN)] &&
				cs.titles[sanitized(childS)+"\x00INDEX "+sanitized(childN)]
		case "STATISTICS":
			if i := strings.LastIndex(s, " FROM "); i >= 0 {
				if tbl, _, ok := scanQualified(skipSpace(s[i+len(" FROM "):])); ok {
					keep = cs.created[tbl]
				}
			}
			if keep {
				cs.titles[schema+"\x00STATISTICS "+name] = true
			}
		case "COMMENT", "ACL", "SECURITY LABEL":
			keep = cs.ownsTitle(name, schema, false)
		}
		if keep {
			out = append(out, en)
		}
	}
	return out
}
