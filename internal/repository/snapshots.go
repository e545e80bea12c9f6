package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// ErrSnapshotNotFound is wrapped when a snapshot id or prefix matches none.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// ErrAmbiguous is wrapped when latest matches several sources or an id
// prefix several snapshots.
var ErrAmbiguous = errors.New("ambiguous snapshot reference")

// ambiguous marks err as ErrAmbiguous without changing its message.
type ambiguous struct{ error }

func (e ambiguous) Unwrap() []error { return []error{e.error, ErrAmbiguous} }

// Session is one backup in progress: an engine.Sink whose streams become a
// snapshot only when Commit writes the manifest.
type Session struct {
	r  *Repository
	up *Uploader

	mu      sync.Mutex
	streams []manifest.Stream
	names   map[string]bool
}

// NewSession starts a backup session. The caller should hold a shared lock.
func (r *Repository) NewSession(ctx context.Context) (*Session, error) {
	up, err := r.NewUploader(ctx)
	if err != nil {
		return nil, err
	}
	return &Session{r: r, up: up, names: map[string]bool{}}, nil
}

type sessionWriter struct {
	s  *Session
	st manifest.Stream
	w  *StreamWriter
}

func (w *sessionWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *sessionWriter) Close() error {
	chunks, size, err := w.w.Close()
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.st.Name, err)
	}
	w.st.Chunks, w.st.Size = chunks, size
	w.s.mu.Lock()
	w.s.streams = append(w.s.streams, w.st)
	w.s.mu.Unlock()
	return nil
}

// Create starts a stream (engine.Sink).
func (s *Session) Create(ctx context.Context, st manifest.Stream) (engine.StreamWriter, error) {
	if st.Name == "" || st.Kind == "" || st.Format == "" {
		return nil, fmt.Errorf("stream needs a name, kind and format (got %q, %q, %q)", st.Name, st.Kind, st.Format)
	}
	s.mu.Lock()
	if s.names[st.Name] {
		s.mu.Unlock()
		return nil, fmt.Errorf("stream %q created twice", st.Name)
	}
	s.names[st.Name] = true
	s.mu.Unlock()
	return &sessionWriter{s: s, st: st, w: s.up.NewStream()}, nil
}

// Streams returns the committed streams so far.
func (s *Session) Streams() []manifest.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]manifest.Stream(nil), s.streams...)
}

// AddedBytes returns the stored bytes this session added so far.
func (s *Session) AddedBytes() int64 { return s.up.AddedBytes() }

// Wait waits for all uploads.
func (s *Session) Wait() error { return s.up.Wait() }

// Commit waits for every chunk to be stored, checks that no prune removed
// chunks the session deduplicated against (checkNotPruned), then writes the
// manifest: the commit point. snap.Streams is filled from the session.
func (s *Session) Commit(ctx context.Context, snap *manifest.Snapshot) (string, error) {
	if err := s.up.Wait(); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	snap.Streams = s.Streams()
	for i := range snap.Streams {
		for j := range snap.Streams[i].Chunks {
			c := &snap.Streams[i].Chunks[j]
			c.Stored = s.up.storedSize(c.ID)
		}
	}
	var logical int64
	for _, st := range snap.Streams {
		logical += st.Size
	}
	snap.LogicalBytes = logical
	snap.AddedBytes = s.up.AddedBytes()
	s.r.log.Debug("backup session stored its chunks", "new_chunks", s.up.NewChunks(), "added_bytes", snap.AddedBytes,
		"strong_chunks", s.up.StrongChunks(), "strong_level", StrongLevel.String())
	if err := s.r.checkNotPruned(ctx, s.up.gen, snap.Streams); err != nil {
		return "", err
	}
	return s.r.SaveManifest(ctx, snap)
}

