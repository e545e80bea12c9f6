package clone

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// EnvTargetDSN is the variable a command hook finds the new copy's DSN in
// (with the first configured user's credentials, never the clone's
// management login or the source's).
const EnvTargetDSN = "SNAPDATA_TARGET_DSN"

// HookRunner runs a list of hooks on the database target. runner is the
// target engine's SQLRunner (nil when it has none).
type HookRunner func(ctx context.Context, runner engine.SQLRunner, target *dsn.DSN, list []Hook, dir string, env []string) error

// runHooksLocal is the clone's own hook runner until internal/hooks (issue
// 20's hooks piece) is wired in: SQL goes through the engine's SQLRunner,
// a command runs with env and EnvTargetDSN.
func runHooksLocal(ctx context.Context, runner engine.SQLRunner, target *dsn.DSN, list []Hook, dir string, env []string) error {
	for i, h := range list {
		var err error
		switch {
		case len(h.Command) > 0:
			err = runCommand(ctx, dir, h.Command, append(append(os.Environ(), EnvTargetDSN+"="+target.Raw), env...))
		case runner == nil:
			err = fmt.Errorf("%s hooks: %w", target.Engine, engine.ErrUnsupported)
		case h.SQLFile != "":
			var f *os.File
			path := h.SQLFile
			if !filepath.IsAbs(path) && dir != "" {
				path = filepath.Join(dir, path)
			}
			if f, err = os.Open(path); err == nil {
				err = runner.RunSQL(ctx, target, h.SQLFile, f)
				f.Close()
			}
		default:
			err = runner.RunSQL(ctx, target, "sql", strings.NewReader(h.SQL))
		}
		if err != nil {
			return fmt.Errorf("hook %d (%s): %w", i+1, h, err)
		}
	}
	return nil
}

func runCommand(ctx context.Context, dir string, argv []string, env []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(out.String())
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		if tail != "" {
			return fmt.Errorf("%w: %s", err, tail)
		}
		return err
	}
	return nil
}
