// Package serve is snapdata's daemon: it runs the config's jobs on their
// schedules (backup with pre-checks, retention, periodic verify and prune),
// never twice at once (also across processes), and reports through JSON
// logs, Prometheus metrics, notifications and a status page.
//
// `snapdata serve` calls Serve; `snapdata run JOB` calls RunOnce, which runs
// exactly the same job logic once.
package serve

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
)

// Defaults.
const (
	DefaultListen = "127.0.0.1:9187"
	DefaultGrace  = 60 * time.Second
	// EnvStateDir overrides where lock and state files live.
	EnvStateDir = "SNAPDATA_STATE_DIR"
)

// Options configure Serve and RunOnce.
type Options struct {
	// ConfigPath is the config file (required).
	ConfigPath string
	// Lookup resolves ${VAR} in the config; default os.LookupEnv.
	Lookup func(string) (string, bool)
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
	// Logger receives the JSON logs; default a JSON handler on stderr.
	Logger *slog.Logger
	// Listen overrides server.listen ("127.0.0.1:0" picks a free port).
	Listen string
	// StateDir holds lock and state files; default $SNAPDATA_STATE_DIR,
	// else .snapdata-locks next to the config (if writable), else a
	// directory under $XDG_RUNTIME_DIR or the temporary directory.
	StateDir string
	// Grace is how long a running job may take to finish after SIGTERM
	// before it is cancelled; default 60s.
	Grace time.Duration
	// NewApp builds the service layer for a config; default app.New. The
	// CLI uses it to pass --password-file; tests to swap engines.
	NewApp func(cfg *config.Config, logger *slog.Logger, getenv func(string) string) *app.App
	// Reload, when not nil, triggers a config reload like SIGHUP does.
	Reload <-chan struct{}
	// NoSignals disables the SIGHUP handler (for tests running several
	// servers in one process).
	NoSignals bool
	// Ready, when not nil, is called with the HTTP address once serving.
	Ready func(addr string)
}

func (o *Options) defaults() {
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.NewApp == nil {
		o.NewApp = app.New
	}
}

// Outcome statuses.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusSkipped = "skipped"
)

// Skip reasons (the "reason" label of snapdata_job_skips_total).
const (
	ReasonAlreadyRunning = "already_running"
	ReasonUnchanged      = "unchanged"
	ReasonLag            = "replication_lag"
	ReasonLagUnknown     = "lag_unknown"
	ReasonMinInterval    = "min_interval"
	ReasonNoSnapshot     = "no_snapshot"
)

// Task kinds.
const (
	KindBackup = "backup"
	KindVerify = "verify"
	KindPrune  = "prune"
	KindClone  = "clone"
)

// SourceOutcome is what one run did for one source.
type SourceOutcome struct {
	Source     string  `json:"source"`
	Status     string  `json:"status"`
	Reason     string  `json:"reason,omitempty"`
	Message    string  `json:"message,omitempty"`
	Snapshot   string  `json:"snapshot,omitempty"`
	BytesAdded int64   `json:"bytes_added"`
	Logical    int64   `json:"logical_bytes"`
	Forgotten  int     `json:"forgotten,omitempty"`
	Duration   float64 `json:"duration_seconds"`
}

// Outcome is the result of one run of a task (a job's backup, its verify,
// or a repository's prune).
type Outcome struct {
	Task       string          `json:"task"` // "orders", "orders/verify", "prune/main"
	Job        string          `json:"job,omitempty"`
	Kind       string          `json:"kind"`
	Repository string          `json:"repository"`
	Status     string          `json:"status"`
	Reason     string          `json:"reason,omitempty"`
	Message    string          `json:"message"`
	Start      time.Time       `json:"start"`
	Duration   float64         `json:"duration_seconds"`
	Snapshots  []string        `json:"snapshots,omitempty"`
	BytesAdded int64           `json:"bytes_added"`
	Sources    []SourceOutcome `json:"sources,omitempty"`
	// Copies: what copy_to did after the backups.
	Copies []CopyOutcome `json:"copies,omitempty"`
}

// CopyOutcome is one copy_to target's copy after a backup run.
type CopyOutcome struct {
	Repository string `json:"repository"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Snapshots  int    `json:"snapshots"`
	BytesAdded int64  `json:"bytes_added"`
}

// cronParser reads 5-field specs and descriptors (@daily, @every 90s).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a job schedule.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v (expected 5 cron fields like \"*/5 * * * *\", or @hourly, @daily, @every 90s)", spec, err)
	}
	return s, nil
}

// checkConfig validates what the daemon needs beyond config.Load: the
// schedules.
func checkConfig(cfg *config.Config) error {
	for i, j := range cfg.Jobs {
		p := fmt.Sprintf("jobs[%d]", i)
		if j.Schedule != "" {
			if _, err := ParseSchedule(j.Schedule); err != nil {
				return cfg.Errorf(p+".schedule", "job %q: %v", j.Name, err)
			}
		}
		if j.Verify != nil && j.Verify.Schedule != "" {
			if _, err := ParseSchedule(j.Verify.Schedule); err != nil {
				return cfg.Errorf(p+".verify.schedule", "job %q verify: %v", j.Name, err)
			}
		}
	}
	for name, r := range cfg.Repositories {
		if r != nil && r.Prune != nil && r.Prune.Schedule != "" {
			if _, err := ParseSchedule(r.Prune.Schedule); err != nil {
				return cfg.Errorf("repositories."+name+".prune.schedule", "repository %q prune: %v", name, err)
			}
		}
	}
	return nil
}

// LoadConfig reads and checks a config for the daemon.
func LoadConfig(path string, lookup func(string) (string, bool)) (*config.Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg, err := config.Load(path, lookup)
	if err != nil {
		return nil, err
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
