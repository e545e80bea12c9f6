package mysql

import (
	"bytes"
	"math/rand"
	"testing"
)

// escapeReference is appendEscaped written plainly, byte by byte.
func escapeReference(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case 0:
			dst = append(dst, '\\', '0')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendEscaped agrees with the reference on every length up to 40 around
// every position of each escaped byte, on bytes next to them in value
// (which a wrong word test would confuse), and on random values.
func TestAppendEscaped(t *testing.T) {
	special := []byte{'\\', '\t', '\n', '\r', 0}
	near := []byte{'[', ']', '\b', '\v', '\f', 0x0e, 1, 0x80, 0xff, 0xdc, 0x89, 0x8a, 0x8d, 'a'}
	check := func(v []byte) {
		t.Helper()
		got := appendEscaped([]byte("prefix"), v)
		want := escapeReference([]byte("prefix"), v)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendEscaped(%q) = %q, want %q", v, got, want)
		}
	}
	for n := 0; n <= 40; n++ {
		for _, fill := range near {
			base := bytes.Repeat([]byte{fill}, n)
			check(base)
			for i := 0; i < n; i++ {
				for _, c := range special {
					v := append([]byte(nil), base...)
					v[i] = c
					check(v)
				}
			}
		}
	}
	rng := rand.New(rand.NewSource(1))
	for range 20000 {
		v := make([]byte, rng.Intn(100))
		for i := range v {
			if rng.Intn(10) == 0 {
				v[i] = special[rng.Intn(len(special))]
			} else {
				v[i] = byte(rng.Intn(256))
			}
		}
		check(v)
	}
}

func BenchmarkAppendEscaped(b *testing.B) {
	v := []byte(`{"type": "page_view", "path": "/products/1234/reviews", "referrer": "https://example.com/search?q=blue+shoes", "session": "6f1c2a9e-3b7d-4e0a-9c1f-2d8e5b7a4c3f", "ms": 1234}`)
	dst := make([]byte, 0, 2*len(v))
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		dst = appendEscaped(dst[:0], v)
	}
}
