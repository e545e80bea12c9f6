package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/config"
)

const secretPW = "s3cr3t-Pa55word"

func testConfig(t *testing.T, notify string) *config.Config {
	t.Helper()
	y := `
repositories:
  main: { url: /tmp/repo, password: repo-pass-123456 }
sources:
  orders: { dsn: "postgres://app:` + secretPW + `@db.example.com:5432/orders" }
jobs:
  - { name: orders, source: orders, schedule: "@every 1m" }
notify:
` + notify
	cfg, err := config.Parse("test.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) handler(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
}

func TestWebhookAndSlack(t *testing.T) {
	var hook, slack recorder
	hs := httptest.NewServer(http.HandlerFunc(hook.handler))
	defer hs.Close()
	ss := httptest.NewServer(http.HandlerFunc(slack.handler))
	defer ss.Close()
	cfg := testConfig(t, `
  - { on: [failure, recovery], webhook: "`+hs.URL+`/hook" }
  - { on: [failure], slack: "`+ss.URL+`/services/T000/B000/XXXXXXXXXXXXXXXX" }
`)
	d, err := FromConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d.Send(ctx, Event{Kind: Failure, Job: "orders", Outcome: "failure", Sources: []string{"orders"},
		Message: "connect to postgres://app:" + secretPW + "@db.example.com:5432/orders: refused"})
	d.Send(ctx, Event{Kind: Success, Job: "orders", Outcome: "success"}) // nobody wants it
	d.Send(ctx, Event{Kind: Recovery, Job: "orders", Outcome: "success", Snapshots: []string{"abcd1234"}, BytesAdded: 42})
	if len(hook.bodies) != 2 || len(slack.bodies) != 1 {
		t.Fatalf("webhook got %d, slack got %d; want 2 and 1", len(hook.bodies), len(slack.bodies))
	}
	var ev Event
	if err := json.Unmarshal(hook.bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != Failure || ev.Job != "orders" || ev.Outcome != "failure" || ev.Host == "" || ev.Time.IsZero() {
		t.Fatalf("failure event: %+v", ev)
	}
	if err := json.Unmarshal(hook.bodies[1], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != Recovery || ev.BytesAdded != 42 || len(ev.Snapshots) != 1 {
		t.Fatalf("recovery event: %+v", ev)
	}
	var sm map[string]string
	if err := json.Unmarshal(slack.bodies[0], &sm); err != nil || !strings.Contains(sm["text"], "FAILED") || !strings.Contains(sm["text"], "orders") {
		t.Fatalf("slack body %s (%v)", slack.bodies[0], err)
	}
	for _, b := range append(hook.bodies, slack.bodies...) {
		if strings.Contains(string(b), secretPW) {
			t.Fatalf("a notification contains the password: %s", b)
		}
	}
}

func TestFailingNotifierIsLoggedNotFatal(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	var good recorder
	gs := httptest.NewServer(http.HandlerFunc(good.handler))
	defer gs.Close()
	cfg := testConfig(t, `
  - { on: [failure], webhook: "`+bad.URL+`/x" }
  - { on: [failure], webhook: "http://127.0.0.1:1/unreachable" }
  - { on: [failure], webhook: "`+gs.URL+`/y" }
`)
	var logs strings.Builder
	d, err := FromConfig(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.Send(context.Background(), Event{Kind: Failure, Job: "orders", Outcome: "failure"})
	if len(good.bodies) != 1 {
		t.Fatalf("the working webhook got %d messages", len(good.bodies))
	}
	if strings.Count(logs.String(), "notification failed") != 2 {
		t.Fatalf("logs: %s", logs.String())
	}
}

// fakeSMTP is a minimal SMTP server that records one message.
func fakeSMTP(t *testing.T) (addr string, got chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		w := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
		w("220 fake ESMTP")
		var all strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			all.WriteString(line)
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"):
				w("250-fake\r\n250 AUTH PLAIN")
			case strings.HasPrefix(cmd, "AUTH"):
				w("235 ok")
			case cmd == "DATA":
				w("354 go")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					all.WriteString(l)
				}
				w("250 queued")
			case cmd == "QUIT":
				w("221 bye")
				got <- all.String()
				return
			default:
				w("250 ok")
			}
		}
	}()
	return l.Addr().String(), got
}

func TestEmail(t *testing.T) {
	addr, got := fakeSMTP(t)
	cfg := testConfig(t, `
  - { on: [failure], email: { to: ops@example.com, from: snapdata@example.com, smtp: "smtp://mailer:mail-Pa55word@`+addr+`" } }
`)
	d, err := FromConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// net/smtp only sends PLAIN auth over TLS or to localhost; the fake
	// server is on 127.0.0.1, which net/smtp does not count as localhost,
	// so point the notifier at "localhost".
	e := d.Channels[0].Notifier.(*Email)
	e.Host = "localhost"
	e.Addr = strings.Replace(addr, "127.0.0.1", "localhost", 1)
	d.Send(context.Background(), Event{Kind: Failure, Job: "orders", Outcome: "failure",
		Message: "dump failed: password " + secretPW + " rejected; smtp mail-Pa55word"})
	select {
	case msg := <-got:
		if !strings.Contains(msg, "Subject: snapdata FAILED: job orders") || !strings.Contains(msg, "RCPT TO:<ops@example.com>") {
			t.Fatalf("mail: %s", msg)
		}
		if strings.Contains(msg, secretPW) || strings.Contains(msg, "mail-Pa55word") {
			t.Fatalf("mail contains a secret: %s", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no mail received")
	}
}

func TestScrubber(t *testing.T) {
	cfg := testConfig(t, `
  - { on: [failure], webhook: "https://hooks.example.com/services/T000/B000/ZZZZZZZZZZZZZZZZ" }
`)
	s := NewScrubber(cfg, "extra-token-xyz")
	in := "postgres://app:" + secretPW + "@db/orders repo-pass-123456 extra-token-xyz /services/T000/B000/ZZZZZZZZZZZZZZZZ"
	out := s.Scrub(in)
	for _, sec := range []string{secretPW, "repo-pass-123456", "extra-token-xyz", "ZZZZZZZZZZZZZZZZ"} {
		if strings.Contains(out, sec) {
			t.Fatalf("Scrub left %q in %q", sec, out)
		}
	}
}

// TestScrubberShortAndOddSecrets: a one-letter password must not be
// replaced inside words (which garbles the message and reveals the letter:
// "cannot xxxxxarse"), and secrets of a password with an unencoded '/' and
// of query parameters (password=, sslpassword=) are known to the scrubber.
func TestScrubberShortAndOddSecrets(t *testing.T) {
	y := `
repositories:
  main: { url: /tmp/repo }
sources:
  a: { dsn: "postgres://app:p@db/postgres" }
  b: { dsn: "postgres://app:2024/Summer!x@db/orders" }
  c: { dsn: "postgres://db/orders?user=u&password=QueryPw-123&sslpassword=SslPw-123" }
`
	cfg, err := config.Parse("test.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s := NewScrubber(cfg)
	in := "cannot parse postgres://app@db/postgres: p; 2024/Summer!x QueryPw-123 (SslPw-123)"
	want := "cannot parse postgres://app@db/postgres: xxxxx; xxxxx xxxxx (xxxxx)"
	if got := s.Scrub(in); got != want {
		t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
	}
}
