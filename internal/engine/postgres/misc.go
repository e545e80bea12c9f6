package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/rowsum"
)

// Fingerprint implements engine.Fingerprinter. It is the WAL insert
// position (on a standby: the replay position) with the database oid and
// the server start time. Every committed transaction that changes data
// writes a commit record and moves it; so do many things that change
// nothing (autovacuum, hint bits, other databases), which only costs a
// backup that deduplicates. It is "" (unknown) when the database has
// unlogged tables, whose writes skip the WAL.
func (e *Engine) Fingerprint(ctx context.Context, src *dsn.DSN) (string, error) {
	c, err := connect(ctx, src, true)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	return fingerprint(ctx, c)
}

func fingerprint(ctx context.Context, c *pgx.Conn) (string, error) {
	var lsn *string
	var dbOID uint32
	var started float64
	var unlogged bool
	err := c.QueryRow(ctx, `SELECT
  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_insert_lsn()::text END,
  (SELECT oid FROM pg_database WHERE datname = current_database()),
  extract(epoch FROM pg_postmaster_start_time())::float8,
  EXISTS (SELECT 1 FROM pg_class WHERE relpersistence = 'u' AND relkind IN ('r', 'p', 'm', 'S'))`).
		Scan(&lsn, &dbOID, &started, &unlogged)
	if err != nil {
		return "", fmt.Errorf("read WAL position: %w", err)
	}
	if lsn == nil || unlogged {
		return "", nil
	}
	return fmt.Sprintf("pg1:%d:%s:%s", dbOID, strconv.FormatFloat(started, 'f', 6, 64), *lsn), nil
}

// Checksums implements engine.Checksummer: it copies every table (or the
// named ones) and sums its rows the way Backup does, in the current
// checksum format. Tables are read opts.Jobs at a time (default: cores),
// all in one exported snapshot.
func (e *Engine) Checksums(ctx context.Context, target *dsn.DSN, tables []string, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	return e.checksums(ctx, target, tables, func(string) rowsum.Algo { return e.sum }, opts)
}

// ChecksumsLike implements engine.ChecksumMatcher: the checksums of every
// table, each in the format of the same table's checksum in want (a
// snapshot's manifest), so snapshots taken before the current format
// still verify. Tables not in want get the current format.
func (e *Engine) ChecksumsLike(ctx context.Context, target *dsn.DSN, want []manifest.Table, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	return e.checksums(ctx, target, nil, rowsum.FormatsOf(want), opts)
}

