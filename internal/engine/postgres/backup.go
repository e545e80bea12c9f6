package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/rowsum"
)

// workItem is one data stream to produce: a table or one range of it.
type workItem struct {
	t     *tableInfo
	part  int
	query string // the COPY … TO STDOUT statement
	// printers, when set: the query reads COPY binary, which textRows
	// prints as the COPY text the stream holds.
	printers []printerMaker
}

// Backup implements engine.Engine.
func (e *Engine) Backup(ctx context.Context, src *dsn.DSN, opts engine.BackupOptions, sink engine.Sink) (*engine.BackupResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs := defaultJobs(opts.Jobs)
	coord, err := connect(ctx, src, true)
	if err != nil {
		return nil, err
	}
	defer coord.Close(context.Background())

	var verNum int
	var verStr, dbName string
	if err := coord.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_database()`).
		Scan(&verNum, &verStr, &dbName); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	major := verNum / 10000
	if major < 12 {
		return nil, fmt.Errorf("PostgreSQL %s is not supported: snapdata needs PostgreSQL 12 or newer", verStr)
	}
	pgDump, dumpMajor, err := e.findPgDump(ctx, major)
	if err != nil {
		return nil, err
	}

	// The change signal is read before the snapshot: anything committed
	// after this point moves it.
	fp, err := fingerprint(ctx, coord)
	if err != nil {
		return nil, err
	}

	if _, err := coord.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	var snapID, txSnap string
	if err := coord.QueryRow(ctx, "SELECT pg_export_snapshot(), txid_current_snapshot()::text").Scan(&snapID, &txSnap); err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	// A transaction whose commit record is already in the WAL but that is
	// still in progress for our snapshot would be missed by this backup and
	// not move the WAL position later: only trust the fingerprint when no
	// transaction was in progress.
	if !strings.HasSuffix(txSnap, ":") {
		fp = ""
	}
	var nLO int64
	if err := coord.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&nLO); err != nil {
		return nil, fmt.Errorf("count large objects: %w", err)
	}
	if nLO > 0 {
		return nil, largeObjectsError(ctx, coord, dbName, nLO)
	}
	tabs, err := loadTables(ctx, coord)
	if err != nil {
		return nil, err
	}
	seqNames, err := loadSequenceNames(ctx, coord)
	if err != nil {
		return nil, err
	}
	if len(tabs) > 0 {
		names := make([]string, len(tabs))
		for i, t := range tabs {
			names[i] = t.Name
			if t.unlogged {
				fp = ""
			}
		}
		// Like pg_dump: keep concurrent DDL from dropping or rewriting a
		// table before the workers have read it.
		if _, err := coord.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS SHARE MODE"); err != nil {
			return nil, fmt.Errorf("lock tables: %w", err)
		}
	}

	// Tables with a primary key: rows in key order (appended and updated
	// rows of append-heavy workloads then change only the last chunks).
	// PostgreSQL 14 and newer: tables without a key, and every table with
	// RowOrder "physical", in physical order (plain COPY, TID ranges for split
	// tables).
	tidRanges := verNum >= 140000
	physicalAll := opts.RowOrder == engine.RowOrderPhysical
	if physicalAll && !tidRanges {
		log.Warn("row order physical needs PostgreSQL 14 or newer (TID range scans): reading tables in key order", "server_version", verStr)
	}
	// Tables with a date or time column whose every column type has a
	// printer are read in COPY binary and printed as the same text, which
	// costs the server less (see textcopy.go).
	var types map[string]map[string]colType
	if !opts.TextCopy && len(tabs) > 0 {
		if types, err = columnTypes(ctx, coord); err != nil {
			return nil, err
		}
	}
	var items []workItem
	var totalSize int64
	binaryTables := 0
	for _, t := range tabs {
		var printers []printerMaker
		if types != nil {
			printers = textPrinters(t, types[t.Name])
		}
		if printers != nil {
			binaryTables++
		}
		var queries []string
		if tidRanges && (physicalAll || len(t.PK) == 0) {
			wheres, err := e.planBlocks(ctx, coord, t)
			if err != nil {
				return nil, fmt.Errorf("plan block ranges of table %s: %w", t.Name, err)
			}
			for _, w := range wheres {
				queries = append(queries, t.copyOutPhysical(w))
			}
		} else {
			wheres, err := e.planRanges(ctx, coord, t)
			if err != nil {
				return nil, fmt.Errorf("plan key ranges of table %s: %w", t.Name, err)
			}
			for _, w := range wheres {
				queries = append(queries, t.copyOut(w))
			}
		}
		t.Parts = len(queries)
		for i, q := range queries {
			if printers != nil {
				q += " (FORMAT binary)"
			}
			items = append(items, workItem{t: t, part: i, query: q, printers: printers})
		}
		totalSize += t.size
	}
	// Biggest first, so the long ones do not start last.
	sort.SliceStable(items, func(i, j int) bool {
		return items[i].t.size/int64(items[i].t.Parts) > items[j].t.size/int64(items[j].t.Parts)
	})
	opts.Progress.AddTables(len(tabs))
	opts.Progress.SetTotalBytes(totalSize)

	meta := columnsMeta{Version: 1, Database: dbName, Server: verStr, Tables: tabs}
	if tabs == nil {
		meta.Tables = []*tableInfo{}
	}
	if err := writeJSON(ctx, sink, manifest.Stream{Name: streamColumns, Kind: manifest.KindMeta, Format: FormatColumns}, meta); err != nil {
		return nil, err
	}

	sums := map[string]*rowSum{}
	partsLeft := map[string]int{}
	for _, t := range tabs {
		sums[t.Name] = newRowSumAlgo(e.sum)
		partsLeft[t.Name] = t.Parts
	}
	var mu sync.Mutex

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for _, sec := range []struct{ section, name, kind string }{
			{"pre-data", streamPre, manifest.KindSchemaPre},
			{"post-data", streamPost, manifest.KindSchemaPost},
		} {
			if err := runPgDump(gctx, pgDump, src, snapID, sec.section, sink, manifest.Stream{Name: sec.name, Kind: sec.kind, Format: FormatSQL}); err != nil {
				return err
			}
		}
		return nil
	})
	queue := make(chan workItem)
	g.Go(func() error {
		defer close(queue)
		for _, it := range items {
			select {
			case queue <- it:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	nw := min(jobs, len(items))
	for w := 0; w < nw; w++ {
		g.Go(func() error {
			conn, err := openWorker(gctx, src, snapID)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			for it := range queue {
				rs, err := copyPart(gctx, conn, it, sink, opts, e.sum)
				if err != nil {
					return fmt.Errorf("back up table %s: %w", it.t.Name, err)
				}
				mu.Lock()
				sums[it.t.Name].add(rs)
				partsLeft[it.t.Name]--
				done := partsLeft[it.t.Name] == 0
				mu.Unlock()
				if done {
					opts.Progress.TableDone()
				}
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("backup of %s interrupted: %w", dbName, ctx.Err())
		}
		return nil, err
	}

	// Sequence values are not transactional: read them after the data so
	// they are at least as high as any value the copied rows use.
	seqs, err := readSequences(ctx, coord, seqNames)
	if err != nil {
		return nil, err
	}
	if seqs == nil {
		seqs = []sequenceValue{}
	}
	if err := writeJSON(ctx, sink, manifest.Stream{Name: streamSequences, Kind: manifest.KindMeta, Format: FormatSequences}, seqs); err != nil {
		return nil, err
	}
	if _, err := coord.Exec(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("end snapshot transaction: %w", err)
	}

	// "key": tables with a primary key in key order (and, on PostgreSQL
	// 14+, tables without one in physical order); "physical": all tables
	// in physical order.
	rowOrder := "key"
	if tidRanges && physicalAll {
		rowOrder = "physical"
	}
	res := &engine.BackupResult{
		EngineVersion: verStr,
		Database:      dbName,
		Fingerprint:   fp,
		Meta: map[string]string{
			"consistency":     "exported-snapshot",
			"pg_dump_version": strconv.Itoa(dumpMajor),
			"jobs":            strconv.Itoa(jobs),
			"row_order":       rowOrder,
			"checksum":        e.sum.String(),
			// tables read in COPY binary and printed as text (textcopy.go)
			"copy_binary_tables": strconv.Itoa(binaryTables),
		},
	}
	for _, t := range tabs {
		s := sums[t.Name]
		res.Tables = append(res.Tables, manifest.Table{Name: t.Name, Rows: s.Rows, Checksum: s.String(), Bytes: s.bytes})
	}
	log.Debug("postgres backup done", "database", dbName, "tables", len(tabs), "streams", len(items), "read_in_binary", binaryTables)
	return res, nil
}

// largeObjectsError refuses a database with large objects, naming the first
// of them and the columns that may refer to them (type oid, or a domain over
// it such as the lo extension's lo).
func largeObjectsError(ctx context.Context, q *pgx.Conn, dbName string, n int64) error {
	var oids, cols string
	err := q.QueryRow(ctx, `SELECT
		COALESCE((SELECT string_agg(oid::text, ', ') FROM (SELECT oid FROM pg_largeobject_metadata ORDER BY oid LIMIT 5) o), ''),
		COALESCE((SELECT string_agg(col, ', ') FROM (
			SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS col
			FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_type ty ON ty.oid = a.atttypid
			WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
			  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
			  AND (a.atttypid = 'oid'::regtype OR (ty.typtype = 'd' AND ty.typbasetype = 'oid'::regtype))
			ORDER BY 1 LIMIT 10) c), '')`).Scan(&oids, &cols)
	detail := ""
	if err == nil {
		if n > 5 {
			oids += ", …"
		}
		detail = " (oids " + oids + ")"
		if cols != "" {
			detail += "; columns that may refer to them: " + cols
		}
	}
	return fmt.Errorf("database %s has %d large objects%s: snapdata does not back up large objects (pg_largeobject); store them in bytea columns or back them up with pg_dump", dbName, n, detail)
}

// openWorker opens a read-only session that reads the exported snapshot.
func openWorker(ctx context.Context, src *dsn.DSN, snapID string) (*pgx.Conn, error) {
	conn, err := connect(ctx, src, true)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("begin worker transaction: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapID)); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("import snapshot %s: %w", snapID, err)
	}
	if _, err := conn.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("set work_mem: %w", err)
	}
	return conn, nil
}

// progressWriter sums COPY rows as they pass to w and counts their bytes
// and rows into a progress (which may be nil).
type progressWriter struct {
	w  io.Writer
	rs *rowSum
	p  *progress.Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	before := p.rs.Rows
	p.rs.Write(b)
	p.p.AddBytes(int64(len(b)))
	p.p.AddRows(p.rs.Rows - before)
	return p.w.Write(b)
}

func copyPart(ctx context.Context, conn *pgx.Conn, it workItem, sink engine.Sink, opts engine.BackupOptions, algo rowsum.Algo) (*rowSum, error) {
	st := manifest.Stream{
		Name:   fmt.Sprintf("data/%s/%04d", it.t.Name, it.part),
		Kind:   manifest.KindData,
		Table:  it.t.Name,
		Part:   it.part,
		Format: FormatCopyText,
	}
	w, err := sink.Create(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", st.Name, err)
	}
	rs := newRowSumAlgo(algo)
	pw := &progressWriter{w: w, rs: rs, p: opts.Progress}
	bw := bufio.NewWriterSize(pw, 256<<10)
	var dst io.Writer = bw
	var tr *textRows
	if it.printers != nil {
		// textRows writes at most one Write's worth of rows at a time,
		// and the rows of a binary COPY come one per message: bw gathers
		// them.
		tr = newTextRows(bw, it.printers)
		dst = tr
	}
	if err := copyOut(ctx, conn.PgConn(), dst, it.query, tr != nil); err != nil {
		return nil, fmt.Errorf("copy rows: %w", err)
	}
	if tr != nil {
		if err := tr.Close(); err != nil {
			return nil, fmt.Errorf("copy rows in binary: %w (backup --text-copy reads them as text)", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write stream %s: %w", st.Name, err)
	}
	rs.finish()
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("commit stream %s: %w", st.Name, err)
	}
	return rs, nil
}

func writeJSON(ctx context.Context, sink engine.Sink, st manifest.Stream, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", st.Name, err)
	}
	w, err := sink.Create(ctx, st)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", st.Name, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write stream %s: %w", st.Name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("commit stream %s: %w", st.Name, err)
	}
	return nil
}

// limitedBuffer keeps the first bytes of a child's stderr.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 8192 - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.buf.String())
}

// runPgDump streams one section of pg_dump into a sink stream, dropping
// psql's \restrict and \unrestrict lines.
func runPgDump(ctx context.Context, pgDump string, src *dsn.DSN, snapID, section string, sink engine.Sink, st manifest.Stream) error {
	connURL, env, cleanup, err := pgDumpConn(src)
	if err != nil {
		return err
	}
	defer cleanup()
	args := []string{"--section=" + section, "--encoding=UTF8", "--no-password", "--snapshot=" + snapID, "--dbname=" + connURL}
	cmd := exec.CommandContext(ctx, pgDump, args...)
	cmd.Env = env
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("pg_dump %s: %w", section, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_dump %s: %w", section, err)
	}
	w, err := sink.Create(ctx, st)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("create stream %s: %w", st.Name, err)
	}
	copyErr := filterDump(out, w)
	if copyErr != nil {
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if waitErr != nil {
		msg := stderr.String()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pg_dump --section=%s failed: %w: %s", section, waitErr, msg)
	}
	if copyErr != nil {
		return fmt.Errorf("write stream %s: %w", st.Name, copyErr)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("commit stream %s: %w", st.Name, err)
	}
	return nil
}

// filterDump copies pg_dump output, dropping \restrict/\unrestrict lines.
func filterDump(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: pass it through in pieces (never a meta-command).
			if _, werr := bw.Write(line); werr != nil {
				return werr
			}
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if _, werr := bw.Write(line); werr != nil {
					return werr
				}
			}
		} else if len(line) > 0 && !bytes.HasPrefix(line, []byte(`\restrict `)) && !bytes.HasPrefix(line, []byte(`\unrestrict `)) {
			if _, werr := bw.Write(line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// planBlocks returns the WHERE clauses of a table's parts in physical
// order ("" = whole table), for PostgreSQL 14 and newer. A table whose heap
// and TOAST data exceed the split threshold is cut into ranges of heap
// blocks (TID Range Scans) on a grid of power-of-two steps: the step is the
// power of two at or below the number of blocks that hold about
// SplitThreshold bytes of the table's data. It depends only on the
// threshold and the share of the data held in the heap, not on the table's
// length, so appending rows (which land at the end of the heap) changes
// only the last parts, and an unchanged table gets the same parts. Tables
// need no primary key. The last part is open-ended.
func (e *Engine) planBlocks(ctx context.Context, q queryer, t *tableInfo) ([]string, error) {
	if e.SplitThreshold <= 0 || t.size <= e.SplitThreshold {
		return []string{""}, nil
	}
	var heap, toast, blockSize int64
	if err := q.QueryRow(ctx, `SELECT pg_relation_size(c.oid, 'main'),
  coalesce(pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0),
  current_setting('block_size')::int8
FROM pg_class c WHERE c.oid = $1`, t.oid).Scan(&heap, &toast, &blockSize); err != nil {
		return nil, fmt.Errorf("read relation sizes: %w", err)
	}
	if blockSize <= 0 {
		return nil, fmt.Errorf("server reports block size %d", blockSize)
	}
	return blockWheres(heap/blockSize, heap+toast, e.SplitThreshold), nil
}

// blockWheres cuts a heap of nblocks blocks, holding dataBytes of heap and
// TOAST data, into TID ranges of about threshold bytes each (at most 4096).
func blockWheres(nblocks, dataBytes, threshold int64) []string {
	if nblocks < 2 || dataBytes <= threshold {
		return []string{""}
	}
	perPart := float64(threshold) * float64(nblocks) / float64(dataBytes)
	step := int64(1)
	for float64(step)*2 <= perPart {
		step *= 2
	}
	for (nblocks+step-1)/step > 4096 {
		step *= 2
	}
	if step >= nblocks {
		return []string{""}
	}
	tid := func(b int64) string { return "'(" + strconv.FormatInt(b, 10) + ",0)'::tid" }
	var out []string
	for lo := int64(0); lo < nblocks; lo += step {
		switch {
		case lo == 0:
			out = append(out, "ctid < "+tid(step))
		case lo+step >= nblocks:
			out = append(out, "ctid >= "+tid(lo))
		default:
			out = append(out, "ctid >= "+tid(lo)+" AND ctid < "+tid(lo+step))
		}
	}
	return out
}

// planRanges returns the WHERE clauses of a table's parts ("" = whole
// table) in key order, for PostgreSQL 12 and 13. Tables above the split threshold with a primary key are split on
// the first key column: integer keys on a grid of power-of-two steps (so
// boundaries stay put while a table grows and appended rows only change the
// last parts), other types on quantiles of a repeatable block sample.
func (e *Engine) planRanges(ctx context.Context, q queryer, t *tableInfo) ([]string, error) {
	if e.SplitThreshold <= 0 || t.size <= e.SplitThreshold || len(t.PK) == 0 {
		return []string{""}, nil
	}
	want := int((t.size + e.SplitThreshold - 1) / e.SplitThreshold)
	want = min(want, 4096)
	col := quoteIdent(t.PK[0])
	switch t.PKType {
	case "smallint", "integer", "bigint":
		var lo, hi *int64
		if err := q.QueryRow(ctx, "SELECT min("+col+")::int8, max("+col+")::int8 FROM ONLY "+t.Name).Scan(&lo, &hi); err != nil {
			return nil, err
		}
		if lo == nil || hi == nil || *lo == *hi {
			return []string{""}, nil
		}
		span := float64(*hi) - float64(*lo) + 1
		stepF := span / float64(want)
		step := int64(1)
		for float64(step)*2 <= stepF && step < math.MaxInt64/4 {
			step *= 2
		}
		for span/float64(step) > 4096 {
			step *= 2
		}
		first := floorDiv(*lo, step)*step + step
		var bounds []int64
		for b := first; b <= *hi; b += step {
			bounds = append(bounds, b)
			if b > math.MaxInt64-step {
				break
			}
		}
		return rangeWheres(col, func(i int) string { return strconv.FormatInt(bounds[i], 10) }, len(bounds)), nil
	}
	var pages float64
	if err := q.QueryRow(ctx, "SELECT relpages FROM pg_class WHERE oid = $1", t.oid).Scan(&pages); err != nil {
		return nil, err
	}
	pct := 100.0
	if pages > 0 {
		pct = math.Min(100, math.Max(0.001, 100*float64(want*50)/pages))
	}
	fracs := make([]string, 0, want-1)
	for i := 1; i < want; i++ {
		fracs = append(fracs, strconv.FormatFloat(float64(i)/float64(want), 'f', 6, 64))
	}
	if len(fracs) == 0 {
		return []string{""}, nil
	}
	var vals []*string
	err := q.QueryRow(ctx, fmt.Sprintf("SELECT (percentile_disc(ARRAY[%s]::float8[]) WITHIN GROUP (ORDER BY %s))::text[] FROM ONLY %s TABLESAMPLE SYSTEM (%s) REPEATABLE (0)",
		strings.Join(fracs, ","), col, t.Name, strconv.FormatFloat(pct, 'f', 4, 64))).Scan(&vals)
	if err != nil {
		return nil, err
	}
	var bounds []string
	for _, v := range vals {
		if v != nil && (len(bounds) == 0 || bounds[len(bounds)-1] != *v) {
			bounds = append(bounds, *v)
		}
	}
	if len(bounds) == 0 {
		return []string{""}, nil
	}
	return rangeWheres(col, func(i int) string { return quoteLiteral(bounds[i]) + "::" + t.PKType }, len(bounds)), nil
}

func rangeWheres(col string, bound func(int) string, n int) []string {
	if n == 0 {
		return []string{""}
	}
	out := make([]string, 0, n+1)
	out = append(out, col+" < "+bound(0))
	for i := 1; i < n; i++ {
		out = append(out, col+" >= "+bound(i-1)+" AND "+col+" < "+bound(i))
	}
	return append(out, col+" >= "+bound(n-1))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
