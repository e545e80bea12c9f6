package serve

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

const (
	pwVar  = "SNAPDATA_TEST_REPO_PASSWORD"
	testPW = "serve-test-Repo-pa55"
)

// Helper-process mode: the test binary re-executed with SERVE_HELPER_CONFIG
// runs `serve` like the snapdata binary does (SIGTERM/SIGINT cancel the
// context, SIGHUP reloads), printing "READY <addr>" on stdout.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("SERVE_HELPER_CONFIG"); cfg != "" {
		os.Exit(helperMain(cfg))
	}
	os.Exit(testsrv.Main(m))
}

func helperMain(cfg string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := Options{ConfigPath: cfg, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))}
	if g := os.Getenv("SERVE_HELPER_GRACE"); g != "" {
		opts.Grace, _ = time.ParseDuration(g)
	}
	if d := os.Getenv("SERVE_HELPER_SLOW"); d != "" {
		delay, _ := time.ParseDuration(d)
		opts.NewApp = slowApp(delay, nil)
	}
	opts.Ready = func(addr string) { fmt.Printf("READY %s\n", addr) }
	err := Serve(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		if _, ok := err.(*AlreadyServingError); ok {
			return 5
		}
		return 1
	}
	return 0
}

// slowEngine delays every stream of a backup, so that backups take long
// enough to overlap with their schedule or with a SIGTERM. It counts how
// many backups run at once.
type slowEngine struct {
	engine.Engine
	delay time.Duration
	gauge *concurrency
}

type concurrency struct {
	mu       sync.Mutex
	cur, max int
}

func (c *concurrency) enter() {
	c.mu.Lock()
	c.cur++
	if c.cur > c.max {
		c.max = c.cur
	}
	c.mu.Unlock()
}

func (c *concurrency) leave() {
	c.mu.Lock()
	c.cur--
	c.mu.Unlock()
}

func (c *concurrency) Max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

func (e slowEngine) Backup(ctx context.Context, src *dsn.DSN, opts engine.BackupOptions, sink engine.Sink) (*engine.BackupResult, error) {
	if e.gauge != nil {
		e.gauge.enter()
		defer e.gauge.leave()
	}
	return e.Engine.Backup(ctx, src, opts, slowSink{Sink: sink, delay: e.delay})
}

type slowSink struct {
	engine.Sink
	delay time.Duration
}

func (s slowSink) Create(ctx context.Context, st manifest.Stream) (engine.StreamWriter, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Sink.Create(ctx, st)
}

func slowApp(delay time.Duration, g *concurrency) func(*config.Config, *slog.Logger, func(string) string) *app.App {
	return func(cfg *config.Config, l *slog.Logger, getenv func(string) string) *app.App {
		a := app.New(cfg, l, getenv)
		a.Engines = engine.Registry{}
		for k, v := range app.DefaultEngines() {
			a.Engines[k] = slowEngine{Engine: v, delay: delay, gauge: g}
		}
		return a
	}
}

func lookup(name string) (string, bool) {
	if name == pwVar {
		return testPW, true
	}
	return os.LookupEnv(name)
}

func getenv(name string) string { v, _ := lookup(name); return v }

// testEnv is a directory with a SQLite database, a repository and a config.
type testEnv struct {
	dir, cfg, db string
}

const baseConfig = `repositories:
  main: { url: ./repo, password: "${` + pwVar + `}" }
sources:
  app: { dsn: "sqlite:./app.db" }
`

func newEnv(t *testing.T, rest string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{dir: dir, cfg: filepath.Join(dir, "snapdata.yaml"), db: filepath.Join(dir, "app.db")}
	e.sqlite(t, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL)",
		"INSERT INTO users (name) VALUES ('ada'), ('grace'), ('linus')",
		"INSERT INTO orders (user_id, total) VALUES (1, 9.5), (2, 20), (3, 7.25)")
	e.writeConfig(t, baseConfig+rest)
	cfg, err := config.Load(e.cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	kdf := crypto.KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 1024, Threads: 1, Salt: crypto.RandomBytes(16)}
	r, _, err := app.New(cfg, nil, getenv).InitRepository(context.Background(), "main", repository.InitOptions{KDF: &kdf})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return e
}

func (e *testEnv) writeConfig(t *testing.T, y string) {
	t.Helper()
	if err := os.WriteFile(e.cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) sqlite(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.db+"?_pragma=busy_timeout(20000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (e *testEnv) snapshots(t *testing.T) []*manifest.Snapshot {
	t.Helper()
	cfg, err := config.Load(e.cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := app.New(cfg, nil, getenv).OpenRepository(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *testEnv) check(t *testing.T) {
	t.Helper()
	cfg, err := config.Load(e.cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := app.New(cfg, nil, getenv).OpenRepository(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Check(ctx, true, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("repository check: %v %+v", err, rep)
	}
}

func (e *testEnv) opts(t *testing.T) Options {
	return Options{ConfigPath: e.cfg, Lookup: lookup, Getenv: getenv, Listen: "127.0.0.1:0", NoSignals: true,
		Logger: slog.New(slog.NewJSONHandler(&testWriter{t: t}, nil))}
}

// testWriter sends logs to t.Log.
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// served runs Serve in this process until the test ends.
type served struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startServe(t *testing.T, opts Options) *served {
	t.Helper()
	ready := make(chan string, 1)
	opts.Ready = func(a string) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- Serve(ctx, opts) }()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *served) stop(t *testing.T) {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
		s.done <- nil
	case <-time.After(90 * time.Second):
		t.Error("serve did not stop")
	}
}

func (s *served) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b)
}

func (s *served) jobs(t *testing.T) map[string]JobView {
	t.Helper()
	var list []JobView
	if err := json.Unmarshal([]byte(s.get(t, "/api/jobs")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]JobView{}
	for _, j := range list {
		out[j.Task] = j
	}
	return out
}

// metric returns the value of one sample line of /metrics, or 0.
func metric(body, sample string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, sample+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(l, sample+" "), "%g", &v)
			return v
		}
	}
	return 0
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proc is a helper serve process.
type proc struct {
	cmd   *exec.Cmd
	addr  string
	mu    sync.Mutex
	logs  []string
	done  chan struct{}
	state *os.ProcessState
}

func startProc(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "SERVE_HELPER_CONFIG="+cfg, pwVar+"="+testPW), env...)
	out, _ := cmd.StdoutPipe()
	errp, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- a
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errp)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			for _, l := range p.allLogs() {
				t.Log("helper:", l)
			}
		}
	})
	select {
	case p.addr = <-ready:
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("helper serve did not start")
	}
	return p
}

func (p *proc) allLogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

// count returns how many log lines contain all of the substrings.
func (p *proc) count(subs ...string) int {
	n := 0
	for _, l := range p.allLogs() {
		ok := true
		for _, s := range subs {
			if !strings.Contains(l, s) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("helper process did not exit within %s", timeout)
		return -1
	}
}
