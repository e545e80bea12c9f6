package postgres

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/lowat"
	"github.com/snapdata/snapdata/internal/stall"
	"github.com/snapdata/snapdata/internal/testsrv"
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

// TestConnectionsBatchBulkReads proves that snapdata's sessions read the
// server through a connection that batches bulk responses (a COPY's rows),
// also under TLS (the batching works on the socket beneath it), and still
// run queries: a real session, its socket, and a COPY of several MiB that
// must arrive whole.
func TestConnectionsBatchBulkReads(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var d *dsn.DSN
			if tc.tls {
				pg := testsrv.NewPostgres(t, testsrv.PGOptions{TLS: true})
				d = mustDSN(t, strings.Replace(pg.DSN("postgres"), "sslmode=disable", "sslmode=require", 1))
			} else {
				d = newDB(t, testsrv.Postgres(t), "lowat")
			}
			c, err := connect(context.Background(), d, true)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			under := c.PgConn().Conn()
			if tc.tls {
				tc, ok := under.(*tls.Conn)
				if !ok {
					t.Fatalf("sslmode=require gave a %T, not a TLS connection", under)
				}
				under = tc.NetConn()
			}
			if sc, ok := under.(*stall.Conn); ok {
				under = sc.Conn // the watchdog, above the batching
			}
			if _, ok := under.(*lowat.Conn); !ok {
				t.Fatalf("the session reads from a %T, not a connection that batches bulk reads", under)
			}
			const rows = 200000
			var buf bytes.Buffer
			if _, err := c.PgConn().CopyTo(context.Background(), &buf,
				fmt.Sprintf("COPY (SELECT i, md5(i::text) FROM generate_series(1, %d) i) TO STDOUT", rows)); err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(buf.Bytes(), []byte("\n")); n != rows || buf.Len() < 2*lowat.Bulk {
				t.Fatalf("COPY gave %d lines in %d bytes, want %d lines in more than %d bytes", n, buf.Len(), rows, 2*lowat.Bulk)
			}
			if !bytes.HasSuffix(buf.Bytes(), []byte(fmt.Sprintf("%d\t%x\n", rows, md5.Sum([]byte(strconv.Itoa(rows)))))) {
				t.Fatalf("the COPY's last row is not row %d", rows)
			}
			// The next small answer comes at once.
			var one int
			if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("query after the COPY: %d, %v", one, err)
			}
		})
	}
}

// TestFindPgDumpSkipsDebiansWrapper: Debian's /usr/bin/pg_dump is a link to
// postgresql-common's pg_wrapper, a Perl script that runs one of the
// versioned binaries; snapdata runs that binary directly when its
// directory has one, and the wrapper only when it is all there is.
func TestFindPgDumpSkipsDebiansWrapper(t *testing.T) {
	script := func(path, version, mark string) {
		t.Helper()
		body := fmt.Sprintf("#!/bin/sh\n: >%q\necho 'pg_dump (PostgreSQL) %s'\n", mark, version)
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	common := filepath.Join(root, "share", "postgresql-common")
	pathDir := filepath.Join(root, "bin")
	binDir := filepath.Join(root, "lib", "15", "bin")
	for _, d := range []string{common, pathDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wrapperRan := filepath.Join(root, "wrapper-ran")
	script(filepath.Join(common, "pg_wrapper"), "15.9", wrapperRan)
	if err := os.Symlink(filepath.Join(common, "pg_wrapper"), filepath.Join(pathDir, "pg_dump")); err != nil {
		t.Fatal(err)
	}
	script(filepath.Join(binDir, "pg_dump"), "15.9", filepath.Join(root, "direct-ran"))
	t.Setenv("PATH", pathDir)

	for _, tc := range []struct {
		name    string
		binDirs []string
		want    string
		wrapper bool
	}{
		{"versioned binary beside the wrapper", []string{filepath.Join(root, "lib", "*", "bin")}, filepath.Join(binDir, "pg_dump"), false},
		{"the wrapper alone", nil, filepath.Join(pathDir, "pg_dump"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(wrapperRan)
			e := New()
			e.BinDirs = tc.binDirs
			got, major, err := e.findPgDump(context.Background(), 15)
			if err != nil || got != tc.want || major != 15 {
				t.Fatalf("findPgDump = %q, %d, %v; want %q, 15", got, major, err, tc.want)
			}
			_, err = os.Stat(wrapperRan)
			if ran := err == nil; ran != tc.wrapper {
				t.Errorf("wrapper ran: %v, want %v", ran, tc.wrapper)
			}
		})
	}
}
