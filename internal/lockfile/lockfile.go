// Package lockfile takes exclusive, non-blocking advisory locks (flock) on
// files and records who holds them (pid, host, since), so that a second
// process can say which process is in its way. The kernel drops the lock
// when the holder exits, so a crashed holder never leaves a stale lock.
package lockfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Holder describes the process that holds a lock.
type Holder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
	What  string    `json:"what,omitempty"` // e.g. "serve" or "job orders"
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on host %s since %s", h.PID, h.Host, h.Since.Format(time.RFC3339))
	if h.What != "" {
		s += " (" + h.What + ")"
	}
	return s
}

// LockedError says the lock is held by another process (or another open
// handle of this process).
type LockedError struct {
	Path   string
	Holder *Holder // nil when the holder's record could not be read
}

func (e *LockedError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("lock %s is held by another process", e.Path)
	}
	return fmt.Sprintf("lock %s is held by %s", e.Path, e.Holder)
}

// ErrLocked is matched by errors.Is for every *LockedError.
var ErrLocked = errors.New("locked")

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held lock. Unlock releases it.
type Lock struct {
	f    *os.File
	path string
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// TryLock takes the lock at path without waiting, creating the file (and its
// directory) if needed, and records this process in it. It returns a
// *LockedError when another holder has it.
func TryLock(path, what string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			le := &LockedError{Path: path}
			if h, rerr := Read(path); rerr == nil {
				le.Holder = h
			}
			return nil, le
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	h := Holder{PID: os.Getpid(), Host: host, Since: time.Now().UTC().Truncate(time.Second), What: what}
	data, _ := json.Marshal(h)
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(data, '\n'), 0)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write lock file %s: %w", path, err)
		}
	}
	return &Lock{f: f, path: path}, nil
}

// Read returns the holder recorded in a lock file. The record may be stale
// if nobody holds the lock any more.
func Read(path string) (*Holder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lock file: %w", err)
	}
	var h Holder
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(data))), &h); err != nil {
		return nil, fmt.Errorf("read lock file %s: %w", path, err)
	}
	return &h, nil
}

// Unlock releases the lock. The file stays, so that the lock's inode is
// stable for everybody who opens it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	if cerr != nil {
		return fmt.Errorf("close lock %s: %w", l.path, cerr)
	}
	return nil
}
