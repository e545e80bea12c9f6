package mysql

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The mysql-tsv/1 row format is what LOAD DATA LOCAL INFILE ... CHARACTER
// SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY
// '\n' reads without loss:
//
//   - fields are separated by a tab, rows end with a newline;
//   - NULL is \N;
//   - backslash, tab, newline, carriage return and NUL are written as \\,
//     \t, \n, \r and \0; every other byte is written as is;
//   - values are the server's text-protocol form in the column's own
//     character set (the dump session sets character_set_results = binary),
//     so binary strings and non-UTF-8 columns round-trip byte for byte;
//   - FLOAT columns are dumped as DOUBLE (col*1e0): the text protocol
//     rounds FLOAT to 6 significant digits;
//   - BIT columns are dumped as their unsigned integer value (col+0) and
//     loaded with SET col = CAST(@v AS UNSIGNED);
//   - YEAR columns are dumped as text (CAST(col AS CHAR)): 0000 stays
//     "0000" (LOAD DATA reads a bare 0 as 2000).
//
// Rows are ordered by the primary key (or the first unique key whose
// columns are all NOT NULL; for tables without one: by every dumped column,
// strings compared as binary), so a stream is byte-stable while its data
// does not change.

// escapes maps a byte that mysql-tsv/1 escapes to the letter after the
// backslash (0 for bytes written as they are).
var escapes = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0'}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasEscape reports whether one of the 8 bytes of w is escaped: a byte is
// one of the five when w XOR that byte repeated has a zero byte (the
// classic test: (x - 0x01…) &^ x & 0x80… is not 0 exactly then).
func hasEscape(w uint64) bool {
	a, b, c, d := w^(lsb*'\\'), w^(lsb*'\t'), w^(lsb*'\n'), w^(lsb*'\r')
	return ((w-lsb)&^w|(a-lsb)&^a|(b-lsb)&^b|(c-lsb)&^c|(d-lsb)&^d)&msb != 0
}

// appendEscaped appends v escaped for mysql-tsv/1. Eight bytes at a time
// while none needs escaping: long text and JSON values are mostly plain.
func appendEscaped(dst, v []byte) []byte {
	start := 0
	for i := 0; i < len(v); {
		if i+8 <= len(v) && !hasEscape(binary.LittleEndian.Uint64(v[i:])) {
			i += 8
			continue
		}
		if esc := escapes[v[i]]; esc != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', esc)
			start = i + 1
		}
		i++
	}
	return append(dst, v[start:]...)
}

// appendRow appends one encoded row (with its newline). A nil value is NULL.
func appendRow(dst []byte, vals [][]byte) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, '\t')
		}
		if v == nil {
			dst = append(dst, '\\', 'N')
			continue
		}
		dst = appendEscaped(dst, v)
	}
	return append(dst, '\n')
}

// rowDecoder reads mysql-tsv/1 rows.
type rowDecoder struct {
	r      *bufio.Reader
	ncols  int
	line   []byte
	fields [][]byte
	bufs   [][]byte
}

func newRowDecoder(r io.Reader, ncols int) *rowDecoder {
	return &rowDecoder{r: bufio.NewReaderSize(r, 256<<10), ncols: ncols}
}

// next returns the next row's fields (nil for NULL), valid until the next
// call, or io.EOF.
func (d *rowDecoder) next() ([][]byte, error) {
	d.line = d.line[:0]
	for {
		chunk, err := d.r.ReadSlice('\n')
		d.line = append(d.line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if len(d.line) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("row data ends without a newline")
		}
		return nil, err
	}
	line := d.line[:len(d.line)-1]
	d.fields = d.fields[:0]
	if cap(d.bufs) < d.ncols {
		d.bufs = make([][]byte, d.ncols)
	}
	d.bufs = d.bufs[:d.ncols]
	for i := 0; ; i++ {
		j := bytes.IndexByte(line, '\t')
		f := line
		if j >= 0 {
			f = line[:j]
		}
		if i >= d.ncols {
			return nil, fmt.Errorf("row has more than %d fields", d.ncols)
		}
		v, err := unescape(d.bufs[i][:0], f)
		if err != nil {
			return nil, err
		}
		if v != nil {
			d.bufs[i] = v
		}
		d.fields = append(d.fields, v)
		if j < 0 {
			break
		}
		line = line[j+1:]
	}
	if len(d.fields) != d.ncols {
		return nil, fmt.Errorf("row has %d fields, expected %d", len(d.fields), d.ncols)
	}
	return d.fields, nil
}

// unescapeByte is the byte a backslash escape of the load format stands
// for (\\, \t, \n, \r, \0); ok is false for any other letter.
func unescapeByte(c byte) (b byte, ok bool) {
	switch c {
	case '\\':
		return '\\', true
	case 't':
		return '\t', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case '0':
		return 0, true
	}
	return 0, false
}

// unescape decodes one field into dst; it returns nil for \N.
func unescape(dst, f []byte) ([]byte, error) {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return nil, nil
	}
	if dst == nil {
		dst = []byte{}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(f) {
			return nil, fmt.Errorf("dangling backslash in row data")
		}
		b, ok := unescapeByte(f[i])
		if !ok {
			return nil, fmt.Errorf("unknown escape \\%c in row data", f[i])
		}
		dst = append(dst, b)
	}
	return dst, nil
}
