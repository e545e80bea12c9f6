package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// Copying snapshots between repositories (Copy).
//
// A copied snapshot's manifest records where it came from in its Meta:
// MetaCopiedFrom (the source snapshot id), MetaCopiedFromRepo (the source
// repository id) and MetaCopyOrigin (the id of the snapshot as first
// written, kept along a chain of copies A → B → C). A source snapshot is
// skipped when the destination holds a snapshot with its id or with its
// origin, so a copy with nothing new reads manifests only.
//
// Chunks: when both repositories have the same hash key (the destination
// was made with 'init --copy-params-from'), a chunk keeps its id: a chunk
// the destination holds is not read at all, and one it lacks is opened with
// the source's key and sealed with the destination's, its compressed form
// unchanged. Otherwise each chunk the destination may lack is read and
// decompressed, hashed with the destination's key, compressed and sealed
// for it, and the copied manifest names the new ids; the chunk boundaries
// stay the source's, so copied snapshots deduplicate among themselves but
// not with the destination's own backups (whose chunker differs). The ids
// of chunks copied by earlier runs are found by matching the streams of
// earlier copies with their source snapshots, without reading chunks.
//
// The manifest is written last, after every chunk of the snapshot is
// stored and the prune marker was checked (as a backup does): a copy
// killed part-way leaves chunks that no manifest references (check calls
// the repository healthy; prune removes them), and the next copy finds
// them in the one listing of stored chunks and does not upload them again.
const (
	MetaCopiedFrom     = "copied_from"
	MetaCopiedFromRepo = "copied_from_repository"
	MetaCopyOrigin     = "copy_origin"
)

// CopyOptions choose what Copy copies.
type CopyOptions struct {
	// IDs are source snapshot ids or unique prefixes, or "latest" (the
	// newest snapshot of each source); none means every snapshot (of
	// Sources, when set).
	IDs     []string
	Sources []string
	DryRun  bool
	// Progress counts the source's stored bytes read, and snapshots.
	Progress *progress.Progress

	// afterChunks, in tests, runs after a snapshot's chunks are stored
	// and before the prune marker is checked.
	afterChunks func()
}

// CopiedSnapshot is one snapshot Copy copied (or, in a dry run, would).
type CopiedSnapshot struct {
	From   string `json:"from"`         // source snapshot id
	To     string `json:"to,omitempty"` // destination snapshot id; "" in a dry run
	Source string `json:"source"`
	Time   string `json:"time"`
	Chunks int    `json:"chunks"` // chunks the destination lacked (at most, in a dry run with different keys)
	Bytes  int64  `json:"bytes"`  // their stored size in the source
}

// CopyResult is what Copy did.
type CopyResult struct {
	DryRun  bool             `json:"dry_run,omitempty"`
	Copied  []CopiedSnapshot `json:"copied"`
	Present []string         `json:"already_present"` // source snapshot ids the destination holds
	// SameKeys: both repositories share the hash key, chunks keep their
	// ids and are re-sealed without being decompressed.
	SameKeys bool `json:"same_chunk_ids"`
	// Chunks and Bytes: what the copy planned to transfer (the stored
	// size in the source of the chunks the destination lacked).
	Chunks int   `json:"chunks"`
	Bytes  int64 `json:"bytes"`
	// ChunksRead, ChunksUploaded, AddedBytes: what it did.
	ChunksRead     int64 `json:"chunks_read"`
	ChunksUploaded int64 `json:"chunks_uploaded"`
	AddedBytes     int64 `json:"added_bytes"`
	// Seconds is the time of the copy once both repositories were open
	// (locks included; opening one derives a key from its password).
	Seconds float64 `json:"seconds"`
}

// ErrCopySameRepository is wrapped when source and destination are one
// repository.
var ErrCopySameRepository = errors.New("source and destination are the same repository")

// originOf returns the id of the snapshot as first written.
func originOf(s *manifest.Snapshot) string {
	if o := s.Meta[MetaCopyOrigin]; o != "" {
		return o
	}
	return s.ID
}

