package repository

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/restic/chunker"
)

// Chunker names stored in Params.Chunker.
const (
	// ChunkerRabin is restic/chunker's Rabin fingerprint with a secret
	// per-repository polynomial. Repositories whose config has no chunker
	// field use it.
	ChunkerRabin = "rabin"
	// ChunkerFastCDC is FastCDC (gear hash, normalized chunking level 2)
	// with a gear table derived from a secret per-repository key. It is the
	// default for new repositories: about 2–3× faster than Rabin and with a
	// tighter chunk-size distribution.
	ChunkerFastCDC = "fastcdc"
	// DefaultChunker is what Init uses when InitOptions.Chunker is empty.
	DefaultChunker = ChunkerFastCDC
)

// Chunkers lists the chunker names Init accepts.
var Chunkers = []string{ChunkerFastCDC, ChunkerRabin}

// ErrUnknownChunker is returned for a chunker name this code does not know.
var ErrUnknownChunker = errors.New("unknown chunker")

// Chunker cuts a byte stream into content-defined chunks.
type Chunker interface {
	// Next returns the next chunk, or io.EOF after the last one. The slice
	// is only valid until the next call.
	Next() ([]byte, error)
}

// NewChunker returns the chunker the parameters describe, reading from rd.
func NewChunker(rd io.Reader, p Params) (Chunker, error) {
	newChunker, err := chunkerFor(p)
	if err != nil {
		return nil, err
	}
	return newChunker(rd), nil
}

// chunkerFor checks the parameters and derives what every stream's
// chunker shares (the gear table) once; the Repository keeps the result.
func chunkerFor(p Params) (func(io.Reader) Chunker, error) {
	if err := p.checkChunker(); err != nil {
		return nil, err
	}
	if p.ChunkerName() == ChunkerRabin {
		return func(rd io.Reader) Chunker {
			c := chunker.NewWithBoundaries(rd, p.ChunkerPol, p.ChunkMin, p.ChunkMax)
			c.SetAverageBits(p.ChunkAvgBits)
			return &rabinChunker{c: c, buf: make([]byte, p.ChunkMax)}
		}, nil
	}
	g := gearTable(p.ChunkerKey)
	return func(rd io.Reader) Chunker { return newFastCDC(rd, g, p.ChunkMin, p.ChunkAvgBits, p.ChunkMax) }, nil
}

// checkChunker reports chunker parameters NewChunker cannot use.
func (p Params) checkChunker() error {
	name := p.ChunkerName()
	if name != ChunkerRabin && name != ChunkerFastCDC {
		return fmt.Errorf("%w %q (this snapdata knows %v)", ErrUnknownChunker, p.Chunker, Chunkers)
	}
	if p.ChunkAvgBits < 6 || p.ChunkAvgBits > 30 {
		return fmt.Errorf("%s chunker: average chunk size 2^%d is out of range", name, p.ChunkAvgBits)
	}
	avg := uint(1) << p.ChunkAvgBits
	if p.ChunkMin == 0 || p.ChunkMin >= avg || p.ChunkMax <= avg {
		return fmt.Errorf("%s chunker: sizes min %d, average %d, max %d are not ordered", name, p.ChunkMin, avg, p.ChunkMax)
	}
	switch name {
	case ChunkerRabin:
		if !p.ChunkerPol.Irreducible() {
			return errors.New("rabin chunker: the repository's polynomial is not irreducible")
		}
	case ChunkerFastCDC:
		if len(p.ChunkerKey) < 16 {
			return errors.New("fastcdc chunker: the repository config has no chunker key")
		}
	}
	return nil
}

type rabinChunker struct {
	c   *chunker.Chunker
	buf []byte
}

func (r *rabinChunker) Next() ([]byte, error) {
	ch, err := r.c.Next(r.buf)
	if err != nil {
		return nil, err
	}
	return ch.Data, nil
}

// gearTable derives FastCDC's 256 random 64-bit values from the secret
// chunker key, so that chunk boundaries (visible to whoever stores the
// repository through object sizes) do not reveal which known content the
// repository holds: entry i is the first 8 bytes of
// HMAC-SHA256(key, "snapdata fastcdc gear" || i).
func gearTable(key []byte) *[256]uint64 {
	var g [256]uint64
	m := hmac.New(sha256.New, key)
	var sum [sha256.Size]byte
	for i := range g {
		m.Reset()
		m.Write([]byte("snapdata fastcdc gear"))
		m.Write([]byte{byte(i)})
		g[i] = binary.LittleEndian.Uint64(m.Sum(sum[:0]))
	}
	return &g
}

