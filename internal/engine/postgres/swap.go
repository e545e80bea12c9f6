package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

var _ engine.Swapper = (*Engine)(nil)

// DatabaseExists implements engine.Swapper.
func (e *Engine) DatabaseExists(ctx context.Context, db *dsn.DSN) (bool, error) {
	c, err := maintenanceConn(ctx, db)
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1", db.Database()).Scan(&n); err != nil {
		return false, fmt.Errorf("look up database %s: %w", db.Database(), err)
	}
	return n > 0, nil
}

// Label implements engine.Swapper: the database's comment.
func (e *Engine) Label(ctx context.Context, db *dsn.DSN) (string, error) {
	c, err := maintenanceConn(ctx, db)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(ctx, "SELECT coalesce(pg_catalog.shobj_description(oid, 'pg_database'), '') FROM pg_catalog.pg_database WHERE datname = $1", db.Database()).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("database %s does not exist", db.Database())
	}
	if err != nil {
		return "", fmt.Errorf("read the comment of database %s: %w", db.Database(), err)
	}
	return s, nil
}

// Swap implements engine.Swapper with ALTER DATABASE … RENAME, both
// renames (and the label of the old copy) in one transaction: the target
// name holds the old copy or the new one, never neither. PostgreSQL
// renames only a database no one is connected to: sessions on the target
// are waited for, or ended with opts.Terminate. The comment (built's
// label) moves with the database.
func (e *Engine) Swap(ctx context.Context, built, target *dsn.DSN, previous, previousLabel string, opts engine.SwapOptions) error {
	c, err := maintenanceConn(ctx, target)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	tname, bname := target.Database(), built.Database()
	if tname == "" || bname == "" || tname == bname {
		return fmt.Errorf("swap %q for %q: refusing these names", bname, tname)
	}
	deadline := time.Now().Add(opts.Wait)
	for attempt := 0; ; attempt++ {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)", tname).Scan(&exists); err != nil {
			return fmt.Errorf("look up database %s: %w", tname, err)
		}
		if exists {
			var pids []int32
			rows, err := c.Query(ctx, "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", tname)
			if err == nil {
				pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
			}
			if err != nil {
				return fmt.Errorf("list sessions on %s: %w", tname, err)
			}
			if len(pids) > 0 {
				if opts.Terminate {
					if opts.Logger != nil {
						opts.Logger.Warn("ending sessions on the clone target before the swap", "database", tname, "sessions", len(pids))
					}
					if _, err := c.Exec(ctx, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", tname); err != nil {
						return fmt.Errorf("end sessions on %s: %w", tname, err)
					}
				} else if time.Now().After(deadline) {
					return fmt.Errorf("swap into %s: %d %w", tname, len(pids), engine.ErrSessionsRemain)
				} else if opts.Logger != nil && attempt%20 == 0 {
					opts.Logger.Warn("waiting for sessions on the clone target to end before the swap", "database", tname, "sessions", len(pids), "until", deadline.Format(time.RFC3339))
				}
				if err := sleep(ctx, 250*time.Millisecond); err != nil {
					return err
				}
				continue
			}
		}
		err = renameSwap(ctx, c, bname, tname, previous, previousLabel, exists)
		if err == nil {
			return nil
		}
		// 55006: a session connected between the check and the rename.
		if !isPGCode(err, "55006") || (time.Now().After(deadline) && !opts.Terminate) || attempt > 200 {
			return fmt.Errorf("swap %s into %s: %w", bname, tname, err)
		}
	}
}

func renameSwap(ctx context.Context, c *pgx.Conn, built, target, previous, label string, exists bool) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit: a no-op
	if exists {
		if _, err := tx.Exec(ctx, "ALTER DATABASE "+quoteIdent(target)+" RENAME TO "+quoteIdent(previous)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "COMMENT ON DATABASE "+quoteIdent(previous)+" IS "+quoteLiteral(label)); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "ALTER DATABASE "+quoteIdent(built)+" RENAME TO "+quoteIdent(target)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func isPGCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
