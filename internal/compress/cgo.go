//go:build cgo

package compress

import (
	"fmt"
	"sync"

	czstd "github.com/DataDog/zstd"
)

// Implementation names the zstd implementation of this build.
const Implementation = "libzstd (cgo, github.com/DataDog/zstd)"

// cgoEncoder hands each call one of at most n libzstd contexts, each with
// its own output buffer so that a call allocates nothing but what it
// appends to dst.
type cgoEncoder struct {
	level int
	sem   chan struct{} // one token per running call

	mu   sync.Mutex
	idle []*cgoCtx
}

type cgoCtx struct {
	ctx czstd.Ctx
	out []byte
}

func newEncoder(level Level, concurrency int) (Encoder, error) {
	return &cgoEncoder{level: level.ZstdLevel(), sem: make(chan struct{}, concurrency)}, nil
}

func (e *cgoEncoder) Append(dst, src []byte) ([]byte, error) {
	e.sem <- struct{}{}
	defer func() { <-e.sem }()
	e.mu.Lock()
	var c *cgoCtx
	if n := len(e.idle); n > 0 {
		c, e.idle = e.idle[n-1], e.idle[:n-1]
	}
	e.mu.Unlock()
	if c == nil {
		c = &cgoCtx{ctx: czstd.NewCtx()}
	}
	if bound := czstd.CompressBound(len(src)); cap(c.out) < bound {
		c.out = make([]byte, bound)
	}
	out, err := c.ctx.CompressLevel(c.out[:0], src, e.level)
	if err == nil {
		dst = append(dst, out...)
	}
	e.mu.Lock()
	e.idle = append(e.idle, c)
	e.mu.Unlock()
	if err != nil {
		return dst, fmt.Errorf("zstd compress: %w", err)
	}
	return dst, nil
}

// Close drops the idle contexts; libzstd's memory is freed when the
// collector finalizes them.
func (e *cgoEncoder) Close() {
	e.mu.Lock()
	e.idle = nil
	e.mu.Unlock()
}
