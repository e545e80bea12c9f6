// Package app is snapdata's service layer: the operations behind every
// command (backup, restore, forget, prune, verify, …) written once, used by
// the CLI and by the serve daemon alike.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdata/snapdata/internal/backend"
	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/backend/s3"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/mysql"
	"github.com/snapdata/snapdata/internal/engine/postgres"
	"github.com/snapdata/snapdata/internal/engine/sqlite"
	"github.com/snapdata/snapdata/internal/guard"
	"github.com/snapdata/snapdata/internal/repository"
)

// Environment variables.
const (
	EnvRepo     = "SNAPDATA_REPO"
	EnvPassword = "SNAPDATA_PASSWORD"
)

// App holds what every operation needs.
type App struct {
	Config  *config.Config // never nil (an empty config when there is no file)
	Engines engine.Registry
	Logger  *slog.Logger
	Getenv  func(string) string
	// PasswordFile is the --password-file flag, used when the repository's
	// config entry names no password.
	PasswordFile string
	// NoLock is the --no-lock flag: reading operations take no lock
	// (ReadLock); writing ones refuse to run.
	NoLock bool
}

// DefaultEngines returns every built-in engine.
func DefaultEngines() engine.Registry {
	return engine.Registry{
		dsn.SQLite:   sqlite.New(),
		dsn.Postgres: postgres.New(),
		dsn.MySQL:    mysql.New(),
	}
}

// New returns an App. A nil cfg means "no config file".
func New(cfg *config.Config, logger *slog.Logger, getenv func(string) string) *App {
	if cfg == nil {
		cfg = &config.Config{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	return &App{Config: cfg, Engines: DefaultEngines(), Logger: logger, Getenv: getenv}
}

// UsageError marks errors in what the user asked for (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Err: fmt.Errorf(format, args...)} }

// OpenBackend returns the backend for a location: a local path or an
// s3://bucket/prefix?endpoint=…&region=… URL.
func OpenBackend(ctx context.Context, location string) (backend.Backend, error) {
	return openBackend(ctx, location, nil)
}

// openBackend is OpenBackend with a logger for the S3 retries.
func openBackend(ctx context.Context, location string, logger *slog.Logger) (backend.Backend, error) {
	switch {
	case strings.HasPrefix(location, "s3://"):
		return s3.NewLogged(ctx, location, logger)
	case strings.Contains(location, "://"):
		return nil, Usagef("repository %q: unsupported scheme (use a local path or s3://bucket/prefix)", location)
	case location == "":
		return nil, Usagef("no repository given: use --repo, set %s, or name one in the config", EnvRepo)
	}
	return local.New(location), nil
}

// RepoLocation resolves --repo (which may name a config repository) to a
// location and its config entry (nil when not from the config).
func (a *App) RepoLocation(name string) (string, *config.Repository, error) {
	if name == "" {
		name = a.Getenv(EnvRepo)
	}
	if r, ok := a.Config.Repositories[name]; ok && name != "" {
		return a.Config.ResolvePath(r.URL), r, nil
	}
	if name == "" {
		if n, ok := a.Config.RepositoryName(""); ok {
			r := a.Config.Repositories[n]
			return a.Config.ResolvePath(r.URL), r, nil
		}
		if len(a.Config.Repositories) > 1 {
			return "", nil, Usagef("the config names %d repositories: choose one with --repo", len(a.Config.Repositories))
		}
		return "", nil, Usagef("no repository given: use --repo, set %s, or name one in the config", EnvRepo)
	}
	return name, nil, nil
}

// Password returns the repository password: the config entry's password or
// password_file, else $SNAPDATA_PASSWORD, else --password-file.
func (a *App) Password(entry *config.Repository) ([]byte, error) {
	if entry != nil {
		if entry.Password != "" {
			return []byte(entry.Password), nil
		}
		if entry.PasswordFile != "" {
			return readPasswordFile(a.Config.ResolvePath(entry.PasswordFile))
		}
	}
	if p := a.Getenv(EnvPassword); p != "" {
		return []byte(p), nil
	}
	if a.PasswordFile != "" {
		return readPasswordFile(a.PasswordFile)
	}
	return nil, nil
}

func readPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("read password file: %w", err)}
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return nil, Usagef("password file %s is empty", path)
	}
	return []byte(p), nil
}

// OpenRepository opens the repository named by name (config name, path or
// URL; "" means the default).
func (a *App) OpenRepository(ctx context.Context, name string) (*repository.Repository, error) {
	loc, entry, err := a.RepoLocation(name)
	if err != nil {
		return nil, err
	}
	be, err := openBackend(ctx, loc, a.Logger)
	if err != nil {
		return nil, err
	}
	pw, err := a.Password(entry)
	if err != nil {
		be.Close()
		return nil, err
	}
	r, err := repository.Open(ctx, be, pw, a.Logger)
	if err != nil {
		be.Close()
		return nil, err
	}
	return r, nil
}

