package mysql

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/rowsum"
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

// A row written in pieces has the bytes and the checksum of the same row
// encoded whole, in both checksum formats.
func TestBigRowWriterMatchesAppendRow(t *testing.T) {
	blob := make([]byte, 3*bigPieceIn+17)
	for i := range blob {
		blob[i] = byte(i*7 + i>>9)
	}
	row := [][]byte{[]byte("1"), nil, blob, []byte("a\tb\\c\n"), {}, blob[:bigPieceIn]}
	for _, algo := range []rowsum.Algo{rowsum.XXH3, rowsum.SHA256} {
		want, got := rowsum.New(algo), rowsum.New(algo)
		whole := appendRow(nil, row)
		want.AddRow(whole)
		var out []byte
		n, err := newBigRowWriter(algo).write(row, &got, func(b []byte) error {
			out = append(out, b...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, whole) || n != int64(len(whole)) {
			t.Fatalf("%v: pieces differ from the whole row (%d bytes, %d counted, want %d)", algo, len(out), n, len(whole))
		}
		if got.String() != want.String() || got.Rows != 1 {
			t.Fatalf("%v: checksum %s (%d rows), want %s", algo, got.String(), got.Rows, want.String())
		}
	}
}

// The splitter hands every row shorter than bigRowLen to LOAD DATA and
// stops before each longer one, whatever the read sizes.
func TestRowSplitterStopsBeforeBigRows(t *testing.T) {
	big := strings.Repeat("x", bigRowLen) + "\t\\N\n"
	var in strings.Builder
	want := []string{}
	small := ""
	for i := 0; i < 3000; i++ {
		small += fmt.Sprintf("%d\tsmall\n", i)
	}
	for _, part := range []string{small, big, big, small, big, "1\tlast without newline"} {
		in.WriteString(part)
		want = append(want, part)
	}
	for _, size := range []int{1, 7, 16 << 10, 1 << 20} {
		s := newRowSplitter(strings.NewReader(in.String()))
		var got []string
		for {
			var load bytes.Buffer
			buf := make([]byte, size)
			for {
				n, err := s.Read(buf)
				load.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if load.Len() > 0 {
				got = append(got, load.String())
			}
			if !s.big {
				break
			}
			var fields []string
			for {
				var f []byte
				end, null, err := s.readField(func(b []byte) error { f = append(f, b...); return nil })
				if err != nil {
					t.Fatal(err)
				}
				if null {
					fields = append(fields, "\\N")
				} else {
					fields = append(fields, string(f))
				}
				if end {
					break
				}
			}
			got = append(got, strings.Join(fields, "\t")+"\n")
			s.big = false
		}
		if len(got) != len(want) {
			t.Fatalf("read size %d: %d parts, want %d", size, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("read size %d: part %d differs (%d bytes, want %d)", size, i, len(got[i]), len(want[i]))
			}
		}
		if s.n != 3000*2 { // rows ended by a newline, as the streams always are
			t.Errorf("read size %d: %d rows passed to LOAD DATA, want %d", size, s.n, 3000*2)
		}
	}
}
