//go:build cgo

package compress

import (
	"fmt"
	"sync/atomic"

	czstd "github.com/DataDog/zstd"
)

// Implementation names the zstd implementation of this build.
const Implementation = "libzstd (cgo, github.com/DataDog/zstd)"

// cgoEncoder hands each call one of at most n libzstd contexts, each with
// its own output buffer so that a call allocates nothing but what it
// appends to dst. slots holds n entries: an idle context, or nil for one
// not made yet; a call waits when all n are in use.
type cgoEncoder struct {
	level int
	slots chan *cgoCtx
	made  atomic.Int64 // contexts made, for the test of the bound
}

type cgoCtx struct {
	ctx czstd.Ctx
	out []byte
}

func newEncoder(level Level, concurrency int) (Encoder, error) {
	slots := make(chan *cgoCtx, concurrency)
	for range concurrency {
		slots <- nil
	}
	return &cgoEncoder{level: level.ZstdLevel(), slots: slots}, nil
}

func (e *cgoEncoder) Append(dst, src []byte) ([]byte, error) {
	c := <-e.slots
	defer func() { e.slots <- c }()
	if c == nil {
		c = &cgoCtx{ctx: czstd.NewCtx()}
		e.made.Add(1)
	}
	if bound := czstd.CompressBound(len(src)); cap(c.out) < bound {
		c.out = make([]byte, bound)
	}
	out, err := c.ctx.CompressLevel(c.out[:0], src, e.level)
	if err != nil {
		return dst, fmt.Errorf("zstd compress: %w", err)
	}
	return append(dst, out...), nil
}

// Close drops the idle contexts; libzstd's memory is freed when the
// collector finalizes them.
func (e *cgoEncoder) Close() {
	for range cap(e.slots) {
		select {
		case <-e.slots:
			e.slots <- nil
		default:
			return
		}
	}
}
