// Package keeprowstest holds the keep_rows scenarios every engine's
// RowKeeper must pass, run by each engine's tests against a real server.
package keeprowstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// AtLeast is the key offset the scenarios use (the old tool's convention).
const AtLeast = 1_000_000_000

// Server is what an engine's test supplies.
type Server struct {
	Keeper engine.RowKeeper
	// NewDB creates an empty database beside the others (same server or
	// directory).
	NewDB func(t *testing.T, name string) *dsn.DSN
	Exec  func(t *testing.T, db *dsn.DSN, stmts ...string)
	Int   func(t *testing.T, db *dsn.DSN, query string) int64
	// Schema creates customers (id, email unique, name), orders (id,
	// customer_id nullable FK customers), order_lines (id, order_id NOT
	// NULL FK orders, sku, qty), employees (id, manager_id nullable FK
	// employees, name), tags (code text primary key, label), shipments
	// (order_id FK orders, seq, carrier; primary key (order_id, seq)) and
	// shipment_events (order_id, seq, ev; no key; FK (order_id, seq)
	// shipments), every id filled by the engine's sequences or
	// auto-increments.
	Schema []string
	// Cycle creates ca (id, cb_id FK cb, integer keys given) and cb (id,
	// ca_id FK ca): a foreign-key cycle of two tables, deferrable where
	// the engine needs that.
	Cycle []string
	// NoSuchColumn is the text the server's message about an unknown
	// column "no_such_col" holds.
	NoSuchColumn string
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// production fills a database with "production" rows (explicit keys),
// generation g adding rows of its own.
func (s *Server) production(t *testing.T, db *dsn.DSN, g int) {
	t.Helper()
	s.Exec(t, db,
		"INSERT INTO customers (id, email, name) VALUES (1, 'c1@prod', 'one'), (2, 'c2@prod', 'two'), (3, 'c3@prod', 'three')",
		"INSERT INTO orders (id, customer_id, note) VALUES (1, 1, 'o1'), (2, 2, 'o2'), (3, 3, 'o3')",
		"INSERT INTO order_lines (id, order_id, sku, qty) VALUES (1, 1, 'a', 1), (2, 1, 'b', 2), (3, 2, 'a', 1), (4, 3, 'c', 5)",
		"INSERT INTO employees (id, manager_id, name) VALUES (1, NULL, 'boss'), (2, 1, 'mid'), (3, 2, 'low')",
		"INSERT INTO tags (code, label) VALUES ('a', 'alpha'), ('b', 'beta')",
		"INSERT INTO shipments (order_id, seq, carrier) VALUES (1, 1, 'dhl')",
		"INSERT INTO shipment_events (order_id, seq, ev) VALUES (1, 1, 'sent')",
	)
	for i := 1; i <= g; i++ {
		id := 100 + i
		s.Exec(t, db,
			fmt.Sprintf("INSERT INTO customers (id, email, name) VALUES (%d, 'g%d@prod', 'gen')", id, i),
			fmt.Sprintf("INSERT INTO orders (id, customer_id, note) VALUES (%d, %d, 'gen')", id, id),
			fmt.Sprintf("INSERT INTO order_lines (id, order_id, sku, qty) VALUES (%d, %d, 'g', %d)", id, id, i),
		)
	}
}

func (s *Server) fresh(t *testing.T, name string, g int) *dsn.DSN {
	t.Helper()
	db := s.NewDB(t, name)
	s.Exec(t, db, s.Schema...)
	s.production(t, db, g)
	return db
}

// tester inserts, through the database's own sequences, a customer with
// an order of two lines, and an order of one line for production
// customer 3. tag makes emails unique.
func (s *Server) tester(t *testing.T, db *dsn.DSN, tag string) {
	t.Helper()
	email := "tester-" + tag + "@x"
	s.Exec(t, db,
		"INSERT INTO customers (email, name) VALUES ('"+email+"', 'tester')",
		"INSERT INTO orders (customer_id, note) SELECT id, 'tester "+tag+"' FROM customers WHERE email = '"+email+"'",
		"INSERT INTO order_lines (order_id, sku, qty) SELECT id, 'x', 1 FROM orders WHERE note = 'tester "+tag+"'",
		"INSERT INTO order_lines (order_id, sku, qty) SELECT id, 'y', 2 FROM orders WHERE note = 'tester "+tag+"'",
		"INSERT INTO shipments (order_id, seq, carrier) SELECT id, 1, 'post' FROM orders WHERE note = 'tester "+tag+"'",
		"INSERT INTO shipment_events (order_id, seq, ev) SELECT id, 1, 'sent' FROM orders WHERE note = 'tester "+tag+"'",
		"INSERT INTO orders (customer_id, note) VALUES (3, 'tester-prod "+tag+"')",
		"INSERT INTO order_lines (order_id, sku, qty) SELECT id, 'z', 3 FROM orders WHERE note = 'tester-prod "+tag+"'",
	)
}

// target is a database as testers left it: production rows, keys
// restarted at AtLeast, one tester's rows.
func (s *Server) target(t *testing.T) *dsn.DSN {
	t.Helper()
	db := s.fresh(t, "target", 0)
	if err := s.Keeper.RestartKeys(ctxT(t), db, AtLeast); err != nil {
		t.Fatal(err)
	}
	s.tester(t, db, "1")
	return db
}

func table(rep engine.KeepReport, name string) engine.KeptTable {
	for _, k := range rep.Tables {
		if k.Table == name || strings.HasSuffix(k.Table, "."+name) {
			return k
		}
	}
	return engine.KeptTable{}
}

func (s *Server) count(t *testing.T, db *dsn.DSN, table, where string) int64 {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	return s.Int(t, db, q)
}

// want is per table: matched, dependents, inserted.
type want map[string][3]int64

func check(t *testing.T, rep engine.KeepReport, w want) {
	t.Helper()
	for tbl, v := range w {
		k := table(rep, tbl)
		if got := [3]int64{k.Matched, k.Dependents, k.Inserted}; got != v {
			t.Errorf("%s: matched, dependents, inserted = %v, want %v (report %+v)", tbl, got, v, rep)
		}
	}
}

// Run runs every scenario.
func Run(t *testing.T, s *Server) {
	log := slog.New(slog.DiscardHandler)
	t.Run("Rules", func(t *testing.T) {
		cases := []struct {
			name    string
			rules   []engine.KeepRule
			want    want
			unkeyed []string
		}{
			{"key_at_least on customers brings orders and lines", []engine.KeepRule{{Table: "customers", KeyAtLeast: AtLeast}},
				want{"customers": {1, 0, 1}, "orders": {0, 1, 1}, "order_lines": {0, 2, 2}, "shipments": {0, 1, 1}, "shipment_events": {0, 1, 1}}, nil},
			{"key_at_least on every table", []engine.KeepRule{{Tables: "*", KeyAtLeast: AtLeast}},
				want{"customers": {1, 0, 1}, "orders": {2, 0, 2}, "order_lines": {3, 0, 3}, "shipments": {0, 1, 1}, "shipment_events": {0, 1, 1}},
				[]string{"shipment_events", "shipments", "tags"}},
			{"where", []engine.KeepRule{{Table: "customers", Where: "email LIKE 'tester%'"}},
				want{"customers": {1, 0, 1}, "orders": {0, 1, 1}, "order_lines": {0, 2, 2}}, nil},
			{"where with a subquery reads the target's tables", []engine.KeepRule{
				{Table: "customers", Where: "email LIKE 'tester%'"},
				{Table: "orders", Where: "customer_id IN (SELECT id FROM customers WHERE email LIKE 'tester%')"}},
				want{"customers": {1, 0, 1}, "orders": {1, 0, 1}, "order_lines": {0, 2, 2}}, nil},
			{"where and key on a glob", []engine.KeepRule{{Tables: "order*", KeyAtLeast: AtLeast, Where: "note IS NULL OR note LIKE 'tester-prod%'"}},
				// order_lines has no note column: the where fails there.
				nil, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := ctxT(t)
				from := s.target(t)
				to := s.fresh(t, "copy", 1)
				counted, err := s.Keeper.CountKept(ctx, from, c.rules)
				if c.want == nil {
					if !errors.Is(err, engine.ErrKeepRule) {
						t.Fatalf("CountKept: %v, want ErrKeepRule", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				before := s.count(t, from, "customers", "")
				rep, err := s.Keeper.KeepRows(ctx, from, to, c.rules, engine.KeepOptions{Logger: log})
				if err != nil {
					t.Fatal(err)
				}
				if after := s.count(t, from, "customers", ""); after != before {
					t.Errorf("KeepRows changed the current target: %d customers, had %d", after, before)
				}
				check(t, rep, c.want)
				for _, k := range rep.Tables {
					if c := table(counted, k.Table); c.Matched != k.Matched || c.Dependents != k.Dependents || c.Matched+c.Dependents != k.Inserted {
						t.Errorf("%s: CountKept %+v, KeepRows %+v", k.Table, c, k)
					}
				}
				if got := stripSchema(rep.Unkeyed); !slices.Equal(slices.Sorted(slices.Values(got)), c.unkeyed) {
					t.Errorf("unkeyed %v, want %v", rep.Unkeyed, c.unkeyed)
				}
				if n := s.count(t, to, "customers c JOIN orders o ON o.customer_id = c.id JOIN order_lines l ON l.order_id = o.id", "c.email = 'tester-1@x'"); n != 2 {
					t.Errorf("tester's lines joined in the copy: %d, want 2", n)
				}
				if n := s.count(t, to, "customers", "id = 101"); n != 1 {
					t.Errorf("production's new customer missing from the copy")
				}
				if n := s.count(t, to, "customers c JOIN orders o ON o.customer_id = c.id JOIN shipments s ON s.order_id = o.id JOIN shipment_events e ON e.order_id = s.order_id AND e.seq = s.seq", "c.email = 'tester-1@x'"); n != 1 {
					t.Errorf("tester's shipment event (composite foreign key) joined in the copy: %d, want 1", n)
				}
			})
		}
	})

	t.Run("LogsCountsNotValues", func(t *testing.T) {
		ctx := ctxT(t)
		from := s.target(t)
		to := s.fresh(t, "copy", 0)
		var buf bytes.Buffer
		debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if _, err := s.Keeper.KeepRows(ctx, from, to, []engine.KeepRule{{Table: "customers", KeyAtLeast: AtLeast}}, engine.KeepOptions{Logger: debug}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "customers") || !strings.Contains(out, "inserted=2") {
			t.Errorf("debug log lacks per-table counts:\n%s", out)
		}
		for _, v := range []string{"tester-1@x", "tester 1", "1000000000"} {
			if strings.Contains(out, v) {
				t.Errorf("debug log shows row value %q:\n%s", v, out)
			}
		}
	})

	t.Run("SelfReference", func(t *testing.T) {
		ctx := ctxT(t)
		from := s.target(t)
		s.Exec(t, from, "INSERT INTO employees (name) VALUES ('tboss')")
		s.Exec(t, from, "INSERT INTO employees (manager_id, name) SELECT id, 'tmid' FROM employees WHERE name = 'tboss'")
		s.Exec(t, from, "INSERT INTO employees (manager_id, name) SELECT id, 'tlow' FROM employees WHERE name = 'tmid'")
		to := s.fresh(t, "copy", 0)
		rules := []engine.KeepRule{{Table: "employees", Where: "name = 'tboss'"}}
		rep, err := s.Keeper.KeepRows(ctx, from, to, rules, engine.KeepOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, want{"employees": {1, 2, 3}})
		if n := s.count(t, to, "employees e JOIN employees m ON e.manager_id = m.id", "m.name = 'tmid' AND e.name = 'tlow'"); n != 1 {
			t.Errorf("self-referencing chain not kept: %d", n)
		}
	})

	t.Run("Cycle", func(t *testing.T) {
		ctx := ctxT(t)
		from := s.fresh(t, "target", 0)
		to := s.fresh(t, "copy", 0)
		s.Exec(t, from, s.Cycle...)
		s.Exec(t, to, s.Cycle...)
		s.Exec(t, from, "INSERT INTO ca (id, cb_id) VALUES (10, NULL)", "INSERT INTO cb (id, ca_id) VALUES (20, 10)", "UPDATE ca SET cb_id = 20 WHERE id = 10",
			"INSERT INTO ca (id, cb_id) VALUES (11, NULL)", "INSERT INTO cb (id, ca_id) VALUES (21, 11)")
		rules := []engine.KeepRule{{Table: "ca", Where: "id = 10"}}
		counted, err := s.Keeper.CountKept(ctx, from, rules)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.Keeper.KeepRows(ctx, from, to, rules, engine.KeepOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, rep, want{"ca": {1, 0, 1}, "cb": {0, 1, 1}})
		check(t, counted, want{"ca": {1, 0, 0}, "cb": {0, 1, 0}})
		if n := s.count(t, to, "ca JOIN cb ON cb.ca_id = ca.id AND ca.cb_id = cb.id", ""); n != 1 {
			t.Errorf("the cycle's rows joined in the copy: %d, want 1", n)
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		rules := []engine.KeepRule{{Table: "customers", Where: "id = 2"}}
		for _, mode := range []string{"", "fail", "skip", "overwrite"} {
			t.Run("mode="+mode, func(t *testing.T) {
				ctx := ctxT(t)
				from := s.target(t)
				s.Exec(t, from, "UPDATE customers SET name = 'changed' WHERE id = 2")
				to := s.fresh(t, "copy", 0)
				rep, err := s.Keeper.KeepRows(ctx, from, to, rules, engine.KeepOptions{OnConflict: mode})
				name := s.Int(t, to, "SELECT COUNT(*) FROM customers WHERE id = 2 AND name = 'changed'")
				switch mode {
				case "", "fail":
					if !errors.Is(err, engine.ErrKeepConflict) || !strings.Contains(err.Error(), "customers") || !strings.Contains(err.Error(), "id=2") {
						t.Fatalf("err %v, want ErrKeepConflict naming customers and id=2", err)
					}
					if name != 0 {
						t.Error("the refreshed row changed after a failed keep")
					}
				case "skip":
					if err != nil {
						t.Fatal(err)
					}
					if k := table(rep, "customers"); k.Skipped != 1 || k.Inserted != 0 || name != 0 {
						t.Errorf("skip: %+v, changed rows %d", k, name)
					}
				case "overwrite":
					if err != nil {
						t.Fatal(err)
					}
					if k := table(rep, "customers"); k.Overwritten != 1 || k.Inserted != 0 || name != 1 {
						t.Errorf("overwrite: %+v, changed rows %d", k, name)
					}
				}
				if n := s.count(t, to, "customers", ""); n != 3 {
					t.Errorf("customers in the copy: %d, want 3", n)
				}
			})
		}
		t.Run("unique key", func(t *testing.T) {
			ctx := ctxT(t)
			from := s.target(t)
			to := s.fresh(t, "copy", 0)
			s.Exec(t, to, "INSERT INTO customers (id, email, name) VALUES (50, 'tester-1@x', 'prod took the email')")
			_, err := s.Keeper.KeepRows(ctx, from, to, []engine.KeepRule{{Table: "customers", KeyAtLeast: AtLeast}}, engine.KeepOptions{})
			if !errors.Is(err, engine.ErrKeepConflict) || !strings.Contains(err.Error(), "email=tester-1@x") {
				t.Fatalf("err %v, want ErrKeepConflict naming the email", err)
			}
		})
	})

	t.Run("Orphans", func(t *testing.T) {
		// Production deleted customer 3: the tester's order for it is an
		// orphan, and its line depends on it.
		rules := []engine.KeepRule{{Tables: "*", KeyAtLeast: AtLeast}}
		for _, mode := range []string{"", "drop", "null", "fail"} {
			t.Run("mode="+mode, func(t *testing.T) {
				ctx := ctxT(t)
				from := s.target(t)
				to := s.fresh(t, "copy", 0)
				s.Exec(t, to, "DELETE FROM order_lines WHERE order_id = 3", "DELETE FROM orders WHERE customer_id = 3", "DELETE FROM customers WHERE id = 3")
				rep, err := s.Keeper.KeepRows(ctx, from, to, rules, engine.KeepOptions{Orphans: mode})
				switch mode {
				case "", "drop":
					if err != nil {
						t.Fatal(err)
					}
					o, l := table(rep, "orders"), table(rep, "order_lines")
					if o.OrphansDropped != 1 || o.Inserted != 1 || l.OrphansDropped != 1 || l.Inserted != 2 {
						t.Errorf("drop: orders %+v, lines %+v", o, l)
					}
				case "null":
					if err != nil {
						t.Fatal(err)
					}
					if o := table(rep, "orders"); o.OrphansNulled != 1 || o.Inserted != 2 {
						t.Errorf("null: orders %+v", o)
					}
					if n := s.count(t, to, "orders o JOIN order_lines l ON l.order_id = o.id", "o.customer_id IS NULL AND o.note LIKE 'tester-prod%'"); n != 1 {
						t.Errorf("nulled order with its line: %d, want 1", n)
					}
				case "fail":
					if !errors.Is(err, engine.ErrKeepOrphan) || !strings.Contains(err.Error(), "orders") || !strings.Contains(err.Error(), "customers") {
						t.Fatalf("err %v, want ErrKeepOrphan naming orders and customers", err)
					}
					if n := s.count(t, to, "orders", ""); n != 2 {
						t.Errorf("orders in the copy after a failed keep: %d, want 2", n)
					}
					// The tester's customer went in before the orphan
					// was found: the transaction took it back.
					if n := s.count(t, to, "customers", ""); n != 2 {
						t.Errorf("customers in the copy after a failed keep: %d, want 2", n)
					}
				}
			})
		}
		t.Run("null on a NOT NULL column", func(t *testing.T) {
			ctx := ctxT(t)
			from := s.target(t)
			to := s.fresh(t, "copy", 0)
			s.Exec(t, to, "DELETE FROM order_lines WHERE order_id = 3", "DELETE FROM orders WHERE id = 3")
			_, err := s.Keeper.KeepRows(ctx, from, to, []engine.KeepRule{{Table: "order_lines", Where: "order_id = 3"}}, engine.KeepOptions{Orphans: "null"})
			if !errors.Is(err, engine.ErrKeepOrphan) || !strings.Contains(err.Error(), "order_id") {
				t.Fatalf("err %v, want ErrKeepOrphan naming order_id", err)
			}
		})
	})

	t.Run("BadWhere", func(t *testing.T) {
		ctx := ctxT(t)
		from := s.target(t)
		to := s.fresh(t, "copy", 0)
		rules := []engine.KeepRule{{Table: "orders", Where: "no_such_col = 1"}}
		for _, run := range []func() error{
			func() error { _, err := s.Keeper.CountKept(ctx, from, rules); return err },
			func() error { _, err := s.Keeper.KeepRows(ctx, from, to, rules, engine.KeepOptions{}); return err },
		} {
			err := run()
			if !errors.Is(err, engine.ErrKeepRule) || !strings.Contains(err.Error(), "no_such_col = 1") || !strings.Contains(err.Error(), s.NoSuchColumn) {
				t.Errorf("err %v, want ErrKeepRule with the rule and %q", err, s.NoSuchColumn)
			}
		}
		for _, r := range []engine.KeepRule{
			{Table: "nope", Where: "1=1"},
			{Table: "orders", Tables: "*", Where: "1=1"},
			{Table: "orders"},
			{Where: "1=1"},
			{Tables: "[", KeyAtLeast: 1},
		} {
			_, err := s.Keeper.CountKept(ctx, from, []engine.KeepRule{r})
			if !errors.Is(err, engine.ErrKeepRule) {
				t.Errorf("rule %+v: %v, want ErrKeepRule", r, err)
			}
		}
	})

	t.Run("ThreeRefreshes", func(t *testing.T) {
		ctx := ctxT(t)
		rules := []engine.KeepRule{{Tables: "*", KeyAtLeast: AtLeast}}
		target := s.fresh(t, "target", 0)
		if err := s.Keeper.RestartKeys(ctx, target, AtLeast); err != nil {
			t.Fatal(err)
		}
		for round := 1; round <= 3; round++ {
			s.tester(t, target, fmt.Sprint(round))
			counted, err := s.Keeper.CountKept(ctx, target, rules)
			if err != nil {
				t.Fatal(err)
			}
			next := s.fresh(t, "copy", round)
			rep, err := s.Keeper.KeepRows(ctx, target, next, rules, engine.KeepOptions{})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if err := s.Keeper.RestartKeys(ctx, next, AtLeast); err != nil {
				t.Fatal(err)
			}
			check(t, rep, want{"customers": {int64(round), 0, int64(round)}, "orders": {2 * int64(round), 0, 2 * int64(round)}, "order_lines": {3 * int64(round), 0, 3 * int64(round)}})
			for _, k := range rep.Tables {
				if c := table(counted, k.Table); c.Matched+c.Dependents != k.Inserted {
					t.Errorf("round %d %s: counted %+v, kept %+v", round, k.Table, c, k)
				}
			}
			target = next // the swap
			for r := 1; r <= round; r++ {
				if n := s.count(t, target, "customers c JOIN orders o ON o.customer_id = c.id JOIN order_lines l ON l.order_id = o.id", fmt.Sprintf("c.email = 'tester-%d@x'", r)); n != 2 {
					t.Errorf("round %d: tester %d's lines joined: %d, want 2", round, r, n)
				}
				if n := s.count(t, target, "customers c JOIN orders o ON o.customer_id = c.id JOIN order_lines l ON l.order_id = o.id", fmt.Sprintf("c.id = 3 AND o.note = 'tester-prod %d'", r)); n != 1 {
					t.Errorf("round %d: tester %d's order for a production customer: %d, want 1", round, r, n)
				}
			}
			if n := s.count(t, target, "customers", fmt.Sprintf("id = %d", 100+round)); n != 1 {
				t.Errorf("round %d: production's new customer missing", round)
			}
		}
		// Keys restart above the kept rows: the next insert lands at or
		// above AtLeast and above every key in use.
		maxID := s.Int(t, target, "SELECT MAX(id) FROM customers")
		s.Exec(t, target, "INSERT INTO customers (email, name) VALUES ('after@x', 'after')")
		id := s.Int(t, target, "SELECT id FROM customers WHERE email = 'after@x'")
		if id < AtLeast || id <= maxID {
			t.Errorf("next customer id %d, want >= %d and > %d", id, AtLeast, maxID)
		}
	})

	t.Run("RestartKeysEmpty", func(t *testing.T) {
		ctx := ctxT(t)
		db := s.fresh(t, "copy", 0)
		if err := s.Keeper.RestartKeys(ctx, db, AtLeast); err != nil {
			t.Fatal(err)
		}
		s.Exec(t, db, "INSERT INTO orders (customer_id, note) VALUES (1, 'new')", "INSERT INTO order_lines (order_id, sku, qty) VALUES (1, 'n', 1)")
		for _, tbl := range []string{"orders", "order_lines"} {
			if id := s.Int(t, db, "SELECT MAX(id) FROM "+tbl); id < AtLeast {
				t.Errorf("%s: next id %d, want >= %d", tbl, id, AtLeast)
			}
		}
	})
}

func stripSchema(names []string) []string {
	var out []string
	for _, n := range names {
		if i := strings.LastIndexByte(n, '.'); i >= 0 {
			n = n[i+1:]
		}
		out = append(out, n)
	}
	return out
}

// Bulk measures keeping 10,000 rows across three tables (2,000 customers,
// 4,000 orders, 4,000 lines) and logs the time; the pipeline's bar is 2 s.
func Bulk(t *testing.T, s *Server) time.Duration {
	ctx := ctxT(t)
	from := s.fresh(t, "bulk", 0)
	var stmts []string
	add := func(prefix string, n int, row func(i int) string) {
		for i := 0; i < n; i += 500 {
			var vals []string
			for j := i; j < min(n, i+500); j++ {
				vals = append(vals, row(j))
			}
			stmts = append(stmts, prefix+strings.Join(vals, ", "))
		}
	}
	add("INSERT INTO customers (id, email, name) VALUES ", 2000, func(i int) string {
		return fmt.Sprintf("(%d, 'bulk%d@x', 'bulk')", AtLeast+i, i)
	})
	add("INSERT INTO orders (id, customer_id, note) VALUES ", 4000, func(i int) string {
		return fmt.Sprintf("(%d, %d, 'bulk')", AtLeast+i, AtLeast+i/2)
	})
	add("INSERT INTO order_lines (id, order_id, sku, qty) VALUES ", 4000, func(i int) string {
		return fmt.Sprintf("(%d, %d, 'b', %d)", AtLeast+i, AtLeast+i, i)
	})
	s.Exec(t, from, stmts...)
	to := s.fresh(t, "bulkcopy", 0)
	start := time.Now()
	rep, err := s.Keeper.KeepRows(ctx, from, to, []engine.KeepRule{{Table: "customers", KeyAtLeast: AtLeast}}, engine.KeepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Keeper.RestartKeys(ctx, to, AtLeast); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	check(t, rep, want{"customers": {2000, 0, 2000}, "orders": {0, 4000, 4000}, "order_lines": {0, 4000, 4000}})
	t.Logf("kept 10,000 rows across three tables (KeepRows + RestartKeys) in %v", d)
	return d
}
