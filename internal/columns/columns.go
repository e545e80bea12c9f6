// Package columns holds a reversible filter that stores tab-separated text
// column by column, so that a general-purpose compressor sees similar
// values side by side.
//
// A table's data stream (PostgreSQL COPY text, the MySQL/MariaDB load
// format) is lines of fields separated by tabs. Row by row, an id sits next
// to a name, a price and a timestamp; column by column, ids follow ids and
// timestamps follow timestamps, and their shared prefixes become matches.
// Columnar formats (Parquet, ORC) and Blosc's shuffle filter rest on the same
// idea.
//
// The filter works on any bytes: a chunk cut from a stream at arbitrary
// places has a partial line at its start (the head, up to and including the
// first newline) and at its end (the tail, after the last newline); they are
// kept as they are. The complete lines between them are transposed when
// every one of them has the same number of tab-separated fields (at least
// two, at most MaxColumns) and there are at least MinRows of them;
// otherwise Encode declines and the caller stores the chunk unfiltered.
// Since a field holds neither a tab nor a newline, the fields of one column
// are stored one after the other, each ended by a newline, and Decode puts
// the lines back together byte for byte. (Storing each column's field
// lengths apart from its bytes, which spares Decode the search for the
// newlines, made zstd level 1 store 8 % more on the bench data: the
// newlines are part of what it matches.)
//
// Encoded form (all integers unsigned varints):
//
//	rows  cols  len(head)  len(tail)  len(column 1) … len(column cols)
//	head  tail  column 1 … column cols
//
// where column j is field j of each line followed by '\n'. The decoded
// length is len(head) + len(tail) + the sum of the column lengths.
package columns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// MinRows is the fewest complete lines a chunk needs to be transposed.
const MinRows = 8

// MaxColumns is the most fields a line may have to be transposed.
const MaxColumns = 1600

// Slack is the spare capacity past the decoded length that Decode uses: a
// dst with DecodedLen(src)+Slack bytes free is not reallocated.
const Slack = 32

// ErrCorrupt is returned by Decode for input that Encode cannot have made.
var ErrCorrupt = errors.New("columns: corrupt encoding")

const (
	ones = 0x0101010101010101
	low7 = 0x7f7f7f7f7f7f7f7f
)

// zeroBytes sets the high bit of each byte of the result whose byte in v is
// zero, and no other bit (exact, unlike the borrowing variant).
func zeroBytes(v uint64) uint64 {
	return ^(((v & low7) + low7) | v | low7)
}

// newlineBit marks a newline's offset in the result of separators.
const newlineBit = 1 << 31

// separators appends to pos the offset of every tab and newline in b, in
// order; a newline's offset has newlineBit set. len(b) must be below
// newlineBit.
func separators(b []byte, pos []uint32) []uint32 {
	// masks returns the separators and the newlines of the word at i.
	masks := func(i int) (m, nl uint64) {
		v := binary.LittleEndian.Uint64(b[i:])
		nl = zeroBytes(v ^ ('\n' * ones))
		return nl | zeroBytes(v^('\t'*ones)), nl
	}
	i := 0
	for ; i+32 <= len(b); i += 32 {
		// Most stretches of 32 bytes in long fields (text, JSON) hold no
		// separator: one test skips them.
		m0, n0 := masks(i)
		m1, n1 := masks(i + 8)
		m2, n2 := masks(i + 16)
		m3, n3 := masks(i + 24)
		if m0|m1|m2|m3 == 0 {
			continue
		}
		pos = appendSeps(pos, i, m0, n0)
		pos = appendSeps(pos, i+8, m1, n1)
		pos = appendSeps(pos, i+16, m2, n2)
		pos = appendSeps(pos, i+24, m3, n3)
	}
	for ; i+8 <= len(b); i += 8 {
		m, nl := masks(i)
		pos = appendSeps(pos, i, m, nl)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '\n':
			pos = append(pos, uint32(i)|newlineBit)
		case '\t':
			pos = append(pos, uint32(i))
		}
	}
	return pos
}

// appendSeps appends the offsets of the separators m of the word at i,
// marking the newlines nl.
func appendSeps(pos []uint32, i int, m, nl uint64) []uint32 {
	for m != 0 {
		bit := bits.TrailingZeros64(m)
		p := uint32(i + bit>>3)
		if nl&(1<<bit) != 0 {
			p |= newlineBit
		}
		pos = append(pos, p)
		m &= m - 1
	}
	return pos
}

