package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddle "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Defaults of the request timeout and of the attempts per request.
const (
	// DefaultTimeout is how long a connection may stay silent (no byte
	// sent or received) while a request is under way before the attempt
	// fails: a stopped or black-holed server, not a slow link, since any
	// byte resets it.
	DefaultTimeout = 60 * time.Second
	// DefaultAttempts is how many times a request is tried. With the
	// default timeout and backoff, a server that stalls for about five
	// minutes is ridden out.
	DefaultAttempts = 5
	// maxBackoff caps the wait between attempts.
	maxBackoff = 20 * time.Second
)

// idleConn fails a read or a write once the connection has been silent
// for timeout. Any byte either way pushes the deadline: an 8 MiB upload on
// a slow link keeps going as long as it progresses, and the response wait
// that follows it starts from its last byte.
type idleConn struct {
	net.Conn
	timeout time.Duration
	// stalled is set once a read or a write met its deadline. The
	// transport then closes the connection, and the other direction's
	// pending call fails with "use of closed network connection": that
	// error is the stall too, whichever of the two the transport reports.
	stalled atomic.Bool
}

// wrap turns a deadline error, or any error after one, into a StallError.
func (c *idleConn) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.stalled.Store(true)
		return &StallError{After: c.timeout}
	}
	if c.stalled.Load() {
		return &StallError{After: c.timeout}
	}
	return err
}

// StallError is the error of a connection that stayed silent for Timeout.
type StallError struct{ After time.Duration }

func (e *StallError) Error() string {
	return fmt.Sprintf("connection silent for %s", e.After)
}

// Timeout marks the error as a timeout, which the SDK retries.
func (e *StallError) Timeout() bool { return true }

// Temporary marks the error as retryable.
func (e *StallError) Temporary() bool { return true }

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return n, c.wrap(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	// Both deadlines: the transport's reader waits for the response while
	// the body is being written.
	if err := c.Conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	return n, c.wrap(err)
}

// httpClient returns the SDK's HTTP client with the connect, TLS and
// inactivity timeouts set to timeout. Idle pooled connections are closed
// before their inactivity deadline can fail a request that picks them up.
func httpClient(timeout time.Duration) aws.HTTPClient {
	return awshttp.NewBuildableClient().
		WithReadTimeout(0). // idleConn does it, for writes too
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = timeout }).
		WithTransportOptions(func(tr *http.Transport) {
			dial := tr.DialContext
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &idleConn{Conn: c, timeout: timeout}, nil
			}
			tr.TLSHandshakeTimeout = timeout
			tr.IdleConnTimeout = min(awshttp.DefaultHTTPTransportIdleConnTimeout, timeout/2)
		})
}

// retryer is the SDK's standard retryer (exponential backoff with jitter,
// no retry quota: a backup's many parallel uploads would exhaust it in one
// outage) that logs every retry.
func retryer(attempts int, timeout time.Duration, log *slog.Logger, where string) aws.Retryer {
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = min(maxBackoff, max(timeout/2, 10*time.Millisecond))
		o.RateLimiter = ratelimit.None
	})
	return &loggingRetryer{RetryerV2: std, log: log, where: where, attempts: attempts}
}

type loggingRetryer struct {
	aws.RetryerV2
	log      *slog.Logger
	where    string
	attempts int
}

// GetRetryToken is called once an attempt failed and another will be made.
func (r *loggingRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	r.log.Warn("S3 request failed, retrying", "endpoint", r.where, "operation", awsmiddle.GetOperationName(ctx),
		"max_attempts", r.attempts, "err", opErr)
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

// fail wraps the error of a request that failed (after its retries):
// what was being done, and, for a server that did not answer, which one,
// how long it was waited for and how many times.
func (b *Backend) fail(what string, err error) error {
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: S3 endpoint %s did not answer within %s (%d attempts): %w", what, b.where(), b.timeout, b.attempts, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
