package mysql

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// Import fits wide VARCHAR tables under InnoDB's row size, reports a
// foreign key to a table that is not imported and an identity that leads
// no key, and still loads the rows.
func TestImportReportsWhatItCannotCreate(t *testing.T) {
	my := testsrv.MariaDB(t)
	ctx := ctxT(t)
	name, target := newDB(t, my, "imp_report")
	wide := engine.TableSchema{Name: "wide", Columns: []engine.Column{{Name: "id", Type: "integer", PrimaryKey: true, Identity: true}}}
	for i := 0; i < 20; i++ {
		wide.Columns = append(wide.Columns, engine.Column{Name: fmt.Sprintf("c%d", i), Type: "text", Length: 1000, Nullable: true})
	}
	wide.Indexes = []engine.Index{{Name: "c0_idx", Columns: []string{"c0"}}}
	child := engine.TableSchema{Name: "child", Columns: []engine.Column{
		{Name: "k", Type: "integer", PrimaryKey: true},
		{Name: "n", Type: "integer", Identity: true},
		{Name: "parent", Type: "integer", Nullable: true},
	}, ForeignKeys: []engine.ForeignKey{{Name: "fk_gone", Columns: []string{"parent"}, RefTable: "gone", RefColumns: []string{"id"}}}}
	rows := func(table string, fn func([]any) error) error {
		row := make([]any, 21)
		row[0] = int64(7)
		for i := 1; i < 21; i++ {
			row[i] = strings.Repeat("x", 1000)
		}
		if table == "wide" {
			return fn(row)
		}
		return fn([]any{int64(1), int64(1), int64(3)})
	}
	var got []string
	opts := engine.RestoreOptions{Logger: quiet, Import: &engine.ImportOptions{Report: func(n engine.NotCarried) {
		got = append(got, n.Table+" "+n.Kind+" "+n.Object)
	}}}
	if err := New().Import(ctx, target, []engine.TableSchema{wide, child}, rows, opts); err != nil {
		t.Fatalf("import: %v", err)
	}
	all := strings.Join(got, "\n")
	for _, w := range []string{"wide column type c", "child foreign key fk_gone", "child identity n"} {
		if !strings.Contains(all, w) {
			t.Errorf("report lacks %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "wide column type c0 ") {
		t.Errorf("the indexed column c0 was made LONGTEXT:\n%s", all)
	}
	db, err := sql.Open("mysql", my.DriverDSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT LENGTH(c19) FROM wide WHERE id = 7").Scan(&n); err != nil || n != 1000 {
		t.Errorf("wide row: %d, %v", n, err)
	}
	if _, err := db.Exec("INSERT INTO wide (c0) VALUES ('y')"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT id FROM wide WHERE c0 = 'y'").Scan(&n); err != nil || n != 8 {
		t.Errorf("AUTO_INCREMENT gave %d, %v; want 8", n, err)
	}
}
