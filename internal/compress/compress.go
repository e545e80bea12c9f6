// Package compress holds the zstd encoder that the repository compresses
// objects with. Built with cgo (the default wherever a C compiler is
// installed) it uses the reference libzstd, bundled with
// github.com/DataDog/zstd; without cgo it uses klauspost/compress, pure Go.
// Both write standard zstd frames, so either build reads what the other
// wrote. On 1 MiB chunks of COPY text (bench/throughput's data, one core)
// libzstd level 1 runs at 367 MB/s against klauspost's fastest at 159 MB/s,
// with a slightly better ratio (3.57 against 3.55).
package compress

import (
	"fmt"
)

// Level is a compression level as stored in a repository's parameters. The
// numbers are those of klauspost/compress's EncoderLevel, which older
// repositories recorded.
type Level int

// The levels that init --compression offers.
const (
	Fastest Level = 1 // zstd -1
	Default Level = 2 // zstd -3
	Better  Level = 3 // zstd -7
	Best    Level = 4 // zstd -11
)

// Valid reports whether l is one of the known levels.
func (l Level) Valid() bool { return l >= Fastest && l <= Best }

// ZstdLevel is the reference zstd level that l stands for.
func (l Level) ZstdLevel() int {
	switch l {
	case Fastest:
		return 1
	case Default:
		return 3
	case Better:
		return 7
	case Best:
		return 11
	}
	return 0
}

func (l Level) String() string {
	switch l {
	case Fastest:
		return "fastest"
	case Default:
		return "default"
	case Better:
		return "better"
	case Best:
		return "best"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// An Encoder compresses whole buffers into single zstd frames. It is safe
// for concurrent use; at most the concurrency given to NewEncoder calls run
// at once (further calls wait), which bounds its memory.
type Encoder interface {
	// Append appends the zstd frame of src to dst and returns the result.
	Append(dst, src []byte) ([]byte, error)
	// Close releases the encoder's state; Append must not be called after.
	Close()
}

// NewEncoder returns an encoder at level that runs at most concurrency
// compressions at once (at least one).
func NewEncoder(level Level, concurrency int) (Encoder, error) {
	if !level.Valid() {
		return nil, fmt.Errorf("unknown compression level %d", int(level))
	}
	return newEncoder(level, max(concurrency, 1))
}
