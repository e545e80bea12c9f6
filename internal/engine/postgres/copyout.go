package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The server sends each row of a COPY TO in one CopyData message, and pgx
// reads a message whole: a row holding a 200 MB bytea (400 MB of COPY
// text) cost that much memory at once, and the buffer's garbage as much
// again before the next collection (a backup peaked at 739 MiB). copyOut
// reads the messages itself, through the connection's own read buffer,
// and hands a large message's bytes on in pieces as they arrive, so a row
// of COPY text costs no more memory than a small one.

// readerKey is the key of a connection's CustomData that holds the
// buffered reader its frontend reads the socket through (connConfig).
const readerKey = "snapdata.reader"

// copyOutPiece is the most a large message is handed on at a time: the
// read buffer's size.
const copyOutPiece = readBufferSize

// copyOut runs sql, a COPY … TO STDOUT, on pc and writes the data to w like
// pgconn's CopyTo. With whole, each CopyData message reaches w in one Write
// (COPY binary's rows, which textRows prints; one larger than bigCopyRow
// goes to its printFrom); otherwise a message larger
// than the read buffer reaches w in pieces. A connection whose reader is
// not known, or that holds unread bytes, goes through pgx's CopyTo.
func copyOut(ctx context.Context, pc *pgconn.PgConn, w io.Writer, sql string, whole bool) error {
	br, ok := pc.CustomData()[readerKey].(*bufio.Reader)
	if !ok || pc.IsBusy() || pc.Frontend().ReadBufferLen() != 0 {
		_, err := pc.CopyTo(ctx, w, sql)
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	conn := pc.Conn()
	// A cancelled context stops a read or write at once; the connection
	// is then closed, as pgx closes a connection whose COPY it abandons.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err := copyOutMessages(br, pc.Frontend(), w, sql, whole)
	if !stop() {
		err = ctx.Err()
	}
	var pgErr *pgconn.PgError
	if err != nil && !errors.As(err, &pgErr) {
		_ = conn.Close()
	}
	return err
}

// copyOutMessages sends the query and reads the server's messages up to
// its ReadyForQuery. A server error (a PgError) leaves the connection
// usable; any other error leaves it in the middle of a response.
func copyOutMessages(br *bufio.Reader, fe *pgproto3.Frontend, w io.Writer, sql string, whole bool) error {
	fe.SendQuery(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		return fmt.Errorf("send COPY query: %w", err)
	}
	var pgErr error
	for {
		hdr, err := br.Peek(5)
		if err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
		typ := hdr[0]
		n := int(int32(binary.BigEndian.Uint32(hdr[1:]))) - 4
		if n < 0 {
			return fmt.Errorf("read COPY data: invalid message length %d", n+4)
		}
		_, _ = br.Discard(5)
		switch typ {
		case 'd':
			if err := copyData(br, w, n, whole); err != nil {
				return err
			}
			continue
		case 'E', 'Z':
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
			}
			if typ == 'Z' {
				return pgErr
			}
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return fmt.Errorf("read COPY data: %w", err)
			}
			if pgErr == nil {
				pgErr = pgconn.ErrorResponseToPgError(&e)
			}
			continue
		}
		// CopyOutResponse, CopyDone, CommandComplete, notices and the
		// rest: nothing a COPY's caller needs.
		if _, err := br.Discard(n); err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
	}
}

// bigRowPrinter is a writer of whole messages (textRows) that can also
// take a large one straight from the read buffer, in pieces.
type bigRowPrinter interface {
	printFrom(br *bufio.Reader, n int) error
}

// copyData hands on the n bytes of one CopyData message.
func copyData(br *bufio.Reader, w io.Writer, n int, whole bool) error {
	if n <= br.Size() {
		b, err := br.Peek(n)
		if err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, _ = br.Discard(n)
		return nil
	}
	if whole {
		if rp, ok := w.(bigRowPrinter); ok && n > bigCopyRow {
			return rp.printFrom(br, n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
		_, err := w.Write(b)
		return err
	}
	for n > 0 {
		b, err := br.Peek(min(n, copyOutPiece))
		if err != nil {
			return fmt.Errorf("read COPY data: %w", unexpectedEOF(err))
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, _ = br.Discard(len(b))
		n -= len(b)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
