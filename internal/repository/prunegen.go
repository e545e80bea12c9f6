package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/manifest"
)

// pruneMarker is rewritten with a new random value by every prune before it
// reads the manifests and deletes anything: a backup that read one value
// when it listed the stored chunks and finds another before it writes its
// manifest knows that chunks it deduplicated against may be gone.
var pruneMarker = backend.Handle{Type: backend.DataIndex, Name: "prune"}

// ErrPrunedDuringBackup is wrapped when a prune removed chunks that a backup
// references while that backup ran: its manifest is not written.
var ErrPrunedDuringBackup = errors.New("a prune removed data this backup uses while it ran")

// pruneWait bounds how long a backup that saw a prune waits for the prune's
// exclusive lock to go before it checks its chunks.
const pruneWait = time.Minute

// pruneGeneration returns the prune marker's value ("" when no prune ever
// ran).
func (r *Repository) pruneGeneration(ctx context.Context) (string, error) {
	b, err := r.be.Load(ctx, pruneMarker)
	if backend.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the prune marker: %w", err)
	}
	return string(b), nil
}

// bumpPruneGeneration gives the prune marker a new value.
func (r *Repository) bumpPruneGeneration(ctx context.Context) error {
	if err := r.be.Save(ctx, pruneMarker, []byte(hex.EncodeToString(crypto.RandomBytes(16)))); err != nil {
		return fmt.Errorf("write the prune marker: %w", err)
	}
	return nil
}

// checkNotPruned is the last step before a backup's manifest is written.
// When a prune ran since the session listed the stored chunks (gen), it
// waits for that prune's exclusive lock to go, lists the stored chunks
// again and fails with ErrPrunedDuringBackup if any chunk of streams is
// missing; the backup must then run again (its data was streamed, it cannot
// upload the chunks again).
func (r *Repository) checkNotPruned(ctx context.Context, gen string, streams []manifest.Stream) error {
	missing, total, err := r.chunksGoneSince(ctx, gen, streams, "")
	var held errPruneHeld
	switch {
	case errors.As(err, &held):
		return fmt.Errorf("%w: %s is still held; no snapshot was written: run the backup again", ErrPrunedDuringBackup, held.lock)
	case err != nil:
		return err
	case missing > 0:
		return fmt.Errorf("%w: %d of its %d chunks are gone; no snapshot was written: run the backup again", ErrPrunedDuringBackup, missing, total)
	}
	return nil
}

// errPruneHeld says that a prune's lock did not go within pruneWait.
type errPruneHeld struct{ lock *LockInfo }

func (e errPruneHeld) Error() string {
	return fmt.Sprintf("a prune ran meanwhile and %s is still held", e.lock)
}

// chunksGoneSince returns how many of the distinct chunks of streams are
// not stored (and how many there are) when a prune ran since the prune
// marker read gen; 0, 0 when none ran. It first waits up to pruneWait for
// every exclusive lock but own to go (errPruneHeld when one stays).
func (r *Repository) chunksGoneSince(ctx context.Context, gen string, streams []manifest.Stream, own string) (missing, total int, err error) {
	now, err := r.pruneGeneration(ctx)
	if err != nil {
		return 0, 0, err
	}
	if now == gen {
		return 0, 0, nil
	}
	r.log.Warn("a prune ran meanwhile; checking that every chunk referenced is still stored")
	deadline := time.Now().Add(pruneWait)
	for {
		l, err := r.conflictingLock(ctx, own, false)
		if err != nil {
			return 0, 0, err
		}
		if l == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, errPruneHeld{l}
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	stored := map[string]struct{}{}
	if err := r.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		stored[fi.Name] = struct{}{}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("list stored chunks: %w", err)
	}
	seen := map[string]bool{}
	for _, st := range streams {
		for _, c := range st.Chunks {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			if _, ok := stored[c.ID]; !ok {
				missing++
			}
		}
	}
	return missing, len(seen), nil
}
