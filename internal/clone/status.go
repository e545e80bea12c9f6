package clone

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/guard"
)

// Status is what a clone's target holds now.
type Status struct {
	Clone        string    `json:"clone"`
	Target       string    `json:"target"`
	Exists       bool      `json:"exists"`
	Known        bool      `json:"known"` // a clone's record was found
	Snapshot     string    `json:"snapshot,omitempty"`
	Source       string    `json:"source,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	ClonedAt     time.Time `json:"cloned_at,omitzero"`
	Host         string    `json:"host,omitempty"`
}

// Status reads the record snapdata keeps with the target: the database's
// comment (PostgreSQL; MariaDB 10.5+), or the file's sidecar.
func (c *Cloner) Status(ctx context.Context, s *Spec) (*Status, error) {
	target, err := guard.ParseTarget(s.To, s.Base)
	if err != nil {
		return nil, usagef("clone %s: to: %v", s.Name, err)
	}
	st := &Status{Clone: s.Name, Target: target.String()}
	var rec Record
	var ok bool
	if path := target.Path(); path != "" {
		if _, err := os.Stat(path); err != nil {
			return st, nil
		}
		st.Exists = true
		r, err := readRecord(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		rec, ok = r, err == nil
	} else {
		eng, err := c.App.Engine(target.DSN)
		if err != nil {
			return nil, err
		}
		sw, has := eng.(engine.Swapper)
		if !has {
			return nil, fmt.Errorf("clone status on %s: %w", target.DSN.Engine, engine.ErrUnsupported)
		}
		if st.Exists, err = sw.DatabaseExists(ctx, target.DSN); err != nil || !st.Exists {
			return st, err
		}
		label, err := sw.Label(ctx, target.DSN)
		if err != nil {
			return nil, err
		}
		rec, ok = ParseRecord(label)
	}
	if ok {
		st.Known = true
		st.Snapshot, st.Source, st.SnapshotTime, st.ClonedAt, st.Host = rec.Snapshot, dsn.ShowSource(rec.Source), rec.SnapshotTime, rec.Started, rec.Host
	}
	return st, nil
}
