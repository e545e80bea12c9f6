package inspect

import (
	"sort"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/manifest"
)

// Usage is what a set of snapshots costs.
type Usage struct {
	Snapshots int `json:"snapshots"`
	// LatestLogicalBytes is the plaintext size of the newest snapshot (of
	// a source; in a total, the sum over the sources' newest).
	LatestLogicalBytes int64 `json:"latest_logical_bytes"`
	// LogicalBytes is the plaintext size summed over every snapshot: what
	// the snapshots would take as separate plain dumps.
	LogicalBytes int64 `json:"logical_bytes"`
	// Chunks is the number of unique chunks the snapshots reference.
	Chunks int `json:"chunks"`
	// DeduplicatedBytes is the plaintext size of those unique chunks.
	DeduplicatedBytes int64 `json:"deduplicated_bytes"`
	// StoredBytes is the stored (compressed, encrypted) size of those
	// unique chunks: what the snapshots occupy in the repository.
	StoredBytes int64 `json:"stored_bytes"`
	// StoredUnknownChunks counts chunks whose stored size neither the
	// manifest nor the listing gives (missing objects); StoredBytes and
	// CompressionRatio leave them out.
	StoredUnknownChunks int `json:"stored_unknown_chunks"`
	// CompressionRatio is plaintext over stored bytes of the unique chunks
	// (of those whose stored size is known); 0 when nothing is stored.
	CompressionRatio float64 `json:"compression_ratio"`
	// DedupRatio is LogicalBytes over DeduplicatedBytes; 0 when nothing is
	// stored.
	DedupRatio float64 `json:"dedup_ratio"`
}

func (u *Usage) fill(set *chunkSet) {
	u.Chunks = len(set.seen)
	u.DeduplicatedBytes = set.plain
	u.StoredBytes = set.stored
	u.StoredUnknownChunks = set.unknown
	u.CompressionRatio = ratio(set.plainOK, set.stored)
	u.DedupRatio = ratio(u.LogicalBytes, u.DeduplicatedBytes)
}

// SourceUsage is the usage of one source's snapshots.
type SourceUsage struct {
	Source string `json:"source"`
	Engine string `json:"engine"`
	Latest string `json:"latest"` // the newest snapshot's id
	Usage
}

// RepositoryUsage is what the listing of the whole repository found.
type RepositoryUsage struct {
	Objects Objects `json:"total"`
	Data    Objects `json:"data"`
	// Snapshots counts every readable snapshot; Damaged the manifests that
	// cannot be read.
	Snapshots int `json:"snapshots"`
	Damaged   int `json:"damaged_snapshots"`
	// Unreferenced are data objects no snapshot references (left by an
	// interrupted backup, or by forget until prune removes them); nil when
	// a damaged manifest makes it unknowable.
	Unreferenced *Objects `json:"unreferenced,omitempty"`
}

// StatsReport is the result of Stats.
type StatsReport struct {
	Sources []SourceUsage `json:"sources"`
	// Total counts chunks shared between sources once.
	Total      Usage           `json:"total"`
	Repository RepositoryUsage `json:"repository"`
}

// Stats sums the usage of the chosen snapshots, grouped by source (groups:
// source name to its snapshots), with all the repository's readable
// snapshots (for the unreferenced objects), the number of damaged ones and
// one listing of the repository.
func Stats(groups map[string][]*manifest.Snapshot, all []*manifest.Snapshot, damaged int, l *Listing) *StatsReport {
	rep := &StatsReport{Sources: []SourceUsage{}}
	total := newChunkSet()
	names := make([]string, 0, len(groups))
	for name := range groups {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		snaps := groups[name]
		if len(snaps) == 0 {
			continue
		}
		set := newChunkSet()
		su := SourceUsage{Source: name}
		newest := snaps[0]
		for _, s := range snaps {
			if s.Time.After(newest.Time) || (s.Time.Equal(newest.Time) && s.ID > newest.ID) {
				newest = s
			}
			su.Snapshots++
			su.LogicalBytes += s.LogicalBytes
			set.addStreams(s.Streams, l)
			total.addStreams(s.Streams, l)
		}
		su.Engine, su.Latest, su.LatestLogicalBytes = newest.Engine, newest.ID, newest.LogicalBytes
		su.fill(set)
		rep.Sources = append(rep.Sources, su)
		rep.Total.Snapshots += su.Snapshots
		rep.Total.LogicalBytes += su.LogicalBytes
		rep.Total.LatestLogicalBytes += su.LatestLogicalBytes
	}
	rep.Total.fill(total)

	rep.Repository = RepositoryUsage{Objects: l.Total(), Data: l.Types[backend.Data], Snapshots: len(all), Damaged: damaged}
	if damaged == 0 {
		used := map[string]bool{}
		for _, s := range all {
			for _, st := range s.Streams {
				for _, c := range st.Chunks {
					used[c.ID] = true
				}
			}
		}
		var un Objects
		for name, size := range l.Data {
			if !used[name] {
				un.Count++
				un.Bytes += size
			}
		}
		rep.Repository.Unreferenced = &un
	}
	return rep
}
