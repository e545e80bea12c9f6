package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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
