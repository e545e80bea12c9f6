package postgres

// A row of a binary COPY comes in one CopyData message, which textRows
// prints whole: a row holding a 200 MB bytea cost the message and its 400
// MB of printed text at once. copyOut hands a message larger than
// bigCopyRow to printFrom instead, which reads the row field by field from
// the connection's read buffer and prints a large bytea, text (and its
// kin, enums, json) or jsonb value in pieces, writing the text on as it
// goes: the same bytes as Write prints, in pieces, as copyOut hands on a
// large row of COPY text. Values of other types are short and printed
// whole.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// pieceKind says how a huge value of a column is printed in pieces.
type pieceKind uint8

const (
	pieceWhole pieceKind = iota // printed whole: fixed-size and short values
	pieceText                   // text and its kin, enums, json: escaped piece by piece
	pieceJSONB                  // the version byte, then as text
	pieceBytea                  // \\x, then the hex of each piece
)

// bigCopyRow is the size of a CopyData message above which copyOut hands a
// binary COPY's row to printFrom rather than reading it whole.
const bigCopyRow = 8 << 20

// bigTextFlush is how much printed text printFrom gathers before writing
// it on.
const bigTextFlush = 256 << 10

// messageReader reads the bytes of one message, no further.
type messageReader struct {
	br *bufio.Reader
	n  int // bytes of the message not read yet
}

// peek returns the next k bytes (at most the buffer's size) without
// consuming them.
func (m *messageReader) peek(k int) ([]byte, error) {
	if k > m.n {
		return nil, errors.New("a row of the server's COPY binary stream runs past the end of its message")
	}
	b, err := m.br.Peek(k)
	if err != nil {
		return nil, fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
	}
	return b, nil
}

// discard consumes k bytes that peek returned.
func (m *messageReader) discard(k int) {
	_, _ = m.br.Discard(k)
	m.n -= k
}

// readFull reads the next k bytes into a new slice.
func (m *messageReader) readFull(k int) ([]byte, error) {
	if k > m.n {
		return nil, errors.New("a row of the server's COPY binary stream runs past the end of its message")
	}
	b := make([]byte, k)
	if _, err := io.ReadFull(m.br, b); err != nil {
		return nil, fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
	}
	m.n -= k
	return b, nil
}

// printFrom prints the n bytes of one CopyData message read from br, as
// Write would print them, and writes the text on in pieces. The message
// must end with a row (or the trailer), as the server's messages do.
func (r *textRows) printFrom(br *bufio.Reader, n int) error {
	if len(r.in) > 0 {
		// A row begun in an earlier message: never from a server.
		b, err := (&messageReader{br: br, n: n}).readFull(n)
		if err != nil {
			return err
		}
		_, err = r.Write(b)
		return err
	}
	m := &messageReader{br: br, n: n}
	if !r.header {
		h, err := m.peek(19)
		if err != nil {
			return err
		}
		if string(h[:11]) != string(binaryHeader[:11]) {
			return errors.New("the server's COPY binary stream does not start with its signature")
		}
		ext := int(binary.BigEndian.Uint32(h[15:19]))
		m.discard(19)
		if ext > m.n {
			return errors.New("the header of the server's COPY binary stream runs past the end of its message")
		}
		if _, err := br.Discard(ext); err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
		m.n -= ext
		r.header = true
	}
	r.out = r.spill[:0]
	defer func() { r.spill = r.out[:0] }()
	ncols := len(r.printers)
	for m.n > 0 {
		if r.done {
			return errors.New("the server's COPY binary stream goes on after its trailer")
		}
		b, err := m.peek(2)
		if err != nil {
			return err
		}
		cnt := int16(binary.BigEndian.Uint16(b))
		m.discard(2)
		if cnt == -1 {
			r.done = true
			continue
		}
		if int(cnt) != ncols {
			return fmt.Errorf("row %d has %d fields, want %d", r.row+1, cnt, ncols)
		}
		r.row++
		for col := range r.printers {
			if col > 0 {
				r.out = append(r.out, '\t')
			}
			b, err := m.peek(4)
			if err != nil {
				return err
			}
			l := int32(binary.BigEndian.Uint32(b))
			m.discard(4)
			if l < 0 {
				r.out = append(r.out, '\\', 'N')
				continue
			}
			if err := r.printField(m, col, int(l)); err != nil {
				return fmt.Errorf("row %d, column %d: %w", r.row, col+1, err)
			}
		}
		r.out = append(r.out, '\n')
	}
	return r.flushOut()
}

// printField prints the l bytes of one non-NULL field of column col into
// out, writing out on whenever it holds bigTextFlush bytes.
func (r *textRows) printField(m *messageReader, col, l int) error {
	piece := m.br.Size()
	kind := r.pieces[col]
	if l <= piece || kind == pieceWhole {
		var v []byte
		var err error
		if l <= piece {
			v, err = m.peek(l)
		} else {
			v, err = m.readFull(l)
		}
		if err != nil {
			return err
		}
		out, err := r.printers[col](r.out, v)
		if err != nil {
			return err
		}
		r.out = out
		if l <= piece {
			m.discard(l)
		}
		return r.flushFull()
	}
	switch kind {
	case pieceBytea:
		r.out = append(r.out, '\\', '\\', 'x')
	case pieceJSONB:
		b, err := m.peek(1)
		if err != nil {
			return err
		}
		if b[0] != 1 {
			return errors.New("a jsonb value of an unknown binary version")
		}
		m.discard(1)
		l--
	}
	for l > 0 {
		k := min(l, piece)
		b, err := m.peek(k)
		if err != nil {
			return err
		}
		if kind == pieceBytea {
			r.out = hex.AppendEncode(r.out, b)
		} else {
			r.out = appendEscapedCopy(r.out, b)
		}
		m.discard(k)
		l -= k
		if err := r.flushFull(); err != nil {
			return err
		}
	}
	return nil
}

// flushFull writes out on once it holds bigTextFlush bytes.
func (r *textRows) flushFull() error {
	if len(r.out) < bigTextFlush {
		return nil
	}
	return r.flushOut()
}

// flushOut writes out on and empties it.
func (r *textRows) flushOut() error {
	if len(r.out) > 0 {
		if _, err := r.w.Write(r.out); err != nil {
			return err
		}
	}
	r.out = r.out[:0]
	return nil
}
