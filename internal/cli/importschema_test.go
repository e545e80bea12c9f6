package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// xdb is a database of one engine, opened for the test's queries.
type xdb struct {
	engine string // postgres, mysql, sqlite
	dsn    string // for snapdata
	db     *sql.DB
	pgc    *pgx.Conn
}

func (x xdb) exec(t *testing.T, query string) {
	t.Helper()
	var err error
	if x.pgc != nil {
		_, err = x.pgc.Exec(context.Background(), query)
	} else {
		_, err = x.db.Exec(query)
	}
	if err != nil {
		t.Fatalf("%s: %s: %v", x.engine, query, err)
	}
}

func (x xdb) q(name string) string {
	if x.engine == "mysql" {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// text runs a query and returns its single value as text ("" for NULL).
func (x xdb) text(t *testing.T, query string, args ...any) string {
	t.Helper()
	if x.pgc != nil {
		var v *string
		if err := x.pgc.QueryRow(context.Background(), query, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %s: %v", x.engine, query, err)
		}
		if v == nil {
			return ""
		}
		return *v
	}
	var v sql.NullString
	if err := x.db.QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %s: %v", x.engine, query, err)
	}
	return v.String
}

// asText casts an expression to text in the engine's dialect.
func (x xdb) asText(expr string) string {
	switch x.engine {
	case "postgres":
		return "(" + expr + ")::text"
	case "mysql":
		return "CAST(" + expr + " AS CHAR)"
	}
	return "CAST(" + expr + " AS TEXT)"
}

// foreignKeys and indexes count the foreign keys and the non-primary
// indexes of the database, from its catalog.
func (x xdb) foreignKeys(t *testing.T) string {
	switch x.engine {
	case "postgres":
		return x.text(t, `SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`)
	case "mysql":
		return x.text(t, `SELECT count(*) FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()`)
	}
	return x.text(t, `SELECT count(*) FROM (SELECT DISTINCT m.name, f.id FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table')`)
}

func (x xdb) indexes(t *testing.T) string {
	switch x.engine {
	case "postgres":
		return x.text(t, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`)
	case "mysql":
		return x.text(t, `SELECT count(DISTINCT table_name, index_name) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name <> 'PRIMARY'`)
	}
	return x.text(t, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`)
}

// uniqueIndexOn says whether a unique index covers exactly col of table.
func (x xdb) uniqueIndexOn(t *testing.T, table, col string) bool {
	switch x.engine {
	case "postgres":
		return x.text(t, `SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnatts = 1 AND a.attname = $2`, table, col) == "1"
	case "mysql":
		return x.text(t, `SELECT count(*) FROM information_schema.statistics s WHERE s.table_schema = DATABASE() AND s.table_name = ? AND s.column_name = ? AND s.non_unique = 0
AND (SELECT count(*) FROM information_schema.statistics o WHERE o.table_schema = s.table_schema AND o.table_name = s.table_name AND o.index_name = s.index_name) = 1`, table, col) == "1"
	}
	return x.text(t, `SELECT count(*) FROM pragma_index_list(?) l WHERE l."unique" AND (SELECT count(*) FROM pragma_index_info(l.name)) = 1
AND (SELECT name FROM pragma_index_info(l.name)) = ?`, table, col) == "1"
}

func trimDecimal(s string) string {
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "eE") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// chinookSource loads Chinook into a new database of the engine.
func chinookSource(t *testing.T, eng string, pg *testsrv.PG, my *testsrv.My) xdb {
	t.Helper()
	root := repoRoot(t)
	switch eng {
	case "postgres":
		script, err := os.ReadFile(filepath.Join(root, "internal/engine/postgres/testdata/chinook_postgresql.sql"))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(script, []byte(`\c chinook;`))
		if err := os.WriteFile("chinook_pg.sql", script[i+len(`\c chinook;`):], 0o644); err != nil {
			t.Fatal(err)
		}
		d := pg.CreateDatabase(t, "chinook_src")
		cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", d, "-f", "chinook_pg.sql")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("load chinook: %v\n%s", err, out)
		}
		return openX(t, "postgres", d, pg, my)
	case "mysql":
		b, err := os.ReadFile(filepath.Join(root, "internal/engine/mysql/testdata/chinook/chinook_mysql.sql"))
		if err != nil {
			t.Fatal(err)
		}
		b = regexp.MustCompile("(?m)^(DROP DATABASE|CREATE DATABASE|USE) .*$").ReplaceAll(b, nil)
		d := my.CreateDatabase(t, "chinook_src")
		x := openX(t, "mysql", d, pg, my)
		cmd := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host,
			"-P", fmt.Sprint(my.Port), "-u", my.User, mysqlName(d))
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+my.Password)
		cmd.Stdin = bytes.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("load chinook: %v\n%s", err, out)
		}
		return x
	}
	path := filepath.Join(t.TempDir(), "chinook.db")
	chinook(t, path)
	return openX(t, "sqlite", "sqlite:"+path, pg, my)
}

