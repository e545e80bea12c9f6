package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
)

func (e *env) backupCommand() *cobra.Command {
	var tags []string
	var skip bool
	var jobs int
	var asJSON, allDBs bool
	var rowOrder string
	var textCopy bool
	cmd := &cobra.Command{
		Use:   "backup SOURCE...",
		Short: "Back up databases into the repository",
		Long: `Take a consistent snapshot of each SOURCE: a DSN or a source name from the config.

  snapdata backup --repo ./backups sqlite:./app.db
  snapdata backup --repo main postgres://app@db:5432/orders --tag nightly
  snapdata backup --skip-unchanged orders     # records nothing when the data did not change
  snapdata backup --all-databases postgres://backup@db:5432/   # one snapshot per database

Only changed data is stored: unchanged tables cost nothing. A backup that fails or is
interrupted writes no snapshot.

--all-databases also stores the server's roles in each database's snapshot (stored once:
the copies dedup): PostgreSQL roles with their password hashes (when the backup user may
read pg_authid, else without passwords, with a warning), memberships and settings;
MySQL/MariaDB accounts (not root nor the system accounts) with their authentication plugin,
password hash, grants and roles. Hashes are stored in encrypted repositories only.
'restore --roles' recreates them.

--skip-unchanged first asks the server whether anything was written since the source's
latest snapshot, without reading data: PostgreSQL's WAL position (not with unlogged tables),
the MySQL/MariaDB binary log position (when the binary log is on, and on replicas only with
log_slave_updates), the SQLite file's header and size. When the server cannot tell, the
backup reads the data and records nothing if every stream equals the latest snapshot's.

--row-order (PostgreSQL) chooses how tables with a primary key are read: key (default) puts
the rows an append-heavy workload adds or updates into the last chunks, so little is stored
again; physical (PostgreSQL 14+) saves the server the index scan but stores more after churn.

PostgreSQL tables with a date or time column (and only types snapdata prints exactly) are read
in COPY's binary format and stored as the same COPY text the server prints, which costs the
server less; --text-copy reads every table as text.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr{errors.New("backup expects at least one SOURCE (a DSN such as sqlite:./app.db, or a source name from the config)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var srcs []app.Source
			for _, a := range args {
				s, err := e.app.Source(a)
				if err != nil {
					return err
				}
				if allDBs {
					expanded, err := e.app.AllDatabases(e.ctx, s)
					if err != nil {
						return err
					}
					srcs = append(srcs, expanded...)
					continue
				}
				srcs = append(srcs, s)
			}
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			var results []*manifest.Snapshot
			failed := 0
			for _, s := range srcs {
				p := e.newProgress("backup " + s.Name)
				out, err := e.app.Backup(e.ctx, r, s, app.BackupOptions{Tags: tags, SkipUnchanged: skip, Jobs: jobs, Progress: p, RowOrder: rowOrder, TextCopy: textCopy})
				p.Done()
				if err != nil {
					if len(srcs) == 1 {
						return err
					}
					e.reportError(err, "source", s.Name)
					failed++
					continue
				}
				if out.Skipped {
					e.info("%s: skipped, %s\n", s.Name, out.Reason)
					continue
				}
				sn := out.Snapshot
				results = append(results, sn)
				if !asJSON {
					e.printf("snapshot %s saved: %s, %d tables, %s logical, %s added\n", sn.ShortID(), s.Name, len(sn.Tables), progress.Bytes(sn.LogicalBytes), progress.Bytes(sn.AddedBytes))
				}
			}
			if asJSON {
				if err := printJSON(e, snapshotsJSON(results)); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d backups failed", failed, len(srcs))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag the snapshot (repeatable)")
	cmd.Flags().BoolVar(&skip, "skip-unchanged", false, "record nothing when the data equals the source's latest snapshot")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel workers (default: number of cores)")
	cmd.Flags().StringVar(&rowOrder, "row-order", "", "PostgreSQL: key (default; least bytes stored after churn) or physical (less server CPU); overrides the source's row_order")
	cmd.Flags().BoolVar(&textCopy, "text-copy", false, "PostgreSQL: read every table in COPY's text format (by default a table with a date or time column is read in COPY binary and stored as the same text)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new snapshots as JSON")
	cmd.Flags().BoolVar(&allDBs, "all-databases", false, "back up every user database of the server each SOURCE names, one snapshot each, with the server's roles or accounts")
	return cmd
}
