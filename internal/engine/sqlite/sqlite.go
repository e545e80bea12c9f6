// Package sqlite backs up and restores SQLite databases through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// A backup opens the file read-only and reads everything inside one read
// transaction, which is a consistent snapshot while other processes write
// (in WAL mode writers go on; in rollback-journal mode they wait). Each
// table becomes one stream of typed values (see rows.go); the schema from
// sqlite_master is split into tables (replayed first) and indexes, triggers
// and views (replayed after the data, so triggers do not fire on restore).
package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// Stream names and formats.
const (
	streamMeta   = "meta/sqlite"
	streamPre    = "schema/pre"
	streamPost   = "schema/post"
	formatMeta   = "sqlite-meta/1"
	formatSchema = "sqlite-schema/1"
)

// Engine is the SQLite engine.
type Engine struct{}

// New returns the SQLite engine.
func New() *Engine { return &Engine{} }

// Name returns "sqlite".
func (e *Engine) Name() string { return dsn.SQLite }

// column describes a table column.
type column struct {
	Name    string `json:"name"`
	Decl    string `json:"decl"`
	NotNull bool   `json:"notnull,omitempty"`
	PK      int    `json:"pk,omitempty"`
	Hidden  int    `json:"hidden,omitempty"` // 2,3: generated columns
}

// table describes one table's data stream.
type table struct {
	Name         string   `json:"name"`
	Columns      []column `json:"columns"`
	Rowid        bool     `json:"rowid"` // the rowid is stored as the first value
	WithoutRowid bool     `json:"without_rowid,omitempty"`
}

// stored returns the columns whose values are in the stream (generated
// columns are recomputed on restore).
func (t table) stored() []column {
	var out []column
	for _, c := range t.Columns {
		if c.Hidden == 0 || c.Hidden == 1 {
			out = append(out, c)
		}
	}
	return out
}

// insertColumns lists the quoted columns of a row as stored in a stream.
func (t table) insertColumns() []string {
	var cols []string
	if t.Rowid {
		cols = append(cols, "rowid")
	}
	for _, c := range t.stored() {
		cols = append(cols, quote(c.Name))
	}
	return cols
}

// width is the number of values per row.
func (t table) width() int {
	n := len(t.stored())
	if t.Rowid {
		n++
	}
	return n
}

// meta is stored in the meta stream.
type meta struct {
	Pragmas        map[string]any `json:"pragmas"`
	Tables         []table        `json:"tables"`
	SQLiteSequence []seqEntry     `json:"sqlite_sequence,omitempty"`
	// Stat1 holds the query planner's statistics (sqlite_stat1, written by
	// ANALYZE), so that a restored database plans queries as the source
	// did without analyzing it again.
	Stat1 []stat1Entry `json:"sqlite_stat1,omitempty"`
	// Stat4 holds the samples of builds with SQLITE_ENABLE_STAT4.
	Stat4   []stat4Entry `json:"sqlite_stat4,omitempty"`
	Version string       `json:"sqlite_version"`
}

// stat4Entry is one row of sqlite_stat4.
type stat4Entry struct {
	Tbl    string `json:"tbl"`
	Idx    string `json:"idx"`
	Neq    string `json:"neq"`
	Nlt    string `json:"nlt"`
	Ndlt   string `json:"ndlt"`
	Sample []byte `json:"sample"`
}

// stat1Entry is one row of sqlite_stat1: Idx is nil for a table's row count.
type stat1Entry struct {
	Tbl  string  `json:"tbl"`
	Idx  *string `json:"idx"`
	Stat string  `json:"stat"`
}

// seqEntry is one row of sqlite_sequence (AUTOINCREMENT counters).
type seqEntry struct {
	Name string `json:"name"`
	Seq  int64  `json:"seq"`
}

// schemaObject is one sqlite_master entry.
type schemaObject struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Table string `json:"table"`
	SQL   string `json:"sql"`
}

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// checkFile gives clear errors for a missing file or one that is not SQLite.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite database %s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a sqlite database", path)
	}
	if fi.Size() == 0 {
		return nil // an empty file is an empty database
	}
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr) != "SQLite format 3\x00" {
		return fmt.Errorf("%s is not a sqlite database (no SQLite header)", path)
	}
	return nil
}

