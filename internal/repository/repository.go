// Package repository stores snapshots in a deduplicated, compressed and
// encrypted repository on any backend.Backend.
//
// Layout (one object per name, all sealed with the master key unless the
// repository was made with --no-encryption):
//
//	config            repository parameters (chunker, hash key), sealed
//	keys/<id>         the master key wrapped by an Argon2id-derived key
//	data/<xx>/<id>    one chunk: id = HMAC-SHA256(hash key, plaintext)
//	snapshots/<id>    one manifest: the commit point of a backup
//	locks/<id>        shared and exclusive locks
//	index/prune       the prune marker (prunegen.go)
//	index/snapshots/<id>  a snapshot's record (snapindex.go)
//
// Chunks are cut by a content-defined chunker (FastCDC with a secret gear
// table, or restic/chunker's Rabin with a secret polynomial in repositories
// made before FastCDC), so a stream that did not change maps to the same
// chunks and costs nothing.
package repository

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/restic/chunker"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/columns"
	"github.com/snapdata/snapdata/internal/compress"
	"github.com/snapdata/snapdata/internal/crypto"
)

// FormatVersion is the newest repository format this code writes and reads.
// Version 1 repositories use the Rabin chunker; version 2 adds the chunker
// name (Params.Chunker) so other chunkers can be used; version 3 adds the
// column filter (Params.Columns, objects encoded as blobColumns). A
// repository is written with the lowest version that has what it uses, so
// older snapdata releases keep opening what they can read; they refuse a
// newer version with a clear message instead of cutting chunks the wrong
// way or meeting objects they cannot decode.
const FormatVersion = 3

// formatVersionChunker is the version of repositories that name their
// chunker and do not use the column filter.
const formatVersionChunker = 2

// DefaultChunkAvgBits makes 1 MiB average chunks: a 10 GB database stays
// near 10,000 stored objects.
const DefaultChunkAvgBits = 20

// formatVersionRabin is the version of repositories that use the Rabin chunker.
const formatVersionRabin = 1

// Errors the CLI maps to messages and exit codes.
var (
	ErrWrongPassword = errors.New("wrong password: no key in the repository opens with it")
	ErrDamagedKey    = errors.New("damaged key file")
	ErrNoRepository  = errors.New("no repository found")
	ErrNeedPassword  = errors.New("the repository is encrypted: set SNAPDATA_PASSWORD or use --password-file")
)

// Params are the repository's fixed parameters, stored in config.
type Params struct {
	ID               string      `json:"id"`
	Version          int         `json:"version"`
	Chunker          string      `json:"chunker,omitempty"` // "" (older repositories) = rabin
	ChunkerPol       chunker.Pol `json:"chunker_polynomial"`
	ChunkerKey       []byte      `json:"chunker_key,omitempty"` // fastcdc: secret for the gear table
	ChunkMin         uint        `json:"chunk_min"`
	ChunkAvgBits     int         `json:"chunk_avg_bits"`
	ChunkMax         uint        `json:"chunk_max"`
	HashKey          []byte      `json:"hash_key"`
	CompressionLevel int         `json:"compression_level"` // a compress.Level
	// Columns: chunks of tab-separated lines are stored column by column
	// (package columns) before compression. Version 3 and later.
	Columns bool `json:"columns,omitempty"`
}

// configFile is the stored config object.
type configFile struct {
	Version   int             `json:"version"`
	Encrypted bool            `json:"encrypted"`
	Params    json.RawMessage `json:"params,omitempty"` // plain repositories
	Sealed    []byte          `json:"sealed,omitempty"` // encrypted: sealed Params JSON
}

// keyFile wraps the master key. Created, Host and Username say who added
// it (keys.go); key files made before they were recorded lack them.
type keyFile struct {
	KDF      crypto.KDFParams `json:"kdf"`
	Sealed   []byte           `json:"sealed"` // master key sealed with the derived key
	Created  time.Time        `json:"created,omitzero"`
	Host     string           `json:"host,omitempty"`
	Username string           `json:"username,omitempty"`
}

