package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustTarget(t *testing.T, s, base string) Target {
	t.Helper()
	tg, err := ParseTarget(s, base)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s, err)
	}
	return tg
}

func TestAllowPatterns(t *testing.T) {
	base := t.TempDir()
	cases := []struct {
		pattern, target string
		want            bool
	}{
		{"mysql://*@acc-db:3306/orders", "mysql://admin:pw@acc-db:3306/orders", true},
		{"mysql://*@acc-db:3306/orders", "mariadb://admin:pw@ACC-DB/orders", true}, // default port, mariadb is mysql
		{"mysql://*@acc-db:3306/orders", "mysql://admin:pw@acc-db:3307/orders", false},
		{"mysql://*@acc-db:3306/orders", "mysql://admin:pw@acc-db:3306/orders2", false},
		{"mysql://*@acc-db:3306/orders", "postgres://admin:pw@acc-db:3306/orders", false},
		{"mysql://dev@acc-db/orders", "mysql://admin@acc-db/orders", false},
		{"mysql://dev@acc-db/orders", "mysql://dev@acc-db/orders", true},
		{"postgres://acc-*/", "postgres://u@acc-1/anything", true},
		{"postgres://acc-*", "postgres://u@acc-1:5433/anything", false}, // allow: omitted port is the default
		{"postgres://acc-*:*", "postgres://u@acc-1:5433/anything", true},
		{"postgres://localhost/dev_*", "postgresql://u@127.0.0.1/dev_1", true},
		{"postgres://localhost/dev_*", "postgresql://u@127.0.0.1/prod", false},
		{"*://acc-db:*/x", "mysql://u@acc-db:1/x", true},
		{"file:./*.sql", "file:./orders-dev.sql", true},
		{"file:./*.sql", "file:./sub/orders-dev.sql", false},
		{"file:./*.sql", "file:./orders-dev.tar.gz", false},
		{"file:./*.sql", "sqlite:./orders.sql", false},
		{"sqlite:./dev/*.db", "sqlite:./dev/a.db", true},
		{"sqlite:./dev/*.db", "sqlite:./prod/a.db", false},
		{"sqlite:./dev/*.db", "file:./dev/a.db", false},
	}
	for _, c := range cases {
		g := Guard{Allow: []string{c.pattern}, Base: base}
		rule, err := g.Check(context.Background(), mustTarget(t, c.target, base))
		if got := err == nil; got != c.want {
			t.Errorf("allow %q, target %q: allowed=%v, want %v (err %v)", c.pattern, c.target, got, c.want, err)
		}
		if err == nil && rule != c.pattern {
			t.Errorf("allow %q: matched rule %q", c.pattern, rule)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("allow %q, target %q: error does not wrap ErrRefused: %v", c.pattern, c.target, err)
		}
	}
}

func TestRefusalMessage(t *testing.T) {
	g := Guard{Allow: []string{"mysql://admin:secret1@acc-db/orders", "file:/tmp/x/*.sql"}}
	_, err := g.Check(context.Background(), mustTarget(t, "mysql://admin:secret2@prod-db/orders", ""))
	if err == nil {
		t.Fatal("not refused")
	}
	msg := err.Error()
	for _, want := range []string{"mysql://admin:xxxxx@prod-db/orders", "mysql://admin:xxxxx@acc-db/orders", "file:/tmp/x/*.sql", "none of the allow patterns"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "secret") {
		t.Errorf("refusal shows a password: %q", msg)
	}
	if _, err := (Guard{Allow: []string{}}).Check(context.Background(), mustTarget(t, "sqlite:x.db", "")); err == nil || !strings.Contains(err.Error(), "allow list is empty") {
		t.Errorf("empty allow list: %v", err)
	}
}

