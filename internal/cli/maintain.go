package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/retention"
)

func (e *env) forgetCommand() *cobra.Command {
	var p retention.Policy
	var within config.Duration
	var withinStr, source string
	var dryRun, prune, asJSON bool
	cmd := &cobra.Command{
		Use:   "forget [ID...] | --keep-… [--dry-run] [--prune]",
		Short: "Remove the named snapshots, or those no keep rule keeps",
		Long: `Apply keep rules to the snapshots of each source separately, as restic does:

  --keep-last N       the N newest snapshots
  --keep-hourly N     the newest snapshot of each of the last N hours that have one
  --keep-daily/weekly/monthly/yearly N   likewise per day, ISO week, month, year
  --keep-within 7d    every snapshot within that long of the source's newest
  --keep-tag T        every snapshot tagged T

The newest snapshot of every source is always kept. --dry-run shows the plan and
removes nothing; --prune also deletes the data no remaining snapshot uses.

Given snapshot ids (or unique id prefixes) instead of keep rules, forget removes exactly
those snapshots, damaged ones included (a manifest that cannot be read is skipped by
every listing and stops prune until it is removed), and snapshots whose manifest is missing
(deleted outside snapdata; 'snapdata check' names them), which removes their record:

  snapdata forget 3f2a9c1e
  snapdata forget 3f2a9c1e 77b01d42 --dry-run`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range []struct {
				flag string
				n    int
			}{{"keep-last", p.Last}, {"keep-hourly", p.Hourly}, {"keep-daily", p.Daily}, {"keep-weekly", p.Weekly}, {"keep-monthly", p.Monthly}, {"keep-yearly", p.Yearly}} {
				if k.n < 0 {
					return usageErr{fmt.Errorf("--%s %d: expected 0 or more", k.flag, k.n)}
				}
			}
			if len(args) > 0 {
				if withinStr != "" || p.Last != 0 || p.Hourly != 0 || p.Daily != 0 || p.Weekly != 0 || p.Monthly != 0 || p.Yearly != 0 || len(p.Tags) > 0 || source != "" {
					return usageErr{errors.New("forget takes either snapshot ids or keep rules (and --source), not both")}
				}
				return e.forgetIDs(args, dryRun, prune, asJSON)
			}
			if withinStr != "" {
				d, err := config.ParseDuration(withinStr)
				if err != nil {
					return usageErr{fmt.Errorf("--keep-within: %w", err)}
				}
				if d < 0 {
					return usageErr{fmt.Errorf("--keep-within %s: expected a positive duration", withinStr)}
				}
				within = config.Duration(d)
			}
			p.Within = within.D()
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			if source != "" {
				if s, err := e.app.Source(source); err == nil {
					source = s.Name
				}
			}
			res, err := e.app.Forget(e.ctx, r, p, source, dryRun)
			if err != nil {
				return err
			}
			if asJSON {
				type item struct {
					ID      string   `json:"id"`
					Source  string   `json:"source"`
					Time    string   `json:"time"`
					Keep    bool     `json:"keep"`
					Reasons []string `json:"reasons,omitempty"`
				}
				var items []item
				for _, g := range res.Groups {
					for _, d := range g.Decisions {
						items = append(items, item{d.Snapshot.ID, g.Source, d.Snapshot.Time.Format(time.RFC3339), d.Keep, d.Reasons})
					}
				}
				if err := printJSON(e, items); err != nil {
					return err
				}
			} else {
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, g := range res.Groups {
					e.printf("source %s (%s):\n", dsn.ShowSource(g.Source), p)
					for _, d := range g.Decisions {
						if d.Keep {
							e.printf("  keep    %s  %s  (%s)\n", d.Snapshot.ShortID(), d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(d.Reasons, ", "))
						} else {
							e.printf("  remove  %s  %s\n", d.Snapshot.ShortID(), d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"))
						}
					}
				}
				e.printf("%s %d snapshots\n", verb, len(res.Removed))
			}
			if prune && !dryRun {
				return e.pruneAfterForget(r)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots")
	f.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	f.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	f.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	f.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	f.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	f.StringVar(&withinStr, "keep-within", "", "keep every snapshot within this duration of the newest (e.g. 36h, 7d)")
	f.StringArrayVar(&p.Tags, "keep-tag", nil, "keep snapshots with this tag (repeatable)")
	f.StringVar(&source, "source", "", "only this source's snapshots")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed, remove nothing")
	f.BoolVar(&prune, "prune", false, "prune unreferenced data afterwards")
	f.BoolVar(&asJSON, "json", false, "print the decisions as JSON")
	return cmd
}

// forgetIDs removes the named snapshots (forget ID...).
func (e *env) forgetIDs(refs []string, dryRun, prune, asJSON bool) error {
	r, err := e.openRepo()
	if err != nil {
		return err
	}
	defer r.Close()
	ids, err := e.app.ForgetIDs(e.ctx, r, refs, dryRun)
	if err != nil { // an unknown or ambiguous id exits 2 (exitCauses)
		return err
	}
	if asJSON {
		type item struct {
			ID      string `json:"id"`
			Removed bool   `json:"removed"`
		}
		items := make([]item, len(ids))
		for i, id := range ids {
			items[i] = item{id, !dryRun}
		}
		if err := printJSON(e, items); err != nil {
			return err
		}
	} else {
		verb := "removed"
		if dryRun {
			verb = "would remove"
		}
		for _, id := range ids {
			e.printf("%s snapshot %s\n", verb, id[:8])
		}
		e.printf("%s %d snapshots\n", verb, len(ids))
	}
	if prune && !dryRun {
		return e.pruneAfterForget(r)
	}
	return nil
}

// pruneAfterForget runs the prune of forget --prune and prints its report.
func (e *env) pruneAfterForget(r *repository.Repository) error {
	rep, err := e.app.Prune(e.ctx, r)
	if err != nil {
		return err
	}
	e.printMissingManifests(rep, false)
	e.printf("pruned %d objects (%s), kept %d objects (%s)\n", rep.RemovedObjects, progress.Bytes(rep.RemovedBytes), rep.KeptObjects, progress.Bytes(rep.KeptBytes))
	return nil
}

// printMissingManifests warns about each snapshot whose manifest is
// missing (its record is stored): prune deleted its data.
func (e *env) printMissingManifests(rep *repository.PruneReport, dryRun bool) {
	what := "this prune deleted the data only it used"
	if dryRun {
		what = "prune would delete the data only it used"
	}
	for _, m := range rep.MissingManifests {
		e.printf("warning: %s: manifest missing (deleted?); %s; 'snapdata forget %s' acknowledges it\n", m, what, m.ID[:8])
	}
}

func (e *env) pruneCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete data that no snapshot references",
		Long: `Delete the stored data no snapshot references any more: what 'snapdata forget' left behind
and the chunks of interrupted backups. It waits for running backups (their locks) first.

  snapdata prune --repo ./backups
  snapdata prune --dry-run                      # show what would be deleted, delete nothing
  snapdata forget --keep-daily 7 --prune        # forget and prune in one go`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			var rep *repository.PruneReport
			if dryRun {
				rep, err = r.Prune(e.ctx, true)
			} else {
				rep, err = e.app.Prune(e.ctx, r)
			}
			if err != nil {
				return err
			}
			e.printMissingManifests(rep, dryRun)
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			e.printf("%s %d objects (%s), kept %d objects (%s)\n", verb, rep.RemovedObjects, progress.Bytes(rep.RemovedBytes), rep.KeptObjects, progress.Bytes(rep.KeptBytes))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed")
	return cmd
}

func (e *env) checkCommand() *cobra.Command {
	var readData, asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--read-data]",
		Short: "Check the repository's structure (and with --read-data, every byte)",
		Long: `Check that every snapshot loads and every chunk it references is stored. With --read-data,
also read, decrypt and re-hash every stored chunk, and name each damaged object together with
every snapshot it harms. Data left behind by interrupted backups is reported but is not an
error: 'snapdata prune' removes it. A snapshot whose manifest is missing (deleted outside
snapdata) is an error, named with its source and time from its record: prune would delete its
data, 'snapdata forget ID' acknowledges it. Snapshots made before snapdata kept these records
(index/snapshots/) are not watched.

  snapdata check --repo ./backups
  snapdata check --read-data                    # also read and authenticate every byte
  snapdata check --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			unlock, err := e.app.ReadLock(e.ctx, r, "check")
			if err != nil {
				return err
			}
			defer unlock()
			p := e.newProgress("check --read-data")
			rep, err := r.Check(e.ctx, readData, p)
			p.Done()
			if err != nil {
				return err
			}
			if asJSON {
				if rep.Errors == nil {
					rep.Errors = []repository.Problem{}
				}
				if err := printJSON(e, rep); err != nil {
					return err
				}
			} else {
				e.printf("%d snapshots, %d data objects", rep.Snapshots, rep.DataObjects)
				if readData {
					e.printf(", %d read and authenticated", rep.ReadObjects)
				}
				e.printf("\n")
				if rep.Unreferenced > 0 {
					e.printf("%d unreferenced objects (%s): left by interrupted backups or forgotten snapshots, or the data of a snapshot whose manifest was deleted; 'snapdata prune' deletes them for good\n", rep.Unreferenced, progress.Bytes(rep.UnreferencedSize))
				}
				if rep.StaleLocks > 0 {
					e.printf("%d stale locks: 'snapdata unlock' removes them\n", rep.StaleLocks)
				}
				for _, p := range rep.InterruptedTags {
					e.printf("note: %s; harmless: the next 'snapdata tag' removes %s, or 'snapdata forget %s'\n", p, p.Old[:8], p.Old[:8])
				}
				for _, p := range rep.Errors {
					short := make([]string, len(p.Snapshots))
					for i, s := range p.Snapshots {
						short[i] = s
						if len(s) > 8 {
							short[i] = s[:8]
						}
					}
					sort.Strings(short)
					e.printf("error: %s: %s", p.Object, p.Message)
					if len(short) > 0 {
						e.printf(" (harms snapshots: %s", strings.Join(short, ", "))
						if len(p.Tables) > 0 {
							e.printf("; tables: %s", strings.Join(p.Tables, ", "))
						}
						e.printf(")")
					}
					e.printf("\n")
				}
			}
			if !rep.OK() {
				return fmt.Errorf("check found %d errors", len(rep.Errors))
			}
			if !asJSON {
				e.printf("no errors found\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and authenticate every stored chunk")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func (e *env) unlockCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove locks left by processes that died",
		Long: `Remove stale locks: locks their holder has not refreshed for 10 minutes (a live snapdata
refreshes its lock every minute), and locks of this host whose process no longer runs here.
Until it is stale, such a lock blocks prune: its holder may run in another PID namespace (a
container) on a host of the same name, which only you can rule out. --remove-all removes every
lock; use it only when you are sure no other snapdata process uses the repository.

  snapdata unlock --repo ./backups
  snapdata unlock --remove-all                  # only when no snapdata process uses the repository`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			removed, err := r.RemoveLocks(e.ctx, all)
			if err != nil {
				return err
			}
			for _, l := range removed {
				e.printf("removed %s\n", l)
				if age := time.Since(l.Time); !all && age <= repository.LockStale {
					e.printf("  (refreshed %s ago, but no process %d runs here; if it runs in another PID namespace, e.g. a container, it is no longer protected from prune and will fail rather than save a snapshot with missing data)\n",
						age.Round(time.Second), l.PID)
				}
			}
			e.printf("removed %d locks\n", len(removed))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "remove-all", false, "remove all locks, also live ones")
	return cmd
}
