// Package notify sends job events to people: a generic JSON webhook, a
// Slack-compatible webhook ({"text": ...}) and SMTP email. A notifier that
// fails is logged and never fails the job, and no message ever carries a
// secret: every text goes through a Scrubber built from the config.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/dsn"
)

// Event kinds, as named in the config's "on" lists.
const (
	Failure  = "failure"
	Recovery = "recovery" // a success after a failure
	Success  = "success"
	Skip     = "skip"
)

// Event is one job outcome worth telling someone about.
type Event struct {
	Kind       string    `json:"event"`   // failure, recovery, success, skip
	Job        string    `json:"job"`     // job (or task, e.g. "orders/verify") name
	Outcome    string    `json:"outcome"` // success, failure, skipped
	Message    string    `json:"message"`
	Sources    []string  `json:"sources,omitempty"`
	Repository string    `json:"repository,omitempty"`
	Snapshots  []string  `json:"snapshots,omitempty"`
	BytesAdded int64     `json:"bytes_added"`
	Duration   float64   `json:"duration_seconds"`
	Time       time.Time `json:"time"`
	Host       string    `json:"host"`
}

// Text is the one-line human form used by Slack and email.
func (e Event) Text() string {
	var b strings.Builder
	icon := map[string]string{Failure: "FAILED", Recovery: "RECOVERED", Success: "OK", Skip: "SKIPPED"}[e.Kind]
	fmt.Fprintf(&b, "snapdata %s: job %s", icon, e.Job)
	if len(e.Sources) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Sources, ", "))
	}
	if e.Host != "" {
		fmt.Fprintf(&b, " on %s", e.Host)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Snapshots) > 0 {
		fmt.Fprintf(&b, " [snapshot %s]", strings.Join(e.Snapshots, ", "))
	}
	return b.String()
}

// Scrubber removes known secrets from text.
type Scrubber struct{ secrets []string }

