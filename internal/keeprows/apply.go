package keeprows

import (
	"context"
	"fmt"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

func notNull(d Dialect, tbl string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = tbl + "." + d.Quote(c) + " IS NOT NULL"
	}
	return strings.Join(parts, " AND ")
}

// handleOrphans applies orphans to the staged rows of group whose parent
// row is neither in the new copy nor kept. It reports whether it changed
// a staged row.
func handleOrphans(ctx context.Context, d Dialect, dst *Catalog, group []*plan, mode string) (bool, error) {
	as := d.Apply()
	changed := false
	for _, p := range group {
		for _, fk := range p.t.FKs {
			if !hasAll(p.cols, fk.Cols) {
				continue
			}
			parent := dst.Lookup(fk.Parent)
			if parent == nil {
				continue
			}
			if _, ok := parentCols(parent, fk.ParentCols); !ok {
				continue
			}
			cond := notNull(d, p.stage, fk.Cols) + " AND NOT EXISTS (SELECT 1 FROM " + d.Dst(parent.Name) + " snapdata_p WHERE " +
				eq(d, "snapdata_p", fk.ParentCols, p.stage, fk.Cols) + ")"
			var sibling *plan
			for _, q := range group {
				if q.t.Name == fk.Parent {
					sibling = q
				}
			}
			if sibling != nil {
				if !hasAll(sibling.cols, fk.ParentCols) {
					continue
				}
				if _, err := as.Exec(ctx, d.CreateTempAs("snapdata_keep_h", "SELECT DISTINCT "+joinQuoted(d.Quote, "", fk.ParentCols)+" FROM "+sibling.stage)); err != nil {
					return false, fmt.Errorf("keep rows: orphans of %s: %w", p.t.Name, err)
				}
				cond += " AND NOT EXISTS (SELECT 1 FROM snapdata_keep_h WHERE " + eq(d, "snapdata_keep_h", fk.ParentCols, p.stage, fk.Cols) + ")"
			}
			n, err := orphanStep(ctx, d, p, fk, cond, mode)
			if sibling != nil {
				if _, derr := as.Exec(ctx, d.DropTemp("snapdata_keep_h")); derr != nil && err == nil {
					err = fmt.Errorf("keep rows: orphans of %s: %w", p.t.Name, derr)
				}
			}
			if err != nil {
				return false, err
			}
			if n > 0 {
				changed = true
			}
		}
	}
	return changed, nil
}

func parentCols(t *Table, cols []string) ([]Column, bool) {
	var out []Column
	for _, c := range cols {
		col, ok := t.Column(c)
		if !ok {
			return nil, false
		}
		out = append(out, col)
	}
	return out, true
}

func orphanStep(ctx context.Context, d Dialect, p *plan, fk FK, cond, mode string) (int64, error) {
	as := d.Apply()
	describe := func() error {
		key := p.t.PK
		if len(key) == 0 || !hasAll(p.cols, key) {
			key = nil
		}
		cols := append(append([]string{}, key...), fk.Cols...)
		row, ok, err := as.Row(ctx, "SELECT "+joinQuoted(d.Quote, p.stage+".", cols)+" FROM "+p.stage+" WHERE "+cond+" LIMIT 1")
		if err != nil {
			return fmt.Errorf("keep rows: orphans of %s: %w", p.t.Name, err)
		}
		if !ok {
			return nil
		}
		what := "a row"
		if len(key) > 0 {
			what = "row " + showKey(key, row[:len(key)])
		}
		return fmt.Errorf("%w: table %s: kept %s references %s %s, which the new copy does not have",
			engine.ErrKeepOrphan, p.t.Name, what, fk.Parent, showKey(fk.ParentCols, row[len(key):]))
	}
	switch mode {
	case "fail":
		return 0, describe()
	case "null":
		for _, c := range fk.Cols {
			if col, ok := p.dst.Column(c); ok && !col.Nullable {
				if err := describe(); err != nil {
					return 0, fmt.Errorf("%w (orphans: null cannot set column %s to NULL)", err, c)
				}
				return 0, nil
			}
		}
		sets := make([]string, len(fk.Cols))
		for i, c := range fk.Cols {
			sets[i] = d.Quote(c) + " = NULL"
		}
		n, err := as.Exec(ctx, "UPDATE "+p.stage+" SET "+strings.Join(sets, ", ")+" WHERE "+cond)
		if err != nil {
			return 0, fmt.Errorf("keep rows: set orphans of %s to NULL: %w", p.t.Name, err)
		}
		p.rep.OrphansNulled += n
		return n, nil
	default:
		n, err := as.Exec(ctx, "DELETE FROM "+p.stage+" WHERE "+cond)
		if err != nil {
			return 0, fmt.Errorf("keep rows: drop orphans of %s: %w", p.t.Name, err)
		}
		p.rep.OrphansDropped += n
		return n, nil
	}
}

func showKey(cols, vals []string) string {
	parts := make([]string, len(cols))
	for i := range cols {
		parts[i] = cols[i] + "=" + vals[i]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// handleConflicts applies on_conflict to staged rows whose primary or
// unique key the new copy holds.
func handleConflicts(ctx context.Context, d Dialect, p *plan, mode string) error {
	as := d.Apply()
	var keys [][]string
	if len(p.dst.PK) > 0 && hasAll(p.cols, p.dst.PK) {
		keys = append(keys, p.dst.PK)
	}
	for _, u := range p.dst.Uniques {
		if hasAll(p.cols, u) {
			keys = append(keys, u)
		}
	}
	dstT := d.Dst(p.t.Name)
	match := func(key []string) string {
		return "EXISTS (SELECT 1 FROM " + dstT + " snapdata_d WHERE " + eq(d, "snapdata_d", key, p.stage, key) + ")"
	}
	switch mode {
	case "fail":
		for _, key := range keys {
			row, ok, err := as.Row(ctx, "SELECT "+joinQuoted(d.Quote, p.stage+".", key)+" FROM "+p.stage+" WHERE "+match(key)+" LIMIT 1")
			if err != nil {
				return fmt.Errorf("keep rows: conflicts in %s: %w", p.t.Name, err)
			}
			if ok {
				return fmt.Errorf("%w: table %s key %s: the new copy holds a row with this key (on_conflict: fail)",
					engine.ErrKeepConflict, p.t.Name, showKey(key, row))
			}
		}
	case "skip":
		if len(keys) == 0 {
			return nil
		}
		conds := make([]string, len(keys))
		for i, k := range keys {
			conds[i] = match(k)
		}
		n, err := as.Exec(ctx, "DELETE FROM "+p.stage+" WHERE "+strings.Join(conds, " OR "))
		if err != nil {
			return fmt.Errorf("keep rows: skip conflicting rows of %s: %w", p.t.Name, err)
		}
		p.rep.Skipped = n
	case "overwrite":
		for _, key := range keys {
			// The key's own columns keep their values (an identity
			// column GENERATED ALWAYS cannot be set).
			var set []string
			for _, c := range p.cols {
				if !contains(key, c) {
					set = append(set, c)
				}
			}
			if len(set) > 0 {
				if _, err := as.Exec(ctx, d.Overwrite(dstT, p.stage, key, set)); err != nil {
					return fmt.Errorf("keep rows: overwrite rows of %s: %w", p.t.Name, err)
				}
			}
			n, err := as.Exec(ctx, "DELETE FROM "+p.stage+" WHERE "+match(key))
			if err != nil {
				return fmt.Errorf("keep rows: overwrite rows of %s: %w", p.t.Name, err)
			}
			p.rep.Overwritten += n
		}
	}
	return nil
}
