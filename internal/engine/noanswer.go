package engine

import (
	"context"
	"fmt"
	"time"
)

// DefaultConnectTimeout bounds the opening of a database session: the TCP
// connection, TLS and the protocol's handshake and authentication. A server
// that accepts connections and never answers would otherwise hang a backup
// forever.
const DefaultConnectTimeout = 30 * time.Second

// NoAnswerError is a database server that did not answer in time. It names
// the server's address (never credentials) and what it did not do.
type NoAnswerError struct {
	Engine   string        // "postgres", "mysql"
	Addr     string        // host:port or socket path
	Accepted bool          // the connection was accepted, then nothing came
	After    time.Duration // how long snapdata waited
	Err      error         // the driver's error
}

func (e *NoAnswerError) Error() string {
	if e.Accepted {
		return fmt.Sprintf("%s server %s accepted the connection but did not answer within %s", e.Engine, e.Addr, e.After)
	}
	return fmt.Sprintf("%s server %s did not accept a connection within %s", e.Engine, e.Addr, e.After)
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

// Timeout marks the error as a timeout.
func (e *NoAnswerError) Timeout() bool { return true }

// DialWatch records, for one connection attempt, whether the server
// accepted the TCP connection and its address. A driver's dial function
// finds it in its context (WatchDial) and calls Dialed.
type DialWatch struct {
	addr     string
	accepted bool
}

type dialWatchKey struct{}

// WatchDial returns ctx carrying a new DialWatch.
func WatchDial(ctx context.Context) (context.Context, *DialWatch) {
	w := &DialWatch{}
	return context.WithValue(ctx, dialWatchKey{}, w), w
}

// Dialed records in ctx's DialWatch, if any, that addr accepted a connection.
func Dialed(ctx context.Context, addr string) {
	if w, ok := ctx.Value(dialWatchKey{}).(*DialWatch); ok {
		w.addr, w.accepted = addr, true
	}
}

// NoAnswer returns the NoAnswerError of a connection attempt that ran out
// of time: addr is the server's address as configured, used when the dial
// never completed.
func (w *DialWatch) NoAnswer(engineName, addr string, after time.Duration, err error) *NoAnswerError {
	e := &NoAnswerError{Engine: engineName, Addr: addr, After: after, Err: err}
	if w.accepted {
		e.Accepted = true
		if w.addr != "" {
			e.Addr = w.addr
		}
	}
	return e
}
