package mysql

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/rowsum"
)

var _ engine.ChecksumMatcher = (*Engine)(nil)

// Checksums recomputes row counts and checksums of target's tables (all
// base tables when tables is empty) with the dump query and encoding of
// Backup, in one consistent read-only snapshot, in the current checksum
// format.
func (e *Engine) Checksums(ctx context.Context, target *dsn.DSN, tables []string, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	return e.checksums(ctx, target, tables, func(string) rowsum.Algo { return rowsum.XXH3 }, opts)
}

// ChecksumsLike implements engine.ChecksumMatcher: the checksums of every
// table, each in the format of the same table's checksum in want (a
// snapshot's manifest), so snapshots taken with SHA-256 row sums still
// verify. Tables not in want get the current format.
func (e *Engine) ChecksumsLike(ctx context.Context, target *dsn.DSN, want []manifest.Table, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	return e.checksums(ctx, target, nil, rowsum.FormatsOf(want), opts)
}

// checksums reads the tables on opts.Jobs connections (default: cores),
// biggest tables first. The connections share one consistent view, taken
// like Backup's (snapshots started under a brief FLUSH TABLES WITH READ
// LOCK; without the RELOAD privilege one connection with one snapshot),
// unless opts.Private says no one writes: then each has its own snapshot
// and no lock is taken.
func (e *Engine) checksums(ctx context.Context, target *dsn.DSN, tables []string, algo func(table string) rowsum.Algo, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	db, err := open(ctx, target, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// No more connections than tables. The count is read before the
	// snapshot, so it may be off by a table created or dropped meanwhile;
	// it only bounds the number of connections.
	if len(tables) > 0 {
		jobs = min(jobs, len(tables))
	} else {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`, target.Database()).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("counting the tables of %s: %w", target.Database(), err)
		}
		jobs = max(1, min(jobs, n))
	}
	var snap *snapshotConns
	if opts.Private {
		snap = &snapshotConns{}
		defer snap.close()
		for range jobs {
			c, err := db.Conn(ctx)
			if err != nil {
				return nil, fmt.Errorf("connecting to %s: %w", target, err)
			}
			snap.conns = append(snap.conns, c)
			if err := startSnapshot(ctx, c); err != nil {
				return nil, err
			}
		}
	} else {
		snap, err = takeSnapshot(ctx, db, jobs, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, err
		}
		defer snap.close()
	}
	list, err := loadTables(ctx, snap.conns[0], target.Database(), tables)
	if err != nil {
		return nil, err
	}
	for _, c := range snap.conns {
		if _, err := c.ExecContext(ctx, "SET SESSION character_set_results = binary"); err != nil {
			return nil, fmt.Errorf("setting binary results: %w", err)
		}
	}
	opts.Progress.AddTables(len(list))
	queue := engine.BiggestFirst(len(list), func(i int) int64 { return list[i].DataLength })
	out := make([]manifest.Table, len(list))
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range snap.conns {
		g.Go(func() error {
			for i := range queue {
				t := list[i]
				n, sum, err := scanTable(gctx, c, t, "", algo(t.Name), func([]byte) error { return nil }, opts.Progress)
				if err != nil {
					return fmt.Errorf("checksumming table %s: %w", t.Name, err)
				}
				out[i] = manifest.Table{Name: t.Name, Rows: sum.Rows, Checksum: sum.String(), Bytes: n}
				opts.Progress.TableDone()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
