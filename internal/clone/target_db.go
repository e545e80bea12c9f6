package clone

import (
	"context"
	"fmt"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// toDatabase clones into a PostgreSQL or MySQL/MariaDB database: built
// beside the target under BuildPrefix, swapped in at the end.
func (r *run) toDatabase(ctx context.Context, reader engine.SnapshotReader) error {
	a, s, p := r.c.App, r.s, r.p
	d := p.target.DSN
	eng, err := a.Engine(d)
	if err != nil {
		return err
	}
	if !s.Swap {
		if err := r.hooks(ctx, "pre_data", s.PreData, d); err != nil {
			return err
		}
		if err := r.load(ctx, reader, d, true); err != nil {
			return err
		}
		return r.finish(ctx, d, nil, d)
	}
	sw := eng.(engine.Swapper)
	lab := eng.(engine.ScratchLabeler)
	sc := eng.(engine.Scratcher)
	dropped, err := r.dropLeftovers(ctx, sc, lab, d)
	r.res.Leftovers = dropped
	if err != nil {
		return err
	}
	buildName := BuildPrefix + shortName(d.Database()) + "_" + r.label.Token[:10]
	done, err := writeIntent(intent{Record: r.label, Server: d.SourceName(), Database: buildName})
	if err != nil {
		return fmt.Errorf("clone %s: write the clone's intent record: %w", s.Name, err)
	}
	defer done()
	built, err := lab.CreateLabeledScratch(ctx, d, buildName, r.label.String())
	if err != nil {
		if built != nil {
			_ = sc.DropScratch(context.WithoutCancel(ctx), built)
		}
		return fmt.Errorf("clone %s: create the new copy %s beside %s: %w", s.Name, buildName, d.Database(), err)
	}
	swapped := false
	defer func() {
		if !swapped {
			if err := sc.DropScratch(context.WithoutCancel(ctx), built); err != nil {
				a.Logger.Warn("drop the unfinished copy (the next clone drops it)", "database", buildName, "err", err)
			}
		}
	}()
	if err := r.hooks(ctx, "pre_data", s.PreData, built); err != nil {
		return err
	}
	if err := r.load(ctx, reader, built, false); err != nil {
		return err
	}
	exists, err := sw.DatabaseExists(ctx, d)
	if err != nil {
		return err
	}
	var old *dsn.DSN
	if exists {
		old = d
	}
	if err := r.finish(ctx, built, old, d); err != nil {
		return err
	}
	prevName := PreviousPrefix + shortName(d.Database()) + "_" + r.label.Token[:10]
	prev := newRecord("previous", s.Name, p.target.String(), time.Now())
	prev.KeepPrevious = s.KeepPrevious
	prev.Snapshot, prev.Source = r.snap.ID, r.snap.Source
	wait := s.SessionWait
	if wait <= 0 {
		wait = DefaultSessionWait
	}
	a.Logger.Info("clone: swapping the new copy in", "clone", s.Name, "target", d.Database(), "built", buildName)
	if err := sw.Swap(ctx, built, d, prevName, prev.String(), engine.SwapOptions{Wait: wait, Terminate: s.TerminateSessions, Logger: a.Logger}); err != nil {
		return fmt.Errorf("clone %s: %w", s.Name, err)
	}
	swapped = true
	if !exists {
		return nil
	}
	prevDSN := d.WithDatabase(prevName)
	if !s.KeepPrevious {
		if err := sc.DropScratch(context.WithoutCancel(ctx), prevDSN); err != nil {
			a.Logger.Warn("drop the previous copy (the next clone drops it)", "database", prevName, "err", err)
		}
		return nil
	}
	r.res.Previous = prevName
	return r.dropOlderPrevious(ctx, sc, lab, d, prev.Token)
}

// dropLeftovers drops what killed clones of this target left: copies
// being built and previous copies not meant to be kept, each only when
// its label proves a clone of this target made it, that clone is over and
// no session uses it.
func (r *run) dropLeftovers(ctx context.Context, sc engine.Scratcher, lab engine.ScratchLabeler, server *dsn.DSN) ([]string, error) {
	var dropped []string
	intents := deadIntents(server.SourceName(), time.Now())
	defer func() {
		for _, remove := range intents {
			remove()
		}
	}()
	for _, prefix := range []string{BuildPrefix, PreviousPrefix} {
		list, err := lab.ListScratch(ctx, server, prefix)
		if err != nil {
			return dropped, fmt.Errorf("clone %s: list leftovers: %w", r.s.Name, err)
		}
		for _, db := range list {
			if _, mine := intents[db.Name]; mine && db.Marker == "" && db.Sessions == 0 && prefix == BuildPrefix {
				// Created by a clone killed before it could label it.
				if err := sc.DropScratch(ctx, server.WithDatabase(db.Name)); err != nil {
					return dropped, fmt.Errorf("clone %s: drop leftover %s: %w", r.s.Name, db.Name, err)
				}
				r.c.App.Logger.Warn("dropped the unlabeled database of an earlier clone killed while creating it", "database", db.Name)
				dropped = append(dropped, db.Name)
				continue
			}
			rec, ok := ParseRecord(db.Marker)
			if !ok || rec.Target != r.p.target.String() || db.Sessions > 0 || db.Name == server.Database() {
				continue
			}
			if rec.Role == "previous" && rec.KeepPrevious {
				continue
			}
			why := rec.over(time.Now())
			if why == "" {
				continue
			}
			if err := sc.DropScratch(ctx, server.WithDatabase(db.Name)); err != nil {
				return dropped, fmt.Errorf("clone %s: drop leftover %s: %w", r.s.Name, db.Name, err)
			}
			r.c.App.Logger.Warn("dropped the leftover of an earlier clone that did not finish", "database", db.Name, "reason", why)
			dropped = append(dropped, db.Name)
		}
	}
	return dropped, nil
}

// dropOlderPrevious drops the previous copies an earlier clone of this
// target kept (keep_previous keeps one: the newest).
func (r *run) dropOlderPrevious(ctx context.Context, sc engine.Scratcher, lab engine.ScratchLabeler, server *dsn.DSN, token string) error {
	list, err := lab.ListScratch(ctx, server, PreviousPrefix)
	if err != nil {
		return fmt.Errorf("clone %s: list previous copies: %w", r.s.Name, err)
	}
	for _, db := range list {
		rec, ok := ParseRecord(db.Marker)
		if !ok || rec.Role != "previous" || rec.Target != r.p.target.String() || rec.Token == token || db.Sessions > 0 {
			continue
		}
		if err := sc.DropScratch(ctx, server.WithDatabase(db.Name)); err != nil {
			return fmt.Errorf("clone %s: drop the older previous copy %s: %w", r.s.Name, db.Name, err)
		}
		r.c.App.Logger.Info("dropped an older previous copy", "database", db.Name)
	}
	return nil
}
