package postgres

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// bigRowTypes are columns of every type with a printer: the variable-length
// ones (text and its kin, an enum, json, jsonb, bytea and a domain over it)
// print large values in pieces.
var bigRowTypes = []colType{
	{oid: oidInt8, typtype: 'b'},
	{oid: oidText, typtype: 'b'},
	{oid: oidVarchar, typtype: 'b'},
	{oid: oidJSON, typtype: 'b'},
	{oid: oidJSONB, typtype: 'b'},
	{oid: oidBytea, typtype: 'b'},
	{oid: oidDate, typtype: 'b'},
	{oid: oidTimestamptz, typtype: 'b'},
	{oid: oidTimestamp, typtype: 'b'},
	{oid: oidNumeric, typtype: 'b'},
	{oid: oidUUID, typtype: 'b'},
	{oid: oidBool, typtype: 'b'},
	{oid: 90001, typtype: 'e'},
	{oid: 90002, typtype: 'd', baseOID: oidBytea, baseType: 'b'},
	{oid: oidInt4, typtype: 'b'},
	{oid: oidTime, typtype: 'b'},
	{oid: oidBpchar, typtype: 'b'},
	{oid: oidName, typtype: 'b'},
	{oid: oidInt2, typtype: 'b'},
	{oid: oidOID, typtype: 'b'},
	{oid: 90003, typtype: 'd', baseOID: oidJSONB, baseType: 'b'},
}

