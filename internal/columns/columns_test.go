package columns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// reference is the encoding written the plain way, to check Encode's
// layout against.
func reference(src []byte) ([]byte, bool) {
	first := bytes.IndexByte(src, '\n')
	last := bytes.LastIndexByte(src, '\n')
	if first < 0 || first == last {
		return nil, false
	}
	head, body, tail := src[:first+1], src[first+1:last+1], src[last+1:]
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	cols := strings.Count(lines[0], "\t") + 1
	if cols < 2 || cols > MaxColumns || len(lines) < MinRows {
		return nil, false
	}
	blocks := make([]strings.Builder, cols)
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != cols {
			return nil, false
		}
		for j := range f {
			blocks[j].WriteString(f[j] + "\n")
		}
	}
	var out []byte
	for _, v := range []int{len(lines), cols, len(head), len(tail)} {
		out = binary.AppendUvarint(out, uint64(v))
	}
	for j := range blocks {
		out = binary.AppendUvarint(out, uint64(blocks[j].Len()))
	}
	out = append(append(out, head...), tail...)
	for j := range blocks {
		out = append(out, blocks[j].String()...)
	}
	return out, true
}

func roundTrip(t *testing.T, name string, src []byte, wantOK bool) {
	t.Helper()
	var e Encoder
	var d Decoder
	prefix := []byte("prefix")
	enc, ok := e.Encode(bytes.Clone(prefix), src)
	if ok != wantOK {
		t.Fatalf("%s: Encode ok = %v, want %v", name, ok, wantOK)
	}
	if !bytes.HasPrefix(enc, prefix) {
		t.Fatalf("%s: Encode did not append to dst", name)
	}
	ref, refOK := reference(src)
	if refOK != ok {
		t.Fatalf("%s: Encode ok = %v, the reference says %v", name, ok, refOK)
	}
	if !ok {
		if len(enc) != len(prefix) {
			t.Fatalf("%s: a declined Encode changed dst", name)
		}
		return
	}
	if !bytes.Equal(enc[len(prefix):], ref) {
		t.Fatalf("%s: Encode's layout differs from the reference\n got %q\nwant %q", name, enc[len(prefix):], ref)
	}
	if n, err := DecodedLen(enc[len(prefix):]); err != nil || n != len(src) {
		t.Fatalf("%s: DecodedLen = %d, %v; want %d", name, n, err, len(src))
	}
	dec, err := d.Decode(bytes.Clone(prefix), enc[len(prefix):])
	if err != nil {
		t.Fatalf("%s: Decode: %v", name, err)
	}
	if !bytes.Equal(dec, append(bytes.Clone(prefix), src...)) {
		t.Fatalf("%s: round trip differs\n got %q\nwant %q", name, dec[len(prefix):], src)
	}
}