func (e *Engine) checksums(ctx context.Context, target *dsn.DSN, tables []string, algo func(table string) rowsum.Algo, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	c, err := connect(ctx, target, true)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer c.Exec(context.Background(), "ROLLBACK") //nolint:errcheck
	tabs, err := loadTables(ctx, c)
	if err != nil {
		return nil, err
	}
	sel := tabs
	if len(tables) > 0 {
		sel = nil
		for _, name := range tables {
			t := findTable(tabs, name)
			if t == nil {
				return nil, fmt.Errorf("table %s not found in %s", name, target.String())
			}
			sel = append(sel, t)
		}
	}
	opts.Progress.AddTables(len(sel))
	out := make([]manifest.Table, len(sel))
	sum := func(ctx context.Context, c *pgx.Conn, i int) error {
		t := sel[i]
		// The sum does not depend on row order: read in physical order.
		rs := newRowSumAlgo(algo(t.Name))
		pw := &progressWriter{w: io.Discard, rs: rs, p: opts.Progress}
		if _, err := c.PgConn().CopyTo(ctx, pw, t.copyOutPhysical("")); err != nil {
			return fmt.Errorf("checksum table %s: %w", t.Name, err)
		}
		rs.finish()
		out[i] = manifest.Table{Name: t.Name, Rows: rs.Rows, Checksum: rs.String(), Bytes: rs.bytes}
		opts.Progress.TableDone()
		return nil
	}
	jobs := min(defaultJobs(opts.Jobs), len(sel))
	if jobs <= 1 {
		for i := range sel {
			if err := sum(ctx, c, i); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	// Several sessions, one view: the workers import this transaction's
	// snapshot, and take the biggest tables first.
	var snapID string
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapID); err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	queue := engine.BiggestFirst(len(sel), func(i int) int64 { return sel[i].size })
	g, gctx := errgroup.WithContext(ctx)
	for range jobs {
		g.Go(func() error {
			w, err := openWorker(gctx, target, snapID)
			if err != nil {
				return err
			}
			defer w.Close(context.Background())
			for i := range queue {
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := sum(gctx, w, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// findTable matches a user-given table name: the quoted qualified form,
// schema.table unquoted, or a bare name in the public schema.
func findTable(tabs []*tableInfo, name string) *tableInfo {
	for _, t := range tabs {
		if t.Name == name || t.Schema+"."+t.Table == name {
			return t
		}
	}
	if s, n, ok := splitQualified(name); ok {
		for _, t := range tabs {
			if t.Schema == s && t.Table == n {
				return t
			}
		}
	}
	return nil
}

// CreateScratch implements engine.Scratcher.
func (e *Engine) CreateScratch(ctx context.Context, server *dsn.DSN, name string) (*dsn.DSN, error) {
	c, err := maintenanceConn(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0"); err != nil {
		return nil, fmt.Errorf("create scratch database %s: %w", name, err)
	}
	return server.WithDatabase(name), nil
}

// CreateLabeledScratch implements engine.ScratchLabeler: the marker is
// the database's comment.
func (e *Engine) CreateLabeledScratch(ctx context.Context, server *dsn.DSN, name, marker string) (*dsn.DSN, error) {
	d, err := e.CreateScratch(ctx, server, name)
	if err != nil {
		return nil, err
	}
	c, err := maintenanceConn(ctx, server)
	if err == nil {
		_, err = c.Exec(ctx, "COMMENT ON DATABASE "+quoteIdent(name)+" IS "+quoteLiteral(marker))
		c.Close(context.Background())
	}
	if err != nil {
		return d, fmt.Errorf("label scratch database %s: %w", name, err)
	}
	return d, nil
}

// ListScratch implements engine.ScratchLabeler.
func (e *Engine) ListScratch(ctx context.Context, server *dsn.DSN, prefix string) ([]engine.ScratchDB, error) {
	c, err := maintenanceConn(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT d.datname, coalesce(pg_catalog.shobj_description(d.oid, 'pg_database'), ''),
  (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.datname = d.datname)::int
FROM pg_catalog.pg_database d WHERE left(d.datname, length($1)) = $1 ORDER BY 1`, prefix)
	if err != nil {
		return nil, fmt.Errorf("list scratch databases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (engine.ScratchDB, error) {
		var s engine.ScratchDB
		err := r.Scan(&s.Name, &s.Marker, &s.Sessions)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list scratch databases: %w", err)
	}
	return out, nil
}

// DropScratch implements engine.Scratcher.
func (e *Engine) DropScratch(ctx context.Context, db *dsn.DSN) error {
	c, err := maintenanceConn(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return dropDatabase(ctx, c, db.Database())
}

func dropDatabase(ctx context.Context, c *pgx.Conn, name string) error {
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42601" { // syntax error: server older than 13
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			return fmt.Errorf("disconnect sessions of %s: %w", name, err)
		}
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	return nil
}

// Databases implements engine.DatabaseLister: every database that allows
// connections, is not a template and that the user may connect to. The
// maintenance database "postgres" is listed only when it holds user tables.
func (e *Engine) Databases(ctx context.Context, server *dsn.DSN) ([]string, error) {
	c, err := maintenanceConn(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database
WHERE datallowconn AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT') ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n == "postgres" {
			pc, err := connect(ctx, server.WithDatabase(n), true)
			if err != nil {
				continue
			}
			tabs, err := loadTables(ctx, pc)
			pc.Close(context.Background())
			if err != nil || len(tabs) == 0 {
				continue
			}
		}
		out = append(out, n)
	}
	return out, nil
}
