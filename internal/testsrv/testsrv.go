// Package testsrv starts real database and object-storage servers for tests:
// PostgreSQL, MariaDB and an S3-compatible server (versitygw). Every server
// runs on a free port on 127.0.0.1, with its data, sockets and logs in its own
// temporary directory, and is stopped (its whole process group) at clean-up.
//
// The shared servers returned by Postgres, MariaDB and S3 are started at most
// once per test binary and live until Cleanup is called, so every package that
// uses them must call Cleanup from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }
//
// which is the same as
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testsrv.Cleanup()
//		os.Exit(code)
//	}
//
// Tests that need a server of their own (replication, a second independent
// server) call NewPostgres or NewMariaDB; those servers stop when the test
// that started them ends (and at the latest in Cleanup).
//
// Servers are children of the test binary with a parent-death signal, so they
// do not outlive a test binary that is killed (for example by -timeout).
//
// When a server binary is missing, the test is skipped with a message, unless
// the environment variable SNAPDATA_REQUIRE_SERVERS is set (scripts/test sets
// it), in which case the test fails. A server that is present but does not
// start always fails the test, and its log is printed.
package testsrv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing server binary
// from a skipped test into a failed one.
const RequireEnv = "SNAPDATA_REQUIRE_SERVERS"

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 30 * time.Second

// registry holds the stop functions of every server this test binary
// started. It is package state by necessity: servers are shared across the
// tests of one binary and must be stopped once, from TestMain.
var registry struct {
	mu    sync.Mutex
	stops []*stopper
}

type stopper struct {
	once sync.Once
	fn   func()
}

func (s *stopper) stop() { s.once.Do(s.fn) }

// register adds fn to the functions Cleanup runs; the returned function runs
// it early (at most once).
func register(fn func()) func() {
	s := &stopper{fn: fn}
	registry.mu.Lock()
	registry.stops = append(registry.stops, s)
	registry.mu.Unlock()
	return s.stop
}

// Cleanup stops every server started by this test binary and removes their
// temporary directories. Call it from TestMain after m.Run.
func Cleanup() {
	registry.mu.Lock()
	stops := registry.stops
	registry.stops = nil
	registry.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i].stop()
	}
}

// Main runs the tests and then Cleanup, returning the exit code:
// func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }.
func Main(m *testing.M) int {
	defer Cleanup()
	return m.Run()
}

// MissingError says a server binary is not installed.
type MissingError struct {
	What string // e.g. "PostgreSQL (initdb)"
	Hint string // how to install it
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s is not installed (%s)", e.What, e.Hint)
}

// Required reports whether missing servers must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv(RequireEnv) != "" }

// fail skips or fails t for err, following the rules in the package doc.
func fail(t testing.TB, err error) {
	t.Helper()
	if shouldSkip(err) {
		t.Skipf("skipping: %v; set %s=1 to fail instead (scripts/test installs everything)", err, RequireEnv)
	}
	t.Fatalf("testsrv: %v", err)
}

// shouldSkip reports whether err (from starting a server) skips the test
// rather than failing it.
func shouldSkip(err error) bool {
	var me *MissingError
	return errors.As(err, &me) && !Required()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// makeTempDir creates a temporary directory readable by other users, so
// servers that run as a dedicated OS user can reach their sub-directories.
func makeTempDir(kind string) (string, error) {
	dir, err := os.MkdirTemp("", "snapdata-"+kind+"-")
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	return dir, nil
}

// proc is one running server process (and its process group).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	grace   time.Duration // how long stop waits before SIGKILL
	done    chan struct{}
	err     error // valid after done is closed
}

// startProc starts cmd in its own process group with stdout and stderr
// appended to logPath.
func startProc(name string, cmd *exec.Cmd, logPath string, stopSig syscall.Signal) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer logf.Close()
	cmd.Stdout = logf
	cmd.Stderr = logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, stopSig: stopSig, grace: 15 * time.Second, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process group to stop with stopSig, and kills it after the
// grace period.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, p.stopSig)
		select {
		case <-p.done:
		case <-time.After(p.grace):
		}
	}
	// Kill whatever is left of the group (children of the server).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	// Wait (briefly) until the members of the group are gone too.
	for i := 0; i < 100 && groupAlive(pgid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie (zombies of orphans are reaped by init in its own time).
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if fields[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitReady polls ready until it succeeds, the process exits or the start
// timeout passes.
func (p *proc) waitReady(ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited during start-up (%v)\n%s", p.name, p.err, p.logTail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v\n%s", p.name, startTimeout, last, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logTail returns the end of the process log, for error messages.
func (p *proc) logTail() string { return fileTail(p.logPath) }

func fileTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log %s: %v)", path, err)
	}
	const max = 8 << 10
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return fmt.Sprintf("--- %s ---\n%s--- end of log ---", path, data)
}

// runLogged runs a set-up command to completion with output in logPath; on
// failure the error includes the log.
func runLogged(ctx context.Context, cmd *exec.Cmd, logPath string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	err = cmd.Run()
	_ = logf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, fileTail(logPath))
	}
	return nil
}

// lookPath finds name in dirs first, then in PATH.
func lookPath(name string, dirs ...string) (string, error) {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// sanitizeName turns s into a lower-case identifier made of [a-z0-9_].
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "db_" + out
	}
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

// counter hands out unique numbers for database and bucket names.
var counter struct {
	mu sync.Mutex
	n  int
}

func nextSeq() int {
	counter.mu.Lock()
	defer counter.mu.Unlock()
	counter.n++
	return counter.n
}
