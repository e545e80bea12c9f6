package keeprows

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// Session runs statements on one server session.
type Session interface {
	// Exec runs a statement and returns the rows it affected.
	Exec(ctx context.Context, query string) (int64, error)
	// Row returns the first row of a query as text (NULL as "NULL"), and
	// false when there is none.
	Row(ctx context.Context, query string) ([]string, bool, error)
}

// Dialect is what an engine supplies: how to name tables and temporary
// tables, and the sessions that compute (Closure) and apply (Apply) the kept
// rows. On MySQL and SQLite both are the same session; on PostgreSQL, where
// one session sees one database, they differ and Stage copies rows over.
type Dialect interface {
	Quote(id string) string
	// Src names a table of the current target in the closure session,
	// qualified so that Src(t)+"."+Quote(col) names a column.
	Src(table string) string
	// Dst names a table of the new copy in the apply session.
	Dst(table string) string
	// CreateTempAs creates temporary table name from query's rows.
	CreateTempAs(name, query string) string
	// DropTemp drops temporary table name.
	DropTemp(name string) string
	// CreateKeep returns the statements that create temporary table name
	// (empty) from query's columns, with an index on each column list of
	// indexes. They must not end the transaction (MySQL commits on CREATE
	// INDEX: it declares the indexes in the CREATE).
	CreateKeep(name, query string, indexes [][]string) []string
	Closure() Session
	Apply() Session
	// Stage makes the rows of closure-session temporary table keep
	// available in the apply session and returns the table's name there.
	Stage(ctx context.Context, keep string, dst *Table, cols []string) (string, error)
	// Overwrite returns the statement that replaces the values of the rows
	// of dst whose key equals a staged row's with the staged row's cols.
	Overwrite(dst, stage string, key, cols []string) string
	// Insert returns the statement that inserts stage's rows into dst.
	Insert(dst, stage string, cols []string) string
}

type plan struct {
	t     *Table // in the current target
	dst   *Table // in the new copy (nil when counting)
	cols  []string
	keep  string // closure-session temporary table
	stage string // apply-session temporary table
	seeds []string
	rep   engine.KeptTable
}

// Result is what Count and Keep report.
type Result = engine.KeepReport

