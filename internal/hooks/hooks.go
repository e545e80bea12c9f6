// Package hooks runs a clone's hooks on the new copy before it replaces
// the target: SQL statements, SQL files and commands.
//
// A hook is one of:
//
//   - sql: one or more statements, run by the target engine's SQLRunner
//     (errors name "sql:LINE");
//   - sql_file: a file of statements, relative to Options.Dir (the config
//     file's directory) unless absolute (errors name the file as written
//     and the line);
//   - command: an argv, run without a shell in Options.Dir. A relative
//     program path (./fix.sh) is relative to Options.Dir, a bare name is
//     looked up in PATH.
//
// Commands get a minimal environment: PATH, HOME, USER, LOGNAME, SHELL,
// LANG, LANGUAGE, LC_*, TZ, TMPDIR and TERM from snapdata's own, the
// variables of Options.Env, and SNAPDATA_TARGET_DSN, the copy's DSN with
// the credentials the caller chose (a dev user's, never production's).
// Nothing else reaches them: no SNAPDATA_PASSWORD, PGPASSWORD, MYSQL_PWD,
// AWS_* or a config's ${…} secrets. Each command runs in its own process
// group, killed whole when its timeout passes. Its output is logged line
// by line (at most MaxLogLines lines of at most MaxLineBytes each per
// hook, the DSN's password and secret Env values masked); a non-zero exit is an error naming the hook, its exit status and
// the last lines it wrote to stderr.
//
// Hooks run in order; the first that fails stops the run and its error is
// returned (the clone then keeps the old target).
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

// Hook is one hook of a clone. Exactly one field is set.
type Hook struct {
	SQL     string   `yaml:"sql,omitempty" json:"sql,omitempty"`
	SQLFile string   `yaml:"sql_file,omitempty" json:"sql_file,omitempty"`
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
}

// Limits of what a command's output puts in the log and in its error.
const (
	MaxLogLines  = 1000 // lines of output logged per hook
	MaxLineBytes = 4096 // a longer line is cut
	TailLines    = 10   // stderr lines a failure shows
)

// DefaultTimeout bounds a hook when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Minute

// EnvTargetDSN is the variable holding the copy's DSN for commands.
const EnvTargetDSN = "SNAPDATA_TARGET_DSN"

// Options say how hooks run.
type Options struct {
	// TargetDSN is SNAPDATA_TARGET_DSN for commands: the copy with the
	// credentials commands may use (a dev user's). Empty: not set.
	TargetDSN string
	// Env holds more NAME=value variables for commands.
	Env []string
	// Dir is where relative sql_file paths and relative command paths
	// are found, and where commands run (the config file's directory).
	// Empty: the current directory.
	Dir string
	// Logger gets each hook's start, end and command output.
	Logger *slog.Logger
	// Timeout bounds each hook; zero means DefaultTimeout.
	Timeout time.Duration
}

// Validate reports a hook that sets none or more than one of its fields,
// or an empty command.
func (h Hook) Validate() error {
	n := 0
	if h.SQL != "" {
		n++
	}
	if h.SQLFile != "" {
		n++
	}
	if h.Command != nil {
		n++
	}
	switch {
	case n == 0:
		return errors.New("a hook needs one of sql, sql_file or command")
	case n > 1:
		return errors.New("a hook has more than one of sql, sql_file and command: give each its own entry")
	case h.Command != nil && (len(h.Command) == 0 || h.Command[0] == ""):
		return errors.New("a command hook needs a program: command: [program, arg, …]")
	}
	return nil
}

// String names the hook for logs, plans and errors: "sql",
// "sql_file post.sql", "command ./fix.sh". It never shows SQL text or
// command arguments (they may hold secrets).
func (h Hook) String() string {
	switch {
	case h.SQLFile != "":
		return "sql_file " + h.SQLFile
	case h.Command != nil:
		if len(h.Command) == 0 {
			return "command"
		}
		return "command " + h.Command[0]
	}
	return "sql"
}

// Run runs the hooks in order on target (the copy, as the session that
// builds it) and returns the first failure, naming the hook (its 1-based
// index and what it is).
func Run(ctx context.Context, runner engine.SQLRunner, target *dsn.DSN, list []Hook, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	for i, h := range list {
		if err := h.Validate(); err != nil {
			return fmt.Errorf("hook %d: %w", i+1, err)
		}
	}
	for i, h := range list {
		start := time.Now()
		log.Info("hook start", "hook", i+1, "what", h.String())
		hctx, cancel := context.WithTimeout(ctx, timeout)
		var err error
		if h.Command != nil {
			err = runCommand(hctx, i+1, h, opts, log)
		} else {
			err = runSQL(hctx, runner, target, h, opts.Dir)
		}
		timedOut := hctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if timedOut {
			err = fmt.Errorf("did not finish within %s (stopped): %w", timeout, err)
		}
		if err != nil {
			return fmt.Errorf("hook %d (%s): %w", i+1, h, err)
		}
		log.Info("hook done", "hook", i+1, "what", h.String(), "seconds", time.Since(start).Seconds())
	}
	return nil
}

