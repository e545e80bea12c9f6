package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/rowsum"
)

// Consistency modes recorded in BackupResult.Meta["consistency"].
const (
	ModeFTWRL  = "ftwrl-aligned"
	ModeSingle = "single-transaction"
)

// dbMeta is the meta/database stream.
type dbMeta struct {
	Database      string  `json:"database"`
	Charset       string  `json:"charset"`
	Collation     string  `json:"collation"`
	ServerVersion string  `json:"server_version"`
	Consistency   string  `json:"consistency"`
	Grants        []grant `json:"grants,omitempty"`
	// The binary log position is not here but in the manifest's meta: this
	// stream must stay byte-identical while the data does not change, and
	// the position moves with writes to other databases.
}

// snapshotConns are source connections that all see one consistent view.
type snapshotConns struct {
	conns  []*sql.Conn
	mode   string
	binlog map[string]string
}

func (s *snapshotConns) close() {
	for _, c := range s.conns {
		// Ending the read-only transaction; errors do not matter here.
		_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
	}
}

// startSnapshot opens a read-only REPEATABLE READ transaction with a
// consistent snapshot on c.
func startSnapshot(ctx context.Context, c *sql.Conn) error {
	for _, q := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("starting consistent snapshot (%s): %w", q, err)
		}
	}
	return nil
}

// takeSnapshot opens jobs connections that share one consistent view: their
// snapshots are started while a FLUSH TABLES WITH READ LOCK holds writers
// back. Without the RELOAD privilege it falls back to one connection with
// one consistent snapshot.
func takeSnapshot(ctx context.Context, db *sql.DB, jobs int, log *slog.Logger) (_ *snapshotConns, err error) {
	s := &snapshotConns{binlog: map[string]string{}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	coord, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening coordinator connection: %w", err)
	}
	defer coord.Close()
	_, _ = coord.ExecContext(ctx, "SET SESSION lock_wait_timeout = 60")
	_, lockErr := coord.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK")
	if lockErr != nil {
		if !isPrivilegeError(lockErr) {
			return nil, fmt.Errorf("FLUSH TABLES WITH READ LOCK: %w", lockErr)
		}
		log.Warn("no privilege for FLUSH TABLES WITH READ LOCK (needs RELOAD): using one connection with one consistent snapshot", "error", lockErr)
		s.mode = ModeSingle
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("opening snapshot connection: %w", err)
		}
		s.conns = append(s.conns, c)
		if err := startSnapshot(ctx, c); err != nil {
			return nil, err
		}
		// MariaDB reports the binlog position matching a consistent snapshot.
		if rows, err := names(ctx, c, "SHOW STATUS LIKE 'binlog_snapshot_%'"); err == nil {
			for _, r := range rows {
				if len(r) == 2 && r[1] != "" {
					s.binlog[r[0]] = r[1]
				}
			}
		}
		return s, nil
	}
	s.mode = ModeFTWRL
	unlocked := false
	defer func() {
		if !unlocked {
			_, _ = coord.ExecContext(context.Background(), "UNLOCK TABLES")
		}
	}()
	for i := 0; i < jobs; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("opening snapshot connection: %w", err)
		}
		s.conns = append(s.conns, c)
		if err := startSnapshot(ctx, c); err != nil {
			return nil, err
		}
	}
	if r, err := showCreate(ctx, coord, "SHOW MASTER STATUS"); err == nil {
		for k, v := range r {
			if v.Valid && v.String != "" && (k == "File" || k == "Position" || k == "Executed_Gtid_Set") {
				s.binlog[k] = v.String
			}
		}
	}
	var gtid sql.NullString
	if err := coord.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&gtid); err == nil && gtid.String != "" {
		s.binlog["gtid_binlog_pos"] = gtid.String
	}
	if _, err := coord.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		return nil, fmt.Errorf("UNLOCK TABLES: %w", err)
	}
	unlocked = true
	return s, nil
}

// task is one data stream to dump: a table or one key range of it.
type task struct {
	t     *table
	part  int
	where string
}

type tableResult struct {
	bytes  int64
	sum    rowsum.Sum // and its row count
	parts  int
	done   int
	failed bool
}

