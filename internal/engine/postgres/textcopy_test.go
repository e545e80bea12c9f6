package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// printedCols are the columns of edgeTable whose types have a printer.
const printedCols = "n b i2 i4 i8 o num money t vc ch nm j jb by u d ts tz m s tm"

// printBinary runs a binary COPY through textRows, feeding it in pieces of
// the given sizes (cycled; 0 means all at once).
func printBinary(t *testing.T, bin []byte, printers []printerMaker, pieces ...int) []byte {
	t.Helper()
	var out bytes.Buffer
	tr := newTextRows(&out, printers)
	for i := 0; len(bin) > 0; i++ {
		n := len(bin)
		if len(pieces) > 0 && pieces[i%len(pieces)] > 0 {
			n = min(n, pieces[i%len(pieces)])
		}
		if _, err := tr.Write(bin[:n]); err != nil {
			t.Fatalf("print: %v", err)
		}
		bin = bin[n:]
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("print: %v", err)
	}
	return out.Bytes()
}

// sameText fails with the first difference between the printed and the
// server's text.
func sameText(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("%s: line %d differs from the server's COPY text:\ngot  %q\nwant %q", what, i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("%s: %d lines printed, the server's text has %d", what, len(gl), len(wl))
}

// TestTextRowsMatchServer prints the server's COPY binary of every edge
// value, and of thousands of random ones, and compares the text byte for
// byte with the server's own COPY text.
func TestTextRowsMatchServer(t *testing.T) {
	pg := testsrv.Postgres(t)
	d := newDB(t, pg, "text_copy")
	exec1(t, d, edgeTable)
	exec1(t, d, `CREATE TABLE sweep (n int, f8 float8, f4 real, num numeric, d date, ts timestamp, tz timestamptz,
  tm time, t text, by bytea, u uuid, jb jsonb)`)
	ctx := context.Background()
	c, err := connect(ctx, d, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.PgConn().CopyFrom(ctx, strings.NewReader(sweepRows(5000)), "COPY sweep FROM STDIN"); err != nil {
		t.Fatalf("load the random values: %v", err)
	}
	copyOut := copyOutOf(t, c)
	types, err := columnTypes(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ table, cols string }{
		{"edge", printedCols},
		{"sweep", "n num d ts tz tm t by u jb"},
	} {
		ti := publicTable(tc.table, tc.cols)
		printers := textPrinters(ti, types[ti.Name])
		if printers == nil {
			t.Fatalf("%s: no printers for a table of types that all have one", tc.table)
		}
		q := "COPY (SELECT " + strings.ReplaceAll(tc.cols, " ", ", ") + " FROM " + tc.table + " ORDER BY n) TO STDOUT"
		want := copyOut(q)
		bin := copyOut(q + " (FORMAT binary)")
		sameText(t, tc.table, printBinary(t, bin, printers), want)
		// Rows split across writes at every position.
		sameText(t, tc.table+" in small writes", printBinary(t, bin, printers, 1, 7, 3, 19, 2, 64), want)
	}
}

// sweepRows returns n lines of COPY text of random values for the sweep
// table, the same on every run: floats from random bits, numerics of
// random digits and scales, dates and times across the eras, text and
// bytes with every control character.
func sweepRows(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := range n {
		f8 := math.Float64frombits(r.Uint64())
		if math.IsNaN(f8) || r.IntN(4) == 0 {
			f8 = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20))
		}
		f4 := math.Float32frombits(r.Uint32())
		if f4 != f4 || r.IntN(4) == 0 {
			f4 = float32((r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(16)-8)))
		}
		var num strings.Builder
		if r.IntN(2) == 0 {
			num.WriteByte('-')
		}
		for range 1 + r.IntN(25) {
			num.WriteByte(byte('0' + r.IntN(10)))
		}
		if scale := r.IntN(30); scale > 0 {
			num.WriteByte('.')
			for range scale {
				num.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		year := 1 + r.IntN(9999)
		if r.IntN(10) == 0 {
			year = 10000 + r.IntN(280000)
		}
		era := ""
		if r.IntN(8) == 0 {
			year, era = 1+r.IntN(4713), " BC"
		}
		date := fmt.Sprintf("%04d-%02d-%02d", year, 1+r.IntN(12), 1+r.IntN(28))
		if era != "" && year == 4713 {
			date = "4713-12-31"
		}
		clock := fmt.Sprintf("%02d:%02d:%02d", r.IntN(24), r.IntN(60), r.IntN(60))
		if r.IntN(2) == 0 {
			clock += "." + strconv.Itoa(r.IntN(1000000))
		}
		var text []byte
		for range r.IntN(40) {
			c := byte(r.IntN(128))
			if c == 0 {
				c = 'x'
			}
			text = append(text, c)
		}
		if r.IntN(3) == 0 {
			text = utf8.AppendRune(text, rune(0x80+r.IntN(0x10000-0x80)))
			if !utf8.Valid(text) || bytes.ContainsRune(text, utf8.RuneError) {
				text = []byte("é😀")
			}
		}
		raw := make([]byte, r.IntN(20))
		for j := range raw {
			raw[j] = byte(r.IntN(256))
		}
		uuid := make([]byte, 16)
		for j := range uuid {
			uuid[j] = byte(r.IntN(256))
		}
		jb := fmt.Sprintf(`{"k%d": [%d, "%s", %s]}`, r.IntN(100), r.IntN(1000), strings.Repeat("é\\\\t", r.IntN(3)), strconv.FormatFloat(r.Float64(), 'g', -1, 64))
		fields := []string{
			strconv.Itoa(i),
			strconv.FormatFloat(f8, 'g', -1, 64),
			strconv.FormatFloat(float64(f4), 'g', -1, 32),
			num.String(),
			date + era,
			date + " " + clock + era,
			date + " " + clock + "+00" + era,
			clock,
			string(appendEscapedCopy(nil, text)),
			`\\x` + fmt.Sprintf("%x", raw),
			fmt.Sprintf("%x-%x-%x-%x-%x", uuid[:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:]),
			string(appendEscapedCopy(nil, []byte(jb))),
		}
		for j := 1; j < len(fields); j++ {
			if r.IntN(20) == 0 {
				fields[j] = `\N`
			}
		}
		b.WriteString(strings.Join(fields, "\t"))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestTextPrintersChooseTables(t *testing.T) {
	ts := colType{oid: oidTimestamptz, typtype: 'b'}
	i8 := colType{oid: oidInt8, typtype: 'b'}
	num := colType{oid: oidNumeric, typtype: 'b'}
	arr := colType{oid: 1009, typtype: 'b', elemOID: oidText, elemType: 'b'} // text[]
	iv := colType{oid: oidInterval, typtype: 'b'}
	dom := colType{oid: 90000, typtype: 'd', baseOID: oidDate, baseType: 'b'}
	enum := colType{oid: 90001, typtype: 'e'}
	comp := colType{oid: 90002, typtype: 'c'}
	for _, tc := range []struct {
		name  string
		table *tableInfo
		types map[string]colType
		want  bool
	}{
		{"a timestamp and an integer", tableWith("id", "at"), map[string]colType{"id": i8, "at": ts}, true},
		{"a domain over date and an enum", tableWith("d", "e"), map[string]colType{"d": dom, "e": enum}, true},
		{"integers and numerics only: about the same cost to the server", tableWith("id", "n"), map[string]colType{"id": i8, "n": num}, false},
		{"an array beside a timestamp: arrays are read as text", tableWith("at", "tags"), map[string]colType{"at": ts, "tags": arr}, false},
		{"an interval beside a timestamp", tableWith("at", "iv"), map[string]colType{"at": ts, "iv": iv}, false},
		{"a composite type", tableWith("at", "c"), map[string]colType{"at": ts, "c": comp}, false},
		{"a column the catalog does not list", tableWith("at", "gone"), map[string]colType{"at": ts}, false},
		{"a float beside a timestamp: floats are read as text", tableWith("at", "f"), map[string]colType{"at": ts, "f": {oid: oidFloat8, typtype: 'b'}}, false},
		{"no columns", tableWith(), map[string]colType{}, false},
	} {
		got := textPrinters(tc.table, tc.types) != nil
		if got != tc.want {
			t.Errorf("%s: printers chosen %v, want %v", tc.name, got, tc.want)
		}
	}
}

// binaryStream builds a COPY binary stream of rows of int8 fields (nil for
// NULL).
func binaryStream(rows ...[]*int64) []byte {
	b := append([]byte(nil), binaryHeader...)
	for _, row := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(row)))
		for _, v := range row {
			if v == nil {
				b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(*v))
		}
	}
	return append(b, 0xff, 0xff)
}

