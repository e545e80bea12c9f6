package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"

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
func (e *Engine) Restore(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.RestoreOptions) error {
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
			return fmt.Errorf("table %q is not in the snapshot", t)
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
	if err := loadData(ctx, db, snap, ss, only, jobs, opts.Progress, log); err != nil {
		return err
	}
	if err := replay(ctx, db, post, opts.NoOwner); err != nil {
		return err
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

// loadData loads the data streams of the snapshot in parallel.
func loadData(ctx context.Context, db *sql.DB, snap engine.SnapshotReader, ss *snapshotSchema, only map[string]bool, jobs int, p *progress.Progress, log *slog.Logger) error {
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
	// Largest streams first.
	sortStreamsBySize(streams)

	var mu sync.Mutex
	loaded := map[string]int64{}
	parts := map[string]int{}
	for _, s := range streams {
		parts[s.Table]++
	}
	ch := make(chan manifest.Stream)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		for _, s := range streams {
			select {
			case ch <- s:
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
			for s := range ch {
				n, err := loadStream(gctx, c, snap, s, ss.table(s.Table), p)
				if err != nil {
					return fmt.Errorf("loading table %s (stream %s): %w", s.Table, s.Name, err)
				}
				mu.Lock()
				loaded[s.Table] += n
				parts[s.Table]--
				if parts[s.Table] == 0 {
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

func sortStreamsBySize(s []manifest.Stream) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Size > s[j-1].Size; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

type countingReader struct {
	r io.Reader
	p *progress.Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.AddBytes(int64(n))
	return n, err
}

// loadStream runs LOAD DATA LOCAL INFILE over one data stream and returns
// the rows the server took.
func loadStream(ctx context.Context, c *sql.Conn, snap engine.SnapshotReader, s manifest.Stream, t *table, p *progress.Progress) (int64, error) {
	if s.Size == 0 {
		return 0, nil
	}
	r, err := snap.Open(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("opening stream: %w", err)
	}
	defer r.Close()
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return 0, fmt.Errorf("naming reader: %w", err)
	}
	name := "snapdata-" + hex.EncodeToString(id[:])
	lines := &lineCounter{r: bufio.NewReaderSize(&countingReader{r: r, p: p}, 256<<10)}
	mysql.RegisterReaderHandler(name, func() io.Reader { return lines })
	defer mysql.DeregisterReaderHandler(name)
	res, err := c.ExecContext(ctx, t.loadSQL(name))
	if err != nil {
		return 0, localInfileHint(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	p.AddRows(n)
	if n != lines.n {
		return n, fmt.Errorf("the server took %d of %d rows (duplicate keys or bad values)", n, lines.n)
	}
	return n, nil
}

// lineCounter counts the rows (newlines) passing through.
type lineCounter struct {
	r io.Reader
	n int64
}

func (l *lineCounter) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.n += int64(bytes.Count(b[:n], []byte{'\n'}))
	return n, err
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
