package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
)

func (e *env) tagCommand() *cobra.Command {
	var change repository.TagChange
	var f snapshotFilter
	var all, dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "tag --add T | --remove T | --set T  [ID...] [--source S] [--host H] [--tag T] [--all]",
		Short: "Add, remove or replace the tags of snapshots",
		Long: `Change the tags of the chosen snapshots: snapshots named by id (or unique id prefix), the
snapshots that pass the filters (--source, --host, --tag, as in 'snapdata snapshots'), both
(named and passing), or --all.

  --add T      add tag T (repeatable; a,b adds both)
  --remove T   remove tag T (repeatable; a,b removes both)
  --set T      replace all tags by T (repeatable); --set '' removes every tag

A snapshot's tags are part of its manifest, whose id is the hash of its content: a changed
snapshot gets a new id (printed; 'snapdata snapshots --json' shows the first id as
"original"). Its data is not copied or rewritten. The new manifest is stored before the old
one is removed, under the repository's exclusive lock, so neither a crash nor a prune can
lose the snapshot: a crash in between leaves two snapshots with the same data, which
'snapdata check' explains and the next 'snapdata tag' resolves (it removes the old one).
'forget --keep-tag T' keeps the snapshots tagged T.

  snapdata tag --add keep 3f2a9c1e
  snapdata tag --source orders --tag nightly --add monthly-2026-11 --dry-run
  snapdata tag --remove obsolete --all
  snapdata tag --set release-1.4 77b01d42`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			change.Add, change.Remove, change.Set = splitTags(change.Add), splitTags(change.Remove), splitTags(change.Set)
			change.SetGiven = cmd.Flags().Changed("set")
			if err := change.Validate(); err != nil {
				return usageErr{err}
			}
			if err := f.validate(); err != nil {
				return err
			}
			if all && (len(args) > 0 || !f.empty()) {
				return usageErr{errors.New("--all chooses every snapshot: give it without snapshot ids or filters")}
			}
			if !all && len(args) == 0 && f.empty() {
				return usageErr{errors.New("no snapshot chosen: name snapshot ids, filter with --source, --host or --tag, or give --all")}
			}
			return e.tag(change, f, args, dryRun, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&change.Add, "add", nil, "add this tag (repeatable)")
	fl.StringArrayVar(&change.Remove, "remove", nil, "remove this tag (repeatable)")
	fl.StringArrayVar(&change.Set, "set", nil, "replace all tags by this one (repeatable; '' for none)")
	f.addFlags(fl, false)
	fl.BoolVar(&all, "all", false, "change every snapshot of the repository")
	fl.BoolVarP(&dryRun, "dry-run", "n", false, "show what would change, write nothing")
	fl.BoolVar(&asJSON, "json", false, "print the changes as JSON")
	return cmd
}

