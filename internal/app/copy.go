package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

// EnvFromPassword is the source repository's password for copy.
const EnvFromPassword = "SNAPDATA_FROM_PASSWORD"

// CopyOptions tune one copy between repositories.
type CopyOptions struct {
	IDs      []string // source snapshot ids or prefixes; none = all
	Sources  []string // only the snapshots of these sources
	DryRun   bool
	Progress *progress.Progress
}

// OpenCopySource opens the repository a copy reads: name is a config
// repository name, a path or a URL. Its password is the config entry's,
// else $SNAPDATA_FROM_PASSWORD, else the file passwordFile names (never
// the destination's password).
func (a *App) OpenCopySource(ctx context.Context, name, passwordFile string) (*repository.Repository, string, error) {
	if name == "" {
		return nil, "", Usagef("copy: no source repository: use --from-repo")
	}
	loc, entry, err := a.RepoLocation(name)
	if err != nil {
		return nil, "", err
	}
	var pw []byte
	switch {
	case entry != nil && entry.Password != "":
		pw = []byte(entry.Password)
	case entry != nil && entry.PasswordFile != "":
		pw, err = readPasswordFile(a.Config.ResolvePath(entry.PasswordFile))
	case a.Getenv(EnvFromPassword) != "":
		pw = []byte(a.Getenv(EnvFromPassword))
	case passwordFile != "":
		pw, err = readPasswordFile(passwordFile)
	}
	if err != nil {
		return nil, "", fmt.Errorf("source repository: %w", err)
	}
	be, err := openBackend(ctx, loc, a.Logger)
	if err != nil {
		return nil, "", err
	}
	r, err := repository.Open(ctx, be, pw, a.Logger)
	if err != nil {
		be.Close()
		if errors.Is(err, repository.ErrNeedPassword) {
			return nil, "", Usagef("source repository %s is encrypted: give its password with --from-password-file or %s (the destination's password is not used for it)", be.Location(), EnvFromPassword)
		}
		return nil, "", fmt.Errorf("source repository %s: %w", be.Location(), err)
	}
	return r, be.Location(), nil
}

// OpenCopyDestination opens the repository a copy writes (the usual
// --repo and password). A location without a repository is refused with
// the way to make one.
func (a *App) OpenCopyDestination(ctx context.Context, name, from string) (*repository.Repository, error) {
	r, err := a.OpenRepository(ctx, name)
	if errors.Is(err, repository.ErrNoRepository) {
		return nil, &UsageError{Err: fmt.Errorf("destination: %w; copy does not create one: run 'snapdata init --repo %s --copy-params-from %s' first (the same chunker and hash key: copied chunks keep their ids and deduplicate with the destination's own backups)",
			err, displayName(name), displayName(from))}
	}
	if err != nil {
		return nil, fmt.Errorf("destination repository: %w", err)
	}
	return r, nil
}

func displayName(s string) string {
	if s == "" {
		return "DST"
	}
	return s
}

// Copy copies snapshots from src to dst (repository.Copy) under a shared
// lock on each: the destination's is the lock a backup takes, so a prune
// of the destination waits for the copy, and the source's keeps a prune of
// the source from deleting what is being read.
func (a *App) Copy(ctx context.Context, src, dst *repository.Repository, opts CopyOptions) (*repository.CopyResult, error) {
	start := time.Now()
	if !opts.DryRun {
		if err := a.RefuseNoLock("copy"); err != nil {
			return nil, err
		}
	}
	unlockSrc, err := a.ReadLock(ctx, src, "copy to another repository")
	if err != nil {
		return nil, fmt.Errorf("source repository: %w", err)
	}
	defer unlockSrc()
	if opts.DryRun {
		unlockDst, err := a.ReadLock(ctx, dst, "copy --dry-run")
		if err != nil {
			return nil, fmt.Errorf("destination repository: %w", err)
		}
		defer unlockDst()
	} else {
		lock, err := dst.Lock(ctx, false, "copy from another repository", LockWait)
		if err != nil {
			return nil, fmt.Errorf("destination repository: %w", err)
		}
		defer lock.Unlock() //nolint:errcheck // best effort; a stale lock is detected later
	}
	res, err := repository.Copy(ctx, src, dst, repository.CopyOptions{IDs: opts.IDs, Sources: opts.Sources, DryRun: opts.DryRun, Progress: opts.Progress})
	if res != nil {
		res.Seconds = time.Since(start).Seconds()
	}
	if err != nil {
		if errors.Is(err, repository.ErrCopySameRepository) || errors.Is(err, repository.ErrSnapshotNotFound) {
			return res, &UsageError{Err: err}
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("copy interrupted; the snapshots copied so far are complete, the next copy continues without storing their chunks again: %w", context.Cause(ctx))
		}
		return res, err
	}
	for _, c := range res.Copied {
		if c.To != "" {
			a.Logger.Info("snapshot copied", "from", c.From, "to", c.To, "source", c.Source, "chunks", c.Chunks)
		}
	}
	return res, nil
}

// CopyTo copies the snapshots of the sources named to the repository
// named to (a config repository name, path or URL), opening it with its
// own password: what a job's copy_to runs after a backup.
func (a *App) CopyTo(ctx context.Context, src *repository.Repository, to string, sources []string) (*repository.CopyResult, error) {
	dst, err := a.OpenCopyDestination(ctx, to, src.Backend().Location())
	if err != nil {
		return nil, fmt.Errorf("copy to %s: %w", to, err)
	}
	defer dst.Close()
	res, err := a.Copy(ctx, src, dst, CopyOptions{Sources: sources})
	if err != nil {
		return res, fmt.Errorf("copy to %s: %w", to, err)
	}
	return res, nil
}