func rows(n int, row func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(row(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestRoundTrip(t *testing.T) {
	table := rows(20, func(i int) string {
		return fmt.Sprintf("%d\tname %d\t2024-01-%02d 10:00:00+00\t\\N", i, i*7, i%28+1)
	})
	long := strings.Repeat("x", 100)
	cases := []struct {
		name string
		src  string
		ok   bool
	}{
		{"empty", "", false},
		{"no newline", "1\t2\t3", false},
		{"one newline", "1\t2\n3\t4", false},
		{"head and tail only", "a\tb\nc\td\n", false}, // the first line is the head
		{"whole lines", "\n" + table, true},
		{"partial head and tail", "7\tpartial\n" + table + "21\tcut her", true},
		{"tail only", "\n" + table + "21\tcut", true},
		{"head is a whole line", table + "x", true},
		{"one column", "\n" + rows(20, func(i int) string { return fmt.Sprint(i) }), false},
		{"fewer rows than MinRows", "\n" + rows(MinRows-1, func(i int) string { return "a\tb" }), false},
		{"exactly MinRows", "\n" + rows(MinRows, func(i int) string { return "a\tb" }), true},
		{"a line with a tab more", "\n" + table + "1\t2\t3\t4\t5\n" + table, false},
		{"a line with a tab less", "\n" + table + "1\t2\t3\n" + table, false},
		{"tabs moved between lines", "\n" + rows(10, func(i int) string { return "a\tb\tc" }) + "a\t\tb\tc\nabc\n", false},
		{"empty fields", "\n" + rows(10, func(i int) string { return "\t\t" }), true},
		{"empty lines with one column", "\n\n\n\n\n\n\n\n\n\n", false},
		{"long fields", "\n" + rows(10, func(i int) string { return long[:i*10] + "\t" + long + "\t" + long[:i] }), true},
		{"fields of 15 to 17 bytes", "\n" + rows(30, func(i int) string { return long[:15+i%3] + "\t" + long[:16] + "\t" + long[:17-i%3] }), true},
		{"escapes, CR, UTF-8 and binary", "\n" + rows(10, func(i int) string { return "a\\tb\\n\r\t🙂 ünïcode\t\x00\xff\x80" }), true},
		{"max columns", "\n" + rows(10, func(i int) string { return strings.Repeat("x\t", MaxColumns-1) + "y" }), true},
		{"too many columns", "\n" + rows(10, func(i int) string { return strings.Repeat("x\t", MaxColumns) + "y" }), false},
		{"schema SQL", "CREATE TABLE t (\n\tid int,\n\tname text\n);\n" + strings.Repeat("-- comment\n", 20), false},
	}
	for _, c := range cases {
		roundTrip(t, c.name, []byte(c.src), c.ok)
	}
}

// Random tables cut at random places, as a chunker cuts a stream.
func TestRoundTripRandomChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abc0123456789 -:.\\\"{}é\x00\xff")
	for trial := range 300 {
		cols := 2 + rng.IntN(12)
		var b []byte
		for range 50 + rng.IntN(400) {
			for j := range cols {
				n := rng.IntN(40)
				if rng.IntN(10) == 0 {
					n = rng.IntN(300)
				}
				for range n {
					b = append(b, alphabet[rng.IntN(len(alphabet))])
				}
				if j < cols-1 {
					b = append(b, '\t')
				}
			}
			b = append(b, '\n')
		}
		from := rng.IntN(len(b) / 4)
		to := len(b) - rng.IntN(len(b)/4)
		roundTrip(t, fmt.Sprintf("trial %d", trial), b[from:to], true)
	}
}

func TestDecodeRejectsCorruptInput(t *testing.T) {
	src := []byte("\n" + rows(20, func(i int) string { return fmt.Sprintf("%d\tvalue %d\tx", i, i) }) + "tail")
	var e Encoder
	good, ok := e.Encode(nil, src)
	if !ok {
		t.Fatal("not encoded")
	}
	header := func(v ...int) []byte {
		var b []byte
		for _, x := range v {
			b = binary.AppendUvarint(b, uint64(x))
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"one byte more", append(bytes.Clone(good), 'x')},
		{"zero rows", header(0, 2, 0, 0, 1, 1)},
		{"one column", header(1, 1, 0, 0, 2)},
		{"too many columns", header(1, MaxColumns+1, 0, 0)},
		{"lengths past the data", append(header(1, 2, 0, 0, 1000, 1000), "a\nb\n"...)},
		{"a column with a newline too few", append(header(2, 2, 0, 0, 3, 5), "a\nbc\nd\ne"...)},
		{"a column with a newline too many", append(header(1, 2, 0, 0, 4, 2), "a\nb\nc\n"...)},
		{"more rows than newlines", append(header(3, 2, 0, 0, 2, 2), "a\nb\n"...)},
		{"huge varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	var d Decoder
	for _, c := range cases {
		out, err := d.Decode([]byte("keep"), c.data)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode error = %v, want ErrCorrupt", c.name, err)
		}
		if string(out) != "keep" {
			t.Errorf("%s: a failed Decode changed dst to %q", c.name, out)
		}
	}
	// the good one still decodes with the same Decoder
	if out, err := d.Decode(nil, good); err != nil || !bytes.Equal(out, src) {
		t.Fatalf("good input after bad: %v", err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("x\n1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n7\tg\n8\th\nta"))
	f.Add([]byte("\n\t\n\t\n\t\n\t\n\t\n\t\n\t\n\t\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		var e Encoder
		var d Decoder
		enc, ok := e.Encode(nil, src)
		ref, refOK := reference(src)
		if ok != refOK || !bytes.Equal(enc, ref) {
			t.Fatalf("Encode differs from the reference: ok %v/%v", ok, refOK)
		}
		if !ok {
			return
		}
		dec, err := d.Decode(nil, enc)
		if err != nil || !bytes.Equal(dec, src) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	var e Encoder
	good, _ := e.Encode(nil, []byte("x\n1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n7\tg\n8\th\nta"))
	f.Add(good)
	f.Fuzz(func(t *testing.T, src []byte) {
		var d Decoder
		out, err := d.Decode(nil, src)
		if err != nil {
			return
		}
		// whatever decodes has the length the header announced
		if n, err := DecodedLen(src); err != nil || n != len(out) {
			t.Fatalf("DecodedLen %d, %v; Decode gave %d bytes", n, err, len(out))
		}
	})
}

// A dst with DecodedLen+Slack spare capacity is decoded into in place.
func TestDecodeUsesGivenCapacity(t *testing.T) {
	src := []byte("\n" + rows(50, func(i int) string { return fmt.Sprintf("%d\t%d", i, i*i) }))
	var e Encoder
	enc, _ := e.Encode(nil, src)
	n, err := DecodedLen(enc)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, n+Slack)
	var d Decoder
	out, err := d.Decode(buf, enc)
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("Decode: %v", err)
	}
	if &out[0] != &buf[:1][0] {
		t.Error("Decode reallocated a dst with DecodedLen+Slack capacity")
	}
}

// separators and newlines find every tab and newline at every offset of
// their word loops and of the bytes after them.
func TestSeparatorsAndNewlines(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 100 {
		for range 20 {
			b := make([]byte, n)
			var wantSeps, wantNL []uint32
			for i := range b {
				switch rng.IntN(4) {
				case 0:
					b[i] = '\t'
					wantSeps = append(wantSeps, uint32(i))
				case 1:
					b[i] = '\n'
					wantSeps = append(wantSeps, uint32(i)|newlineBit)
					wantNL = append(wantNL, uint32(i))
				default:
					b[i] = byte(rng.IntN(256))
					if b[i] == '\t' || b[i] == '\n' {
						b[i] = 'x'
					}
				}
			}
			if got := separators(b, nil); fmt.Sprint(got) != fmt.Sprint(wantSeps) {
				t.Fatalf("separators(%q) = %v, want %v", b, got, wantSeps)
			}
			if got := newlines(b, nil); fmt.Sprint(got) != fmt.Sprint(wantNL) {
				t.Fatalf("newlines(%q) = %v, want %v", b, got, wantNL)
			}
		}
	}
}
