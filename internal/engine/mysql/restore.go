package mysql

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// snapshotSchema is what a restore or export needs from a snapshot's meta
// and schema streams.
type snapshotSchema struct {
	meta   dbMeta
	tables []*table
	pre    []stmt
	post   []stmt
}

func readSnapshotSchema(ctx context.Context, snap engine.SnapshotReader) (*snapshotSchema, error) {
	m := snap.Manifest()
	if m == nil {
		return nil, fmt.Errorf("snapshot has no manifest")
	}
	if m.Engine != "" && m.Engine != dsn.MySQL {
		return nil, fmt.Errorf("snapshot is from engine %q, not mysql", m.Engine)
	}
	s := &snapshotSchema{}
	b, err := readStream(ctx, snap, "meta/database")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.meta); err != nil {
		return nil, fmt.Errorf("decoding meta/database: %w", err)
	}
	if b, err = readStream(ctx, snap, "meta/columns"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.tables); err != nil {
		return nil, fmt.Errorf("decoding meta/columns: %w", err)
	}
	for _, name := range []string{"schema/pre", "schema/post"} {
		b, err := readStream(ctx, snap, name)
		if err != nil {
			return nil, err
		}
		var list []stmt
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var st stmt
			if err := json.Unmarshal(line, &st); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", name, err)
			}
			list = append(list, st)
		}
		if name == "schema/pre" {
			s.pre = list
		} else {
			s.post = list
		}
	}
	return s, nil
}