// copier is one run of Copy.
type copier struct {
	src, dst *Repository
	opts     CopyOptions
	same     bool
	res      *CopyResult

	// mapped: source chunk id → destination chunk id (different keys
	// only), from earlier copies and from this run.
	mu     sync.Mutex
	mapped map[string]ID
	read   atomic.Int64
	// counted: the uploaded chunks already counted in a copied
	// snapshot's AddedBytes.
	counted map[ID]bool
}

// Copy copies the snapshots of src that dst lacks, with the chunks dst
// lacks (see the comment on MetaCopiedFrom). The caller holds a shared
// lock on both repositories.
func Copy(ctx context.Context, src, dst *Repository, opts CopyOptions) (*CopyResult, error) {
	if src.params.ID == dst.params.ID {
		return nil, fmt.Errorf("copy: %w (repository %s)", ErrCopySameRepository, shortID(src.params.ID))
	}
	c := &copier{src: src, dst: dst, opts: opts, mapped: map[string]ID{}, counted: map[ID]bool{},
		same: bytes.Equal(src.params.HashKey, dst.params.HashKey)}
	c.res = &CopyResult{DryRun: opts.DryRun, SameKeys: c.same, Copied: []CopiedSnapshot{}, Present: []string{}}
	todo, err := c.choose(ctx)
	if err != nil {
		return nil, err
	}
	if len(todo) == 0 {
		return c.res, nil
	}
	gen, err := dst.pruneGeneration(ctx)
	if err != nil {
		return nil, err
	}
	known, err := dst.listKnown(ctx)
	if err != nil {
		return nil, err
	}
	plans := make([][]manifest.Chunk, len(todo))
	seen := map[string]bool{}
	for i, s := range todo {
		plans[i] = c.lacking(s, known, seen)
		cs := CopiedSnapshot{From: s.ID, Source: dsn.ShowSource(s.Source), Time: s.Time.UTC().Format("2006-01-02T15:04:05Z"), Chunks: len(plans[i])}
		for _, ch := range plans[i] {
			cs.Bytes += storedOr(ch)
		}
		c.res.Copied = append(c.res.Copied, cs)
		c.res.Chunks += cs.Chunks
		c.res.Bytes += cs.Bytes
	}
	if opts.DryRun {
		return c.res, nil
	}
	p := opts.Progress
	p.SetUnit("snapshots")
	p.AddTables(len(todo))
	p.SetTotalBytes(c.res.Bytes)
	// Uploads wait on the network more than on the CPU (with the same
	// keys a chunk is only re-sealed): twice the backup's workers.
	u := &Uploader{r: dst, ctx: ctx, sem: make(chan struct{}, 2*dst.workers), gen: gen, known: known, stored: map[ID]int64{}, inflight: map[ID]struct{}{}}
	for i, s := range todo {
		id, err := c.copySnapshot(ctx, u, s, plans[i])
		if err != nil {
			c.finish(u)
			return c.res, fmt.Errorf("copy snapshot %s: %w", s.ShortID(), err)
		}
		c.res.Copied[i].To = id
		p.TableDone()
	}
	c.finish(u)
	return c.res, nil
}

func (c *copier) finish(u *Uploader) {
	_ = u.Wait()
	c.res.ChunksRead = c.read.Load()
	c.res.ChunksUploaded = u.NewChunks()
	c.res.AddedBytes = u.AddedBytes()
}

// storedOr is a chunk's stored size, or its length in manifests that did
// not record it.
func storedOr(c manifest.Chunk) int64 {
	if c.Stored > 0 {
		return c.Stored
	}
	return int64(c.Len)
}