func makers(ps ...fieldPrinter) []printerMaker {
	var ms []printerMaker
	for _, p := range ps {
		ms = append(ms, stateless(p))
	}
	return ms
}

func TestTextRowsRefuse(t *testing.T) {
	one, two := int64(1), int64(-2)
	ints := makers(printInt(8), printInt(8))
	good := binaryStream([]*int64{&one, nil}, []*int64{&two, &one})
	if got := printBinary(t, good, ints, 3); string(got) != "1\t\\N\n-2\t1\n" {
		t.Fatalf("printed %q", got)
	}
	for _, tc := range []struct {
		name, stream, want string
		printers           []printerMaker
	}{
		{"no trailer", string(good[:len(good)-2]), "without its trailer", ints},
		{"cut inside a row", string(good[:len(good)-5]), "without its trailer", ints},
		{"bytes after the trailer", string(good) + "\x00", "after its trailer", ints},
		{"another signature", "PGCOPY\n\xff\r\n\x01" + string(good[11:]), "signature", ints},
		{"three fields for two columns", string(binaryStream([]*int64{&one, &one, &one})), "has 3 fields, want 2", ints},
		{"an int4 of 8 bytes", string(good), "row 1, column 1: an integer of 8 bytes, want 4", makers(printInt(4), printInt(8))},
		{"a jsonb of version 8", string(good), "row 1, column 1: a jsonb value of an unknown binary version", makers(printJSONB, printInt(8))},
	} {
		var out bytes.Buffer
		tr := newTextRows(&out, tc.printers)
		_, err := tr.Write([]byte(tc.stream))
		if err == nil {
			err = tr.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", tc.name, err, tc.want)
		}
	}
}

