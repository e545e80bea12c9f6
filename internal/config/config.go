// Package config loads snapdata.yaml: repositories, sources, jobs,
// notifications and the server, with ${VAR} interpolation and errors that
// name the file, the line and the key at fault.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FileName is the config file looked up in the working directory.
const FileName = "snapdata.yaml"

// EnvConfig names the environment variable that points at a config file.
const EnvConfig = "SNAPDATA_CONFIG"

// Config is the whole file.
type Config struct {
	Repositories map[string]*Repository `yaml:"repositories"`
	Sources      map[string]*Source     `yaml:"sources"`
	Jobs         []*Job                 `yaml:"jobs"`
	Notify       []*Notify              `yaml:"notify"`
	Server       *Server                `yaml:"server"`
	Clones       map[string]*Clone      `yaml:"clones"`
	// Protect lists patterns of production servers (and files) that no
	// writing command may ever target (internal/guard).
	Protect []string `yaml:"protect"`

	// Path is the file the config was read from ("" for none).
	Path string `yaml:"-"`
	// lines maps a key path such as "jobs[0].source" to its line.
	lines map[string]int
}

// Repository names a repository location and how to get its password.
type Repository struct {
	URL          string `yaml:"url"`
	Password     string `yaml:"password"` // use ${ENV} interpolation, never a literal
	PasswordFile string `yaml:"password_file"`
	Prune        *struct {
		Schedule string `yaml:"schedule"`
	} `yaml:"prune"`
}

// Source names a database.
type Source struct {
	DSN  string   `yaml:"dsn"`
	Tags []string `yaml:"tags"`
	// RowOrder is "key" (default) or "physical" (PostgreSQL 14+: less
	// server work, more bytes stored after append-heavy churn).
	RowOrder string `yaml:"row_order"`
}

// Job is a scheduled backup of one or more sources.
type Job struct {
	Name          string     `yaml:"name"`
	Source        StringList `yaml:"source"`
	Clone         string     `yaml:"clone"` // a clone of clones: to run instead of a backup
	Repository    string     `yaml:"repository"`
	Schedule      string     `yaml:"schedule"`
	SkipUnchanged bool       `yaml:"skip_unchanged"`
	Tags          []string   `yaml:"tags"`
	Jobs          int        `yaml:"jobs"`
	Timeout       Duration   `yaml:"timeout"`
	Retention     *Retention `yaml:"retention"`
	Prechecks     *Prechecks `yaml:"prechecks"`
	Verify        *Verify    `yaml:"verify"`
	// CopyTo names repositories (from repositories:) that each run
	// copies the job's snapshots to after its backups (snapdata copy).
	CopyTo StringList `yaml:"copy_to"`
}

// Retention holds restic-style keep rules.
type Retention struct {
	KeepLast    int      `yaml:"keep_last"`
	KeepHourly  int      `yaml:"keep_hourly"`
	KeepDaily   int      `yaml:"keep_daily"`
	KeepWeekly  int      `yaml:"keep_weekly"`
	KeepMonthly int      `yaml:"keep_monthly"`
	KeepYearly  int      `yaml:"keep_yearly"`
	KeepWithin  Duration `yaml:"keep_within"`
	KeepTags    []string `yaml:"keep_tags"`
}

// Prechecks skip a run (not fail it) when the source is not ready.
type Prechecks struct {
	MaxReplicationLag Duration `yaml:"max_replication_lag"`
	MinInterval       Duration `yaml:"min_interval"`
}

// Verify schedules periodic test restores.
type Verify struct {
	Schedule string  `yaml:"schedule"`
	Scratch  Scratch `yaml:"scratch"`
}

// Scratch names the servers where verify may create scratch databases: one
// DSN (for a job whose sources are all of one engine) or one per engine,
// `scratch: { postgres: "postgres://…/", mysql: "mysql://…/" }`.
type Scratch struct {
	// Any is the single-string form.
	Any string
	// ByEngine maps an engine (postgres, mysql) to its server's DSN.
	ByEngine map[string]string
}

// scratchEngines are the keys of the per-engine form and the DSN schemes
// each accepts (mariadb is the same engine as mysql).
var scratchEngines = map[string][]string{
	"postgres": {"postgres://", "postgresql://"},
	"mysql":    {"mysql://", "mariadb://"},
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Scratch) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		s.Any = n.Value
		return nil
	case yaml.MappingNode:
		s.ByEngine = map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			eng := k.Value
			if eng == "mariadb" {
				eng = "mysql"
			}
			schemes, ok := scratchEngines[eng]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q in verify.scratch (expected one of: mysql, postgres)", k.Line, k.Value)
			}
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: verify.scratch.%s: expected a server DSN such as %sscratch-host/", v.Line, k.Value, schemes[0])
			}
			good := false
			for _, p := range schemes {
				good = good || strings.HasPrefix(v.Value, p)
			}
			if !good {
				return fmt.Errorf("line %d: verify.scratch.%s: expected a %s server DSN (%s…)", v.Line, k.Value, eng, strings.Join(schemes, " or "))
			}
			s.ByEngine[eng] = v.Value
		}
		return nil
	}
	return fmt.Errorf("line %d: verify.scratch: expected a server DSN or a mapping of engines (postgres, mysql) to server DSNs", n.Line)
}