func mysqlName(d string) string {
	d = d[strings.LastIndex(d, "/")+1:]
	if i := strings.IndexByte(d, '?'); i >= 0 {
		d = d[:i]
	}
	return d
}

func openX(t *testing.T, eng, d string, pg *testsrv.PG, my *testsrv.My) xdb {
	t.Helper()
	x := xdb{engine: eng, dsn: d}
	switch eng {
	case "postgres":
		c, err := pgx.Connect(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		x.pgc = c
		t.Cleanup(func() { c.Close(context.Background()) })
		return x
	case "mysql":
		db, err := sql.Open("mysql", my.DriverDSN(mysqlName(d)))
		if err != nil {
			t.Fatal(err)
		}
		x.db = db
	default:
		x.db = openDB(t, strings.TrimPrefix(d, "sqlite:"))
	}
	t.Cleanup(func() { x.db.Close() })
	return x
}

// newTarget returns an empty database of the engine.
func newTarget(t *testing.T, eng, name string, pg *testsrv.PG, my *testsrv.My) xdb {
	t.Helper()
	switch eng {
	case "postgres":
		return openX(t, eng, pg.CreateDatabase(t, name), pg, my)
	case "mysql":
		return openX(t, eng, my.CreateDatabase(t, name), pg, my)
	}
	return openX(t, eng, "sqlite:"+filepath.Join(t.TempDir(), name+".db"), pg, my)
}

type importReport struct {
	Tables     int                 `json:"tables"`
	NotCarried []engine.NotCarried `json:"not_carried"`
}

// Chinook moves in every direction between the three engines (and into
// its own engine) through the portable export: the same rows and exact
// decimals, the precision of the types, the indexes and foreign keys, the
// identity continuing above the highest id, and a report that names no
// index or foreign key as lost.
func TestImportChinookEveryDirection(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	setup(t)
	must(t, "init", "--repo", "repo")
	type names struct {
		tables                                                           []string
		invoice, total, track, trackID, price, genre, genreID, genreName string
	}
	pgNames := names{[]string{"album", "artist", "customer", "employee", "genre", "invoice", "invoice_line", "media_type", "playlist", "playlist_track", "track"},
		"invoice", "total", "track", "track_id", "unit_price", "genre", "genre_id", "name"}
	camel := names{[]string{"Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine", "MediaType", "Playlist", "PlaylistTrack", "Track"},
		"Invoice", "Total", "Track", "TrackId", "UnitPrice", "Genre", "GenreId", "Name"}
	for _, srcEng := range []string{"postgres", "mysql", "sqlite"} {
		src := chinookSource(t, srcEng, pg, my)
		n := camel
		if srcEng == "postgres" {
			n = pgNames
		}
		must(t, "backup", "--repo", "repo", "--tag", srcEng, src.dsn)
		archive := srcEng + ".tar.gz"
		must(t, "export", "--repo", "repo", "latest", "--source", src.dsn, "--format", "tar.gz", "-o", archive)
		// The source's own figures.
		want := map[string]string{}
		for _, tb := range n.tables {
			want["count "+tb] = src.text(t, "SELECT count(*) FROM "+src.q(tb))
		}
		want["sum"] = trimDecimal(src.text(t, "SELECT "+src.asText("SUM("+src.q(n.total)+")")+" FROM "+src.q(n.invoice)))
		want["price"] = trimDecimal(src.text(t, "SELECT "+src.asText(src.q(n.price))+" FROM "+src.q(n.track)+" WHERE "+src.q(n.trackID)+" = 1"))
		wantFK, wantIdx := src.foreignKeys(t), src.indexes(t)
		if wantFK != "11" || wantIdx != "11" {
			t.Fatalf("%s Chinook has %s foreign keys and %s indexes, want 11 and 11", srcEng, wantFK, wantIdx)
		}
		for _, dstEng := range []string{"postgres", "mysql", "sqlite"} {
			t.Run(srcEng+"_to_"+dstEng, func(t *testing.T) {
				dst := newTarget(t, dstEng, "chinook_"+srcEng+"_"+dstEng, pg, my)
				r := must(t, "import", archive, "--to", dst.dsn, "--json")
				var rep importReport
				if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
					t.Fatalf("import --json: %v\n%s", err, r.stdout)
				}
				if rep.Tables != 11 {
					t.Errorf("imported %d tables, want 11", rep.Tables)
				}
				for _, nc := range rep.NotCarried {
					if nc.Kind == "index" || nc.Kind == "foreign key" || nc.Kind == "default" || nc.Kind == "identity" {
						t.Errorf("reported as not carried: %+v", nc)
					}
				}
				for _, tb := range n.tables {
					if got := dst.text(t, "SELECT count(*) FROM "+dst.q(tb)); got != want["count "+tb] {
						t.Errorf("%s: %s rows, want %s", tb, got, want["count "+tb])
					}
				}
				if got := trimDecimal(dst.text(t, "SELECT "+dst.asText("SUM("+dst.q(n.total)+")")+" FROM "+dst.q(n.invoice))); got != want["sum"] {
					t.Errorf("SUM(%s) = %s, want %s", n.total, got, want["sum"])
				}
				if got := dst.text(t, "SELECT "+dst.asText(dst.q(n.price))+" FROM "+dst.q(n.track)+" WHERE "+dst.q(n.trackID)+" = 1"); got != want["price"] && trimDecimal(got) != want["price"] || strings.Count(got, "0") > 3 {
					t.Errorf("unit price of track 1 reads %q, want %s", got, want["price"])
				}
				// The declared precision reaches the target.
				switch dstEng {
				case "postgres":
					if got := dst.text(t, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`, `"public".`+dst.q(n.invoice), n.total); got != "numeric(10,2)" {
						t.Errorf("%s is %s, want numeric(10,2)", n.total, got)
					}
				case "mysql":
					if got := dst.text(t, `SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?`, n.invoice, n.total); got != "decimal(10,2)" {
						t.Errorf("%s is %s, want decimal(10,2)", n.total, got)
					}
				case "sqlite":
					if got := dst.text(t, `SELECT typeof(`+dst.q(n.total)+`) FROM `+dst.q(n.invoice)+` LIMIT 1`); got != "text" {
						t.Errorf("%s is stored as %s, want text", n.total, got)
					}
				}
				if got := dst.foreignKeys(t); got != wantFK {
					t.Errorf("%s foreign keys on the target, want %s", got, wantFK)
				}
				if got := dst.indexes(t); got != wantIdx {
					t.Errorf("%s secondary indexes on the target, want %s", got, wantIdx)
				}
				// SQLite's INTEGER PRIMARY KEY numbers new rows: so must the
				// copy.
				if srcEng == "sqlite" {
					max := dst.text(t, "SELECT max("+dst.q(n.genreID)+") FROM "+dst.q(n.genre))
					dst.exec(t, "INSERT INTO "+dst.q(n.genre)+" ("+dst.q(n.genreName)+") VALUES ('Added')")
					got := dst.text(t, "SELECT "+dst.asText(dst.q(n.genreID))+" FROM "+dst.q(n.genre)+" WHERE "+dst.q(n.genreName)+" = 'Added'")
					if got != fmt.Sprint(atoi(t, max)+1) {
						t.Errorf("new row got id %s, want %d", got, atoi(t, max)+1)
					}
				}
			})
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// An archive of the first portable format (schema.json a bare list of
// tables, PostgreSQL names qualified) still imports: public.film becomes
// film, and the report says what that format could not hold.
func TestImportFormat1Archive(t *testing.T) {
	dir := setup(t)
	f, err := os.Create(filepath.Join(dir, "old.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, m := range [][2]string{
		{"manifest.json", `{"id": "x", "engine": "postgres"}`},
		{"schema.json", `[{"name": "public.film", "columns": [{"name": "id", "type": "integer", "source_type": "integer", "nullable": false, "primary_key": true}, {"name": "price", "type": "numeric", "source_type": "numeric(4,2)", "nullable": true}]}]`},
		{"tables/public.film.jsonl", "[1,\"1.99\"]\n[2,null]\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := must(t, "import", "old.tar.gz", "--to", "sqlite:old.db")
	if !strings.Contains(r.stderr, "portable format 1") {
		t.Errorf("the report does not name the old format:\n%s", r.stderr)
	}
	db := openDB(t, "old.db")
	var price string
	if err := db.QueryRow(`SELECT price FROM film WHERE id = 1`).Scan(&price); err != nil || price != "1.99" {
		t.Errorf("film.price = %q, %v", price, err)
	}
}
