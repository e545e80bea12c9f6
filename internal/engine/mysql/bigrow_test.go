package mysql

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// bigRowsDB makes a table whose rows of more than bigRowLen bytes (every
// byte value in a blob, tabs and newlines in a text, NULLs, a bit column)
// sit between small ones.
func bigRowsDB(t *testing.T, my *testsrv.My) *dsn.DSN {
	t.Helper()
	name, d := newDB(t, my, "bigrows")
	my.Exec(t, name, "CREATE TABLE big (id int PRIMARY KEY, b longblob, s longtext, f bit(5), n int)")
	db, err := sql.Open("mysql", my.DriverDSN(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blob := make([]byte, bigRowLen+12345)
	for i := range blob {
		blob[i] = byte(i*7 + i>>9)
	}
	text := strings.Repeat("tab\there, newline\nthere, backslash \\ and é. ", (bigRowLen+99)/44)
	for _, r := range []struct {
		id   int
		b, s any
		n    any
	}{
		{1, []byte("small\t\\N"), "x", 1},
		{2, blob, text, nil},
		{3, nil, "\\N", 3},
		{4, blob[:bigRowLen+1], nil, 4},
		{5, []byte{}, text, nil},
		{6, []byte("last"), "", 6},
	} {
		if _, err := db.Exec("INSERT INTO big VALUES (?, ?, ?, b'10101', ?)", r.id, r.b, r.s, r.n); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestBigRowsRoundTrip(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := bigRowsDB(t, my)
	mem, res := backup(t, e, src, 2)
	restoreAndCompare(t, e, my, mem, res, src, "bigrows_r", engine.RestoreOptions{})
}

// A row whose value is larger than the target server's max_allowed_packet
// is refused with a message naming the setting, instead of a LOAD DATA
// whose time grows with the square of the value's size.
func TestBigRowNeedsMaxAllowedPacket(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	src := bigRowsDB(t, my)
	mem, _ := backup(t, e, src, 1)
	// The restore's sessions start with 2 MiB packets.
	my.Exec(t, "", "SET GLOBAL max_allowed_packet = 2097152")
	t.Cleanup(func() { my.Exec(t, "", "SET GLOBAL max_allowed_packet = DEFAULT") })
	target := mustDSN(t, my.DSN("bigrows_small_packets"))
	err := e.Restore(ctxT(t), mem, target, engine.RestoreOptions{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "max_allowed_packet (2 MiB)") || !strings.Contains(err.Error(), "SET GLOBAL max_allowed_packet = ") {
		t.Fatalf("restore of a %d MiB value into a server with 2 MiB packets: %v, want a refusal naming max_allowed_packet", bigRowLen>>20, err)
	}
}
