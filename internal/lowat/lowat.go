// Package lowat batches the reads of bulk responses from a TCP socket.
//
// A client that copies a table from a database server reads faster than
// the server writes: each read finds a few kilobytes, the next finds none,
// and the reading goroutine parks until the next packet wakes it. On a
// machine whose cores the server shares, every such wake-up costs context
// switches on both sides, and the Go runtime's monitor thread, which wakes
// up with the process, adds its own: a 1 GB PostgreSQL backup made about
// 120,000 voluntary context switches, half of them for this.
//
// A socket's receive low-water mark (SO_RCVLOWAT) makes the kernel wake a
// reader only once that many bytes are waiting. A Conn raises the mark
// when a response has become large (Bulk bytes read since the client last
// wrote), and lowers it again for the next request, whose answer is
// usually small and awaited. The catch is a bulk response's tail: the
// server sends its last bytes and waits for the client, fewer bytes than
// the mark sit in the socket, and the kernel would never wake the reader.
// A read with the mark raised therefore waits at most MaxWait for a full
// batch and then takes what there is.
package lowat

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// Bulk is how many bytes the client must have read since it last
	// wrote before the mark goes up: database protocols are request and
	// response, and only a large response is worth batching.
	Bulk = 1 << 20
	// Mark is the low-water mark of a bulk response: one wake-up per
	// 128 KiB instead of one per packet or two.
	Mark = 128 << 10
	// MaxWait is how long a read with the mark raised waits for a full
	// batch before it takes whatever arrived (a response's tail, or a
	// server that pauses).
	MaxWait = 5 * time.Millisecond
)

// Conn is a TCP connection that batches the reads of bulk responses. It
// keeps the deadlines its owner sets (database drivers cancel with them)
// and applies its own shorter read deadlines underneath.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	// sinceWrite counts the bytes read since the last write.
	sinceWrite atomic.Int64
	// mark is the socket's current low-water mark, and ours whether the
	// read deadline is this Conn's own rather than the owner's. Only the
	// reader (one at a time, as for any net.Conn) reads or changes them.
	mark int
	ours bool
	// waited counts the reads that waited MaxWait in vain (for tests).
	waited int

	mu       sync.Mutex
	deadline time.Time // the owner's read deadline
}

// Wrap returns c with batched bulk reads when it is a TCP connection, and
// c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, rc: rc, mark: 1}
}

// Write writes to the connection; the next response starts unbatched.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sinceWrite.Store(0)
	return n, err
}

// Read reads like net.Conn's Read. In a bulk response it waits for Mark
// bytes, for at most MaxWait.
func (c *Conn) Read(p []byte) (int, error) {
	if c.sinceWrite.Load() < Bulk {
		if c.mark != 1 {
			if err := c.setMark(1); err != nil {
				return 0, err
			}
		}
		if c.ours {
			if _, err := c.ownDeadline(); err != nil {
				return 0, err
			}
		}
		n, err := c.Conn.Read(p)
		c.sinceWrite.Add(int64(n))
		return n, err
	}
	if c.mark != Mark {
		if err := c.setMark(Mark); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	dl := time.Now().Add(MaxWait)
	own := c.deadline
	if !own.IsZero() && own.Before(dl) {
		dl = own
	}
	err := c.Conn.SetReadDeadline(dl)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	c.ours = true
	n, err := c.Conn.Read(p)
	if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	// No full batch within MaxWait. Back to the owner's deadline, which
	// may be what expired (a cancelled query).
	own, derr := c.ownDeadline()
	if derr != nil {
		return 0, derr
	}
	if !own.IsZero() && !time.Now().Before(own) {
		return 0, err
	}
	c.waited++
	if err := c.setMark(1); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// ownDeadline puts the owner's read deadline back in place of this Conn's
// and returns it.
func (c *Conn) ownDeadline() (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ours = false
	return c.deadline, c.Conn.SetReadDeadline(c.deadline)
}

func (c *Conn) setMark(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return os.NewSyscallError("setsockopt SO_RCVLOWAT", err)
	}
	c.mark = n
	return nil
}

// SetReadDeadline sets the owner's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets the owner's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// SyscallConn hands out the socket (a driver's liveness check of an idle
// connection reads it directly).
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }
