package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/snapdata/snapdata/internal/progress"
)

// newProgress returns the progress of a long operation: drawn on stderr
// when it is a terminal, never with --quiet.
func (e *env) newProgress(label string) *progress.Progress {
	if e.quiet {
		return progress.New(label, io.Discard)
	}
	return progress.New(label, e.stderr)
}

// output is where a command writes its result file.
type output struct {
	f    *os.File
	tmp  string // the temporary file renamed onto dest by commit; "" when writing dest directly
	dest string
	done bool
}

// openOutput opens -o for writing; nil for standard output ("" or "-").
// A regular file (new or existing, also behind a symlink) is written to a
// temporary file beside it that commit renames into place, so a failed
// export never leaves a partial file under the name. Anything else that
// exists (a device such as /dev/null or /dev/stdout, a FIFO) is written
// directly: renaming onto it would replace it.
func (e *env) openOutput(path string) (*output, error) {
	if path == "" || path == "-" {
		return nil, nil
	}
	dest := path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		dest = real
	}
	if fi, err := os.Stat(dest); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("create %s: is a directory", path)
		}
		f, err := os.OpenFile(dest, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return &output{f: f, dest: dest}, nil
	}
	tmp := dest + ".snapdata-tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &output{f: f, tmp: tmp, dest: dest}, nil
}

// commit finishes the file: synced and, for a regular file, renamed into
// place.
func (o *output) commit() error {
	if o.tmp == "" {
		o.done = true
		return o.f.Close()
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(o.tmp, o.dest); err != nil {
		return err
	}
	o.done = true
	return nil
}

// discard closes an output that was not committed and removes its
// temporary file; it never removes anything else.
func (o *output) discard() {
	if o.done {
		return
	}
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}
