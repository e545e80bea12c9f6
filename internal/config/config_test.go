package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExpand(t *testing.T) {
	vars := env(map[string]string{"A": "1", "EMPTY": ""})
	cases := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"${A}", "1", ""},
		{"x${A}y${A}", "x1y1", ""},
		{"${B:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${A:-def}", "1", ""},
		{"${A?need A}", "1", ""},
		{"${B?set B to the repo password}", "", "set B to the repo password"},
		{"${B}", "", "B is not set"},
		{"$$HOME", "$HOME", ""},
		{"cost $5", "cost $5", ""},
		{"${A", "", "unclosed"},
		{"${1BAD}", "", "invalid variable name"},
	}
	for _, c := range cases {
		got, err := Expand(c.in, vars)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Expand(%q) error = %v, want containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

const good = `
repositories:
  main: { url: ./backups, password_file: /run/secrets/repo }
sources:
  chinook: { dsn: "sqlite:./chinook.sqlite" }
  orders: { dsn: "postgres://app:${PGPASS}@db/orders" }
jobs:
  - name: orders-every-5m
    source: orders
    schedule: "*/5 * * * *"
    skip_unchanged: true
    retention: { keep_last: "${KEEP:-12}", keep_daily: 7, keep_within: 2d }
    prechecks: { max_replication_lag: 3h, min_interval: 24h }
    timeout: 2h
  - name: both
    source: [orders, chinook]
    schedule: "@every 90s"
notify:
  - { on: [failure, recovery], webhook: "https://example.invalid/hook" }
server: { listen: 127.0.0.1:9187 }
`

func TestParseGood(t *testing.T) {
	c, err := Parse("snapdata.yaml", []byte(good), env(map[string]string{"PGPASS": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sources["orders"].DSN; got != "postgres://app:s3cret@db/orders" {
		t.Errorf("dsn = %q", got)
	}
	j, ok := c.Job("orders-every-5m")
	if !ok || j.Retention.KeepLast != 12 || j.Retention.KeepWithin.D() != 48*time.Hour || j.Prechecks.MaxReplicationLag.D() != 3*time.Hour {
		t.Errorf("job = %+v %+v", j, j.Retention)
	}
	if c.JobRepository(j) != "main" {
		t.Errorf("job repository = %q", c.JobRepository(j))
	}
	b, _ := c.Job("both")
	if len(b.Source) != 2 {
		t.Errorf("sources = %v", b.Source)
	}
	if c.Server.Listen != "127.0.0.1:9187" {
		t.Errorf("listen = %q", c.Server.Listen)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top key", "repos: {}\n", `snapdata.yaml:1: unknown key "repos" in the top level`},
		{"unknown nested key", "sources:\n  a:\n    dsn: sqlite:x\n    passwd: x\n", `snapdata.yaml:4: unknown key "passwd" in sources.a (expected one of: dsn, row_order, tags)`},
		{"unknown job key", "sources: {a: {dsn: 'sqlite:x'}}\nrepositories: {r: {url: x}}\njobs:\n  - name: j\n    source: a\n    schedul: x\n", `snapdata.yaml:6: unknown key "schedul" in jobs[0]`},
		{"missing env", "sources:\n  a: { dsn: \"${NOPE?set NOPE to the DSN}\" }\n", "snapdata.yaml:2: ${NOPE}: set NOPE to the DSN"},
		{"unknown source in job", "repositories: {r: {url: x}}\nsources: {a: {dsn: 'sqlite:x'}}\njobs:\n  - name: j\n    source: b\n", `snapdata.yaml:5: job "j": unknown source "b"`},
		{"bad duration", "repositories: {r: {url: x}}\nsources: {a: {dsn: 'sqlite:x'}}\njobs:\n  - name: j\n    source: a\n    timeout: soon\n", `snapdata.yaml:6: invalid duration "soon"`},
		{"missing url", "repositories:\n  r: {password_file: x}\n", `snapdata.yaml:2: repository "r": url is required`},
		{"bad yaml", "sources: [\n", "snapdata.yaml:"},
		{"bad notify event", "notify:\n  - {on: [boom], webhook: x}\n", `unknown event "boom"`},
		{"bad row order", "sources:\n  a:\n    dsn: 'postgres://h/db'\n    row_order: heap\n", `snapdata.yaml:4: source "a": row_order "heap": expected key or physical`},
		{"two channels", "notify:\n  - {on: [failure], webhook: x, slack: y}\n", "exactly one of webhook, slack, email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("snapdata.yaml", []byte(c.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want containing %q", err, c.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "3h": 3 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "": 0} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
}

// verify.scratch takes one DSN or one per engine; a wrong key or a DSN of
// another engine names the line.
func TestVerifyScratchForms(t *testing.T) {
	head := "repositories:\n  main: { url: ./r }\nsources:\n  a: { dsn: sqlite:a.db }\njobs:\n  - name: a\n    source: a\n    verify:\n"
	c, err := Parse("s.yaml", []byte(head+"      scratch: postgres://v@h/\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if sc := c.Jobs[0].Verify.Scratch; sc.For("postgres") != "postgres://v@h/" || sc.For("mysql") != "postgres://v@h/" || sc.Key("mysql") != "verify.scratch" {
		t.Errorf("single form: %+v", sc)
	}
	c, err = Parse("s.yaml", []byte(head+"      scratch:\n        postgres: postgres://v@h/\n        mariadb: mariadb://v@m/\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Jobs[0].Verify.Scratch
	if sc.For("postgres") != "postgres://v@h/" || sc.For("mysql") != "mariadb://v@m/" || sc.Key("mysql") != "verify.scratch.mysql" || len(sc.DSNs()) != 2 {
		t.Errorf("per-engine form: %+v", sc)
	}
	for body, want := range map[string]string{
		"      scratch: { oracle: x }\n":                  `s.yaml:9: unknown key "oracle" in verify.scratch`,
		"      scratch: { mysql: \"postgres://v@h/\" }\n": "s.yaml:9: verify.scratch.mysql: expected a mysql server DSN",
		"      scratch: [a]\n":                            "s.yaml:9: verify.scratch: expected a server DSN or a mapping",
	} {
		if _, err := Parse("s.yaml", []byte(head+body), env(nil)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// Negative keep rules are refused with file, line and key.
func TestNegativeKeep(t *testing.T) {
	y := "repositories:\n  main: { url: ./r }\nsources:\n  a: { dsn: sqlite:a.db }\njobs:\n  - name: a\n    source: a\n    retention:\n      keep_daily: 3\n      keep_weekly: -2\n"
	_, err := Parse("s.yaml", []byte(y), env(nil))
	if err == nil || !strings.Contains(err.Error(), `s.yaml:10: job "a": retention.keep_weekly is -2`) {
		t.Fatalf("negative keep_weekly: %v", err)
	}
}
