package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// refreshDB is one engine's side of the acceptance-refresh test.
type refreshDB struct {
	schema []string
	src    tdb
	srcDSN string
	tgtDSN string
	allow  string
}

// tdb is a test session: database/sql (MariaDB, SQLite) or pgx.
type tdb interface {
	exec(q string) (int64, error) // the last insert id where the driver has one
	one(q string) (int64, error)
	Close() error
}

type sqlDB struct{ *sql.DB }

func (d sqlDB) exec(q string) (int64, error) {
	res, err := d.Exec(q)
	if err != nil {
		return 0, err
	}
	id, _ := res.LastInsertId()
	return id, nil
}

func (d sqlDB) one(q string) (int64, error) {
	var n int64
	err := d.QueryRow(q).Scan(&n)
	return n, err
}

type pgDB struct{ *pgx.Conn }

func (d pgDB) exec(q string) (int64, error) {
	_, err := d.Exec(context.Background(), q)
	return 0, err
}

func (d pgDB) one(q string) (int64, error) {
	var n int64
	err := d.QueryRow(context.Background(), q).Scan(&n)
	return n, err
}

func (d pgDB) Close() error { return d.Conn.Close(context.Background()) }

func execAll(t *testing.T, db tdb, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func one(t *testing.T, db tdb, q string) int64 {
	t.Helper()
	n, err := db.one(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// insertID inserts a row through the database's own key generator and
// returns its key.
func insertID(t *testing.T, db tdb, engine, q string) int64 {
	t.Helper()
	if engine == "postgres" {
		return one(t, db, q+" RETURNING id")
	}
	id, err := db.exec(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return id
}

// The nightly acceptance refresh, three times in a row on each engine:
// between refreshes production gains rows and a tester inserts rows
// through the target's own keys (with dependents); after each refresh
// production's rows and every tester row are there and join. A tester
// order whose production customer is gone is dropped (orphans: drop), and
// a kept row colliding with a refreshed one fails the refresh (on_conflict:
// fail, the target unchanged) or is skipped (on_conflict: skip).
func TestCloneAcceptanceRefresh(t *testing.T) {
	pg := testsrv.Postgres(t)
	my := testsrv.MariaDB(t)
	for _, engine := range []string{"postgres", "mysql", "sqlite"} {
		t.Run(engine, func(t *testing.T) {
			dir := setup(t)
			var r refreshDB
			switch engine {
			case "postgres":
				r.srcDSN, r.tgtDSN = pg.CreateDatabase(t, "prod"), pg.DSN("acc_refresh")
				r.allow = fmt.Sprintf("postgres://*@127.0.0.1:%d/acc_*", pg.Port)
				r.schema = []string{
					"CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL)",
					"CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), created_by text NOT NULL, total int NOT NULL)",
					"CREATE TABLE order_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id), item text NOT NULL)",
				}
			case "mysql":
				r.srcDSN, r.tgtDSN = my.CreateDatabase(t, "prod"), my.DSN("acc_refresh")
				r.allow = fmt.Sprintf("mysql://*@127.0.0.1:%d/acc_*", my.Port)
				r.schema = []string{
					"CREATE TABLE customers (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL) ENGINE=InnoDB",
					"CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id BIGINT NOT NULL, created_by VARCHAR(100) NOT NULL, total INT NOT NULL, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB",
					"CREATE TABLE order_lines (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL, item VARCHAR(100) NOT NULL, FOREIGN KEY (order_id) REFERENCES orders(id)) ENGINE=InnoDB",
				}
			default:
				r.srcDSN, r.tgtDSN = "sqlite:"+filepath.Join(dir, "prod.db"), "sqlite:"+filepath.Join(dir, "acc.db")
				r.allow = "sqlite:./acc.db"
				r.schema = []string{
					"CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)",
					"CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER NOT NULL REFERENCES customers(id), created_by TEXT NOT NULL, total INTEGER NOT NULL)",
					"CREATE TABLE order_lines (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL REFERENCES orders(id), item TEXT NOT NULL)",
				}
			}
			open := func(d string) tdb {
				t.Helper()
				p := mustParse(t, d)
				switch engine {
				case "postgres":
					c, err := pgx.Connect(context.Background(), d)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close(context.Background()) })
					return pgDB{c}
				case "mysql":
					db, err := sql.Open("mysql", my.DriverDSN(p.Database()))
					if err != nil {
						t.Fatal(err)
					}
					db.SetMaxOpenConns(1)
					t.Cleanup(func() { db.Close() })
					return sqlDB{db}
				}
				return sqlDB{openDB(t, p.Path)}
			}
			r.src = open(r.srcDSN)
			execAll(t, r.src, r.schema...)
			execAll(t, r.src,
				"INSERT INTO customers (name) VALUES ('p1'), ('p2'), ('p3')",
				"INSERT INTO orders (customer_id, created_by, total) VALUES (1, 'prod', 10), (2, 'prod', 20), (3, 'prod', 30)",
				"INSERT INTO order_lines (order_id, item) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
			conf := func(onConflict string) {
				writeConfig(t, fmt.Sprintf(`
repositories:
  main: { url: ./repo }
sources:
  prod: { dsn: "%s" }
clones:
  acc:
    from: { source: prod }
    repository: main
    to: "%s"
    allow: ["%s"]
    keep_rows:
      - { table: orders, where: "created_by LIKE 'tester%%'" }
      - { tables: "*", key_at_least: 1000000000 }
    key_offset: 1000000000
    orphans: drop
    on_conflict: %s
`, r.srcDSN, r.tgtDSN, r.allow, onConflict))
			}
			conf("fail")
			must(t, "init", "--repo", "main")
			testerOrders, testerLines, testerCustomers := int64(0), int64(0), int64(0)
			for round := 1; round <= 3; round++ {
				res := must(t, "clone", "acc", "--json")
				var out struct {
					Kept *struct {
						Tables []struct {
							Table          string `json:"table"`
							Inserted       int64  `json:"inserted"`
							OrphansDropped int64  `json:"orphans_dropped"`
						} `json:"tables"`
					} `json:"kept"`
				}
				if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
					t.Fatalf("round %d: %v\n%s", round, err, res.stdout)
				}
				tgt := open(r.tgtDSN)
				// Production's rows, all of them.
				for _, tb := range []string{"customers", "orders", "order_lines"} {
					want := one(t, r.src, "SELECT count(*) FROM "+tb)
					got := one(t, tgt, "SELECT count(*) FROM "+tb+" WHERE id < 1000000000")
					if got != want {
						t.Fatalf("round %d: %s: %d production rows on the target, want %d", round, tb, got, want)
					}
				}
				// Every tester row, joined to its parents.
				if got := one(t, tgt, "SELECT count(*) FROM orders WHERE created_by LIKE 'tester%'"); got != testerOrders {
					t.Fatalf("round %d: %d tester orders, want %d (%s)", round, got, testerOrders, res.stdout)
				}
				if got := one(t, tgt, "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN customers c ON c.id = o.customer_id WHERE o.created_by LIKE 'tester%'"); got != testerLines {
					t.Fatalf("round %d: %d tester order lines that join, want %d", round, got, testerLines)
				}
				if got := one(t, tgt, "SELECT count(*) FROM customers WHERE id >= 1000000000"); got != testerCustomers {
					t.Fatalf("round %d: %d tester customers, want %d", round, got, testerCustomers)
				}
				if round == 3 {
					dropped := int64(0)
					if out.Kept != nil {
						for _, k := range out.Kept.Tables {
							dropped += k.OrphansDropped
						}
					}
					if dropped == 0 {
						t.Errorf("round 3: no orphan reported dropped: %s", res.stdout)
					}
					tgt.Close()
					break
				}
				// A tester works on acceptance, through its own keys.
				c := insertID(t, tgt, engine, fmt.Sprintf("INSERT INTO customers (name) VALUES ('tester customer %d')", round))
				if c < 1000000000 {
					t.Fatalf("round %d: a new customer on the target got key %d, below key_offset", round, c)
				}
				o1 := insertID(t, tgt, engine, fmt.Sprintf("INSERT INTO orders (customer_id, created_by, total) VALUES (%d, 'tester1', %d)", c, round))
				o2 := insertID(t, tgt, engine, fmt.Sprintf("INSERT INTO orders (customer_id, created_by, total) VALUES (%d, 'tester2', %d)", round, round))
				execAll(t, tgt, fmt.Sprintf("INSERT INTO order_lines (order_id, item) VALUES (%d, 'x'), (%d, 'y'), (%d, 'z')", o1, o1, o2))
				testerCustomers++
				testerOrders += 2
				testerLines += 3
				// Production moves on.
				execAll(t, r.src, fmt.Sprintf("INSERT INTO customers (name) VALUES ('p new %d')", round))
				execAll(t, r.src, fmt.Sprintf("INSERT INTO orders (customer_id, created_by, total) VALUES (1, 'prod', %d)", 100+round))
				if round == 2 {
					// Production deletes customer 2: the tester order of
					// round 2 on it is an orphan (dropped with its line).
					execAll(t, r.src, "DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE customer_id = 2)",
						"DELETE FROM orders WHERE customer_id = 2", "DELETE FROM customers WHERE id = 2")
					testerOrders--
					testerLines--
				}
				tgt.Close()
			}
			// A kept row colliding with a refreshed one.
			tgt := open(r.tgtDSN)
			execAll(t, tgt, "INSERT INTO orders (id, customer_id, created_by, total) VALUES (500, 1, 'tester9', 1)")
			tgt.Close()
			execAll(t, r.src, "INSERT INTO orders (id, customer_id, created_by, total) VALUES (500, 1, 'prod', 2)")
			before, err := state(t, r.tgtDSN)
			if err != nil {
				t.Fatal(err)
			}
			res := snap(t, "clone", "acc")
			if res.code != ExitFailure || !strings.Contains(res.stderr, "orders") {
				t.Errorf("a conflicting kept row with on_conflict: fail: %s", res)
			}
			if now, _ := state(t, r.tgtDSN); now != before {
				t.Error("the failed refresh changed the target")
			}
			conf("skip")
			must(t, "clone", "acc")
			tgt = open(r.tgtDSN)
			if got := one(t, tgt, "SELECT count(*) FROM orders WHERE id = 500 AND created_by = 'prod'"); got != 1 {
				t.Errorf("on_conflict: skip: the refreshed row 500 is not there")
			}
		})
	}
}
