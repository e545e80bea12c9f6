package portable

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/engine/sqlite"
)

func TestExportOpenRows(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT, data BLOB, price REAL, ok BOOLEAN)`,
		`INSERT INTO a VALUES (1, 'one', x'00ff', 1.25, 1), (2, NULL, NULL, NULL, 0)`,
		`CREATE TABLE "b/slash" (k TEXT PRIMARY KEY)`,
		`INSERT INTO "b/slash" VALUES ('x'), ('y')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	d, _ := dsn.Parse("sqlite:" + src)
	eng := sqlite.New()
	mem := enginetest.NewMemory()
	res, err := eng.Backup(context.Background(), d, engine.BackupOptions{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	mem.Finish(res, "sqlite")
	out := filepath.Join(dir, "x.tar.gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := Export(context.Background(), f, map[string]string{"id": "test"}, eng, mem); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var m map[string]string
	if err := json.Unmarshal(a.Manifest, &m); err != nil || m["id"] != "test" {
		t.Errorf("manifest: %s %v", a.Manifest, err)
	}
	if len(a.Schema) != 2 {
		t.Fatalf("schema: %+v", a.Schema)
	}
	read := func(table string) [][]any {
		var rows [][]any
		if err := a.Rows(context.Background(), table, func(r []any) error {
			rows = append(rows, append([]any(nil), r...))
			return nil
		}); err != nil {
			t.Fatalf("rows of %s: %v", table, err)
		}
		return rows
	}
	// Out of archive order, then in order again: the cursor reopens.
	for i := 0; i < 2; i++ {
		if got := read("b/slash"); len(got) != 2 || got[1][0] != "y" {
			t.Errorf("b/slash rows: %v", got)
		}
		want := [][]any{{int64(1), "one", []byte{0, 0xff}, 1.25, true}, {int64(2), nil, nil, nil, false}}
		if got := read("a"); !reflect.DeepEqual(got, want) {
			t.Errorf("a rows:\n got %#v\nwant %#v", got, want)
		}
	}
	if err := a.Rows(context.Background(), "nope", func([]any) error { return nil }); err == nil || !strings.Contains(err.Error(), "not in the archive") {
		t.Errorf("unknown table: %v", err)
	}
	if _, err := Open(src); err == nil || !strings.Contains(err.Error(), "not a .tar.gz") {
		t.Errorf("open of a non-archive: %v", err)
	}
}

func TestDecodeRowErrors(t *testing.T) {
	ts := engine.TableSchema{Name: "t", Columns: []engine.Column{{Name: "n", Type: "integer"}, {Name: "b", Type: "bytes"}}}
	raw := func(s string) []json.RawMessage {
		var r []json.RawMessage
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for in, want := range map[string]string{
		`[1]`:         "row has 1 values",
		`["x", null]`: "column n",
		`[1, "!!!"]`:  "column b",
		`[1.5, null]`: "column n",
	} {
		if _, err := decodeRow(ts, raw(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeRow(%s) = %v, want %q", in, err, want)
		}
	}
}
