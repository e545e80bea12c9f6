package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/crypto"
)

// Lock timings: a lock is refreshed every LockRefresh while its holder
// lives and is stale once it has not been refreshed for LockStale. Age is
// the only test of staleness: a process id says nothing across PID
// namespaces (containers with host networking, host-network pods,
// unshare --pid), where one host name covers processes that cannot see
// each other.
const (
	LockRefresh = time.Minute
	LockStale   = 10 * time.Minute
)

// ErrLocked is wrapped when a conflicting lock is held.
var ErrLocked = errors.New("repository is locked")

// LockInfo is the content of a lock object. The lock's identity is its
// object name (Name), 32 random bytes chosen by its holder; Time is the
// holder's last refresh.
type LockInfo struct {
	Time      time.Time `json:"time"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Exclusive bool      `json:"exclusive"`
	Purpose   string    `json:"purpose,omitempty"`
	Name      string    `json:"-"`
}

func (l LockInfo) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	s := fmt.Sprintf("%s lock held by pid %d on %s, refreshed %s", kind, l.PID, l.Host, l.Time.Format(time.RFC3339))
	if l.Purpose != "" {
		s += " (" + l.Purpose + ")"
	}
	return s
}

// Stale reports whether the lock's holder is gone: it has not refreshed the
// lock for LockStale.
func (l LockInfo) Stale(now time.Time) bool {
	return now.Sub(l.Time) > LockStale
}

// PIDMissing reports whether the lock names this host and a process id that
// does not exist in this process's PID namespace. That alone does not make
// the lock stale (its holder may run in another namespace); unlock reports
// such locks.
func (l LockInfo) PIDMissing() bool {
	host, _ := os.Hostname()
	if host != l.Host {
		return false
	}
	if l.PID <= 0 {
		return true
	}
	return errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH)
}

// Lock is a held lock; Unlock releases it.
type Lock struct {
	r    *Repository
	name string
	info LockInfo
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Lock takes a shared (backups, restores, check) or exclusive (forget,
// prune) lock. It waits up to wait for conflicting locks to go away.
func (r *Repository) Lock(ctx context.Context, exclusive bool, purpose string, wait time.Duration) (*Lock, error) {
	host, _ := os.Hostname()
	info := LockInfo{Time: time.Now().UTC(), Host: host, PID: os.Getpid(), Exclusive: exclusive, Purpose: purpose}
	deadline := time.Now().Add(wait)
	delay := 100 * time.Millisecond
	for {
		name, err := r.writeLock(ctx, info, "")
		if err != nil {
			return nil, err
		}
		conflict, err := r.conflictingLock(ctx, name, exclusive)
		if err != nil {
			_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.Lock, Name: name})
			return nil, err
		}
		if conflict == nil {
			l := &Lock{r: r, name: name, info: info, stop: make(chan struct{})}
			l.wg.Add(1)
			go l.refresh()
			return l, nil
		}
		_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.Lock, Name: name})
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s; if that process is gone, run 'snapdata unlock'", ErrLocked, conflict)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

func (r *Repository) writeLock(ctx context.Context, info LockInfo, name string) (string, error) {
	if name == "" {
		name = fmt.Sprintf("%x", crypto.RandomBytes(32))
	}
	data, err := jsonMarshal(info)
	if err != nil {
		return "", err
	}
	if err := r.be.Save(ctx, backend.Handle{Type: backend.Lock, Name: name}, r.encode(data)); err != nil {
		return "", fmt.Errorf("write lock: %w", err)
	}
	return name, nil
}

// Locks lists every lock in the repository.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	var names []string
	if err := r.be.List(ctx, backend.Lock, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	var out []LockInfo
	for _, n := range names {
		var li LockInfo
		err := r.loadJSON(ctx, backend.Handle{Type: backend.Lock, Name: n}, &li)
		if backend.IsNotFound(err) {
			continue
		}
		if err != nil {
			// An unreadable lock counts as a held exclusive lock of unknown
			// origin: the safe reading.
			li = LockInfo{Time: time.Now(), Exclusive: true, Purpose: "unreadable lock object " + n}
		}
		li.Name = n
		out = append(out, li)
	}
	return out, nil
}

func (r *Repository) conflictingLock(ctx context.Context, own string, exclusive bool) (*LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, l := range locks {
		if l.Name == own || l.Stale(now) {
			continue
		}
		if exclusive || l.Exclusive {
			return &l, nil
		}
	}
	return nil, nil
}

func (l *Lock) refresh() {
	defer l.wg.Done()
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), LockRefresh)
			if _, err := l.r.be.Stat(ctx, backend.Handle{Type: backend.Lock, Name: l.name}); backend.IsNotFound(err) {
				l.r.log.Warn("this process's repository lock was removed by another process ('snapdata unlock --remove-all'?); writing it again", "lock", l.name[:8])
			}
			l.info.Time = time.Now().UTC()
			if _, err := l.r.writeLock(ctx, l.info, l.name); err != nil {
				l.r.log.Warn("refresh repository lock", "err", err)
			}
			cancel()
		}
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = l.r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: l.name})
	})
	return err
}

// RemoveLocks removes stale locks and locks that name this host and a
// process id that does not run here (LockInfo.PIDMissing: their holder is
// gone, or runs in another PID namespace, which only the operator who runs
// unlock can know; a backup whose lock was removed and that meets a prune
// fails before it writes its manifest). With all it removes every lock.
// It returns the removed locks.
func (r *Repository) RemoveLocks(ctx context.Context, all bool) ([]LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	var removed []LockInfo
	now := timeNow()
	for _, l := range locks {
		if !all && !l.Stale(now) && !l.PIDMissing() {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: l.Name}); err != nil {
			return removed, fmt.Errorf("remove lock %s: %w", l.Name, err)
		}
		removed = append(removed, l)
	}
	return removed, nil
}

// timeNow is time.Now; a function value so that tests read the same clock.
func timeNow() time.Time { return time.Now() }