// splitTags splits comma-separated flag values and drops empty ones.
func splitTags(values []string) []string {
	var out []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// tagResult is one snapshot's outcome, as --json prints it.
type tagResult struct {
	ID      string   `json:"id"`
	NewID   string   `json:"new_id,omitempty"`
	OldTags []string `json:"old_tags"`
	NewTags []string `json:"new_tags"`
	Changed bool     `json:"changed"`
}

// tag runs 'snapdata tag'.
func (e *env) tag(change repository.TagChange, f snapshotFilter, refs []string, dryRun, asJSON bool) error {
	r, err := e.openRepo()
	if err != nil {
		return err
	}
	defer r.Close()
	var lock *repository.Lock
	if !dryRun {
		lock, err = e.exclusiveLock(r, "tag")
		if err != nil {
			return err
		}
		defer lock.Unlock() //nolint:errcheck // best effort
	}
	all, err := r.List(e.ctx)
	if err != nil {
		return err
	}
	// Finish tag runs a crash interrupted: the old manifest goes, and an
	// id of it given now means its replacement.
	replaced := map[string]string{} // old id -> new id
	for _, p := range repository.InterruptedRetags(all) {
		if dryRun {
			e.info("%s; this tag run would remove %s\n", p, p.Old[:8])
		} else {
			if err := r.FinishRetag(e.ctx, lock, p); err != nil {
				return err
			}
			e.info("%s; removed %s\n", p, p.Old[:8])
		}
		replaced[p.Old] = p.New
	}
	var current []*manifest.Snapshot
	for _, s := range all {
		if _, ok := replaced[s.ID]; !ok {
			current = append(current, s)
		}
	}
	chosen := current
	if len(refs) > 0 {
		chosen, err = resolveSnapshots(all, current, replaced, refs)
		if err != nil {
			return err
		}
	}
	chosen = e.filterSnapshots(f, chosen)
	results := make([]tagResult, 0, len(chosen))
	changed := 0
	for _, s := range chosen {
		res := tagResult{ID: s.ID, OldTags: s.Tags, NewTags: change.Apply(s.Tags)}
		if res.OldTags == nil {
			res.OldTags = []string{}
		}
		if !repository.SameTags(res.OldTags, res.NewTags) {
			res.Changed = true
			changed++
			if !dryRun {
				next, err := r.Retag(e.ctx, lock, s.ID, res.NewTags)
				if next != nil {
					res.NewID = next.ID
				}
				if err != nil {
					if next != nil { // stored, but the old manifest is still there
						results = append(results, res)
					}
					e.printTagResults(results, dryRun, asJSON)
					return err
				}
			}
		}
		results = append(results, res)
	}
	e.printTagResults(results, dryRun, asJSON)
	verb := "changed"
	if dryRun {
		verb = "would change"
	}
	if !asJSON {
		e.printf("%s %d of %d snapshots\n", verb, changed, len(results))
	}
	if len(results) == 0 {
		e.info("no snapshot matches\n")
	}
	return nil
}

// printTagResults prints what tag did (or would do).
func (e *env) printTagResults(results []tagResult, dryRun, asJSON bool) {
	if asJSON {
		_ = printJSON(e, results)
		return
	}
	for _, res := range results {
		tags := func(t []string) string {
			if len(t) == 0 {
				return "(none)"
			}
			return strings.Join(t, ",")
		}
		switch {
		case !res.Changed:
			e.printf("unchanged  %s  tags: %s\n", res.ID[:8], tags(res.OldTags))
		case dryRun:
			e.printf("would tag  %s  tags: %s -> %s\n", res.ID[:8], tags(res.OldTags), tags(res.NewTags))
		default:
			e.printf("tagged     %s -> %s  tags: %s -> %s\n", res.ID[:8], res.NewID[:8], tags(res.OldTags), tags(res.NewTags))
		}
	}
}

// resolveSnapshots maps ids or unique id prefixes to snapshots of current;
// an id of an interrupted tag's old manifest (replaced) means its
// replacement.
func resolveSnapshots(all, current []*manifest.Snapshot, replaced map[string]string, refs []string) ([]*manifest.Snapshot, error) {
	byID := map[string]*manifest.Snapshot{}
	for _, s := range current {
		byID[s.ID] = s
	}
	var out []*manifest.Snapshot
	seen := map[string]bool{}
	for _, ref := range refs {
		var match []string
		for _, s := range all {
			if ref != "" && strings.HasPrefix(s.ID, strings.ToLower(ref)) {
				match = append(match, s.ID)
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("no snapshot with id %q: %w", ref, repository.ErrSnapshotNotFound)
		case 1:
		default:
			return nil, fmt.Errorf("snapshot id prefix %q matches %d snapshots (%w)", ref, len(match), repository.ErrAmbiguous)
		}
		id := match[0]
		if n, ok := replaced[id]; ok {
			id = n
		}
		if s := byID[id]; s != nil && !seen[id] {
			seen[id] = true
			out = append(out, s)
		}
	}
	return out, nil
}
