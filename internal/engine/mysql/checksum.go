package mysql

import (
	"context"
	"fmt"

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

// checksums reads the tables one after the other on one connection: one
// consistent snapshot without FLUSH TABLES WITH READ LOCK (opts.Jobs is
// not used).
func (e *Engine) checksums(ctx context.Context, target *dsn.DSN, tables []string, algo func(table string) rowsum.Algo, opts engine.ChecksumOptions) ([]manifest.Table, error) {
	db, err := open(ctx, target, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", target, err)
	}
	defer c.Close()
	if err := startSnapshot(ctx, c); err != nil {
		return nil, err
	}
	defer c.ExecContext(context.Background(), "ROLLBACK")
	list, err := loadTables(ctx, c, target.Database(), tables)
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, "SET SESSION character_set_results = binary"); err != nil {
		return nil, fmt.Errorf("setting binary results: %w", err)
	}
	opts.Progress.AddTables(len(list))
	out := make([]manifest.Table, 0, len(list))
	for _, t := range list {
		rows, n, sum, err := scanTable(ctx, c, t, "", algo(t.Name), func([]byte) error { return nil }, opts.Progress)
		if err != nil {
			return nil, fmt.Errorf("checksumming table %s: %w", t.Name, err)
		}
		out = append(out, manifest.Table{Name: t.Name, Rows: rows, Checksum: sum.String(), Bytes: n})
		opts.Progress.TableDone()
	}
	return out, nil
}
