package portable

import (
	"fmt"
	"sort"
	"strings"

	"github.com/snapdata/snapdata/internal/engine"
)

// DefaultSchema is the schema whose tables keep their bare names when a
// snapshot holds tables of several schemas.
const DefaultSchema = "public"

// Mapped is a portable schema whose table names are the target's.
type Mapped struct {
	Tables []engine.TableSchema
	// Source maps a target table name (Tables[i].Name) to the archive's
	// table name, whose rows it loads.
	Source map[string]string
}

// MapNames gives every table its name on a target of engine target
// ("postgres", "mysql", "sqlite"); srcEngine is the archive's engine
// (for archives of format 1, whose PostgreSQL names are only qualified
// strings).
//
// The rule (docs/configuration.md, "Importing into another engine"):
//   - tables from one schema (or from an engine without schemas) keep their
//     bare names: public.film becomes film; into PostgreSQL they go into
//     public;
//   - with several schemas, a PostgreSQL target keeps them (app.users stays
//     app.users); a MySQL/MariaDB or SQLite target keeps the tables of
//     schema public bare and names the others schema_table (app.users
//     becomes app_users);
//   - two tables that would get the same name are an error naming both.
//
// Into PostgreSQL the names are quoted and qualified ("public"."film"),
// which the PostgreSQL importer reads as schema and table.
func MapNames(tables []engine.TableSchema, srcEngine, target string) (*Mapped, error) {
	type src struct{ schema, table string }
	srcs := make([]src, len(tables))
	schemas := map[string]bool{}
	for i, t := range tables {
		s := src{schema: t.Schema, table: t.Table}
		if s.table == "" {
			s.table = t.Name
			if srcEngine == "postgres" {
				if sc, tb, ok := splitPGName(t.Name); ok {
					s.schema, s.table = sc, tb
				}
			}
		}
		srcs[i] = s
		schemas[s.schema] = true
	}
	several := len(schemas) > 1
	m := &Mapped{Source: map[string]string{}}
	byTarget := map[string]string{} // folded target name -> source name
	rename := map[string]string{}   // source name -> target name
	for i, t := range tables {
		s := srcs[i]
		var name string
		switch {
		case target == "postgres":
			schema := s.schema
			if !several || schema == "" {
				schema = DefaultSchema
			}
			name = pgQuote(schema) + "." + pgQuote(s.table)
		case several && s.schema != DefaultSchema && s.schema != "":
			name = s.schema + "_" + s.table
		default:
			name = s.table
		}
		// MySQL/MariaDB table names may be case-insensitive (and SQLite's
		// always are): fold case for the collision check, except for
		// PostgreSQL whose quoted names are exact.
		key := name
		if target != "postgres" {
			key = strings.ToLower(name)
		}
		if other, dup := byTarget[key]; dup {
			return nil, fmt.Errorf("tables %s and %s would both be imported as %s: rename one in the source, or import into PostgreSQL, which keeps schemas", other, t.Name, name)
		}
		byTarget[key] = t.Name
		rename[t.Name] = name
		m.Source[name] = t.Name
		nt := t
		nt.Name, nt.Schema, nt.Table = name, "", ""
		m.Tables = append(m.Tables, nt)
	}
	for i := range m.Tables {
		t := &m.Tables[i]
		fks := make([]engine.ForeignKey, len(t.ForeignKeys))
		for j, fk := range t.ForeignKeys {
			if n, ok := rename[fk.RefTable]; ok {
				fk.RefTable = n
			}
			fks[j] = fk
		}
		t.ForeignKeys = fks
	}
	return m, nil
}

// pgQuote quotes a PostgreSQL identifier.
func pgQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// splitPGName parses a PostgreSQL qualified name (schema.table, each part
// quoted or not) as the PostgreSQL engine writes them.
func splitPGName(s string) (schema, table string, ok bool) {
	parts, ok := engine.SplitQualified(s)
	if !ok || len(parts) != 2 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// SortReport orders a not-carried report by table, kind and object.
func SortReport(r []engine.NotCarried) {
	sort.SliceStable(r, func(i, j int) bool {
		a, b := r[i], r[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Object < b.Object
	})
}