// InitRepository creates a repository.
func (a *App) InitRepository(ctx context.Context, name string, opts repository.InitOptions) (*repository.Repository, string, error) {
	loc, entry, err := a.RepoLocation(name)
	if err != nil {
		return nil, "", err
	}
	be, err := openBackend(ctx, loc, a.Logger)
	if err != nil {
		return nil, "", err
	}
	if !opts.NoEncryption {
		pw, err := a.Password(entry)
		if err != nil {
			be.Close()
			return nil, "", err
		}
		if len(pw) == 0 {
			be.Close()
			return nil, "", Usagef("no password: set %s or use --password-file (or --no-encryption to store data unencrypted)", EnvPassword)
		}
		opts.Password = pw
	}
	r, err := repository.Init(ctx, be, opts, a.Logger)
	if err != nil {
		be.Close()
		return nil, "", err
	}
	return r, be.Location(), nil
}

// Source is a resolved database to back up.
type Source struct {
	Name     string   // config name, or a name derived from the DSN
	DSN      *dsn.DSN // never printed with its password
	Tags     []string
	RowOrder string // engine.RowOrderKey, engine.RowOrderPhysical or ""
	// Globals: the backup also stores the server's roles or accounts
	// (engine.GlobalsBackuper), set for the sources of --all-databases.
	Globals bool
}

// Source resolves a config source name or a DSN.
func (a *App) Source(nameOrDSN string) (Source, error) {
	if s, ok := a.Config.Sources[nameOrDSN]; ok {
		d, err := dsn.Parse(s.DSN)
		if err != nil {
			return Source{}, a.Config.Errorf("sources."+nameOrDSN, "source %q: %v", nameOrDSN, err)
		}
		if d.Engine == dsn.SQLite {
			d.Path = a.Config.ResolvePath(d.Path)
		}
		return Source{Name: nameOrDSN, DSN: d, Tags: s.Tags, RowOrder: s.RowOrder}, nil
	}
	if !dsn.Looks(nameOrDSN) {
		names := make([]string, 0, len(a.Config.Sources))
		for n := range a.Config.Sources {
			names = append(names, n)
		}
		hint := "no sources are defined in the config"
		if len(names) > 0 {
			hint = "config sources: " + strings.Join(names, ", ")
		}
		return Source{}, Usagef("%q is neither a DSN (sqlite:PATH, postgres://…, mysql://…) nor a source in the config (%s)", dsn.Redact(nameOrDSN), hint)
	}
	d, err := dsn.Parse(nameOrDSN)
	if err != nil {
		return Source{}, &UsageError{Err: err}
	}
	return Source{Name: d.SourceName(), DSN: d}, nil
}

// Target resolves a restore target: a config source name or a DSN.
func (a *App) Target(nameOrDSN string) (*dsn.DSN, error) {
	s, err := a.Source(nameOrDSN)
	if err != nil {
		return nil, err
	}
	return s.DSN, nil
}

// Engine returns the engine for a DSN.
func (a *App) Engine(d *dsn.DSN) (engine.Engine, error) {
	e, err := a.Engines.Get(d.Engine)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return e, nil
}

// IsUsage reports whether err is a usage or config error.
func IsUsage(err error) bool {
	var u *UsageError
	var c *config.Error
	return errors.As(err, &u) || errors.As(err, &c)
}

// AllDatabases expands a server source into one source per user database,
// listed now, so new databases are picked up by the next run.
func (a *App) AllDatabases(ctx context.Context, server Source) ([]Source, error) {
	eng, err := a.Engine(server.DSN)
	if err != nil {
		return nil, err
	}
	lister, ok := eng.(engine.DatabaseLister)
	if !ok {
		return nil, Usagef("--all-databases needs a server DSN (postgres:// or mysql://), not %s", server.DSN)
	}
	names, err := lister.Databases(ctx, server.DSN)
	if err != nil {
		return nil, fmt.Errorf("list databases on %s: %w", server.DSN, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no user databases on %s", server.DSN)
	}
	out := make([]Source, 0, len(names))
	for _, n := range names {
		d := server.DSN.WithDatabase(n)
		out = append(out, Source{Name: d.SourceName(), DSN: d, Tags: server.Tags, Globals: true})
	}
	return out, nil
}

// CheckProtect refuses (guard.ErrRefused, exit 3) a restore or import
// target that matches the config's protect: list, before anything is
// written. Without protect: it allows everything.
func (a *App) CheckProtect(ctx context.Context, target *dsn.DSN) error {
	if len(a.Config.Protect) == 0 {
		return nil
	}
	base := ""
	if a.Config.Path != "" {
		base = filepath.Dir(a.Config.Path)
	}
	_, err := guard.Guard{Protect: a.Config.Protect, Base: base}.Check(ctx, guard.Target{DSN: target})
	return err
}
