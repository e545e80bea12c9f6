package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/portable"
	"github.com/snapdata/snapdata/internal/progress"
)

func (e *env) exportCommand() *cobra.Command {
	var format, out, source string
	var noOwner, noPriv bool
	cmd := &cobra.Command{
		Use:   "export SNAPSHOT|latest --format sql|tar.gz -o FILE",
		Short: "Write a snapshot as plain SQL or as a portable archive",
		Long: `Write a snapshot as one plain SQL file that the engine's own client loads into an empty
database (psql, mariadb, sqlite3), or as a .tar.gz holding that SQL file, one JSON-lines
file per table and the manifest (a portable export that 'snapdata import' loads into any engine).
A file is written under a temporary name and moved into place when complete, so a failed
export never leaves a partial file; a device or FIFO (/dev/stdout, a named pipe) is written
directly.

  snapdata export latest --format sql -o orders.sql
  snapdata export 3f2a9c1e --format tar.gz -o orders.tar.gz
  snapdata export latest --no-owner --no-privileges -o orders.sql   # loads where the roles do not exist

--no-owner and --no-privileges mean what they mean for restore: PostgreSQL scripts leave out
the ALTER … OWNER TO lines (objects then belong to the user who loads the script) and the
GRANT/REVOKE statements (with default privileges); MySQL/MariaDB scripts leave out the
DEFINER= clauses of views, routines, triggers and events (they hold no grants, so
--no-privileges changes nothing). SQLite has neither owners nor grants: the flags are
accepted and change nothing. They apply to --format sql only.`,
		Args: exactArgs(1, "one SNAPSHOT id (or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "sql" && format != "tar.gz" {
				return usageErr{fmt.Errorf("--format %q: expected sql or tar.gz", format)}
			}
			if format == "tar.gz" && (noOwner || noPriv) {
				return usageErr{errors.New("--no-owner and --no-privileges apply to --format sql (the portable archive's SQL file is the snapshot as it was)")}
			}
			if format == "tar.gz" && (out == "" || out == "-") {
				return usageErr{errors.New("--format tar.gz needs -o FILE (a binary archive is not written to standard output unless you name it: -o /dev/stdout)")}
			}
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			snap, err := e.findSnapshot(r, args[0], source)
			if err != nil {
				return err
			}
			eng, err := e.app.Engines.Get(snap.Engine)
			if err != nil {
				return err
			}
			o, err := e.openOutput(out)
			if err != nil {
				return err
			}
			var w io.Writer = e.stdout
			if o != nil {
				w = o.f
				defer o.discard()
			}
			// Export reads every stream once (tar.gz: the SQL file, then
			// each table's rows again), so the bytes read measure it.
			p := e.newProgress("export " + snap.ShortID())
			defer p.Done()
			total := snap.LogicalBytes
			if _, ok := eng.(engine.SQLExporter); ok && format == "tar.gz" {
				total *= 2
			}
			p.SetTotalBytes(total)
			reader := countingSnapshot{SnapshotReader: r.Reader(snap), p: p}
			switch format {
			case "sql":
				ex, ok := eng.(engine.SQLExporter)
				if !ok {
					return fmt.Errorf("export of %s snapshots as SQL: %w", snap.Engine, engine.ErrUnsupported)
				}
				if fx, ok := eng.(engine.FilteredSQLExporter); ok && (noOwner || noPriv) {
					err = fx.ExportSQLWith(e.ctx, reader, w, engine.ExportOptions{NoOwner: noOwner, NoPrivileges: noPriv})
				} else {
					if noOwner || noPriv {
						e.info("note: %s scripts have no owners or grants: --no-owner and --no-privileges change nothing\n", snap.Engine)
					}
					err = ex.ExportSQL(e.ctx, reader, w)
				}
			case "tar.gz":
				err = portable.Export(e.ctx, w, snapshotsJSON([]*manifest.Snapshot{snap})[0], eng, reader)
			}
			if err != nil {
				return fmt.Errorf("export snapshot %s: %w", snap.ShortID(), err)
			}
			p.Done()
			if o != nil {
				if err := o.commit(); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				e.info("exported snapshot %s (%s) to %s\n", snap.ShortID(), dsn.ShowSource(snap.Source), out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "sql", "sql or tar.gz")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file (default: standard output, sql only)")
	cmd.Flags().StringVar(&source, "source", "", "with latest: the source whose latest snapshot to export")
	cmd.Flags().BoolVar(&noOwner, "no-owner", false, "sql: leave out object owners (PostgreSQL ALTER … OWNER TO, MySQL DEFINER=), as restore --no-owner")
	cmd.Flags().BoolVar(&noPriv, "no-privileges", false, "sql: leave out grants (PostgreSQL GRANT/REVOKE and default privileges), as restore --no-privileges")
	return cmd
}

func (e *env) importCommand() *cobra.Command {
	var to, sqliteDecimal string
	var clean, asJSON bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "import FILE.tar.gz --to TARGET",
		Short: "Load a portable export into a database of any engine",
		Long: `Load the JSON-lines tables of a portable export (made by 'snapdata export --format tar.gz')
into TARGET, which may be another engine than the one exported.

What is carried across engines: column types (integers, floats, numerics with their
precision and scale, text with its declared length, bytes, booleans, dates and times, JSON),
primary keys, unique and secondary indexes on plain columns, foreign keys with their ON
DELETE/ON UPDATE actions, constant defaults (literals and CURRENT_TIMESTAMP-like ones),
identity/AUTO_INCREMENT columns (continuing above the highest imported value), and a
PostgreSQL partitioned table as one table. Indexes and foreign keys are created after the
rows are loaded.

Table names: public.film becomes film when the snapshot has one schema. With several
schemas, PostgreSQL keeps them; MySQL/MariaDB and SQLite keep the tables of schema public
bare and name the others schema_table (app.users becomes app_users); two tables that
would get the same name are an error naming both.

At the end, import prints on stderr what it could not carry over, per table and object
(expression or partial indexes, defaults that are not constants, CHECK constraints,
views, triggers, types stored as text, …); with --json it prints the report as JSON on
stdout. Nothing is dropped without being named; the exit code stays 0.

  snapdata import orders.tar.gz --to sqlite:./orders.db
  snapdata import orders.tar.gz --to mysql://me@db/orders --json`,
		Args: exactArgs(1, "one FILE.tar.gz"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErr{errors.New("import needs --to TARGET")}
			}
			if sqliteDecimal != "text" && sqliteDecimal != "real" {
				return usageErr{fmt.Errorf("--sqlite-decimal %q: expected text or real", sqliteDecimal)}
			}
			target, err := e.app.Target(to)
			if err != nil {
				return err
			}
			if err := e.app.CheckProtect(e.ctx, target); err != nil {
				return err
			}
			eng, err := e.app.Engine(target)
			if err != nil {
				return err
			}
			im, ok := eng.(engine.Importer)
			if !ok {
				return fmt.Errorf("import into %s: %w", target.Engine, engine.ErrUnsupported)
			}
			a, err := portable.Open(args[0])
			if err != nil {
				return &app.UsageError{Err: err}
			}
			defer a.Close()
			mapped, err := portable.MapNames(a.Schema, a.Engine, target.Engine)
			if err != nil {
				return &app.UsageError{Err: fmt.Errorf("import %s: %w", args[0], err)}
			}
			var report []engine.NotCarried
			targetName := map[string]string{}
			for t, s := range mapped.Source {
				targetName[s] = t
			}
			for _, n := range a.NotCarried {
				if t, ok := targetName[n.Table]; ok {
					n.Table = t
				}
				report = append(report, n)
			}
			if a.Version < 2 {
				report = append(report, engine.NotCarried{Kind: "archive", Object: args[0],
					Reason: fmt.Sprintf("the archive is in portable format %d, which holds no indexes, foreign keys, defaults, identity or precision: export the snapshot again to carry them", a.Version)})
			}
			p := e.newProgress("import")
			impOpts := &engine.ImportOptions{SQLiteDecimal: sqliteDecimal, Report: func(n engine.NotCarried) { report = append(report, n) }}
			err = im.Import(e.ctx, target, mapped.Tables, func(table string, fn func(row []any) error) error {
				src, ok := mapped.Source[table]
				if !ok {
					return fmt.Errorf("table %s is not in the archive", table)
				}
				return a.Rows(e.ctx, src, func(row []any) error {
					p.AddRows(1)
					return fn(row)
				})
			}, engine.RestoreOptions{Clean: clean, Jobs: jobs, Progress: p, Logger: e.app.Logger, Import: impOpts})
			p.Done()
			if err != nil {
				return fmt.Errorf("import %s into %s: %w", args[0], target, err)
			}
			portable.SortReport(report)
			if asJSON {
				return printJSON(e, importJSON{Archive: args[0], Target: target.String(), Tables: len(mapped.Tables), NotCarried: nonNil(report)})
			}
			e.printf("imported %d tables from %s into %s\n", len(mapped.Tables), args[0], target)
			printReport(e.stderr, report)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target database: a DSN or a config source name")
	cmd.Flags().BoolVar(&clean, "clean", false, "replace an existing, non-empty target")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel workers")
	cmd.Flags().StringVar(&sqliteDecimal, "sqlite-decimal", "text", "SQLite target: store exact numerics as text (exact; sums do not drift) or real (floating point)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result and the not-carried report as JSON on stdout")
	return cmd
}

// importJSON is import's --json output.
type importJSON struct {
	Archive    string              `json:"archive"`
	Target     string              `json:"target"`
	Tables     int                 `json:"tables"`
	NotCarried []engine.NotCarried `json:"not_carried"`
}

func nonNil(r []engine.NotCarried) []engine.NotCarried {
	if r == nil {
		return []engine.NotCarried{}
	}
	return r
}

// printReport writes the not-carried report, grouped by table.
func printReport(w io.Writer, r []engine.NotCarried) {
	if len(r) == 0 {
		fmt.Fprintln(w, "everything in the archive was carried over")
		return
	}
	fmt.Fprintf(w, "not carried over (%d):\n", len(r))
	last := "\x00"
	for _, n := range r {
		if n.Table != last {
			last = n.Table
			if n.Table == "" {
				fmt.Fprintln(w, "  outside tables:")
			} else {
				fmt.Fprintf(w, "  table %s:\n", n.Table)
			}
		}
		fmt.Fprintf(w, "    %s %s: %s\n", n.Kind, n.Object, n.Reason)
	}
}

// countingSnapshot counts the plaintext bytes an engine reads from a
// snapshot's streams into a progress.
type countingSnapshot struct {
	engine.SnapshotReader
	p *progress.Progress
}

func (c countingSnapshot) Open(ctx context.Context, s manifest.Stream) (io.ReadCloser, error) {
	rc, err := c.SnapshotReader.Open(ctx, s)
	if err != nil {
		return nil, err
	}
	return &countingStream{Reader: c.p.Reader(rc), rc: rc, p: c.p}, nil
}

// countingStream reads a stream through the progress's counting reader.
type countingStream struct {
	io.Reader
	rc io.ReadCloser
	p  *progress.Progress
}

func (c *countingStream) Close() error { return c.rc.Close() }

// WriteTo keeps the stream's own WriteTo (it hands over whole chunks)
// where it has one.
func (c *countingStream) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.rc.(io.WriterTo); ok {
		return wt.WriteTo(c.p.Writer(w))
	}
	return io.Copy(w, c.Reader) // the counting reader counts
}
