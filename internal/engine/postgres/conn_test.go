package postgres

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/snapdata/snapdata/internal/dsn"
)

// socketReader hands out whatever is left, up to len(p), like a socket
// whose receive queue holds the whole stream, and counts the reads.
type socketReader struct {
	r     *bytes.Reader
	reads int
}

func (s *socketReader) Read(p []byte) (int, error) {
	s.reads++
	return s.r.Read(p)
}

// TestConnectionsReadInLargeBlocks proves that the sessions snapdata opens
// fetch many COPY rows per read from the server's socket, where pgx alone
// reads 8 KiB at a time.
func TestConnectionsReadInLargeBlocks(t *testing.T) {
	const rows, rowLen = 20000, 100
	var stream []byte
	for i := range rows {
		payload := make([]byte, rowLen)
		binary.BigEndian.PutUint32(payload, uint32(i))
		var err error
		stream, err = (&pgproto3.CopyData{Data: payload}).Encode(stream)
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := dsn.Parse("postgres://u@localhost:5432/db")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := connConfig(d, true)
	if err != nil {
		t.Fatal(err)
	}
	receive := func(build func(io.Reader, io.Writer) *pgproto3.Frontend) int {
		t.Helper()
		src := &socketReader{r: bytes.NewReader(stream)}
		f := build(src, io.Discard)
		for i := range rows {
			msg, err := f.Receive()
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			cd, ok := msg.(*pgproto3.CopyData)
			if !ok || len(cd.Data) != rowLen || binary.BigEndian.Uint32(cd.Data) != uint32(i) {
				t.Fatalf("row %d: got %T %x", i, msg, cd)
			}
		}
		return src.reads
	}
	plain := receive(pgproto3.NewFrontend)
	ours := receive(cfg.BuildFrontend)
	if limit := len(stream)/readBufferSize + 2; ours > limit {
		t.Errorf("%d reads for %d bytes, want at most %d (pgx alone: %d)", ours, len(stream), limit, plain)
	}
	if plain < 10*ours {
		t.Errorf("pgx alone made %d reads, snapdata's sessions %d: the test no longer shows a difference", plain, ours)
	}
	t.Logf("%d bytes of COPY rows: %d reads with pgx's frontend, %d with snapdata's", len(stream), plain, ours)
}
