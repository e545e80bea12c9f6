package clone

import (
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// wrapped is a reader wrapper like masking's: it sees every stream the
// target reads, and here hides one table's rows.
type wrapped struct {
	engine.SnapshotReader
	snap  *manifest.Snapshot
	opens *atomic.Int64
}

func (w *wrapped) Manifest() *manifest.Snapshot { return w.snap }

func (w *wrapped) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	w.opens.Add(1)
	return w.SnapshotReader.Open(ctx, s)
}

func TestWrapSeesEveryStreamOnTheWayToTheTarget(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "prod.db")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)",
		"INSERT INTO people VALUES (1, 'a@example.com'), (2, 'b@example.com')",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INT)",
		"INSERT INTO orders VALUES (1, 10)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	a := app.New(nil, nil, func(string) string { return "" })
	var opens atomic.Int64
	c := &Cloner{App: a, Wrap: func(r engine.SnapshotReader) engine.SnapshotReader {
		m := *r.Manifest()
		m.Streams = nil
		for _, s := range r.Manifest().Streams {
			if s.Kind == manifest.KindData && s.Table == "people" {
				continue
			}
			m.Streams = append(m.Streams, s)
		}
		return &wrapped{SnapshotReader: r, snap: &m, opens: &opens}
	}}
	spec := &Spec{Name: "t", Source: "sqlite:" + src, To: "sqlite:" + filepath.Join(dir, "dev.db"), Allow: []string{"sqlite:" + dir + "/dev.db"}, Swap: true}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := c.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Execute(ctx, spec, p)
	if err != nil {
		t.Fatal(err)
	}
	if opens.Load() == 0 {
		t.Fatal("the target read no stream through Wrap")
	}
	out, err := sql.Open("sqlite", filepath.Join(dir, "dev.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var people, orders int
	if err := out.QueryRow("SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM orders)").Scan(&people, &orders); err != nil {
		t.Fatal(err)
	}
	if people != 0 || orders != 1 {
		t.Errorf("people %d (want 0: Wrap hid them), orders %d (want 1)", people, orders)
	}
	rec, err := readRecord(filepath.Join(dir, "dev.db"))
	if err != nil || rec.Snapshot != res.Snapshot || rec.Role != "build" {
		t.Errorf("record %+v (%v), snapshot %s", rec, err, res.Snapshot)
	}
	// The temporary repository is gone.
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), tempRepoPrefix+"*"))
	for _, l := range left {
		if strings.Contains(l, tempRepoPrefix+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("temporary repository left: %s", l)
		}
	}
}

func TestRecordAndLeftoverRules(t *testing.T) {
	now := time.Now()
	r := newRecord("build", "c", "postgres://a@h:5432/t", now)
	got, ok := ParseRecord(r.String())
	if !ok || got.Token != r.Token || got.Target != r.Target {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	for _, bad := range []string{"", "hello", "snapdata clone {}", `snapdata clone {"role":"build","pid":1}`, "snapdata verify scratch " + r.String()[len(recordMagic):]} {
		if _, ok := ParseRecord(bad); ok {
			t.Errorf("%q parsed as a clone's record", bad)
		}
	}
	if why := r.over(now); why != "" {
		t.Errorf("this process's record is over: %s", why)
	}
	alive := r
	alive.PID = 1
	if why := alive.over(now); why != "" {
		t.Errorf("a live process's record is over: %s", why)
	}
	old := alive
	old.Started = now.Add(-25 * time.Hour)
	if why := old.over(now); why == "" {
		t.Error("a record older than a day is not over")
	}
	other := alive
	other.Host = "elsewhere"
	other.PID = 999999
	if why := other.over(now); why != "" {
		t.Errorf("another host's recent record is over: %s", why)
	}
}