// Backup dumps src into sink.
func (e *Engine) backup(ctx context.Context, src *dsn.DSN, opts engine.BackupOptions, sink engine.Sink) (*engine.BackupResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := src.Database()
	if name == "" {
		return nil, fmt.Errorf("dsn %s names no database", src)
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	db, err := open(ctx, src, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(jobs + 1)
	db.SetMaxIdleConns(jobs + 1)

	meta := dbMeta{Database: name}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&meta.ServerVersion); err != nil {
		return nil, fmt.Errorf("reading server version: %w", err)
	}
	err = db.QueryRowContext(ctx, `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA
		WHERE SCHEMA_NAME = ?`, name).Scan(&meta.Charset, &meta.Collation)
	if err != nil {
		return nil, fmt.Errorf("reading database %s: %w", name, err)
	}

	snap, err := takeSnapshot(ctx, db, jobs, log)
	if err != nil {
		return nil, fmt.Errorf("backup of %s: %w", src, err)
	}
	defer snap.close()
	meta.Consistency = snap.mode
	log.Info("consistent snapshot taken", "database", name, "consistency", snap.mode, "workers", len(snap.conns))

	c0 := snap.conns[0]
	// Inside the snapshot: schema first, then the plans.
	pre, post, err := captureSchema(ctx, c0, name)
	if err != nil {
		return nil, err
	}
	tables, err := loadTables(ctx, c0, name, nil)
	if err != nil {
		return nil, err
	}
	if meta.Grants, err = captureGrants(ctx, c0, name); err != nil {
		return nil, err
	}

	var nonTx []string
	for _, t := range tables {
		switch strings.ToLower(t.Engine) {
		case "innodb", "rocksdb", "tokudb":
		default:
			nonTx = append(nonTx, t.Name+" ("+t.Engine+")")
		}
	}
	if len(nonTx) > 0 {
		log.Warn("tables without transactions are not covered by the consistent snapshot; they are read as they are when their turn comes", "tables", nonTx)
	}
	if err := writeJSON(ctx, sink, manifest.Stream{Name: "meta/database", Kind: manifest.KindMeta, Format: FormatMeta}, meta); err != nil {
		return nil, err
	}
	if err := writeJSON(ctx, sink, manifest.Stream{Name: "meta/columns", Kind: manifest.KindMeta, Format: FormatColumns}, tables); err != nil {
		return nil, err
	}
	if err := writeStmts(ctx, sink, manifest.Stream{Name: "schema/pre", Kind: manifest.KindSchemaPre, Format: FormatDDL}, pre); err != nil {
		return nil, err
	}
	if err := writeStmts(ctx, sink, manifest.Stream{Name: "schema/post", Kind: manifest.KindSchemaPost, Format: FormatDDL}, post); err != nil {
		return nil, err
	}

	tasks, err := e.plan(ctx, c0, tables, len(snap.conns))
	if err != nil {
		return nil, err
	}
	results := map[string]*tableResult{}
	for _, tk := range tasks {
		r := results[tk.t.Name]
		if r == nil {
			r = &tableResult{}
			results[tk.t.Name] = r
		}
		r.parts++
	}
	opts.Progress.AddTables(len(tables))
	var total int64
	for _, t := range tables {
		total += t.DataLength
	}
	opts.Progress.SetTotalBytes(total)

	var mu sync.Mutex
	ch := make(chan task)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		for _, tk := range tasks {
			select {
			case ch <- tk:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for _, c := range snap.conns {
		g.Go(func() error {
			if _, err := c.ExecContext(gctx, "SET SESSION character_set_results = binary"); err != nil {
				return fmt.Errorf("setting binary results: %w", err)
			}
			for tk := range ch {
				n, sum, err := dumpPart(gctx, c, tk, sink, opts.Progress)
				if err != nil {
					return fmt.Errorf("dumping table %s: %w", tk.t.Name, err)
				}
				mu.Lock()
				r := results[tk.t.Name]
				r.bytes += n
				r.sum.Merge(sum)
				r.done++
				if r.done == r.parts {
					opts.Progress.TableDone()
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	res := &engine.BackupResult{
		EngineVersion: meta.ServerVersion,
		Database:      name,
		Meta:          map[string]string{"consistency": snap.mode, "checksum": rowsum.XXH3.String()},
	}
	if len(nonTx) > 0 {
		res.Meta["non_transactional_tables"] = strings.Join(nonTx, ", ")
	}
	for k, v := range snap.binlog {
		res.Meta["binlog."+k] = v
	}
	for _, t := range tables {
		r := results[t.Name]
		res.Tables = append(res.Tables, manifest.Table{Name: t.Name, Rows: r.sum.Rows, Checksum: r.sum.String(), Bytes: r.bytes})
	}
	return res, nil
}

// plan turns tables into dump tasks, largest first. A table above the split
// size with a single integer key is cut into ranges of its key: the number
// of ranges is a power of two (so small size changes do not move the
// boundaries) and the ranges split [min, max] evenly.
func (e *Engine) plan(ctx context.Context, c querier, tables []*table, workers int) ([]task, error) {
	sorted := append([]*table(nil), tables...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].DataLength > sorted[j].DataLength })
	var tasks []task
	split := e.splitBytes()
	for _, t := range sorted {
		if t.splitCol == "" || t.DataLength <= split || workers < 1 {
			tasks = append(tasks, task{t: t})
			continue
		}
		want := (t.DataLength + split - 1) / split
		parts := int64(1)
		for parts < want && parts < 1024 {
			parts <<= 1
		}
		var lo, hi sql.NullString
		col := quoteIdent(t.splitCol)
		if err := c.QueryRowContext(ctx, "SELECT MIN("+col+"), MAX("+col+") FROM "+quoteIdent(t.Name)).Scan(&lo, &hi); err != nil {
			return nil, fmt.Errorf("reading key range of table %s: %w", t.Name, err)
		}
		bounds, ok := splitRange(lo.String, hi.String, parts)
		if !lo.Valid || !ok {
			tasks = append(tasks, task{t: t})
			continue
		}
		for i := 0; i <= len(bounds); i++ {
			var where string
			switch {
			case i == 0:
				where = col + " < " + bounds[0]
			case i == len(bounds):
				where = col + " >= " + bounds[i-1]
			default:
				where = col + " >= " + bounds[i-1] + " AND " + col + " < " + bounds[i]
			}
			tasks = append(tasks, task{t: t, part: i, where: where})
		}
	}
	return tasks, nil
}

// splitRange returns parts-1 increasing boundaries that cut [lo, hi] into
// parts even ranges. Keys are signed or unsigned 64-bit integers.
func splitRange(lo, hi string, parts int64) ([]string, bool) {
	if parts < 2 {
		return nil, false
	}
	if l, err := strconv.ParseInt(lo, 10, 64); err == nil {
		if h, err := strconv.ParseInt(hi, 10, 64); err == nil {
			if h <= l {
				return nil, false
			}
			// width = h - l computed without overflow as unsigned
			width := uint64(h) - uint64(l)
			step := width/uint64(parts) + 1
			var out []string
			for i := int64(1); i < parts; i++ {
				hiPart, off := bits.Mul64(step, uint64(i))
				if hiPart != 0 || off > width {
					break
				}
				out = append(out, strconv.FormatInt(l+int64(off), 10))
			}
			return out, len(out) > 0
		}
	}
	l, err1 := strconv.ParseUint(lo, 10, 64)
	h, err2 := strconv.ParseUint(hi, 10, 64)
	if err1 != nil || err2 != nil || h <= l {
		return nil, false
	}
	step := (h-l)/uint64(parts) + 1
	var out []string
	for i := int64(1); i < parts; i++ {
		hiPart, off := bits.Mul64(step, uint64(i))
		if hiPart != 0 || off > h-l {
			break
		}
		out = append(out, strconv.FormatUint(l+off, 10))
	}
	return out, len(out) > 0
}

// dumpPart writes one data stream.
func dumpPart(ctx context.Context, c *sql.Conn, tk task, sink engine.Sink, p *progress.Progress) (n int64, sum rowsum.Sum, err error) {
	w, err := sink.Create(ctx, manifest.Stream{
		Name:   fmt.Sprintf("data/%s/%04d", tk.t.Name, tk.part),
		Kind:   manifest.KindData,
		Table:  tk.t.Name,
		Part:   tk.part,
		Format: FormatTSV,
	})
	if err != nil {
		return 0, sum, fmt.Errorf("creating stream: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	n, sum, err = scanTable(ctx, c, tk.t, tk.where, rowsum.XXH3, func(row []byte) error {
		_, err := bw.Write(row)
		return err
	}, p)
	if err != nil {
		return 0, sum, err
	}
	if err := bw.Flush(); err != nil {
		return 0, sum, fmt.Errorf("writing stream: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, sum, fmt.Errorf("committing stream: %w", err)
	}
	return n, sum, nil
}

// scanTable runs the dump query of t and calls emit with every encoded row
// (the slice is reused), summing the rows in format algo (sum.Rows counts
// them); n is the bytes of the encoded rows. The connection must return
// binary results.
func scanTable(ctx context.Context, c *sql.Conn, t *table, where string, algo rowsum.Algo, emit func([]byte) error, p *progress.Progress) (n int64, sum rowsum.Sum, err error) {
	sum = rowsum.New(algo)
	var buf []byte
	var pendBytes, pendRows int64
	var big *bigRowWriter
	each := func(vals [][]byte) error {
		if l := rowLen(vals); l >= bigRowBytes {
			if big == nil {
				big = newBigRowWriter(algo)
			}
			m, err := big.write(vals, &sum, emit)
			if err != nil {
				return fmt.Errorf("writing stream: %w", err)
			}
			n += m
			pendBytes += m
			pendRows++
			return nil
		}
		buf = appendRow(buf[:0], vals)
		sum.AddRow(buf)
		if err := emit(buf); err != nil {
			return fmt.Errorf("writing stream: %w", err)
		}
		n += int64(len(buf))
		pendBytes += int64(len(buf))
		pendRows++
		if pendRows >= 1024 {
			p.AddBytes(pendBytes)
			p.AddRows(pendRows)
			pendBytes, pendRows = 0, 0
		}
		return nil
	}
	if err := scanRows(ctx, c, t.selectSQL(where), len(t.Columns), each); err != nil {
		return 0, sum, err
	}
	p.AddBytes(pendBytes)
	p.AddRows(pendRows)
	return n, sum, nil
}

// scanRows calls each with the first ncol fields of every row of query
// (nil for NULL; valid until the next call). It reads the driver's own
// rows: database/sql would convert every value through reflection into a
// RawBytes (about a twentieth of a MariaDB backup's CPU). Numbers the
// driver parsed are printed back exactly as database/sql prints them, so
// the fields are the same bytes.
func scanRows(ctx context.Context, c *sql.Conn, query string, ncol int, each func([][]byte) error) error {
	return c.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("querying rows: driver connection %T cannot run queries", dc)
		}
		rows, err := q.QueryContext(ctx, query, nil)
		if err != nil {
			return fmt.Errorf("querying rows: %w", err)
		}
		defer rows.Close()
		dest := make([]driver.Value, len(rows.Columns()))
		if len(dest) < ncol {
			return fmt.Errorf("querying rows: %d columns, want %d", len(dest), ncol)
		}
		vals := make([][]byte, len(dest))
		num := make([]byte, 0, 32*len(dest)) // numbers of one row, printed
		for {
			if err := rows.Next(dest); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return fmt.Errorf("reading rows: %w", err)
			}
			num = num[:0]
			for i, v := range dest {
				start := len(num)
				switch x := v.(type) {
				case nil:
					vals[i] = nil
					continue
				case []byte:
					vals[i] = x
					continue
				case int64:
					num = strconv.AppendInt(num, x, 10)
				case uint64:
					num = strconv.AppendUint(num, x, 10)
				case float64:
					num = strconv.AppendFloat(num, x, 'g', -1, 64)
				case float32:
					num = strconv.AppendFloat(num, float64(x), 'g', -1, 32)
				case bool:
					num = strconv.AppendBool(num, x)
				case string:
					num = append(num, x...)
				default:
					return fmt.Errorf("reading rows: column %d: unexpected value of type %T", i+1, v)
				}
				vals[i] = num[start:len(num):len(num)]
			}
			// A table without columns is read as SELECT 1: its rows
			// are empty lines.
			if err := each(vals[:ncol]); err != nil {
				return err
			}
		}
	})
}

func writeJSON(ctx context.Context, sink engine.Sink, s manifest.Stream, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", s.Name, err)
	}
	return writeStream(ctx, sink, s, append(b, '\n'))
}

func writeStmts(ctx context.Context, sink engine.Sink, s manifest.Stream, stmts []stmt) error {
	var b []byte
	for _, st := range stmts {
		line, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", s.Name, err)
		}
		b = append(append(b, line...), '\n')
	}
	return writeStream(ctx, sink, s, b)
}

func writeStream(ctx context.Context, sink engine.Sink, s manifest.Stream, b []byte) error {
	w, err := sink.Create(ctx, s)
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", s.Name, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing stream %s: %w", s.Name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("committing stream %s: %w", s.Name, err)
	}
	return nil
}

// readAll returns a stream's bytes by name.
func readStream(ctx context.Context, snap engine.SnapshotReader, name string) ([]byte, error) {
	for _, s := range snap.Manifest().Streams {
		if s.Name == name {
			r, err := snap.Open(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("opening stream %s: %w", name, err)
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, fmt.Errorf("reading stream %s: %w", name, err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("snapshot has no stream %s (not a mysql snapshot?)", name)
}
