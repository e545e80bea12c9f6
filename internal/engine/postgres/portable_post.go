package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// postEntry reads one post-data entry: constraints, indexes, foreign keys.
func (d *pgDesc) postEntry(e dumpEntry) {
	st := statement(e)
	switch e.Type {
	case "CONSTRAINT":
		m := addConRE.FindStringSubmatch(st)
		if m == nil {
			d.report("", "constraint", dumpTitle(e), "not understood, not carried")
			return
		}
		tn, _ := dumpName(m[1])
		if _, isPart := d.parentOf[tn]; isPart {
			return // the partitioned table's own constraint is carried
		}
		ts := d.byName[tn]
		cname, _ := dumpIdent(m[2])
		if ts == nil {
			d.report(tn, "constraint", cname, "on a table that is not exported")
			return
		}
		switch m[3] {
		case "PRIMARY KEY":
			return // columns carry it
		case "UNIQUE":
			rest := strings.TrimSpace(m[4])
			if strings.HasPrefix(rest, "NULLS NOT DISTINCT") {
				d.report(ts.Name, "unique", cname, "NULLS NOT DISTINCT is not carried")
				rest = strings.TrimSpace(strings.TrimPrefix(rest, "NULLS NOT DISTINCT"))
			}
			if strings.HasPrefix(rest, "(") {
				if j := strings.LastIndexByte(rest, ')'); j > 0 {
					if cols, ok := identList(rest[1:j]); ok {
						ts.Indexes = append(ts.Indexes, engine.Index{Name: cname, Columns: cols, Unique: true})
						return
					}
				}
			}
			d.report(ts.Name, "unique", cname+" "+m[3]+m[4], "not a list of columns")
		default:
			d.report(ts.Name, strings.ToLower(m[3]), cname+" "+m[3]+m[4], "%s constraints are not carried", m[3])
		}
	case "FK CONSTRAINT":
		m := addConRE.FindStringSubmatch(st)
		if m == nil || m[3] != "FOREIGN KEY" {
			d.report("", "foreign key", dumpTitle(e), "not understood, not carried")
			return
		}
		tn, _ := dumpName(m[1])
		cname, _ := dumpIdent(m[2])
		ts := d.byName[d.root(tn)]
		if ts == nil {
			d.report(tn, "foreign key", cname, "on a table that is not exported")
			return
		}
		if _, isPart := d.parentOf[tn]; isPart {
			return
		}
		r := fkRefRE.FindStringSubmatch(m[4])
		if r == nil {
			d.report(ts.Name, "foreign key", cname+" FOREIGN KEY"+m[4], "not understood, not carried")
			return
		}
		cols, ok1 := identList(r[1])
		ref, ok2 := dumpName(r[2])
		refCols, ok3 := identList(r[3])
		if !ok1 || !ok2 || !ok3 {
			d.report(ts.Name, "foreign key", cname+" FOREIGN KEY"+m[4], "not understood, not carried")
			return
		}
		fk := engine.ForeignKey{Name: cname, Columns: cols, RefTable: d.root(ref), RefColumns: refCols}
		tail := " " + strings.TrimSpace(r[4])
		fk.OnDelete = fkAction(tail, " ON DELETE ")
		fk.OnUpdate = fkAction(tail, " ON UPDATE ")
		if strings.Contains(tail, " DEFERRABLE") {
			d.report(ts.Name, "foreign key", cname, "DEFERRABLE is not carried: the foreign key is checked at once")
		}
		if strings.Contains(tail, " MATCH FULL") {
			d.report(ts.Name, "foreign key", cname, "MATCH FULL is not carried")
		}
		ts.ForeignKeys = append(ts.ForeignKeys, fk)
	case "INDEX":
		m := indexRE.FindStringSubmatch(st)
		if m == nil {
			d.report("", "index", dumpTitle(e), "not understood, not carried")
			return
		}
		iname, _ := dumpIdent(m[2])
		tn, _ := dumpName(m[3])
		if _, isPart := d.parentOf[tn]; isPart {
			return // attached to its partitioned table's index
		}
		ts := d.byName[tn]
		if ts == nil {
			d.report(tn, "index", iname, "on a relation that is not exported (a materialized view?)")
			return
		}
		method, list, tail := m[4], m[5], strings.TrimSpace(m[6])
		if method != "btree" && method != "hash" {
			d.report(ts.Name, "index", iname+" USING "+method, "%s indexes are not carried", method)
			return
		}
		if strings.Contains(tail, "WHERE ") {
			d.report(ts.Name, "index", iname+" "+tail, "partial indexes are not carried")
			return
		}
		cols, ok := identList(list)
		if !ok {
			d.report(ts.Name, "index", iname+" ("+list+")", "expression indexes are not carried")
			return
		}
		if strings.Contains(tail, "INCLUDE") {
			d.report(ts.Name, "index", iname+" "+tail, "INCLUDE columns are not carried; the index keeps its key columns")
		}
		ts.Indexes = append(ts.Indexes, engine.Index{Name: iname, Columns: cols, Unique: m[1] != ""})
	case "INDEX ATTACH", "MATERIALIZED VIEW DATA":
	case "ACL", "DEFAULT ACL":
		d.report("", "privileges", dumpTitle(e), "grants are not carried")
	case "COMMENT":
		d.report("", "comment", dumpTitle(e), "comments are not carried")
	default:
		d.report("", strings.ToLower(e.Type), dumpTitle(e), "not carried across engines")
	}
}

func fkAction(tail, key string) string {
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

// readPartitionedRows reads the rows of a partitioned table: those of its
// partitions, each in the column order of the first.
func readPartitionedRows(ctx context.Context, snap engine.SnapshotReader, sm *snapshotMeta, table string, fn func(row []any) error) error {
	ps, err := (&Engine{}).PortableSchema(ctx, snap)
	if err != nil {
		return err
	}
	name, ok := dumpName(table)
	if !ok {
		name = table
	}
	var parts []string
	var cols []engine.Column
	for _, t := range ps.Tables {
		if t.Name == name && len(t.Partitions) > 0 {
			parts, cols = t.Partitions, t.Columns
		}
	}
	if parts == nil {
		return fmt.Errorf("table %s is not in the snapshot", table)
	}
	for _, p := range parts {
		leaf := findTable(sm.cols.Tables, p)
		if leaf == nil {
			return fmt.Errorf("partition %s of %s is not in the snapshot", p, table)
		}
		perm := make([]int, len(cols))
		for i, c := range cols {
			perm[i] = -1
			for j, lc := range leaf.Columns {
				if lc.Name == c.Name {
					perm[i] = j
				}
			}
			if perm[i] < 0 {
				return fmt.Errorf("partition %s of %s has no column %s", p, table, c.Name)
			}
		}
		out := make([]any, len(cols))
		for _, st := range snap.Manifest().TableStreams(leaf.Name) {
			err := readCopyRows(ctx, snap, leaf, st.Name, func(row []any) error {
				for i, j := range perm {
					out[i] = row[j]
				}
				return fn(out)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}
