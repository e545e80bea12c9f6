package columns

import (
	"os"
	"testing"
)

func loadBench(b *testing.B) []byte {
	f := os.Getenv("COLUMNS_BENCH_FILE")
	if f == "" {
		b.Skip("COLUMNS_BENCH_FILE not set")
	}
	data, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	return data[:64<<20]
}

func BenchmarkEncode(b *testing.B) {
	data := loadBench(b)
	var e Encoder
	buf := make([]byte, 0, 2<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off+1<<20 <= len(data); off += 1 << 20 {
			e.Encode(buf[:0], data[off:off+1<<20])
		}
	}
}

func BenchmarkSeparators(b *testing.B) {
	data := loadBench(b)
	var pos []uint32
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off+1<<20 <= len(data); off += 1 << 20 {
			pos = separators(data[off:off+1<<20], pos[:0])
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := loadBench(b)
	var e Encoder
	var d Decoder
	var encoded [][]byte
	for off := 0; off+1<<20 <= len(data); off += 1 << 20 {
		t, ok := e.Encode(nil, data[off:off+1<<20])
		if !ok {
			b.Fatal("not encoded")
		}
		encoded = append(encoded, t)
	}
	buf := make([]byte, 0, 2<<20)
	b.SetBytes(int64(len(encoded) << 20))
	for b.Loop() {
		for _, t := range encoded {
			if _, err := d.Decode(buf[:0], t); err != nil {
				b.Fatal(err)
			}
		}
	}
}
