package portable

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
)

// writeArchive writes a .tar.gz with the given members.
func writeArchive(t *testing.T, members map[string]string, order []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range order {
		body := members[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// An archive written before format 2 (schema.json a bare list, PostgreSQL
// names qualified) still opens, reads its rows and maps its names.
func TestOpenFormat1(t *testing.T) {
	path := writeArchive(t, map[string]string{
		ManifestFile:             `{"id": "x", "engine": "postgres"}`,
		SchemaFile:               `[{"name": "public.film", "columns": [{"name": "id", "type": "integer", "source_type": "integer", "nullable": false, "primary_key": true}, {"name": "price", "type": "numeric", "source_type": "numeric(4,2)", "nullable": true}]}]`,
		TableFile("public.film"): "[1,\"1.99\"]\n[2,null]\n",
	}, []string{ManifestFile, SchemaFile, TableFile("public.film")})
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Version != 1 || a.Engine != "postgres" || len(a.Schema) != 1 {
		t.Fatalf("version %d, engine %q, schema %+v", a.Version, a.Engine, a.Schema)
	}
	var rows [][]any
	if err := a.Rows(context.Background(), "public.film", func(r []any) error {
		rows = append(rows, append([]any(nil), r...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := [][]any{{int64(1), "1.99"}, {int64(2), nil}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %#v, want %#v", rows, want)
	}
	m, err := MapNames(a.Schema, a.Engine, "mysql")
	if err != nil {
		t.Fatal(err)
	}
	if m.Tables[0].Name != "film" || m.Source["film"] != "public.film" {
		t.Errorf("mapped to %q (source %v)", m.Tables[0].Name, m.Source)
	}
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	path := writeArchive(t, map[string]string{SchemaFile: `{"format_version": 99, "tables": []}`}, []string{SchemaFile})
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "format version 99") {
		t.Errorf("Open of format 99: %v", err)
	}
}

func TestMapNames(t *testing.T) {
	tab := func(schema, table string, fks ...engine.ForeignKey) engine.TableSchema {
		return engine.TableSchema{Name: schema + "." + table, Schema: schema, Table: table, ForeignKeys: fks}
	}
	one := []engine.TableSchema{tab("public", "film"), tab("public", "actor", engine.ForeignKey{RefTable: "public.film"})}
	several := []engine.TableSchema{tab("public", "film"), tab("app", "users", engine.ForeignKey{RefTable: "public.film"}), tab("Mixed Schema", "Orders")}
	for _, tc := range []struct {
		tables []engine.TableSchema
		target string
		want   []string
		ref    string // the mapped RefTable of the second table's key
	}{
		{one, "mysql", []string{"film", "actor"}, "film"},
		{one, "sqlite", []string{"film", "actor"}, "film"},
		{one, "postgres", []string{`"public"."film"`, `"public"."actor"`}, `"public"."film"`},
		{several, "mysql", []string{"film", "app_users", "Mixed Schema_Orders"}, "film"},
		{several, "postgres", []string{`"public"."film"`, `"app"."users"`, `"Mixed Schema"."Orders"`}, `"public"."film"`},
		{[]engine.TableSchema{{Name: "Album"}, {Name: "Track", ForeignKeys: []engine.ForeignKey{{RefTable: "Album"}}}}, "postgres", []string{`"public"."Album"`, `"public"."Track"`}, `"public"."Album"`},
	} {
		m, err := MapNames(tc.tables, "postgres", tc.target)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tb := range m.Tables {
			got = append(got, tb.Name)
			if m.Source[tb.Name] == "" {
				t.Errorf("no source for %s", tb.Name)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("into %s: %q, want %q", tc.target, got, tc.want)
		}
		if r := m.Tables[1].ForeignKeys[0].RefTable; r != tc.ref {
			t.Errorf("into %s: foreign key references %q, want %q", tc.target, r, tc.ref)
		}
	}
	// app.users and public.app_users would both be app_users.
	_, err := MapNames([]engine.TableSchema{tab("public", "app_users"), tab("app", "users")}, "postgres", "sqlite")
	if err == nil || !strings.Contains(err.Error(), "public.app_users") || !strings.Contains(err.Error(), "app.users") {
		t.Errorf("collision: %v", err)
	}
	// MariaDB and SQLite names are compared without case.
	if _, err := MapNames([]engine.TableSchema{tab("public", "App_Users"), tab("app", "users")}, "postgres", "mysql"); err == nil {
		t.Error("App_Users and app_users did not collide")
	}
}

func TestNonFiniteFloatsRoundTrip(t *testing.T) {
	ts := engine.TableSchema{Name: "t", Columns: []engine.Column{{Name: "f", Type: "float"}, {Name: "g", Type: "float"}, {Name: "h", Type: "float"}}}
	enc := encodeRow(ts, []any{math.NaN(), math.Inf(1), math.Inf(-1)})
	if !reflect.DeepEqual(enc, []any{"NaN", "Infinity", "-Infinity"}) {
		t.Fatalf("encoded %#v", enc)
	}
	var r []json.RawMessage
	if err := json.Unmarshal([]byte(`["NaN", "Infinity", "-Infinity"]`), &r); err != nil {
		t.Fatal(err)
	}
	row, err := decodeRow(ts, r)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(row[0].(float64)) || !math.IsInf(row[1].(float64), 1) || !math.IsInf(row[2].(float64), -1) {
		t.Errorf("decoded %#v", row)
	}
}