// For returns the scratch server DSN for snapshots of engine ("" if none):
// the per-engine entry, else the single string.
func (s Scratch) For(engine string) string {
	if d := s.ByEngine[engine]; d != "" {
		return d
	}
	return s.Any
}

// Key names where For(engine) comes from in the config, for messages.
func (s Scratch) Key(engine string) string {
	if s.ByEngine[engine] != "" || s.Any == "" {
		return "verify.scratch." + engine
	}
	return "verify.scratch"
}

// DSNs returns every DSN given.
func (s Scratch) DSNs() []string {
	var out []string
	if s.Any != "" {
		out = append(out, s.Any)
	}
	for _, e := range []string{"mysql", "postgres"} {
		if d := s.ByEngine[e]; d != "" {
			out = append(out, d)
		}
	}
	return out
}

// Notify is one notification channel.
type Notify struct {
	On      []string `yaml:"on"` // failure, recovery, success, skip
	Webhook string   `yaml:"webhook"`
	Slack   string   `yaml:"slack"`
	Email   *Email   `yaml:"email"`
}

// Email sends notifications over SMTP.
type Email struct {
	To   StringList `yaml:"to"`
	From string     `yaml:"from"`
	SMTP string     `yaml:"smtp"` // smtp://user:pass@host:port
}