// SaveManifest stores a manifest as it is and sets its id, then the
// snapshot's record (snapindex.go). Every chunk it references must already
// be stored; Session.Commit is the normal way in.
func (r *Repository) SaveManifest(ctx context.Context, snap *manifest.Snapshot) (string, error) {
	snap.Normalize()
	snap.ID = ""
	id, _, err := r.saveJSON(ctx, backend.Snapshot, snap)
	if err != nil {
		return "", fmt.Errorf("save snapshot manifest: %w", err)
	}
	snap.ID = id.String()
	r.saveRecord(ctx, snap)
	return snap.ID, nil
}

// ErrDamagedSnapshot is wrapped when a manifest is stored but cannot be
// read: it does not authenticate or decode, or its content does not hash to
// its id. Listings skip such snapshots with a warning; prune refuses while
// one exists; 'snapdata forget ID' removes it.
var ErrDamagedSnapshot = errors.New("snapshot manifest is damaged")

// ErrPruneRefused is wrapped when prune cannot prove which data is unused
// (a damaged manifest): a refusal by a safety rule, not a failure.
var ErrPruneRefused = errors.New("prune refused")

// DamagedSnapshot is a manifest that List skipped.
type DamagedSnapshot struct {
	ID  string
	Err error
}

// LoadSnapshot loads one manifest by full id and checks that its content
// hashes to its id (which also catches a manifest edited in place in a
// repository made with --no-encryption).
func (r *Repository) LoadSnapshot(ctx context.Context, id string) (*manifest.Snapshot, error) {
	h := backend.Handle{Type: backend.Snapshot, Name: id}
	obj, err := r.be.Load(ctx, h)
	if backend.IsNotFound(err) {
		return nil, fmt.Errorf("snapshot %s: %w", shortID(id), ErrSnapshotNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", shortID(id), err)
	}
	data, err := r.decode(obj, 0)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w: %w", shortID(id), ErrDamagedSnapshot, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != id {
		return nil, fmt.Errorf("load snapshot %s: %w: its content does not match its id (edited or damaged)", shortID(id), ErrDamagedSnapshot)
	}
	var s manifest.Snapshot
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w: %w", shortID(id), ErrDamagedSnapshot, err)
	}
	s.ID = id
	return &s, nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// SnapshotIDs lists the ids of all snapshots.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.be.List(ctx, backend.Snapshot, func(fi backend.FileInfo) error {
		if _, err := ParseID(fi.Name); err == nil {
			ids = append(ids, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// List loads every readable snapshot, oldest first. A damaged manifest is
// skipped with a warning that names it; ListAll returns them.
func (r *Repository) List(ctx context.Context) ([]*manifest.Snapshot, error) {
	out, damaged, err := r.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range damaged {
		r.log.Warn("skipping a damaged snapshot; 'snapdata forget "+shortID(d.ID)+"' removes it", "snapshot", d.ID, "err", d.Err)
	}
	return out, nil
}

// ListAll loads every snapshot, oldest first, and returns the damaged
// manifests (ErrDamagedSnapshot) apart. Any other failure (the storage
// cannot be read) is an error.
func (r *Repository) ListAll(ctx context.Context) ([]*manifest.Snapshot, []DamagedSnapshot, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	loaded := make([]*manifest.Snapshot, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			loaded[i], errs[i] = r.LoadSnapshot(ctx, id)
		}()
	}
	wg.Wait()
	var out []*manifest.Snapshot
	var damaged []DamagedSnapshot
	for i, err := range errs {
		switch {
		case err == nil:
			out = append(out, loaded[i])
		case errors.Is(err, ErrSnapshotNotFound):
			// removed since the listing (forget)
		case errors.Is(err, ErrDamagedSnapshot):
			damaged = append(damaged, DamagedSnapshot{ID: ids[i], Err: err})
		default:
			return nil, nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Time.Equal(out[j].Time) {
			return out[i].ID < out[j].ID
		}
		return out[i].Time.Before(out[j].Time)
	})
	return out, damaged, nil
}

// ResolveIDs maps snapshot ids or unique id prefixes to full ids without
// reading the manifests (a damaged one can be named, and a snapshot whose
// manifest is missing but whose record is stored). Every ref must match
// exactly one snapshot.
func (r *Repository) ResolveIDs(ctx context.Context, refs []string) ([]string, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	records, err := r.recordIDs(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	for _, id := range records {
		if !known[id] {
			ids = append(ids, id)
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, ref := range refs {
		var match []string
		if ref != "" {
			for _, id := range ids {
				if strings.HasPrefix(id, strings.ToLower(ref)) {
					match = append(match, id)
				}
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("no snapshot with id %q: %w", ref, ErrSnapshotNotFound)
		case 1:
		default:
			return nil, ambiguous{fmt.Errorf("snapshot id prefix %q is ambiguous: it matches %d snapshots", ref, len(match))}
		}
		if !seen[match[0]] {
			seen[match[0]] = true
			out = append(out, match[0])
		}
	}
	return out, nil
}

// Find resolves "latest" (optionally of one source) or a unique id prefix.
func (r *Repository) Find(ctx context.Context, ref, source string) (*manifest.Snapshot, error) {
	if ref == "" {
		return nil, errors.New("no snapshot given: name one by id prefix or use latest")
	}
	if ref == "latest" {
		all, err := r.List(ctx)
		if err != nil {
			return nil, err
		}
		var pick *manifest.Snapshot
		sources := map[string]bool{}
		for _, s := range all {
			if source != "" && s.Source != source {
				continue
			}
			sources[s.Source] = true
			pick = s
		}
		if pick == nil {
			if source != "" {
				return nil, fmt.Errorf("no snapshot of source %q: %w", source, ErrSnapshotNotFound)
			}
			return nil, fmt.Errorf("the repository has no snapshots: %w", ErrSnapshotNotFound)
		}
		if len(sources) > 1 {
			names := make([]string, 0, len(sources))
			for n := range sources {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, ambiguous{fmt.Errorf("latest is ambiguous: the repository holds snapshots of %d sources (%s); choose one with --source", len(sources), strings.Join(names, ", "))}
		}
		return pick, nil
	}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, strings.ToLower(ref)) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no snapshot with id %q%s: %w", ref, r.retaggedHint(ctx, ref), ErrSnapshotNotFound)
	case 1:
		return r.LoadSnapshot(ctx, match[0])
	}
	return nil, ambiguous{fmt.Errorf("snapshot id prefix %q is ambiguous: it matches %d snapshots", ref, len(match))}
}

// retaggedHint names the snapshot that an id no snapshot has now became
// when 'snapdata tag' rewrote it ("" when none did).
func (r *Repository) retaggedHint(ctx context.Context, ref string) string {
	ref = strings.ToLower(ref)
	if len(ref) < 4 {
		return ""
	}
	all, err := r.List(ctx)
	if err != nil {
		return ""
	}
	for _, s := range all {
		if strings.HasPrefix(s.Original, ref) || strings.HasPrefix(s.Replaces, ref) {
			return fmt.Sprintf(" ('snapdata tag' changed its tags: it is now snapshot %s)", s.ShortID())
		}
	}
	return ""
}

// RemoveSnapshot deletes a snapshot's record, then its manifest (so a
// record never outlives its manifest because of a forget). Its data stays
// until prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id string) error {
	if err := r.removeRecord(ctx, id); err != nil {
		return err
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.Snapshot, Name: id})
}

// Reader gives an engine the streams of a snapshot (engine.SnapshotReader).
type Reader struct {
	r    *Repository
	snap *manifest.Snapshot
}

// Reader returns a SnapshotReader for snap.
func (r *Repository) Reader(snap *manifest.Snapshot) *Reader { return &Reader{r: r, snap: snap} }

// Manifest returns the snapshot.
func (rd *Reader) Manifest() *manifest.Snapshot { return rd.snap }

// Open returns a stream's plaintext.
func (rd *Reader) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	return rd.r.OpenStream(ctx, s), nil
}

var (
	_ engine.Sink           = (*Session)(nil)
	_ engine.SnapshotReader = (*Reader)(nil)
)
