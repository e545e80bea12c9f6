package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/repository"
)

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
	Original      string            `json:"original,omitempty"`
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
			Database: s.Database, Tags: tags, LogicalBytes: s.LogicalBytes, AddedBytes: s.AddedBytes, Tables: tables, Parent: s.Parent, Meta: s.Meta, Original: s.Original})
	}
	return out
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) snapshotsCommand() *cobra.Command {
	var f snapshotFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "snapshots",
		Aliases: []string{"list"},
		Short:   "List snapshots",
		Long: `List the snapshots of the repository: id, time, source, engine, tables, rows,
logical size, the bytes each added to the repository, and tags.

Filters combine (a snapshot must pass every one given), as in restic:
  --source S     snapshots of one source (a config name or the recorded name)
  --host H       snapshots taken on host H; repeated, any of them
  --tag a,b      snapshots carrying both a and b; repeated (--tag a --tag b), either
  --latest N     the N newest snapshots of each source, after the other filters

  snapdata snapshots --repo ./backups
  snapdata snapshots --source orders            # one source
  snapdata snapshots --tag nightly --latest 1   # the newest nightly snapshot of each source
  snapdata snapshots --tag keep,audit           # tagged both keep and audit
  snapdata snapshots --json | jq '.[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			r, err := e.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := r.List(e.ctx)
			if err != nil {
				return err
			}
			snaps := e.filterSnapshots(f, all)
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
			if len(snaps) == 0 && f.source != "" {
				e.info("%s\n", noSourceHint(f.source, all))
			}
			return nil
		},
	}
	f.addFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// snapshotFilter selects snapshots (snapshots, tag): every filter given
// must pass.
type snapshotFilter struct {
	source string
	// tags are the --tag values: a value "a,b" needs both a and b; a
	// snapshot passes when any value does.
	tags   []string
	hosts  []string
	latest int // the N newest of each source, after the other filters; 0: all
}

func (f *snapshotFilter) addFlags(fs *pflag.FlagSet, withLatest bool) {
	fs.StringVar(&f.source, "source", "", "only snapshots of this source")
	fs.StringArrayVar(&f.tags, "tag", nil, "only snapshots with these tags: a,b = both; repeat the flag for either")
	fs.StringArrayVar(&f.hosts, "host", nil, "only snapshots taken on this host (repeatable: any of them)")
	if withLatest {
		fs.IntVar(&f.latest, "latest", 0, "only the N newest snapshots of each source")
	}
}

// empty reports whether no filter was given.
func (f snapshotFilter) empty() bool {
	return f.source == "" && len(f.tags) == 0 && len(f.hosts) == 0 && f.latest == 0
}

// validate checks the filter's flag values.
func (f snapshotFilter) validate() error {
	if f.latest < 0 {
		return usageErr{fmt.Errorf("--latest %d: expected 1 or more", f.latest)}
	}
	for _, v := range f.tags {
		for _, t := range strings.Split(v, ",") {
			if err := repository.ValidateTag(t); err != nil {
				return usageErr{fmt.Errorf("--tag %q: %w", v, err)}
			}
		}
	}
	for _, h := range f.hosts {
		if h == "" {
			return usageErr{errors.New("--host: an empty host name")}
		}
	}
	return nil
}

// matchTags reports whether a snapshot's tags pass the --tag values.
func (f snapshotFilter) matchTags(s *manifest.Snapshot) bool {
	if len(f.tags) == 0 {
		return true
	}
	for _, v := range f.tags {
		all := true
		for _, t := range strings.Split(v, ",") {
			if !s.HasTag(t) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// filterSnapshots returns the snapshots of all (oldest first) that pass f,
// in the same order.
func (e *env) filterSnapshots(f snapshotFilter, all []*manifest.Snapshot) []*manifest.Snapshot {
	match := func(string) bool { return true }
	if f.source != "" {
		match, _ = e.app.SourceMatcher(f.source)
	}
	var out []*manifest.Snapshot
	for _, s := range all {
		if match(s.Source) && (len(f.hosts) == 0 || slices.Contains(f.hosts, s.Host)) && f.matchTags(s) {
			out = append(out, s)
		}
	}
	if f.latest > 0 {
		// Newest first per source (sources as forget groups them), then
		// back in the listing's order.
		keep := map[*manifest.Snapshot]bool{}
		seen := map[string]int{}
		for i := len(out) - 1; i >= 0; i-- {
			k := dsn.SourceKey(out[i].Source)
			if seen[k] < f.latest {
				seen[k]++
				keep[out[i]] = true
			}
		}
		out = slices.DeleteFunc(out, func(s *manifest.Snapshot) bool { return !keep[s] })
	}
	return out
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
