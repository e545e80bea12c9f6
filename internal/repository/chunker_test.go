package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/restic/chunker"

	"github.com/snapdata/snapdata/bench/dataset"
	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/crypto"
)

// realistic returns about n bytes of the benchmark dataset as COPY text,
// all tables one after the other.
func realistic(n int64) []byte {
	d := dataset.New(n, 7)
	var out []byte
	for _, t := range d.Tables {
		g := d.NewGen(t, 0)
		row := make([]any, 0, len(t.Columns))
		for id := int64(1); id <= t.Rows; id++ {
			row = g.Row(id, row)
			out = dataset.AppendTSV(out, t, row)
		}
	}
	return out
}

func testParams(t testing.TB, name string, bits int) Params {
	t.Helper()
	p := Params{Chunker: name, ChunkAvgBits: bits, ChunkMin: 1 << (bits - 2), ChunkMax: 1 << (bits + 3)}
	if name == ChunkerRabin {
		pol, err := chunker.RandomPolynomial()
		if err != nil {
			t.Fatal(err)
		}
		p.ChunkerPol = pol
	} else {
		p.ChunkerKey = crypto.RandomBytes(32)
	}
	return p
}

// oddReader returns data in reads of varying sizes, like a pipe.
type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.i++
	n := min(len(p), 1+(r.i*7919)%300000, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func cut(t testing.TB, p Params, data []byte) [][]byte {
	t.Helper()
	c, err := NewChunker(&oddReader{b: data}, p)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), ch...))
	}
}

func TestChunkSizesOnRealisticData(t *testing.T) {
	data := realistic(64 << 20)
	for _, bits := range []int{16, 20} {
		for _, name := range Chunkers {
			p := testParams(t, name, bits)
			chunks := cut(t, p, data)
			if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
				t.Fatalf("%s: chunks do not add up to the data", name)
			}
			var sum, sq float64
			for i, c := range chunks {
				if len(c) > int(p.ChunkMax) || (len(c) < int(p.ChunkMin) && i != len(chunks)-1) {
					t.Errorf("%s 2^%d: chunk %d has %d bytes, outside [%d, %d]", name, bits, i, len(c), p.ChunkMin, p.ChunkMax)
				}
				sum += float64(len(c))
				sq += float64(len(c)) * float64(len(c))
			}
			n := float64(len(chunks))
			mean := sum / n
			sd := math.Sqrt(sq/n - mean*mean)
			t.Logf("%s 2^%d: %d chunks, mean %.0f KiB (%.2f× target), sd %.0f KiB", name, bits, len(chunks), mean/1024, mean/float64(uint(1)<<bits), sd/1024)
			if name == ChunkerFastCDC {
				// Normalized chunking keeps the mean at the target and
				// the spread well below an exponential's.
				if r := mean / float64(uint(1)<<bits); r < 0.8 || r > 1.25 {
					t.Errorf("%s 2^%d: mean chunk %.0f bytes is %.2f× the target", name, bits, mean, r)
				}
				if sd > 0.6*mean {
					t.Errorf("%s 2^%d: standard deviation %.0f for mean %.0f", name, bits, sd, mean)
				}
			}
		}
	}
}

func TestChunkBoundariesSurviveAnInsertion(t *testing.T) {
	data := realistic(24 << 20)
	for _, name := range Chunkers {
		p := testParams(t, name, 16)
		before := cut(t, p, data)
		mid := len(data) / 2
		edited := append(append(append([]byte(nil), data[:mid]...), []byte("an inserted row\t42\t2026-11-22\n")...), data[mid:]...)
		after := cut(t, p, edited)
		old := map[string]bool{}
		for _, c := range before {
			old[string(c)] = true
		}
		changed := 0
		for _, c := range after {
			if !old[string(c)] {
				changed++
			}
		}
		if changed < 1 || changed > 3 {
			t.Errorf("%s: an insertion changed %d of %d chunks, want 1 to 3", name, changed, len(after))
		}
		// A different key cuts elsewhere: boundaries are secret.
		other := cut(t, testParams(t, name, 16), data)
		same := 0
		for _, c := range other {
			if old[string(c)] {
				same++
			}
		}
		if same > len(other)/10 {
			t.Errorf("%s: %d of %d chunks are the same with another key", name, same, len(other))
		}
	}
}

func TestGearTableIsKeyed(t *testing.T) {
	a, b := gearTable([]byte("key one, 32 bytes long.........")), gearTable([]byte("key two, 32 bytes long........."))
	if *a == *b {
		t.Fatal("two keys give the same gear table")
	}
	if *a != *gearTable([]byte("key one, 32 bytes long.........")) {
		t.Fatal("the gear table is not deterministic")
	}
}

