package mysql

import (
	"context"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/stall"
)

// Backup dumps src into sink (see backup). The driver reports a session
// that the stall watchdog gave up only as "invalid connection": the error
// then also names the server that stopped answering.
func (e *Engine) Backup(ctx context.Context, src *dsn.DSN, opts engine.BackupOptions, sink engine.Sink) (*engine.BackupResult, error) {
	ctx, rec := stall.WithRecorder(ctx)
	res, err := e.backup(ctx, src, opts, sink)
	return res, rec.Explain(err)
}

// Restore loads a snapshot into target (see restore), naming a server
// that stopped answering as Backup does.
func (e *Engine) Restore(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.RestoreOptions) error {
	ctx, rec := stall.WithRecorder(ctx)
	return rec.Explain(e.restore(ctx, snap, target, opts))
}
