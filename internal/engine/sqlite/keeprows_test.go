package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/keeprows/keeprowstest"
)

var keepSeq atomic.Int64

func keepServer(t *testing.T) *keeprowstest.Server {
	dir := t.TempDir()
	return &keeprowstest.Server{
		Keeper: New(),
		NewDB: func(t *testing.T, name string) *dsn.DSN {
			return mustDSN(t, filepath.Join(dir, fmt.Sprintf("%s_%d.db", name, keepSeq.Add(1))))
		},
		Exec: func(t *testing.T, db *dsn.DSN, stmts ...string) {
			t.Helper()
			execAll(t, db.Path, stmts...)
		},
		Int: func(t *testing.T, db *dsn.DSN, q string) int64 {
			t.Helper()
			c, err := sql.Open("sqlite", db.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var n sql.NullInt64
			if err := c.QueryRow(q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n.Int64
		},
		Schema: []string{
			`CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`,
			`CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER REFERENCES customers, note TEXT)`,
			`CREATE TABLE order_lines (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL REFERENCES orders(id), sku TEXT, qty INTEGER)`,
			`CREATE TABLE employees (id INTEGER PRIMARY KEY, manager_id INTEGER REFERENCES employees(id), name TEXT)`,
			`CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)`,
			`CREATE TABLE shipments (order_id INTEGER NOT NULL REFERENCES orders(id), seq INTEGER NOT NULL, carrier TEXT, PRIMARY KEY (order_id, seq))`,
			`CREATE TABLE shipment_events (order_id INTEGER, seq INTEGER, ev TEXT, FOREIGN KEY (order_id, seq) REFERENCES shipments (order_id, seq))`,
		},
		Cycle: []string{
			`CREATE TABLE ca (id INTEGER PRIMARY KEY, cb_id INTEGER REFERENCES cb(id))`,
			`CREATE TABLE cb (id INTEGER PRIMARY KEY, ca_id INTEGER REFERENCES ca(id))`,
		},
		NoSuchColumn: "no such column",
	}
}

func TestKeepRows(t *testing.T) { keeprowstest.Run(t, keepServer(t)) }

func TestKeepRowsBulk(t *testing.T) { keeprowstest.Bulk(t, keepServer(t)) }
