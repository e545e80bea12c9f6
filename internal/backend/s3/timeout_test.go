package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/backendtest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// within runs fn and fails t if it has not returned after limit.
func within(t *testing.T, limit time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still waiting after %s: it hangs", what, limit)
		return nil
	}
}

// A server that accepts connections and never answers fails every
// operation after the timeout and the retries, with an error that names the
// endpoint, and each retry is logged.
func TestBlackHoleEndpoint(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	addr := testsrv.Silent(t)
	endpoint := "http://" + addr
	var logs logBuffer
	o, err := ParseURL("s3://bucket/repo?endpoint=" + endpoint + "&region=us-east-1&timeout=300ms&attempts=3")
	if err != nil {
		t.Fatal(err)
	}
	o.Logger = logs.logger()
	b, err := NewWithOptions(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	ops := []struct {
		name, operation string
		fn              func() error
	}{
		{"save", "PutObject", func() error { return b.Save(ctx, h, make([]byte, 8<<20)) }},
		{"load", "GetObject", func() error { _, err := b.Load(ctx, h); return err }},
		{"stat", "HeadObject", func() error { _, err := b.Stat(ctx, h); return err }},
		{"list", "ListObjectsV2", func() error {
			return b.List(ctx, backend.Data, func(backend.FileInfo) error { return nil })
		}},
		{"create", "HeadBucket", func() error { return b.Create(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			before := strings.Count(logs.String(), "retrying")
			start := time.Now()
			err := within(t, 20*time.Second, op.name, op.fn)
			took := time.Since(start)
			if err == nil {
				t.Fatal("no error from a server that never answers")
			}
			msg := err.Error()
			if !strings.Contains(msg, endpoint) || !strings.Contains(msg, "did not answer within 300ms (3 attempts)") {
				t.Errorf("error does not say which endpoint did not answer: %v", msg)
			}
			// 3 attempts of 300 ms and two backoffs of at most 150 ms.
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			retries := strings.Count(logs.String(), "retrying") - before
			if retries != 2 {
				t.Errorf("%d retry lines logged, want 2:\n%s", retries, logs.String())
			}
			if !strings.Contains(logs.String(), "operation="+op.operation) || !strings.Contains(logs.String(), "endpoint="+endpoint) {
				t.Errorf("retry lines do not name the operation %s and the endpoint:\n%s", op.operation, logs.String())
			}
		})
	}
	// A cancelled context is not reported as a server that did not answer.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	err = within(t, 10*time.Second, "cancelled save", func() error { return b.Save(cctx, h, []byte("x")) })
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "did not answer") {
		t.Errorf("cancelled save: %v", err)
	}
}

// A server that stalls (SIGSTOP) and comes back (SIGCONT): the upload
// retries, logs, and completes; one that stays stopped fails after the
// retries with the endpoint named.
func TestStalledServer(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	var logs logBuffer
	open := func(attempts string) *Backend {
		o, err := ParseURL(srv.URL(bucket, "stall") + "&timeout=400ms&attempts=" + attempts)
		if err != nil {
			t.Fatal(err)
		}
		o.Logger = logs.logger()
		b, err := NewWithOptions(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	stop := func() {
		t.Helper()
		if err := srv.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	cont := func() {
		t.Helper()
		if err := srv.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = srv.Signal(syscall.SIGCONT) })
	ctx := context.Background()
	data := make([]byte, 8<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	b := open("20")
	warm := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	if err := b.Save(ctx, warm, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}
	stop()
	time.AfterFunc(2*time.Second, cont)
	start := time.Now()
	if err := within(t, 30*time.Second, "save during a stall", func() error { return b.Save(ctx, h, data) }); err != nil {
		t.Fatalf("save after the server came back: %v", err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("save took %s, before the server came back", took)
	}
	if !strings.Contains(logs.String(), "S3 request failed, retrying") || !strings.Contains(logs.String(), "operation=PutObject") {
		t.Errorf("no retry logged:\n%s", logs.String())
	}
	got, err := b.Load(ctx, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after the stall: %d bytes, %v", len(got), err)
	}

	b = open("2")
	stop()
	err = within(t, 30*time.Second, "save to a stopped server", func() error {
		return b.Save(ctx, backend.Handle{Type: backend.Data, Name: backendtest.RandomName()}, data)
	})
	cont()
	if err == nil || !strings.Contains(err.Error(), "S3 endpoint "+srv.Endpoint+" did not answer within 400ms (2 attempts)") {
		t.Errorf("save to a stopped server: %v", err)
	}
}
