package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/snapdata/snapdata/internal/backend"
)

// ErrLocationInUse is wrapped when init is asked to create a repository
// where repository objects already are: writing a new config there would
// make every existing snapshot unreadable.
var ErrLocationInUse = errors.New("the location already holds repository objects")

// ErrDamagedRepository is wrapped when a location holds repository objects
// but no config: the repository exists and is damaged, it is not absent.
var ErrDamagedRepository = errors.New("the repository is damaged")

var errEnough = errors.New("enough")

// presentObjects returns, for each kind of repository object other than
// the config that the location holds, its folder name and whether there are
// more than one ("keys", "data", …). It stops listing a kind at its
// second object.
func presentObjects(ctx context.Context, be backend.Backend) ([]string, error) {
	var kinds []string
	for _, t := range []backend.FileType{backend.Key, backend.Snapshot, backend.Data, backend.Lock, backend.DataIndex} {
		n := 0
		err := be.List(ctx, t, func(backend.FileInfo) error {
			n++
			if n > 1 {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("list %s: %w", t, err)
		}
		if n > 0 {
			kinds = append(kinds, string(t)+"/")
		}
	}
	return kinds, nil
}

// refuseConfig fails with ErrLocationInUse when be holds a config.
func refuseConfig(ctx context.Context, be backend.Backend) error {
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
		return fmt.Errorf("init refused: %w: a repository already exists at %s", ErrLocationInUse, be.Location())
	}
	return nil
}

// refuseObjects fails with ErrLocationInUse when be holds any repository
// object besides a config.
func refuseObjects(ctx context.Context, be backend.Backend) error {
	kinds, err := presentObjects(ctx, be)
	if err != nil {
		return fmt.Errorf("init: look for repository objects at %s: %w", be.Location(), err)
	}
	if len(kinds) > 0 {
		return fmt.Errorf("init refused: %w (%s) at %s but no config: it is a damaged repository, and a new one there would make its snapshots unreadable; restore its config from a copy, or choose an empty location",
			ErrLocationInUse, strings.Join(kinds, ", "), be.Location())
	}
	return nil
}

// missingConfig explains an absent config: no repository, or a damaged one
// when other repository objects are there.
func missingConfig(ctx context.Context, be backend.Backend) error {
	kinds, err := presentObjects(ctx, be)
	if err != nil || len(kinds) == 0 {
		return fmt.Errorf("%w at %s (create one with 'snapdata init')", ErrNoRepository, be.Location())
	}
	return fmt.Errorf("%w: its config object is missing at %s, but it holds repository objects (%s); restore the config from a copy of the repository (do not run 'snapdata init' there: it refuses, a new config would make every snapshot unreadable)",
		ErrDamagedRepository, be.Location(), strings.Join(kinds, ", "))
}
