// Package enginetest holds an in-memory Sink and SnapshotReader so engine
// packages can test backup and restore without a repository. End-to-end
// tests through the real repository live in internal/cli.
package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// Memory is a Sink that keeps every committed stream in memory, and a
// SnapshotReader over them once Snapshot is called.
type Memory struct {
	mu      sync.Mutex
	streams []manifest.Stream
	data    map[string][]byte
	snap    *manifest.Snapshot
}

// NewMemory returns an empty in-memory sink.
func NewMemory() *Memory { return &Memory{data: map[string][]byte{}} }

type memWriter struct {
	m   *Memory
	s   manifest.Stream
	buf bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *memWriter) Close() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if _, dup := w.m.data[w.s.Name]; dup {
		return fmt.Errorf("stream %q written twice", w.s.Name)
	}
	w.s.Size = int64(w.buf.Len())
	w.m.streams = append(w.m.streams, w.s)
	w.m.data[w.s.Name] = w.buf.Bytes()
	return nil
}

// Create starts a stream.
func (m *Memory) Create(ctx context.Context, s manifest.Stream) (engine.StreamWriter, error) {
	if s.Name == "" || s.Kind == "" || s.Format == "" {
		return nil, fmt.Errorf("stream needs name, kind and format: %+v", s)
	}
	return &memWriter{m: m, s: s}, nil
}

// Finish builds the snapshot manifest from the committed streams and the
// engine's result, so the Memory can be used as a SnapshotReader.
func (m *Memory) Finish(res *engine.BackupResult, eng string) *manifest.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &manifest.Snapshot{Engine: eng, Streams: append([]manifest.Stream(nil), m.streams...)}
	if res != nil {
		s.EngineVersion, s.Database, s.Tables, s.Meta, s.Fingerprint = res.EngineVersion, res.Database, res.Tables, res.Meta, res.Fingerprint
	}
	s.Normalize()
	m.snap = s
	return s
}

// Bytes returns a committed stream's bytes.
func (m *Memory) Bytes(name string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[name]
}

// Manifest returns the snapshot built by Finish.
func (m *Memory) Manifest() *manifest.Snapshot { return m.snap }

// Open returns a committed stream.
func (m *Memory) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[s.Name]
	if !ok {
		return nil, fmt.Errorf("stream %q not found", s.Name)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

var (
	_ engine.Sink           = (*Memory)(nil)
	_ engine.SnapshotReader = (*Memory)(nil)
)
