package backendtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/snapdata/snapdata/internal/backend"
)

// mem is an in-memory backend with optional, deliberate bugs, used to show
// that the suite passes a correct backend and catches broken ones.
type mem struct {
	mu   sync.Mutex
	objs map[backend.Handle][]byte
	bug  string
}

func (m *mem) Location() string { return "memory" }
func (m *mem) Close() error     { return nil }

func (m *mem) Create(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[backend.Handle{Type: backend.Config}]; ok && m.bug != "create-overwrites" {
		return fmt.Errorf("a repository already exists there")
	}
	return nil
}

func (m *mem) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil && m.bug != "ignore-cancel" {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[h]; ok && m.bug == "no-replace" {
		return nil
	}
	if m.bug == "truncate-large" && len(data) > 4<<20 {
		data = data[:4<<20]
	}
	m.objs[h] = append([]byte(nil), data...)
	return nil
}

func (m *mem) Load(ctx context.Context, h backend.Handle) ([]byte, error) {
	if err := ctx.Err(); err != nil && m.bug != "ignore-cancel" {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[h]
	if !ok {
		if m.bug == "plain-not-found" {
			return nil, fmt.Errorf("no such object %s", h)
		}
		return nil, backend.NotFound(h)
	}
	return append([]byte(nil), d...), nil
}

func (m *mem) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[h]
	if !ok {
		return backend.FileInfo{}, backend.NotFound(h)
	}
	name := h.Name
	if h.Type == backend.Config {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: int64(len(d))}, nil
}

func (m *mem) Remove(ctx context.Context, h backend.Handle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[h]; !ok && m.bug == "remove-missing-fails" {
		return backend.NotFound(h)
	}
	delete(m.objs, h)
	return nil
}

func (m *mem) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil && m.bug != "ignore-cancel" {
		return err
	}
	m.mu.Lock()
	var infos []backend.FileInfo
	for h, d := range m.objs {
		if h.Type == t {
			name := h.Name
			if t == backend.Config {
				name = "config"
			}
			infos = append(infos, backend.FileInfo{Name: name, Size: int64(len(d))})
		}
	}
	m.mu.Unlock()
	if m.bug == "first-page-only" && len(infos) > 1000 {
		infos = infos[:1000]
	}
	for _, fi := range infos {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func newMem(bug string) func(t *testing.T) backend.Backend {
	return func(t *testing.T) backend.Backend {
		return &mem{objs: map[backend.Handle][]byte{}, bug: bug}
	}
}

func TestCorrectBackendPasses(t *testing.T) {
	Run(t, newMem(""))
}

// TestBrokenBackend is run in a child process by TestSuiteCatchesBugs.
func TestBrokenBackend(t *testing.T) {
	bug := os.Getenv("BACKENDTEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	Run(t, newMem(bug))
}

func TestSuiteCatchesBugs(t *testing.T) {
	for bug, wantMsg := range map[string]string{
		"create-overwrites":    "Create succeeded where a repository config exists",
		"no-replace":           "Load(locks/",
		"truncate-large":       "differ from the 8388625 saved",
		"plain-not-found":      "want one wrapping ErrNotFound",
		"remove-missing-fails": "Remove of an already removed object",
		"first-page-only":      "List(data) returned 1000 objects, want 1100",
		"ignore-cancel":        "Save with a canceled context succeeded",
	} {
		t.Run(bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BACKENDTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend with bug %q:\n%s", bug, out)
			}
			if !strings.Contains(string(out), wantMsg) {
				t.Errorf("output for bug %q lacks %q:\n%s", bug, wantMsg, out)
			}
		})
	}
}
