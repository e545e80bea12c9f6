package postgres

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// BenchmarkBinaryRows converts a table's COPY text (a file named by
// SNAPDATA_BENCH_COPY, e.g. \copy orders TO FILE of the bench data) with
// the codecs of the bench schema's tables.
func BenchmarkBinaryRows(b *testing.B) {
	file := os.Getenv("SNAPDATA_BENCH_COPY")
	if file == "" {
		b.Skip("set SNAPDATA_BENCH_COPY to a COPY text file of the bench data's orders, order_items, events or customers")
	}
	text, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	c := func(oid uint32) fieldCodec { f, _ := codecFor(colType{oid: oid, typtype: 'b'}); return f }
	var codecs []fieldCodec
	switch n := bytes.Count(text[:bytes.IndexByte(text, '\n')], []byte{'\t'}) + 1; n {
	case 8: // orders
		codecs = []fieldCodec{c(oidInt8), c(oidInt8), c(oidText), c(oidBpchar), c(oidNumeric), c(oidText), c(oidTimestamptz), c(oidTimestamptz)}
	case 6: // order_items
		codecs = []fieldCodec{c(oidInt8), c(oidInt8), c(oidInt8), c(oidInt4), c(oidNumeric), c(oidNumeric)}
	case 5: // events
		codecs = []fieldCodec{c(oidInt8), c(oidInt8), c(oidText), c(oidTimestamptz), c(oidJSONB)}
	case 9: // customers
		codecs = []fieldCodec{c(oidInt8), c(oidText), c(oidText), c(oidText), c(oidText), c(oidText), c(oidBpchar), c(oidTimestamptz), c(oidText)}
	default:
		b.Fatalf("%d columns: not a bench table", n)
	}
	b.SetBytes(int64(len(text)))
	buf := make([]byte, 65536)
	for b.Loop() {
		r := newBinaryRows(bytes.NewReader(text), codecs)
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