// NewScrubber collects the secrets of a config: DSN and repository
// passwords, the server token, SMTP passwords and webhook URLs' secrets.
func NewScrubber(cfg *config.Config, extra ...string) *Scrubber {
	s := &Scrubber{}
	add := func(v string) {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	urlSecrets := func(raw string) {
		u := parseSecretURL(raw)
		if u == nil {
			return
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p)
				add(url.QueryEscape(p))
				add(url.PathEscape(p))
			}
		}
		for k, vs := range u.Query() {
			if dsn.IsSecretParam(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	if cfg != nil {
		for _, src := range cfg.Sources {
			if src != nil {
				urlSecrets(src.DSN)
			}
		}
		for _, r := range cfg.Repositories {
			if r != nil {
				add(r.Password)
				urlSecrets(r.URL)
			}
		}
		if cfg.Server != nil {
			add(cfg.Server.Token)
		}
		for _, n := range cfg.Notify {
			if n == nil {
				continue
			}
			if n.Email != nil {
				urlSecrets(n.Email.SMTP)
			}
			// A webhook URL is itself a credential (Slack's are): its path
			// never appears in a message.
			for _, w := range []string{n.Webhook, n.Slack} {
				if u, err := url.Parse(w); err == nil && len(u.Path) >= 16 {
					add(u.Path)
				}
				urlSecrets(w)
			}
		}
		for _, j := range cfg.Jobs {
			if j != nil && j.Verify != nil {
				for _, d := range j.Verify.Scratch.DSNs() {
					urlSecrets(d)
				}
			}
		}
	}
	for _, e := range extra {
		add(e)
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	return s
}

// Scrub returns text without any known secret. It is the last line of
// defence (messages are built from redacted DSNs): a secret is replaced only
// where it stands as a whole token, not inside a word, so a short password
// such as "p" cannot turn "parse" into "xxxxxarse" and reveal itself.
func (s *Scrubber) Scrub(text string) string {
	if s == nil {
		return text
	}
	for _, sec := range s.secrets {
		text = replaceToken(text, sec, dsn.Mask)
	}
	return text
}

// replaceToken replaces the occurrences of old in s that are not preceded
// or followed by a letter or digit.
func replaceToken(s, old, repl string) string {
	if old == "" || !strings.Contains(s, old) {
		return s
	}
	var b strings.Builder
	from := 0
	for {
		i := strings.Index(s[from:], old)
		if i < 0 {
			b.WriteString(s[from:])
			return b.String()
		}
		i += from
		end := i + len(old)
		whole := (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end]))
		b.WriteString(s[from:i])
		if whole {
			b.WriteString(repl)
		} else {
			b.WriteString(old)
		}
		from = end
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Notifier delivers one event.
type Notifier interface {
	Name() string // for logs: "webhook https://host/…", never the secret part
	Notify(ctx context.Context, e Event) error
}

// Channel is a notifier with the events it wants.
type Channel struct {
	On       map[string]bool
	Notifier Notifier
}

// Dispatcher sends events to every channel that wants them.
type Dispatcher struct {
	Channels []Channel
	Scrubber *Scrubber
	Logger   *slog.Logger
	Timeout  time.Duration // per delivery; default 20s
}

// FromConfig builds a dispatcher from the config's notify list. A channel
// without "on" gets failures only.
func FromConfig(cfg *config.Config, logger *slog.Logger) (*Dispatcher, error) {
	d := &Dispatcher{Scrubber: NewScrubber(cfg), Logger: logger}
	client := &http.Client{Timeout: 20 * time.Second}
	for i, n := range cfg.Notify {
		if n == nil {
			continue
		}
		on := map[string]bool{}
		for _, k := range n.On {
			on[k] = true
		}
		if len(on) == 0 {
			on[Failure] = true
		}
		var nt Notifier
		switch {
		case n.Webhook != "":
			nt = &Webhook{URL: n.Webhook, Client: client}
		case n.Slack != "":
			nt = &Slack{URL: n.Slack, Client: client}
		case n.Email != nil:
			e, err := NewEmail(n.Email)
			if err != nil {
				return nil, fmt.Errorf("notify[%d]: %w", i, err)
			}
			nt = e
		default:
			continue
		}
		d.Channels = append(d.Channels, Channel{On: on, Notifier: nt})
	}
	return d, nil
}

// Send delivers e to each channel that wants e.Kind. It scrubs the event
// first, logs failures and never returns an error: a notification must not
// fail a job.
func (d *Dispatcher) Send(ctx context.Context, e Event) {
	if d == nil {
		return
	}
	e.Message = d.Scrubber.Scrub(e.Message)
	for i := range e.Sources {
		e.Sources[i] = d.Scrubber.Scrub(e.Sources[i])
	}
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	for _, c := range d.Channels {
		// A recovery is also a success for channels that want successes.
		if !c.On[e.Kind] && !(e.Kind == Recovery && c.On[Success]) {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err := c.Notifier.Notify(cctx, e)
		cancel()
		if d.Logger != nil {
			if err != nil {
				d.Logger.Warn("notification failed", "notifier", c.Notifier.Name(), "job", e.Job, "event", e.Kind, "error", d.Scrubber.Scrub(err.Error()))
			} else {
				d.Logger.Info("notification sent", "notifier", c.Notifier.Name(), "job", e.Job, "event", e.Kind)
			}
		}
	}
}

// Webhook POSTs the event as JSON.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Name implements Notifier.
func (w *Webhook) Name() string { return "webhook " + hostOnly(w.URL) }

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return post(ctx, w.Client, w.URL, body)
}

// Slack POSTs {"text": ...} to a Slack-compatible incoming webhook.
type Slack struct {
	URL    string
	Client *http.Client
}

// Name implements Notifier.
func (s *Slack) Name() string { return "slack " + hostOnly(s.URL) }

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, e Event) error {
	body, err := json.Marshal(map[string]string{"text": e.Text()})
	if err != nil {
		return fmt.Errorf("encode slack message: %w", err)
	}
	return post(ctx, s.Client, s.URL, body)
}

func post(ctx context.Context, c *http.Client, target string, body []byte) error {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post to %s: bad URL", hostOnly(target))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "snapdata")
	resp, err := c.Do(req)
	if err != nil {
		// url.Error repeats the whole URL, which may be a secret.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", hostOnly(target), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: HTTP %s", hostOnly(target), resp.Status)
	}
	return nil
}

// hostOnly shows where a URL points without its path, query or user.
func hostOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Email sends a plain-text mail over SMTP (STARTTLS when the server offers
// it; PLAIN auth when the URL has a user).
type Email struct {
	To   []string
	From string
	Addr string // host:port
	Host string
	User string
	Pass string
}

// NewEmail reads an email config; smtp is smtp://user:pass@host:port.
func NewEmail(c *config.Email) (*Email, error) {
	if len(c.To) == 0 {
		return nil, fmt.Errorf("email: to is required")
	}
	u, err := url.Parse(c.SMTP)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, fmt.Errorf("email: smtp %q: expected smtp://user:pass@host:port", dsn.Redact(c.SMTP))
	}
	e := &Email{To: c.To, From: c.From, Host: u.Hostname(), Addr: u.Host}
	if u.Port() == "" {
		e.Addr = net.JoinHostPort(u.Hostname(), "25")
	}
	if u.User != nil {
		e.User = u.User.Username()
		e.Pass, _ = u.User.Password()
	}
	if e.From == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		e.From = "snapdata@" + host
	}
	return e, nil
}

// Name implements Notifier.
func (e *Email) Name() string { return "email smtp://" + e.Addr }

// Notify implements Notifier.
func (e *Email) Notify(ctx context.Context, ev Event) error {
	subject := ev.Text()
	if len(subject) > 120 {
		subject = subject[:117] + "..."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		e.From, strings.Join(e.To, ", "), oneLine(subject), ev.Time.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "%s\r\n\r\nevent:       %s\r\njob:         %s\r\noutcome:     %s\r\n", oneLine(ev.Text()), ev.Kind, ev.Job, ev.Outcome)
	if ev.Repository != "" {
		fmt.Fprintf(&b, "repository:  %s\r\n", ev.Repository)
	}
	if len(ev.Snapshots) > 0 {
		fmt.Fprintf(&b, "snapshots:   %s\r\n", strings.Join(ev.Snapshots, ", "))
	}
	fmt.Fprintf(&b, "bytes added: %d\r\nduration:    %.1fs\r\ntime:        %s\r\nhost:        %s\r\n", ev.BytesAdded, ev.Duration, ev.Time.Format(time.RFC3339), ev.Host)
	var auth smtp.Auth
	if e.User != "" {
		auth = smtp.PlainAuth("", e.User, e.Pass, e.Host)
	}
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(e.Addr, auth, e.From, e.To, []byte(b.String())) }()
	select {
	case err := <-done:
		if err != nil {
			msg := err.Error()
			if e.Pass != "" {
				msg = replaceToken(msg, e.Pass, dsn.Mask)
			}
			return fmt.Errorf("send mail via %s: %s", e.Addr, msg)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send mail via %s: %w", e.Addr, ctx.Err())
	}
}

// parseSecretURL parses a URL the way dsn.Parse does (a password may hold
// an unencoded '/'), or returns nil.
func parseSecretURL(raw string) *url.URL {
	if d, err := dsn.Parse(raw); err == nil && d.URL != nil {
		return d.URL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
