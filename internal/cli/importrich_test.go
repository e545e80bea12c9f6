package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// The rich PostgreSQL schema (several schemas, a partitioned table,
// identity and serial columns, numeric(12,2), a unique constraint, a
// deferrable foreign key, expression and GIN indexes, views, a trigger, an
// enum, a domain, arrays, a generated column) imported into every engine:
// names mapped by the documented rule, the partitioned table as one, the
// precision, unique index, foreign key, defaults and identity carried, and
// everything else named in the report.
func TestImportRichPostgres(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	setup(t)
	src := pg.CreateDatabase(t, "richsrc")
	cmd := exec.Command(filepath.Join(pg.BinDir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", src, "-f", filepath.Join(repoRoot(t), "internal/engine/postgres/testdata/rich.sql"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load rich.sql: %v\n%s", err, out)
	}
	srcX := openX(t, "postgres", src, pg, my)
	// Amounts with 17 significant digits: a REAL holds 15.
	srcX.exec(t, `CREATE TABLE app.ledger (id int PRIMARY KEY, amount numeric(20,2) NOT NULL)`)
	srcX.exec(t, `INSERT INTO app.ledger SELECT i, 123456789012345.67 + i * 0.01 FROM generate_series(1, 500) i`)
	wantSum := srcX.text(t, `SELECT sum(amount)::text FROM app.ledger`)
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", src)
	must(t, "export", "--repo", "repo", "latest", "--format", "tar.gz", "-o", "rich.tar.gz")

	type names struct{ users, events, orders, ledger, weird string }
	for _, tc := range []struct {
		engine string
		n      names
		report []string // kind: object substrings the report must hold
	}{
		{"mysql", names{"app_users", "app_events", "Mixed Schema_OrderItems", "app_ledger", "weird name.with dot"},
			[]string{"index: users_name_idx", "index: events_payload_idx", "view: app.user_names", "materialized view: app.user_counts",
				"order_items_touch", "column type: tags text[]", "column type: mood app.mood", "generated column: name_len",
				"foreign key: OrderItems_user_id_fkey", "identity: ticket", "value: ratio", "function: app.touch()", "type: app.mood"}},
		{"sqlite", names{"app_users", "app_events", "Mixed Schema_OrderItems", "app_ledger", "weird name.with dot"},
			[]string{"index: users_name_idx", "view: app.user_names", "identity: id", "identity: ticket", "column type: tags text[]"}},
		{"postgres", names{"app.users", "app.events", `"Mixed Schema"."OrderItems"`, "app.ledger", `public."weird name.with dot"`},
			[]string{"index: users_name_idx", "index: events_payload_idx", "view: app.user_names", "order_items_touch"}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			dst := newTarget(t, tc.engine, "rich_"+tc.engine, pg, my)
			r := must(t, "import", "rich.tar.gz", "--to", dst.dsn, "--json")
			var rep importReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("import --json: %v\n%s", err, r.stdout)
			}
			if rep.Tables != 7 { // users, OrderItems, events (one table), nopk, empty, weird, ledger
				t.Errorf("imported %d tables, want 7: %s", rep.Tables, r.stdout)
			}
			var got []string
			for _, nc := range rep.NotCarried {
				got = append(got, nc.Kind+": "+nc.Object)
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.report {
				if !strings.Contains(all, w) {
					t.Errorf("the report lacks %q; it holds:\n%s", w, all)
				}
			}
			if strings.Contains(all, "Email") || strings.Contains(all, "users_Email_key") {
				t.Errorf("the unique constraint is reported as not carried:\n%s", all)
			}
			q := func(name string) string {
				if tc.engine == "postgres" {
					return name // already quoted and qualified
				}
				return dst.q(name)
			}
			// Names: one table for the partitioned one, no partitions.
			var tables string
			switch tc.engine {
			case "mysql":
				tables = dst.text(t, `SELECT group_concat(table_name ORDER BY table_name SEPARATOR ',') FROM information_schema.tables WHERE table_schema = DATABASE()`)
			case "sqlite":
				tables = dst.text(t, `SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)`)
			case "postgres":
				tables = dst.text(t, `SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`)
			}
			if strings.Contains(tables, "2023") || strings.Contains(tables, "public.film") || strings.Contains(tables, "app.users") && tc.engine != "postgres" {
				t.Errorf("tables on the target: %s", tables)
			}
			if got := dst.text(t, "SELECT count(*) FROM "+q(tc.n.events)); got != "300" {
				t.Errorf("%s holds %s rows, want the 300 of its partitions (tables: %s)", tc.n.events, got, tables)
			}
			if got := dst.text(t, "SELECT "+dst.asText("balance")+" FROM "+q(tc.n.users)+" WHERE id = 3"); got != "99999999.99" {
				t.Errorf("numeric(12,2) 99999999.99 reads back as %q", got)
			}
			if got := dst.text(t, "SELECT "+dst.asText("balance")+" FROM "+q(tc.n.users)+" WHERE id = 1"); got != "12.50" && !(tc.engine == "sqlite" && got == "12.5") {
				t.Errorf("numeric(12,2) 12.50 reads back as %q", got)
			}
			users := tc.n.users
			if tc.engine == "postgres" {
				users = "app.users"
			}
			if !dst.uniqueIndexOn(t, users, "Email") {
				t.Errorf("no unique index on %s.Email", users)
			}
			if got := dst.foreignKeys(t); got != "1" {
				t.Errorf("%s foreign keys, want 1", got)
			}
			// Identity continues; constant defaults are there (created is
			// NOT NULL with DEFAULT now()).
			dst.exec(t, "INSERT INTO "+q(tc.n.users)+" (name) VALUES ('New')")
			if got := dst.text(t, "SELECT "+dst.asText("id")+" FROM "+q(tc.n.users)+" WHERE name = 'New'"); got != "5" {
				t.Errorf("new user got id %s, want 5", got)
			}
			if got := dst.text(t, "SELECT "+dst.asText("balance")+" FROM "+q(tc.n.users)+" WHERE name = 'New'"); trimDecimal(got) != "0" {
				t.Errorf("balance default: %q, want 0", got)
			}
			if tc.engine != "sqlite" { // composite key: SQLite has no counter for it (reported)
				dst.exec(t, "INSERT INTO "+q(tc.n.events)+" (at) VALUES ('2024-06-01 00:00:00')")
				if got := dst.text(t, "SELECT "+dst.asText("max(id)")+" FROM "+q(tc.n.events)); got != "301" {
					t.Errorf("new event got id %s, want 301", got)
				}
			}
			// Exact decimals: the values read back sum to the source's sum.
			if got := exactSum(t, dst, "SELECT "+dst.asText("amount")+" FROM "+q(tc.n.ledger)); got != wantSum {
				t.Errorf("sum of the imported amounts = %s, want %s", got, wantSum)
			}
		})
	}
	// SQLite with --sqlite-decimal real: floating point, as asked; the sum
	// drifts (which is why text is the default).
	t.Run("sqlite_real", func(t *testing.T) {
		dst := newTarget(t, "sqlite", "rich_real", pg, my)
		r := must(t, "import", "rich.tar.gz", "--to", dst.dsn, "--sqlite-decimal", "real")
		t.Logf("import stderr:\n%s", r.stderr)
		if !strings.Contains(r.stderr, "not carried over") || !strings.Contains(r.stderr, "users_name_idx") {
			t.Errorf("the report on stderr lacks the expression index:\n%s", r.stderr)
		}
		if got := dst.text(t, `SELECT typeof(amount) FROM app_ledger LIMIT 1`); got != "real" {
			t.Errorf("amount stored as %s with --sqlite-decimal real", got)
		}
		if got := exactSum(t, dst, `SELECT CAST(amount AS TEXT) FROM app_ledger`); got == wantSum {
			t.Errorf("REAL amounts sum exactly to %s: the text default proves nothing", got)
		}
	})
	if r := snap(t, "import", "rich.tar.gz", "--to", "sqlite:x.db", "--sqlite-decimal", "float"); r.code != 2 {
		t.Errorf("--sqlite-decimal float: %s", r)
	}
}