// InitOptions tune a new repository.
type InitOptions struct {
	Password         []byte // required unless NoEncryption
	NoEncryption     bool
	ChunkAvgBits     int    // average chunk size 2^bits; 0 = DefaultChunkAvgBits
	Chunker          string // ChunkerFastCDC or ChunkerRabin; "" = DefaultChunker
	CompressionLevel int    // a compress.Level (see ParseCompression); 0 = compress.Fastest
	// NoColumns turns the column filter off (Params.Columns), for a
	// repository that releases from before the filter can open.
	NoColumns bool
	KDF       *crypto.KDFParams
	// CopyParams, when set, are the parameters of another repository
	// whose chunker (name, polynomial or gear key, chunk sizes) and hash
	// key the new repository takes (init --copy-params-from): snapshots
	// copied between the two keep their chunk ids, are copied without
	// being decompressed, and deduplicate with each other's backups.
	// Chunker and ChunkAvgBits must then be empty.
	CopyParams *Params
}

// Repository is an open repository.
type Repository struct {
	be     backend.Backend
	key    *crypto.Key
	params Params
	log    *slog.Logger
	// master is the master key's secret and keyName the name of the key
	// file the password opened (keys.go); both empty when not encrypted.
	master  []byte
	keyName string

	enc compress.Encoder
	dec *zstd.Decoder
	// strong compresses the new chunks of a backup that is mostly
	// unchanged (Uploader.useStrong); made on first use. Nil when the
	// repository's own level is already at least as strong.
	strongOnce sync.Once
	strong     compress.Encoder
	workers    int
	// newChunker makes a stream's chunker (parameters checked and the
	// gear table derived once, at open).
	newChunker func(io.Reader) Chunker

	// filterBufs recycles the column filter's buffers (*filterBufs);
	// chunkBufs the buffers that OpenStream's readers decode chunks into
	// (*[]byte): a restore reads every byte of a snapshot through them,
	// and fresh buffers would cost their zeroing, page faults and garbage
	// collection.
	filterBufs, chunkBufs sync.Pool
}

// ID is a chunk or snapshot id.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads a 64-character hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid id %q", s)
	}
	_, err := hex.Decode(id[:], []byte(s))
	if err != nil {
		return id, fmt.Errorf("invalid id %q", s)
	}
	return id, nil
}

