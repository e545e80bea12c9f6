package rowsum

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/snapdata/snapdata/internal/manifest"
)

func rows(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%d\tname %d\t{\"k\": %d}\n", i, i*7, i%13)
	}
	return out
}

// The sum is the plain arithmetic sum of the row hashes (checked with
// math/big), in both formats, whatever the order or split of the rows.
func TestSumIsOrderIndependentArithmeticSum(t *testing.T) {
	rs := rows(500)
	for _, a := range []Algo{XXH3, SHA256} {
		want := new(big.Int)
		for _, r := range rs {
			var h []byte
			if a == SHA256 {
				d := sha256.Sum256(r)
				h = d[:]
			} else {
				b := xxh3.Hash128(r).Bytes()
				h = b[:]
			}
			want.Add(want, new(big.Int).SetBytes(h))
		}
		bitsN := uint(128)
		if a == SHA256 {
			bitsN = 256
		}
		want.Mod(want, new(big.Int).Lsh(big.NewInt(1), bitsN))
		wantHex := fmt.Sprintf("%0*x", bitsN/4, want)
		if a == XXH3 {
			wantHex = "xxh3-128:" + wantHex
		}

		whole := New(a)
		for _, r := range rs {
			whole.AddRow(r)
		}
		if got := whole.String(); got != wantHex || whole.Rows != 500 {
			t.Fatalf("%v: %s (%d rows), want %s", a, got, whole.Rows, wantHex)
		}
		// Shuffled into three parts, merged in another order.
		perm := rand.New(rand.NewPCG(1, 2)).Perm(len(rs))
		parts := []Sum{New(a), New(a), New(a)}
		for i, j := range perm {
			parts[i%3].AddRow(rs[j])
		}
		m := New(a)
		for _, i := range []int{2, 0, 1} {
			m.Merge(parts[i])
		}
		if m.String() != wantHex || m.Rows != 500 {
			t.Fatalf("%v merged parts: %s, want %s", a, m.String(), wantHex)
		}
		if AlgoOf(wantHex) != a {
			t.Errorf("AlgoOf(%s) = %v, want %v", wantHex, AlgoOf(wantHex), a)
		}
	}
}

// A changed, missing or duplicated row changes the sum.
func TestSumDetectsChanges(t *testing.T) {
	rs := rows(50)
	sum := func(rs [][]byte) string {
		s := New(XXH3)
		for _, r := range rs {
			s.AddRow(r)
		}
		return s.String()
	}
	base := sum(rs)
	changed := append([][]byte{}, rs...)
	changed[7] = []byte("7\tname 49\t{\"k\": 8}\n")
	for name, v := range map[string][][]byte{"changed": changed, "missing": rs[1:], "duplicated": append(append([][]byte{}, rs...), rs[3])} {
		if sum(v) == base {
			t.Errorf("%s row: same sum", name)
		}
	}
}

func TestAlgoOf(t *testing.T) {
	sha := hex.EncodeToString(make([]byte, 32))
	for s, want := range map[string]Algo{sha: SHA256, "xxh3-128:" + strings.Repeat("0", 32): XXH3, "": XXH3, "garbage": XXH3} {
		if got := AlgoOf(s); got != want {
			t.Errorf("AlgoOf(%q) = %v, want %v", s, got, want)
		}
	}
	if (Sum{}).String() != "xxh3-128:"+strings.Repeat("0", 32) {
		t.Errorf("zero Sum = %s", Sum{}.String())
	}
}

func TestFormatsOf(t *testing.T) {
	sha := hex.EncodeToString(make([]byte, 32))
	f := FormatsOf([]manifest.Table{{Name: "old", Checksum: sha}, {Name: "new", Checksum: "xxh3-128:" + strings.Repeat("1", 32)}})
	for name, want := range map[string]Algo{"old": SHA256, "new": XXH3, "unlisted": XXH3} {
		if got := f(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
