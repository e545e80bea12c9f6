package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/inspect"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

// addInspectCommands adds the read-only inspection verbs (stats, diff,
// ls). ls names a snapshot's content, as in restic.
func (e *env) addInspectCommands(root *cobra.Command) {
	root.AddCommand(e.statsCommand(), e.diffCommand(), e.lsCommand())
}

// readOnly opens the repository and takes the shared lock of a reading
// command (none with --no-lock); done closes both.
func (e *env) readOnly(purpose string) (r *repository.Repository, done func(), err error) {
	r, err = e.openRepo()
	if err != nil {
		return nil, nil, err
	}
	unlock, err := e.app.ReadLock(e.ctx, r, purpose)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, func() { unlock(); r.Close() }, nil
}

// headerJSON is a snapshot's header in the JSON of diff and ls.
type headerJSON struct {
	ID            string            `json:"id"`
	Time          time.Time         `json:"time"`
	Host          string            `json:"host"`
	Source        string            `json:"source"`
	Engine        string            `json:"engine"`
	EngineVersion string            `json:"engine_version,omitempty"`
	Database      string            `json:"database,omitempty"`
	Tags          []string          `json:"tags"`
	Parent        string            `json:"parent,omitempty"`
	LogicalBytes  int64             `json:"logical_bytes"`
	AddedBytes    int64             `json:"added_bytes"`
	Duration      float64           `json:"duration_seconds,omitempty"`
	Tables        int               `json:"tables"`
	Meta          map[string]string `json:"meta,omitempty"`
}

func snapshotHeader(s *manifest.Snapshot) headerJSON {
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	return headerJSON{ID: s.ID, Time: s.Time, Host: s.Host, Source: dsn.ShowSource(s.Source), Engine: s.Engine, EngineVersion: s.EngineVersion,
		Database: s.Database, Tags: tags, Parent: s.Parent, LogicalBytes: s.LogicalBytes, AddedBytes: s.AddedBytes, Duration: s.Duration,
		Tables: len(s.Tables), Meta: s.Meta}
}

func localTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// stored prints a stored size, marked when some chunks' sizes are unknown.
func stored(n int64, unknown int) string {
	if unknown > 0 {
		return fmt.Sprintf("%s + %d unknown", progress.Bytes(n), unknown)
	}
	return progress.Bytes(n)
}

