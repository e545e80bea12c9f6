package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/columns"
	"github.com/snapdata/snapdata/internal/manifest"
)

// listKnown lists the stored data objects, so that chunks already stored
// are not uploaded again. It is called for every session, under the
// session's lock: a list kept from an earlier session could name chunks
// that a prune removed since.
func (r *Repository) listKnown(ctx context.Context) (map[ID]int64, error) {
	known := make(map[ID]int64)
	err := r.be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			known[id] = fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list stored chunks: %w", err)
	}
	return known, nil
}

// Uploader stores chunks for one backup with a bounded pool of workers. It
// counts the bytes it adds, and Wait reports the first error.
type Uploader struct {
	r       *Repository
	ctx     context.Context
	sem     chan struct{}
	wg      sync.WaitGroup
	added   atomic.Int64
	nnew    atomic.Int64
	nstrong atomic.Int64

	// Plaintext bytes handed to put (stored or not) and of new chunks:
	// while new chunks are at most 1/strongShare of what the session has
	// seen, after strongAfter bytes, they are compressed at StrongLevel.
	seen        atomic.Int64
	fresh       atomic.Int64
	strongAfter int64

	// gen is the prune marker's value when known was listed.
	gen   string
	known map[ID]int64 // stored chunks and their stored sizes, listed at start
	// stored: the stored sizes of the chunks this session uploaded
	stored map[ID]int64

	mu       sync.Mutex
	inflight map[ID]struct{}
	err      error
	bufs     sync.Pool
}

// NewUploader starts an upload session. It reads the prune marker, then
// lists the stored chunks. The caller should hold a shared lock.
func (r *Repository) NewUploader(ctx context.Context) (*Uploader, error) {
	gen, err := r.pruneGeneration(ctx)
	if err != nil {
		return nil, err
	}
	known, err := r.listKnown(ctx)
	if err != nil {
		return nil, err
	}
	return &Uploader{r: r, ctx: ctx, sem: make(chan struct{}, r.workers), gen: gen, known: known, stored: map[ID]int64{}, inflight: map[ID]struct{}{}, strongAfter: strongAfter}, nil
}

// A backup compresses its new chunks at StrongLevel once it has seen
// strongAfter bytes and at most one byte in strongShare was new: the
// extra CPU then goes to a small part of the data (a database whose rows
// mostly did not change) and what it saves is stored in every later
// snapshot. A first backup (everything new) keeps the repository's level.
const (
	strongAfter = 32 << 20
	strongShare = 10
)

// useStrong counts n new bytes and reports whether they get StrongLevel.
func (u *Uploader) useStrong(n int) bool {
	fresh := u.fresh.Add(int64(n))
	seen := u.seen.Load()
	return seen >= u.strongAfter && fresh*strongShare <= seen
}

// StrongChunks returns how many chunks this session compressed at
// StrongLevel.
func (u *Uploader) StrongChunks() int64 { return u.nstrong.Load() }

// AddedBytes returns the stored bytes of chunks this session uploaded.
func (u *Uploader) AddedBytes() int64 { return u.added.Load() }

// NewChunks returns how many chunks this session uploaded.
func (u *Uploader) NewChunks() int64 { return u.nnew.Load() }

func (u *Uploader) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