func ruleName(r engine.KeepRule) string {
	var parts []string
	if r.Table != "" {
		parts = append(parts, "table: "+r.Table)
	}
	if r.Tables != "" {
		parts = append(parts, "tables: "+r.Tables)
	}
	if r.KeyAtLeast != 0 {
		parts = append(parts, "key_at_least: "+strconv.FormatInt(r.KeyAtLeast, 10))
	}
	if r.Where != "" {
		parts = append(parts, "where: "+strconv.Quote(r.Where))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// resolve turns rules into seed conditions per table, validating each on
// the closure session.
func resolve(ctx context.Context, d Dialect, cat *Catalog, rules []engine.KeepRule) (map[string][]string, []string, error) {
	seeds := map[string][]string{}
	var unkeyed []string
	for _, r := range rules {
		var tables []*Table
		switch {
		case r.Table != "" && r.Tables != "":
			return nil, nil, fmt.Errorf("%w: rule %s: give table or tables, not both", engine.ErrKeepRule, ruleName(r))
		case r.Table != "":
			t := cat.Lookup(r.Table)
			if t == nil {
				return nil, nil, fmt.Errorf("%w: rule %s: the target has no table %s", engine.ErrKeepRule, ruleName(r), r.Table)
			}
			tables = []*Table{t}
		case r.Tables != "":
			if _, err := path.Match(r.Tables, ""); err != nil {
				return nil, nil, fmt.Errorf("%w: rule %s: bad glob: %v", engine.ErrKeepRule, ruleName(r), err)
			}
			tables = cat.Match(r.Tables)
		default:
			return nil, nil, fmt.Errorf("%w: rule %s: names no table (table or tables)", engine.ErrKeepRule, ruleName(r))
		}
		if r.KeyAtLeast == 0 && strings.TrimSpace(r.Where) == "" {
			return nil, nil, fmt.Errorf("%w: rule %s: gives neither where nor key_at_least (where: \"1=1\" keeps every row)", engine.ErrKeepRule, ruleName(r))
		}
		for _, t := range tables {
			var conds []string
			if r.KeyAtLeast != 0 {
				k := t.IntKey()
				if k == "" {
					if !contains(unkeyed, t.Name) {
						unkeyed = append(unkeyed, t.Name)
					}
					continue
				}
				conds = append(conds, d.Src(t.Name)+"."+d.Quote(k)+" >= "+strconv.FormatInt(r.KeyAtLeast, 10))
			}
			if strings.TrimSpace(r.Where) != "" {
				conds = append(conds, "("+r.Where+")")
			}
			cond := strings.Join(conds, " AND ")
			if _, _, err := d.Closure().Row(ctx, "SELECT COUNT(*) FROM "+d.Src(t.Name)+" WHERE "+cond); err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				return nil, nil, fmt.Errorf("%w: rule %s on table %s: %v", engine.ErrKeepRule, ruleName(r), t.Name, err)
			}
			seeds[t.Name] = append(seeds[t.Name], cond)
		}
	}
	return seeds, unkeyed, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// eq joins equalities a.x = b.y over paired column lists.
func eq(d Dialect, a string, acols []string, b string, bcols []string) string {
	parts := make([]string, len(acols))
	for i := range acols {
		parts[i] = a + "." + d.Quote(acols[i]) + " = " + b + "." + d.Quote(bcols[i])
	}
	return strings.Join(parts, " AND ")
}

// closure fills a temporary table per kept table in the closure session.
func closure(ctx context.Context, d Dialect, cat, dst *Catalog, rules []engine.KeepRule, log *slog.Logger) ([]*plan, [][]*plan, []bool, []string, error) {
	seeds, unkeyed, err := resolve(ctx, d, cat, rules)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var names []string
	for n := range seeds {
		names = append(names, n)
	}
	in := descendants(cat, names)
	var tables []*Table
	for _, t := range cat.Tables {
		if in[t.Name] {
			tables = append(tables, t)
		}
	}
	sccs, cyclic := order(tables)
	plans := map[string]*plan{}
	var all []*plan
	var groups [][]*plan
	cs := d.Closure()
	for gi, scc := range sccs {
		var group []*plan
		for _, t := range scc {
			p := &plan{t: t, seeds: seeds[t.Name], keep: fmt.Sprintf("snapdata_keep_%d", len(all))}
			p.rep.Table = t.Name
			if dst != nil {
				p.dst = dst.Lookup(t.Name)
				if p.dst == nil {
					return nil, nil, nil, nil, fmt.Errorf("keep rows: table %s has kept rows but the new copy has no such table", t.Name)
				}
			}
			p.cols = insertable(t, p.dst)
			if len(p.cols) == 0 {
				return nil, nil, nil, nil, fmt.Errorf("keep rows: table %s: no column to copy", t.Name)
			}
			if cyclic[gi] && len(t.PK) == 0 {
				return nil, nil, nil, nil, fmt.Errorf("keep rows: table %s references itself or is in a foreign-key cycle but has no primary key", t.Name)
			}
			plans[t.Name] = p
			all = append(all, p)
			group = append(group, p)
			src := d.Src(t.Name)
			cols := joinQuoted(d.Quote, src+".", p.cols)
			// Children look up their parents' kept rows by the columns
			// they reference.
			var indexed [][]string
			for _, c := range tables {
				for _, fk := range c.FKs {
					if fk.Parent != t.Name || !hasAll(p.cols, fk.ParentCols) || slices.ContainsFunc(indexed, func(x []string) bool { return slices.Equal(x, fk.ParentCols) }) {
						continue
					}
					indexed = append(indexed, fk.ParentCols)
				}
			}
			for _, q := range d.CreateKeep(p.keep, "SELECT "+cols+" FROM "+src+" WHERE 1=0", indexed) {
				if _, err := cs.Exec(ctx, q); err != nil {
					return nil, nil, nil, nil, fmt.Errorf("keep rows: stage table %s: %w", t.Name, err)
				}
			}
			list := joinQuoted(d.Quote, "", p.cols)
			seed := ""
			if len(p.seeds) > 0 {
				seed = "(" + strings.Join(p.seeds, ") OR (") + ")"
				n, err := cs.Exec(ctx, "INSERT INTO "+p.keep+" ("+list+") SELECT "+cols+" FROM "+src+" WHERE "+seed)
				if err != nil {
					return nil, nil, nil, nil, fmt.Errorf("keep rows: select kept rows of %s: %w", t.Name, err)
				}
				p.rep.Matched = n
			}
			var deps []string
			for _, fk := range t.FKs {
				pp, ok := plans[fk.Parent]
				if !ok || pp.t == t || !hasAll(pp.cols, fk.ParentCols) || !hasAll(p.cols, fk.Cols) {
					continue
				}
				if inGroup(group, pp) || contains(namesOf(scc), fk.Parent) {
					continue
				}
				deps = append(deps, "EXISTS (SELECT 1 FROM "+pp.keep+" WHERE "+eq(d, pp.keep, fk.ParentCols, src, fk.Cols)+")")
			}
			if len(deps) > 0 {
				cond := "(" + strings.Join(deps, " OR ") + ")"
				if seed != "" {
					cond = "(" + seed + ") IS NOT TRUE AND " + cond
				}
				n, err := cs.Exec(ctx, "INSERT INTO "+p.keep+" ("+list+") SELECT "+cols+" FROM "+src+" WHERE "+cond)
				if err != nil {
					return nil, nil, nil, nil, fmt.Errorf("keep rows: select rows depending on kept rows of %s: %w", t.Name, err)
				}
				p.rep.Dependents = n
			}
		}
		if cyclic[gi] {
			if err := closeCycle(ctx, d, group); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		groups = append(groups, group)
	}
	for _, p := range all {
		log.Debug("keep rows: selected", "table", p.t.Name, "matched", p.rep.Matched, "dependents", p.rep.Dependents)
	}
	return all, groups, cyclic, unkeyed, nil
}

func namesOf(ts []*Table) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func inGroup(g []*plan, p *plan) bool {
	for _, x := range g {
		if x == p {
			return true
		}
	}
	return false
}

// closeCycle adds, until nothing changes, the rows of a foreign-key cycle
// that reference kept rows of the cycle. Each statement reads snapshots
// of the keys (MySQL cannot read a temporary table twice in a statement).
func closeCycle(ctx context.Context, d Dialect, group []*plan) error {
	cs := d.Closure()
	byName := map[string]*plan{}
	for _, p := range group {
		byName[p.t.Name] = p
	}
	for {
		var added int64
		for _, p := range group {
			src := d.Src(p.t.Name)
			for _, fk := range p.t.FKs {
				pp, ok := byName[fk.Parent]
				if !ok || !hasAll(pp.cols, fk.ParentCols) || !hasAll(p.cols, fk.Cols) || !hasAll(p.cols, p.t.PK) {
					continue
				}
				if _, err := cs.Exec(ctx, d.CreateTempAs("snapdata_keep_h", "SELECT DISTINCT "+joinQuoted(d.Quote, "", fk.ParentCols)+" FROM "+pp.keep)); err != nil {
					return fmt.Errorf("keep rows: cycle of %s: %w", p.t.Name, err)
				}
				if _, err := cs.Exec(ctx, d.CreateTempAs("snapdata_keep_x", "SELECT "+joinQuoted(d.Quote, "", p.t.PK)+" FROM "+p.keep)); err != nil {
					return fmt.Errorf("keep rows: cycle of %s: %w", p.t.Name, err)
				}
				q := "INSERT INTO " + p.keep + " (" + joinQuoted(d.Quote, "", p.cols) + ") SELECT " + joinQuoted(d.Quote, src+".", p.cols) +
					" FROM " + src + " WHERE EXISTS (SELECT 1 FROM snapdata_keep_h WHERE " + eq(d, "snapdata_keep_h", fk.ParentCols, src, fk.Cols) +
					") AND NOT EXISTS (SELECT 1 FROM snapdata_keep_x WHERE " + eq(d, "snapdata_keep_x", p.t.PK, src, p.t.PK) + ")"
				n, err := cs.Exec(ctx, q)
				if err != nil {
					return fmt.Errorf("keep rows: select rows depending on kept rows of %s: %w", p.t.Name, err)
				}
				for _, tmp := range []string{"snapdata_keep_h", "snapdata_keep_x"} {
					if _, err := cs.Exec(ctx, d.DropTemp(tmp)); err != nil {
						return fmt.Errorf("keep rows: drop %s: %w", tmp, err)
					}
				}
				p.rep.Dependents += n
				added += n
			}
		}
		if added == 0 {
			return nil
		}
	}
}

// Count computes the kept rows per table without writing the target (only
// temporary tables of the session).
func Count(ctx context.Context, d Dialect, cat *Catalog, rules []engine.KeepRule, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plans, _, _, unkeyed, err := closure(ctx, d, cat, nil, rules, log)
	if err != nil {
		return Result{}, err
	}
	res := Result{Unkeyed: unkeyed}
	res.Tables = []engine.KeptTable{}
	for _, p := range plans {
		res.Tables = append(res.Tables, p.rep)
	}
	return res, nil
}

// Keep computes the kept rows of the current target (catalog cat) and
// inserts them into the new copy (catalog dst) in foreign-key order. The
// caller runs it inside one transaction of the apply session.
func Keep(ctx context.Context, d Dialect, cat, dst *Catalog, rules []engine.KeepRule, opts engine.KeepOptions) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	onConflict, orphans := opts.OnConflict, opts.Orphans
	if onConflict == "" {
		onConflict = "fail"
	}
	if orphans == "" {
		orphans = "drop"
	}
	switch onConflict {
	case "fail", "skip", "overwrite":
	default:
		return Result{}, fmt.Errorf("keep rows: on_conflict %q: expected fail, skip or overwrite", onConflict)
	}
	switch orphans {
	case "drop", "null", "fail":
	default:
		return Result{}, fmt.Errorf("keep rows: orphans %q: expected drop, null or fail", orphans)
	}
	plans, groups, cyclic, unkeyed, err := closure(ctx, d, cat, dst, rules, log)
	if err != nil {
		return Result{}, err
	}
	for _, p := range plans {
		if p.stage, err = d.Stage(ctx, p.keep, p.dst, p.cols); err != nil {
			return Result{}, fmt.Errorf("keep rows: stage rows of %s: %w", p.t.Name, err)
		}
	}
	for gi, group := range groups {
		for {
			changed, err := handleOrphans(ctx, d, dst, group, orphans)
			if err != nil {
				return Result{}, err
			}
			if !changed || !cyclic[gi] {
				break
			}
		}
		for _, p := range group {
			if err := handleConflicts(ctx, d, p, onConflict); err != nil {
				return Result{}, err
			}
		}
		for _, p := range group {
			n, err := d.Apply().Exec(ctx, d.Insert(d.Dst(p.t.Name), p.stage, p.cols))
			if err != nil {
				return Result{}, fmt.Errorf("keep rows: insert kept rows into %s: %w", p.t.Name, err)
			}
			p.rep.Inserted = n
		}
	}
	res := Result{Unkeyed: unkeyed}
	res.Tables = []engine.KeptTable{}
	for _, p := range plans {
		log.Debug("keep rows: kept", "table", p.rep.Table, "matched", p.rep.Matched, "dependents", p.rep.Dependents,
			"inserted", p.rep.Inserted, "skipped", p.rep.Skipped, "overwritten", p.rep.Overwritten,
			"orphans_dropped", p.rep.OrphansDropped, "orphans_nulled", p.rep.OrphansNulled)
		res.Tables = append(res.Tables, p.rep)
	}
	return res, nil
}