// newlines appends to pos the offset of every newline in b, in order.
// len(b) must be below newlineBit.
func newlines(b []byte, pos []uint32) []uint32 {
	i := 0
	for ; i+16 <= len(b); i += 16 {
		m0 := zeroBytes(binary.LittleEndian.Uint64(b[i:]) ^ ('\n' * ones))
		m1 := zeroBytes(binary.LittleEndian.Uint64(b[i+8:]) ^ ('\n' * ones))
		for m0 != 0 {
			pos = append(pos, uint32(i+bits.TrailingZeros64(m0)>>3))
			m0 &= m0 - 1
		}
		for m1 != 0 {
			pos = append(pos, uint32(i+8+bits.TrailingZeros64(m1)>>3))
			m1 &= m1 - 1
		}
	}
	for ; i < len(b); i++ {
		if b[i] == '\n' {
			pos = append(pos, uint32(i))
		}
	}
	return pos
}

// Encoder transposes chunks. Its zero value is ready to use; it keeps its
// buffers between calls and must not be used by two goroutines at once.
type Encoder struct {
	seps            []uint32
	colLen, at, end []int
}

// Encode appends the transposed form of src to dst. It returns dst
// unchanged and false when src is not lines of an equal number of
// tab-separated fields (see the package comment).
func (e *Encoder) Encode(dst, src []byte) ([]byte, bool) {
	if len(src) >= newlineBit {
		return dst, false
	}
	first := bytes.IndexByte(src, '\n')
	if first < 0 {
		return dst, false
	}
	last := bytes.LastIndexByte(src, '\n')
	head, body, tail := src[:first+1], src[first+1:last+1], src[last+1:]
	if len(body) == 0 {
		return dst, false
	}
	// The first line sets the number of columns; a quick look declines
	// most chunks that are not tables (SQL text, binary rows) before the
	// whole body is scanned.
	end := bytes.IndexByte(body, '\n')
	cols := bytes.Count(body[:end], []byte{'\t'}) + 1
	if cols < 2 || cols > MaxColumns {
		return dst, false
	}
	// Two passes over the separators' offsets: the first checks the lines
	// and measures the columns, the second moves each field into place.
	// (Appending each field to a buffer of its column in one pass over
	// the body was 30–50 % slower.)
	seps := separators(body, e.seps[:0])
	e.seps = seps
	if len(seps)%cols != 0 {
		return dst, false
	}
	rows := len(seps) / cols
	if rows < MinRows {
		return dst, false
	}
	if cap(e.colLen) < cols {
		e.colLen, e.at, e.end = make([]int, cols), make([]int, cols), make([]int, cols)
	}
	colLen, at, colEnd := e.colLen[:cols], e.at[:cols], e.end[:cols]
	clear(colLen)
	prev, j := -1, 0
	for _, p := range seps {
		nl := p&newlineBit != 0
		p &^= newlineBit
		if nl != (j == cols-1) {
			return dst, false
		}
		colLen[j] += int(p) - prev
		prev = int(p)
		if j++; j == cols {
			j = 0
		}
	}
	dst = binary.AppendUvarint(dst, uint64(rows))
	dst = binary.AppendUvarint(dst, uint64(cols))
	dst = binary.AppendUvarint(dst, uint64(len(head)))
	dst = binary.AppendUvarint(dst, uint64(len(tail)))
	for _, n := range colLen {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	dst = append(dst, head...)
	dst = append(dst, tail...)
	start := len(dst)
	// the columns take exactly the body's length
	dst = slices.Grow(dst, len(body))[:start+len(body)]
	off := start
	for j, n := range colLen {
		at[j] = off
		off += n
		colEnd[j] = off
	}
	prev, j = 0, 0
	for _, p := range seps {
		p &^= newlineBit
		o, n := at[j], int(p)-prev
		if n < 32 && o+32 <= colEnd[j] && prev+32 <= len(body) {
			// Short fields (most of them) are moved as two blocks of 16
			// bytes, much cheaper than a call to memmove. What is written
			// past the field's end lies in its own column, where the next
			// field overwrites it.
			*(*[16]byte)(dst[o:]) = *(*[16]byte)(body[prev:])
			*(*[16]byte)(dst[o+16:]) = *(*[16]byte)(body[prev+16:])
		} else {
			copy(dst[o:], body[prev:prev+n])
		}
		dst[o+n] = '\n'
		at[j] = o + n + 1
		prev = int(p) + 1
		if j++; j == cols {
			j = 0
		}
	}
	return dst, true
}

// Decoder puts transposed chunks back together. Its zero value is ready to
// use; it keeps its buffers between calls and must not be used by two
// goroutines at once.
type Decoder struct {
	seps         []uint32
	colLen, from []int
}

type header struct {
	rows, cols, head, tail int
	colLen                 []int
	data                   []byte // head, tail, columns
	total                  int
}

// readHeader parses and checks the header of an encoded chunk.
func readHeader(src []byte, colLen []int) (header, error) {
	var h header
	next := func(limit uint64) (int, error) {
		v, n := binary.Uvarint(src)
		if n <= 0 || v > limit {
			return 0, ErrCorrupt
		}
		src = src[n:]
		return int(v), nil
	}
	limit := uint64(len(src))
	var err error
	if h.rows, err = next(limit); err != nil {
		return h, err
	}
	if h.cols, err = next(MaxColumns); err != nil || h.cols < 2 || h.rows < 1 {
		return h, ErrCorrupt
	}
	if h.head, err = next(limit); err != nil {
		return h, err
	}
	if h.tail, err = next(limit); err != nil {
		return h, err
	}
	if cap(colLen) < h.cols {
		colLen = make([]int, h.cols)
	}
	h.colLen = colLen[:h.cols]
	sum := h.head + h.tail
	for j := range h.colLen {
		if h.colLen[j], err = next(limit); err != nil {
			return h, err
		}
		sum += h.colLen[j]
	}
	if sum != len(src) {
		return h, fmt.Errorf("%w: %d bytes of data, the header says %d", ErrCorrupt, len(src), sum)
	}
	h.data, h.total = src, sum
	return h, nil
}

// DecodedLen returns the length that Decode will produce for src, read from
// its header, so a caller can refuse an implausible size before allocating.
func DecodedLen(src []byte) (int, error) {
	h, err := readHeader(src, nil)
	if err != nil {
		return 0, err
	}
	return h.total, nil
}

// Decode appends the chunk that src encodes to dst.
func (d *Decoder) Decode(dst, src []byte) ([]byte, error) {
	h, err := readHeader(src, d.colLen)
	if err != nil {
		return dst, err
	}
	d.colLen = h.colLen
	data := h.data
	cols := data[h.head+h.tail:]
	if len(cols) >= newlineBit {
		return dst, ErrCorrupt
	}
	// The newlines of all columns, in order, then the lines put together
	// one after the other. (Finding each column's next newline while the
	// lines are put together, with no list of offsets, was 40–80 %
	// slower; so was writing column by column into the lines.)
	seps := newlines(cols, d.seps[:0])
	d.seps = seps
	// Every column must hold exactly rows newlines, its last one at its
	// end: with the newlines in order, checking the last one of each
	// column checks them all.
	if len(seps) != h.rows*h.cols {
		return dst, fmt.Errorf("%w: %d fields, the header says %d rows of %d", ErrCorrupt, len(seps), h.rows, h.cols)
	}
	if cap(d.from) < h.cols {
		d.from = make([]int, h.cols)
	}
	from := d.from[:h.cols]
	off := 0
	for j, n := range h.colLen {
		from[j] = off
		off += n
		if int(seps[(j+1)*h.rows-1]) != off-1 {
			return dst, fmt.Errorf("%w: column %d does not hold %d fields", ErrCorrupt, j+1, h.rows)
		}
	}
	start := len(dst)
	// Slack past the end lets a short field move as two blocks of 16
	// bytes: the lines are written in order, so what is written past a
	// field's end is overwritten by what follows it.
	dst = slices.Grow(dst, h.total+Slack)[:start+h.total+Slack]
	o := start + copy(dst[start:], data[:h.head])
	last := h.cols - 1
	for i := range h.rows {
		k := i
		for j, f := range from {
			p := int(seps[k]) + 1 // after the field's newline
			n := p - f
			if n <= 32 && f+32 <= len(cols) {
				*(*[16]byte)(dst[o:]) = *(*[16]byte)(cols[f:])
				*(*[16]byte)(dst[o+16:]) = *(*[16]byte)(cols[f+16:])
			} else {
				copy(dst[o:], cols[f:p])
			}
			o += n
			if j != last {
				dst[o-1] = '\t'
			}
			from[j] = p
			k += h.rows
		}
	}
	copy(dst[o:], data[h.head:h.head+h.tail])
	return dst[:start+h.total], nil
}
