package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// --cpuprofile writes a pprof profile (gzip-compressed protobuf) of the run,
// and an unwritable profile path is a usage error that names the flag.
func TestCPUProfileFlag(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "--cpuprofile", "backup.pprof", "sqlite:chinook.sqlite")
	b, err := os.ReadFile("backup.pprof")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("backup.pprof is not a gzip-compressed profile (%d bytes)", len(b))
	}
	r := snap(t, "snapshots", "--repo", "repo", "--cpuprofile", "no-such-dir/x.pprof")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--cpuprofile") {
		t.Fatalf("bad profile path: %s", r)
	}
}
