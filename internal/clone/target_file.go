package clone

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/portable"
)

// Files a clone writes are built as hidden files beside the target,
// named .BASE.snapdata-clone-PID-TOKEN, and renamed over it at the end. A
// later clone removes such a file when its process is gone or it is older
// than maxAge. The record of what a file target holds is the sidecar
// PATH.snapdata-clone.json.
const (
	fileMarker   = ".snapdata-clone-"
	RecordSuffix = ".snapdata-clone.json"
	previousExt  = ".previous"
)

func (r *run) tempFile(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+fileMarker+strconv.Itoa(os.Getpid())+"-"+r.label.Token[:10])
}

// dropFileLeftovers removes the build files of killed clones of path.
func (r *run) dropFileLeftovers(path string) []string {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	prefix := "." + base + fileMarker
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if processAlive(pid) && time.Since(info.ModTime()) < maxAge {
			continue
		}
		full := filepath.Join(dir, e.Name())
		if err := os.Remove(full); err == nil {
			r.c.App.Logger.Warn("removed the leftover of an earlier clone that did not finish", "file", full)
			out = append(out, full)
		}
	}
	return out
}

// toFile writes the snapshot as plain SQL or a portable .tar.gz.
func (r *run) toFile(ctx context.Context, reader engine.SnapshotReader) error {
	a, s, p := r.c.App, r.s, r.p
	path := p.target.File
	r.res.Leftovers = r.dropFileLeftovers(path)
	eng, err := a.Engines.Get(r.snap.Engine)
	if err != nil {
		return err
	}
	tmp := r.tempFile(path)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("clone %s: create a file beside %s: %w", s.Name, path, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	r.c.Progress.Restart("clone "+s.Name+": write "+filepath.Base(path), r.snap.LogicalBytes)
	if p.TargetKind == "tar.gz" {
		info := map[string]any{"id": r.snap.ID, "source": r.snap.Source, "engine": r.snap.Engine, "time": r.snap.Time, "tables": reader.Manifest().Tables}
		err = portable.Export(ctx, w, info, eng, reader)
	} else {
		ex, ok := eng.(engine.SQLExporter)
		if !ok {
			return app2usage(s.Name, r.snap.Engine)
		}
		err = ex.ExportSQL(ctx, reader, w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("clone %s: write %s: %w", s.Name, path, err)
	}
	if err := r.replaceFile(tmp, path); err != nil {
		return err
	}
	done = true
	return nil
}

// replaceFile renames tmp over path (keeping the old one as
// path.previous with keep_previous), then writes the record sidecar.
func (r *run) replaceFile(tmp, path string) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if r.s.KeepPrevious {
		prev := path + previousExt
		if _, err := os.Stat(path); err == nil {
			if err := os.Remove(prev); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("clone %s: keep_previous: %w", r.s.Name, err)
			}
			if err := os.Link(path, prev); err != nil {
				return fmt.Errorf("clone %s: keep_previous: %w", r.s.Name, err)
			}
			r.res.Previous = prev
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("clone %s: swap %s into place: %w", r.s.Name, path, err)
	}
	syncDir(filepath.Dir(path))
	return writeRecord(path, r.label)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func writeRecord(path string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	side := path + RecordSuffix
	tmp := side + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the clone record %s: %w", side, err)
	}
	if err := os.Rename(tmp, side); err != nil {
		return fmt.Errorf("write the clone record %s: %w", side, err)
	}
	return nil
}

// readRecord reads a file target's sidecar record.
func readRecord(path string) (Record, error) {
	b, err := os.ReadFile(path + RecordSuffix)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("read the clone record %s: %w", path+RecordSuffix, err)
	}
	return rec, nil
}

// toSQLite builds the new database file beside the target and renames it
// over the target at the end.
func (r *run) toSQLite(ctx context.Context, reader engine.SnapshotReader) error {
	s, p := r.s, r.p
	d := p.target.DSN
	path := d.Path
	if !s.Swap {
		if err := r.hooks(ctx, "pre_data", s.PreData, d); err != nil {
			return err
		}
		if err := r.load(ctx, reader, d, true); err != nil {
			return err
		}
		if err := r.finish(ctx, d, nil, d); err != nil {
			return err
		}
		return writeRecord(path, r.label)
	}
	r.res.Leftovers = r.dropFileLeftovers(path)
	tmp := r.tempFile(path)
	built := d.WithDatabase(tmp)
	done := false
	defer func() {
		if !done {
			for _, ext := range []string{"", "-journal", "-wal", "-shm"} {
				os.Remove(tmp + ext)
			}
		}
	}()
	if err := r.hooks(ctx, "pre_data", s.PreData, built); err != nil {
		return err
	}
	if err := r.load(ctx, reader, built, false); err != nil {
		return err
	}
	var old = d
	if _, err := os.Stat(path); err != nil {
		old = nil
	}
	if err := r.finish(ctx, built, old, d); err != nil {
		return err
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return fmt.Errorf("clone %s: %s has a write-ahead log (%s-wal): a program has it open: %w", s.Name, path, path, engine.ErrSessionsRemain)
	}
	if err := r.replaceFile(tmp, path); err != nil {
		return err
	}
	done = true
	return nil
}

func app2usage(name, eng string) error {
	return usagef("clone %s: a %s snapshot as SQL: %v", name, eng, engine.ErrUnsupported)
}
