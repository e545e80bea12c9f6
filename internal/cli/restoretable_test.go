package cli

import (
	"strings"
	"testing"
)

// issue 18: restore --table T --clean into a database that holds the
// snapshot and an extra table replaces T only, and the summary counts the
// tables it restored, not the snapshot's.
func TestRestoreTableCleanKeepsTheRest(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	must(t, "restore", "--repo", "repo", "latest", "--to", "sqlite:copy.db")
	db := openDB(t, "copy.db")
	for _, q := range []string{"CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT)", "INSERT INTO extra (note) VALUES ('kept')", "DELETE FROM Artist WHERE ArtistId > 10"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	r := must(t, "restore", "--repo", "repo", "latest", "--to", "sqlite:copy.db", "--table", "Artist", "--clean")
	if !strings.Contains(r.stdout, "(1 tables)") && !strings.Contains(r.stdout, ", 1 tables)") {
		t.Errorf("summary does not count the one restored table: %s", r)
	}
	db = openDB(t, "copy.db")
	for q, want := range map[string]int64{
		"SELECT count(*) FROM Artist":      275,
		"SELECT count(*) FROM Track":       3503,
		"SELECT count(*) FROM InvoiceLine": 2240,
		"SELECT count(*) FROM extra":       1,
	} {
		if got := scalar(t, db, q); got != want {
			t.Errorf("%s = %v, want %d", q, got, want)
		}
	}
}