func fileURI(path string, readOnly bool) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	u := url.URL{Scheme: "file", Path: abs}
	q := "_pragma=busy_timeout(30000)"
	if readOnly {
		q = "mode=ro&" + q
	}
	return u.String() + "?" + q
}

func openDB(ctx context.Context, path string, readOnly bool) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("sqlite", fileURI(path, readOnly))
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return db, conn, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readSchema reads sqlite_master and the table layouts.
func readSchema(ctx context.Context, q querier) ([]schemaObject, []table, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid`)
	if err != nil {
		return nil, nil, fmt.Errorf("read schema: %w", err)
	}
	var objs []schemaObject
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.Type, &o.Name, &o.Table, &o.SQL); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("read schema: %w", err)
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read schema: %w", err)
	}
	var tables []table
	for _, o := range objs {
		if o.Type != "table" || strings.HasPrefix(o.Name, "sqlite_") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(o.SQL)), "CREATE VIRTUAL TABLE") {
			return nil, nil, fmt.Errorf("table %s is a virtual table, which snapdata cannot back up yet", o.Name)
		}
		t := table{Name: o.Name}
		cr, err := q.QueryContext(ctx, `SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`, o.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("read columns of table %s: %w", o.Name, err)
		}
		for cr.Next() {
			var c column
			var notnull int
			if err := cr.Scan(&c.Name, &c.Decl, &notnull, &c.PK, &c.Hidden); err != nil {
				cr.Close()
				return nil, nil, fmt.Errorf("read columns of table %s: %w", o.Name, err)
			}
			c.NotNull = notnull != 0
			t.Columns = append(t.Columns, c)
		}
		cr.Close()
		var wr int
		if err := q.QueryRowContext(ctx, `SELECT wr FROM pragma_table_list WHERE schema='main' AND name=?`, o.Name).Scan(&wr); err != nil {
			return nil, nil, fmt.Errorf("read table list for %s: %w", o.Name, err)
		}
		t.WithoutRowid = wr != 0
		if !t.WithoutRowid {
			// The primary key of a rowid table is the rowid itself only
			// when it has no index of its own: a single INTEGER PRIMARY
			// KEY, but not INTEGER PRIMARY KEY DESC (SQLite's quirk) nor
			// any other key. Otherwise the rowid is stored with the row.
			var pkIndexes int
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list(?) WHERE origin = 'pk'`, o.Name).Scan(&pkIndexes); err != nil {
				return nil, nil, fmt.Errorf("read indexes of table %s: %w", o.Name, err)
			}
			t.Rowid = !hasPK(t) || pkIndexes > 0
		}
		tables = append(tables, t)
	}
	return objs, tables, nil
}

// hasPK reports whether a table declares a primary key.
func hasPK(t table) bool {
	for _, c := range t.Columns {
		if c.PK > 0 {
			return true
		}
	}
	return false
}

