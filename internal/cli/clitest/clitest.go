// Package clitest drives the snapdata command line in the engines'
// end-to-end tests: scenarios that every server engine must pass the same
// way.
package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/cli"
)

// Server is a database server of one engine, as a scenario needs it.
type Server struct {
	DSN         string // the server DSN with no database: what --all-databases is given
	OtherScheme string // the same DSN under the engine's other scheme name
	Secret      string // the server's password: never in snapdata's output
	// CreateDatabase creates a user database with a table and rows.
	CreateDatabase func(t *testing.T, name string)
}

// AllDatabases checks backup --all-databases: one snapshot per user
// database (not the server's own), and a database created after the first
// run picked up on the next, given the server under its other scheme name.
func AllDatabases(t *testing.T, srv Server) {
	t.Helper()
	for _, db := range []string{"alpha", "beta"} {
		srv.CreateDatabase(t, db)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SNAPDATA_PASSWORD", "all-dbs-pw")
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("snapdata %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		if strings.Contains(out.String()+errb.String(), srv.Secret) {
			t.Fatalf("snapdata %s printed the server's password", args[0])
		}
		return out.String()
	}
	databases := func(out string) []string {
		t.Helper()
		var snaps []struct{ Database string }
		if err := json.Unmarshal([]byte(out), &snaps); err != nil {
			t.Fatalf("snapshots --json: %v\n%s", err, out)
		}
		var names []string
		for _, s := range snaps {
			names = append(names, s.Database)
		}
		sort.Strings(names)
		return names
	}
	run("init", "--repo", repo)
	if got := databases(run("backup", "--repo", repo, "--all-databases", srv.DSN, "--json")); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("first backup --all-databases made snapshots of %q, want alpha and beta", got)
	}
	srv.CreateDatabase(t, "gamma")
	if got := databases(run("backup", "--repo", repo, "--all-databases", srv.OtherScheme, "--json")); !slices.Equal(got, []string{"alpha", "beta", "gamma"}) {
		t.Fatalf("second backup --all-databases made snapshots of %q, want alpha, beta and gamma", got)
	}
	if got := databases(run("snapshots", "--repo", repo, "--json")); !slices.Equal(got, []string{"alpha", "alpha", "beta", "beta", "gamma"}) {
		t.Errorf("the repository holds snapshots of %q", got)
	}
}
