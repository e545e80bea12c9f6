package clone

import (
	"context"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/hooks"
)

// EnvTargetDSN is the variable a command hook finds the new copy's DSN in.
const EnvTargetDSN = hooks.EnvTargetDSN

// HookRunner runs a list of hooks on the database target (the new copy);
// runner is the target engine's SQLRunner (nil when it has none). The
// default is hooks.Run; tests may replace it.
type HookRunner func(ctx context.Context, runner engine.SQLRunner, target *dsn.DSN, list []Hook, opts hooks.Options) error
