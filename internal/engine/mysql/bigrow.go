package mysql

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Rows of more than bigRowLen bytes do not go through LOAD DATA: the
// server reads a field into a buffer it grows by 4 KiB at a time
// (READ_INFO::read_field), so a field's load costs the square of its size
// — a 32 MB value loads in half a second, a 200 MB one held a MariaDB
// 10.11 restore in "Reading file" for 23 minutes. Such a row is sent in
// pieces into user variables and inserted from them (insertBigRow), which
// needs the target's max_allowed_packet to be at least the row's largest
// value, as it must have been on the server that held it.
const bigRowLen = 4 << 20

// rowSplitter hands the rows of a stream to LOAD DATA and stops (io.EOF)
// before a row longer than bigRowLen, which big then reports. It counts
// the rows it passes.
type rowSplitter struct {
	br   *bufio.Reader // of bigRowLen bytes: a row that fits is a small one
	safe int           // the next bytes end with a newline or the stream's end
	n    int64         // rows passed
	big  bool          // stopped before a big row
	err  error         // the stream's error (not io.EOF)
}

func newRowSplitter(r io.Reader) *rowSplitter {
	return &rowSplitter{br: bufio.NewReaderSize(r, bigRowLen)}
}

func (s *rowSplitter) Read(b []byte) (int, error) {
	if s.big {
		return 0, io.EOF
	}
	if s.safe == 0 {
		data, err := s.br.Peek(max(s.br.Buffered(), 1))
		if len(data) == 0 {
			return 0, s.fail(err)
		}
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			s.safe = i + 1
		} else {
			// A row that starts here and has not ended in what is
			// buffered: it fits the buffer or it is a big one.
			data, err = s.br.Peek(bigRowLen)
			switch i := bytes.IndexByte(data, '\n'); {
			case i >= 0:
				s.safe = i + 1
			case len(data) == bigRowLen:
				s.big = true
				return 0, io.EOF
			case len(data) == 0:
				return 0, s.fail(err)
			default: // the last row, without its newline
				s.safe = len(data)
			}
		}
	}
	data, _ := s.br.Peek(min(s.safe, len(b)))
	n := copy(b, data)
	s.n += int64(bytes.Count(b[:n], []byte{'\n'}))
	s.safe -= n
	_, _ = s.br.Discard(n)
	return n, nil
}

func (s *rowSplitter) fail(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.EOF
	}
	s.err = err
	return err
}

