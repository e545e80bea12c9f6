package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/retention"
)

func (e *env) initCommand() *cobra.Command {
	var noEnc, cols bool
	var chunkSize, chunkerName, compression string
	cmd := &cobra.Command{
		Use:   "init --repo REPO",
		Short: "Create a new repository",
		Long: `Create a new, empty repository. It is encrypted with a key derived from the password
(Argon2id) unless --no-encryption is given.

The chunker, the average chunk size and the compression are fixed when the repository is
created; snapshots written later all use them.

  --chunker fastcdc      FastCDC with a secret per-repository gear table (default): about
                         5× faster than rabin, chunk sizes close to the average
  --chunker rabin        restic's Rabin chunker, as repositories made before snapdata had
                         this flag (older snapdata releases can still open these)
  --compression fastest  zstd -1 (default): keeps backups fast
  --compression default  zstd -3: ~2 % smaller, ~2× the compression CPU
  --compression better   zstd -7: ~10 % smaller, below pg_dump -Fc, ~7× the compression CPU
  --compression best     zstd -11: ~12 % smaller, ~16× the compression CPU (archives)
  (figures for libzstd, which snapdata uses when built with cgo; "snapdata version" says)
  --columns=false        store table data row by row, as releases before the column filter
                         did (they cannot open a repository that uses it). By default each
                         chunk of tab-separated rows is stored column by column before it is
                         compressed: ids next to ids, timestamps next to timestamps. On the
                         bench data that makes the repository about 14 % smaller.

Whatever the level, the new chunks of a backup in which at most a tenth of the data is new
(a later backup of a database that mostly did not change) are compressed at least at
"better": about 10 % smaller for little CPU, since there is little to compress.

  SNAPDATA_PASSWORD=… snapdata init --repo ./backups
  snapdata init --repo ./backups --compression better
  snapdata init --repo 's3://bucket/prefix?endpoint=http://127.0.0.1:9000' --password-file /run/secrets/repo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := repository.InitOptions{NoEncryption: noEnc, NoColumns: !cols}
			if chunkSize != "" {
				n, err := parseSize(chunkSize)
				if err != nil || n < 4096 || n > 16<<20 || n&(n-1) != 0 {
					return usageErr{fmt.Errorf("--chunk-size %q: expected a power of two between 4KiB and 16MiB, e.g. 1MiB", chunkSize)}
				}
				opts.ChunkAvgBits = bits.TrailingZeros64(uint64(n))
			}
			if !slices.Contains(repository.Chunkers, chunkerName) {
				return usageErr{fmt.Errorf("--chunker %q: expected one of %s", chunkerName, strings.Join(repository.Chunkers, ", "))}
			}
			opts.Chunker = chunkerName
			level, err := repository.ParseCompression(compression)
			if err != nil {
				return usageErr{fmt.Errorf("--compression %q: expected one of %s", compression, strings.Join(repository.Compressions, ", "))}
			}
			opts.CompressionLevel = level
			r, loc, err := e.app.InitRepository(e.ctx, e.repo, opts)
			if err != nil {
				return err
			}
			defer r.Close()
			kind := "encrypted"
			if noEnc {
				kind = "unencrypted"
			}
			p := r.Params()
			filter := "rows stored column by column"
			if !p.Columns {
				filter = "rows stored row by row"
			}
			e.printf("created %s repository %s at %s (%s chunker, %s average chunks, %s compression, %s)\n", kind, p.ID[:8], loc,
				p.ChunkerName(), chunkSizeName(p.ChunkAvgBits), repository.CompressionName(p.CompressionLevel), filter)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noEnc, "no-encryption", false, "store data unencrypted (still compressed and deduplicated)")
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "", "average chunk size, a power of two (default 1MiB)")
	cmd.Flags().StringVar(&chunkerName, "chunker", repository.DefaultChunker, "content-defined chunker: "+strings.Join(repository.Chunkers, " or "))
	cmd.Flags().StringVar(&compression, "compression", "fastest", "zstd compression: "+strings.Join(repository.Compressions, ", "))
	cmd.Flags().BoolVar(&cols, "columns", true, "store chunks of tab-separated rows column by column before compressing them (smaller)")
	return cmd
}

// chunkSizeName spells 2^bits bytes as --chunk-size takes it.
func chunkSizeName(bits int) string {
	if bits >= 20 {
		return fmt.Sprintf("%dMiB", 1<<(bits-20))
	}
	return fmt.Sprintf("%dKiB", 1<<max(bits-10, 0))
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suf) {
			mult, s = u.m, strings.TrimSuffix(s, u.suf)
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, err
	}
	return n * mult, nil
}

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
	cmd.Flags().BoolVar(&allDBs, "all-databases", false, "back up every user database of the server each SOURCE names, one snapshot each")
	return cmd
}

type snapshotJSON struct {
	ID            string            `json:"id"`
	Time          time.Time         `json:"time"`
	Host          string            `json:"host"`
	Source        string            `json:"source"`
	Engine        string            `json:"engine"`
	EngineVersion string            `json:"engine_version,omitempty"`
	Database      string            `json:"database,omitempty"`
	Tags          []string          `json:"tags"`
	LogicalBytes  int64             `json:"logical_bytes"`
	AddedBytes    int64             `json:"added_bytes"`
	Tables        []manifest.Table  `json:"tables"`
	Parent        string            `json:"parent,omitempty"`
	Meta          map[string]string `json:"meta,omitempty"`
}

func snapshotsJSON(snaps []*manifest.Snapshot) []snapshotJSON {
	out := make([]snapshotJSON, 0, len(snaps))
	for _, s := range snaps {
		tags := s.Tags
		if tags == nil {
			tags = []string{}
		}
		tables := s.Tables
		if tables == nil {
			tables = []manifest.Table{}
		}
		out = append(out, snapshotJSON{ID: s.ID, Time: s.Time, Host: s.Host, Source: dsn.ShowSource(s.Source), Engine: s.Engine, EngineVersion: s.EngineVersion,
			Database: s.Database, Tags: tags, LogicalBytes: s.LogicalBytes, AddedBytes: s.AddedBytes, Tables: tables, Parent: s.Parent, Meta: s.Meta})
	}
	return out
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) snapshotsCommand() *cobra.Command {
	var source string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "snapshots",
		Aliases: []string{"list", "ls"},
		Short:   "List snapshots",
		Long: `List the snapshots of the repository: id, time, source, engine, tables, rows,
logical size and the bytes each added to the repository.

  snapdata snapshots --repo ./backups
  snapdata snapshots --source orders            # one source (a config name or the recorded name)
  snapdata snapshots --json | jq '.[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := r.List(e.ctx)
			if err != nil {
				return err
			}
			match := func(string) bool { return true }
			if source != "" {
				match, _ = e.app.SourceMatcher(source)
			}
			var snaps []*manifest.Snapshot
			for _, s := range all {
				if match(s.Source) {
					snaps = append(snaps, s)
				}
			}
			if asJSON {
				return printJSON(e, snapshotsJSON(snaps))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tSOURCE\tENGINE\tTABLES\tROWS\tLOGICAL\tADDED\tTAGS")
			for _, s := range snaps {
				var rows int64
				for _, t := range s.Tables {
					rows += t.Rows
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"), dsn.ShowSource(s.Source), s.Engine,
					len(s.Tables), rows, progress.Bytes(s.LogicalBytes), progress.Bytes(s.AddedBytes), strings.Join(s.Tags, ","))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			e.info("%d snapshot(s)\n", len(snaps))
			if len(snaps) == 0 && source != "" {
				e.info("%s\n", noSourceHint(source, all))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "only snapshots of this source")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// noSourceHint explains a --source that matches no snapshot by listing the
// sources the repository holds.
func noSourceHint(source string, all []*manifest.Snapshot) string {
	var known []string
	for _, s := range all {
		if name := dsn.ShowSource(s.Source); !slices.Contains(known, name) {
			known = append(known, name)
		}
	}
	if len(known) == 0 {
		return fmt.Sprintf("no snapshot of source %s: the repository holds no snapshots yet", dsn.ShowSource(source))
	}
	sort.Strings(known)
	return fmt.Sprintf("no snapshot of source %s; the repository holds snapshots of: %s", dsn.ShowSource(source), strings.Join(known, ", "))
}

func (e *env) findSnapshot(r *repository.Repository, ref, source string) (*manifest.Snapshot, error) {
	// A missing or ambiguous snapshot exits 2 (exitCauses).
	return e.app.FindSnapshot(e.ctx, r, ref, source)
}

func (e *env) restoreCommand() *cobra.Command {
	var to, source string
	var tables []string
	var jobs int
	var clean, noOwner, noPriv, textCopy bool
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest --to TARGET",
		Short: "Restore a snapshot into a database",
		Long: `Restore a snapshot (an id prefix, or latest) into TARGET: a DSN or a config source name.
The target must be empty (a missing SQLite file, an empty database) unless --clean is given.
With --table only the chosen tables are touched: they must be absent, or --clean replaces
just them; every other table of the target stays as it is.

  snapdata restore latest --to sqlite:./restored.db
  snapdata restore 3f2a9c1e --to postgres://app@localhost/orders_copy --jobs 4
  snapdata restore latest --source orders --to postgres://…/orders_copy --table public.users`,
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
	f.BoolVar(&textCopy, "text-copy", false, "PostgreSQL: load every table in COPY's text format, as pg_restore does (by default a table with a date or time column goes in COPY binary, which the server reads faster)")
	return cmd
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
every listing and stops prune until it is removed):

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
				rep, err := e.app.Prune(e.ctx, r)
				if err != nil {
					return err
				}
				e.printf("pruned %d objects (%s), kept %d objects (%s)\n", rep.RemovedObjects, progress.Bytes(rep.RemovedBytes), rep.KeptObjects, progress.Bytes(rep.KeptBytes))
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
	if errors.Is(err, repository.ErrSnapshotNotFound) {
		return usageErr{err}
	}
	if err != nil {
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
		rep, err := e.app.Prune(e.ctx, r)
		if err != nil {
			return err
		}
		e.printf("pruned %d objects (%s), kept %d objects (%s)\n", rep.RemovedObjects, progress.Bytes(rep.RemovedBytes), rep.KeptObjects, progress.Bytes(rep.KeptBytes))
	}
	return nil
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
error: 'snapdata prune' removes it.

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

// newProgress returns the progress of a long operation: drawn on stderr
// when it is a terminal, never with --quiet.
func (e *env) newProgress(label string) *progress.Progress {
	if e.quiet {
		return progress.New(label, io.Discard)
	}
	return progress.New(label, e.stderr)
}

// output is where a command writes its result file.
type output struct {
	f    *os.File
	tmp  string // the temporary file renamed onto dest by commit; "" when writing dest directly
	dest string
	done bool
}

// openOutput opens -o for writing; nil for standard output ("" or "-").
// A regular file (new or existing, also behind a symlink) is written to a
// temporary file beside it that commit renames into place, so a failed
// export never leaves a partial file under the name. Anything else that
// exists (a device such as /dev/null or /dev/stdout, a FIFO) is written
// directly: renaming onto it would replace it.
func (e *env) openOutput(path string) (*output, error) {
	if path == "" || path == "-" {
		return nil, nil
	}
	dest := path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		dest = real
	}
	if fi, err := os.Stat(dest); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("create %s: is a directory", path)
		}
		f, err := os.OpenFile(dest, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return &output{f: f, dest: dest}, nil
	}
	tmp := dest + ".snapdata-tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &output{f: f, tmp: tmp, dest: dest}, nil
}

// commit finishes the file: synced and, for a regular file, renamed into
// place.
func (o *output) commit() error {
	if o.tmp == "" {
		o.done = true
		return o.f.Close()
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(o.tmp, o.dest); err != nil {
		return err
	}
	o.done = true
	return nil
}

// discard closes an output that was not committed and removes its
// temporary file; it never removes anything else.
func (o *output) discard() {
	if o.done {
		return
	}
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}