func runSQL(ctx context.Context, runner engine.SQLRunner, target *dsn.DSN, h Hook, dir string) error {
	if runner == nil {
		return errors.New("the target's engine cannot run SQL")
	}
	if h.SQL != "" {
		return runner.RunSQL(ctx, target, "sql", strings.NewReader(h.SQL))
	}
	path := h.SQLFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open the SQL file: %w", err)
	}
	defer f.Close()
	return runner.RunSQL(ctx, target, h.SQLFile, f)
}

func runCommand(ctx context.Context, n int, h Hook, opts Options, log *slog.Logger) error {
	cmd := exec.Command(h.Command[0], h.Command[1:]...)
	if err := cmd.Err; err != nil {
		return fmt.Errorf("find the program: %w", err)
	}
	cmd.Dir = opts.Dir
	cmd.Env = commandEnv(opts)
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	mu, logged, hide := &sync.Mutex{}, new(int), secrets(opts)
	out := &lineLog{mu: mu, logged: logged, hide: hide, log: log, hook: n, stream: "stdout"}
	errOut := &lineLog{mu: mu, logged: logged, hide: hide, log: log, hook: n, stream: "stderr", keep: TailLines}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole group: a shell's children too
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			err = errors.New("its output stayed open after it was killed")
		}
	}
	out.flush()
	errOut.flush()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	msg := err.Error()
	if errors.As(err, &ee) {
		msg = ee.ProcessState.String() // "exit status 3", "signal: killed"
	}
	if tail := errOut.tail(); tail != "" {
		msg += "; last lines of stderr:\n" + tail
	}
	return errors.New(msg)
}

// commandEnv is a command's whole environment.
func commandEnv(opts Options) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if inherited(name) {
			env = append(env, kv)
		}
	}
	env = append(env, opts.Env...)
	if opts.TargetDSN != "" {
		env = append(env, EnvTargetDSN+"="+opts.TargetDSN)
	}
	return env
}

// secrets are the texts of the command's environment that its output must
// not carry into logs and errors (a hook that prints its environment):
// the target DSN's password and the values of Options.Env variables named
// like secrets.
func secrets(opts Options) *strings.Replacer {
	var pairs []string
	if opts.TargetDSN != "" {
		if d, err := dsn.Parse(opts.TargetDSN); err == nil {
			if pw, ok := d.Password(); ok && pw != "" {
				pairs = append(pairs, pw, dsn.Mask)
			}
		}
	}
	for _, kv := range opts.Env {
		if name, v, ok := strings.Cut(kv, "="); ok && v != "" && (dsn.IsSecretParam(name) || dsn.Looks(v)) {
			if d, err := dsn.Parse(v); err == nil {
				if pw, ok := d.Password(); ok && pw != "" {
					pairs = append(pairs, pw, dsn.Mask)
				}
				continue
			}
			pairs = append(pairs, v, dsn.Mask)
		}
	}
	return strings.NewReplacer(pairs...)
}

// inherited reports whether a variable of snapdata's environment reaches
// hook commands.
func inherited(name string) bool {
	switch name {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}

// lineLog logs a command's output line by line (bounded) and keeps the
// last lines of stderr for the error.
type lineLog struct {
	mu     *sync.Mutex
	hide   *strings.Replacer
	log    *slog.Logger
	hook   int
	stream string
	keep   int
	skip   bool // dropping the rest of an overlong line
	logged *int // lines logged by both streams of the hook
	buf    []byte
	last   []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	n := len(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !l.skip {
			l.buf = append(l.buf, part...)
		}
		switch {
		case i >= 0:
			if !l.skip {
				l.line(l.buf)
			}
			l.buf, l.skip = l.buf[:0], false
			p = p[i+1:]
			continue
		case !l.skip && len(l.buf) > MaxLineBytes+secretSlack:
			// An overlong line: log its start (masked over more than is
			// shown, so a secret across the cut is masked whole) and drop
			// the rest up to the next newline.
			l.line(l.buf)
			l.buf, l.skip = l.buf[:0], true
		}
		p = nil
	}
	return n, nil
}

// secretSlack is how far past MaxLineBytes a line is read before it is
// masked and cut.
const secretSlack = 1024

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 && !l.skip {
		l.line(l.buf)
	}
	l.buf, l.skip = nil, false
}

func (l *lineLog) line(b []byte) {
	s := l.hide.Replace(strings.TrimRight(string(b), "\r"))
	if len(s) > MaxLineBytes {
		s = s[:MaxLineBytes]
	}
	if l.keep > 0 {
		l.last = append(l.last, s)
		if len(l.last) > l.keep {
			l.last = l.last[1:]
		}
	}
	*l.logged++
	switch {
	case *l.logged <= MaxLogLines:
		l.log.Info("hook output", "hook", l.hook, "stream", l.stream, "line", s)
	case *l.logged == MaxLogLines+1:
		l.log.Warn("hook output: more lines are not logged", "hook", l.hook, "limit", MaxLogLines)
	}
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

var _ io.Writer = (*lineLog)(nil)
