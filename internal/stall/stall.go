// Package stall notices a database session whose server stopped answering
// in the middle of a request.
//
// A read timeout cannot tell a hung server from a long query: an index
// build, a foreign key's validation or a table's checksum send nothing for
// as long as they run. A Conn therefore only watches: once a read or a
// write has been waiting for Idle without a byte either way, it asks the
// server for a new session (Probe). A server that answers is busy and the
// session keeps waiting, however long its query takes; one that does not
// answer within the probe's own timeout (a stopped server, a black-holed
// network) is given up: the session's connection is closed and its blocked
// read or write fails with an Error naming the server.
//
// The cost on the data path is three atomic additions per read or write;
// the watchdog is a timer that fires once per Idle.
package stall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultIdle is how long a session may wait without a byte before the
// server is probed.
const DefaultIdle = 2 * time.Minute

// Options configure a Conn.
type Options struct {
	Engine string        // "postgres", "mysql": for messages
	Addr   string        // the server's address, for messages
	Idle   time.Duration // silence before a probe; <= 0 turns watching off
	// Probe opens and closes a new session to the server; it must return
	// within its own time limit (ProbeTimeout). An error that is a timeout
	// means the server does not answer; any other outcome, including a
	// refusal by the server, means it is alive.
	Probe        func(ctx context.Context) error
	ProbeTimeout time.Duration
	// Recorder, when not nil, keeps the Error of a session given up (a
	// driver that reports a broken session without its cause).
	Recorder *Recorder
}

// Recorder keeps the first Error of the sessions that carry it.
type Recorder struct{ err atomic.Pointer[Error] }

type recorderKey struct{}

// WithRecorder returns ctx carrying a new Recorder; a dial function finds
// it with RecorderFrom.
func WithRecorder(ctx context.Context) (context.Context, *Recorder) {
	r := &Recorder{}
	return context.WithValue(ctx, recorderKey{}, r), r
}

// RecorderFrom returns ctx's Recorder, or nil.
func RecorderFrom(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	return r
}

// Explain adds to err the Error of a session given up meanwhile, unless
// err already holds one.
func (r *Recorder) Explain(err error) error {
	if err == nil {
		return nil
	}
	se := r.err.Load()
	var held *Error
	if se == nil || errors.As(err, &held) {
		return err
	}
	return fmt.Errorf("%w: %w", err, se)
}

// Error is a session given up because its server stopped answering.
type Error struct {
	Engine, Addr string
	Idle, Probe  time.Duration
	Err          error // the probe's error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s server %s stopped answering: a session got nothing for %s and a new connection was not answered within %s",
		e.Engine, e.Addr, e.Idle, e.Probe)
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout marks the error as a timeout.
func (e *Error) Timeout() bool { return true }

// Conn is a connection watched for a server that stopped answering.
type Conn struct {
	net.Conn
	o Options

	waiting  atomic.Int32 // reads and writes under way
	progress atomic.Int64 // reads and writes that moved bytes
	dead     atomic.Pointer[Error]

	mu     sync.Mutex
	timer  *time.Timer
	last   int64 // progress at the previous tick
	closed bool
}

// Wrap returns c watched as o says, or c itself when o.Idle <= 0 or there
// is no probe.
func Wrap(c net.Conn, o Options) net.Conn {
	if o.Idle <= 0 || o.Probe == nil {
		return c
	}
	w := &Conn{Conn: c, o: o}
	w.timer = time.AfterFunc(o.Idle, w.tick)
	return w
}

func (c *Conn) Read(p []byte) (int, error) {
	c.waiting.Add(1)
	n, err := c.Conn.Read(p)
	c.waiting.Add(-1)
	if n > 0 {
		c.progress.Add(1)
	}
	return n, c.fail(err)
}

func (c *Conn) Write(p []byte) (int, error) {
	c.waiting.Add(1)
	n, err := c.Conn.Write(p)
	c.waiting.Add(-1)
	if n > 0 {
		c.progress.Add(1)
	}
	return n, c.fail(err)
}

// fail replaces the error of an operation cut short by the watchdog.
func (c *Conn) fail(err error) error {
	if err != nil {
		if d := c.dead.Load(); d != nil {
			return d
		}
	}
	return err
}

// tick runs once per Idle.
func (c *Conn) tick() {
	p := c.progress.Load()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	stalled := p == c.last && c.waiting.Load() > 0
	c.last = p
	c.mu.Unlock()
	if stalled && !c.alive() {
		return
	}
	c.mu.Lock()
	if !c.closed {
		c.timer.Reset(c.o.Idle)
	}
	c.mu.Unlock()
}

// alive probes the server; when it does not answer, the session is closed.
func (c *Conn) alive() bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.ProbeTimeout+time.Second)
	defer cancel()
	err := c.o.Probe(ctx)
	var timeout interface{ Timeout() bool }
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout()) {
		return true
	}
	if c.progress.Load() != c.last {
		return true // bytes came while the probe waited
	}
	dead := &Error{Engine: c.o.Engine, Addr: c.o.Addr, Idle: c.o.Idle, Probe: c.o.ProbeTimeout, Err: err}
	c.dead.Store(dead)
	if c.o.Recorder != nil {
		c.o.Recorder.err.CompareAndSwap(nil, dead)
	}
	_ = c.Conn.Close()
	return false
}

// Close stops the watchdog and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

// SyscallConn hands out the socket (drivers check idle connections with it).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no socket")
	}
	return sc.SyscallConn()
}
