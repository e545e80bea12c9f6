package serve

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// A job's copy_to copies its new snapshots to each named repository (a
// local one and one on the S3 server, each with its own password) after
// the backup; a copy that fails fails the run but leaves the backup.
func TestCopyToAfterBackup(t *testing.T) {
	srv := testsrv.S3(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	e := newEnv(t, "")
	e.writeConfig(t, `notify:
  - { on: [failure], webhook: "`+hook.URL+`/hook" }
repositories:
  main: { url: ./repo, password: "${`+pwVar+`}" }
  offsite: { url: ./offsite, password: "offsite password" }
  cloud: { url: "`+srv.URL(bucket, "copy")+`", password: "cloud password" }
  nowhere: { url: ./nowhere, password: "x" }
sources:
  app: { dsn: "sqlite:./app.db" }
jobs:
  - name: app
    source: app
    repository: main
    copy_to: [offsite, cloud]
  - name: app-broken
    source: app
    repository: main
    copy_to: nowhere
`)
	cfg, err := config.Load(e.cfg, lookup)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := app.New(cfg, nil, getenv)
	kdf := crypto.KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 1024, Threads: 1, Salt: crypto.RandomBytes(16)}
	for _, name := range []string{"offsite", "cloud"} {
		r, _, err := a.InitRepository(ctx, name, repository.InitOptions{KDF: &kdf})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	list := func(name string) []*manifest.Snapshot {
		t.Helper()
		r, err := a.OpenRepository(ctx, name)
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
	var ids []string
	for i := 0; i < 2; i++ {
		e.sqlite(t, "INSERT INTO users (name) VALUES ('run "+string(rune('a'+i))+"')")
		o, err := RunOnce(ctx, e.opts(t), "app")
		if err != nil || o.Status != StatusSuccess || len(o.Snapshots) != 1 || len(o.Copies) != 2 {
			t.Fatalf("run %d: %+v %v", i, o, err)
		}
		for _, c := range o.Copies {
			if c.Status != StatusSuccess || c.Snapshots != 1 {
				t.Errorf("run %d: copy to %s: %+v", i, c.Repository, c)
			}
		}
		ids = append(ids, o.Snapshots[0])
	}
	for _, name := range []string{"offsite", "cloud"} {
		got := list(name)
		if len(got) != 2 {
			t.Fatalf("%s holds %d snapshots, want 2", name, len(got))
		}
		for i, s := range got {
			if s.Meta[repository.MetaCopiedFrom] != ids[i] {
				t.Errorf("%s: snapshot %d copied from %q, want %s", name, i, s.Meta[repository.MetaCopiedFrom], ids[i])
			}
			if s.Tables[0] != list("main")[i].Tables[0] {
				t.Errorf("%s: snapshot %d tables differ from the source's", name, i)
			}
		}
	}

	// A copy_to target that is not a repository: the run fails and says
	// why; the backup it made stays.
	e.sqlite(t, "INSERT INTO users (name) VALUES ('broken run')")
	o, err := RunOnce(ctx, e.opts(t), "app-broken")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != StatusFailure || len(o.Snapshots) != 1 || len(o.Copies) != 1 || o.Copies[0].Status != StatusFailure ||
		!strings.Contains(o.Message, "copy to nowhere") || !strings.Contains(o.Message, "snapdata init") {
		t.Fatalf("run with a failing copy_to: %+v", o)
	}
	if got := list("main"); len(got) != 3 || got[2].ID != o.Snapshots[0] {
		t.Errorf("the failed copy undid the backup: main holds %d snapshots", len(got))
	}
	mu.Lock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], "copy to nowhere") || !strings.Contains(bodies[0], `"app-broken"`) {
		t.Errorf("failure notifications: %q", bodies)
	}
	mu.Unlock()
	// The next run of the good job catches up: it copies the snapshot of
	// the broken run too.
	o, err = RunOnce(ctx, e.opts(t), "app")
	if err != nil || o.Status != StatusSuccess || o.Copies[0].Snapshots != 2 {
		t.Fatalf("catch-up run: %+v %v", o, err)
	}
	if got := list("offsite"); len(got) != 4 {
		t.Errorf("offsite holds %d snapshots after the catch-up, want 4", len(got))
	}
}

// copy_to must name another repository of the config.
func TestCopyToConfigErrors(t *testing.T) {
	for _, tc := range []struct{ copyTo, want string }{
		{"elsewhere", `copy_to names "elsewhere", which is not a repository of the config`},
		{"main", `copy_to names "main", the repository the job backs up to`},
	} {
		e := newEnv(t, "")
		e.writeConfig(t, baseConfig+"jobs:\n  - name: app\n    source: app\n    copy_to: ["+tc.copyTo+"]\n")
		_, err := config.Load(e.cfg, lookup)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "copy_to") {
			t.Errorf("copy_to %s: %v", tc.copyTo, err)
		}
	}
}
