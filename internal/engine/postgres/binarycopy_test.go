package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// edgeTable has a column of every type with a codec, and rows of the values
// at the edges of each: ranges, eras, infinities, NaN, escapes, NULL.
const edgeTable = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN stamp AS timestamptz CHECK (VALUE > '1000-01-01 BC');
CREATE TABLE edge (
  n int, b bool, i2 smallint, i4 integer, i8 bigint, o oid, f8 double precision,
  num numeric, money numeric(12,2), t text, vc varchar(20), ch char(4), nm name,
  j json, jb jsonb, by bytea, u uuid, d date, ts timestamp, tz timestamptz,
  m mood, s stamp, tm time);
INSERT INTO edge VALUES
 (1, true, -32768, -2147483648, -9223372036854775808, 0, 0, 0, 0, '', '', '', '',
  '{}', '{}', '\x', '00000000-0000-0000-0000-000000000000', '2000-01-01', '2000-01-01', '2000-01-01 00:00+00', 'sad', '2000-01-01', '00:00:00'),
 (2, false, 32767, 2147483647, 9223372036854775807, 4294967295, '-0', -0.00, -1234567890.99,
  E'tab\there\nnew\\back \\N NULL é😀', 'NULL', 'a', 'Mixed Name',
  '{"a": [1, 2,  3], "b" : "x\ty"}', '{"b": [true, null], "a": 1.50}', '\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '4713-01-01 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', 'happy', '0044-03-15 12:00:00 BC', '24:00:00'),
 (3, NULL, NULL, NULL, NULL, NULL, 'NaN', 'NaN', NULL, E'\\N', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, '5874897-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', NULL, NULL, '23:59:59.999999'),
 (4, true, 0, 0, 0, 1, 'Infinity', 'Infinity', 0.5, E'\\\\x41 \\t', 'x', 'abcd', 'n',
  '[]', '[]', '\x5c', NULL, 'infinity', 'infinity', 'infinity', 'ok', 'infinity', '12:34:56.5'),
 (5, false, 1, 1, 1, 2, '-Infinity', '-Infinity', -0.01, 'z', 'y', 'ab', 'm',
  'null', '"s"', NULL, NULL, '-infinity', '-infinity', '-infinity', NULL, '2024-06-01 12:00:00.5+05:30', '00:00:00.000001'),
 (6, true, -1, -1, -1, 3, 1e308, -98765432109876543210.01234567890123456789, 99.9, 'b', 'c', 'd', 'e',
  '1', '1', NULL, NULL, '0001-01-01', '1969-12-31 23:59:59.5', '1969-12-31 23:59:59.000001-08', NULL, '1901-12-13 20:45:52+00', NULL),
 (7, false, 2, 2, 2, 4, 5e-324, 0.0001, 1, 'c', 'd', 'e', 'f',
  '2', '2', NULL, NULL, '0001-12-31 BC', '2000-02-29 12:34:56.123', '2024-02-29 23:59:59.9+14', NULL, '0001-01-01 00:00:00+00 BC', '01:02:03.04'),
 (8, true, 3, 3, 3, 5, 0.1, 100000000, 10000, E'\b\f\v\r\x01', 'e', 'f', 'g',
  '3', '3', NULL, NULL, '1999-12-31', '1999-12-31 23:59:59.999999', '2038-01-19 03:14:08+00', NULL, NULL, NULL),
 (9, false, 4, 4, 4, 6, 1.2345678901234567e-05, 0.00000000000000000001, 0.1, 'e', 'f', 'g', 'h',
  '4', '4', NULL, NULL, '10000-01-01', '10000-01-01 00:00:00', '10000-01-01 00:00:00+00', NULL, NULL, NULL),
 (10, true, 5, 5, 5, 7, -2.5e-300, 12345678.9, -0.5, repeat('long ', 70000), 'g', 'h', 'i',
  '5', '5', decode(repeat('00ff', 100), 'hex'), NULL, '1900-02-28', '1900-03-01 00:00:00', '1582-10-10 00:00:00+00', NULL, NULL, NULL);
INSERT INTO edge (n, by) SELECT 11, decode(string_agg(lpad(to_hex(i), 2, '0'), ''), 'hex') FROM generate_series(0, 255) i;
ALTER TABLE edge ADD COLUMN f4 real;
UPDATE edge SET f4 = (ARRAY['0', '-0', 'NaN', 'Infinity', '-Infinity', '3.4028235e38', '1e-45', '0.1',
  '1.1754944e-38', '-2.5', '16777217', '1.0000001'])[n]::real;
ALTER TABLE edge ADD COLUMN ttz timetz;
UPDATE edge SET ttz = (ARRAY['00:00:00+00', '12:34:56.5+05:30', '23:59:59.999999-14:59', '24:00:00+00', '01:02:03-08',
  '12:00:00+15:59:59', '12:00:00-15:59:59', '00:00:00.000001+00:00:01', '10:00:00-00:30', NULL, '06:07:08.09+01'])[n]::timetz;
ALTER TABLE edge ADD COLUMN ip inet, ADD COLUMN net cidr;
UPDATE edge SET ip = (ARRAY['192.168.1.5', '192.168.1.5/24', '10.0.0.0/8', '::1', '2001:db8::1/64', '::ffff:1.2.3.4',
  '0.0.0.0/0', '::/0', 'fe80::1', '255.255.255.255', NULL])[n]::inet,
  net = (ARRAY['10.0.0.0/8', '192.168.1.0/24', '2001:db8::/32', '0.0.0.0/0', '1.2.3.4/32', '::ffff:1.2.3.0/120',
  '::/0', '10.1.2.3', '2001:db8:0:0:0:0:0:1/128', NULL, '172.16.0.0/12'])[n]::cidr;
CREATE TABLE edge_copy (LIKE edge);
CREATE TABLE arr (n int, ia int[], ta text[], tza timestamptz[], na numeric[], ma mood[], ba bool[], ua uuid[], da date[], iv interval);
INSERT INTO arr VALUES
 (1, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '0'),
 (2, '{1,NULL,3}', E'{"a,b","c\\"d","NULL",NULL,"","x y","back\\\\slash","{}","tab\there",é😀}',
  '{"2024-01-01 10:00:00+00","4713-01-01 00:00:00+00 BC",infinity,NULL}', '{1.50,-0.001,NaN,1e20}', '{sad,happy}', '{t,f,NULL}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{2000-02-29,-infinity}', '1 year 2 mons 3 days 04:05:06.789'),
 (3, '{{1,2},{3,4},{5,6}}', '{{a,b},{c,NULL}}', NULL, '{{{1}},{{2}}}', NULL, NULL, NULL, NULL, '-1 years -2 mons +3 days -04:05:06'),
 (4, '[0:1]={5,6}', '[-2:-1]={x,y}', NULL, '[3:3][1:2]={{7,8}}', NULL, NULL, NULL, NULL, '1000 hours -0.000001 seconds'),
 (5, NULL, '{NULL}', '{NULL,NULL}', NULL, '{}', NULL, NULL, NULL, '1 mon -1 days'),
 (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-00:00:00.000001'),
 (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-178000000 years'),
 (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2 days'),
 (9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-2147483648 days -2562047788 hours');
ALTER TABLE arr ADD COLUMN fa real[];
ALTER TABLE arr ADD COLUMN ipa inet[], ADD COLUMN sa stamp[];
UPDATE arr SET sa = '{"2024-06-01 12:00:00.5+05:30",NULL,infinity}' WHERE n = 3;
UPDATE arr SET fa = '{1.5,NaN,-Infinity,NULL,-0,7e-45}', ipa = '{1.2.3.4,::1/64,NULL,10.0.0.0/8}' WHERE n = 2;
CREATE TABLE arr_copy (LIKE arr);
`

// copyOutOf returns a function that runs a COPY … TO STDOUT on c and
// returns what it wrote.
func copyOutOf(t *testing.T, c *pgx.Conn) func(sql string) []byte {
	return func(sql string) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := c.PgConn().CopyTo(context.Background(), &b, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return b.Bytes()
	}
}

// TestBinaryRowsMatchServer converts the COPY text of every edge value with
// the codecs and compares the result byte for byte with the server's own
// COPY binary output; the converted stream then loads, and the loaded table
// reads back the same text.
func TestBinaryRowsMatchServer(t *testing.T) {
	pg := testsrv.Postgres(t)
	d := newDB(t, pg, "binary_copy")
	exec1(t, d, edgeTable)
	ctx := context.Background()
	c, err := connect(ctx, d, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	copyOut := copyOutOf(t, c)
	types, err := columnTypes(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ table, cols string }{
		{"edge", "n b i2 i4 i8 o f8 num money t vc ch nm j jb by u d ts tz m s tm f4 ttz ip net"},
		{"arr", "n ia ta tza na ma ba ua da iv fa ipa sa"},
	} {
		ti := publicTable(tc.table, tc.cols)
		codecs := binaryCodecs(ti, types[ti.Name])
		if codecs == nil {
			t.Fatalf("%s: no codecs for a table of types that all have one", tc.table)
		}
		text := copyOut("COPY " + tc.table + " TO STDOUT")
		want := copyOut("COPY " + tc.table + " TO STDOUT (FORMAT binary)")
		// The server sends a display scale with a numeric infinity, which its
		// input ignores; the codec sends 0.
		for _, sign := range []string{"\xd0", "\xf0"} {
			want = bytes.ReplaceAll(want, []byte("\x00\x00\x00\x08\x00\x00\x00\x00"+sign+"\x00\x00\x20"),
				[]byte("\x00\x00\x00\x08\x00\x00\x00\x00"+sign+"\x00\x00\x00"))
		}
		// Small reads from the source: lines cross every read boundary.
		got, err := io.ReadAll(newBinaryRows(iotest.HalfReader(bytes.NewReader(text)), codecs))
		if err != nil {
			t.Fatalf("%s: convert: %v", tc.table, err)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < len(got) && at < len(want) && got[at] == want[at] {
				at++
			}
			t.Fatalf("%s: converted stream differs from the server's COPY binary at byte %d of %d/%d:\ngot  % x\nwant % x",
				tc.table, at, len(got), len(want), got[max(0, at-16):min(len(got), at+32)], want[max(0, at-16):min(len(want), at+32)])
		}
		if _, err := c.PgConn().CopyFrom(ctx, newBinaryRows(bytes.NewReader(text), codecs), "COPY "+tc.table+"_copy FROM STDIN (FORMAT binary)"); err != nil {
			t.Fatalf("%s: load the converted stream: %v", tc.table, err)
		}
		if back := copyOut("COPY " + tc.table + "_copy TO STDOUT"); !bytes.Equal(back, text) {
			t.Errorf("%s: the table loaded in binary reads back differently:\n%s\nwant\n%s", tc.table, back, text)
		}
	}
}

// publicTable is the table public.<name> with the columns named in cols,
// separated by spaces.
func publicTable(name, cols string) *tableInfo {
	ti := tableWith(strings.Fields(cols)...)
	ti.Name = "public." + name
	return ti
}

// tableWith is a table public.t with the named columns.
func tableWith(cols ...string) *tableInfo {
	ti := &tableInfo{Name: "public.t"}
	for _, c := range cols {
		ti.Columns = append(ti.Columns, column{Name: c})
	}
	return ti
}

func TestBinaryCodecsChooseTables(t *testing.T) {
	ts := colType{oid: oidTimestamptz, typtype: 'b'}
	i8 := colType{oid: oidInt8, typtype: 'b'}
	arr := colType{oid: 1009, typtype: 'b', elemOID: oidText, elemType: 'b'}          // text[]
	tsArr := colType{oid: 1185, typtype: 'b', elemOID: oidTimestamptz, elemType: 'b'} // timestamptz[]
	pointArr := colType{oid: 1017, typtype: 'b', elemOID: 600, elemType: 'b'}         // point[]
	dom := colType{oid: 90000, typtype: 'd', baseOID: oidDate, baseType: 'b'}
	comp := colType{oid: 90001, typtype: 'c'}
	for _, tc := range []struct {
		name  string
		table *tableInfo
		types map[string]colType
		want  bool
	}{
		{"a timestamp and an integer", tableWith("id", "at"), map[string]colType{"id": i8, "at": ts}, true},
		{"a domain over date", tableWith("id", "d"), map[string]colType{"id": i8, "d": dom}, true},
		{"integers only: the server parses them cheaply", tableWith("id"), map[string]colType{"id": i8}, false},
		{"an array beside a timestamp", tableWith("at", "tags"), map[string]colType{"at": ts, "tags": arr}, true},
		{"an array of timestamps", tableWith("id", "ats"), map[string]colType{"id": i8, "ats": tsArr}, true},
		{"an array of a type without a codec", tableWith("at", "ps"), map[string]colType{"at": ts, "ps": pointArr}, false},
		{"an array of text only", tableWith("id", "tags"), map[string]colType{"id": i8, "tags": arr}, false},
		{"a composite beside a timestamp", tableWith("at", "c"), map[string]colType{"at": ts, "c": comp}, false},
		{"a column the target lacks", tableWith("at", "gone"), map[string]colType{"at": ts}, false},
		{"no columns", tableWith(), map[string]colType{}, false},
	} {
		if got := binaryCodecs(tc.table, tc.types) != nil; got != tc.want {
			t.Errorf("%s: binary %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBinaryRowsRefuse: a field that is not the output the snapshot's
// sessions produce ends the stream with errTextOnly, naming line and
// column; a read error of the source is returned as it is.
func TestBinaryRowsRefuse(t *testing.T) {
	tsz, _ := codecFor(colType{oid: oidTimestamptz, typtype: 'b'})
	ts, _ := codecFor(colType{oid: oidTimestamp, typtype: 'b'})
	date, _ := codecFor(colType{oid: oidDate, typtype: 'b'})
	i2, _ := codecFor(colType{oid: oidInt2, typtype: 'b'})
	i8, _ := codecFor(colType{oid: oidInt8, typtype: 'b'})
	num, _ := codecFor(colType{oid: oidNumeric, typtype: 'b'})
	f8, _ := codecFor(colType{oid: oidFloat8, typtype: 'b'})
	f4, _ := codecFor(colType{oid: oidFloat4, typtype: 'b'})
	inet, _ := codecFor(colType{oid: oidInet, typtype: 'b'})
	cidr, _ := codecFor(colType{oid: oidCidr, typtype: 'b'})
	ttz, _ := codecFor(colType{oid: oidTimeTZ, typtype: 'b'})
	bl, _ := codecFor(colType{oid: oidBool, typtype: 'b'})
	by, _ := codecFor(colType{oid: oidBytea, typtype: 'b'})
	uu, _ := codecFor(colType{oid: oidUUID, typtype: 'b'})
	tm, _ := codecFor(colType{oid: oidTime, typtype: 'b'})
	ia, _ := codecFor(colType{oid: 1007, typtype: 'b', elemOID: oidInt4, elemType: 'b'})
	ta, _ := codecFor(colType{oid: 1009, typtype: 'b', elemOID: oidText, elemType: 'b'})
	iv, _ := codecFor(colType{oid: oidInterval, typtype: 'b'})
	for _, tc := range []struct {
		codec fieldCodec
		field string
	}{
		{tsz, "2024-01-01T10:00:00+00"},    // not DateStyle ISO's space
		{tsz, "2024-01-01 10:00:00"},       // no offset
		{tsz, "Mon Jan 01 10:00:00 2024"},  // DateStyle Postgres
		{tsz, "2024-02-30 10:00:00+00"},    // no such day
		{tsz, "2024-01-01 24:00:00+00"},    // no such hour
		{tsz, "2024-01-01 10:00:00.+00"},   // an empty fraction
		{tsz, "2024-01-01 10:00:00+0"},     // a short offset
		{tsz, "0000-01-01 10:00:00+00 BC"}, // no year 0 BC
		{tsz, "294277-01-01 00:00:00+00"},  // past the last timestamp
		{ts, "2024-01-01 10:00:00+00"},     // an offset on a timestamp
		{ts, "2024-01-01 10:00:00.1234567"},
		{date, "01/02/2024"},
		{date, "2024-13-01"},
		{date, "0000-01-01"},
		{date, "4714-11-23 BC"}, // before the first date
		{i2, "32768"},
		{i8, "9223372036854775808"},
		{i8, "12a"},
		{i8, ""},
		{num, "1e5"},
		{num, "1."},
		{num, ".5"},
		{num, "--1"},
		{f8, "0x1p-2"},
		{f8, "1_000"},
		{f8, "1e309"},  // past float8's range
		{f4, "3.5e38"}, // past float4's range
		{f4, "1e-46"},  // rounds to zero: the server refuses it
		{f8, "1e-400"},
		{f4, "inf"},
		{f4, "0x1p-2"},
		{inet, "fe80::1%eth0"}, // a zone
		{inet, "1.2.3.4/33"},
		{inet, "256.1.1.1"},
		{inet, "1.2.3"},    // an abbreviation the server reads but never prints
		{inet, "01.2.3.4"}, // a leading zero
		{inet, ""},
		{cidr, "10.1.0.0/8"}, // bits past the mask
		{cidr, "10.0.0.0"},   // no mask
		{cidr, "::1/64"},
		{ttz, "12:00:00"},        // no offset
		{ttz, "12:00:00+16"},     // past the largest offset
		{ttz, "12:00:00+05:60"},  // no such minute
		{ttz, "24:00:01+00"},     // past midnight
		{ttz, "12:00:00 +00"},    // a space
		{ttz, "12:00:00+05:30x"}, // text after the offset
		{bl, "true"},
		{by, `\\000`}, // escape format
		{by, `\\x0`},  // odd hex
		{uu, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"},
		{tm, "24:00:00.000001"},
		{tm, "12:60:00"},
		{tm, "12:00:00."},
		{tm, "12:00:00+00"}, // a time with time zone
		{tm, "12:00"},
		{ia, "{1,2"},
		{ia, "{{1},{2,3}}"},
		{ia, "{1,,2}"},
		{ia, "{1,2,}"},
		{ia, "{{1,2},3}"},
		{ia, "{}x"},
		{ia, "[1:2]{1,2}"},
		{ia, "[1:3]={1,2}"},
		{ia, "[1:2]={}"},
		{ia, "{1 ,2}"},
		{ia, "{a}"},
		{ia, "{{{{{{{1}}}}}}}"},
		{ta, `{"a}`},
		{ta, `{a b}`},
		{ta, `{"a"b}`},
		{iv, "1 day 2 mons"},
		{iv, "P1D"},
		{iv, "@ 1 day"},
		{iv, "1 days 04:05"},
		{iv, "1 fortnight"},
		{iv, "04:05:06 1 day"},
		{iv, ""},
		{iv, "3000000000 years"},           // months past int32
		{iv, "3000000000:00:00"},           // microseconds past int64
		{iv, "99999999999999999999:00:00"}, // hours past int64
	} {
		_, err := io.ReadAll(newBinaryRows(strings.NewReader("7\n"+tc.field+"\n"), []fieldCodec{
			func(dst, f []byte) ([]byte, error) {
				if string(f) == "7" {
					return dst, nil
				}
				return tc.codec(dst, f)
			}}))
		var te *textOnlyError
		if !errors.Is(err, errTextOnly) || !errors.As(err, &te) || te.line != 2 || te.column != 1 {
			t.Errorf("%q: err %v, want errTextOnly at line 2, column 1", tc.field, err)
		}
	}
	two := []fieldCodec{i8, i8}
	for _, tc := range []struct{ name, text, want string }{
		{"too few fields", "1\t2\n3\n", "line 2, column 2: 1 fields, want 2"},
		{"too many fields", "1\t2\t3\n", "line 1, column 2: more than 2 fields"},
		{"a stream that ends inside a line", "1\t2\n3\t4", "line 2, column 1: the stream ends inside a line"},
	} {
		_, err := io.ReadAll(newBinaryRows(strings.NewReader(tc.text), two))
		if !errors.Is(err, errTextOnly) || err.Error() != tc.want {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	disk := errors.New("repository read failed (injected)")
	_, err := io.ReadAll(newBinaryRows(iotest.TimeoutReader(strings.NewReader("1\t2\n3\t4\n")), two))
	if err == nil || errors.Is(err, errTextOnly) {
		t.Errorf("source error: got %v, want the source's own error", err)
	}
	_, err = io.ReadAll(newBinaryRows(io.MultiReader(strings.NewReader("1\t2\n"), iotest.ErrReader(disk)), two))
	if !errors.Is(err, disk) || errors.Is(err, errTextOnly) {
		t.Errorf("source error: got %v, want %v", err, disk)
	}
}

// logLines is a slog handler that keeps every record's message and
// attributes as text.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, b.String())
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

func (l *logLines) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// TestRestoreLoadsBinaryAndFallsBack: a restore loads a table with a
// timestamp in binary and one with a point (no codec) as text, and the restored rows
// match; a snapshot whose timestamp text is not DateStyle ISO's (here with
// a "T") loads that table (or that part of a split table, in its own
// transaction) as text, with every row. Whole and split into parts that
// load on both sessions.
func TestRestoreLoadsBinaryAndFallsBack(t *testing.T) {
	pg := testsrv.Postgres(t)
	src := newDB(t, pg, "binary_src")
	exec1(t, src, `CREATE TABLE stamped (id int PRIMARY KEY, at timestamptz NOT NULL, note text);
INSERT INTO stamped SELECT i, timestamptz '2024-01-01 10:00:00+00' + i * interval '1 minute', 'n' || i FROM generate_series(1, 5000) i;
CREATE TABLE tagged (id int PRIMARY KEY, at date, tags text[], spot point);
INSERT INTO tagged SELECT i, date '2024-01-01' + i, ARRAY['a', 'b' || i], point(i, -i) FROM generate_series(1, 100) i;`)
	for _, split := range []bool{false, true} {
		e := New()
		name := "whole"
		if split {
			e.SplitThreshold = 64 << 10
			name = "split"
		}
		mem, res := backupMem(t, e, src, 2)
		parts := len(mem.Manifest().TableStreams("public.stamped"))
		if split != (parts > 1) {
			t.Fatalf("%s: stamped has %d streams", name, parts)
		}
		restore := func(db string) *logLines {
			t.Helper()
			logs := &logLines{}
			dst := newDB(t, pg, db)
			p := progress.New("restore", io.Discard)
			if err := e.Restore(context.Background(), mem, dst, engine.RestoreOptions{Jobs: 2, Logger: slog.New(logs), Progress: p}); err != nil {
				t.Fatalf("%s: restore: %v", name, err)
			}
			// A load redone as text takes its first attempt's counts back.
			var size int64
			for _, table := range []string{"public.stamped", "public.tagged"} {
				for _, st := range mem.Manifest().TableStreams(table) {
					size += st.Size
				}
			}
			if p.Rows() != 5100 || p.Bytes() != size {
				t.Errorf("%s: progress counted %d rows and %d bytes, want 5100 and %d", name, p.Rows(), p.Bytes(), size)
			}
			if got := query[int64](t, dst, "SELECT count(*) FROM stamped WHERE at = timestamptz '2024-01-01 10:00:00+00' + id * interval '1 minute'"); got != 5000 {
				t.Errorf("%s: %d of 5000 stamped rows have their timestamp", name, got)
			}
			compareChecksums(t, e, res.Tables, dst)
			return logs
		}
		loads := 1 // load tasks of stamped: one, or one per part
		if split {
			loads = parts
		}
		logs := restore("binary_" + name)
		if got := logs.grep("format=binary"); len(got) != loads || !strings.Contains(strings.Join(got, "\n"), "public.stamped") {
			t.Errorf("%s: loads in binary: %q, want %d of public.stamped", name, got, loads)
		}
		if got := logs.grep("format=text"); len(got) != 1 || !strings.Contains(got[0], "public.tagged") {
			t.Errorf("%s: loads as text: %q, want public.tagged", name, got)
		}

		// TextCopy: everything as text, as before.
		logs = &logLines{}
		if err := e.Restore(context.Background(), mem, newDB(t, pg, "text_"+name), engine.RestoreOptions{Jobs: 2, TextCopy: true, Logger: slog.New(logs)}); err != nil {
			t.Fatalf("%s: restore with TextCopy: %v", name, err)
		}
		if got := logs.grep("format=binary"); len(got) != 0 {
			t.Errorf("%s: loads in binary with TextCopy: %q", name, got)
		}

		// The same snapshot with one timestamp written with a "T".
		var data []byte
		at := -1
		for _, st := range mem.Manifest().TableStreams("public.stamped") {
			if data = mem.Bytes(st.Name); bytes.HasPrefix(data, []byte("1\t")) {
				at = bytes.Index(data, []byte("2024-01-01 10:01:00+00"))
				break
			}
		}
		if at < 0 {
			t.Fatalf("%s: no stream of stamped starts with its first row", name)
		}
		data[at+10] = 'T'
		logs = restore("binary_fallback_" + name)
		if got := logs.grep("did not convert"); len(got) != 1 || !strings.Contains(got[0], "public.stamped") || !strings.Contains(got[0], "line 1, column 2") {
			t.Errorf("%s: fallback log: %q, want one line naming public.stamped, line 1, column 2", name, got)
		}
		if got := logs.grep("format=text"); len(got) != 2 {
			t.Errorf("%s: loads as text after the fallback: %q, want public.tagged and public.stamped", name, got)
		}
		if got := logs.grep("format=binary"); len(got) != loads {
			t.Errorf("%s: loads in binary after the fallback: %d, want %d (the first attempts and the other parts)", name, len(got), loads)
		}
	}
}

// TestTimestampOffsets: the snapshot's sessions print UTC (+00), but an
// offset other than zero, west or east and with minutes and seconds, still
// converts to the same instant.
func TestTimestampOffsets(t *testing.T) {
	tsz, _ := codecFor(colType{oid: oidTimestamptz, typtype: 'b'})
	for _, tc := range []struct{ a, b string }{
		{"2024-01-01 10:00:00-08", "2024-01-01 18:00:00+00"},
		{"2024-01-01 10:00:00+05:30", "2024-01-01 04:30:00+00"},
		{"1900-01-01 00:00:00+00:19:32", "1899-12-31 23:40:28+00"},
		{"2024-03-01 00:30:00-01:00 BC", "2024-03-01 01:30:00+00 BC"},
	} {
		a, errA := tsz(nil, []byte(tc.a))
		b, errB := tsz(nil, []byte(tc.b))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s → % x (%v), %s → % x (%v): want the same instant", tc.a, a, errA, tc.b, b, errB)
		}
	}
}

// A row whose text passes maxBinaryLine is not held and converted whole:
// the stream ends with errTextOnly, so the table loads as COPY text, which
// streams it. The rows before it convert as usual.
func TestBinaryRowsHugeRowLoadsAsText(t *testing.T) {
	i4, _ := codecFor(colType{oid: oidInt4, typtype: 'b'})
	txt, _ := codecFor(colType{oid: oidText, typtype: 'b'})
	text := []byte("1\tsmall\n2\t" + strings.Repeat("a", maxBinaryLine+2*readSize) + "\n3\tafter\n")
	_, err := io.ReadAll(newBinaryRows(bytes.NewReader(text), []fieldCodec{i4, txt}))
	var toe *textOnlyError
	if !errors.Is(err, errTextOnly) || !errors.As(err, &toe) || toe.line != 2 || !strings.Contains(err.Error(), "more than 16 MiB") {
		t.Fatalf("huge row: %v, want a text-only error at line 2", err)
	}
	// A row just under the bound still converts.
	text = []byte("1\t" + strings.Repeat("a", maxBinaryLine-16) + "\n")
	if _, err := io.ReadAll(newBinaryRows(bytes.NewReader(text), []fieldCodec{i4, txt})); err != nil {
		t.Fatalf("row under the bound: %v", err)
	}
}