// bigRowField returns a binary value of column col's type: for the
// variable-length types empty, short or big (past the read buffer).
func bigRowField(rng *rand.Rand, ct colType, big int) []byte {
	oid := ct.oid
	if ct.typtype == 'd' {
		oid = ct.baseOID
	}
	size := 0
	switch rng.IntN(4) {
	case 1:
		size = 1 + rng.IntN(100)
	case 2, 3:
		size = big/2 + rng.IntN(big)
	}
	text := func() []byte {
		// Every byte value, the escaped ones often, in runs that straddle
		// the pieces.
		b := make([]byte, size)
		for i := range b {
			switch rng.IntN(8) {
			case 0:
				b[i] = "\t\n\\\r\b\f\v"[rng.IntN(7)]
			case 1:
				b[i] = byte(rng.IntN(256))
			default:
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		return b
	}
	switch {
	case ct.typtype == 'e':
		return text()
	case oid == oidText || oid == oidVarchar || oid == oidJSON || oid == oidBpchar || oid == oidName:
		return text()
	case oid == oidJSONB:
		return append([]byte{1}, text()...)
	case oid == oidBytea:
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	case oid == oidInt8:
		return binary.BigEndian.AppendUint64(nil, rng.Uint64())
	case oid == oidInt4 || oid == oidOID:
		return binary.BigEndian.AppendUint32(nil, rng.Uint32())
	case oid == oidInt2:
		return binary.BigEndian.AppendUint16(nil, uint16(rng.Uint32()))
	case oid == oidDate:
		return binary.BigEndian.AppendUint32(nil, uint32(int32(rng.IntN(40000)-20000)))
	case oid == oidTimestamptz || oid == oidTimestamp:
		// A few days, so rows share the last date's text.
		return binary.BigEndian.AppendUint64(nil, uint64(int64(rng.IntN(3))*usPerDay+rng.Int64N(usPerDay)))
	case oid == oidTime:
		return binary.BigEndian.AppendUint64(nil, uint64(rng.Int64N(usPerDay)))
	case oid == oidNumeric: // 1234.5600, or -0.0012
		if rng.IntN(2) == 0 {
			return []byte{0, 2, 0, 0, 0, 0, 0, 4, 0x04, 0xd2, 0x15, 0xe0}
		}
		return []byte{0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 12}
	case oid == oidUUID:
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	case oid == oidBool:
		return []byte{byte(rng.IntN(2))}
	}
	panic(fmt.Sprintf("no value for type %d", oid))
}

// bigRowMessages returns the CopyData messages (type, length, body) of a
// binary COPY of rows with values of every type: the header with the first
// row, one message per row, the trailer.
func bigRowMessages(rng *rand.Rand, rows, big int) []byte {
	var msgs []byte
	for r := 0; r <= rows; r++ {
		var body []byte
		if r == 0 {
			body = append(body, binaryHeader...)
		}
		if r == rows {
			body = append(body, 0xff, 0xff)
		} else {
			body = binary.BigEndian.AppendUint16(body, uint16(len(bigRowTypes)))
			for _, ct := range bigRowTypes {
				if rng.IntN(8) == 0 {
					body = binary.BigEndian.AppendUint32(body, 0xffffffff)
					continue
				}
				v := bigRowField(rng, ct, big)
				body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
				body = append(body, v...)
			}
		}
		msgs = append(msgs, 'd')
		msgs = binary.BigEndian.AppendUint32(msgs, uint32(4+len(body)))
		msgs = append(msgs, body...)
	}
	return msgs
}

// maxWriter records the largest write it was given.
type maxWriter struct {
	bytes.Buffer
	max int
}

func (w *maxWriter) Write(p []byte) (int, error) {
	w.max = max(w.max, len(p))
	return w.Buffer.Write(p)
}

func bigRowMakers(t *testing.T) []printerMaker {
	t.Helper()
	var ms []printerMaker
	for _, ct := range bigRowTypes {
		m, _ := printerFor(ct)
		if m.make == nil {
			t.Fatalf("no printer for %+v", ct)
		}
		ms = append(ms, m)
	}
	return ms
}

// printMessages prints the CopyData messages read from src, each through
// printFrom when slow says so and through Write otherwise.
func printMessages(src io.Reader, bufSize int, w io.Writer, makers []printerMaker, slow func(i int) bool) error {
	br := bufio.NewReaderSize(src, bufSize)
	var bw *bufio.Writer
	if bufSize%2 == 1 { // some runs print into a buffered writer's free space
		bw = bufio.NewWriterSize(w, 4096)
		w = bw
	}
	tr := newTextRows(w, makers)
	for i := 0; ; i++ {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(br, hdr); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if slow(i) {
			if err := tr.printFrom(br, n); err != nil {
				return err
			}
			continue
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		if _, err := tr.Write(b); err != nil {
			return err
		}
	}
	if err := tr.Close(); err != nil {
		return err
	}
	if bw != nil {
		return bw.Flush()
	}
	return nil
}

// The slow path prints the same bytes as the fast one, in bounded writes,
// whatever the reads bring at a time.
func TestPrintFromSameAsWrite(t *testing.T) {
	makers := bigRowMakers(t)
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 18))
		const bufSize = 4096
		msgs := bigRowMessages(rng, 12, 3*bufSize+int(seed)*997)
		var want bytes.Buffer
		if err := printMessages(bytes.NewReader(msgs), bufSize, &want, makers, func(int) bool { return false }); err != nil {
			t.Fatalf("seed %d: fast path: %v", seed, err)
		}
		for _, c := range []struct {
			name string
			src  io.Reader
			size int
			slow func(i int) bool
		}{
			{"whole reads", bytes.NewReader(msgs), bufSize, func(int) bool { return true }},
			{"one byte reads", iotest.OneByteReader(bytes.NewReader(msgs)), bufSize + 1, func(int) bool { return true }},
			{"half reads", iotest.HalfReader(bytes.NewReader(msgs)), 64, func(int) bool { return true }},
			{"4093-byte reads", &chunkReader{r: bytes.NewReader(msgs), n: 4093}, 1 << 16, func(i int) bool { return i%2 == 0 }},
			{"odd rows slow", iotest.DataErrReader(bytes.NewReader(msgs)), 777, func(i int) bool { return i%2 == 1 }},
		} {
			var got maxWriter
			if err := printMessages(c.src, c.size, &got, makers, c.slow); err != nil {
				t.Fatalf("seed %d, %s: %v", seed, c.name, err)
			}
			sameBytes(t, fmt.Sprintf("seed %d, %s", seed, c.name), got.Bytes(), want.Bytes())
			if bound := bigTextFlush + 2*max(c.size, 4096) + 1024; got.max > bound {
				t.Errorf("seed %d, %s: a write of %d bytes, want at most %d", seed, c.name, got.max, bound)
			}
		}
	}
	// A huge value is written on in pieces.
	rng := rand.New(rand.NewPCG(7, 18))
	msgs := bigRowMessages(rng, 3, 3<<20)
	var got maxWriter
	if err := printMessages(bytes.NewReader(msgs), 256<<10, &got, makers, func(int) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if got.Len() < 8<<20 || got.max > bigTextFlush+512<<10+1024 {
		t.Errorf("%d bytes printed, the largest write %d bytes", got.Len(), got.max)
	}
}

// sameBytes fails at the first byte where got differs from want, showing
// a little of both.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	from := max(0, i-20)
	t.Fatalf("%s: %d bytes printed, want %d; they differ at byte %d:\ngot  %q\nwant %q", what, len(got), len(want), i,
		got[from:min(len(got), i+40)], want[from:min(len(want), i+40)])
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// The slow path refuses what the fast one refuses.
func TestPrintFromRefuse(t *testing.T) {
	big := strings.Repeat("x", 5000)
	row := func(fields ...string) []byte {
		b := binary.BigEndian.AppendUint16(append([]byte(nil), binaryHeader...), uint16(len(fields)))
		for _, f := range fields {
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
		return b
	}
	jsonb := makers(printJSONB)
	jsonb[0].piece = pieceJSONB
	for _, c := range []struct {
		name, want string
		body       []byte
		n          int // the message's length, when not the body's
	}{
		{"big jsonb of version 2", "row 1, column 1: a jsonb value of an unknown binary version", row("\x02" + big), 0},
		{"short jsonb of version 2", "row 1, column 1: a jsonb value of an unknown binary version", row("\x02{}"), 0},
		{"two fields", "has 2 fields, want 1", row("{}", "{}"), 0},
		{"field past the message", "runs past the end of its message", row("\x01" + big), 19 + 2 + 4 + 3000},
		{"another signature", "signature", append([]byte("PGCOPY\n\xff\r\n\x01"), row("\x01{}")[11:]...), 0},
		{"cut", "read COPY data: unexpected EOF", row("\x01" + big)[:3000], 19 + 2 + 4 + 5001},
	} {
		n := c.n
		if n == 0 {
			n = len(c.body)
		}
		tr := newTextRows(io.Discard, jsonb)
		err := tr.printFrom(bufio.NewReaderSize(bytes.NewReader(c.body), 4096), n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one that says %q", c.name, err, c.want)
		}
	}
}
