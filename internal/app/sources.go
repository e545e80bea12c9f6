package app

import (
	"context"
	"fmt"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/manifest"
	"github.com/snapdata/snapdata/internal/repository"
)

// SourceMatcher returns whether a snapshot's recorded source name names
// the source a user gave (--source): a config source name matches that
// name; anything else matches every recorded name with the same normal
// form (dsn.SourceKey), so a DSN in any spelling (postgresql:// or
// postgres://, with or without credentials or its default port, 127.0.0.1
// or localhost) finds the snapshots recorded under the name a backup of it
// records now and under the names earlier releases recorded. shown is the
// name to print: never a password.
func (a *App) SourceMatcher(wanted string) (match func(recorded string) bool, shown string) {
	if _, ok := a.Config.Sources[wanted]; ok || !dsn.Looks(wanted) {
		return func(recorded string) bool { return recorded == wanted }, wanted
	}
	key, shown := dsn.SourceKey(wanted), dsn.Redact(wanted)
	if d, err := dsn.Parse(wanted); err == nil {
		shown = d.SourceName()
	}
	// A config source whose DSN is this one: its snapshots are recorded
	// under its config name.
	named := map[string]bool{}
	for name := range a.Config.Sources {
		if s, err := a.Source(name); err == nil && s.DSN.SourceName() == key {
			named[name] = true
		}
	}
	keys := map[string]string{}
	return func(recorded string) bool {
		if recorded == wanted || named[recorded] {
			return true
		}
		k, ok := keys[recorded]
		if !ok {
			k = dsn.SourceKey(recorded)
			keys[recorded] = k
		}
		return k == key
	}, shown
}

// FindSnapshot finds a snapshot by id prefix or "latest"; with latest and a
// source, the newest snapshot of that source as SourceMatcher matches it.
func (a *App) FindSnapshot(ctx context.Context, repo *repository.Repository, ref, source string) (*manifest.Snapshot, error) {
	if ref != "latest" || source == "" {
		return repo.Find(ctx, ref, "")
	}
	match, shown := a.SourceMatcher(source)
	all, err := repo.List(ctx)
	if err != nil {
		return nil, err
	}
	var pick *manifest.Snapshot
	for _, s := range all { // oldest first
		if match(s.Source) {
			pick = s
		}
	}
	if pick == nil {
		return nil, fmt.Errorf("no snapshot of source %s: %w", shown, repository.ErrSnapshotNotFound)
	}
	return pick, nil
}

// GroupBySource groups snapshots by source: recorded names with one normal
// form (dsn.SourceKey: a DSN recorded by an earlier release and the name
// recorded now) are one source, named by its newest snapshot's name.
func GroupBySource(snaps []*manifest.Snapshot) map[string][]*manifest.Snapshot {
	byKey := map[string][]*manifest.Snapshot{}
	for _, s := range snaps {
		k := dsn.SourceKey(s.Source)
		byKey[k] = append(byKey[k], s)
	}
	out := make(map[string][]*manifest.Snapshot, len(byKey))
	for _, group := range byKey {
		newest := group[0]
		for _, s := range group[1:] {
			if s.Time.After(newest.Time) {
				newest = s
			}
		}
		out[newest.Source] = group
	}
	return out
}
