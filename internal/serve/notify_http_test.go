package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/notify"
	"github.com/snapdata/snapdata/internal/testsrv"
)

const dbSecret = "Db-Secret-pa55w0rd"

// A webhook receives the failure and then the recovery (across two
// `run` invocations: the state file remembers the failure), with the right
// fields and no secret.
func TestWebhookFailureAndRecovery(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	notifyYAML := "notify:\n  - { on: [failure, recovery], webhook: \"" + hook.URL + "/hook\" }\n"
	e := newEnv(t, "")
	// The source's DSN holds a password and points at a closed port.
	bad := baseConfig + `  orders: { dsn: "postgres://app:` + dbSecret + `@127.0.0.1:1/orders?sslmode=disable" }
jobs:
  - { name: orders, source: orders }
` + notifyYAML
	e.writeConfig(t, bad)
	ctx := context.Background()
	o, err := RunOnce(ctx, e.opts(t), "orders")
	if err != nil || o.Status != StatusFailure {
		t.Fatalf("first run: %+v %v", o, err)
	}
	o, err = RunOnce(ctx, e.opts(t), "orders") // still failing: another failure
	if err != nil || o.Status != StatusFailure {
		t.Fatalf("second run: %+v %v", o, err)
	}
	// Fix the source: same job, now a working database.
	e.writeConfig(t, baseConfig+"  orders: { dsn: \"sqlite:./app.db\" }\njobs:\n  - { name: orders, source: orders }\n"+notifyYAML)
	o, err = RunOnce(ctx, e.opts(t), "orders")
	if err != nil || o.Status != StatusSuccess {
		t.Fatalf("third run: %+v %v", o, err)
	}
	o, err = RunOnce(ctx, e.opts(t), "orders") // a plain success: nobody asked for it
	if err != nil || o.Status != StatusSuccess {
		t.Fatalf("fourth run: %+v %v", o, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 3 {
		t.Fatalf("webhook got %d messages, want failure, failure, recovery: %v", len(bodies), bodies)
	}
	var evs []notify.Event
	for _, b := range bodies {
		if strings.Contains(b, dbSecret) || strings.Contains(b, testPW) {
			t.Fatalf("notification holds a secret: %s", b)
		}
		var ev notify.Event
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	f, r := evs[0], evs[2]
	if f.Kind != notify.Failure || f.Job != "orders" || f.Outcome != StatusFailure || f.Message == "" || f.Repository != "main" ||
		len(f.Sources) != 1 || f.Sources[0] != "orders" || f.Host == "" {
		t.Fatalf("failure event: %+v", f)
	}
	if r.Kind != notify.Recovery || r.Outcome != StatusSuccess || len(r.Snapshots) != 1 || r.BytesAdded <= 0 {
		t.Fatalf("recovery event: %+v", r)
	}
}

// Bound to a non-loopback address the server requires a token and refuses
// to start without one; /healthz stays open for probes.
func TestTokenRequiredOffLoopback(t *testing.T) {
	e := newEnv(t, "jobs:\n  - { name: app, source: app }\nserver: { listen: \"0.0.0.0:0\" }\n")
	opts := e.opts(t)
	opts.Listen = ""
	err := Serve(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("serve without a token on 0.0.0.0: %v", err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "token"), []byte("tok-123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(t, baseConfig+"jobs:\n  - { name: app, source: app }\nserver: { listen: \"0.0.0.0:0\", token_file: token }\n")
	s := startServe(t, opts)
	port := s.addr[strings.LastIndex(s.addr, ":"):]
	base := "http://127.0.0.1" + port
	code := func(path, bearer string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, bearer string
		want         int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/", "wrong", 401},
		{"/api/jobs", "tok-123456789", 200},
		{"/?token=tok-123456789", "", 200},
	} {
		if got := code(c.path, c.bearer); got != c.want {
			t.Errorf("GET %s (bearer %q): %d, want %d", c.path, c.bearer, got, c.want)
		}
	}
}

// The status page shows the job table, a chart per source and the
// snapshots with their tables; /api/snapshots lists the same.
func TestStatusPageHTML(t *testing.T) {
	s, _ := statusFixture(t)
	page := s.get(t, "/")
	for _, want := range []string{`<table id="jobs">`, "<b>app</b>", "@every 1s", "success", `<svg`, `class="stored"`, `class="added"`,
		`data-source="app"`, `<table id="snapshots">`, "users", "orders", "Next run"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	var snaps []SnapshotView
	if err := json.Unmarshal([]byte(s.get(t, "/api/snapshots")), &snaps); err != nil || len(snaps) < 3 {
		t.Fatalf("/api/snapshots: %d, %v", len(snaps), err)
	}
	if len(snaps[0].Tables) != 2 || snaps[0].Source != "app" {
		t.Fatalf("snapshot view: %+v", snaps[0])
	}
}

// statusFixture runs a job a few times with growing data.
func statusFixture(t *testing.T) (*served, *testEnv) {
	e := newEnv(t, `jobs:
  - name: app
    source: app
    schedule: "@every 1s"
    skip_unchanged: true
    retention: { keep_last: 20 }
`)
	s := startServe(t, e.opts(t))
	for i := 0; i < 4; i++ {
		e.sqlite(t, fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) "+
			"INSERT INTO orders (user_id, total) SELECT x %% 7, x * 1.25 FROM c", 3000*(i+1)))
		n := len(e.snapshots(t))
		waitFor(t, 30*time.Second, "a snapshot of the new data", func() bool { return len(e.snapshots(t)) > n })
	}
	waitFor(t, 10*time.Second, "a finished run", func() bool {
		j := s.jobs(t)["app"]
		return j.Last != nil && j.Last.Status == StatusSuccess
	})
	return s, e
}

// The status page in headless Chromium: screenshot into docs/ and check
// the rendered DOM has the job table and the chart. Skipped when chromium
// is not installed (scripts/test does not install it).
func TestStatusPageChromium(t *testing.T) {
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if testsrv.Required() {
			t.Fatal("chromium is not installed (scripts/install-deps installs it)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); the HTML is checked by TestStatusPageHTML")
	}
	s, _ := statusFixture(t)
	out := t.TempDir()
	shot := filepath.Join(out, "status.png")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + filepath.Join(out, "profile")}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	url := "http://" + s.addr + "/"
	dom, err := exec.CommandContext(ctx, bin, append(flags, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, want := range []string{`id="jobs"`, "<svg", "polyline", `class="stored"`} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	cmd := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, "--window-size=1280,1100", url)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, b)
	}
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot: %v (%v bytes)", err, fi)
	}
	if dst := os.Getenv("SNAPDATA_SCREENSHOT"); dst != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var _ = testsrv.Required
