package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

func (e *env) restoreCommand() *cobra.Command {
	var to, source string
	var tables []string
	var jobs int
	var clean, noOwner, noPriv, textCopy, roles bool
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest --to TARGET",
		Short: "Restore a snapshot into a database",
		Long: `Restore a snapshot (an id prefix, or latest) into TARGET: a DSN or a config source name.
The target must be empty (a missing SQLite file, an empty database) unless --clean is given.
With --table only the chosen tables are touched: they must be absent, or --clean replaces
just them; every other table of the target stays as it is.

  snapdata restore latest --to sqlite:./restored.db
  snapdata restore 3f2a9c1e --to postgres://app@localhost/orders_copy --jobs 4
  snapdata restore latest --source orders --to postgres://…/orders_copy --table public.users
  snapdata restore latest --source db1.example/orders --to postgres://admin@new-db/orders --roles

--roles also recreates the server's roles (PostgreSQL: with their attributes, password hashes,
memberships and settings) or accounts (MySQL/MariaDB: with their authentication plugin,
password hash, global and database grants and roles), which only backups taken with
--all-databases store. It runs before the data, creates only the roles the target server
lacks, and leaves every existing role as it is (its password, attributes and grants; the
role the restore connects as is never touched); it never drops a role. It prints one line per
role saying what it did. Without --roles no role is ever created. PostgreSQL roles are
created in one transaction (all or none); MySQL/MariaDB accounts one by one.`,
		Args: exactArgs(1, "one SNAPSHOT id (or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErr{errors.New("restore needs --to TARGET (a DSN such as sqlite:./restored.db)")}
			}
			target, err := e.app.Target(to)
			if err != nil {
				return err
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
			if roles {
				rep, err := e.app.RestoreRoles(e.ctx, r, snap, target, false)
				if err != nil {
					return err
				}
				printRoles(e, rep)
			}
			p := e.newProgress("restore " + snap.ShortID())
			p.SetTotalBytes(snap.LogicalBytes)
			start := time.Now()
			err = e.app.Restore(e.ctx, r, snap, target, app.RestoreOptions{Jobs: jobs, Tables: tables, Clean: clean, NoOwner: noOwner, NoPrivileges: noPriv, TextCopy: textCopy, Progress: p})
			p.Done()
			if err != nil {
				return err
			}
			e.printf("restored snapshot %s (%s, %d tables) into %s in %s\n", snap.ShortID(), dsn.ShowSource(snap.Source), restoredTables(snap, tables), target, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target database: a DSN or a config source name")
	f.StringVar(&source, "source", "", "with latest: the source whose latest snapshot to use")
	f.StringArrayVar(&tables, "table", nil, "restore only this table (repeatable)")
	f.IntVarP(&jobs, "jobs", "j", 0, "database sessions that load tables and build indexes in parallel (default: number of cores); a PostgreSQL index build started while others sit idle gets their share as parallel workers")
	f.BoolVar(&clean, "clean", false, "replace an existing, non-empty target")
	f.BoolVar(&noOwner, "no-owner", false, "do not restore object owners")
	f.BoolVar(&noPriv, "no-privileges", false, "do not restore grants")
	f.BoolVar(&roles, "roles", false, "also create the roles or accounts (with password hashes and grants) that an --all-databases backup stored and the target server lacks; existing roles are left as they are")
	f.BoolVar(&textCopy, "text-copy", false, "PostgreSQL: load every table in COPY's text format, as pg_restore does (by default a table with a date or time column goes in COPY binary, which the server reads faster)")
	return cmd
}

// printRoles prints what restore --roles did, one line per role.
func printRoles(e *env, rep *engine.GlobalsReport) {
	created := 0
	for _, a := range rep.Actions {
		line := "role " + a.Name + ": " + a.Action
		if a.Detail != "" {
			line += " (" + a.Detail + ")"
		}
		e.printf("%s\n", line)
		if a.Action == engine.GlobalsCreated {
			created++
		}
	}
	e.printf("roles: %d created, %d left as they were\n", created, len(rep.Actions)-created)
}

// restoredTables is how many tables a restore wrote: the chosen ones
// (each named once) or all of the snapshot's.
func restoredTables(snap *manifest.Snapshot, chosen []string) int {
	if len(chosen) == 0 {
		return len(snap.Tables)
	}
	seen := map[string]bool{}
	for _, t := range chosen {
		seen[t] = true
	}
	return len(seen)
}

func (e *env) verifyCommand() *cobra.Command {
	var scratch, source string
	var jobs int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify SNAPSHOT|latest [--scratch DSN]",
		Short: "Prove a snapshot restores: test restore and compare every table",
		Long: `Restore the snapshot into a uniquely named scratch database, recompute each table's row count
and checksum, compare them with the manifest, print a verdict per table and drop the scratch
database. Exits 1 on any mismatch.

  snapdata verify latest                                  # SQLite: a temporary file
  snapdata verify latest --source orders --scratch postgres://admin@localhost:5432/`,
		Args: exactArgs(1, "one SNAPSHOT id (or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			snap, err := e.findSnapshot(r, args[0], source)
			if err != nil {
				return err
			}
			p := e.newProgress("verify " + snap.ShortID())
			p.SetTotalBytes(snap.LogicalBytes)
			res, err := e.app.Verify(e.ctx, r, snap, scratch, jobs, p)
			p.Done()
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(e, res); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM\tVERDICT")
				for _, t := range res.Tables {
					verdict := "ok"
					if !t.OK {
						verdict = "MISMATCH: " + t.Problem
					}
					// The whole checksum: a prefix cannot be compared
					// with the manifest's (snapshots --json).
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Table, t.GotRows, t.GotChecksum, verdict)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if !res.OK {
				return fmt.Errorf("snapshot %s failed verification", snap.ShortID())
			}
			e.info("snapshot %s verified: %d tables match (%s)\n", snap.ShortID(), len(res.Tables), res.Duration.Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&scratch, "scratch", "", "server DSN where a scratch database may be created (needed for postgres and mysql)")
	cmd.Flags().StringVar(&source, "source", "", "with latest: the source whose latest snapshot to verify")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel workers for the test restore and the checksums (default: number of cores)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdicts as JSON")
	return cmd
}
