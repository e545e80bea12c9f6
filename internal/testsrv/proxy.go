package testsrv

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server until it freezes: then it
// forwards nothing more either way and answers no new connection, like a
// server stopped with SIGSTOP or a network that drops every packet.
type Proxy struct {
	Addr string // host:port to connect to instead of the server

	// FreezeAfter, when > 0, freezes the proxy once that many bytes came
	// from the server (over every connection).
	FreezeAfter int64

	fromServer atomic.Int64
	frozen     chan struct{}
	once       sync.Once
}

// NewProxy starts a proxy to target (host:port); it stops with the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsrv: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), frozen: make(chan struct{})}
	var mu sync.Mutex
	var conns []net.Conn
	keep := func(cs ...net.Conn) {
		mu.Lock()
		conns = append(conns, cs...)
		mu.Unlock()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			keep(c)
			if p.Frozen() {
				continue // accepted, never answered
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			keep(s)
			go p.pipe(s, c, true)
			go p.pipe(c, s, false)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return p
}

// Freeze stops all forwarding.
func (p *Proxy) Freeze() { p.once.Do(func() { close(p.frozen) }) }

// Frozen reports whether the proxy froze.
func (p *Proxy) Frozen() bool {
	select {
	case <-p.frozen:
		return true
	default:
		return false
	}
}

// pipe copies from src to dst until either fails or the proxy freezes;
// frozen, it keeps both connections open and silent.
func (p *Proxy) pipe(src, dst net.Conn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.Frozen() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if fromServer && p.FreezeAfter > 0 && p.fromServer.Add(int64(n)) >= p.FreezeAfter {
				p.Freeze()
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}
