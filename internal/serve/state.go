package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TaskState is what the daemon remembers about a task, in memory and in a
// small file next to its lock so that recovery is detected across restarts
// and across `snapdata run` processes.
type TaskState struct {
	Last        *Outcome  `json:"last,omitempty"`
	LastResult  string    `json:"last_result,omitempty"` // success or failure: skips do not count
	LastSuccess time.Time `json:"last_success,omitempty"`
	LastFailure time.Time `json:"last_failure,omitempty"`
}

// stateDir picks the directory for locks and state.
func stateDir(opts *Options) (string, error) {
	if opts.StateDir != "" {
		return opts.StateDir, os.MkdirAll(opts.StateDir, 0o755)
	}
	if d := opts.Getenv(EnvStateDir); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	abs, err := filepath.Abs(opts.ConfigPath)
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	next := filepath.Join(filepath.Dir(abs), ".snapdata-locks")
	if err := os.MkdirAll(next, 0o755); err == nil && writable(next) {
		return next, nil
	}
	// The config is on a read-only file system (a Kubernetes ConfigMap):
	// use a per-config directory elsewhere.
	sum := sha256.Sum256([]byte(abs))
	base := opts.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	d := filepath.Join(base, fmt.Sprintf("snapdata-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return d, nil
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return true
}

// fileName turns a task name into a safe file name.
func fileName(task string) string {
	var b strings.Builder
	for _, r := range task {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func lockPath(dir, task string) string  { return filepath.Join(dir, fileName(task)+".lock") }
func statePath(dir, task string) string { return filepath.Join(dir, fileName(task)+".state.json") }

func loadState(dir, task string) (*TaskState, error) {
	data, err := os.ReadFile(statePath(dir, task))
	if os.IsNotExist(err) {
		return &TaskState{}, nil
	}
	if err != nil {
		return &TaskState{}, fmt.Errorf("read state of %s: %w", task, err)
	}
	var st TaskState
	if err := json.Unmarshal(data, &st); err != nil {
		return &TaskState{}, fmt.Errorf("read state of %s: %w", task, err)
	}
	return &st, nil
}

func saveState(dir, task string, st *TaskState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	p := statePath(dir, task)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("save state of %s: %w", task, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("save state of %s: %w", task, err)
	}
	return nil
}
