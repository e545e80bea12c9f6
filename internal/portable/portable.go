// Package portable writes and reads snapdata's portable export: a .tar.gz
// holding dump.sql (the engine's own plain SQL), schema.json (tables with
// portable column types), one JSON-lines file per table and the snapshot
// manifest. Any engine's Importer can load it, so data moves between
// engines (a PostgreSQL snapshot into SQLite or MariaDB).
package portable

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/engine"
)

// File names inside the archive.
const (
	ManifestFile = "manifest.json"
	SchemaFile   = "schema.json"
	SQLFile      = "dump.sql"
	TablesDir    = "tables/"
)

// TableFile returns the archive path of a table's rows.
func TableFile(table string) string {
	r := strings.NewReplacer("/", "_", "\\", "_", "\x00", "_")
	return TablesDir + r.Replace(table) + ".jsonl"
}

// Export writes the archive. The SQL dump and each table are streamed
// through temporary files only as large as one member, because a tar header
// needs its member's size first.
func Export(ctx context.Context, w io.Writer, manifest any, eng engine.Engine, snap engine.SnapshotReader) error {
	rr, ok := eng.(engine.RowReader)
	if !ok {
		return fmt.Errorf("portable export of %s snapshots: %w", eng.Name(), engine.ErrUnsupported)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	addBytes := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	addSpooled := func(name string, fill func(io.Writer) error) error {
		f, err := os.CreateTemp("", "snapdata-export-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := fill(bw); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		size, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: now}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	mj, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := addBytes(ManifestFile, mj); err != nil {
		return fmt.Errorf("write %s: %w", ManifestFile, err)
	}
	ps, err := describe(ctx, eng, rr, snap)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	schema := ps.Tables
	sj, err := json.MarshalIndent(schemaFile{FormatVersion: FormatVersion, PortableSchema: *ps}, "", "  ")
	if err != nil {
		return err
	}
	if err := addBytes(SchemaFile, sj); err != nil {
		return fmt.Errorf("write %s: %w", SchemaFile, err)
	}
	if ex, ok := eng.(engine.SQLExporter); ok {
		if err := addSpooled(SQLFile, func(w io.Writer) error { return ex.ExportSQL(ctx, snap, w) }); err != nil {
			return fmt.Errorf("write %s: %w", SQLFile, err)
		}
	}
	for _, t := range schema {
		err := addSpooled(TableFile(t.Name), func(w io.Writer) error {
			enc := json.NewEncoder(w)
			return rr.ReadRows(ctx, snap, t.Name, func(row []any) error {
				return enc.Encode(encodeRow(t, row))
			})
		})
		if err != nil {
			return fmt.Errorf("write table %s: %w", t.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// encodeRow makes a row JSON-friendly: bytes become base64 strings (the
// schema says which columns are bytes).
func encodeRow(t engine.TableSchema, row []any) []any {
	out := make([]any, len(row))
	for i, v := range row {
		switch x := v.(type) {
		case []byte:
			out[i] = base64.StdEncoding.EncodeToString(x)
		case float64:
			// JSON has no NaN or infinities: they are written as the
			// strings PostgreSQL uses, and read back as floats.
			switch {
			case math.IsNaN(x):
				out[i] = "NaN"
			case math.IsInf(x, 1):
				out[i] = "Infinity"
			case math.IsInf(x, -1):
				out[i] = "-Infinity"
			default:
				out[i] = x
			}
		default:
			out[i] = v
		}
	}
	return out
}

// decodeRow turns JSON values back into Go values by column type.
func decodeRow(t engine.TableSchema, raw []json.RawMessage) ([]any, error) {
	if len(raw) != len(t.Columns) {
		return nil, fmt.Errorf("row has %d values, table %s has %d columns", len(raw), t.Name, len(t.Columns))
	}
	out := make([]any, len(raw))
	for i, r := range raw {
		if string(r) == "null" {
			continue
		}
		c := t.Columns[i]
		switch c.Type {
		case "integer":
			var n json.Number
			if err := json.Unmarshal(r, &n); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			v, err := n.Int64()
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			out[i] = v
		case "float":
			var f float64
			switch string(r) {
			case `"NaN"`:
				out[i] = math.NaN()
				continue
			case `"Infinity"`:
				out[i] = math.Inf(1)
				continue
			case `"-Infinity"`:
				out[i] = math.Inf(-1)
				continue
			}
			if err := json.Unmarshal(r, &f); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			out[i] = f
		case "boolean":
			switch string(r) {
			case "true", "1":
				out[i] = true
			case "false", "0":
				out[i] = false
			default:
				return nil, fmt.Errorf("column %s: %s is not a boolean", c.Name, r)
			}
		case "bytes":
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			out[i] = b
		default:
			var v any
			d := json.NewDecoder(strings.NewReader(string(r)))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			switch x := v.(type) {
			case json.Number:
				if n, err := x.Int64(); err == nil {
					out[i] = n
				} else {
					out[i] = x.String()
				}
			default:
				out[i] = x
			}
		}
	}
	return out, nil
}

// Archive is an opened portable export.
type Archive struct {
	path     string
	Schema   []engine.TableSchema
	Manifest json.RawMessage
	// Version is the archive's schema.json format (1: a bare list of
	// tables with columns only); NotCarried is what its export could not
	// carry; Engine is the source engine named by the manifest.
	Version    int
	NotCarried []engine.NotCarried
	Engine     string

	// A forward cursor over the members: tables read in archive order (the
	// order importers use) cost one pass over the file in all.
	cur    *os.File
	tr     *tar.Reader
	passed map[string]bool
}

// Close releases the cursor.
func (a *Archive) Close() error {
	if a.cur != nil {
		err := a.cur.Close()
		a.cur, a.tr = nil, nil
		return err
	}
	return nil
}

// seek positions the cursor at member name, reopening the file only when
// the member was already passed.
func (a *Archive) seek(name string) (io.Reader, error) {
	if a.cur == nil || a.passed[name] {
		a.Close()
		f, err := os.Open(a.path)
		if err != nil {
			return nil, err
		}
		gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("not a .tar.gz archive: %w", err)
		}
		a.cur, a.tr, a.passed = f, tar.NewReader(gz), map[string]bool{}
	}
	for {
		h, err := a.tr.Next()
		if errors.Is(err, io.EOF) {
			a.Close()
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		a.passed[h.Name] = true
		if h.Name == name {
			return a.tr, nil
		}
	}
}

// Open reads the manifest and schema of an archive.
func Open(path string) (*Archive, error) {
	a := &Archive{path: path}
	err := a.scan(func(name string, r io.Reader) (bool, error) {
		switch name {
		case ManifestFile:
			b, err := io.ReadAll(r)
			a.Manifest = b
			return false, err
		case SchemaFile:
			b, err := io.ReadAll(r)
			if err != nil {
				return false, err
			}
			return true, a.decodeSchema(b)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var m struct {
		Engine string `json:"engine"`
	}
	if len(a.Manifest) > 0 && json.Unmarshal(a.Manifest, &m) == nil {
		a.Engine = m.Engine
	}
	if a.Schema == nil {
		return nil, fmt.Errorf("%s is not a snapdata portable export (no %s)", path, SchemaFile)
	}
	return a, nil
}

// scan calls fn for each member; fn returns true to stop.
func (a *Archive) scan(fn func(name string, r io.Reader) (bool, error)) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("not a .tar.gz archive: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		stop, err := fn(h.Name, tr)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
	}
}

// Rows streams one table's rows.
func (a *Archive) Rows(ctx context.Context, table string, fn func(row []any) error) error {
	var ts *engine.TableSchema
	for i := range a.Schema {
		if a.Schema[i].Name == table {
			ts = &a.Schema[i]
		}
	}

	if ts == nil {
		return fmt.Errorf("table %s is not in the archive", table)
	}
	want := TableFile(table)
	r, err := a.seek(want)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%s is missing from the archive", want)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return err
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return fmt.Errorf("%s line %d: %w", want, line, err)
		}
		row, err := decodeRow(*ts, raw)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", want, line, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", want, err)
	}
	return nil
}
