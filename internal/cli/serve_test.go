package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRunAndServeCommands(t *testing.T) {
	setup(t)
	chinook(t, "app.sqlite")
	cfg := `repositories:
  main: { url: ./backups }
sources:
  app: { dsn: "sqlite:./app.sqlite" }
jobs:
  - name: app-often
    source: app
    schedule: "@every 1s"
    skip_unchanged: true
    retention: { keep_last: 2 }
server: { listen: "127.0.0.1:0" }
`
	if err := os.WriteFile("snapdata.yaml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SNAPDATA_STATE_DIR", t.TempDir())
	must(t, "init")
	r := must(t, "run", "app-often")
	if !strings.Contains(r.stdout, "app-often: success") {
		t.Errorf("run: %s", r)
	}
	r = must(t, "run", "app-often", "--json")
	var out struct {
		Status, Reason string
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != "success" {
		t.Errorf("run --json: %v %s", err, r)
	}
	if n := len(listSnapshots(t)); n != 1 {
		t.Errorf("%d snapshots after two runs of unchanged data, want 1", n)
	}
	r = snap(t, "run", "nope")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "nope") {
		t.Errorf("unknown job: %s", r)
	}

	// serve runs the job on its schedule until the context ends.
	db := openDB(t, "app.sqlite")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var stderr bytes.Buffer
	go func() {
		done <- Run(ctx, []string{"serve", "--grace", "5s"}, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; len(listSnapshots(t)) < 2 && time.Now().Before(deadline); i++ {
		if _, err := db.Exec(`UPDATE Genre SET Name = Name || '!' WHERE GenreId = 1`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	}
	if n := len(listSnapshots(t)); n != 2 {
		t.Errorf("%d snapshots after serve with keep_last 2", n)
	}
	if !strings.Contains(stderr.String(), `"job":"app-often","source":"app"`) {
		t.Errorf("serve logs are not JSON with the job: %s", stderr.String())
	}
}
