package mysql

import (
	"context"
	"fmt"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
)

// Checksums recomputes row counts and checksums of target's tables (all
// base tables when tables is empty) with the dump query and encoding of
// Backup, in one consistent read-only snapshot.
func (e *Engine) Checksums(ctx context.Context, target *dsn.DSN, tables []string) ([]manifest.Table, error) {
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
	out := make([]manifest.Table, 0, len(list))
	for _, t := range list {
		rows, n, sum, err := scanTable(ctx, c, t, "", func([]byte) error { return nil }, nil)
		if err != nil {
			return nil, fmt.Errorf("checksumming table %s: %w", t.Name, err)
		}
		out = append(out, manifest.Table{Name: t.Name, Rows: rows, Checksum: sum.hex(), Bytes: n})
	}
	return out, nil
}