func TestAppendEscapedCopy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain text, long enough for a word or two", "plain text, long enough for a word or two"},
		{"tab\there", `tab\there`},
		{"12345678\\", `12345678\\`},
		{"\b\f\n\r\t\v\\", `\b\f\n\r\t\v\\`},
		{"\x01\x1f\x7f é😀", "\x01\x1f\x7f é😀"},
		{"abcdefgh\nabcdefgh\tabcdefg", `abcdefgh\nabcdefgh\tabcdefg`},
		{"\xff\xfe\x80\x9f\xa0 high bytes only\x00", "\xff\xfe\x80\x9f\xa0 high bytes only\x00"},
	} {
		if got := string(appendEscapedCopy([]byte("x"), []byte(tc.in))); got != "x"+tc.want {
			t.Errorf("appendEscapedCopy(%q) = %q, want %q", tc.in, got[1:], tc.want)
		}
		// The escapes undo.
		if back := string(appendUnescaped(nil, []byte(tc.want))); back != tc.in {
			t.Errorf("unescape(%q) = %q, want %q", tc.want, back, tc.in)
		}
	}
}

// TestBinaryAndTextBackupsAreTheSame backs up the edge values and the rich
// schema once reading in COPY binary and once as text: the streams must be
// the same bytes, so a repository filled before either way deduplicates.
func TestBinaryAndTextBackupsAreTheSame(t *testing.T) {
	pg := testsrv.Postgres(t)
	for _, src := range []*struct {
		name string
		load func() *dsn.DSN
	}{
		{"edge values", func() *dsn.DSN {
			d := newDB(t, pg, "text_copy_backup")
			exec1(t, d, edgeTable+"CREATE TABLE printed AS SELECT "+strings.ReplaceAll(printedCols, " ", ", ")+
				" FROM edge; ALTER TABLE printed ADD PRIMARY KEY (n);"+
				"CREATE TABLE sweep (n int PRIMARY KEY, f8 float8, f4 real, num numeric, d date, ts timestamp,"+
				" tz timestamptz, tm time, t text, by bytea, u uuid, jb jsonb);"+
				"CREATE TABLE sweep_printed AS SELECT n, num, d, ts, tz, tm, t, by, u, jb FROM sweep;"+
				"ALTER TABLE sweep_printed ADD PRIMARY KEY (n)")
			c, err := connect(context.Background(), d, false)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, err := c.PgConn().CopyFrom(context.Background(), strings.NewReader(sweepRows(3000)), "COPY sweep FROM STDIN"); err != nil {
				t.Fatalf("load the random values: %v", err)
			}
			exec1(t, d, "INSERT INTO sweep_printed SELECT n, num, d, ts, tz, tm, t, by, u, jb FROM sweep")
			return d
		}},
		{"rich schema", func() *dsn.DSN { return loadRich(t, pg) }},
	} {
		d := src.load()
		e := New()
		e.SplitThreshold = 8192
		mb, rb := backupMemWith(t, e, d, engine.BackupOptions{Jobs: 2})
		mt, rt := backupMemWith(t, e, d, engine.BackupOptions{Jobs: 2, TextCopy: true})
		if n, _ := strconv.Atoi(rb.Meta["copy_binary_tables"]); n == 0 {
			t.Errorf("%s: no table read in binary", src.name)
		}
		if rt.Meta["copy_binary_tables"] != "0" {
			t.Errorf("%s: --text-copy read %s tables in binary", src.name, rt.Meta["copy_binary_tables"])
		}
		sameStreams(t, mb, mt)
	}
}