// fastCDC is FastCDC (Xia et al., USENIX ATC 2016) with normalized chunking
// level 2: no cut before min; from min to the normal point a cut needs
// avgBits+2 zero bits of the gear hash, after it avgBits-2, and max forces
// a cut. The normal point is 13/16 of the average size rather than the
// average itself, because the stricter mask before it lengthens chunks: with
// min = average/4 this puts the mean chunk size at the average (1.05× on the
// benchmark data, standard deviation ~0.3× the mean; Rabin: ~1.5×, ~1.4×).
//
// The hash is carried across reads, so the buffer only needs max bytes plus
// a read window.
type fastCDC struct {
	rd     io.Reader
	g      *[256]uint64
	min    int
	normal int
	max    int
	maskS  uint64 // before the normal point: harder to match
	maskL  uint64 // after it: easier

	buf   []byte
	start int // first byte of the current chunk
	pos   int // next byte to hash
	end   int // end of buffered data
	fp    uint64
	eof   bool
	err   error
}

const fastCDCReadSize = 1 << 20

// newFastCDC expects parameters checked by Params.checkChunker.
func newFastCDC(rd io.Reader, g *[256]uint64, minSize uint, avgBits int, maxSize uint) *fastCDC {
	avg := 1 << avgBits
	normal := avg * 13 / 16
	if normal < int(minSize) {
		normal = int(minSize)
	}
	// The mask bits are the top bits of the hash: bit k of a gear hash
	// depends on the last k+1 bytes, so the top bits see a 40+ byte window.
	return &fastCDC{
		rd:     rd,
		g:      g,
		min:    int(minSize),
		normal: normal,
		max:    int(maxSize),
		maskS:  ^uint64(0) << (64 - (avgBits + 2)),
		maskL:  ^uint64(0) << (64 - (avgBits - 2)),
		buf:    make([]byte, int(maxSize)+fastCDCReadSize),
	}
}

// fill reads more data, moving the current chunk to the front of the buffer
// when the buffer is full.
func (c *fastCDC) fill() {
	if c.end == len(c.buf) {
		n := copy(c.buf, c.buf[c.start:c.end])
		c.pos -= c.start
		c.start, c.end = 0, n
	}
	for range 100 {
		n, err := c.rd.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.eof = true
			} else {
				c.err = err
			}
			return
		}
		if n > 0 {
			return
		}
	}
	c.err = io.ErrNoProgress
}

// scan hashes b and returns the index of the first byte after which the
// hash has no bit of mask set, or -1.
func scan(g *[256]uint64, b []byte, fp, mask uint64) (int, uint64) {
	for i, x := range b {
		fp = fp<<1 + g[x]
		if fp&mask == 0 {
			return i, fp
		}
	}
	return -1, fp
}

func (c *fastCDC) emit(n int) []byte {
	ch := c.buf[c.start : c.start+n]
	c.start += n
	c.pos = c.start + c.min
	c.fp = 0
	return ch
}

// Next returns the next chunk, valid until the next call.
func (c *fastCDC) Next() ([]byte, error) {
	if c.pos < c.start+c.min {
		c.pos = c.start + c.min
	}
	for {
		// Hash what is buffered, up to the normal point with the strict
		// mask and from there to max with the loose one.
		for _, r := range [2]struct {
			limit int
			mask  uint64
		}{{c.start + c.normal, c.maskS}, {c.start + c.max, c.maskL}} {
			hi := min(r.limit, c.end)
			if c.pos >= hi {
				continue
			}
			i, fp := scan(c.g, c.buf[c.pos:hi], c.fp, r.mask)
			c.fp = fp
			if i >= 0 {
				return c.emit(c.pos + i + 1 - c.start), nil
			}
			c.pos = hi
		}
		if c.end-c.start >= c.max {
			return c.emit(c.max), nil
		}
		if c.err != nil {
			return nil, c.err
		}
		if c.eof {
			if c.end > c.start {
				return c.emit(c.end - c.start), nil
			}
			return nil, io.EOF
		}
		c.fill()
	}
}