func times(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

func signedInt(n int64) string {
	if n > 0 {
		return "+" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

func signedBytes(n int64) string {
	switch {
	case n > 0:
		return "+" + progress.Bytes(n)
	case n < 0:
		return "-" + progress.Bytes(-n)
	}
	return "0 B"
}

func (e *env) statsCommand() *cobra.Command {
	var source string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [ID...] [--source S]",
		Short: "Show what each source's snapshots take: logical, deduplicated and stored bytes",
		Long: `Show, per source, what its snapshots hold and what they cost in the repository,
and a total in which chunks shared between sources count once:

  SNAPSHOTS      how many snapshots
  LATEST         logical (plaintext) size of the newest snapshot
  LOGICAL        logical size summed over all the snapshots: what separate plain dumps would take
  DEDUPLICATED   plaintext of the unique chunks the snapshots reference
  STORED         stored (compressed, encrypted) size of those unique chunks
  COMPRESSION    DEDUPLICATED / STORED
  DEDUP          LOGICAL / DEDUPLICATED: how many times deduplication shrank the snapshots

Then the repository as one listing finds it: every object and its bytes (locks aside), the data objects,
and those no snapshot references (an interrupted backup's, or a forgotten snapshot's until
'snapdata prune'). Sizes come from the manifests and that one listing; no data is read, so
stats is quick on any repository. A snapshot made before stored sizes were recorded takes
them from the listing; a chunk missing from the repository is counted as unknown
('snapdata check' names it).

  snapdata stats
  snapdata stats --source orders                # one source (a config name or the recorded name)
  snapdata stats 3f2a9c1e 77b01d42              # only these snapshots
  snapdata stats --json | jq '.total.stored_bytes'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := e.readOnly("stats")
			if err != nil {
				return err
			}
			defer done()
			all, damaged, err := r.ListAll(e.ctx)
			if err != nil {
				return err
			}
			for _, d := range damaged {
				e.info("warning: snapshot %s is damaged and left out ('snapdata forget %s' removes it): %v\n", d.ID[:8], d.ID[:8], d.Err)
			}
			chosen, err := e.chooseSnapshots(r, all, args, source)
			if err != nil {
				return err
			}
			l, err := inspect.List(e.ctx, r.Backend())
			if err != nil {
				return err
			}
			rep := inspect.Stats(app.GroupBySource(chosen), all, len(damaged), l)
			if asJSON {
				for i := range rep.Sources {
					rep.Sources[i].Source = dsn.ShowSource(rep.Sources[i].Source)
				}
				return printJSON(e, rep)
			}
			e.printStats(rep)
			if len(chosen) == 0 && source != "" {
				e.info("%s\n", noSourceHint(source, all))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "only this source's snapshots (with ids: the source of latest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON with raw byte counts")
	return cmd
}

// chooseSnapshots picks the snapshots stats sums: the named ones (ids,
// unique id prefixes, latest), else those of --source, else all.
func (e *env) chooseSnapshots(r *repository.Repository, all []*manifest.Snapshot, refs []string, source string) ([]*manifest.Snapshot, error) {
	if len(refs) > 0 {
		var out []*manifest.Snapshot
		seen := map[string]bool{}
		for _, ref := range refs {
			s, err := e.findSnapshot(r, ref, source)
			if err != nil {
				return nil, err
			}
			if !seen[s.ID] {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
		return out, nil
	}
	if source == "" {
		return all, nil
	}
	match, _ := e.app.SourceMatcher(source)
	var out []*manifest.Snapshot
	for _, s := range all {
		if match(s.Source) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (e *env) printStats(rep *inspect.StatsReport) {
	if len(rep.Sources) == 0 {
		e.printf("no snapshots\n")
	} else {
		e.printUsage(rep)
	}
	repo := rep.Repository
	e.printf("repository: %d objects, %s (locks aside); %d data objects, %s; %d snapshots", repo.Objects.Count, progress.Bytes(repo.Objects.Bytes),
		repo.Data.Count, progress.Bytes(repo.Data.Bytes), repo.Snapshots)
	if repo.Damaged > 0 {
		e.printf(" (and %d damaged)", repo.Damaged)
	}
	e.printf("\n")
	if u := repo.Unreferenced; u != nil && u.Count > 0 {
		e.printf("unreferenced: %d data objects, %s, used by no snapshot ('snapdata prune' removes them)\n", u.Count, progress.Bytes(u.Bytes))
	}
	if rep.Total.StoredUnknownChunks > 0 {
		e.printf("warning: %d chunks are missing from the repository, their stored size is unknown; run 'snapdata check'\n", rep.Total.StoredUnknownChunks)
	}
}

// printUsage prints the table of stats: a line per source and the total.
func (e *env) printUsage(rep *inspect.StatsReport) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tENGINE\tSNAPSHOTS\tLATEST\tLOGICAL\tDEDUPLICATED\tSTORED\tCOMPRESSION\tDEDUP")
	row := func(name, engine string, u inspect.Usage) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, engine, u.Snapshots, progress.Bytes(u.LatestLogicalBytes), progress.Bytes(u.LogicalBytes),
			progress.Bytes(u.DeduplicatedBytes), stored(u.StoredBytes, u.StoredUnknownChunks), times(u.CompressionRatio), times(u.DedupRatio))
	}
	for _, s := range rep.Sources {
		row(dsn.ShowSource(s.Source), s.Engine, s.Usage)
	}
	if len(rep.Sources) != 1 {
		row("total", "", rep.Total)
	}
	tw.Flush()
}

func (e *env) diffCommand() *cobra.Command {
	var source string
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "diff ID1 ID2",
		Short: "Show the tables added, removed and changed between two snapshots",
		Long: `Compare two snapshots (ids, unique id prefixes, or latest) by their manifests, without
reading their data: the tables added, removed and changed from ID1 to ID2 with their row
counts and logical sizes before and after, and whether the schema changed. A table is
unchanged when its data streams hold exactly the same chunks; a changed table whose row
count did not move had rows updated. Unchanged tables are counted in the summary and
listed with --all (and always in --json).

  snapdata diff 3f2a9c1e 77b01d42
  snapdata diff 3f2a9c1e latest --source orders
  snapdata diff 3f2a9c1e 77b01d42 --json | jq '.tables[] | select(.status != "unchanged")'

Snapshots of different engines can be compared by table names and row counts only (their
data is stored in different formats); diff says so.`,
		Args: exactArgs(2, "two SNAPSHOT ids (or latest): the older, then the newer"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := e.readOnly("diff")
			if err != nil {
				return err
			}
			defer done()
			before, err := e.findSnapshot(r, args[0], source)
			if err != nil {
				return err
			}
			after, err := e.findSnapshot(r, args[1], source)
			if err != nil {
				return err
			}
			rep := inspect.Diff(before, after)
			if asJSON {
				return printJSON(e, struct {
					Before headerJSON `json:"before"`
					After  headerJSON `json:"after"`
					*inspect.DiffReport
				}{snapshotHeader(before), snapshotHeader(after), rep})
			}
			e.printDiff(rep, all)
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest: the source whose latest snapshot to use")
	cmd.Flags().BoolVar(&all, "all", false, "list unchanged tables too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON with raw numbers")
	return cmd
}

func (e *env) printDiff(rep *inspect.DiffReport, all bool) {
	for _, x := range []struct {
		label string
		s     *manifest.Snapshot
	}{{"before", rep.Before}, {"after ", rep.After}} {
		var rows int64
		for _, t := range x.s.Tables {
			rows += t.Rows
		}
		e.printf("%s: %s  %s  %s  %s  (%d tables, %d rows, %s)\n", x.label, x.s.ShortID(), localTime(x.s.Time), dsn.ShowSource(x.s.Source), x.s.Engine,
			len(x.s.Tables), rows, progress.Bytes(x.s.LogicalBytes))
	}
	for _, n := range rep.Notes {
		e.printf("note: %s\n", n)
	}
	schema := "unchanged"
	if rep.SchemaChanged {
		schema = "changed"
	}
	e.printf("schema: %s\n", schema)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	listed := 0
	for _, t := range rep.Tables {
		if t.Status == inspect.Unchanged && !all {
			continue
		}
		if listed == 0 {
			fmt.Fprintln(tw, "TABLE\tSTATUS\tROWS BEFORE\tROWS AFTER\tROWS DELTA\tLOGICAL BEFORE\tLOGICAL AFTER\tLOGICAL DELTA")
		}
		listed++
		rowsB, rowsA, bytesB, bytesA := strconv.FormatInt(t.RowsBefore, 10), strconv.FormatInt(t.RowsAfter, 10), progress.Bytes(t.BytesBefore), progress.Bytes(t.BytesAfter)
		switch t.Status {
		case inspect.Added:
			rowsB, bytesB = "-", "-"
		case inspect.Removed:
			rowsA, bytesA = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Status, rowsB, rowsA, signedInt(t.RowsDelta), bytesB, bytesA, signedBytes(t.BytesDelta))
	}
	tw.Flush()
	s := rep.Summary
	e.printf("%d added, %d removed, %d changed, %d unchanged tables; rows %d -> %d (%s); table data %s -> %s (%s)\n",
		s.Added, s.Removed, s.Changed, s.Unchanged, s.RowsBefore, s.RowsAfter, signedInt(s.RowsDelta),
		progress.Bytes(s.BytesBefore), progress.Bytes(s.BytesAfter), signedBytes(s.BytesDelta))
}

func (e *env) lsCommand() *cobra.Command {
	var source string
	var asJSON, streams bool
	cmd := &cobra.Command{
		Use:   "ls ID [--streams]",
		Short: "List a snapshot's tables (and streams) with their sizes",
		Long: `Show one snapshot (an id, a unique id prefix, or latest): its time, host, source, engine,
tags and sizes, then each table with its rows, logical bytes, stored bytes (its unique chunks,
compressed and encrypted), data streams (a big table is split into parts) and chunks.
--streams also lists every stream: schema, meta and data, with its kind, format, size and
chunk count. Only the manifest is read. To list the snapshots themselves use 'snapdata snapshots'.

  snapdata ls latest
  snapdata ls 3f2a9c1e --streams
  snapdata ls latest --source orders --json | jq '.tables[] | {name, rows}'`,
		Args: exactArgs(1, "one SNAPSHOT id (or latest); to list the snapshots use 'snapdata snapshots'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := e.readOnly("ls")
			if err != nil {
				return err
			}
			defer done()
			snap, err := e.findSnapshot(r, args[0], source)
			if err != nil {
				return err
			}
			var l *inspect.Listing
			if inspect.NeedsListing(snap) {
				if l, err = inspect.List(e.ctx, r.Backend()); err != nil {
					return err
				}
			}
			out := inspect.Ls(snap, l)
			if !streams {
				out.Streams = nil
			}
			if asJSON {
				return printJSON(e, struct {
					Snapshot headerJSON `json:"snapshot"`
					*inspect.Listed
				}{snapshotHeader(snap), out})
			}
			e.printLs(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest: the source whose latest snapshot to list")
	cmd.Flags().BoolVar(&streams, "streams", false, "list every stream too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON with raw numbers")
	return cmd
}

func (e *env) printLs(out *inspect.Listed) {
	s := out.Snapshot
	tags := strings.Join(s.Tags, ",")
	if tags == "" {
		tags = "-"
	}
	engine := s.Engine
	if s.EngineVersion != "" {
		engine += " (" + s.EngineVersion + ")"
	}
	hw := tabwriter.NewWriter(e.stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(hw, "snapshot\t%s\n", s.ID)
	fmt.Fprintf(hw, "time\t%s\n", localTime(s.Time))
	fmt.Fprintf(hw, "host\t%s\n", s.Host)
	fmt.Fprintf(hw, "source\t%s\n", dsn.ShowSource(s.Source))
	if s.Database != "" {
		fmt.Fprintf(hw, "database\t%s\n", s.Database)
	}
	fmt.Fprintf(hw, "engine\t%s\n", engine)
	fmt.Fprintf(hw, "tags\t%s\n", tags)
	if s.Parent != "" {
		fmt.Fprintf(hw, "parent\t%s\n", s.Parent)
	}
	fmt.Fprintf(hw, "tables\t%d, %d rows\n", len(s.Tables), out.Rows)
	fmt.Fprintf(hw, "logical\t%s\n", progress.Bytes(out.LogicalBytes))
	fmt.Fprintf(hw, "stored\t%s, %d unique chunks (those it shares with other snapshots included); its backup added %s\n",
		stored(out.StoredBytes, out.StoredUnknownChunks), out.Chunks, progress.Bytes(s.AddedBytes))
	fmt.Fprintf(hw, "schema, meta\t%d streams, %s\n", out.OtherStreams, progress.Bytes(out.OtherBytes))
	hw.Flush()
	e.printf("\n")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tLOGICAL\tSTORED\tSTREAMS\tCHUNKS")
	for _, t := range out.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\n", t.Name, t.Rows, progress.Bytes(t.LogicalBytes), stored(t.StoredBytes, t.StoredUnknownChunks), t.Streams, t.Chunks)
	}
	tw.Flush()
	if out.Streams == nil {
		return
	}
	e.printf("\n")
	tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tKIND\tFORMAT\tLOGICAL\tSTORED\tCHUNKS")
	for _, st := range out.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", st.Name, st.Kind, st.Format, progress.Bytes(st.LogicalBytes), stored(st.StoredBytes, st.StoredUnknownChunks), st.Chunks)
	}
	tw.Flush()
}
