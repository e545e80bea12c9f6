package app

import (
	"context"
	"errors"
	"syscall"

	"github.com/snapdata/snapdata/internal/repository"
)

// lockWriteRefused reports whether a failed lock write says the storage
// takes no writes at all: a read-only or full filesystem, or no write
// permission.
func lockWriteRefused(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// ReadLock takes the shared lock of an operation that only reads the
// repository (restore, verify, check) and returns its release. With
// App.NoLock it takes none; when the lock cannot be written because the
// storage refuses writes (read-only, full, no permission) it reads without
// one, with a warning: a concurrent prune could then remove data it reads,
// which the reads detect (a missing or damaged chunk is an error, never
// silently restored).
func (a *App) ReadLock(ctx context.Context, repo *repository.Repository, purpose string) (func(), error) {
	if a.NoLock {
		return func() {}, nil
	}
	lock, err := repo.Lock(ctx, false, purpose, LockWait)
	if err != nil {
		if lockWriteRefused(err) {
			a.Logger.Warn("cannot write a repository lock, reading without one (use --no-lock to skip it); a prune running meanwhile could remove data this reads, which would fail it", "purpose", purpose, "err", err)
			return func() {}, nil
		}
		return nil, err
	}
	return func() { _ = lock.Unlock() }, nil
}

// RefuseNoLock fails an operation that writes when --no-lock was given.
func (a *App) RefuseNoLock(op string) error {
	if a.NoLock {
		return Usagef("--no-lock is for commands that only read (restore, verify, check, snapshots, export, stats, diff, ls): %s writes to the repository and needs its lock", op)
	}
	return nil
}
