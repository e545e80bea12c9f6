package stall

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pair returns a connected client and server.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func timeoutProbe(ctx context.Context) error {
	<-time.After(100 * time.Millisecond)
	return os.ErrDeadlineExceeded
}

// A read that waits on a server that does not answer a new connection
// either fails, naming the server, soon after Idle.
func TestStalledServerFails(t *testing.T) {
	client, server := pair(t)
	c := Wrap(client, Options{Engine: "postgres", Addr: "db:5432", Idle: 200 * time.Millisecond,
		Probe: timeoutProbe, ProbeTimeout: 100 * time.Millisecond})
	defer c.Close()
	if _, err := server.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	start := time.Now()
	_, err := c.Read(buf)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("read from a silent server: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	want := "postgres server db:5432 stopped answering: a session got nothing for 200ms and a new connection was not answered within 100ms"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// A server that answers a new connection is busy (a long query): the
// session keeps waiting and gets its answer.
func TestBusyServerKeepsSession(t *testing.T) {
	client, server := pair(t)
	var probes atomic.Int32
	c := Wrap(client, Options{Engine: "mysql", Addr: "db:3306", Idle: 100 * time.Millisecond,
		Probe: func(context.Context) error { probes.Add(1); return nil }, ProbeTimeout: time.Second})
	defer c.Close()
	time.AfterFunc(time.Second, func() { server.Write([]byte("done")) })
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "done" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if probes.Load() == 0 {
		t.Error("the server was never probed")
	}
}

// A connection nobody reads or writes (idle in a pool) is not probed.
func TestIdleSessionNotProbed(t *testing.T) {
	client, _ := pair(t)
	var probes atomic.Int32
	c := Wrap(client, Options{Engine: "mysql", Addr: "db:3306", Idle: 50 * time.Millisecond,
		Probe: func(context.Context) error { probes.Add(1); return os.ErrDeadlineExceeded }, ProbeTimeout: time.Second})
	time.Sleep(400 * time.Millisecond)
	if n := probes.Load(); n != 0 {
		t.Errorf("%d probes of an idle connection", n)
	}
	if err := c.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Error(err)
	}
}
