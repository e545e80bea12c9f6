package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// plainSnapshot hides its streams' WriteTo, like a reader that has none.
type plainSnapshot struct{ engine.SnapshotReader }

func (p plainSnapshot) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	rc, err := p.SnapshotReader.Open(ctx, s)
	return struct{ io.ReadCloser }{rc}, err
}

// The export's progress counts every byte an engine reads from the
// snapshot exactly once, whether it reads with Read or lets io.Copy use
// the stream's WriteTo, and what it reads is unchanged.
func TestCountingSnapshot(t *testing.T) {
	ctx := context.Background()
	mem := enginetest.NewMemory()
	want := map[string]string{"a": strings.Repeat("row\n", 5000), "b": "x", "c": ""}
	for name, body := range want {
		w, err := mem.Create(ctx, manifest.Stream{Name: name, Kind: manifest.KindData, Format: "text"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mem.Finish(nil, "test")
	var total int64
	for _, body := range want {
		total += int64(len(body))
	}
	for _, tc := range []struct {
		name string
		snap engine.SnapshotReader
		read func(io.Reader) ([]byte, error)
	}{
		{"Read", mem, io.ReadAll},
		{"WriteTo", mem, func(r io.Reader) ([]byte, error) {
			var b bytes.Buffer
			_, err := io.Copy(&b, r)
			return b.Bytes(), err
		}},
		{"WriteTo without the stream's", plainSnapshot{mem}, func(r io.Reader) ([]byte, error) {
			var b bytes.Buffer
			_, err := r.(io.WriterTo).WriteTo(&b)
			return b.Bytes(), err
		}},
	} {
		p := progress.New("export", io.Discard)
		c := countingSnapshot{SnapshotReader: tc.snap, p: p}
		for name, body := range want {
			rc, err := c.Open(ctx, manifest.Stream{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.read(rc)
			rc.Close()
			if err != nil || string(got) != body {
				t.Fatalf("%s: stream %s read back %d bytes (%v), want %d", tc.name, name, len(got), err, len(body))
			}
		}
		if p.Bytes() != total {
			t.Errorf("%s: counted %d bytes, read %d", tc.name, p.Bytes(), total)
		}
	}
}