// Err returns the first upload error.
func (u *Uploader) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// put stores one chunk unless it is known or already being stored. data is
// copied when an upload is needed. cols, when not nil, is the stream's
// state of the column filter, which the chunk may use and updates.
func (u *Uploader) put(id ID, data []byte, cols *columnsState) error {
	if err := u.Err(); err != nil {
		return err
	}
	u.seen.Add(int64(len(data)))
	r := u.r
	u.mu.Lock()
	_, known := u.known[id]
	_, busy := u.inflight[id]
	if known || busy {
		u.mu.Unlock()
		return nil
	}
	u.inflight[id] = struct{}{}
	u.mu.Unlock()

	// The column filter: decided here, on the stream's own goroutine, so
	// that the chunks after a trial's chunk wait for its verdict (the
	// stream pauses for about three chunks' compression, once) instead of
	// being filtered meanwhile.
	use, verdict := filterOff, chan struct{}(nil)
	if cols != nil {
		if cols.trial != nil {
			select {
			case <-cols.trial:
			case <-u.ctx.Done():
				return u.ctx.Err()
			}
		}
		switch {
		case cols.notWorthIt.Load():
		case cols.trial == nil && len(data) >= trialMinLen:
			use, verdict = filterTrial, make(chan struct{})
			cols.trial = verdict
		default:
			use = filterTry
		}
	}

	var buf []byte
	if b, ok := u.bufs.Get().(*[]byte); ok && cap(*b) >= len(data) {
		buf = (*b)[:len(data)]
	} else {
		buf = make([]byte, len(data))
	}
	copy(buf, data)
	enc := r.enc
	if u.useStrong(len(data)) {
		if strong := r.strongEncoder(); strong != nil {
			enc = strong
			u.nstrong.Add(1)
		}
	}
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		if verdict != nil {
			close(verdict)
		}
		return u.ctx.Err()
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.sem }()
		// Another backup may have stored the chunk since this session
		// listed the stored ones: it is then neither stored again nor
		// counted as added by this backup.
		h := backend.Handle{Type: backend.Data, Name: id.String()}
		if fi, err := r.be.Stat(u.ctx, h); err == nil && fi.Size > 0 {
			u.bufs.Put(&buf)
			if verdict != nil {
				close(verdict)
			}
			u.mu.Lock()
			u.stored[id] = fi.Size
			u.mu.Unlock()
			return
		}
		obj, outcome := r.encodeWith(enc, buf, use)
		u.bufs.Put(&buf)
		if cols != nil {
			switch outcome {
			case filtered:
				cols.declined.Store(0)
			case notWorthIt:
				cols.notWorthIt.Store(true)
			default:
				if use != filterOff {
					cols.declined.Add(1)
				}
			}
		}
		if verdict != nil {
			close(verdict)
		}
		if err := r.be.Save(u.ctx, h, obj); err != nil {
			u.fail(fmt.Errorf("store chunk: %w", err))
			return
		}
		u.added.Add(int64(len(obj)))
		u.nnew.Add(1)
		u.mu.Lock()
		u.stored[id] = int64(len(obj))
		u.mu.Unlock()
	}()
	return nil
}

// storedSize returns the stored size of a chunk this session uploaded or
// found stored, or 0 when it does not know it.
func (u *Uploader) storedSize(id string) int64 {
	pid, err := ParseID(id)
	if err != nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if n, ok := u.stored[pid]; ok {
		return n
	}
	return u.known[pid]
}

// Wait blocks until every upload finished and returns the first error.
func (u *Uploader) Wait() error {
	u.wg.Wait()
	return u.Err()
}

// StreamWriter chunks the bytes written to it and hands chunks to the
// uploader. Close returns the stream's chunk list.
type StreamWriter struct {
	u    *Uploader
	pw   *io.PipeWriter
	done chan struct{}

	chunks []manifest.Chunk
	size   int64
	err    error
	closed bool
	cols   columnsState
}

// columnsState is what a stream has learnt about the column filter.
type columnsState struct {
	// declined counts the chunks in a row that the column filter
	// declined. A stream that is not tab-separated lines (SQLite's
	// binary rows, schema text) stops trying after maxDeclined, which
	// spares a scan of each chunk; a table's stream never declines but
	// for its first and last chunks (fewer than columns.MinRows lines).
	declined atomic.Int32
	// notWorthIt is set when the filter's trial (see trialMinLen) found
	// that the filter saves too little: the stream stops using it.
	notWorthIt atomic.Bool
	// trial is made when a chunk is taken for the trial and closed when
	// its verdict is in. Only the stream's own goroutine (put) reads or
	// sets it.
	trial chan struct{}
}

// active reports whether the stream's next chunks try the filter.
func (c *columnsState) active() bool {
	return c.declined.Load() < maxDeclined && !c.notWorthIt.Load()
}

// maxDeclined is how many chunks in a row the column filter may decline
// before a stream stops trying it.
const maxDeclined = 3

// NewStream starts a stream.
func (u *Uploader) NewStream() *StreamWriter {
	pr, pw := io.Pipe()
	w := &StreamWriter{u: u, pw: pw, done: make(chan struct{})}
	go w.run(pr)
	return w
}

func (w *StreamWriter) run(pr *io.PipeReader) {
	defer close(w.done)
	c := w.u.r.newChunker(pr)
	for {
		data, err := c.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			w.err = err
			pr.CloseWithError(err)
			return
		}
		id := w.u.r.hash(data)
		var cols *columnsState
		if w.cols.active() {
			cols = &w.cols
		}
		if err := w.u.put(id, data, cols); err != nil {
			w.err = err
			pr.CloseWithError(err)
			return
		}
		w.chunks = append(w.chunks, manifest.Chunk{ID: id.String(), Len: uint32(len(data))})
		w.size += int64(len(data))
	}
}

