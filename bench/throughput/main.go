// Command throughput measures the repository write path (content-defined
// chunking, keyed hashing, zstd compression, AES-GCM sealing and the local
// backend) on realistic data, end to end and stage by stage.
//
//	throughput --size 256MB --dir /tmp/tp [--cpuprofile cpu.pprof]
//
// It prints "key value" lines that bench/run turns into the results table.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/restic/chunker"

	"github.com/snapdata/snapdata/bench/dataset"
	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/columns"
	"github.com/snapdata/snapdata/internal/compress"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/repository"
)

func main() {
	size := flag.String("size", "256MB", "amount of realistic data to push through")
	dir := flag.String("dir", "", "directory for the repository (default: a temp dir)")
	streams := flag.Int("streams", 2, "parallel streams in the end-to-end run (backup uses one per table and job)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the end-to-end runs")
	writeData := flag.String("write-data", "", "also write the generated data to this file (for the zstd CLI anchor)")
	flag.Parse()
	n, err := dataset.ParseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := run(context.Background(), n, *dir, *streams, *cpuprofile, *writeData); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

// makeData renders the dataset as COPY text, one buffer per table, like the
// streams a PostgreSQL backup produces.
func makeData(n int64) [][]byte {
	d := dataset.New(n, 7)
	var out [][]byte
	for _, t := range d.Tables {
		g := d.NewGen(t, 0)
		buf := make([]byte, 0, int(float64(n)*1.1)/len(d.Tables))
		row := make([]any, 0, len(t.Columns))
		for id := int64(1); id <= t.Rows; id++ {
			row = g.Row(id, row)
			buf = dataset.AppendTSV(buf, t, row)
		}
		out = append(out, buf)
	}
	return out
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

func run(ctx context.Context, n int64, dir string, streams int, cpuprofile, writeData string) error {
	data := makeData(n)
	if writeData != "" {
		f, err := os.Create(writeData)
		if err != nil {
			return err
		}
		for _, b := range data {
			if _, err := f.Write(b); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", writeData, err)
			}
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", writeData, err)
		}
	}
	var total int64
	for _, b := range data {
		total += int64(len(b))
	}
	fmt.Printf("data_bytes %d\n", total)
	fmt.Printf("cpus %d\n", runtime.NumCPU())
	if dir == "" {
		d, err := os.MkdirTemp("", "snapdata-throughput-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}

	// Single-core stage rates, each over all data. Both chunkers run
	// through internal/repository with 1 MiB average chunks (min 256 KiB,
	// max 8 MiB); the later stages use the default chunker's chunks.
	var cuts [][]byte
	for _, name := range []string{repository.ChunkerRabin, repository.DefaultChunker} {
		p, err := chunkerParams(name)
		if err != nil {
			return err
		}
		cuts = cuts[:0]
		start := time.Now()
		for _, b := range data {
			c, err := repository.NewChunker(bytesReader(b), p)
			if err != nil {
				return err
			}
			off := 0
			for {
				ch, err := c.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				cuts = append(cuts, b[off:off+len(ch)])
				off += len(ch)
			}
		}
		el := time.Since(start)
		fmt.Printf("stage_chunker_%s_mbps %.1f\n", name, mbps(total, el))
		fmt.Printf("chunks_%s %d\n", name, len(cuts))
		if name == repository.DefaultChunker {
			fmt.Printf("stage_chunker_mbps %.1f\n", mbps(total, el))
			fmt.Printf("chunks %d\n", len(cuts))
		}
	}

	key := crypto.RandomBytes(32)
	start := time.Now()
	for _, c := range cuts {
		m := hmac.New(sha256.New, key)
		m.Write(c)
		m.Sum(nil)
	}
	fmt.Printf("stage_hmac_sha256_mbps %.1f\n", mbps(total, time.Since(start)))

	// Per-row table checksums as the PostgreSQL engine computes them (a
	// SHA-256 per COPY row), against a per-row xxhash64.
	start = time.Now()
	var acc [32]byte
	for _, b := range data {
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			h := sha256.Sum256(b[:i+1])
			acc[0] ^= h[0]
			b = b[i+1:]
		}
	}
	fmt.Printf("stage_row_sha256_mbps %.1f\n", mbps(total, time.Since(start)))
	start = time.Now()
	var acc64 uint64
	for _, b := range data {
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			acc64 += xxhash.Sum64(b[:i+1])
			b = b[i+1:]
		}
	}
	fmt.Printf("stage_row_xxhash64_mbps %.1f\n", mbps(total, time.Since(start)))
	_ = acc[0] + byte(acc64)

	// The encoder snapdata compresses with (libzstd when built with cgo),
	// one call at a time, at each level init --compression offers but best.
	fmt.Printf("zstd_implementation %q\n", compress.Implementation)
	var compressed [][]byte
	var csize int64 // fastest level
	for _, level := range []compress.Level{compress.Fastest, compress.Default, compress.Better} {
		enc, err := compress.NewEncoder(level, 1)
		if err != nil {
			return err
		}
		var n int64
		start = time.Now()
		for _, c := range cuts {
			z, err := enc.Append(make([]byte, 0, len(c)/2), c)
			if err != nil {
				return err
			}
			if level == compress.Fastest {
				compressed = append(compressed, z)
			}
			n += int64(len(z))
		}
		fmt.Printf("stage_zstd_%s_mbps %.1f\n", level, mbps(total, time.Since(start)))
		fmt.Printf("zstd_%s_ratio %.2f\n", level, float64(total)/float64(n))
		if level == compress.Fastest {
			csize = n
		}
		enc.Close()
	}

	// The column filter (init --columns, the default) in front of zstd at
	// the fastest level: encode, compress, decode, each on one core.
	var ce columns.Encoder
	filtered := make([][]byte, len(cuts))
	nf := 0
	start = time.Now()
	for i, c := range cuts {
		t, ok := ce.Encode(make([]byte, 0, len(c)+64), c)
		if ok {
			nf++
		} else {
			t = c
		}
		filtered[i] = t
	}
	fmt.Printf("stage_columns_encode_mbps %.1f\n", mbps(total, time.Since(start)))
	fmt.Printf("columns_filtered_chunks %d of %d\n", nf, len(cuts))
	enc, err := compress.NewEncoder(compress.Fastest, 1)
	if err != nil {
		return err
	}
	var fsize int64
	start = time.Now()
	for _, t := range filtered {
		z, err := enc.Append(make([]byte, 0, len(t)/2), t)
		if err != nil {
			return err
		}
		fsize += int64(len(z))
	}
	fmt.Printf("stage_columns_zstd_fastest_mbps %.1f\n", mbps(total, time.Since(start)))
	fmt.Printf("columns_zstd_fastest_ratio %.2f\n", float64(total)/float64(fsize))
	enc.Close()
	var cd columns.Decoder
	out := make([]byte, 0, 16<<20)
	start = time.Now()
	for i, t := range filtered {
		if len(t) == len(cuts[i]) && &t[0] == &cuts[i][0] {
			continue // not filtered
		}
		if out, err = cd.Decode(out[:0], t); err != nil {
			return fmt.Errorf("column filter decode: %w", err)
		}
	}
	fmt.Printf("stage_columns_decode_mbps %.1f\n", mbps(total, time.Since(start)))

	k, err := crypto.NewKey(crypto.RandomBytes(crypto.KeySize))
	if err != nil {
		return err
	}
	var sealed [][]byte
	start = time.Now()
	for _, z := range compressed {
		sealed = append(sealed, k.Seal(nil, z))
	}
	fmt.Printf("stage_aes_gcm_mbps %.1f\n", mbps(csize, time.Since(start)))

	be := local.New(filepath.Join(dir, "stage-backend"))
	if err := be.Create(ctx); err != nil {
		return err
	}
	start = time.Now()
	for i, s := range sealed {
		h := backend.Handle{Type: backend.Data, Name: fmt.Sprintf("%064x", i)}
		if err := be.Save(ctx, h, s); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("stage_local_save_mbps %.1f\n", mbps(csize, el))
	fmt.Printf("stage_local_save_ms_per_object %.2f\n", float64(el.Milliseconds())/float64(len(sealed)))
	os.RemoveAll(filepath.Join(dir, "stage-backend"))
	compressed, sealed, cuts = nil, nil, nil

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// End to end through internal/repository, as a backup writes: one
	// stream at a time, then several in parallel, with the default chunker
	// (e2e_streams_N_*), then with Rabin (e2e_rabin_streams_N_*).
	type e2eRun struct {
		par     int
		chunker string
		prefix  string
	}
	runs := []e2eRun{{1, repository.DefaultChunker, "e2e"}, {streams, repository.DefaultChunker, "e2e"}, {1, repository.ChunkerRabin, "e2e_rabin"}, {streams, repository.ChunkerRabin, "e2e_rabin"}}
	if streams == 1 {
		runs = []e2eRun{runs[0], runs[2]}
	}
	for _, run := range runs {
		par := run.par
		rdir := filepath.Join(dir, fmt.Sprintf("repo-%s-%d", run.chunker, par))
		kdf := crypto.DefaultKDF()
		kdf.Time, kdf.MemoryKiB = 1, 8*1024 // the KDF is not what is measured
		repo, err := repository.Init(ctx, local.New(rdir), repository.InitOptions{Password: []byte("bench"), KDF: &kdf, Chunker: run.chunker}, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		start = time.Now()
		up, err := repo.NewUploader(ctx)
		if err != nil {
			return err
		}
		work := make(chan []byte)
		var wg sync.WaitGroup
		errs := make(chan error, par)
		for w := 0; w < par; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					sw := up.NewStream()
					for off := 0; off < len(b); off += 256 << 10 {
						end := min(off+256<<10, len(b))
						if _, err := sw.Write(b[off:end]); err != nil {
							errs <- err
							return
						}
					}
					if _, _, err := sw.Close(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for _, b := range data {
			work <- b
		}
		close(work)
		wg.Wait()
		if err := up.Wait(); err != nil {
			return err
		}
		select {
		case err := <-errs:
			return err
		default:
		}
		el := time.Since(start)
		fmt.Printf("%s_streams_%d_mbps %.1f\n", run.prefix, par, mbps(total, el))
		fmt.Printf("%s_streams_%d_stored_bytes %d\n", run.prefix, par, up.AddedBytes())
		fmt.Printf("%s_streams_%d_objects %d\n", run.prefix, par, up.NewChunks())
		repo.Close()
		os.RemoveAll(rdir)
	}
	return nil
}

// chunkerParams returns repository parameters for a chunker with the
// default sizes and a fresh secret, as init makes them.
func chunkerParams(name string) (repository.Params, error) {
	p := repository.Params{Chunker: name, ChunkAvgBits: 20, ChunkMin: 256 << 10, ChunkMax: 8 << 20}
	if name == repository.ChunkerRabin {
		pol, err := chunker.RandomPolynomial()
		if err != nil {
			return p, err
		}
		p.ChunkerPol = pol
	} else {
		p.ChunkerKey = crypto.RandomBytes(32)
	}
	return p, nil
}

type sliceReader struct {
	b []byte
}

func bytesReader(b []byte) *sliceReader { return &sliceReader{b: b} }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
