package sqlite

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/snapdata/snapdata/internal/engine"
)

// Row encoding "sqlite-rows/1": each value is a tag byte followed by its
// payload, rows are the table's values in column order (the rowid first
// when the manifest says it is stored). It keeps SQLite's five storage
// classes exactly, so a restore gives back the same typed values.
const (
	tagNull  = 0
	tagInt   = 1
	tagReal  = 2
	tagText  = 3
	tagBlob  = 4
	rowsType = "sqlite-rows/1"
)

// rowEncoder appends encoded values to a buffer.
type rowEncoder struct {
	buf []byte
}

func (e *rowEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, tagNull)
	case int64:
		e.buf = append(e.buf, tagInt)
		e.buf = binary.AppendVarint(e.buf, x)
	case float64:
		e.buf = append(e.buf, tagReal)
		e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(x))
	case string:
		e.buf = append(e.buf, tagText)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(x)))
		e.buf = append(e.buf, x...)
	case []byte:
		e.buf = append(e.buf, tagBlob)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(x)))
		e.buf = append(e.buf, x...)
	case bool:
		e.buf = append(e.buf, tagInt)
		var i int64
		if x {
			i = 1
		}
		e.buf = binary.AppendVarint(e.buf, i)
	default:
		return fmt.Errorf("unexpected value of type %T", v)
	}
	return nil
}

// rowDecoder reads values back.
type rowDecoder struct {
	r *bufio.Reader
}

func newRowDecoder(r io.Reader) *rowDecoder { return &rowDecoder{r: bufio.NewReaderSize(r, 256<<10)} }

// next reads one row of n values into dst. It returns io.EOF at a clean end.
func (d *rowDecoder) next(dst []any) error {
	for i := range dst {
		tag, err := d.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && i == 0 {
				return io.EOF
			}
			return fmt.Errorf("truncated row: %w", io.ErrUnexpectedEOF)
		}
		switch tag {
		case tagNull:
			dst[i] = nil
		case tagInt:
			v, err := binary.ReadVarint(d.r)
			if err != nil {
				return fmt.Errorf("bad integer: %w", err)
			}
			dst[i] = v
		case tagReal:
			var b [8]byte
			if _, err := io.ReadFull(d.r, b[:]); err != nil {
				return fmt.Errorf("bad real: %w", err)
			}
			dst[i] = math.Float64frombits(binary.BigEndian.Uint64(b[:]))
		case tagText, tagBlob:
			n, err := binary.ReadUvarint(d.r)
			if err != nil {
				return fmt.Errorf("bad length: %w", err)
			}
			if n > 1<<31 {
				return fmt.Errorf("value of %d bytes is too large", n)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(d.r, b); err != nil {
				return fmt.Errorf("truncated value: %w", err)
			}
			if tag == tagText {
				dst[i] = string(b)
			} else {
				dst[i] = b
			}
		default:
			return fmt.Errorf("unknown value tag %d", tag)
		}
	}
	return nil
}

// eachRow decodes every row of a table's data streams, in part order, and
// calls fn with the values (rowid first when stored). fn must not keep the
// slice. onBytes, when not nil, receives the stream bytes consumed so far.
func eachRow(ctx context.Context, snap engine.SnapshotReader, t table, fn func(vals []any) error, onBytes func(int64)) error {
	vals := make([]any, t.width())
	for _, st := range snap.Manifest().TableStreams(t.Name) {
		rc, err := snap.Open(ctx, st)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		cr := &countingReader{r: rc}
		dec := newRowDecoder(cr)
		for n := 0; ; n++ {
			err := dec.next(vals)
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				err = fn(vals)
			} else {
				err = fmt.Errorf("table %s: stream %s: %w", t.Name, st.Name, err)
			}
			if err != nil {
				rc.Close()
				return err
			}
			if onBytes != nil && n%4096 == 4095 {
				onBytes(cr.take())
			}
		}
		if onBytes != nil {
			onBytes(cr.take())
		}
		rc.Close()
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) take() int64 { n := c.n; c.n = 0; return n }
