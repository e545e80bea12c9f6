package mysql

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/lowat"
	"github.com/snapdata/snapdata/internal/stall"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// countingConn serves a byte stream like a socket whose receive queue holds
// all of it, and counts the reads.
type countingConn struct {
	net.Conn
	r     *bytes.Reader
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestConnectionsReadInLargeBlocks proves that snapdata's connections fetch
// many packets per read from the socket where the driver asks for 4 KiB at
// a time, that the driver dials them, and that they still hand out their
// socket for the driver's liveness check.
func TestConnectionsReadInLargeBlocks(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	under := &countingConn{r: bytes.NewReader(data)}
	c := &bufferedConn{Conn: under, r: newConnReader(under)}
	var got bytes.Buffer
	buf := make([]byte, 4096) // the driver's read size
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("bytes read differ from bytes sent")
	}
	if limit := len(data)/readBufferSize + 2; under.reads > limit {
		t.Errorf("%d reads from the socket for %d bytes read 4 KiB at a time, want at most %d", under.reads, len(data), limit)
	}

	// The driver dials through dialBuffered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(); err == nil {
			s.Write([]byte("hello"))
			s.Close()
		}
	}()
	d, err := dsn.Parse("mysql://u:p@" + ln.Addr().String() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DialFunc == nil {
		t.Fatal("the driver's config has no DialFunc: connections read 4 KiB at a time")
	}
	nc, err := cfg.DialFunc(context.Background(), cfg.Net, cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := nc.(*bufferedConn); !ok {
		t.Fatalf("DialFunc returned a %T, not a buffered connection", nc)
	}
	beneath := nc.(*bufferedConn).Conn
	if sc, ok := beneath.(*stall.Conn); ok {
		beneath = sc.Conn // the watchdog, above the batching
	}
	if _, ok := beneath.(*lowat.Conn); !ok {
		t.Fatalf("the buffer reads from a %T, not a connection that batches bulk reads", beneath)
	}
	raw, err := nc.(*bufferedConn).SyscallConn()
	if err != nil {
		t.Fatalf("no socket for the liveness check: %v", err)
	}
	if err := raw.Control(func(fd uintptr) {}); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(nc)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v through the dialled connection", b, err)
	}
}

// TestBulkRowsOverTLS reads a large result through snapdata's connection
// (buffered reads, bulk responses in batches) under TLS: every row arrives,
// in order, and a query after it answers.
func TestBulkRowsOverTLS(t *testing.T) {
	my := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{TLS: true})
	d := mustDSN(t, my.CreateDatabase(t, "tls")+"?tls=skip-verify")
	ctx := ctxT(t)
	c := session(t, ctx, d)
	var name, cipher string
	if err := c.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
		t.Fatalf("the session is not encrypted: cipher %q, %v", cipher, err)
	}
	const rows = 200000
	next, size := 1, 0
	err := scanRows(ctx, c, fmt.Sprintf("SELECT seq, MD5(seq) FROM seq_1_to_%d", rows), 2, func(v [][]byte) error {
		want := strconv.Itoa(next)
		if string(v[0]) != want || string(v[1]) != fmt.Sprintf("%x", md5.Sum([]byte(want))) {
			return fmt.Errorf("row %d: %q %q", next, v[0], v[1])
		}
		next++
		size += len(v[0]) + len(v[1])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next-1 != rows || size < 2*lowat.Bulk {
		t.Fatalf("%d rows in %d bytes, want %d rows in more than %d bytes", next-1, size, rows, 2*lowat.Bulk)
	}
	var one int
	if err := c.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after the rows: %d, %v", one, err)
	}
}
