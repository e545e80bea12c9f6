package repository

import (
	"errors"
	"fmt"

	"github.com/snapdata/snapdata/internal/compress"
)

// Compression names accepted by ParseCompression (init --compression).
var Compressions = []string{"fastest", "default", "better", "best"}

// ErrUnknownCompression is returned for a compression name or level this
// code does not know.
var ErrUnknownCompression = errors.New("unknown compression")

var compressionLevels = map[string]compress.Level{
	"fastest": compress.Fastest, // zstd -1
	"default": compress.Default, // zstd -3
	"better":  compress.Better,  // zstd -7
	"best":    compress.Best,    // zstd -11
}

// ParseCompression maps a compression name to the zstd level stored in
// Params.CompressionLevel.
func ParseCompression(name string) (int, error) {
	l, ok := compressionLevels[name]
	if !ok {
		return 0, fmt.Errorf("%w %q (expected one of %v)", ErrUnknownCompression, name, Compressions)
	}
	return int(l), nil
}

// CompressionName returns the name of a stored compression level.
func CompressionName(level int) string {
	if n, ok := compressionName(level); ok {
		return n
	}
	return fmt.Sprintf("zstd level %d", level)
}

func compressionName(level int) (string, bool) {
	for n, l := range compressionLevels {
		if int(l) == level {
			return n, true
		}
	}
	return "", false
}
