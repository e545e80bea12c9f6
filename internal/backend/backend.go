// Package backend defines the tiny storage interface that every repository
// location (local directory, S3-compatible object storage) implements.
//
// A backend stores whole objects addressed by a Handle. Save must be atomic:
// after a crash an object is either absent or complete. Nothing above this
// package knows whether bytes live on a disk or in a bucket.
package backend

import (
	"context"
	"errors"
	"fmt"
)

// FileType is the kind of object, which maps to a folder or key prefix.
type FileType string

// The object kinds a repository stores.
const (
	Config    FileType = "config"
	Key       FileType = "keys"
	Data      FileType = "data"
	Snapshot  FileType = "snapshots"
	Lock      FileType = "locks"
	DataIndex FileType = "index"
)

// AllTypes lists every FileType, in the order check reports them.
var AllTypes = []FileType{Config, Key, Data, Snapshot, Lock, DataIndex}

// Handle names one object.
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == Config {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// FileInfo describes a stored object.
type FileInfo struct {
	Name string
	Size int64
}

// ErrNotFound is wrapped by errors for absent objects.
var ErrNotFound = errors.New("object not found")

// IsNotFound reports whether err says an object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// NotFound wraps ErrNotFound with the handle that was missing.
func NotFound(h Handle) error { return fmt.Errorf("%s: %w", h, ErrNotFound) }

// Backend is the storage interface. All methods are safe for concurrent use.
type Backend interface {
	// Location describes where the backend stores data, without secrets.
	Location() string
	// Create prepares an empty location (folders, a check that the bucket
	// exists). It fails if a repository config is already there.
	Create(ctx context.Context) error
	// Save stores data under h atomically, replacing any existing object.
	Save(ctx context.Context, h Handle, data []byte) error
	// Load returns the whole object, or an error wrapping ErrNotFound.
	Load(ctx context.Context, h Handle) ([]byte, error)
	// Stat returns the size of an object, or an error wrapping ErrNotFound.
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	// Remove deletes an object. Removing an absent object is not an error.
	Remove(ctx context.Context, h Handle) error
	// List calls fn for every object of type t, in no particular order.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	// Close releases resources.
	Close() error
}
