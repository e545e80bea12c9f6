package sqlite

import (
	"context"
	"fmt"
	"io"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/sqlscript"
)

var _ engine.SQLRunner = (*Engine)(nil)

// RunSQL implements engine.SQLRunner: the script's statements (split by
// sqlscript's SQLite rules: quotes, brackets, comments, CREATE TRIGGER
// bodies) run one by one inside one transaction (BEGIN IMMEDIATE … COMMIT;
// SQLite's DDL is transactional), so a failing script leaves the file as
// it was. The error names name:LINE of the failing statement and SQLite's
// message. PRAGMAs that cannot change inside a transaction (foreign_keys,
// journal_mode) have no effect; a script's own BEGIN or COMMIT fails.
func (e *Engine) RunSQL(ctx context.Context, db *dsn.DSN, name string, script io.Reader) error {
	text, err := io.ReadAll(script)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	stmts, err := sqlscript.Split(string(text), sqlscript.SQLite)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := checkFile(db.Path); err != nil {
		return err
	}
	sdb, conn, err := openDB(ctx, db.Path, false)
	if err != nil {
		return err
	}
	defer sdb.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("%s: begin a transaction on %s: %w", name, db.Path, err)
	}
	for _, st := range stmts {
		if _, err := conn.ExecContext(ctx, st.SQL); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("%s:%d: %w", name, st.Line, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("%s: commit: %w", name, err)
	}
	return nil
}