// Server configures the daemon's HTTP listener.
type Server struct {
	Listen    string `yaml:"listen"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// StringList accepts a scalar or a sequence of scalars.
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			return err
		}
		*s = out
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

// Duration is a time.Duration that also accepts a "d" (day) suffix.
type Duration time.Duration

// ParseDuration parses "90s", "3h", "7d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: expected e.g. 90s, 3h, 7d", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: expected e.g. 90s, 3h, 7d", s)
	}
	return days + d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Error is a config error with a position.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Find returns the config path to use: explicit, then $SNAPDATA_CONFIG, then
// ./snapdata.yaml if it exists, else "".
func Find(explicit string, getenv func(string) string) string {
	if explicit != "" {
		return explicit
	}
	if p := getenv(EnvConfig); p != "" {
		return p
	}
	if _, err := os.Stat(FileName); err == nil {
		return FileName
	}
	return ""
}

// Load reads and validates a config file. lookup resolves ${VAR}.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: path, Msg: "cannot read the config file: " + err.Error()}
	}
	return Parse(path, data, lookup)
}

// Parse reads a config from bytes; name is used in error messages.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	c := &Config{Path: name, lines: map[string]int{}}
	if len(root.Content) == 0 {
		return c, nil
	}
	doc := root.Content[0]
	if err := interpolateNode(name, doc, lookup); err != nil {
		return nil, err
	}
	if err := checkKeys(name, doc, reflect.TypeOf(Config{}), "", c.lines); err != nil {
		return nil, err
	}
	if err := doc.Decode(c); err != nil {
		return nil, yamlError(name, err)
	}
	c.Path = name
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func yamlError(name string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &Error{File: name, Line: line, Msg: msg}
}

// checkKeys walks the YAML tree alongside the Go type and rejects unknown
// keys, recording each key path's line.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string, lines map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("%s: expected a mapping with keys %s", orTop(path), strings.Join(fieldNames(t), ", "))}
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f.Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			p := join(path, k.Value)
			if !ok {
				return &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q in %s (expected one of: %s)", k.Value, orTop(path), strings.Join(fieldNames(t), ", "))}
			}
			lines[p] = k.Line
			if err := checkKeys(file, v, ft, p, lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("%s: expected a mapping of names", orTop(path))}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[p] = k.Line
			if err := checkKeys(file, v, t.Elem(), p, lines); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("%s: expected a list", orTop(path))}
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = v.Line
			if err := checkKeys(file, v, t.Elem(), p, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	return out
}

// Line returns the line of a key path, or 0.
func (c *Config) Line(path string) int { return c.lines[path] }

// Errorf returns an Error positioned at a key path.
func (c *Config) Errorf(path, format string, args ...any) error {
	return &Error{File: c.Path, Line: c.lines[path], Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) validate() error {
	for name, r := range c.Repositories {
		if r == nil || r.URL == "" {
			return c.Errorf("repositories."+name, "repository %q: url is required (a local path or s3://bucket/prefix?endpoint=...)", name)
		}
	}
	for name, s := range c.Sources {
		if s == nil || s.DSN == "" {
			return c.Errorf("sources."+name, "source %q: dsn is required (e.g. sqlite:./app.db or postgres://user@host/db)", name)
		}
		switch s.RowOrder {
		case "", "key", "physical":
		default:
			return c.Errorf("sources."+name+".row_order", "source %q: row_order %q: expected key or physical", name, s.RowOrder)
		}
	}
	seen := map[string]bool{}
	for i, j := range c.Jobs {
		p := fmt.Sprintf("jobs[%d]", i)
		if j == nil || j.Name == "" {
			return c.Errorf(p, "%s: name is required", p)
		}
		if seen[j.Name] {
			return c.Errorf(p+".name", "job %q is defined twice", j.Name)
		}
		seen[j.Name] = true
		if j.Clone != "" {
			if len(j.Source) > 0 {
				return c.Errorf(p+".clone", "job %q: set source (a backup job) or clone (a clone job), not both", j.Name)
			}
			if _, ok := c.Clones[j.Clone]; !ok {
				return c.Errorf(p+".clone", "job %q: unknown clone %q (defined clones: %s)", j.Name, j.Clone, strings.Join(keys(c.Clones), ", "))
			}
			if j.Verify != nil || j.Retention != nil || j.Prechecks != nil {
				return c.Errorf(p+".clone", "job %q: a clone job takes no verify, retention or prechecks (they belong to the backup job of the source)", j.Name)
			}
			continue
		}
		if len(j.Source) == 0 {
			return c.Errorf(p, "job %q: source (a backup job) or clone (a clone job) is required", j.Name)
		}
		for _, s := range j.Source {
			if _, ok := c.Sources[s]; !ok {
				return c.Errorf(p+".source", "job %q: unknown source %q (defined sources: %s)", j.Name, s, strings.Join(keys(c.Sources), ", "))
			}
		}
		if j.Repository == "" && len(c.Repositories) != 1 {
			return c.Errorf(p, "job %q: repository is required when the config has %d repositories", j.Name, len(c.Repositories))
		}
		if r := j.Retention; r != nil {
			for _, k := range []struct {
				key string
				n   int
			}{{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily}, {"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly}} {
				if k.n < 0 {
					return c.Errorf(p+".retention."+k.key, "job %q: retention.%s is %d: expected 0 or more", j.Name, k.key, k.n)
				}
			}
			if r.KeepWithin < 0 {
				return c.Errorf(p+".retention.keep_within", "job %q: retention.keep_within is negative", j.Name)
			}
		}
		if j.Repository != "" {
			if _, ok := c.Repositories[j.Repository]; !ok {
				return c.Errorf(p+".repository", "job %q: unknown repository %q (defined repositories: %s)", j.Name, j.Repository, strings.Join(keys(c.Repositories), ", "))
			}
		}
		for _, to := range j.CopyTo {
			if _, ok := c.Repositories[to]; !ok {
				return c.Errorf(p+".copy_to", "job %q: copy_to names %q, which is not a repository of the config (defined repositories: %s)", j.Name, to, strings.Join(keys(c.Repositories), ", "))
			}
			if to == c.JobRepository(j) {
				return c.Errorf(p+".copy_to", "job %q: copy_to names %q, the repository the job backs up to: name another one", j.Name, to)
			}
		}
	}
	if err := c.validateClones(); err != nil {
		return err
	}
	for i, n := range c.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		if n == nil {
			return c.Errorf(p, "%s: empty notification", p)
		}
		cnt := 0
		if n.Webhook != "" {
			cnt++
		}
		if n.Slack != "" {
			cnt++
		}
		if n.Email != nil {
			cnt++
		}
		if cnt != 1 {
			return c.Errorf(p, "%s: set exactly one of webhook, slack, email", p)
		}
		for _, on := range n.On {
			switch on {
			case "failure", "recovery", "success", "skip":
			default:
				return c.Errorf(p+".on", "%s: unknown event %q (expected failure, recovery, success or skip)", p, on)
			}
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// RepositoryName picks a repository: the given name, or the only one.
func (c *Config) RepositoryName(name string) (string, bool) {
	if name != "" {
		_, ok := c.Repositories[name]
		return name, ok
	}
	if len(c.Repositories) == 1 {
		for k := range c.Repositories {
			return k, true
		}
	}
	return "", false
}

// JobRepository returns the repository name a job uses.
func (c *Config) JobRepository(j *Job) string {
	if j.Repository != "" {
		return j.Repository
	}
	n, _ := c.RepositoryName("")
	return n
}

// Job returns a job by name.
func (c *Config) Job(name string) (*Job, bool) {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return nil, false
}

// ResolvePath makes a path in the config relative to the config's folder.
func (c *Config) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}
