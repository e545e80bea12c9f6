package cli

import (
	"os"
	"strings"
	"testing"
)

// TestExportNoOwnerFlagsSQLite: SQLite has no owners or grants, so
// export --no-owner/--no-privileges write the same script and say so; the
// flags with --format tar.gz are a usage error (exit 2).
func TestExportNoOwnerFlagsSQLite(t *testing.T) {
	setup(t)
	chinook(t, "app.db")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:app.db")
	must(t, "export", "latest", "--repo", "repo", "-o", "plain.sql")
	r := must(t, "export", "latest", "--repo", "repo", "-o", "flags.sql", "--no-owner", "--no-privileges")
	if !strings.Contains(r.stderr, "change nothing") {
		t.Errorf("export --no-owner of a SQLite snapshot does not say the flags change nothing:\n%s", r)
	}
	a, _ := os.ReadFile("plain.sql")
	b, _ := os.ReadFile("flags.sql")
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("the SQLite scripts differ (%d and %d bytes)", len(a), len(b))
	}
	r = snap(t, "export", "latest", "--repo", "repo", "--format", "tar.gz", "-o", "x.tar.gz", "--no-owner")
	if r.code != 2 || !strings.Contains(r.stderr, "--format sql") {
		t.Errorf("export --format tar.gz --no-owner: %s", r)
	}
	if _, err := os.Stat("x.tar.gz"); err == nil {
		t.Error("the refused export wrote its file")
	}
}
