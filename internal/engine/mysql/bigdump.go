package mysql

import (
	"crypto/sha256"
	"hash"

	"github.com/zeebo/xxh3"

	"github.com/snapdata/snapdata/internal/rowsum"
)

// A row whose values hold bigRowBytes or more is not encoded whole: the
// driver already holds it whole (one MySQL packet sequence, bounded by the
// server's max_allowed_packet), and a second, escaped copy in a buffer
// that keeps its size made a 200 MB LONGBLOB's backup peak at 1.1 GB.
// bigRowWriter escapes such a row in pieces, hashing and emitting each.
const bigRowBytes = 1 << 20

// rowLen is the bytes of a row's values (escapes and separators aside).
func rowLen(vals [][]byte) int {
	l := 0
	for _, v := range vals {
		l += len(v)
	}
	return l
}

type bigRowWriter struct {
	algo  rowsum.Algo
	sha   hash.Hash
	xh    *xxh3.Hasher
	piece []byte
}

// bigPieceIn is how much of a value is escaped at a time (at most twice
// as much comes out).
const bigPieceIn = 128 << 10

func newBigRowWriter(algo rowsum.Algo) *bigRowWriter {
	w := &bigRowWriter{algo: algo, piece: make([]byte, 0, 4*bigPieceIn)}
	if algo == rowsum.SHA256 {
		w.sha = sha256.New()
	} else {
		w.xh = xxh3.New()
	}
	return w
}

// write encodes one row as appendRow does, hands it to emit in pieces,
// adds its hash to sum and returns its encoded length.
func (w *bigRowWriter) write(vals [][]byte, sum *rowsum.Sum, emit func([]byte) error) (int64, error) {
	var n int64
	flush := func() error {
		if len(w.piece) == 0 {
			return nil
		}
		if w.sha != nil {
			w.sha.Write(w.piece)
		} else {
			w.xh.Write(w.piece)
		}
		n += int64(len(w.piece))
		err := emit(w.piece)
		w.piece = w.piece[:0]
		return err
	}
	for i, v := range vals {
		if i > 0 {
			w.piece = append(w.piece, '\t')
		}
		if v == nil {
			w.piece = append(w.piece, '\\', 'N')
			continue
		}
		for len(v) > 0 {
			k := min(len(v), bigPieceIn)
			w.piece = appendEscaped(w.piece, v[:k])
			v = v[k:]
			if len(w.piece) >= 2*bigPieceIn {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	w.piece = append(w.piece, '\n')
	if err := flush(); err != nil {
		return n, err
	}
	if w.sha != nil {
		var d [sha256.Size]byte
		sum.Add256(w.sha.Sum(d[:0]))
		w.sha.Reset()
	} else {
		sum.Add128(w.xh.Sum128())
		w.xh.Reset()
	}
	return n, nil
}