// choose lists the source snapshots to copy, oldest first, and learns the
// chunk ids of earlier copies.
func (c *copier) choose(ctx context.Context) ([]*manifest.Snapshot, error) {
	all, err := c.src.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("source repository: %w", err)
	}
	var picked []*manifest.Snapshot
	var refs []string
	want := map[string]bool{}
	for _, ref := range c.opts.IDs {
		if ref != "latest" {
			refs = append(refs, ref)
			continue
		}
		// latest: the newest snapshot of each source (all is oldest
		// first).
		newest := map[string]string{}
		for _, s := range all {
			newest[s.Source] = s.ID
		}
		for _, id := range newest {
			want[id] = true
		}
	}
	if len(refs) > 0 {
		ids, err := c.src.ResolveIDs(ctx, refs)
		if err != nil {
			return nil, fmt.Errorf("source repository: %w", err)
		}
		for _, id := range ids {
			want[id] = true
		}
	}
	if len(c.opts.IDs) > 0 {
		for _, s := range all {
			if want[s.ID] {
				picked = append(picked, s)
				delete(want, s.ID)
			}
		}
		for id := range want {
			return nil, fmt.Errorf("source repository: snapshot %s cannot be read (damaged or its manifest is missing)", shortID(id))
		}
	} else {
		picked = all
	}
	if len(c.opts.Sources) > 0 {
		var keep []*manifest.Snapshot
		for _, s := range picked {
			if slices.Contains(c.opts.Sources, s.Source) {
				keep = append(keep, s)
			}
		}
		picked = keep
	}
	have, err := c.dst.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination repository: %w", err)
	}
	present := map[string]bool{}
	for _, s := range have {
		present[s.ID] = true
		present[originOf(s)] = true
		if f := s.Meta[MetaCopiedFrom]; f != "" {
			present[f] = true
		}
	}
	byID := make(map[string]*manifest.Snapshot, len(all))
	for _, s := range all {
		byID[s.ID] = s
	}
	var todo []*manifest.Snapshot
	for _, s := range picked {
		if present[s.ID] || present[originOf(s)] {
			c.res.Present = append(c.res.Present, s.ID)
			continue
		}
		todo = append(todo, s)
	}
	if !c.same && len(todo) > 0 {
		for _, d := range have {
			if d.Meta[MetaCopiedFromRepo] != c.src.params.ID {
				continue
			}
			if s := byID[d.Meta[MetaCopiedFrom]]; s != nil {
				c.learn(s, d)
			}
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].Time.Before(todo[j].Time) })
	return todo, nil
}

// learn records the chunk ids of d, a copy of s, by matching their
// streams.
func (c *copier) learn(s, d *manifest.Snapshot) {
	streams := make(map[string]manifest.Stream, len(d.Streams))
	for _, st := range d.Streams {
		streams[st.Name] = st
	}
	for _, st := range s.Streams {
		ds, ok := streams[st.Name]
		if !ok || len(ds.Chunks) != len(st.Chunks) {
			continue
		}
		for i, ch := range st.Chunks {
			if id, err := ParseID(ds.Chunks[i].ID); err == nil && ds.Chunks[i].Len == ch.Len {
				c.mapped[ch.ID] = id
			}
		}
	}
}

// lacking returns the chunks of s that the destination may lack and that
// no earlier snapshot of this run copies (seen).
func (c *copier) lacking(s *manifest.Snapshot, known map[ID]int64, seen map[string]bool) []manifest.Chunk {
	var out []manifest.Chunk
	for _, st := range s.Streams {
		for _, ch := range st.Chunks {
			if seen[ch.ID] {
				continue
			}
			seen[ch.ID] = true
			id, ok := c.dstID(ch.ID)
			if ok {
				if _, stored := known[id]; stored {
					continue
				}
			}
			out = append(out, ch)
		}
	}
	return out
}

