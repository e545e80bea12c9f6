package mysql

import (
	"database/sql"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/keeprows/keeprowstest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func keepServer(t *testing.T) *keeprowstest.Server {
	my := testsrv.MariaDB(t)
	return &keeprowstest.Server{
		Keeper: New(),
		NewDB: func(t *testing.T, name string) *dsn.DSN {
			return mustDSN(t, my.CreateDatabase(t, "keep_"+name))
		},
		Exec: func(t *testing.T, db *dsn.DSN, stmts ...string) {
			t.Helper()
			my.Exec(t, db.Database(), stmts...)
		},
		Int: func(t *testing.T, db *dsn.DSN, q string) int64 {
			t.Helper()
			c, err := sql.Open("mysql", my.DriverDSN(db.Database()))
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
			"CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, name VARCHAR(100)) ENGINE=InnoDB",
			"CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NULL, note VARCHAR(100), FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB",
			"CREATE TABLE order_lines (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL, sku VARCHAR(10), qty INT, FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB",
			"CREATE TABLE employees (id INT AUTO_INCREMENT PRIMARY KEY, manager_id INT NULL, name VARCHAR(100), FOREIGN KEY (manager_id) REFERENCES employees (id)) ENGINE=InnoDB",
			"CREATE TABLE tags (code VARCHAR(10) PRIMARY KEY, label VARCHAR(100)) ENGINE=InnoDB",
			"CREATE TABLE shipments (order_id BIGINT NOT NULL, seq INT NOT NULL, carrier VARCHAR(20), PRIMARY KEY (order_id, seq), FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB",
			"CREATE TABLE shipment_events (order_id BIGINT, seq INT, ev VARCHAR(20), FOREIGN KEY (order_id, seq) REFERENCES shipments (order_id, seq)) ENGINE=InnoDB",
		},
		Cycle: []string{
			"CREATE TABLE ca (id INT PRIMARY KEY, cb_id INT NULL) ENGINE=InnoDB",
			"CREATE TABLE cb (id INT PRIMARY KEY, ca_id INT NULL, FOREIGN KEY (ca_id) REFERENCES ca (id)) ENGINE=InnoDB",
			"ALTER TABLE ca ADD FOREIGN KEY (cb_id) REFERENCES cb (id)",
		},
		NoSuchColumn: "Unknown column",
	}
}

func TestKeepRows(t *testing.T) { keeprowstest.Run(t, keepServer(t)) }

func TestKeepRowsBulk(t *testing.T) { keeprowstest.Bulk(t, keepServer(t)) }
