// Package cli is the snapdata command line: cobra commands that parse flags
// and print results, calling internal/app for the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/compress"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/guard"
	"github.com/snapdata/snapdata/internal/repository"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitRefused = 3
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=…".
var Version = "dev"

// env holds what one invocation shares between commands.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	configPath   string
	repo         string
	passwordFile string
	logJSON      bool
	verbose      bool
	quiet        bool
	cpuProfile   string
	noLock       bool

	app         *app.App
	stopProfile func() error
}

// Run executes snapdata with args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	setMemoryLimit()
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	err := e.execute(args)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if !e.logJSON && slices.Contains(args, "--log-json") {
		e.logJSON = true // the flags did not parse, but JSON was asked for
	}
	e.reportError(err, "exit_code", code)
	return code
}

// reportError writes an error on stderr: a line "snapdata: …", or with
// --log-json a JSON log line at level ERROR, like every other log line.
func (e *env) reportError(err error, attrs ...any) {
	if e.logJSON {
		slog.New(slog.NewJSONHandler(e.stderr, nil)).Error(err.Error(), attrs...)
		return
	}
	fmt.Fprintf(e.stderr, "snapdata: %s\n", err)
}

// execute runs the command line and returns its error.
func (e *env) execute(args []string) error {
	ctx, stdin, stdout, stderr := e.ctx, e.stdin, e.stdout, e.stderr
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	var err error
	// cobra reports an unknown command as a plain error: find it first
	// (with the help and completion commands cobra adds itself).
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd(args...)
	if _, _, ferr := root.Find(args); ferr != nil {
		err = usageErr{fmt.Errorf("%w (see 'snapdata --help')", ferr)}
	} else {
		err = root.ExecuteContext(ctx)
	}
	if e.stopProfile != nil {
		if perr := e.stopProfile(); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// usageErr wraps flag and argument errors from cobra.
type usageErr struct{ error }

func (u usageErr) Unwrap() error { return u.error }

// refusedErr marks a refusal by a safety rule.
type refusedErr struct{ error }

func (r refusedErr) Unwrap() error { return r.error }

// exitCauses is the one table of error causes and exit codes (README.md,
// "Exit codes", lists the same rows). The first row that matches wins; an
// error no row matches exits 1.
var exitCauses = []struct {
	cause string
	code  int
	match func(error) bool
}{
	{"refused by a safety rule (a clone, restore or import target not in allow, protected or the source itself; a non-empty restore target without --clean, a restore that would drop what was not chosen, init over an existing repository, prune with a damaged snapshot, removing the last key or the key in use)", ExitRefused, func(err error) bool {
		var r refusedErr
		return errors.As(err, &r) || errors.Is(err, engine.ErrTargetNotEmpty) || errors.Is(err, engine.ErrRefused) ||
			errors.Is(err, repository.ErrLocationInUse) || errors.Is(err, repository.ErrPruneRefused) ||
			errors.Is(err, guard.ErrRefused)
	}},
	{"unknown command or flag, a missing or extra argument, a bad flag value", ExitUsage, func(err error) bool {
		var u usageErr
		return errors.As(err, &u)
	}},
	{"config file missing, unreadable or invalid (file, line and key named)", ExitUsage, func(err error) bool {
		var c *config.Error
		return errors.As(err, &c)
	}},
	{"no repository password given", ExitUsage, func(err error) bool { return errors.Is(err, repository.ErrNeedPassword) }},
	{"no such snapshot (unknown id, no snapshot of the source)", ExitUsage, func(err error) bool { return errors.Is(err, repository.ErrSnapshotNotFound) }},
	{"ambiguous snapshot (latest over several sources, an id prefix of several snapshots)", ExitUsage, func(err error) bool { return errors.Is(err, repository.ErrAmbiguous) }},
	{"--table names a table the snapshot does not hold", ExitUsage, func(err error) bool { return errors.Is(err, engine.ErrNoSuchTable) }},
	{"a clone's keep_rows rule does not work on the target (no such table, a where the server rejects: its message is shown)", ExitUsage, func(err error) bool { return errors.Is(err, engine.ErrKeepRule) }},
	{"any other error in what was asked (not a DSN, unknown source, engine mismatch…)", ExitUsage, app.IsUsage},
}

func exitCode(err error) int {
	if i := exitCause(err); i >= 0 {
		return exitCauses[i].code
	}
	return ExitFailure
}

// exitCause returns the index of the first exitCauses row err matches, or
// -1.
func exitCause(err error) int {
	for i, c := range exitCauses {
		if c.match(err) {
			return i
		}
	}
	return -1
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "snapdata",
		Short: "Back up databases, prove the backups restore, and hand out safe copies",
		Long: `snapdata backs up PostgreSQL, MySQL/MariaDB and SQLite databases into a deduplicated,
compressed and encrypted repository (a local folder or S3-compatible object storage),
restores them, verifies them by test restores, and exports them as plain SQL.

Start with:
  export SNAPDATA_PASSWORD=…            # or --password-file
  snapdata init --repo ./backups
  snapdata backup --repo ./backups sqlite:./app.db
  snapdata snapshots --repo ./backups
  snapdata restore --repo ./backups latest --to sqlite:./restored.db

Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 refused by a safety rule.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return e.setup(cmd)
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr{fmt.Errorf("%w (see 'snapdata %s --help')", err, c.Name())}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&e.repo, "repo", "r", "", "repository: a path, s3://bucket/prefix?endpoint=…, or a name from the config (default $SNAPDATA_REPO)")
	pf.StringVar(&e.passwordFile, "password-file", "", "read the repository password from this file (default $SNAPDATA_PASSWORD)")
	pf.StringVar(&e.configPath, "config", "", "config file (default $SNAPDATA_CONFIG or ./snapdata.yaml)")
	pf.BoolVar(&e.logJSON, "log-json", false, "write logs as JSON lines")
	pf.BoolVarP(&e.verbose, "verbose", "v", false, "log more detail")
	pf.BoolVarP(&e.quiet, "quiet", "q", false, "print only errors and results")
	pf.BoolVar(&e.noLock, "no-lock", false, "read without taking a repository lock (restore, verify, check on read-only or full storage); commands that write refuse it")
	pf.StringVar(&e.cpuProfile, "cpuprofile", "", "write a Go CPU profile of this run to `FILE` (read it with 'go tool pprof')")
	root.AddCommand(
		e.initCommand(), e.backupCommand(), e.snapshotsCommand(), e.restoreCommand(),
		e.forgetCommand(), e.pruneCommand(), e.checkCommand(), e.unlockCommand(),
		e.verifyCommand(), e.exportCommand(), e.importCommand(), e.serveCommand(), e.runCommand(),
		e.copyCommand(), e.versionCommand(), e.keyCommand(), e.tagCommand(), e.cloneCommand(),
	)
	e.addInspectCommands(root)
	markArgErrors(root)
	return root
}

// markArgErrors makes every command's argument errors (cobra.NoArgs
// reports an extra argument as a plain error) usage errors.
func markArgErrors(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				var u usageErr
				if errors.As(err, &u) {
					return err
				}
				if !cmd.HasSubCommands() && len(args) > 0 && strings.HasPrefix(err.Error(), "unknown command") {
					err = fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args)
				}
				return usageErr{fmt.Errorf("%w (see 'snapdata %s --help')", err, cmd.Name())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markArgErrors(sub)
	}
}

func (e *env) setup(cmd *cobra.Command) error {
	// The terminal shows results on stdout; logs are for --verbose and for
	// machines (--log-json).
	level := slog.LevelWarn
	if e.logJSON {
		level = slog.LevelInfo
	}
	if e.verbose {
		level = slog.LevelDebug
	}
	var h slog.Handler
	if e.logJSON {
		h = slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level})
	} else {
		h = slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})
	}
	logger := slog.New(h)
	path := config.Find(e.configPath, os.Getenv)
	var cfg *config.Config
	if path != "" && cmd.Name() != "version" {
		var err error
		cfg, err = config.Load(path, os.LookupEnv)
		if err != nil {
			return err
		}
	}
	e.app = app.New(cfg, logger, os.Getenv)
	e.app.PasswordFile = e.passwordFile
	e.app.NoLock = e.noLock
	if e.cpuProfile != "" {
		if err := e.startCPUProfile(); err != nil {
			return err
		}
	}
	return nil
}

// startCPUProfile profiles the rest of the run into e.cpuProfile; Run stops
// it when the command returns, failed or not.
func (e *env) startCPUProfile() error {
	f, err := os.Create(e.cpuProfile)
	if err != nil {
		return usageErr{fmt.Errorf("--cpuprofile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: starting the profiler: %w", err)
	}
	e.stopProfile = func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: writing %s: %w", e.cpuProfile, err)
		}
		return nil
	}
	return nil
}

func (e *env) openRepo() (*repository.Repository, error) {
	r, err := e.app.OpenRepository(e.ctx, e.repo)
	if err != nil {
		return nil, explainOpen(err)
	}
	return r, nil
}

func explainOpen(err error) error {
	switch {
	case errors.Is(err, repository.ErrWrongPassword):
		return err
	case errors.Is(err, crypto.ErrAuth):
		return fmt.Errorf("%w (wrong password or damaged repository)", err)
	case backend.IsNotFound(err):
		return err
	}
	return err
}

func (e *env) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the snapdata version and the zstd it compresses with",
		Long: `Print the snapdata version and the zstd implementation of this build:
libzstd (cgo, the default wherever a C compiler is installed) or the pure-Go
klauspost/compress (CGO_ENABLED=0), which compresses about half as fast.
Both write standard zstd and read each other's repositories.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := Version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(e.stdout, "snapdata %s\nzstd: %s\n", v, compress.Implementation)
			return nil
		},
	}
}

func (e *env) printf(format string, args ...any) {
	fmt.Fprintf(e.stdout, format, args...)
}

func (e *env) info(format string, args ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stderr, format, args...)
	}
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr{fmt.Errorf("%s expects %s (see 'snapdata %s --help')", cmd.Name(), what, cmd.Name())}
		}
		return nil
	}
}
