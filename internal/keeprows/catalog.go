// Package keeprows is the engine-neutral part of clone's keep_rows: it
// resolves rules to tables, orders tables by their foreign keys, computes
// the rows that depend on kept rows (transitively) in temporary tables of
// the server, and moves them into the new copy following on_conflict and
// orphans. Each engine supplies its catalog and a Dialect that names
// tables, runs statements and moves staged rows between sessions.
package keeprows

import (
	"path"
	"slices"
	"strings"
)

// Column is one column of a table.
type Column struct {
	Name      string
	Nullable  bool
	Integer   bool // an integer type (for key_at_least)
	Generated bool // computed by the server: never inserted
}

// FK is a foreign key: Cols of the table reference ParentCols of Parent.
type FK struct {
	Name       string
	Cols       []string
	Parent     string
	ParentCols []string
}

// Table is what keeping rows needs to know of one table.
type Table struct {
	Name    string // as rules and reports name it
	Columns []Column
	PK      []string
	Uniques [][]string // unique keys besides the primary key
	FKs     []FK
}

// Column returns the column named n.
func (t *Table) Column(n string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == n {
			return c, true
		}
	}
	return Column{}, false
}

// IntKey returns the single-column integer primary key, or "".
func (t *Table) IntKey() string {
	if len(t.PK) != 1 {
		return ""
	}
	if c, ok := t.Column(t.PK[0]); ok && c.Integer {
		return c.Name
	}
	return ""
}

// Catalog is the tables of one database.
type Catalog struct {
	Tables []*Table
	// Aliases maps other accepted spellings of a table name (PostgreSQL:
	// "orders" for "public.orders") to its Name.
	Aliases map[string]string
}

// Lookup finds a table by its name or an alias.
func (c *Catalog) Lookup(name string) *Table {
	if a, ok := c.Aliases[name]; ok {
		name = a
	}
	for _, t := range c.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Match returns the tables whose name (or an alias) matches glob.
func (c *Catalog) Match(glob string) []*Table {
	var out []*Table
	for _, t := range c.Tables {
		if ok, _ := path.Match(glob, t.Name); ok {
			out = append(out, t)
			continue
		}
		for a, n := range c.Aliases {
			if n == t.Name {
				if ok, _ := path.Match(glob, a); ok {
					out = append(out, t)
					break
				}
			}
		}
	}
	return out
}

// insertable returns the columns of t that the destination table dst also
// has and that are not generated: the columns a kept row carries.
func insertable(t, dst *Table) []string {
	var out []string
	for _, c := range t.Columns {
		if c.Generated {
			continue
		}
		if dst != nil {
			d, ok := dst.Column(c.Name)
			if !ok || d.Generated {
				continue
			}
		}
		out = append(out, c.Name)
	}
	return out
}

func hasAll(cols []string, want []string) bool {
	for _, w := range want {
		if !slices.Contains(cols, w) {
			return false
		}
	}
	return true
}

// order returns the strongly connected components of the foreign-key graph
// restricted to tables, parents before children. cyclic reports whether a
// component holds a cycle (several tables, or a self-reference).
func order(tables []*Table) (sccs [][]*Table, cyclic []bool) {
	idx := map[string]int{}
	for i, t := range tables {
		idx[t.Name] = i
	}
	// edges parent -> child
	children := make([][]int, len(tables))
	self := make([]bool, len(tables))
	for i, t := range tables {
		for _, fk := range t.FKs {
			p, ok := idx[fk.Parent]
			if !ok {
				continue
			}
			if p == i {
				self[i] = true
				continue
			}
			if !slices.Contains(children[p], i) {
				children[p] = append(children[p], i)
			}
		}
	}
	// Tarjan's algorithm emits components children first (reverse
	// topological order of parent -> child edges).
	index := make([]int, len(tables))
	low := make([]int, len(tables))
	on := make([]bool, len(tables))
	for i := range index {
		index[i] = -1
	}
	var stack []int
	next := 0
	var out [][]int
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		on[v] = true
		for _, w := range children[v] {
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			slices.Sort(comp)
			out = append(out, comp)
		}
	}
	for v := range tables {
		if index[v] < 0 {
			visit(v)
		}
	}
	slices.Reverse(out)
	for _, comp := range out {
		var ts []*Table
		for _, i := range comp {
			ts = append(ts, tables[i])
		}
		sccs = append(sccs, ts)
		cyclic = append(cyclic, len(comp) > 1 || self[comp[0]])
	}
	return sccs, cyclic
}

// descendants returns the names of tables that reference any of seeds,
// transitively, seeds included.
func descendants(cat *Catalog, seeds []string) map[string]bool {
	in := map[string]bool{}
	for _, s := range seeds {
		in[s] = true
	}
	for changed := true; changed; {
		changed = false
		for _, t := range cat.Tables {
			if in[t.Name] {
				continue
			}
			for _, fk := range t.FKs {
				if in[fk.Parent] {
					in[t.Name] = true
					changed = true
					break
				}
			}
		}
	}
	return in
}

func joinQuoted(q func(string) string, prefix string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = prefix + q(c)
	}
	return strings.Join(parts, ", ")
}
