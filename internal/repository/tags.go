package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/snapdata/snapdata/internal/manifest"
)

// Tags live in the manifest, whose id is the SHA-256 of its content and
// which is the commit point of a backup. Changing a snapshot's tags
// therefore writes a new manifest (a new id, the same data, Original and
// Replaces naming the ids it had) and its record, and only then removes the
// old manifest (record first, as forget does). At every moment one of the
// two manifests exists, so the data is never unreferenced:
//
//   - a prune that reads the old manifest keeps the chunks;
//   - a prune that listed the manifests before the new one was written and
//     finds the old one gone reads the manifests again (Prune, lateManifests)
//     and meets the new one;
//   - a prune whose lock was wrongly removed and that ran between the load
//     and the write changes the prune marker: Retag then waits for it and
//     checks that every chunk is still stored before it removes the old
//     manifest.
//
// A crash between the write and the removal leaves two snapshots with the
// same data, one with the old tags: harmless. 'snapdata check' explains it
// and the next 'snapdata tag' finishes the change (InterruptedRetags).

// ErrBadTag is wrapped when a tag cannot be stored or filtered on.
var ErrBadTag = errors.New("invalid tag")

// ValidateTag checks that t can be a tag: not empty, no comma (a filter
// --tag a,b means a and b), no white space or control characters.
func ValidateTag(t string) error {
	if t == "" {
		return fmt.Errorf("%w: an empty tag", ErrBadTag)
	}
	if strings.Contains(t, ",") {
		return fmt.Errorf("%w %q: a tag cannot contain a comma (--tag a,b filters on both a and b)", ErrBadTag, t)
	}
	for _, c := range t {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("%w %q: a tag cannot contain white space or control characters", ErrBadTag, t)
		}
	}
	return nil
}

// TagChange is what 'snapdata tag' does to a snapshot's tags: with Set
// (SetGiven) the tags become Set (empty: none); otherwise Remove is taken
// away, then Add added.
type TagChange struct {
	Add, Remove, Set []string
	SetGiven         bool
}

// Validate checks every tag of the change and that Set is not combined
// with Add or Remove.
func (c TagChange) Validate() error {
	if c.SetGiven && (len(c.Add) > 0 || len(c.Remove) > 0) {
		return fmt.Errorf("%w: --set replaces all tags and cannot be combined with --add or --remove", ErrBadTag)
	}
	if !c.SetGiven && len(c.Add) == 0 && len(c.Remove) == 0 {
		return fmt.Errorf("%w: nothing to change: give --add, --remove or --set", ErrBadTag)
	}
	for _, l := range [][]string{c.Add, c.Remove, c.Set} {
		for _, t := range l {
			if err := ValidateTag(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// Apply returns the tags after the change: in their old order, with added
// tags after them, each once.
func (c TagChange) Apply(tags []string) []string {
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if c.SetGiven {
		for _, t := range c.Set {
			add(t)
		}
	} else {
		for _, t := range tags {
			if !slices.Contains(c.Remove, t) {
				add(t)
			}
		}
		for _, t := range c.Add {
			add(t)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// SameTags reports whether a and b hold the same tags, in any order.
func SameTags(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// Retag stores snapshot id with tags under a new id and removes the old
// manifest (see the comment at the top of this file). It returns the new
// manifest. The caller holds the exclusive lock.
func (r *Repository) Retag(ctx context.Context, lock *Lock, id string, tags []string) (*manifest.Snapshot, error) {
	if err := r.needExclusive(lock); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
	}
	// The marker before the manifest is read: a prune that starts after
	// this point and before the old manifest is removed changes it.
	gen, err := r.pruneGeneration(ctx)
	if err != nil {
		return nil, fmt.Errorf("tag snapshot %s: %w", shortID(id), err)
	}
	old, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	next := *old
	next.Tags = slices.Clone(tags)
	next.Tables = slices.Clone(old.Tables)
	next.Streams = slices.Clone(old.Streams)
	if next.Original == "" {
		next.Original = old.ID
	}
	next.Replaces = old.ID
	newID, err := r.SaveManifest(ctx, &next)
	if err != nil {
		return nil, fmt.Errorf("tag snapshot %s: %w", old.ShortID(), err)
	}
	missing, total, err := r.chunksGoneSince(ctx, gen, next.Streams, lock.name)
	if err == nil && missing > 0 {
		err = fmt.Errorf("a prune ran meanwhile and %d of the snapshot's %d chunks are not stored: the snapshot was damaged before this tag ('snapdata check' names what is missing)", missing, total)
	}
	if err != nil {
		// Leave the repository as it was: the old manifest is untouched.
		if rerr := r.RemoveSnapshot(context.WithoutCancel(ctx), newID); rerr != nil {
			err = fmt.Errorf("%w (removing the new manifest %s failed too: %w)", err, shortID(newID), rerr)
		}
		return nil, fmt.Errorf("tag snapshot %s: %w", old.ShortID(), err)
	}
	if err := r.RemoveSnapshot(ctx, old.ID); err != nil {
		return &next, fmt.Errorf("snapshot %s was stored with its new tags as %s, but removing the old manifest failed: %w; both hold the same data: the next 'snapdata tag' removes the old one, or 'snapdata forget %s'",
			old.ShortID(), next.ShortID(), err, old.ShortID())
	}
	return &next, nil
}

// InterruptedRetag is a tag change a crash interrupted: New replaces Old,
// which still exists; both hold the same data.
type InterruptedRetag struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// String describes the pair for a message.
func (p InterruptedRetag) String() string {
	return fmt.Sprintf("snapshot %s replaces %s (same data, other tags): a 'snapdata tag' run was interrupted before it removed %s", shortID(p.New), shortID(p.Old), shortID(p.Old))
}

// InterruptedRetags finds, among snaps, the snapshots a tag run rewrote
// whose old manifest is still there (same source, time and data).
func InterruptedRetags(snaps []*manifest.Snapshot) []InterruptedRetag {
	byID := make(map[string]*manifest.Snapshot, len(snaps))
	for _, s := range snaps {
		byID[s.ID] = s
	}
	var out []InterruptedRetag
	for _, s := range snaps {
		if s.Replaces == "" || s.Replaces == s.ID {
			continue
		}
		old, ok := byID[s.Replaces]
		if !ok || old.Source != s.Source || !old.Time.Equal(s.Time) || !manifest.SameData(old, s) {
			continue
		}
		out = append(out, InterruptedRetag{Old: old.ID, New: s.ID})
	}
	return out
}

// FinishRetag removes the old manifest of an interrupted tag change after
// reading both manifests again and checking that they still hold the same
// data. The caller holds the exclusive lock.
func (r *Repository) FinishRetag(ctx context.Context, lock *Lock, p InterruptedRetag) error {
	if err := r.needExclusive(lock); err != nil {
		return err
	}
	old, err := r.LoadSnapshot(ctx, p.Old)
	if err != nil {
		return fmt.Errorf("finish an interrupted tag: %w", err)
	}
	next, err := r.LoadSnapshot(ctx, p.New)
	if err != nil {
		return fmt.Errorf("finish an interrupted tag: %w", err)
	}
	if len(InterruptedRetags([]*manifest.Snapshot{old, next})) != 1 {
		return fmt.Errorf("finish an interrupted tag: snapshot %s does not replace %s", shortID(p.New), shortID(p.Old))
	}
	return r.RemoveSnapshot(ctx, p.Old)
}