// dstID returns the destination id of a source chunk when it is known
// without reading the chunk.
func (c *copier) dstID(srcID string) (ID, bool) {
	if c.same {
		id, err := ParseID(srcID)
		return id, err == nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.mapped[srcID]
	return id, ok
}

// copySnapshot stores the chunks of s in need (in parallel, through the
// uploader's pool), then its manifest. When a prune of the destination
// removed chunks meanwhile, it lists the stored chunks again and retries.
func (c *copier) copySnapshot(ctx context.Context, u *Uploader, s *manifest.Snapshot, need []manifest.Chunk) (string, error) {
	for attempt := 0; ; attempt++ {
		if err := c.transfer(ctx, u, need); err != nil {
			return "", err
		}
		if c.opts.afterChunks != nil {
			c.opts.afterChunks()
		}
		snap, err := c.translate(u, s)
		if err != nil {
			return "", err
		}
		err = c.dst.checkNotPruned(ctx, u.gen, snap.Streams)
		if errors.Is(err, ErrPrunedDuringBackup) && attempt < 2 {
			c.dst.log.Warn("a prune of the destination removed chunks this copy stored; storing them again", "snapshot", s.ShortID())
			if err := c.relist(ctx, u); err != nil {
				return "", err
			}
			need = c.lacking(s, u.known, map[string]bool{})
			continue
		}
		if err != nil {
			return "", err
		}
		return c.dst.SaveManifest(ctx, snap)
	}
}

// relist reads the prune marker and the stored chunks again.
func (c *copier) relist(ctx context.Context, u *Uploader) error {
	gen, err := c.dst.pruneGeneration(ctx)
	if err != nil {
		return err
	}
	known, err := c.dst.listKnown(ctx)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.gen, u.known, u.stored = gen, known, map[ID]int64{}
	u.mu.Unlock()
	return nil
}

// transfer stores the chunks in need and waits for them.
func (c *copier) transfer(ctx context.Context, u *Uploader, need []manifest.Chunk) error {
	if c.same {
		for _, ch := range need {
			id, err := ParseID(ch.ID)
			if err != nil {
				return fmt.Errorf("source chunk %q: %w", ch.ID, err)
			}
			if err := u.putWith(id, func() ([]byte, error) { return c.reseal(ctx, ch) }); err != nil {
				return err
			}
		}
		return u.Wait()
	}
	// Different keys: the destination id is known only once the chunk is
	// read, so reading runs in its own pool; the uploader's pool
	// compresses, seals and stores.
	sem := make(chan struct{}, c.dst.workers)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, ch := range need {
		if err := u.Err(); err != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.recode(ctx, u, ch); err != nil {
				once.Do(func() { first = err })
				u.fail(err)
			}
		}()
	}
	wg.Wait()
	if err := u.Wait(); err != nil {
		return err
	}
	return first
}

// reseal loads a source chunk and seals its stored form for the
// destination (same hash keys). A chunk in the column filter's form goes
// to a destination without the filter decompressed and compressed again.
func (c *copier) reseal(ctx context.Context, ch manifest.Chunk) ([]byte, error) {
	h := backend.Handle{Type: backend.Data, Name: ch.ID}
	obj, err := c.src.be.Load(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("load source chunk %s: %w", h, err)
	}
	c.read.Add(1)
	c.opts.Progress.AddBytes(int64(len(obj)))
	payload, err := c.src.key.Open(nil, obj)
	if err != nil {
		return nil, fmt.Errorf("source chunk %s is damaged: %w", h, err)
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("source chunk %s is damaged: empty object", h)
	}
	// An unencrypted source has no authentication: its content is
	// checked against its id. So is a chunk that must be recompressed.
	if !c.src.Encrypted() || (payload[0] == blobColumns && !c.dst.params.Columns) {
		plain, err := c.src.decode(obj, int(ch.Len))
		if err != nil {
			return nil, fmt.Errorf("source chunk %s is damaged: %w", h, err)
		}
		if c.src.hash(plain).String() != ch.ID {
			return nil, fmt.Errorf("source chunk %s is damaged: content does not match its id", h)
		}
		if payload[0] == blobColumns && !c.dst.params.Columns {
			enc, _ := c.dst.encodeWith(c.dst.enc, plain, filterOff)
			return enc, nil
		}
	}
	return c.dst.key.Seal(make([]byte, 0, len(payload)+c.dst.key.Overhead()), payload), nil
}