// selectSQL reads a table's stored values in a stable order. likely(x)
// returns x unchanged but hides the declared type, so the driver hands back
// raw storage classes instead of converting DATE columns to time.Time.
func selectSQL(t table) string {
	var cols []string
	if t.Rowid {
		cols = append(cols, "rowid")
	}
	var pk []string
	for _, c := range t.stored() {
		cols = append(cols, "likely("+quote(c.Name)+")")
	}
	for _, c := range t.Columns {
		if c.PK > 0 {
			pk = append(pk, quote(c.Name))
		}
	}
	order := "rowid"
	if t.WithoutRowid {
		order = strings.Join(pk, ", ")
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + quote(t.Name) + " ORDER BY " + order
}

// dumpTable writes a table's rows to w and returns the row count.
func dumpTable(ctx context.Context, q querier, t table, w io.Writer, onRows func(n int64, b int64)) (int64, error) {
	rows, err := q.QueryContext(ctx, selectSQL(t))
	if err != nil {
		return 0, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	defer rows.Close()
	n := t.width()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var enc rowEncoder
	var count, pending int64
	flush := func() error {
		if len(enc.buf) == 0 {
			return nil
		}
		if _, err := w.Write(enc.buf); err != nil {
			return err
		}
		if onRows != nil {
			onRows(pending, int64(len(enc.buf)))
		}
		pending = 0
		enc.buf = enc.buf[:0]
		return nil
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return count, fmt.Errorf("read table %s: %w", t.Name, err)
		}
		for _, v := range vals {
			if err := enc.value(v); err != nil {
				return count, fmt.Errorf("read table %s: %w", t.Name, err)
			}
		}
		count++
		pending++
		if len(enc.buf) >= 256<<10 {
			if err := flush(); err != nil {
				return count, fmt.Errorf("write table %s: %w", t.Name, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return count, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	if err := flush(); err != nil {
		return count, fmt.Errorf("write table %s: %w", t.Name, err)
	}
	return count, nil
}

func writeStream(ctx context.Context, sink engine.Sink, st manifest.Stream, data []byte) error {
	w, err := sink.Create(ctx, st)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", st.Name, err)
	}
	return w.Close()
}

// Backup implements engine.Engine.
func (e *Engine) Backup(ctx context.Context, src *dsn.DSN, opts engine.BackupOptions, sink engine.Sink) (*engine.BackupResult, error) {
	if err := checkFile(src.Path); err != nil {
		return nil, err
	}
	db, conn, err := openDB(ctx, src.Path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	defer conn.Close()
	fp, _ := fingerprint(src.Path)
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read transaction on %s: %w", src.Path, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	objs, tables, err := readSchema(ctx, tx)
	if err != nil {
		if strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "malformed") {
			return nil, fmt.Errorf("%s is not a usable sqlite database: %w", src.Path, err)
		}
		return nil, err
	}
	m := meta{Pragmas: map[string]any{}, Tables: tables}
	for _, p := range []string{"user_version", "application_id", "page_size", "auto_vacuum", "encoding"} {
		var v any
		if err := tx.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
			return nil, fmt.Errorf("read pragma %s: %w", p, err)
		}
		m.Pragmas[p] = v
	}
	_ = tx.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&m.Version)
	for _, o := range objs {
		if o.Name == "sqlite_sequence" {
			rows, err := tx.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence ORDER BY name`)
			if err != nil {
				return nil, fmt.Errorf("read sqlite_sequence: %w", err)
			}
			for rows.Next() {
				var name string
				var seq int64
				if err := rows.Scan(&name, &seq); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read sqlite_sequence: %w", err)
				}
				m.SQLiteSequence = append(m.SQLiteSequence, seqEntry{name, seq})
			}
			rows.Close()
		}
	}
	for _, o := range objs {
		switch o.Name {
		case "sqlite_stat1":
			m.Stat1, err = readStat1(ctx, tx)
		case "sqlite_stat4":
			m.Stat4, err = readStat4(ctx, tx)
		}
		if err != nil {
			return nil, err
		}
	}
	var pre, post []schemaObject
	for _, o := range objs {
		if strings.HasPrefix(o.Name, "sqlite_") {
			continue
		}
		if o.Type == "table" {
			pre = append(pre, o)
		} else {
			post = append(post, o)
		}
	}
	mj, _ := json.Marshal(m)
	prej, _ := json.Marshal(pre)
	postj, _ := json.Marshal(post)
	for _, s := range []struct {
		st   manifest.Stream
		data []byte
	}{
		{manifest.Stream{Name: streamMeta, Kind: manifest.KindMeta, Format: formatMeta}, mj},
		{manifest.Stream{Name: streamPre, Kind: manifest.KindSchemaPre, Format: formatSchema}, prej},
		{manifest.Stream{Name: streamPost, Kind: manifest.KindSchemaPost, Format: formatSchema}, postj},
	} {
		if err := writeStream(ctx, sink, s.st, s.data); err != nil {
			return nil, err
		}
	}
	opts.Progress.AddTables(len(tables))
	res := &engine.BackupResult{
		EngineVersion: "SQLite " + m.Version,
		Database:      filepath.Base(src.Path),
		Fingerprint:   fp,
		Meta:          map[string]string{"consistency": "read transaction"},
	}
	for _, t := range tables {
		w, err := sink.Create(ctx, manifest.Stream{Name: "data/" + t.Name, Kind: manifest.KindData, Table: t.Name, Format: rowsType})
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		var size int64
		n, err := dumpTable(ctx, tx, t, io.MultiWriter(w, h), func(rows, b int64) {
			size += b
			opts.Progress.AddRows(rows)
			opts.Progress.AddBytes(b)
		})
		if err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("store table %s: %w", t.Name, err)
		}
		opts.Progress.TableDone()
		res.Tables = append(res.Tables, manifest.Table{Name: t.Name, Rows: n, Checksum: hex.EncodeToString(h.Sum(nil)), Bytes: size})
	}
	return res, nil
}

// Fingerprint implements engine.Fingerprinter: the database header (its
// change counter and schema cookie), the WAL header (its salts change when
// the WAL restarts) and both files' sizes and modification times. Any
// commit changes at least one of them.
func (e *Engine) Fingerprint(ctx context.Context, src *dsn.DSN) (string, error) {
	return fingerprint(src.Path)
}

func fingerprint(path string) (string, error) {
	h := sha256.New()
	for _, p := range []string{path, path + "-wal"} {
		if err := hashFileState(h, p); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFileState(h hash.Hash, p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(h, "%s:empty;", filepath.Base(p))
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		// An empty WAL holds nothing; read-only readers create one.
		fmt.Fprintf(h, "%s:empty;", filepath.Base(p))
		return nil
	}
	hdr := make([]byte, 100)
	n, _ := io.ReadFull(f, hdr)
	fmt.Fprintf(h, "%s:%d:%d:%x;", filepath.Base(p), fi.Size(), fi.ModTime().UnixNano(), hdr[:n])
	return nil
}

// loadMeta reads the meta and schema streams of a snapshot.
func loadMeta(ctx context.Context, snap engine.SnapshotReader) (*meta, []schemaObject, []schemaObject, error) {
	var m meta
	var pre, post []schemaObject
	for _, x := range []struct {
		name string
		v    any
	}{{streamMeta, &m}, {streamPre, &pre}, {streamPost, &post}} {
		var st *manifest.Stream
		for _, s := range snap.Manifest().Streams {
			if s.Name == x.name {
				st = &s
				break
			}
		}
		if st == nil {
			return nil, nil, nil, fmt.Errorf("snapshot has no %s stream: it was not made by the sqlite engine", x.name)
		}
		rc, err := snap.Open(ctx, *st)
		if err != nil {
			return nil, nil, nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", x.name, err)
		}
		if err := json.Unmarshal(data, x.v); err != nil {
			return nil, nil, nil, fmt.Errorf("decode %s: %w", x.name, err)
		}
	}
	return &m, pre, post, nil
}

// Restore implements engine.Engine. It builds the database in a temporary
// file beside the target and renames it into place only when complete.
func (e *Engine) Restore(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.RestoreOptions) (err error) {
	path := target.Path
	// into: chosen tables restored into an existing database, which keeps
	// every other table. The restore works on a copy (VACUUM INTO) that
	// replaces the file at the end, so a failure leaves it as it was.
	into := false
	if fi, serr := os.Stat(path); serr == nil {
		if fi.IsDir() {
			return fmt.Errorf("restore target %s is a directory", path)
		}
		into = len(opts.Tables) > 0
		if !opts.Clean && !into {
			return fmt.Errorf("%s already exists: %w", path, engine.ErrTargetNotEmpty)
		}
	}
	m, pre, post, err := loadMeta(ctx, snap)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, t := range opts.Tables {
		want[t] = true
	}
	if len(want) > 0 {
		known := map[string]bool{}
		for _, t := range m.Tables {
			known[t.Name] = true
		}
		for t := range want {
			if !known[t] {
				return engine.NoSuchTable("table %q is not in snapshot %s", t, snap.Manifest().ShortID())
			}
		}
	}
	chosen := func(table string) bool { return len(want) == 0 || want[table] }

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", path, err)
	}
	tmp := path + ".snapdata-restore"
	for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
		_ = os.Remove(p)
	}
	defer func() {
		if err != nil {
			for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
				_ = os.Remove(p)
			}
		}
	}()
	var replaced []string
	if into {
		if replaced, err = copyForTables(ctx, path, tmp, opts.Tables, opts.Clean); err != nil {
			return err
		}
	}
	db, conn, err := openDB(ctx, tmp, false)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	exec := func(q string, args ...any) error {
		_, err := conn.ExecContext(ctx, q, args...)
		return err
	}
	for _, t := range replaced {
		if opts.Logger != nil {
			opts.Logger.Info("dropping the chosen table before restoring it (--clean)", "table", t)
		}
		if err := exec("DROP TABLE " + quote(t)); err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
	}
	for _, p := range []string{"page_size", "auto_vacuum"} {
		if into {
			break // the existing database's
		}
		if v, ok := m.Pragmas[p]; ok {
			if err := exec(fmt.Sprintf("PRAGMA %s = %v", p, v)); err != nil {
				return fmt.Errorf("set pragma %s: %w", p, err)
			}
		}
	}
	if v, ok := m.Pragmas["encoding"].(string); ok && v != "" && !into {
		if err := exec(fmt.Sprintf("PRAGMA encoding = '%s'", strings.ReplaceAll(v, "'", ""))); err != nil {
			return fmt.Errorf("set encoding: %w", err)
		}
	}
	// No journal and no syncs while the file is built: a failed restore
	// removes it. Worker threads sort the keys of the indexes built after
	// the data (each thread's sort memory is bounded by the cache size, as
	// for the main thread); temp_store stays on disk, because in memory
	// SQLite sorts an index's keys all in memory, without bound.
	threads := 0
	if runtime.GOMAXPROCS(0) > 1 {
		threads = 2
	}
	for _, q := range []string{"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA foreign_keys = OFF",
		fmt.Sprintf("PRAGMA threads = %d", threads)} {
		if err := exec(q); err != nil {
			return fmt.Errorf("prepare restore: %w", err)
		}
	}
	for _, o := range pre {
		if !chosen(o.Table) {
			continue
		}
		if err := exec(o.SQL); err != nil {
			return fmt.Errorf("create %s %s: %w", o.Type, o.Name, err)
		}
	}
	opts.Progress.AddTables(len(m.Tables))
	for _, t := range m.Tables {
		if !chosen(t.Name) {
			continue
		}
		if err := e.loadTable(ctx, conn, snap, t, opts); err != nil {
			return err
		}
		opts.Progress.TableDone()
	}
	if len(m.SQLiteSequence) > 0 {
		for _, s := range m.SQLiteSequence {
			name := s.Name
			if !chosen(name) {
				continue
			}
			// Loading rows with explicit ids already advanced the counter;
			// set it to the recorded value, which may be higher.
			if err := exec(`DELETE FROM sqlite_sequence WHERE name = ?`, name); err != nil {
				return fmt.Errorf("restore sqlite_sequence: %w", err)
			}
			if err := exec(`INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)`, name, s.Seq); err != nil {
				return fmt.Errorf("restore sqlite_sequence: %w", err)
			}
		}
	}
	for _, o := range post {
		if len(want) > 0 && (o.Type == "view" || !chosen(o.Table)) {
			continue
		}
		if err := exec(o.SQL); err != nil {
			return fmt.Errorf("create %s %s: %w", o.Type, o.Name, err)
		}
	}
	if err := restoreStats(ctx, conn, m, chosen); err != nil {
		return err
	}
	for _, p := range []string{"user_version", "application_id"} {
		if v, ok := m.Pragmas[p]; ok && !into {
			if err := exec(fmt.Sprintf("PRAGMA %s = %v", p, v)); err != nil {
				return fmt.Errorf("set pragma %s: %w", p, err)
			}
		}
	}
	if err := exec("PRAGMA journal_mode = DELETE"); err != nil {
		return fmt.Errorf("finish restore: %w", err)
	}
	conn.Close()
	if err := db.Close(); err != nil {
		return fmt.Errorf("close restored database: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("sync restored database: %w", err)
	}
	if opts.Clean || into {
		for _, p := range []string{path + "-wal", path + "-shm", path + "-journal"} {
			_ = os.Remove(p)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("move restored database into place: %w", err)
	}
	return nil
}

// copyForTables copies the database at path into tmp (VACUUM INTO: a
// consistent copy, with what its write-ahead log holds) for a restore of
// chosen tables, and returns the chosen tables it has: refused without
// clean, dropped from the copy with it.
func copyForTables(ctx context.Context, path, tmp string, tables []string, clean bool) ([]string, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	db, conn, err := openDB(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	defer conn.Close()
	var existing []string
	for _, t := range tables {
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", t).Scan(&n); err != nil {
			return nil, fmt.Errorf("look up table %s in %s: %w", t, path, err)
		}
		if n > 0 {
			existing = append(existing, t)
		}
	}
	if len(existing) > 0 && !clean {
		return nil, fmt.Errorf("%s already has the chosen table(s) %s: %w", path, strings.Join(existing, ", "), engine.ErrTargetNotEmpty)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return nil, fmt.Errorf("copy %s to restore chosen tables into it: %w", path, err)
	}
	return existing, nil
}

// Checksums implements engine.Checksummer with the same encoding as Backup,
// one table after the other (opts.Jobs is not used).
func (e *Engine) Checksums(ctx context.Context, target *dsn.DSN, tables []string, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	if err := checkFile(target.Path); err != nil {
		return nil, err
	}
	db, conn, err := openDB(ctx, target.Path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	_, all, err := readSchema(ctx, tx)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, t := range tables {
		want[t] = true
	}
	var sel []table
	for _, t := range all {
		if len(want) == 0 || want[t.Name] {
			sel = append(sel, t)
		}
	}
	opts.Progress.AddTables(len(sel))
	var out []manifest.Table
	for _, t := range sel {
		h := sha256.New()
		var size int64
		n, err := dumpTable(ctx, tx, t, h, func(r, b int64) {
			size += b
			opts.Progress.AddRows(r)
			opts.Progress.AddBytes(b)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, manifest.Table{Name: t.Name, Rows: n, Checksum: hex.EncodeToString(h.Sum(nil)), Bytes: size})
		opts.Progress.TableDone()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Scratcher: a scratch SQLite database is a file in a temporary folder.

// CreateScratch implements engine.Scratcher. server may be nil or name a
// folder (sqlite:/path/dir) in which to create the file.
func (e *Engine) CreateScratch(ctx context.Context, server *dsn.DSN, name string) (*dsn.DSN, error) {
	dir := os.TempDir()
	if server != nil && server.Path != "" {
		if fi, err := os.Stat(server.Path); err == nil && fi.IsDir() {
			dir = server.Path
		}
	}
	d, err := os.MkdirTemp(dir, "snapdata-verify-")
	if err != nil {
		return nil, fmt.Errorf("create scratch folder: %w", err)
	}
	return dsn.Parse("sqlite:" + filepath.Join(d, name+".db"))
}

// DropScratch implements engine.Scratcher.
func (e *Engine) DropScratch(ctx context.Context, db *dsn.DSN) error {
	return os.RemoveAll(filepath.Dir(db.Path))
}

// ExportSQL implements engine.SQLExporter: a script for `sqlite3 new.db < file`.
func (e *Engine) ExportSQL(ctx context.Context, snap engine.SnapshotReader, w io.Writer) error {
	m, pre, post, err := loadMeta(ctx, snap)
	if err != nil {
		return err
	}
	bw := &errWriter{w: w}
	bw.printf("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	for _, o := range pre {
		bw.printf("%s;\n", o.SQL)
	}
	for _, t := range m.Tables {
		cols := t.insertColumns()
		prefix := "INSERT INTO " + quote(t.Name) + "(" + strings.Join(cols, ",") + ") VALUES("
		var b bytes.Buffer
		err := eachRow(ctx, snap, t, func(vals []any) error {
			b.Reset()
			b.WriteString(prefix)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(literal(v))
			}
			b.WriteString(");\n")
			bw.write(b.Bytes())
			return bw.err
		}, nil)
		if err != nil {
			return fmt.Errorf("export table %s: %w", t.Name, err)
		}
	}
	for _, s := range m.SQLiteSequence {
		bw.printf("DELETE FROM sqlite_sequence WHERE name=%s;\nINSERT INTO sqlite_sequence(name,seq) VALUES(%s,%d);\n", literal(s.Name), literal(s.Name), s.Seq)
	}
	for _, o := range post {
		bw.printf("%s;\n", o.SQL)
	}
	// The planner statistics, as sqlite3's .dump writes them; sqlite_stat4
	// samples need a SQLite built with STAT4 and are left out.
	if len(m.Stat1) > 0 {
		bw.printf("ANALYZE sqlite_schema;\n")
		for _, st := range m.Stat1 {
			idx := "NULL"
			if st.Idx != nil {
				idx = literal(*st.Idx)
			}
			bw.printf("INSERT INTO sqlite_stat1(tbl,idx,stat) VALUES(%s,%s,%s);\n", literal(st.Tbl), idx, literal(st.Stat))
		}
	}
	if v, ok := m.Pragmas["user_version"]; ok {
		bw.printf("PRAGMA user_version=%v;\n", v)
	}
	bw.printf("COMMIT;\n")
	return bw.err
}

func literal(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return fmt.Sprint(x)
	case float64:
		s := fmt.Sprintf("%.17g", x)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case []byte:
		return "X'" + hex.EncodeToString(x) + "'"
	}
	return fmt.Sprintf("'%v'", v)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

var (
	_ engine.Engine        = (*Engine)(nil)
	_ engine.Fingerprinter = (*Engine)(nil)
	_ engine.Checksummer   = (*Engine)(nil)
	_ engine.Scratcher     = (*Engine)(nil)
	_ engine.SQLExporter   = (*Engine)(nil)
)

// syncFile flushes a written file to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	serr := f.Sync()
	if cerr := f.Close(); serr == nil {
		serr = cerr
	}
	return serr
}

// readStat1 reads the query planner's statistics in a stable order.
func readStat1(ctx context.Context, q querier) ([]stat1Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx`)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_stat1: %w", err)
	}
	defer rows.Close()
	var out []stat1Entry
	for rows.Next() {
		var st stat1Entry
		var idx sql.NullString
		if err := rows.Scan(&st.Tbl, &idx, &st.Stat); err != nil {
			return nil, fmt.Errorf("read sqlite_stat1: %w", err)
		}
		if idx.Valid {
			st.Idx = &idx.String
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sqlite_stat1: %w", err)
	}
	return out, nil
}

// readStat4 reads the samples of sqlite_stat4 in a stable order.
func readStat4(ctx context.Context, q querier) ([]stat4Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT tbl, idx, neq, nlt, ndlt, sample FROM sqlite_stat4 ORDER BY tbl, idx, rowid`)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_stat4: %w", err)
	}
	defer rows.Close()
	var out []stat4Entry
	for rows.Next() {
		var st stat4Entry
		if err := rows.Scan(&st.Tbl, &st.Idx, &st.Neq, &st.Nlt, &st.Ndlt, &st.Sample); err != nil {
			return nil, fmt.Errorf("read sqlite_stat4: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sqlite_stat4: %w", err)
	}
	return out, nil
}

// restoreStats writes back the planner statistics of the restored tables.
// "ANALYZE sqlite_schema" creates empty statistics tables without
// analyzing anything; SQLite reads the rows when it next loads the schema.
func restoreStats(ctx context.Context, conn *sql.Conn, m *meta, chosen func(table string) bool) error {
	var stat1 []stat1Entry
	var stat4 []stat4Entry
	for _, st := range m.Stat1 {
		if chosen(st.Tbl) {
			stat1 = append(stat1, st)
		}
	}
	for _, st := range m.Stat4 {
		if chosen(st.Tbl) {
			stat4 = append(stat4, st)
		}
	}
	if len(stat1) == 0 && len(stat4) == 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "ANALYZE sqlite_schema"); err != nil {
		return fmt.Errorf("restore planner statistics: %w", err)
	}
	for _, st := range stat1 {
		var idx any
		if st.Idx != nil {
			idx = *st.Idx
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO sqlite_stat1(tbl, idx, stat) VALUES (?, ?, ?)`, st.Tbl, idx, st.Stat); err != nil {
			return fmt.Errorf("restore sqlite_stat1 row of %s: %w", st.Tbl, err)
		}
	}
	for _, st := range stat4 {
		if _, err := conn.ExecContext(ctx, `INSERT INTO sqlite_stat4(tbl, idx, neq, nlt, ndlt, sample) VALUES (?, ?, ?, ?, ?, ?)`,
			st.Tbl, st.Idx, st.Neq, st.Nlt, st.Ndlt, st.Sample); err != nil {
			return fmt.Errorf("restore sqlite_stat4 row of %s (this SQLite may lack STAT4): %w", st.Tbl, err)
		}
	}
	return nil
}