// Init creates a new repository on be.
func Init(ctx context.Context, be backend.Backend, opts InitOptions, log *slog.Logger) (*Repository, error) {
	if !opts.NoEncryption && len(opts.Password) == 0 {
		return nil, errors.New("init: an empty password is not allowed (use --no-encryption to store data unencrypted)")
	}
	name := opts.Chunker
	if name == "" {
		name = DefaultChunker
	}
	bits := opts.ChunkAvgBits
	if bits == 0 {
		bits = DefaultChunkAvgBits
	}
	if bits < 12 || bits > 24 {
		return nil, fmt.Errorf("init: average chunk size 2^%d is out of range (4 KiB to 16 MiB)", bits)
	}
	level := opts.CompressionLevel
	if level == 0 {
		level = int(compress.Fastest)
	}
	if _, ok := compressionName(level); !ok {
		return nil, fmt.Errorf("init: %w: level %d", ErrUnknownCompression, level)
	}
	p := Params{
		ID:               hex.EncodeToString(crypto.RandomBytes(16)),
		Version:          FormatVersion,
		Chunker:          name,
		ChunkAvgBits:     bits,
		ChunkMin:         uint(1) << (bits - 2),
		ChunkMax:         uint(1) << (bits + 3),
		HashKey:          crypto.RandomBytes(32),
		CompressionLevel: level,
		Columns:          !opts.NoColumns,
	}
	if !p.Columns {
		p.Version = formatVersionChunker
	}
	if cp := opts.CopyParams; cp != nil {
		p.Chunker, p.ChunkerPol, p.ChunkerKey = cp.Chunker, cp.ChunkerPol, cp.ChunkerKey
		p.ChunkMin, p.ChunkAvgBits, p.ChunkMax = cp.ChunkMin, cp.ChunkAvgBits, cp.ChunkMax
		p.HashKey = cp.HashKey
		switch {
		case p.Columns:
			p.Version = FormatVersion
		case p.ChunkerName() == ChunkerRabin:
			p.Version = formatVersionRabin
		default:
			p.Version = formatVersionChunker
		}
	} else if name == ChunkerRabin {
		pol, err := chunker.RandomPolynomial()
		if err != nil {
			return nil, fmt.Errorf("init: choose chunker polynomial: %w", err)
		}
		p.ChunkerPol = pol
		if !p.Columns {
			p.Version = formatVersionRabin
		}
	} else {
		p.ChunkerKey = crypto.RandomBytes(32)
	}
	// Fail now, before storing anything, if the chunker cannot be made
	// (an unknown name included).
	if err := p.checkChunker(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := refuseConfig(ctx, be); err != nil {
		return nil, err
	}
	if err := be.Create(ctx); err != nil {
		return nil, err
	}
	if err := refuseObjects(ctx, be); err != nil {
		return nil, err
	}
	pjson, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	cf := configFile{Version: p.Version}
	key := crypto.Plain()
	var master []byte
	var keyName string
	if opts.NoEncryption {
		cf.Params = pjson
	} else {
		master = crypto.RandomBytes(crypto.KeySize)
		key, err = crypto.NewKey(master)
		if err != nil {
			return nil, err
		}
		kdf := crypto.DefaultKDF()
		if opts.KDF != nil {
			kdf = *opts.KDF
		}
		kf, err := newKeyFile(master, opts.Password, kdf)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		keyName = keyFileName(kf)
		if err := be.Save(ctx, backend.Handle{Type: backend.Key, Name: keyName}, kf); err != nil {
			return nil, fmt.Errorf("init: save key: %w", err)
		}
		cf.Encrypted = true
		cf.Sealed = key.Seal(nil, pjson)
	}
	cdata, err := json.Marshal(cf)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	// The config is written last: a repository without it does not exist.
	if err := be.Save(ctx, backend.Handle{Type: backend.Config}, cdata); err != nil {
		return nil, fmt.Errorf("init: save config: %w", err)
	}
	r, err := newRepository(be, key, p, log)
	if err != nil {
		return nil, err
	}
	r.master, r.keyName = master, keyName
	return r, nil
}

// Open opens an existing repository with a password (ignored for plain ones).
func Open(ctx context.Context, be backend.Backend, password []byte, log *slog.Logger) (*Repository, error) {
	cdata, err := be.Load(ctx, backend.Handle{Type: backend.Config})
	if backend.IsNotFound(err) {
		return nil, missingConfig(ctx, be)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(cdata, &cf); err != nil {
		return nil, fmt.Errorf("open repository: config is damaged: %w", err)
	}
	if cf.Version < formatVersionRabin || cf.Version > FormatVersion {
		return nil, fmt.Errorf("open repository: format version %d is not supported (this snapdata reads versions %d to %d)", cf.Version, formatVersionRabin, FormatVersion)
	}
	key := crypto.Plain()
	pjson := []byte(cf.Params)
	var master []byte
	var keyName string
	if cf.Encrypted {
		if len(password) == 0 {
			return nil, ErrNeedPassword
		}
		key, master, keyName, err = unlockKey(ctx, be, password)
		if err != nil {
			return nil, err
		}
		pjson, err = key.Open(nil, cf.Sealed)
		if err != nil {
			return nil, fmt.Errorf("open repository: config does not authenticate: %w", err)
		}
	}
	var p Params
	if err := json.Unmarshal(pjson, &p); err != nil {
		return nil, fmt.Errorf("open repository: config is damaged: %w", err)
	}
	r, err := newRepository(be, key, p, log)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	r.master, r.keyName = master, keyName
	return r, nil
}

// unlockKey tries the password on every key file and returns the master
// key, its secret and the name of the key file that opened.
func unlockKey(ctx context.Context, be backend.Backend, password []byte) (*crypto.Key, []byte, string, error) {
	var names []string
	if err := be.List(ctx, backend.Key, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, nil, "", fmt.Errorf("open repository: list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, nil, "", fmt.Errorf("open repository: the repository is encrypted but has no key files")
	}
	var damaged []string
	for _, n := range names {
		data, err := be.Load(ctx, backend.Handle{Type: backend.Key, Name: n})
		if err != nil {
			return nil, nil, "", fmt.Errorf("open repository: load key %s: %w", n, err)
		}
		var kf keyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			damaged = append(damaged, n)
			continue
		}
		derived, err := kf.KDF.Derive(password)
		if err != nil {
			damaged = append(damaged, n)
			continue
		}
		wrap, err := crypto.NewKey(derived)
		if err != nil {
			continue
		}
		if len(kf.Sealed) != crypto.KeySize+wrap.Overhead() {
			damaged = append(damaged, n)
			continue
		}
		master, err := wrap.Open(nil, kf.Sealed)
		if err != nil {
			continue
		}
		key, err := crypto.NewKey(master)
		if err != nil {
			return nil, nil, "", err
		}
		return key, master, n, nil
	}
	if len(damaged) > 0 {
		short := make([]string, len(damaged))
		for i, n := range damaged {
			short[i] = "keys/" + shortID(n)
		}
		what := "the password opens none of the other keys"
		if len(damaged) == len(names) {
			what = "there is no other key"
		}
		return nil, nil, "", fmt.Errorf("open repository: %w: %s cannot be parsed, and %s; restore the key file from a copy of the repository (the password may be right)",
			ErrDamagedKey, strings.Join(short, ", "), what)
	}
	return nil, nil, "", ErrWrongPassword
}

func newRepository(be backend.Backend, key *crypto.Key, p Params, log *slog.Logger) (*Repository, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	newChunker, err := chunkerFor(p)
	if err != nil {
		return nil, err
	}
	enc, err := compress.NewEncoder(compress.Level(p.CompressionLevel), runtime.NumCPU())
	if err != nil {
		return nil, fmt.Errorf("create compressor: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, fmt.Errorf("create decompressor: %w", err)
	}
	w := runtime.NumCPU() * 2
	if w < 4 {
		w = 4
	}
	return &Repository{be: be, key: key, params: p, log: log, enc: enc, dec: dec, workers: w, newChunker: newChunker}, nil
}

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// Params returns the repository's parameters.
func (r *Repository) Params() Params { return r.params }

// ChunkerName returns the chunker the parameters select: older repositories
// have no chunker field and use Rabin.
func (p Params) ChunkerName() string {
	if p.Chunker == "" {
		return ChunkerRabin
	}
	return p.Chunker
}

// Encrypted reports whether objects are encrypted.
func (r *Repository) Encrypted() bool { return r.key.Encrypted() }

// Close releases the repository.
func (r *Repository) Close() error {
	r.dec.Close()
	r.enc.Close()
	if r.strong != nil {
		r.strong.Close()
	}
	return r.be.Close()
}

// hash returns the keyed id of plaintext.
func (r *Repository) hash(data []byte) ID {
	m := hmac.New(sha256.New, r.params.HashKey)
	m.Write(data)
	var id ID
	m.Sum(id[:0])
	return id
}

// Blob encoding: seal( flag || payload ): flag 0 = stored, 1 = zstd, 2 = the
// column filter's form (package columns), compressed with zstd.
const (
	blobRaw     = 0
	blobZstd    = 1
	blobColumns = 2
)

// filterBufs holds what the column filter of one encode or decode needs;
// pooled (Repository.filterBufs), since many run at once and each holds a
// chunk-sized buffer.
type filterBufs struct {
	enc columns.Encoder
	dec columns.Decoder
	buf []byte
}

// getFilterBufs takes a filterBufs from the repository's pool.
func (r *Repository) getFilterBufs() *filterBufs {
	if fb, ok := r.filterBufs.Get().(*filterBufs); ok {
		return fb
	}
	return new(filterBufs)
}

// StrongLevel is the zstd level of new chunks in a mostly unchanged backup
// (see Uploader): with libzstd about 10 % smaller than the fastest level on
// COPY text at about 7 times its CPU, spent only where little is new.
const StrongLevel = compress.Better

// strongEncoder returns the encoder for StrongLevel, or nil when the
// repository's own level is at least as strong (or the encoder cannot be
// made: then the repository's level is used).
func (r *Repository) strongEncoder() compress.Encoder {
	if compress.Level(r.params.CompressionLevel) >= StrongLevel {
		return nil
	}
	r.strongOnce.Do(func() {
		// At most two at a time: each holds a few MiB of match tables, and
		// only a small share of a backup's chunks comes here.
		enc, err := compress.NewEncoder(StrongLevel, min(runtime.NumCPU(), 2))
		if err != nil {
			r.log.Warn("cannot make the stronger compressor for new chunks; using the repository's level", "error", err)
			return
		}
		r.strong = enc
	})
	return r.strong
}

// encode compresses (when it helps) and seals plaintext.
func (r *Repository) encode(plain []byte) []byte {
	obj, _ := r.encodeWith(r.enc, plain, filterTry)
	return obj
}

// filterUse says how encodeWith may use the column filter (when the
// repository has it on).
type filterUse uint8

const (
	filterOff   filterUse = iota // store the chunk as it is
	filterTry                    // filter it when it is tab-separated lines
	filterTrial                  // the same, compared with the chunk compressed as it is (see trialMinLen)
)

// filterOutcome is what encodeWith did with the column filter.
type filterOutcome uint8

const (
	notFiltered filterOutcome = iota // declined (not lines) or not asked
	filtered                         // stored in the filter's form
	notWorthIt                       // a trial found the filter saves too little on this data
)

// The column filter's trial: a stream's first large chunk (at least
// trialMinLen) is compressed with and without the filter; when the filter
// saves less than minFilterGain of the compressed size, the smaller form is
// stored and the stream stops using the filter. On the benchmark's tables,
// 1 MiB chunks: a table whose bytes are mostly one JSON column gains 1-3 %
// from the filter, at about 1.5 ns per byte when backing up and again when
// restoring; tables of ids, numbers, timestamps and codes gain 8-40 %.
// Smaller samples mislead: the filter's gain grows with the number of rows
// (at 256 KiB the same tables showed -5 to +17 %). The trial costs one
// more compression of one chunk per stream; streams of small chunks skip it.
const (
	trialMinLen   = 512 << 10
	minFilterGain = 0.05
)

// encodeWith is encode with a given compressor and use of the column
// filter. It reports what it did with the filter.
func (r *Repository) encodeWith(enc compress.Encoder, plain []byte, use filterUse) ([]byte, filterOutcome) {
	flag, src := byte(blobZstd), plain
	outcome := notFiltered
	if r.params.Columns && use != filterOff {
		fb := r.getFilterBufs()
		defer r.filterBufs.Put(fb)
		if t, ok := fb.enc.Encode(fb.buf[:0], plain); ok {
			fb.buf = t
			flag, src = blobColumns, t
			outcome = filtered
		}
	}
	buf := make([]byte, 1, len(plain)/2+64)
	buf[0] = flag
	buf, err := enc.Append(buf, src)
	// Filtered, the chunk is also compressed as it is for a trial, and
	// when it compressed less than 2:1: table data compresses far better,
	// and long columns of high-entropy values (random ids, hashes) can
	// make an encoder give up on them (klauspost's fastest level stored
	// random digits unencoded, 1.5:1 against 2.5:1 row by row).
	if err == nil && flag == blobColumns && (use == filterTrial || len(buf) > len(plain)/2) {
		alt := make([]byte, 1, len(plain)/2+64)
		alt[0] = blobZstd
		if alt, err2 := enc.Append(alt, plain); err2 == nil {
			pays := float64(len(buf)) <= (1-minFilterGain)*float64(len(alt))
			if len(alt) < len(buf) {
				buf, flag, outcome = alt, blobZstd, notFiltered
			}
			if use == filterTrial && !pays {
				outcome = notWorthIt
			}
		}
	}
	if err != nil {
		r.log.Warn("compression failed; storing the object uncompressed", "error", err)
	}
	if err != nil || len(buf) >= len(plain)+1 {
		buf = append(buf[:0], blobRaw)
		buf = append(buf, plain...)
		if outcome == filtered {
			outcome = notFiltered
		}
	}
	return r.key.Seal(make([]byte, 0, len(buf)+r.key.Overhead()), buf), outcome
}

// decode opens and decompresses a stored object. sizeHint is the expected
// length of the plaintext, or 0 when unknown.
func (r *Repository) decode(sealed []byte, sizeHint int) ([]byte, error) {
	return r.decodeInto(make([]byte, 0, sizeHint+columns.Slack), sealed)
}

// decodeInto is decode writing the plaintext into dst's storage when its
// capacity allows (at least the plaintext's length plus columns.Slack).
// The result may share dst's storage, or the opened object's.
func (r *Repository) decodeInto(dst, sealed []byte) ([]byte, error) {
	b, err := r.key.Open(nil, sealed)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty object")
	}
	switch b[0] {
	case blobRaw:
		return b[1:], nil
	case blobZstd:
		out, err := r.dec.DecodeAll(b[1:], dst[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	case blobColumns:
		fb := r.getFilterBufs()
		defer r.filterBufs.Put(fb)
		t, err := r.dec.DecodeAll(b[1:], fb.buf[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		fb.buf = t
		// Decode grows dst when it is too small; the decoded length is
		// bounded by t's (a corrupt header cannot make it allocate more).
		out, err := fb.dec.Decode(dst[:0], t)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown object encoding %d", b[0])
}

// saveJSON stores a sealed JSON object and returns its id (hash of the JSON).
func (r *Repository) saveJSON(ctx context.Context, t backend.FileType, v any) (ID, int, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ID{}, 0, err
	}
	id := ID(sha256.Sum256(data))
	obj := r.encode(data)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, obj); err != nil {
		return ID{}, 0, err
	}
	return id, len(obj), nil
}

// loadJSON loads and decodes a sealed JSON object.
func (r *Repository) loadJSON(ctx context.Context, h backend.Handle, v any) error {
	obj, err := r.be.Load(ctx, h)
	if err != nil {
		return err
	}
	data, err := r.decode(obj, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	return nil
}