func TestProtectWins(t *testing.T) {
	g := Guard{Allow: []string{"postgres://*:*/*"}, Protect: []string{"postgres://prod-db"}}
	for _, target := range []string{"postgres://u@prod-db/orders", "postgres://u@PROD-DB:6543/other"} {
		_, err := g.Check(context.Background(), mustTarget(t, target, ""))
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "protect") {
			t.Errorf("%s: %v, want a protect refusal", target, err)
		}
	}
	if _, err := g.Check(context.Background(), mustTarget(t, "postgres://u@acc-db/orders", "")); err != nil {
		t.Errorf("acc-db refused: %v", err)
	}
	// restore and import: no allow list, protect only.
	if _, err := (Guard{Protect: []string{"mysql://prod-*:*"}}).Check(context.Background(), mustTarget(t, "mysql://u@acc/x", "")); err != nil {
		t.Errorf("no allow list: %v", err)
	}
}

func TestSourceIsRefused(t *testing.T) {
	ctx := context.Background()
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "db-alias", "db.example":
			return []string{"10.0.0.7"}, nil
		case "other":
			return []string{"10.0.0.8"}, nil
		case "me":
			return []string{"127.0.1.1"}, nil
		}
		return nil, errors.New("no such host")
	}
	g := Guard{Allow: []string{"*://*:*/*"}, Lookup: lookup}
	cases := []struct {
		target, source string
		refused        bool
	}{
		{"postgres://a@db.example/orders", "postgres://b:pw@db.example:5432/orders", true},
		{"postgres://a@db-alias/orders", "postgres://b@db.example/orders", true},       // same address
		{"postgres://a@db-alias:5433/orders", "postgres://b@db.example/orders", false}, // other port
		{"postgres://a@other/orders", "postgres://b@db.example/orders", false},
		{"postgres://a@db.example/orders_dev", "postgres://b@db.example/orders", false},
		{"postgres://a@127.0.0.1/orders", "postgres://b@localhost/orders", true},
		{"postgres://a@me/orders", "postgres://b@localhost/orders", true}, // a name for a loopback address
		{"mysql://a@db.example/orders", "postgres://b@db.example/orders", false},
	}
	for _, c := range cases {
		_, err := g.Check(ctx, mustTarget(t, c.target, ""), mustTarget(t, c.source, ""))
		if got := err != nil; got != c.refused {
			t.Errorf("target %s, source %s: refused=%v, want %v (%v)", c.target, c.source, got, c.refused, err)
		}
		if err != nil && !strings.Contains(err.Error(), "source itself") {
			t.Errorf("refusal does not say why: %v", err)
		}
	}
	// A host that does not resolve cannot be proven different: refused.
	_, err := g.Check(ctx, mustTarget(t, "postgres://a@nowhere/orders", ""), mustTarget(t, "postgres://b@db.example/orders", ""))
	if !errors.Is(err, ErrRefused) {
		t.Errorf("unresolvable host: %v", err)
	}
}

func TestSourceFileThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "app.db")
	if err := os.WriteFile(real, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	g := Guard{Allow: []string{"sqlite:" + dir + "/**", "sqlite:" + dir + "/*/*"}}
	src := mustTarget(t, "sqlite:"+real, "")
	for _, target := range []string{"sqlite:" + real, "sqlite:" + dir + "/link/app.db", "sqlite:" + dir + "/./link/../app.db"} {
		_, err := g.Check(context.Background(), mustTarget(t, target, ""), src)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "source itself") {
			t.Errorf("%s: %v, want refused as the source", target, err)
		}
	}
}

// The real resolver: localhost and 127.0.0.1 are one server.
func TestSourceUnderOtherHostNameRealResolver(t *testing.T) {
	g := Guard{Allow: []string{"*://*:*/*"}}
	_, err := g.Check(context.Background(), mustTarget(t, "mysql://u@127.0.0.1:3306/app", ""), mustTarget(t, "mysql://u@localhost/app", ""))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("127.0.0.1 vs localhost: %v", err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("no host name: %v", err)
	}
	_, err = g.Check(context.Background(), mustTarget(t, "mysql://u@"+host+":3306/app", ""), mustTarget(t, "mysql://u@localhost/app", ""))
	if !errors.Is(err, ErrRefused) {
		t.Errorf("%s vs localhost: %v", host, err)
	}
}