// recode reads a source chunk, hashes it with the destination's key and
// hands it to the uploader (different hash keys).
func (c *copier) recode(ctx context.Context, u *Uploader, ch manifest.Chunk) error {
	plain, err := c.src.LoadChunk(ctx, ch)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	c.read.Add(1)
	c.opts.Progress.AddBytes(storedOr(ch))
	id := c.dst.hash(plain)
	c.mu.Lock()
	c.mapped[ch.ID] = id
	c.mu.Unlock()
	use := filterOff
	if c.dst.params.Columns {
		use = filterTry
	}
	return u.putWith(id, func() ([]byte, error) {
		obj, _ := c.dst.encodeWith(c.dst.enc, plain, use)
		return obj, nil
	})
}

// translate makes the destination's manifest of s: chunk ids mapped,
// stored sizes the destination's, the origin recorded.
func (c *copier) translate(u *Uploader, s *manifest.Snapshot) (*manifest.Snapshot, error) {
	d := *s
	d.ID = ""
	d.Streams = make([]manifest.Stream, len(s.Streams))
	var added int64
	for i, st := range s.Streams {
		ds := st
		ds.Chunks = make([]manifest.Chunk, len(st.Chunks))
		for j, ch := range st.Chunks {
			id, ok := c.dstID(ch.ID)
			if !ok {
				return nil, fmt.Errorf("chunk %s was not copied", shortID(ch.ID))
			}
			u.mu.Lock()
			n, up := u.stored[id]
			if !up {
				n = u.known[id]
			}
			u.mu.Unlock()
			if up && !c.counted[id] {
				c.counted[id] = true
				added += n
			}
			ds.Chunks[j] = manifest.Chunk{ID: id.String(), Len: ch.Len, Stored: n}
		}
		d.Streams[i] = ds
	}
	d.AddedBytes = added
	d.Meta = make(map[string]string, len(s.Meta)+3)
	for k, v := range s.Meta {
		d.Meta[k] = v
	}
	d.Meta[MetaCopiedFrom] = s.ID
	d.Meta[MetaCopiedFromRepo] = c.src.params.ID
	d.Meta[MetaCopyOrigin] = originOf(s)
	// The parent is a source id: kept only when the destination holds
	// that snapshot under the same id.
	d.Parent = ""
	d.Tags = append([]string(nil), s.Tags...)
	d.Tables = append([]manifest.Table(nil), s.Tables...)
	return &d, nil
}

// putWith stores the object that encode makes under id, in the uploader's
// pool, unless the chunk is stored or being stored.
func (u *Uploader) putWith(id ID, encode func() ([]byte, error)) error {
	if err := u.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	_, known := u.known[id]
	_, busy := u.inflight[id]
	if known || busy {
		u.mu.Unlock()
		return nil
	}
	u.inflight[id] = struct{}{}
	u.mu.Unlock()
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.sem }()
		defer func() {
			u.mu.Lock()
			delete(u.inflight, id)
			u.mu.Unlock()
		}()
		// No Stat first (a backup's uploads make one): the listing is
		// this run's, and a chunk another process stored since is stored
		// again with the same content, which costs less than a request
		// per chunk.
		h := backend.Handle{Type: backend.Data, Name: id.String()}
		obj, err := encode()
		if err != nil {
			u.fail(err)
			return
		}
		if err := u.r.be.Save(u.ctx, h, obj); err != nil {
			u.fail(fmt.Errorf("store chunk: %w", err))
			return
		}
		u.added.Add(int64(len(obj)))
		u.nnew.Add(1)
		u.mu.Lock()
		u.stored[id] = int64(len(obj))
		u.known[id] = int64(len(obj))
		u.mu.Unlock()
	}()
	return nil
}