func (s *snapshotSchema) table(name string) *table {
	for _, t := range s.tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Restore loads a snapshot into target.
//
// Without opts.Tables the target database must be empty (or opts.Clean,
// which drops and recreates it); the whole schema is replayed. With
// opts.Tables only those tables are created and loaded, with their
// triggers; views, routines and events are skipped (they may name tables
// that are not restored). An existing chosen table is refused unless
// opts.Clean, which drops just that table.
func (e *Engine) restore(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.RestoreOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := target.Database()
	if name == "" {
		return fmt.Errorf("restore target %s names no database", target)
	}
	ss, err := readSnapshotSchema(ctx, snap)
	if err != nil {
		return err
	}
	only := map[string]bool{}
	for _, t := range opts.Tables {
		if ss.table(t) == nil {
			return engine.NoSuchTable("table %q is not in the snapshot", t)
		}
		only[t] = true
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}

	if err := prepareTarget(ctx, target, ss.meta, opts, log); err != nil {
		return err
	}
	// From here on the target holds part of the snapshot when a step fails.
	defer func() { err = engine.TargetChanged(err) }()

	db, err := open(ctx, target, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(jobs)
	db.SetMaxIdleConns(jobs)

	var pre, post []stmt
	for _, st := range ss.pre {
		if len(only) == 0 || only[st.Name] {
			pre = append(pre, st)
		}
	}
	for _, st := range ss.post {
		if len(only) == 0 || (st.Type == "trigger" && only[st.Table]) || (st.Type == "setval" && only[st.Name]) {
			post = append(post, st)
		}
	}
	if err := replay(ctx, db, pre, opts.NoOwner); err != nil {
		return err
	}
	if err := loadData(ctx, db, snap, ss, only, jobs, e.statsHoldBytes(), opts.Progress, log); err != nil {
		return err
	}
	if err := replay(ctx, db, post, opts.NoOwner); err != nil {
		return err
	}
	if len(only) > 0 {
		if err := checkInboundFKs(ctx, db, name, only, log); err != nil {
			return err
		}
	}
	if !opts.NoPrivileges {
		if err := restoreGrants(ctx, db, ss.meta.Grants, name, only, log); err != nil {
			return err
		}
	}
	return nil
}

// prepareTarget creates the target database or checks that it may be
// written.
func prepareTarget(ctx context.Context, target *dsn.DSN, meta dbMeta, opts engine.RestoreOptions, log *slog.Logger) error {
	name := target.Database()
	none := ""
	admin, err := open(ctx, target, &none)
	if err != nil {
		return err
	}
	defer admin.Close()
	create := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(name)
	if meta.Charset != "" {
		create += " CHARACTER SET " + meta.Charset
	}
	if meta.Collation != "" {
		create += " COLLATE " + meta.Collation
	}
	var n int
	if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		return fmt.Errorf("checking restore target %s: %w", name, err)
	}
	if n == 0 {
		if _, err := admin.ExecContext(ctx, create); err != nil {
			return fmt.Errorf("creating database %s: %w", name, err)
		}
		return nil
	}
	if len(opts.Tables) > 0 {
		var existing []string
		for _, t := range opts.Tables {
			var c int
			if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", name, t).Scan(&c); err != nil {
				return fmt.Errorf("checking restore target %s: %w", name, err)
			}
			if c > 0 {
				existing = append(existing, t)
			}
		}
		if len(existing) == 0 {
			return nil
		}
		if !opts.Clean {
			return fmt.Errorf("database %s already has table(s) %v: %w", name, existing, engine.ErrTargetNotEmpty)
		}
		c, err := admin.Conn(ctx)
		if err != nil {
			return fmt.Errorf("cleaning restore target %s: %w", name, err)
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
			return fmt.Errorf("cleaning restore target %s: %w", name, err)
		}
		for _, t := range existing {
			log.Info("dropping table before restore (--clean)", "database", name, "table", t)
			if _, err := c.ExecContext(ctx, "DROP TABLE "+quoteIdent(name)+"."+quoteIdent(t)); err != nil {
				return fmt.Errorf("dropping table %s.%s: %w", name, t, err)
			}
		}
		return nil
	}
	var objects int
	err = admin.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?)
		+ (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)
		+ (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)`, name, name, name).Scan(&objects)
	if err != nil {
		return fmt.Errorf("checking restore target %s: %w", name, err)
	}
	if objects == 0 {
		return nil
	}
	if !opts.Clean {
		return fmt.Errorf("database %s holds %d tables, views or routines: %w", name, objects, engine.ErrTargetNotEmpty)
	}
	log.Info("dropping and recreating database before restore (--clean)", "database", name)
	if _, err := admin.ExecContext(ctx, "DROP DATABASE "+quoteIdent(name)); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	if _, err := admin.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// replay runs schema statements on one connection, each in its recorded
// session context.
func replay(ctx context.Context, db *sql.DB, stmts []stmt, noOwner bool) error {
	if len(stmts) == 0 {
		return nil
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("opening connection for schema: %w", err)
	}
	defer c.Close()
	for _, q := range []string{"SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("preparing schema session (%s): %w", q, err)
		}
	}
	for _, st := range stmts {
		var setup []string
		if st.Charset != "" {
			setup = append(setup, "SET NAMES "+st.Charset+collateClause(st.Charset, st.Collation))
		}
		if st.Type == "procedure" || st.Type == "function" || st.Type == "trigger" || st.Type == "event" {
			setup = append(setup, "SET SESSION sql_mode = "+quoteString(st.SQLMode))
		}
		if st.TimeZone != "" {
			setup = append(setup, "SET SESSION time_zone = "+quoteString(st.TimeZone))
		}
		for _, q := range setup {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating %s %s (%s): %w", st.Type, st.Name, q, err)
			}
		}
		q := st.SQL
		if noOwner {
			q = stripDefiner(q)
		}
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating %s %s: %w", st.Type, st.Name, err)
		}
		if len(setup) > 0 {
			for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'", "SET SESSION time_zone = '+00:00'"} {
				if _, err := c.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("resetting session after %s %s: %w", st.Type, st.Name, err)
				}
			}
		}
	}
	return nil
}

func collateClause(charset, collation string) string {
	if collation == "" {
		return ""
	}
	return " COLLATE " + collation
}

// loadUnit is what one load session sends in one LOAD DATA statement: the
// streams of one table, in part (key) order, read back to back.
type loadUnit struct {
	table   *table
	streams []manifest.Stream
	size    int64 // bytes of the streams
	cost    int64 // loadCost
}

// loadUnits groups the data streams to load. With bulk, a table's parts
// become one unit: MariaDB 10.6+ loads a statement into an empty InnoDB
// table in bulk (one undo record, indexes built by sorting at the end), but
// only the first statement; a second part loaded after it, or beside it,
// takes the row-by-row path at a third of the speed. Without bulk every
// stream is a unit, so the parts of a large table load in parallel. Units
// come costliest first, so the longest ones start early (the cost is in
// loadCost).
func loadUnits(streams []manifest.Stream, ss *snapshotSchema, rows map[string]int64, bulk bool) []loadUnit {
	var units []loadUnit
	byTable := map[string]int{}
	for _, s := range streams {
		if i, ok := byTable[s.Table]; ok && bulk {
			units[i].streams = append(units[i].streams, s)
			units[i].size += s.Size
			continue
		}
		byTable[s.Table] = len(units)
		units = append(units, loadUnit{table: ss.table(s.Table), streams: []manifest.Stream{s}, size: s.Size})
	}
	tableBytes := map[string]int64{}
	for _, s := range streams {
		tableBytes[s.Table] += s.Size
	}
	for i := range units {
		u := &units[i]
		slices.SortStableFunc(u.streams, func(a, b manifest.Stream) int { return cmp.Compare(a.Part, b.Part) })
		u.cost = u.size
		if b := tableBytes[u.table.Name]; b > 0 {
			// A part's rows, in proportion to its bytes.
			u.cost = loadCost(u.size, int64(float64(rows[u.table.Name])*float64(u.size)/float64(b)))
		}
	}
	slices.SortFunc(units, func(a, b loadUnit) int {
		return cmp.Or(cmp.Compare(b.cost, a.cost), cmp.Compare(a.streams[0].Name, b.streams[0].Name))
	})
	return units
}

// loadCost estimates the server's work to load a unit, in bytes: InnoDB
// spends about as much on a row (its index entries, the row header) as on
// 200 bytes of its text. Fitted on the bench dataset on MariaDB 10.11 (five
// tables from 40 to 400 bytes a row: 0.012 s/MB plus 2.6 µs a row, within
// 10 %). Only the order of the units depends on it.
func loadCost(bytes, rows int64) int64 {
	return bytes + 200*rows
}

// bulkLoadsEmptyTables reports whether the server loads one statement into
// an empty InnoDB table in bulk when unique_checks and foreign_key_checks
// are off: MariaDB 10.6 and later (MDEV-515, MDEV-24621).
func bulkLoadsEmptyTables(version string) bool {
	// MariaDB 10 announces itself as "5.5.5-10.x" in the protocol handshake;
	// some proxies pass that on as VERSION().
	version = strings.TrimPrefix(version, "5.5.5-")
	i := strings.Index(strings.ToLower(version), "-mariadb")
	if i < 0 {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(version[:i], "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 10 || major == 10 && minor >= 6
}

// loadData loads the data streams of the snapshot in parallel.
func loadData(ctx context.Context, db *sql.DB, snap engine.SnapshotReader, ss *snapshotSchema, only map[string]bool, jobs int, holdBytes int64, p *progress.Progress, log *slog.Logger) error {
	m := snap.Manifest()
	var streams []manifest.Stream
	for _, s := range m.StreamsOf(manifest.KindData) {
		if len(only) == 0 || only[s.Table] {
			if ss.table(s.Table) == nil {
				return fmt.Errorf("data stream %s: table %s is not in meta/columns", s.Name, s.Table)
			}
			streams = append(streams, s)
		}
	}
	tableCount := 0
	for _, t := range ss.tables {
		if len(only) == 0 || only[t.Name] {
			tableCount++
		}
	}
	p.AddTables(tableCount)
	var total int64
	for _, s := range streams {
		total += s.Size
	}
	p.SetTotalBytes(total)

	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("reading the server version: %w", err)
	}
	bulk := bulkLoadsEmptyTables(version)
	rows := map[string]int64{}
	for _, t := range m.Tables {
		rows[t.Name] = t.Rows
	}
	units := loadUnits(streams, ss, rows, bulk)
	held, err := holdStatsRecalc(ctx, db, units, holdBytes, log)
	if err != nil {
		return err
	}
	// A failed or interrupted load must not leave tables without automatic
	// statistics: give the held ones their default back (no ANALYZE; the
	// restore failed and the caller says so).
	defer func() {
		if len(held) == 0 {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for name := range held {
			if err := defaultStatsRecalc(cctx, db, name); err != nil {
				log.Warn("table left with STATS_AUTO_RECALC = 0 after the failed restore; run ALTER TABLE … STATS_AUTO_RECALC = DEFAULT", "table", name, "error", err)
			}
		}
	}()
	log.Debug("loading data", "units", len(units), "streams", len(streams), "bulk", bulk, "jobs", jobs)

	var mu sync.Mutex
	loaded := map[string]int64{}
	parts := map[string]int{}
	for _, s := range streams {
		parts[s.Table]++
	}
	ch := make(chan loadUnit)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		for _, u := range units {
			select {
			case ch <- u:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for i := 0; i < jobs; i++ {
		g.Go(func() error {
			c, err := db.Conn(gctx)
			if err != nil {
				return fmt.Errorf("opening load connection: %w", err)
			}
			defer c.Close()
			for _, q := range []string{"SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0"} {
				if _, err := c.ExecContext(gctx, q); err != nil {
					return fmt.Errorf("preparing load session (%s): %w", q, err)
				}
			}
			if _, err := c.ExecContext(gctx, "SET SESSION sql_log_bin = 0"); err != nil {
				log.Debug("cannot disable binary logging for the restore session", "error", err)
			}
			for u := range ch {
				n, err := loadUnitData(gctx, c, snap, u, p)
				if err != nil {
					return fmt.Errorf("loading table %s (%s): %w", u.table.Name, u.describe(), err)
				}
				mu.Lock()
				loaded[u.table.Name] += n
				parts[u.table.Name] -= len(u.streams)
				if parts[u.table.Name] == 0 {
					p.TableDone()
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Not as each table finishes: the ALTER of a table waits for the bulk
	// loads of the tables whose foreign keys point at it.
	for _, u := range units {
		if held[u.table.Name] {
			if err := releaseStatsRecalc(ctx, db, u.table.Name); err != nil {
				return err
			}
			delete(held, u.table.Name)
		}
	}
	for _, t := range m.Tables {
		if len(only) > 0 && !only[t.Name] {
			continue
		}
		if loaded[t.Name] != t.Rows {
			return fmt.Errorf("loading table %s: the server took %d rows, the snapshot has %d (see SHOW WARNINGS)", t.Name, loaded[t.Name], t.Rows)
		}
	}
	return nil
}

func (u loadUnit) describe() string {
	if len(u.streams) == 1 {
		return "stream " + u.streams[0].Name
	}
	return fmt.Sprintf("%d streams %s…%s", len(u.streams), u.streams[0].Name, u.streams[len(u.streams)-1].Name)
}

// holdStatsRecalc turns off InnoDB's automatic statistics recalculation on
// the tables about to be loaded with at least minBytes of data and returns
// those it changed. While a table
// fills, the server's background thread recalculates its persistent
// statistics again and again (each time a tenth of its rows changed): on a
// 2-core MariaDB 10.11 that doubled the server CPU of a load (35 against
// 17 CPU-s for 5.8 million rows). Tables whose definition sets
// STATS_AUTO_RECALC or STATS_PERSISTENT=0 are left alone. releaseStatsRecalc
// puts the default back and analyzes the table once it is loaded.
func holdStatsRecalc(ctx context.Context, db *sql.DB, units []loadUnit, minBytes int64, log *slog.Logger) (map[string]bool, error) {
	size := map[string]int64{}
	for _, u := range units {
		size[u.table.Name] += u.size
	}
	want := map[string]bool{}
	for name, n := range size {
		if n >= minBytes {
			want[name] = true
		}
	}
	if len(want) == 0 {
		return map[string]bool{}, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT TABLE_NAME, COALESCE(ENGINE, ''), COALESCE(CREATE_OPTIONS, '')
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'`)
	if err != nil {
		return nil, fmt.Errorf("reading the restored tables' options: %w", err)
	}
	var names []string
	for rows.Next() {
		var name, eng, opts string
		if err := rows.Scan(&name, &eng, &opts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the restored tables' options: %w", err)
		}
		opts = strings.ToLower(opts)
		if want[name] && strings.EqualFold(eng, "InnoDB") && !strings.Contains(opts, "stats_auto_recalc") && !strings.Contains(opts, "stats_persistent=0") {
			names = append(names, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the restored tables' options: %w", err)
	}
	held := map[string]bool{}
	for _, name := range names {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+quoteIdent(name)+" STATS_AUTO_RECALC = 0"); err != nil {
			log.Debug("cannot turn off statistics recalculation during the load", "table", name, "error", err)
			continue
		}
		held[name] = true
	}
	return held, nil
}