// exactSum adds the decimal texts a query returns, exactly.
func exactSum(t *testing.T, x xdb, query string) string {
	t.Helper()
	var texts []string
	if x.pgc != nil {
		rows, err := x.pgc.Query(t.Context(), query)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, s)
		}
		rows.Close()
	} else {
		rows, err := x.db.Query(query)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, s)
		}
		rows.Close()
	}
	sum := new(big.Rat)
	for _, s := range texts {
		v, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("not a number: %q", s)
		}
		sum.Add(sum, v)
	}
	return sum.FloatString(2)
}

// The rich MySQL/MariaDB schema imported into PostgreSQL and SQLite:
// DECIMAL(20,6) stays exact with its precision, the unique and secondary
// keys and the foreign key are there, AUTO_INCREMENT continues from the
// table's counter (parent starts at 100), and the views, routines,
// triggers, event, sequence, generated columns and ENUM/SET columns are in
// the report.
func TestImportRichMySQL(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	setup(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "internal/engine/mysql/testdata/rich.sql"))
	if err != nil {
		t.Fatal(err)
	}
	d := my.CreateDatabase(t, "richmy")
	src := openX(t, "mysql", d, pg, my)
	cmd := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", my.Host,
		"-P", fmt.Sprint(my.Port), "-u", my.User, mysqlName(d))
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+my.Password)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load rich.sql: %v\n%s", err, out)
	}
	// MariaDB's TIME spans ±838 hours; PostgreSQL's time does not (a
	// value it refuses is an import error, not a silent loss).
	src.exec(t, "UPDATE rich SET tm = NULL WHERE tm < '00:00:00' OR tm >= '24:00:00'")
	wantAmount := src.text(t, "SELECT CAST(amount AS CHAR) FROM rich WHERE fixed = 'k1'")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", d)
	must(t, "export", "--repo", "repo", "latest", "--format", "tar.gz", "-o", "richmy.tar.gz")
	for _, eng := range []string{"postgres", "sqlite"} {
		t.Run(eng, func(t *testing.T) {
			dst := newTarget(t, eng, "richmy_"+eng, pg, my)
			r := must(t, "import", "richmy.tar.gz", "--to", dst.dsn, "--json")
			var rep importReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("import --json: %v\n%s", err, r.stdout)
			}
			var got []string
			for _, nc := range rep.NotCarried {
				got = append(got, nc.Kind+": "+nc.Object)
			}
			all := strings.Join(got, "\n")
			for _, w := range []string{"view: z_base", "view: a_top", "trigger: rich_bi", "procedure: add_parent", "function: twice",
				"event: ev_cleanup", "sequence: seq_orders", "generated column: name_upper", "column type: e enum('a','b','c')", "column type: s set('x','y')"} {
				if !strings.Contains(all, w) {
					t.Errorf("the report lacks %q; it holds:\n%s", w, all)
				}
			}
			for _, k := range []string{"index: idx_name", "index: uq_fixed", "foreign key: fk_rich_parent"} {
				if strings.Contains(all, k) {
					t.Errorf("reported as not carried: %s", k)
				}
			}
			if got := dst.text(t, "SELECT "+dst.asText("amount")+" FROM "+dst.q("rich")+" WHERE fixed = 'k1'"); got != wantAmount {
				t.Errorf("DECIMAL(20,6) %s reads back as %s", wantAmount, got)
			}
			if eng == "postgres" {
				if got := dst.text(t, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.rich'::regclass AND attname = 'amount'`); got != "numeric(20,6)" {
					t.Errorf("amount is %s", got)
				}
			}
			if !dst.uniqueIndexOn(t, "rich", "fixed") {
				t.Error("no unique index on rich.fixed")
			}
			if got := dst.foreignKeys(t); got != "1" {
				t.Errorf("%s foreign keys, want 1", got)
			}
			dst.exec(t, "INSERT INTO "+dst.q("parent")+" (label) VALUES ('three')")
			if got := dst.text(t, "SELECT "+dst.asText("id")+" FROM "+dst.q("parent")+" WHERE label = 'three'"); got != "102" {
				t.Errorf("new parent got id %s, want 102 (the source's AUTO_INCREMENT counter)", got)
			}
		})
	}
}
