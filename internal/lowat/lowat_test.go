package lowat

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end of a
// loopback TCP connection.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	w, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap of a TCP connection returned %T", Wrap(c))
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

// serve answers each 1-byte request from the client: 'b' with a bulk
// response of n bytes written in small pieces with pauses (a server that
// produces rows more slowly than the client reads them), 's' with a small
// response. Each response ends with a marker byte 0xFF the client waits for.
func serve(t *testing.T, s net.Conn, bulk []byte) {
	go func() {
		req := make([]byte, 1)
		for {
			if _, err := io.ReadFull(s, req); err != nil {
				return
			}
			switch req[0] {
			case 'b':
				for off := 0; off < len(bulk); off += 8 << 10 {
					if _, err := s.Write(bulk[off:min(off+8<<10, len(bulk))]); err != nil {
						return
					}
					if off%(64<<10) == 0 {
						time.Sleep(50 * time.Microsecond)
					}
				}
				if _, err := s.Write([]byte{0xFF}); err != nil {
					return
				}
			case 's':
				if _, err := s.Write([]byte{1, 2, 3, 0xFF}); err != nil {
					return
				}
			}
		}
	}()
}

// readResponse reads up to the marker byte and returns the bytes before it
// and how many reads it took.
func readResponse(t *testing.T, c *Conn) ([]byte, int) {
	t.Helper()
	var got []byte
	buf := make([]byte, 256<<10)
	reads := 0
	for {
		n, err := c.Read(buf)
		reads++
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		if len(got) > 0 && got[len(got)-1] == 0xFF {
			return got[:len(got)-1], reads
		}
	}
}

func bulkData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.IntN(255)) // never the marker
	}
	return b
}

// A bulk response arrives whole and in few reads: after the first Bulk
// bytes, each read takes about Mark bytes, where a plain connection takes
// whatever the last packets brought. Its tail, fewer bytes than the mark,
// arrives although the server then waits (it would never come if the mark
// stayed up), and small responses after it come at once.
func TestBulkResponseIsBatchedAndComplete(t *testing.T) {
	c, s := pair(t)
	data := bulkData(8 << 20)
	serve(t, s, data)

	for round := 0; round < 2; round++ {
		if _, err := c.Write([]byte{'b'}); err != nil {
			t.Fatal(err)
		}
		got, reads := readResponse(t, c)
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d: bulk response corrupted (%d bytes, want %d)", round, len(got), len(data))
		}
		// Unbatched, the first Bulk bytes; then 7 MiB in batches of at
		// least Mark bytes (fewer only at the tail and after a pause
		// longer than MaxWait, which this server does not make).
		batched := (len(data) - Bulk) / Mark
		if reads > Bulk/(8<<10)+batched+8 {
			t.Errorf("round %d: %d reads for %d bytes: the mark did not batch them", round, reads, len(data))
		}
		t.Logf("round %d: %d reads", round, reads)

		waited := c.waited
		for i := 0; i < 50; i++ {
			if _, err := c.Write([]byte{'s'}); err != nil {
				t.Fatal(err)
			}
			got, _ := readResponse(t, c)
			if !bytes.Equal(got, []byte{1, 2, 3}) {
				t.Fatalf("small response %v", got)
			}
		}
		// With the mark still up, each would wait MaxWait in vain.
		if n := c.waited - waited; n != 0 {
			t.Errorf("round %d: %d of 50 small responses after a bulk one waited for the mark", round, n)
		}
	}
}

// The tail of a bulk response (fewer bytes than the mark) comes after at
// most about MaxWait while the server sends nothing more.
func TestTailArrivesWhileServerWaits(t *testing.T) {
	c, s := pair(t)
	// With the mark stuck, the tail would never come: fail instead of
	// hanging.
	watchdog := time.AfterFunc(10*time.Second, func() { c.Conn.Close() })
	defer watchdog.Stop()
	head := bulkData(Bulk + 3*Mark)
	go func() {
		s.Write(head)
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("tail"))
	}()
	buf := make([]byte, len(head)+16)
	got := 0
	for got < len(head)+4 {
		n, err := c.Read(buf[got:])
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += n
	}
	if string(buf[len(head):got]) != "tail" {
		t.Fatalf("tail %q", buf[len(head):got])
	}
	if c.waited == 0 {
		t.Error("the tail came without a wait for the mark: the mark was never up")
	}
}

// The owner's deadline still applies in a bulk response: a driver cancels
// a query by setting a deadline in the past, and a read waiting for a batch
// returns the timeout instead of the tail.
func TestOwnerDeadlineCancelsBulkRead(t *testing.T) {
	c, s := pair(t)
	// With the owner's deadline lost, the last read would block for good:
	// fail instead of hanging.
	watchdog := time.AfterFunc(10*time.Second, func() { c.Conn.Close() })
	defer watchdog.Stop()
	if _, err := s.Write(bulkData(Bulk + Mark)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for got := 0; got < Bulk+Mark; {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// The server now sends a few bytes and stops: the read waits for the
	// mark. The owner cancels meanwhile.
	s.Write([]byte("abc"))
	go func() {
		time.Sleep(time.Millisecond)
		c.SetReadDeadline(time.Unix(1, 0))
	}()
	deadline := time.Now().Add(time.Second)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("want a deadline error, got %v", err)
			}
			break
		}
		if n == 0 || time.Now().After(deadline) {
			t.Fatalf("read returned %d bytes and no error", n)
		}
		// "abc" may come first (MaxWait passed before the cancel): the
		// next read must fail.
	}
	// A later deadline in the future lets reads work again.
	c.SetReadDeadline(time.Time{})
	s.Write([]byte("z"))
	n, err := c.Read(buf)
	if err != nil || n < 1 {
		t.Fatalf("after clearing the deadline: %d %v", n, err)
	}
}

// A connection that is not TCP is left as it is.
func TestWrapLeavesOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(net.Pipe) = %T, want the pipe itself", got)
	}
}
