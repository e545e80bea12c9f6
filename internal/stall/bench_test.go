package stall

import (
	"context"
	"net"
	"testing"
	"time"
)

// instantConn is a connection whose reads return at once: what is left to
// measure is the wrapper's own cost per read.
type instantConn struct{ net.Conn }

func (instantConn) Read(p []byte) (int, error) { return len(p), nil }
func (instantConn) Close() error               { return nil }

// BenchmarkReadOverhead is the watchdog's cost per read (one read per
// 128 KiB of a bulk response, lowat's batch: about 8,000 per GB):
// go test -run X -bench ReadOverhead ./internal/stall
func BenchmarkReadOverhead(b *testing.B) {
	buf := make([]byte, 128<<10)
	for _, watched := range []bool{false, true} {
		name := "plain"
		var c net.Conn = instantConn{}
		if watched {
			name = "watched"
			c = Wrap(c, Options{Engine: "postgres", Addr: "x", Idle: time.Minute, ProbeTimeout: time.Second,
				Probe: func(context.Context) error { return nil }})
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		c.Close()
	}
}