// releaseStatsRecalc gives a loaded table its default STATS_AUTO_RECALC
// back (a metadata change) and computes its statistics once.
func releaseStatsRecalc(ctx context.Context, c querier, name string) error {
	if err := defaultStatsRecalc(ctx, c, name); err != nil {
		return err
	}
	rows, err := c.QueryContext(ctx, "ANALYZE TABLE "+quoteIdent(name))
	if err != nil {
		return fmt.Errorf("analyzing table %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var tbl, op, typ, text sql.NullString
		if err := rows.Scan(&tbl, &op, &typ, &text); err != nil {
			return fmt.Errorf("analyzing table %s: %w", name, err)
		}
		if strings.EqualFold(typ.String, "error") {
			return fmt.Errorf("analyzing table %s: %s", name, text.String)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analyzing table %s: %w", name, err)
	}
	return nil
}

// defaultStatsRecalc gives a table its default STATS_AUTO_RECALC back.
func defaultStatsRecalc(ctx context.Context, c querier, name string) error {
	if _, err := c.ExecContext(ctx, "ALTER TABLE "+quoteIdent(name)+" STATS_AUTO_RECALC = DEFAULT"); err != nil {
		return fmt.Errorf("restoring STATS_AUTO_RECALC of table %s after the load: %w", name, err)
	}
	return nil
}

// unitReader reads the streams of a unit one after another, opening each
// when the previous one ends.
type unitReader struct {
	ctx     context.Context
	snap    engine.SnapshotReader
	streams []manifest.Stream
	cur     io.ReadCloser
	err     error
}

func (r *unitReader) Read(b []byte) (int, error) {
	for r.err == nil {
		if r.cur == nil {
			if len(r.streams) == 0 {
				return 0, io.EOF
			}
			s := r.streams[0]
			r.streams = r.streams[1:]
			cur, err := r.snap.Open(r.ctx, s)
			if err != nil {
				r.err = fmt.Errorf("opening stream %s: %w", s.Name, err)
				break
			}
			r.cur = cur
		}
		n, err := r.cur.Read(b)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			err = nil
		}
		if err != nil {
			r.err = err
			break
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

func (r *unitReader) Close() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}

// loadUnitData runs one LOAD DATA LOCAL INFILE over the streams of a unit
// and returns the rows the server took.
func loadUnitData(ctx context.Context, c *sql.Conn, snap engine.SnapshotReader, u loadUnit, p *progress.Progress) (int64, error) {
	var streams []manifest.Stream
	for _, s := range u.streams {
		if s.Size > 0 {
			streams = append(streams, s)
		}
	}
	if len(streams) == 0 {
		return 0, nil
	}
	r := &unitReader{ctx: ctx, snap: snap, streams: streams}
	defer r.Close()
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return 0, fmt.Errorf("naming reader: %w", err)
	}
	name := "snapdata-" + hex.EncodeToString(id[:])
	lines := newRowSplitter(p.Reader(r))
	mysql.RegisterReaderHandler(name, func() io.Reader { return lines })
	defer mysql.DeregisterReaderHandler(name)
	var n int64
	for {
		res, err := c.ExecContext(ctx, u.table.loadSQL(name))
		if r.err != nil && r.err != io.EOF {
			// The driver reports a failed reader as a generic error; ours
			// says which stream.
			return 0, r.err
		}
		if err != nil {
			return 0, localInfileHint(err)
		}
		if lines.err != nil {
			return 0, lines.err
		}
		took, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += took
		p.AddRows(took)
		if !lines.big {
			break
		}
		// A row too long for LOAD DATA stopped the load: insert it, then
		// load the rows after it.
		if err := lines.insertBigRow(ctx, c, u.table); err != nil {
			return 0, err
		}
		n++
		p.AddRows(1)
		lines.big = false
	}
	if n != lines.n {
		return n, fmt.Errorf("the server took %d of %d rows (duplicate keys or bad values)", n, lines.n)
	}
	return n, nil
}

// localInfileHint explains the errors of a server that refuses LOAD DATA
// LOCAL (MySQL 8 ships with local_infile=OFF).
func localInfileHint(err error) error {
	switch mysqlErr(err) {
	case 1148, 3948, 2068:
		return fmt.Errorf("%w (snapdata loads rows with LOAD DATA LOCAL INFILE: enable it on the server with SET GLOBAL local_infile = 1)", err)
	}
	return err
}
