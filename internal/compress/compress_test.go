package compress

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// sample returns n bytes of text that compresses like COPY output: words
// from a small vocabulary, numbers and timestamps with real entropy.
func sample(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("alpha beta gamma delta invoice customer paid shipped pending refund order line total")
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%d\t%s %s\t%d.%02d\t2026-%02d-%02d %02d:%02d:%02d+00\n", r.IntN(1e9),
			words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1e5), r.IntN(100),
			1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
	}
	return b.Bytes()[:n]
}

// Every level writes standard frames that the pure-Go decoder (the one the
// repository reads with) decodes back to the input, after whatever dst
// already held; the stronger levels really are stronger.
func TestAppendRoundTripsAtEveryLevel(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	inputs := map[string][]byte{
		"empty":   {},
		"one":     {'x'},
		"text":    sample(1<<20, 1),
		"random":  randomBytes(256 << 10),
		"odd-len": sample(300_001, 2),
	}
	sizes := map[Level]int{}
	for _, level := range []Level{Fastest, Default, Better, Best} {
		enc, err := NewEncoder(level, 2)
		if err != nil {
			t.Fatalf("%v: %v", level, err)
		}
		for name, in := range inputs {
			prefix := []byte("prefix")
			out, err := enc.Append(append([]byte(nil), prefix...), in)
			if err != nil {
				t.Fatalf("%v %s: %v", level, name, err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("%v %s: dst prefix overwritten", level, name)
			}
			got, err := dec.DecodeAll(out[len(prefix):], nil)
			if err != nil {
				t.Fatalf("%v %s: decode: %v", level, name, err)
			}
			if !bytes.Equal(got, in) {
				t.Fatalf("%v %s: round trip changed the data (%d bytes in, %d out)", level, name, len(in), len(got))
			}
			if name == "text" {
				sizes[level] = len(out) - len(prefix)
			}
		}
		enc.Close()
	}
	t.Logf("%s: 1 MiB of text -> %v", Implementation, sizes)
	if !(sizes[Best] < sizes[Fastest] && sizes[Better] < sizes[Fastest]) {
		t.Errorf("stronger levels are not smaller: %v", sizes)
	}
	if sizes[Fastest] > 1<<20/2 {
		t.Errorf("fastest level compressed 1 MiB of text only to %d bytes", sizes[Fastest])
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Many goroutines sharing one encoder with fewer slots each get their own
// data back (run with -race to check the context hand-off).
func TestAppendConcurrent(t *testing.T) {
	enc, err := NewEncoder(Fastest, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				in := sample(64<<10+g*1000+i, uint64(g*100+i))
				out, err := enc.Append(nil, in)
				if err != nil {
					errs <- err
					return
				}
				got, err := dec.DecodeAll(out, nil)
				if err != nil || !bytes.Equal(got, in) {
					errs <- fmt.Errorf("goroutine %d call %d: round trip failed (%v)", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewEncoderRefusesUnknownLevel(t *testing.T) {
	for _, l := range []Level{0, 5, -1} {
		if _, err := NewEncoder(l, 1); err == nil || !strings.Contains(err.Error(), "unknown compression level") {
			t.Errorf("level %d: got %v, want an unknown-level error", int(l), err)
		}
	}
}

func TestLevelNames(t *testing.T) {
	for l, want := range map[Level]string{Fastest: "fastest", Default: "default", Better: "better", Best: "best", 9: "level(9)"} {
		if l.String() != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), l.String(), want)
		}
	}
	for l, want := range map[Level]int{Fastest: 1, Default: 3, Better: 7, Best: 11} {
		if got := l.ZstdLevel(); got != want {
			t.Errorf("%v.ZstdLevel() = %d, want %d", l, got, want)
		}
	}
}
