// Package local stores a repository in a directory on a local file system.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdata/snapdata/internal/backend"
)

// Backend is a repository in a local directory.
type Backend struct {
	dir string
}

var _ backend.Backend = (*Backend)(nil)

// New returns a backend rooted at dir. It does no I/O.
func New(dir string) *Backend { return &Backend{dir: filepath.Clean(dir)} }

// Location returns the directory.
func (b *Backend) Location() string { return b.dir }

func (b *Backend) path(h backend.Handle) string {
	switch h.Type {
	case backend.Config:
		return filepath.Join(b.dir, "config")
	case backend.Data:
		if len(h.Name) >= 2 {
			return filepath.Join(b.dir, "data", h.Name[:2], h.Name)
		}
	}
	return filepath.Join(b.dir, string(h.Type), h.Name)
}

// Create makes the directory layout. It refuses a directory that already
// holds a repository.
func (b *Backend) Create(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(b.dir, "config")); err == nil {
		return fmt.Errorf("create repository in %s: a repository already exists there", b.dir)
	}
	for _, t := range backend.AllTypes {
		if t == backend.Config {
			continue
		}
		if err := os.MkdirAll(filepath.Join(b.dir, string(t)), 0o700); err != nil {
			return fmt.Errorf("create repository in %s: %w", b.dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "tmp"), 0o700); err != nil {
		return fmt.Errorf("create repository in %s: %w", b.dir, err)
	}
	return nil
}

// Save writes to a temporary file in tmp/, syncs it and renames it into
// place, so a crash never leaves a partial object under its real name.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	final := b.path(h)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	tmpDir := filepath.Join(b.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(tmpDir, strings.ReplaceAll(h.String(), "/", "-")+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, final)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s: %w", h, werr)
	}
	return nil
}

// Load reads a whole object.
func (b *Backend) Load(ctx context.Context, h backend.Handle) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, backend.NotFound(h)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	return data, nil
}

// Stat returns an object's size.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	fi, err := os.Stat(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return backend.FileInfo{}, backend.NotFound(h)
	}
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %s: %w", h, err)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// Remove deletes an object; an absent one is not an error.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	err := os.Remove(b.path(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// List walks the folder of type t.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.Config {
		fi, err := os.Stat(filepath.Join(b.dir, "config"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list config: %w", err)
		}
		return fn(backend.FileInfo{Name: "config", Size: fi.Size()})
	}
	root := filepath.Join(b.dir, string(t))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listing
			}
			return err
		}
		return fn(backend.FileInfo{Name: d.Name(), Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// Close does nothing for a local directory.
func (b *Backend) Close() error { return nil }

// CleanTemp removes leftover temporary files of writers that died.
// It is safe while other writers run only under an exclusive lock.
func (b *Backend) CleanTemp(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(filepath.Join(b.dir, "tmp"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clean temporary files: %w", err)
	}
	n := 0
	for _, e := range entries {
		if err := os.Remove(filepath.Join(b.dir, "tmp", e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}
