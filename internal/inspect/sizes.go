// Package inspect reads what a repository holds without reading its data:
// per-source usage (stats), the difference between two snapshots (diff) and
// one snapshot's tables and streams (ls). Everything comes from the
// manifests and, where stored sizes are needed and a manifest lacks them,
// from one listing of the repository's objects; no chunk is ever read.
package inspect

import (
	"context"
	"fmt"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/manifest"
)

// Listing is one listing of the repository's objects.
type Listing struct {
	// Data maps each stored chunk object's name (its id) to its size.
	Data map[string]int64
	// Types counts the objects of each kind and their bytes.
	Types map[backend.FileType]Objects
}

// Objects is a count of stored objects and their bytes.
type Objects struct {
	Count int   `json:"objects"`
	Bytes int64 `json:"bytes"`
}

// Total is the count and bytes of every object listed.
func (l *Listing) Total() Objects {
	var o Objects
	for _, t := range l.Types {
		o.Count += t.Count
		o.Bytes += t.Bytes
	}
	return o
}

// List lists every object of the repository once (each kind is one
// listing of its folder or key prefix), locks aside: they come and go (the
// command's own read lock is one).
func List(ctx context.Context, be backend.Backend) (*Listing, error) {
	l := &Listing{Data: map[string]int64{}, Types: map[backend.FileType]Objects{}}
	for _, t := range backend.AllTypes {
		if t == backend.Lock {
			continue
		}
		var o Objects
		err := be.List(ctx, t, func(fi backend.FileInfo) error {
			o.Count++
			o.Bytes += fi.Size
			if t == backend.Data {
				l.Data[fi.Name] = fi.Size
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list the repository's %s objects: %w", t, err)
		}
		l.Types[t] = o
	}
	return l, nil
}

// storedSize is a chunk's stored size: the one its manifest recorded, else
// (snapshots made before sizes were recorded) its object's size in the
// listing. ok is false when neither knows it (no listing, or the object is
// missing: 'snapdata check' reports that).
func storedSize(c manifest.Chunk, l *Listing) (n int64, ok bool) {
	if c.Stored > 0 {
		return c.Stored, true
	}
	if l != nil {
		n, ok = l.Data[c.ID]
	}
	return n, ok
}

// needsListing reports whether any chunk of the snapshots lacks a recorded
// stored size.
func needsListing(snaps ...*manifest.Snapshot) bool {
	for _, s := range snaps {
		for _, st := range s.Streams {
			for _, c := range st.Chunks {
				if c.Stored <= 0 {
					return true
				}
			}
		}
	}
	return false
}

// chunkSet is a set of unique chunks with their plaintext and stored bytes.
type chunkSet struct {
	seen    map[string]bool
	plain   int64
	stored  int64
	unknown int // chunks whose stored size is unknown
	plainOK int64
}

func newChunkSet() *chunkSet { return &chunkSet{seen: map[string]bool{}} }

// add counts c once.
func (s *chunkSet) add(c manifest.Chunk, l *Listing) {
	if s.seen[c.ID] {
		return
	}
	s.seen[c.ID] = true
	s.plain += int64(c.Len)
	if n, ok := storedSize(c, l); ok {
		s.stored += n
		s.plainOK += int64(c.Len)
	} else {
		s.unknown++
	}
}

func (s *chunkSet) addStreams(streams []manifest.Stream, l *Listing) {
	for _, st := range streams {
		for _, c := range st.Chunks {
			s.add(c, l)
		}
	}
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}
