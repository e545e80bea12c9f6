package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/progress"
	"github.com/snapdata/snapdata/internal/serve"
)

// serveOptions builds the daemon options from the global flags.
func (e *env) serveOptions(listen string, grace time.Duration) (serve.Options, error) {
	path := config.Find(e.configPath, e.app.Getenv)
	if path == "" {
		return serve.Options{}, app.Usagef("no config file: use --config, set %s, or create ./%s (see docs/configuration.md)", config.EnvConfig, config.FileName)
	}
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	pwFile := e.passwordFile
	return serve.Options{
		ConfigPath: path,
		Logger:     slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level})),
		Listen:     listen,
		Grace:      grace,
		NewApp: func(cfg *config.Config, logger *slog.Logger, getenv func(string) string) *app.App {
			a := app.New(cfg, logger, getenv)
			a.PasswordFile = pwFile
			return a
		},
	}, nil
}

func (e *env) serveCommand() *cobra.Command {
	var listen string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--config snapdata.yaml]",
		Short: "Run the config's jobs on their schedules, with metrics and a status page",
		Long: `Run every job of the config on its schedule: pre-checks (replication lag, minimum interval),
backup, retention, periodic verify and prune. A job never runs twice at once, also across
processes; a second serve on the same config refuses to start and names the holder.

Logs are JSON lines on stderr. The HTTP server (server.listen, default 127.0.0.1:9187) serves
the status page at /, JSON at /api/jobs and /api/snapshots, Prometheus metrics at /metrics and
/healthz. SIGTERM lets a running backup finish within --grace, then cancels it (no partial
snapshot is ever written); SIGHUP reloads the config and keeps the old one if the new one is bad.

  snapdata serve --config /etc/snapdata/snapdata.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := e.serveOptions(listen, grace)
			if err != nil {
				return err
			}
			return serve.Serve(e.ctx, opts)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP address, overrides server.listen in the config")
	cmd.Flags().DurationVar(&grace, "grace", serve.DefaultGrace, "after SIGTERM, how long a running job may take to finish")
	return cmd
}

func (e *env) runCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run JOB",
		Short: "Run one job of the config once, exactly as serve would",
		Long: `Run one job once with the same logic as serve: pre-checks, backup, retention, notifications.
For cron, systemd timers and Kubernetes CronJobs. JOB may also be JOB/verify (the job's test
restore) or prune/REPOSITORY.

Exit codes: 0 success or skipped by a pre-check (the reason is printed), 1 failure.

  snapdata run orders-every-5m --config /etc/snapdata/snapdata.yaml`,
		Args: exactArgs(1, "one JOB name from the config"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := e.serveOptions("", 0)
			if err != nil {
				return err
			}
			out, err := serve.RunOnce(e.ctx, opts, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(e, out); err != nil {
					return err
				}
			} else {
				e.printf("%s: %s", out.Task, out.Status)
				if out.Message != "" {
					e.printf(": %s", out.Message)
				}
				if out.BytesAdded > 0 {
					e.printf(" (%s added)", progress.Bytes(out.BytesAdded))
				}
				e.printf("\n")
			}
			if out.Status == serve.StatusFailure {
				return fmt.Errorf("job %s failed", out.Task)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the outcome as JSON")
	return cmd
}
