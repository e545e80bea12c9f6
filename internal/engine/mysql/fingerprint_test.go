package mysql

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/testsrv"
)

// The binary log position is the cheap change signal: it stays put while
// nothing is written, moves with every write (DML and DDL), and is unknown
// ("") when the binary log is off or when the server is a replica that does
// not log what it replicates (its own binary log would miss those writes).
func TestFingerprint(t *testing.T) {
	ctx := ctxT(t)
	e := New()
	fp := func(t *testing.T, raw string) string {
		t.Helper()
		s, err := e.Fingerprint(ctx, mustDSN(t, raw))
		if err != nil {
			t.Fatalf("Fingerprint: %v", err)
		}
		return s
	}

	primary := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{ServerID: 1, LogBin: true})
	primary.Exec(t, "", "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT)", "CREATE DATABASE other")
	src := primary.DSN("shop")
	fp1 := fp(t, src)
	if fp1 == "" {
		t.Fatal("no fingerprint with the binary log on")
	}
	if fp2 := fp(t, src); fp2 != fp1 {
		t.Fatalf("fingerprint moved without writes: %q -> %q", fp1, fp2)
	}
	// A backup reads but does not write.
	m1, _ := backup(t, e, mustDSN(t, src), 2)
	if fp2 := fp(t, src); fp2 != fp1 {
		t.Fatalf("fingerprint moved by a backup: %q -> %q", fp1, fp2)
	}
	last := fp1
	for _, stmt := range []string{
		"INSERT INTO shop.orders (v) VALUES (1)",
		"UPDATE shop.orders SET v = 2",
		"ALTER TABLE shop.orders ADD COLUMN note TEXT",
		"DELETE FROM shop.orders",
	} {
		primary.Exec(t, "", stmt)
		now := fp(t, src)
		if now == last {
			t.Errorf("fingerprint did not move after %s", stmt)
		}
		last = now
	}

	// Writes to another database move the position, but the backup's own
	// streams stay byte-identical, so the data comparison can still skip.
	primary.Exec(t, "", "CREATE TABLE other.t (x INT)", "INSERT INTO other.t VALUES (1)")
	primary.Exec(t, "", "INSERT INTO shop.orders (v) VALUES (1)")
	m2, _ := backup(t, e, mustDSN(t, src), 2)
	primary.Exec(t, "", "INSERT INTO other.t VALUES (2)")
	m3, _ := backup(t, e, mustDSN(t, src), 2)
	for _, st := range m3.Manifest().Streams {
		if !bytes.Equal(m2.Bytes(st.Name), m3.Bytes(st.Name)) {
			t.Errorf("stream %s changed with a write to another database", st.Name)
		}
	}
	if bytes.Equal(m1.Bytes("meta/database"), nil) {
		t.Error("no meta/database stream")
	}

	// Binary log off: unknown.
	if s := fp(t, testsrv.MariaDB(t).DSN("")); s != "" {
		t.Errorf("fingerprint %q with the binary log off", s)
	}

	// A replica with its own binary log but without log_slave_updates
	// would not see replicated writes in it: unknown. With
	// log_slave_updates it follows the replicated writes.
	for _, logUpdates := range []bool{false, true} {
		t.Run(fmt.Sprintf("replica_log_slave_updates=%v", logUpdates), func(t *testing.T) {
			opts := testsrv.MariaDBOptions{ServerID: 2, LogBin: true}
			if logUpdates {
				opts.Args = []string{"--log-slave-updates=1"}
			}
			replica := testsrv.NewMariaDB(t, opts)
			replica.Exec(t, "", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos",
				primary.Port, primary.User, primary.Password), "START SLAVE")
			rsrc := replica.DSN("")
			waitReplicated := func(n int) {
				deadline := time.Now().Add(60 * time.Second)
				for {
					db, err := open(ctx, mustDSN(t, rsrc), nil)
					if err != nil {
						t.Fatal(err)
					}
					var got int
					err = db.QueryRowContext(ctx, "SELECT count(*) FROM shop.orders").Scan(&got)
					db.Close()
					if err == nil && got == n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("replica did not reach %d rows: %v", n, err)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			var n int
			db, err := open(ctx, mustDSN(t, src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM shop.orders").Scan(&n); err != nil {
				t.Fatal(err)
			}
			db.Close()
			waitReplicated(n)
			before := fp(t, rsrc)
			if !logUpdates {
				if before != "" {
					t.Fatalf("fingerprint %q on a replica without log_slave_updates", before)
				}
				return
			}
			if before == "" {
				t.Fatal("no fingerprint on a replica with log_slave_updates")
			}
			primary.Exec(t, "", "INSERT INTO shop.orders (v) VALUES (9)")
			waitReplicated(n + 1)
			if after := fp(t, rsrc); after == before {
				t.Errorf("replica fingerprint did not move after a replicated write: %q", after)
			}
		})
	}
}