// insertBigRow reads the big row the splitter stopped before and inserts
// it into t: each field is sent in pieces of at most a quarter of the
// server's max_allowed_packet (and 4 MiB), one user variable each, and one
// INSERT concatenates them (appending each piece to one variable made the
// server copy the whole value per piece: minutes for 200 MB). Memory holds
// one piece.
func (s *rowSplitter) insertBigRow(ctx context.Context, c *sql.Conn, t *table) error {
	var maxPacket int64
	if err := c.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return fmt.Errorf("reading max_allowed_packet: %w", err)
	}
	piece := make([]byte, 0, min(4<<20, max(maxPacket/4, 1024)))
	vars := make([][]string, len(t.Columns)) // per column, its pieces' variables; nil: NULL
	lens := make([]int64, len(t.Columns))
	defer func() {
		// Free the server's copies.
		var sets []string
		for _, vs := range vars {
			for _, v := range vs {
				sets = append(sets, v+" = NULL")
			}
		}
		if len(sets) > 0 {
			_, _ = c.ExecContext(context.WithoutCancel(ctx), "SET "+strings.Join(sets, ", "))
		}
	}()
	for i := range t.Columns {
		send := func() error {
			v := "@snapdata_v" + strconv.Itoa(i) + "_" + strconv.Itoa(len(vars[i]))
			if _, err := c.ExecContext(ctx, "SET "+v+" = ?", piece); err != nil {
				return fmt.Errorf("sending a value of a row of more than %d MiB: %w", bigRowLen>>20, err)
			}
			vars[i] = append(vars[i], v)
			piece = piece[:0]
			return nil
		}
		end, null, err := s.readField(func(b []byte) error {
			for len(b) > 0 {
				n := min(len(b), cap(piece)-len(piece))
				piece = append(piece, b[:n]...)
				b = b[n:]
				lens[i] += int64(n)
				if len(piece) == cap(piece) {
					if err := send(); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !null && (len(vars[i]) == 0 || len(piece) > 0) {
			if err := send(); err != nil {
				return err
			}
		}
		if end != (i == len(t.Columns)-1) {
			return fmt.Errorf("a row of %s has %d fields where %d were expected", t.Name, i+1, len(t.Columns))
		}
	}
	vals := make([]string, len(t.Columns))
	for i, vs := range vars {
		switch len(vs) {
		case 0:
			vals[i] = "NULL"
		case 1:
			vals[i] = vs[0]
		default:
			vals[i] = "CONCAT(" + strings.Join(vs, ", ") + ")"
		}
	}
	// CONCAT gives NULL (with a warning) past max_allowed_packet.
	for i, v := range vals {
		if len(vars[i]) < 2 {
			continue
		}
		var got sql.NullInt64
		if err := c.QueryRowContext(ctx, "SELECT LENGTH("+v+")").Scan(&got); err != nil {
			return fmt.Errorf("checking a row of more than %d MiB: %w", bigRowLen>>20, err)
		}
		if !got.Valid || got.Int64 != lens[i] {
			return fmt.Errorf("column %s holds a value of %d MiB, more than the target server's max_allowed_packet (%d MiB) lets a session build: raise it (SET GLOBAL max_allowed_packet = %d, or max_allowed_packet in the server's configuration; 1 GiB at most) and restore again",
				quoteIdent(t.Columns[i].Name), lens[i]>>20, maxPacket>>20, ((lens[i]>>20)+2)<<20)
		}
	}
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = quoteIdent(col.Name)
		if col.isBit() {
			vals[i] = "CAST(" + vals[i] + " AS UNSIGNED)"
		}
	}
	ins := "INSERT INTO " + quoteIdent(t.Name) + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
	if _, err := c.ExecContext(ctx, ins); err != nil {
		return fmt.Errorf("inserting a row of more than %d MiB: %w", bigRowLen>>20, err)
	}
	s.n++
	return nil
}

// readField reads one mysql-tsv/1 field of the row at the reader's
// position, hands its unescaped bytes to emit in pieces, and reports
// whether it ended the row and whether it was NULL (\N).
func (s *rowSplitter) readField(emit func([]byte) error) (end, null bool, err error) {
	var out []byte
	escaped, n := false, 0
	for {
		data, rerr := s.br.Peek(max(s.br.Buffered(), 1))
		if len(data) == 0 {
			if rerr == nil || errors.Is(rerr, io.EOF) {
				rerr = errors.New("row data ends without a newline")
			}
			return false, false, rerr
		}
		out = out[:0]
		used := 0
		stop := false
		for used < len(data) && !stop {
			c := data[used]
			used++
			if escaped {
				escaped = false
				if c == 'N' && n == 1 {
					null = true
					continue
				}
				b, ok := unescapeByte(c)
				if !ok {
					return false, false, fmt.Errorf("unknown escape \\%c in row data", c)
				}
				out = append(out, b)
				n++
				continue
			}
			switch c {
			case '\\':
				escaped = true
				n++
				continue
			case '\t':
				stop = true
			case '\n':
				stop, end = true, true
			default:
				// Copy the run of plain bytes at once.
				j := used
				for j < len(data) && data[j] != '\\' && data[j] != '\t' && data[j] != '\n' {
					j++
				}
				out = append(out, data[used-1:j]...)
				n += j - used + 1
				used = j
			}
		}
		if len(out) > 0 {
			if null {
				return false, false, errors.New("bad \\N in row data")
			}
			if err := emit(out); err != nil {
				return false, false, err
			}
		}
		_, _ = s.br.Discard(used)
		if stop {
			return end, null, nil
		}
	}
}