// A repository from before the chunker field (version 1, Rabin, no
// "chunker" key in its params) opens unchanged and deduplicates against
// itself.
func TestOldRabinRepositoryOpensAndDedups(t *testing.T) {
	for _, enc := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "repo")
		ctx := context.Background()
		r, err := Init(ctx, local.New(dir), InitOptions{Password: []byte("pw"), NoEncryption: !enc, Chunker: ChunkerRabin, ChunkAvgBits: 15, NoColumns: true, KDF: fastKDF()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		data := text(3, 2<<20)
		first := commit(t, r, "s", map[string][]byte{"a": data})
		r.Close()

		// Rewrite the config as the old code wrote it.
		be := local.New(dir)
		raw, err := be.Load(ctx, backend.Handle{Type: backend.Config})
		if err != nil {
			t.Fatal(err)
		}
		var cf configFile
		if err := json.Unmarshal(raw, &cf); err != nil {
			t.Fatal(err)
		}
		if cf.Version != 1 {
			t.Fatalf("a rabin repository is written as version %d, want 1 (older releases read it)", cf.Version)
		}
		var key *crypto.Key
		pjson := []byte(cf.Params)
		if enc {
			key = r.key
			if pjson, err = key.Open(nil, cf.Sealed); err != nil {
				t.Fatal(err)
			}
		}
		var m map[string]any
		if err := json.Unmarshal(pjson, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "chunker")
		delete(m, "chunker_key")
		if pjson, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		if enc {
			cf.Sealed = key.Seal(nil, pjson)
		} else {
			cf.Params = pjson
		}
		if raw, err = json.Marshal(cf); err != nil {
			t.Fatal(err)
		}
		if err := be.Save(ctx, backend.Handle{Type: backend.Config}, raw); err != nil {
			t.Fatal(err)
		}

		r2, err := Open(ctx, be, []byte("pw"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Params().Chunker != "" || r2.Params().ChunkerName() != ChunkerRabin {
			t.Fatalf("old repository: chunker %q (%s)", r2.Params().Chunker, r2.Params().ChunkerName())
		}
		second := commit(t, r2, "s", map[string][]byte{"a": data})
		if second.AddedBytes != 0 {
			t.Errorf("unchanged data in an old repository added %d bytes", second.AddedBytes)
		}
		if got := readStream(t, r2, first.Streams[0]); !bytes.Equal(got, data) {
			t.Error("old snapshot does not read back")
		}
		r2.Close()
	}
}

func TestInitRejectsUnknownNames(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "r")
	_, err := Init(ctx, local.New(dir), InitOptions{NoEncryption: true, Chunker: "buzhash"}, nil)
	if !errors.Is(err, ErrUnknownChunker) {
		t.Errorf("chunker buzhash: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s behind (%v)", dir, err)
	}
	_, err = Init(ctx, local.New(filepath.Join(t.TempDir(), "r")), InitOptions{NoEncryption: true, CompressionLevel: 9}, nil)
	if !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("compression level 9: %v", err)
	}
	if _, err := ParseCompression("ultra"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("ParseCompression(ultra): %v", err)
	}
	for _, n := range Compressions {
		l, err := ParseCompression(n)
		if err != nil || CompressionName(l) != n {
			t.Errorf("%s: level %d, name %q, %v", n, l, CompressionName(l), err)
		}
	}
}

func BenchmarkChunker(b *testing.B) {
	data := realistic(64 << 20)
	for _, name := range Chunkers {
		b.Run(name, func(b *testing.B) {
			p := testParams(b, name, 20)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				c, err := NewChunker(bytes.NewReader(data), p)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := c.Next(); err != nil {
						break
					}
				}
			}
		})
	}
}

// Boundaries depend on the content only, not on how reads split it.
func TestChunksDoNotDependOnReadSizes(t *testing.T) {
	data := realistic(4 << 20)
	for _, name := range Chunkers {
		p := testParams(t, name, 14)
		odd := cut(t, p, data)
		c, err := NewChunker(iotest.OneByteReader(bytes.NewReader(data)), p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			ch, err := c.Next()
			if errors.Is(err, io.EOF) {
				if i != len(odd) {
					t.Errorf("%s: %d chunks with one-byte reads, %d with larger ones", name, i, len(odd))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if i >= len(odd) || !bytes.Equal(ch, odd[i]) {
				t.Fatalf("%s: chunk %d differs between read sizes", name, i)
			}
		}
	}
}
