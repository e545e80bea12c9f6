package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/snapdata/snapdata/internal/engine"
)

// Loading a table: one goroutine decodes the table's streams into batches
// of rows while another inserts them, many rows per INSERT statement,
// through the driver connection itself (database/sql converts every
// argument and the driver starts a goroutine for every call that has a
// cancellable context, which cost more than the insert of a small row).
const (
	// maxParams is SQLite's limit on host parameters in one statement
	// (SQLITE_MAX_VARIABLE_NUMBER: 32766 since SQLite 3.32, and in
	// modernc.org/sqlite).
	maxParams = 32766
	// maxBatchRows is the most rows in one INSERT.
	maxBatchRows = 256
	// batchBytes ends a batch early once its text and blob values reach
	// it, so that memory stays bounded whatever the row size.
	batchBytes = 1 << 20
	// batchesInFlight is the number of batches shared by the decoder and
	// the inserter: one being inserted, the others filled meanwhile.
	batchesInFlight = 4
)

// batchRows is the number of rows in a full batch of rows of width values.
func batchRows(width int) int {
	return max(1, min(maxBatchRows, maxParams/width))
}

// insertSQL is an INSERT of rows rows into t.
func insertSQL(t table, rows int) string {
	cols := t.insertColumns()
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO " + quote(t.Name) + " (" + strings.Join(cols, ", ") + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// batch is a run of decoded rows of one table.
type batch struct {
	vals []any // rows*width values, row after row
	rows int
	size int   // bytes of text and blob values
	read int64 // stream bytes consumed since the previous batch
}

// loadTable inserts a table's rows inside one transaction.
func (e *Engine) loadTable(ctx context.Context, conn *sql.Conn, snap engine.SnapshotReader, t table, opts engine.RestoreOptions) error {
	err := conn.Raw(func(dc any) error {
		return loadRaw(ctx, dc, snap, t, opts)
	})
	if err != nil {
		return fmt.Errorf("load table %s: %w", t.Name, err)
	}
	return nil
}

// loadRaw is loadTable on the driver's connection.
func loadRaw(ctx context.Context, dc any, snap engine.SnapshotReader, t table, opts engine.RestoreOptions) error {
	pc, ok1 := dc.(driver.ConnPrepareContext)
	ec, ok2 := dc.(driver.ExecerContext)
	if !ok1 || !ok2 {
		return fmt.Errorf("the sqlite driver's connection (%T) has no PrepareContext or ExecContext", dc)
	}
	if _, err := ec.ExecContext(ctx, "BEGIN", nil); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	ins := newInserter(pc, t)
	err := pipeRows(ctx, snap, t, ins, opts)
	if cerr := ins.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close insert statements: %w", cerr)
	}
	if err != nil {
		// Ends the transaction so that the connection closes cleanly;
		// the caller removes the file.
		_, _ = ec.ExecContext(context.WithoutCancel(ctx), "ROLLBACK", nil)
		return err
	}
	if _, err := ec.ExecContext(ctx, "COMMIT", nil); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// pipeRows decodes t's rows into batches in one goroutine and inserts them
// with ins in another.
func pipeRows(ctx context.Context, snap engine.SnapshotReader, t table, ins *inserter, opts engine.RestoreOptions) error {
	width, rows := t.width(), batchRows(t.width())
	free := make(chan *batch, batchesInFlight)
	full := make(chan *batch, batchesInFlight)
	for range batchesInFlight {
		free <- &batch{vals: make([]any, rows*width)}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(full)
		var b *batch
		var read int64
		send := func() error {
			b.read, read = read, 0
			select {
			case full <- b:
				b = nil
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		err := eachRow(gctx, snap, t, func(vals []any) error {
			if b == nil {
				select {
				case b = <-free:
				case <-gctx.Done():
					return gctx.Err()
				}
				b.rows, b.size = 0, 0
			}
			copy(b.vals[b.rows*width:], vals)
			for _, v := range vals {
				switch x := v.(type) {
				case string:
					b.size += len(x)
				case []byte:
					b.size += len(x)
				}
			}
			b.rows++
			if b.rows == rows || b.size >= batchBytes {
				return send()
			}
			return nil
		}, func(n int64) { read += n })
		if err != nil {
			return err
		}
		if b != nil {
			return send()
		}
		opts.Progress.AddBytes(read)
		return nil
	})
	g.Go(func() error {
		for b := range full {
			if err := ins.insert(gctx, b.vals[:b.rows*width], b.rows); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			opts.Progress.AddRows(int64(b.rows))
			opts.Progress.AddBytes(b.read)
			clear(b.vals) // drop the references to this batch's values
			free <- b
		}
		return nil
	})
	return g.Wait()
}

// inserter inserts rows with multi-row INSERT statements of a full batch
// of rows and, for shorter batches, of each power of two below it, each
// prepared when first needed.
type inserter struct {
	conn  driver.ConnPrepareContext
	table table
	width int
	stmts map[int]driver.Stmt
	args  []driver.NamedValue // the arguments of a full batch, ordinals set
}

func newInserter(c driver.ConnPrepareContext, t table) *inserter {
	w := t.width()
	args := make([]driver.NamedValue, batchRows(w)*w)
	for i := range args {
		args[i].Ordinal = i + 1
	}
	return &inserter{conn: c, table: t, width: w, stmts: map[int]driver.Stmt{}, args: args}
}

// insert inserts n rows of vals.
func (in *inserter) insert(ctx context.Context, vals []any, n int) error {
	size := batchRows(in.width)
	for n > 0 {
		for size > n {
			size = prevPow2(size)
		}
		st, err := in.stmt(ctx, size)
		if err != nil {
			return err
		}
		k := size * in.width
		args := in.args[:k]
		for i := range args {
			args[i].Value = vals[i]
		}
		_, err = st.ExecContext(ctx, args)
		for i := range args {
			args[i].Value = nil
		}
		if err != nil {
			return err
		}
		vals, n = vals[k:], n-size
	}
	return nil
}

// prevPow2 is the largest power of two below n (n > 1).
func prevPow2(n int) int {
	p := 1
	for p*2 < n {
		p *= 2
	}
	return p
}

func (in *inserter) stmt(ctx context.Context, rows int) (driver.StmtExecContext, error) {
	st, ok := in.stmts[rows]
	if !ok {
		var err error
		st, err = in.conn.PrepareContext(ctx, insertSQL(in.table, rows))
		if err != nil {
			return nil, fmt.Errorf("prepare insert of %d rows: %w", rows, err)
		}
		in.stmts[rows] = st
	}
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("the sqlite driver's statements have no ExecContext")
	}
	return ex, nil
}

func (in *inserter) close() error {
	var errs []error
	for _, st := range in.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