// TestPrintersRefuse: a binary value a printer cannot have received from
// the server is an error naming what is wrong, never printed as something.
func TestPrintersRefuse(t *testing.T) {
	numeric := func(ndigits, weight, sign, dscale uint16, digits ...uint16) []byte {
		b := binary.BigEndian.AppendUint16(nil, ndigits)
		b = binary.BigEndian.AppendUint16(b, weight)
		b = binary.BigEndian.AppendUint16(b, sign)
		b = binary.BigEndian.AppendUint16(b, dscale)
		for _, d := range digits {
			b = binary.BigEndian.AppendUint16(b, d)
		}
		return b
	}
	u64 := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	for _, tc := range []struct {
		name    string
		printer fieldPrinter
		value   []byte
		want    string
	}{
		{"a bool of two bytes", printBool, []byte{1, 0}, "a bool of 2 bytes"},
		{"an oid of two bytes", printOID, []byte{1, 0}, "an oid of 2 bytes"},
		{"a uuid of 15 bytes", printUUID, make([]byte, 15), "a uuid of 15 bytes"},
		{"a numeric header cut short", printNumeric, []byte{0, 1, 0}, "a numeric of 3 bytes"},
		{"a numeric with fewer digits than it says", printNumeric, numeric(2, 0, 0, 0, 1), "a numeric of 10 bytes with 2 digits"},
		{"a numeric of an unknown sign", printNumeric, numeric(1, 0, 0x8000, 0, 1), "a numeric with sign 0x8000"},
		{"a numeric digit above 9999", printNumeric, numeric(1, 0, 0, 0, 10000), "a numeric digit of 10000"},
		{"a date of eight bytes", printDate, make([]byte, 8), "a date of 8 bytes"},
		{"a time before midnight", printTime, u64(-1), "a time of -1 microseconds"},
		{"a time after the end of the day", printTime, u64(usPerDay + 1), "a time of 86400000001 microseconds"},
		{"a timestamp of four bytes", printTimestamp(false), make([]byte, 4), "a timestamp of 4 bytes"},
		{"a timestamp before the Julian period", printTimestamp(true), u64(-postgresEpochJDate*usPerDay - usPerDay), "a timestamp out of range"},
	} {
		if got, err := tc.printer([]byte("x"), tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: printed %q, error %v; want an error saying %q", tc.name, got, err, tc.want)
		}
	}
}
