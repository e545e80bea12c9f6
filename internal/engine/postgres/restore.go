package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

// snapshotMeta is what Restore, ExportSQL and the RowReader need besides
// the data streams.
type snapshotMeta struct {
	cols columnsMeta
	seqs []sequenceValue
}

func readStream(ctx context.Context, snap engine.SnapshotReader, name string) ([]byte, bool, error) {
	for _, st := range snap.Manifest().Streams {
		if st.Name != name {
			continue
		}
		r, err := snap.Open(ctx, st)
		if err != nil {
			return nil, true, fmt.Errorf("open stream %s: %w", name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, true, fmt.Errorf("read stream %s: %w", name, err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

func loadSnapshotMeta(ctx context.Context, snap engine.SnapshotReader) (*snapshotMeta, error) {
	if m := snap.Manifest(); m == nil || m.Engine != dsn.Postgres {
		eng := ""
		if m != nil {
			eng = m.Engine
		}
		return nil, fmt.Errorf("snapshot is from engine %q, not postgres", eng)
	}
	var sm snapshotMeta
	b, ok, err := readStream(ctx, snap, streamColumns)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("snapshot has no %s stream", streamColumns)
	}
	if err := json.Unmarshal(b, &sm.cols); err != nil {
		return nil, fmt.Errorf("decode %s: %w", streamColumns, err)
	}
	b, ok, err = readStream(ctx, snap, streamSequences)
	if err != nil {
		return nil, err
	}
	if ok {
		if err := json.Unmarshal(b, &sm.seqs); err != nil {
			return nil, fmt.Errorf("decode %s: %w", streamSequences, err)
		}
	}
	return &sm, nil
}

// dumpEntry is one TOC entry of pg_dump's plain output.
type dumpEntry struct {
	Type   string // "TABLE", "INDEX", "FK CONSTRAINT", "ACL", …
	Title  string // the "-- Name: …" line
	Body   string
	Prefix string // session settings in effect before the entry
}

var (
	entryTypeRE = regexp.MustCompile(`; Type: ([A-Z][A-Z ]*); Schema: `)
	setLineRE   = regexp.MustCompile(`(?m)^(SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\(.*\);)$`)
	setNameRE   = regexp.MustCompile(`^(?:SET ([a-z_]+)|SELECT pg_catalog\.set_config\('([a-z_]+)')`)
	ownerLineRE = regexp.MustCompile(`(?m)^ALTER [A-Z ]+ .* OWNER TO .*;\n`)
	fkRE        = regexp.MustCompile(`(?s)(ADD CONSTRAINT .*? FOREIGN KEY .*?);`)
)

// parseDump splits a pg_dump plain section into its header (the session
// settings) and entries.
func parseDump(sql string) (header string, entries []dumpEntry) {
	const marker = "\n--\n-- Name: "
	idx := strings.Index(sql, marker)
	if idx < 0 {
		return sql, nil
	}
	header = sql[:idx+1]
	state := map[string]string{}
	var order []string
	applySets := func(s string) {
		for _, l := range setLineRE.FindAllString(s, -1) {
			m := setNameRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			k := m[1] + m[2]
			if _, seen := state[k]; !seen {
				order = append(order, k)
			}
			state[k] = l
		}
	}
	applySets(header)
	rest := sql[idx+1:]
	for len(rest) > 0 {
		next := strings.Index(rest[1:], marker)
		var body string
		if next < 0 {
			body, rest = rest, ""
		} else {
			body, rest = rest[:next+2], rest[next+2:]
		}
		e := dumpEntry{Body: body}
		if i := strings.Index(body, "-- Name: "); i >= 0 {
			line := body[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			e.Title = strings.TrimPrefix(line, "-- ")
			if m := entryTypeRE.FindStringSubmatch(line); m != nil {
				e.Type = m[1]
			}
		}
		var p strings.Builder
		for _, k := range order {
			p.WriteString(state[k])
			p.WriteByte('\n')
		}
		e.Prefix = p.String()
		entries = append(entries, e)
		applySets(body)
	}
	return header, entries
}

// filterEntries applies --no-owner and --no-privileges.
func filterEntries(entries []dumpEntry, noOwner, noPriv bool) []dumpEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if noPriv && (e.Type == "ACL" || e.Type == "DEFAULT ACL") {
			continue
		}
		if noOwner {
			e.Body = ownerLineRE.ReplaceAllString(e.Body, "")
		}
		out = append(out, e)
	}
	return out
}

func execSQL(ctx context.Context, c *pgx.Conn, sql string) error {
	_, err := c.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// Restore implements engine.Engine.
func (e *Engine) Restore(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.RestoreOptions) (err error) {
	jobs := defaultJobs(opts.Jobs)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	sm, err := loadSnapshotMeta(ctx, snap)
	if err != nil {
		return err
	}
	sel, err := selectTables(sm.cols.Tables, opts.Tables)
	if err != nil {
		return err
	}
	partial := len(opts.Tables) > 0
	pre, _, err := readStream(ctx, snap, streamPre)
	if err != nil {
		return err
	}
	post, _, err := readStream(ctx, snap, streamPost)
	if err != nil {
		return err
	}
	var tt *tableTarget
	if partial {
		if tt, err = prepareTargetTables(ctx, target, sel, opts.Clean, opts.Logger); err != nil {
			return err
		}
	} else if err := prepareTarget(ctx, target, opts.Clean); err != nil {
		return err
	}
	// From here on the target holds part of the snapshot when a step
	// fails; foreign keys dropped to replace chosen tables are named with
	// the statements that add them back.
	fksBack := false
	defer func() {
		if err == nil {
			return
		}
		if tt != nil && len(tt.inbound) > 0 && !fksBack {
			var b strings.Builder
			for _, fk := range tt.inbound {
				fmt.Fprintf(&b, " ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID;", fk.table, quoteIdent(fk.name), fk.def)
			}
			err = fmt.Errorf("%w; foreign keys of other tables that reference the chosen tables were dropped and not added back:%s", err, b.String())
		}
		err = engine.TargetChanged(err)
	}()
	conn, err := connect(ctx, target, false)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	opts.Logger.Debug("postgres restore: target ready", "elapsed", time.Since(start))
	older := olderTarget(snap.Manifest().EngineVersion, conn.PgConn().ParameterStatus("server_version"))
	if older != "" {
		opts.Logger.Warn("restoring into an older PostgreSQL: " + older)
	}
	// withCause adds, to an error of the schema or the task graph, that the
	// target is older than the snapshot's source: the likely cause.
	withCause := func(err error) error {
		if older != "" {
			return fmt.Errorf("%w (%s)", err, older)
		}
		return err
	}
	schemaErr := func(what string, err error) error {
		return withCause(fmt.Errorf("restore schema %s: %w", what, err))
	}
	// pre-data, entry by entry on one session.
	preHeader, preEntries := parseDump(string(pre))
	if err := execSQL(ctx, conn, preHeader); err != nil {
		return schemaErr("(pre-data settings)", err)
	}
	preEntries = filterEntries(preEntries, opts.NoOwner, opts.NoPrivileges)
	var cs *chosenSchema
	shared := map[int]bool{}
	if partial {
		cs = newChosenSchema(sel, preEntries, tt.existing)
		preEntries, shared = cs.filterPre(preEntries)
	}
	kept := map[string]bool{} // shared objects the target had: their comments and grants stay the target's
	for i, en := range preEntries {
		if partial && (en.Type == "COMMENT" || en.Type == "ACL" || en.Type == "SECURITY LABEL") {
			if name, schema := entryName(en.Title); kept[schema+"\x00"+name] {
				continue
			}
		}
		if err := execSQL(ctx, conn, en.Body); err != nil {
			if shared[i] && sharedDuplicate(err) {
				opts.Logger.Debug("restoring chosen tables: kept the target's own", "object", en.Title)
				name, schema := entryName(en.Title)
				kept[schema+"\x00"+en.Type+" "+name] = true
				continue
			}
			return schemaErr(fmt.Sprintf("entry %q", en.Title), err)
		}
	}

	for _, s := range sm.seqs {
		if partial && !cs.seqs[s.Name] {
			continue
		}
		if _, err := conn.Exec(ctx, "SELECT pg_catalog.setval($1::regclass, $2, $3)", s.Name, s.LastValue, s.IsCalled); err != nil {
			return fmt.Errorf("set sequence %s: %w", s.Name, err)
		}
	}

	postHeader, postEntries := parseDump(string(post))
	postEntries = filterEntries(postEntries, opts.NoOwner, opts.NoPrivileges)
	if partial {
		postEntries = cs.filterPost(postEntries)
		if len(cs.skippedFKs) > 0 {
			opts.Logger.Warn("restoring chosen tables only: foreign keys to tables that are not there are not added", "foreign_keys", cs.skippedFKs)
		}
	}
	// The tables pre-data made: their kinds and partitions.
	rels, err := targetRelations(ctx, conn)
	if err != nil {
		return err
	}
	if !opts.TextCopy {
		if rels.columns, err = columnTypes(ctx, conn); err != nil {
			return err
		}
	}
	if partial {
		// Not every table has its rows: keep foreign keys for new rows but
		// do not check the restored ones. PostgreSQL up to 17 refuses NOT
		// VALID foreign keys on partitioned tables, and checking them would
		// fail on the rows whose referenced rows were not restored: those
		// are left out, by name.
		kept := postEntries[:0]
		var skipped []string
		for _, en := range postEntries {
			if en.Type == entryFK {
				if from, name, _, ok := parseFK(stripComments(en.Body)); ok && rels.kinds[from] == 'p' {
					skipped = append(skipped, from+"."+name)
					continue
				}
				en.Body = fkRE.ReplaceAllString(en.Body, "$1 NOT VALID;")
			}
			kept = append(kept, en)
		}
		postEntries = kept
		opts.Logger.Warn("restoring chosen tables only: foreign keys are added NOT VALID", "tables", len(sel))
		if len(skipped) > 0 {
			opts.Logger.Warn("restoring chosen tables only: foreign keys of partitioned tables are not added (PostgreSQL cannot add them NOT VALID)", "foreign_keys", skipped)
		}
	}
	var par, seq []dumpEntry
	for _, en := range postEntries {
		switch en.Type {
		case entryIndex, entryConstraint, entryIndexAttach, entryFK:
			par = append(par, en)
		default:
			seq = append(seq, en)
		}
	}
	ss, err := restoreSessionSettings(ctx, conn)
	if err != nil {
		return err
	}
	opts.Logger.Debug("postgres restore: pre-data done", "elapsed", time.Since(start))
	if err := e.runGraph(ctx, rels, snap, target, sel, par, postHeader, jobs, !partial, ss, opts); err != nil {
		return withCause(err)
	}
	opts.Logger.Debug("postgres restore: data, indexes, keys and foreign keys done", "elapsed", time.Since(start))
	if err := execSQL(ctx, conn, postHeader); err != nil {
		return schemaErr("(post-data settings)", err)
	}
	for _, en := range seq {
		if err := execSQL(ctx, conn, en.Body); err != nil {
			return schemaErr(fmt.Sprintf("entry %q", en.Title), err)
		}
	}
	if partial {
		for _, en := range cs.attachLater {
			if err := execSQL(ctx, conn, en.Body); err != nil {
				return schemaErr(fmt.Sprintf("entry %q", en.Title), err)
			}
		}
		if err := addBackInbound(ctx, conn, tt.inbound, opts.Logger); err != nil {
			return err
		}
		fksBack = true
	}
	opts.Logger.Debug("postgres restore done", "database", target.Database(), "tables", len(sel), "elapsed", time.Since(start))
	return nil
}

// olderTarget compares the major version of the snapshot's source with the
// target's (both as server_version reads, e.g. "15.18 (Debian
// 15.18-0+deb12u1)") and, when the target is older, says so: pg_dump's
// schema is made for a server of the same or a newer version, so a
// statement may use what the older one lacks. "" when the target is not
// older or either version is unknown.
func olderTarget(sourceVersion, targetVersion string) string {
	src, tgt := leadingInt(sourceVersion), leadingInt(targetVersion)
	if src == 0 || tgt == 0 || tgt >= src {
		return ""
	}
	return fmt.Sprintf("the snapshot comes from PostgreSQL %d and this server is PostgreSQL %d: "+
		"pg_dump writes the schema for a server of the same or a newer version", src, tgt)
}

// leadingInt reads the number a string starts with (0 if none).
func leadingInt(s string) int {
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1e6; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// selectTables returns the chosen tables (all when names is empty).
func selectTables(all []*tableInfo, names []string) ([]*tableInfo, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []*tableInfo
	seen := map[string]bool{}
	for _, n := range names {
		t := findTable(all, n)
		if t == nil {
			return nil, engine.NoSuchTable("table %s is not in the snapshot", n)
		}
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// countingReader counts bytes and rows of restored data.
type countingReader struct {
	r io.Reader
	p *progress.Progress
	n *counts // this load's, kept to take back if it is redone
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		rows := int64(bytes.Count(b[:n], []byte{'\n'}))
		c.n.rows += rows
		c.n.bytes += int64(n)
		c.p.AddBytes(int64(n))
		c.p.AddRows(rows)
	}
	return n, err
}

// runGraph loads the chosen tables' rows and runs the scheduled post-data
// entries (indexes, keys, index attachments, foreign keys) as one
// dependency graph on jobs sessions (see schedule.go).
func (e *Engine) runGraph(ctx context.Context, rels relations, snap engine.SnapshotReader, target *dsn.DSN,
	tabs []*tableInfo, post []dumpEntry, postHeader string, jobs int, validateFKs bool, ss sessionSettings, opts engine.RestoreOptions) error {
	p := opts.Progress
	in := planInput{post: post, partitions: rels.partitions, validateFKs: validateFKs, kinds: rels.kinds, jobs: jobs,
		colTypes: map[string]map[string]string{}, sortMem: ss.maintenanceWorkMem}
	for _, t := range tabs {
		types := map[string]string{}
		for _, c := range t.Columns {
			types[c.Name] = c.Type
		}
		in.colTypes[t.Name] = types
	}
	streams := map[string][]manifest.Stream{}
	var total int64
	for _, t := range tabs {
		sts := snap.Manifest().TableStreams(t.Name)
		if len(sts) == 0 {
			continue
		}
		var n int64
		parts := make([]int64, len(sts))
		for i, st := range sts {
			parts[i] = st.Size
			n += st.Size
		}
		total += n
		streams[t.Name] = sts
		var rows int64
		if mt, ok := snap.Manifest().Table(t.Name); ok {
			rows = mt.Rows
		}
		in.data = append(in.data, dataLoad{table: t.Name, bytes: n, rows: rows, parts: parts})
	}
	p.AddTables(len(tabs))
	p.SetTotalBytes(total)
	for _, t := range tabs {
		if len(streams[t.Name]) == 0 {
			p.TableDone()
		}
	}
	plan := planRestore(in)
	conns := make([]*pgx.Conn, jobs)
	for _, t := range tabs {
		var codecs []fieldCodec
		if k := rels.kinds[t.Name]; (k == 'r' || k == 'p') && !opts.TextCopy {
			codecs = binaryCodecs(t, rels.columns[t.Name])
		}
		pts := plan.parts[t.Name]
		left := new(atomic.Int64)
		left.Store(int64(len(pts)))
		for i, lt := range pts {
			lt.run = func(ctx context.Context, w int) error {
				if err := loadTable(ctx, conns[w], snap, t, streams[t.Name][i:i+1], false, codecs, p, opts.Logger); err != nil {
					return fmt.Errorf("restore table %s: %w", t.Name, err)
				}
				if left.Add(-1) == 0 {
					p.TableDone()
				}
				return nil
			}
		}
		lt := plan.data[t.Name]
		if lt == nil {
			continue
		}
		// COPY FREEZE needs the table created or truncated in the same
		// transaction; every table here was created empty by this
		// restore's pre-data, so TRUNCATE ONLY costs nothing. Not on
		// partitioned tables (COPY FREEZE refuses them) or anything else
		// that is not a plain table.
		freeze := rels.kinds[t.Name] == 'r'
		lt.run = func(ctx context.Context, w int) error {
			if err := loadTable(ctx, conns[w], snap, t, streams[t.Name], freeze, codecs, p, opts.Logger); err != nil {
				return fmt.Errorf("restore table %s: %w", t.Name, err)
			}
			p.TableDone()
			return nil
		}
	}
	prefix := make([]string, jobs) // session settings last sent on each worker
	helpers := make([]int, jobs)   // max_parallel_maintenance_workers last set on each worker
	for w := range helpers {
		helpers[w] = -1
	}
	for _, lt := range plan.tasks {
		ts, ok := plan.sql[lt]
		if !ok {
			continue
		}
		lt.run = func(ctx context.Context, w int) error {
			// Settings only when they change, so that the server's log
			// shows the statement itself.
			if ts.prefix != prefix[w] {
				if err := execSQL(ctx, conns[w], ts.prefix); err != nil {
					return fmt.Errorf("restore %s (session settings): %w", lt.name, err)
				}
				prefix[w] = ts.prefix
			}
			if n := ss.parallelWorkers(lt.idle, jobs); n >= 0 && n != helpers[w] {
				if err := execSQL(ctx, conns[w], fmt.Sprintf("SET max_parallel_maintenance_workers = %d;\n", n)); err != nil {
					return fmt.Errorf("restore %s (session settings): %w", lt.name, err)
				}
				helpers[w] = n
			}
			if err := execSQL(ctx, conns[w], ts.sql); err != nil {
				return fmt.Errorf("restore %s: %w", lt.name, err)
			}
			return nil
		}
	}
	setup := func(ctx context.Context, w int) error {
		c, err := connect(ctx, target, false)
		if err != nil {
			return err
		}
		conns[w] = c
		if err := execSQL(ctx, c, postHeader+ss.sql()); err != nil {
			return fmt.Errorf("prepare restore session: %w", err)
		}
		return nil
	}
	teardown := func(w int) {
		if conns[w] != nil {
			conns[w].Close(context.Background())
		}
	}
	return runTasks(ctx, jobs, plan.tasks, setup, teardown, opts.Logger)
}

// sessionSettings are what the restore's sessions set beyond pg_dump's
// header, from the target server's own settings.
type sessionSettings struct {
	maintenanceWorkMem            int64 // bytes
	maxParallelMaintenanceWorkers int
}

// minMaintenanceWorkMem is the least maintenance_work_mem the restore's
// sessions build indexes and check foreign keys with; a server set
// higher keeps its own.
const minMaintenanceWorkMem = 256 << 20

// restoreSessionSettings reads the target's maintenance_work_mem and
// max_parallel_maintenance_workers.
func restoreSessionSettings(ctx context.Context, q queryer) (sessionSettings, error) {
	var ss sessionSettings
	var kb int64
	err := q.QueryRow(ctx, `SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'maintenance_work_mem'),
  current_setting('max_parallel_maintenance_workers')::int`).Scan(&kb, &ss.maxParallelMaintenanceWorkers)
	if err != nil {
		return ss, fmt.Errorf("read the target's maintenance settings: %w", err)
	}
	ss.maintenanceWorkMem = max(kb<<10, minMaintenanceWorkMem)
	return ss, nil
}

// parallelWorkers is max_parallel_maintenance_workers for a task started
// while idle of the restore's jobs sessions had nothing to do, or -1 to
// leave the server's setting. An index build may use parallel workers: as
// many as there are idle sessions (up to the server's setting), so that
// the restore keeps about jobs server processes busy. On a server whose
// cores the sessions already keep busy, parallel workers only add work:
// each sorts its share and the leader merges them (PostgreSQL 15, an index
// on 5.9 million bigints: 2.5 CPU-s alone, 3.3-4.0 with 2 workers, in
// about the same time). A restore on one session leaves the server's
// setting, as pg_restore does: nothing of its own competes with them.
func (ss sessionSettings) parallelWorkers(idle, jobs int) int {
	if jobs <= 1 {
		return -1
	}
	return max(0, min(idle, ss.maxParallelMaintenanceWorkers))
}

// sql sets up a restore session:
//   - synchronous_commit off: a crash loses the restore either way;
//   - maintenance_work_mem at least minMaintenanceWorkMem.
func (ss sessionSettings) sql() string {
	return fmt.Sprintf("SET synchronous_commit = off;\nSET maintenance_work_mem = '%dkB';\n", ss.maintenanceWorkMem>>10)
}

// loadTable copies all parts of one table in one transaction. With freeze
// the transaction starts with TRUNCATE ONLY and the rows are copied with
// FREEZE: they are written frozen and all-visible, so neither the index
// builds nor the first VACUUM rewrite the pages to set hint bits. With
// codecs the rows go in COPY's binary format (see binarycopy.go); a field
// that does not convert rolls the transaction back and the table is loaded
// again as text.
func loadTable(ctx context.Context, c *pgx.Conn, snap engine.SnapshotReader, t *tableInfo, sts []manifest.Stream,
	freeze bool, codecs []fieldCodec, p *progress.Progress, log *slog.Logger) error {
	if codecs != nil {
		var n counts
		err := loadTableAs(ctx, c, snap, t, sts, freeze, codecs, p, &n, log)
		if !errors.Is(err, errTextOnly) {
			return err
		}
		log.Info("loading the table as COPY text: a field did not convert to COPY binary", "table", t.Name, "reason", err)
		if err := execSQL(ctx, c, "ROLLBACK"); err != nil {
			return fmt.Errorf("roll back: %w", err)
		}
		p.AddBytes(-n.bytes)
		p.AddRows(-n.rows)
	}
	return loadTableAs(ctx, c, snap, t, sts, freeze, nil, p, &counts{}, log)
}

// counts are the bytes and rows of text a load has read.
type counts struct{ bytes, rows int64 }

func loadTableAs(ctx context.Context, c *pgx.Conn, snap engine.SnapshotReader, t *tableInfo, sts []manifest.Stream,
	freeze bool, codecs []fieldCodec, p *progress.Progress, n *counts, log *slog.Logger) error {
	if freeze {
		if err := execSQL(ctx, c, "BEGIN;\nTRUNCATE ONLY "+t.Name); err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
				return fmt.Errorf("truncate before COPY FREEZE: %w", err)
			}
			log.Debug("no TRUNCATE privilege: loading without COPY FREEZE", "table", t.Name)
			if err := execSQL(ctx, c, "ROLLBACK"); err != nil {
				return fmt.Errorf("roll back: %w", err)
			}
			freeze = false
		}
	}
	if !freeze {
		if err := execSQL(ctx, c, "BEGIN"); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	}
	sql := t.copyIn()
	var with []string
	format := "text"
	if codecs != nil {
		format = "binary"
		with = append(with, "FORMAT binary")
	}
	log.Debug("load table", "table", t.Name, "format", format, "streams", len(sts), "freeze", freeze)
	if freeze {
		with = append(with, "FREEZE")
	}
	if len(with) > 0 {
		sql += " WITH (" + strings.Join(with, ", ") + ")"
	}
	for _, st := range sts {
		if err := copyIn(ctx, c, snap, sql, st, codecs, p, n); err != nil {
			return err
		}
	}
	if err := execSQL(ctx, c, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func copyIn(ctx context.Context, c *pgx.Conn, snap engine.SnapshotReader, sql string, st manifest.Stream,
	codecs []fieldCodec, p *progress.Progress, n *counts) error {
	r, err := snap.Open(ctx, st)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", st.Name, err)
	}
	defer r.Close()
	var src io.Reader = &countingReader{r: r, p: p, n: n}
	var br *binaryRows
	if codecs != nil {
		br = newBinaryRows(src, codecs)
		src = br
	}
	if _, err := c.PgConn().CopyFrom(ctx, src, sql); err != nil {
		if br != nil && br.convErr != nil {
			return fmt.Errorf("copy stream %s: %w", st.Name, br.convErr)
		}
		return fmt.Errorf("copy stream %s: %w", st.Name, err)
	}
	return nil
}

// prepareTarget makes sure the target database exists and is empty
// (dropping and recreating it with clean).
func prepareTarget(ctx context.Context, target *dsn.DSN, clean bool) error {
	name := target.Database()
	if name == "" {
		return fmt.Errorf("restore target %s names no database", target.String())
	}
	mc, err := maintenanceConn(ctx, target)
	if err != nil {
		return err
	}
	defer mc.Close(context.Background())
	var exists bool
	if err := mc.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	create := func() error {
		if _, err := mc.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0"); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		return nil
	}
	if !exists {
		return create()
	}
	tc, err := connect(ctx, target, false)
	if err != nil {
		return err
	}
	var objects int64
	err = tc.QueryRow(ctx, `SELECT
 (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
     AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f'))
 + (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\_%')
 + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'))`).Scan(&objects)
	tc.Close(context.Background())
	if err != nil {
		return fmt.Errorf("inspect database %s: %w", name, err)
	}
	if objects == 0 {
		return nil
	}
	if !clean {
		return fmt.Errorf("database %s on %s holds %d objects: %w", name, target.URL.Host, objects, engine.ErrTargetNotEmpty)
	}
	if name == "postgres" || name == "template1" {
		return fmt.Errorf("refusing to drop and recreate the maintenance database %s for --clean", name)
	}
	if err := dropDatabase(ctx, mc, name); err != nil {
		return err
	}
	return create()
}
