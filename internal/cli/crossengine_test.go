package cli

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// A PostgreSQL snapshot moves into SQLite and MariaDB through the portable
// export: same rows, same values.
func TestPostgresSnapshotIntoOtherEngines(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	setup(t)
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "internal/engine/postgres/testdata/chinook_postgresql.sql"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(script, []byte(`\c chinook;`))
	if i < 0 {
		t.Fatal(`chinook script has no \c chinook`)
	}
	if err := os.WriteFile("chinook.sql", script[i+len(`\c chinook;`):], 0o644); err != nil {
		t.Fatal(err)
	}
	src := pg.CreateDatabase(t, "xengine")
	cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", src, "-f", "chinook.sql")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load chinook: %v\n%s", err, out)
	}
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", src)
	must(t, "export", "--repo", "repo", "latest", "--format", "tar.gz", "-o", "chinook.tar.gz")

	must(t, "import", "chinook.tar.gz", "--to", "sqlite:imported.db")
	myDSN := my.CreateDatabase(t, "xengine")
	must(t, "import", "chinook.tar.gz", "--to", myDSN)

	const q = `SELECT count(*), sum(milliseconds), sum(unit_price * 100), max(name) FROM %s`
	pgconn, err := pgx.Connect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer pgconn.Close(context.Background())
	want := pgFour(t, pgconn, strings.Replace(q, "%s", "public.track", 1))
	t.Logf("PostgreSQL track: %v", want)
	lite := openDB(t, "imported.db")
	var trackTable string
	if err := lite.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%track' AND name NOT LIKE '%playlist%'`).Scan(&trackTable); err != nil {
		t.Fatalf("no track table in the SQLite import: %v", err)
	}
	if got := fourValues(t, lite, strings.Replace(q, "%s", `"`+trackTable+`"`, 1)); got != want {
		t.Errorf("SQLite import: %v, PostgreSQL: %v", got, want)
	}
	mydb, err := sql.Open("mysql", my.DriverDSN(strings.TrimPrefix(myDSN[strings.LastIndex(myDSN, "/"):], "/")))
	if err != nil {
		t.Fatal(err)
	}
	defer mydb.Close()
	var myTrack string
	if err := mydb.QueryRow(`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '%track' AND table_name NOT LIKE '%playlist%'`).Scan(&myTrack); err != nil {
		t.Fatalf("no track table in the MariaDB import: %v", err)
	}
	if got := fourValues(t, mydb, strings.Replace(q, "%s", "`"+myTrack+"`", 1)); got != want {
		t.Errorf("MariaDB import: %v, PostgreSQL: %v", got, want)
	}
}

func fourValues(t *testing.T, db *sql.DB, q string) [4]string {
	t.Helper()
	var v [4]sql.NullString
	if err := db.QueryRow(q).Scan(&v[0], &v[1], &v[2], &v[3]); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out [4]string
	for i := range v {
		out[i] = v[i].String
		if j := strings.IndexByte(out[i], '.'); j >= 0 { // 51424.00 vs 51424
			out[i] = strings.TrimRight(strings.TrimRight(out[i], "0"), ".")
		}
	}
	return out
}

func pgFour(t *testing.T, c *pgx.Conn, q string) [4]string {
	t.Helper()
	q = "SELECT a::text, b::text, c::text, d::text FROM (" + q + ") AS x(a, b, c, d)"
	var v [4]*string
	if err := c.QueryRow(context.Background(), q).Scan(&v[0], &v[1], &v[2], &v[3]); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out [4]string
	for i := range v {
		if v[i] != nil {
			out[i] = *v[i]
		}
		if j := strings.IndexByte(out[i], '.'); j >= 0 {
			out[i] = strings.TrimRight(strings.TrimRight(out[i], "0"), ".")
		}
	}
	return out
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := callerFile()
	return filepath.Join(filepath.Dir(file), "..", "..")
}