// Write feeds bytes to the chunker.
func (w *StreamWriter) Write(p []byte) (int, error) {
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.done
		if w.err != nil {
			return n, w.err
		}
	}
	return n, err
}

// Close flushes the last chunk and returns the chunk list and size. The
// chunks may still be uploading: Uploader.Wait must succeed before the
// stream is referenced by a committed snapshot.
func (w *StreamWriter) Close() ([]manifest.Chunk, int64, error) {
	if w.closed {
		return nil, 0, errors.New("stream closed twice")
	}
	w.closed = true
	_ = w.pw.Close()
	<-w.done
	if w.err != nil {
		return nil, 0, w.err
	}
	if w.chunks == nil {
		w.chunks = []manifest.Chunk{}
	}
	return w.chunks, w.size, nil
}

// Abort stops the stream and discards it.
func (w *StreamWriter) Abort(err error) {
	if w.closed {
		return
	}
	w.closed = true
	if err == nil {
		err = errors.New("stream aborted")
	}
	w.pw.CloseWithError(err)
	<-w.done
}

// LoadChunk reads, authenticates and decompresses one chunk and checks that
// its content matches its id.
func (r *Repository) LoadChunk(ctx context.Context, c manifest.Chunk) ([]byte, error) {
	return r.loadChunkInto(ctx, c, nil)
}

// loadChunkInto is LoadChunk decoding into buf's storage when its capacity
// allows.
func (r *Repository) loadChunkInto(ctx context.Context, c manifest.Chunk, buf []byte) ([]byte, error) {
	id, err := ParseID(c.ID)
	if err != nil {
		return nil, err
	}
	h := backend.Handle{Type: backend.Data, Name: c.ID}
	obj, err := r.be.Load(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("load chunk %s: %w", h, err)
	}
	if need := int(c.Len) + columns.Slack; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	data, err := r.decodeInto(buf, obj)
	if err != nil {
		return nil, fmt.Errorf("chunk %s is damaged: %w", h, err)
	}
	if r.hash(data) != id {
		return nil, fmt.Errorf("chunk %s is damaged: content does not match its id", h)
	}
	return data, nil
}

// OpenStream returns a reader over a stream's plaintext. It prefetches a
// few chunks in parallel and keeps memory bounded.
func (r *Repository) OpenStream(ctx context.Context, s manifest.Stream) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	const ahead = 4
	type result struct {
		data []byte
		err  error
	}
	queue := make(chan chan result, ahead)
	go func() {
		defer close(queue)
		for _, c := range s.Chunks {
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			go func(c manifest.Chunk) {
				var buf []byte
				if b, ok := r.chunkBufs.Get().(*[]byte); ok {
					buf = *b
				}
				data, err := r.loadChunkInto(ctx, c, buf)
				ch <- result{data, err}
			}(c)
		}
	}()
	return &streamReader{cancel: cancel, bufs: &r.chunkBufs, next: func() ([]byte, error) {
		ch, ok := <-queue
		if !ok {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		res := <-ch
		return res.data, res.err
	}}
}

type streamReader struct {
	cancel func()
	bufs   *sync.Pool // where read chunks go back (Repository.chunkBufs)
	next   func() ([]byte, error)
	whole  []byte // the chunk that cur is the rest of
	cur    []byte
	err    error
}

// advance recycles the chunk just read and fetches the next one.
func (s *streamReader) advance() {
	if cap(s.whole) > 0 {
		b := s.whole[:0]
		s.bufs.Put(&b)
	}
	s.cur, s.err = s.next()
	s.whole = s.cur
}

func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.advance()
		if s.err != nil && len(s.cur) == 0 {
			return 0, s.err
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// WriteTo lets io.Copy hand whole chunks to the writer.
func (s *streamReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(s.cur) == 0 {
			if s.err != nil {
				if errors.Is(s.err, io.EOF) {
					return total, nil
				}
				return total, s.err
			}
			s.advance()
			continue
		}
		n, err := w.Write(s.cur)
		total += int64(n)
		s.cur = s.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

func (s *streamReader) Close() error {
	s.cancel()
	return nil
}
