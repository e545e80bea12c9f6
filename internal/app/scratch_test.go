package app

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/engine"
)

// issue 18 (12): a scratch database is a leftover only when its marker
// proves it is a verify's and that verify is over.
func TestLeftoverReason(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	dead := func(int) bool { return false }
	alive := func(int) bool { return true }
	mk := func(host, ns string, pid int, started time.Time) string {
		return scratchMarker{Host: host, PID: pid, PIDNS: ns, Started: started, Token: "abc"}.String()
	}
	recent := now.Add(-time.Hour)
	for _, c := range []struct {
		name  string
		db    engine.ScratchDB
		alive func(int) bool
		want  string // part of the reason, "" for not a leftover
	}{
		{"dead owner", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("h", "pid:[1]", 999999, recent)}, dead, "pid 999999 on h, started"},
		{"live owner", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("h", "pid:[1]", 999999, recent)}, alive, ""},
		{"other host, recent", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("other", "pid:[1]", 999999, recent)}, dead, ""},
		{"other PID namespace, recent", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("h", "pid:[2]", 999999, recent)}, dead, ""},
		{"other host, old", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("other", "pid:[1]", 5, now.Add(-25*time.Hour))}, alive, "more than 24h"},
		{"in use", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("h", "pid:[1]", 999999, recent), Sessions: 1}, dead, ""},
		{"this process", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: mk("h", "pid:[1]", os.Getpid(), recent)}, dead, ""},
		{"no marker", engine.ScratchDB{Name: "snapdata_verify_a_1"}, dead, ""},
		{"a look-alike comment", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: "snapdata verify scratch, but a person wrote this"}, dead, ""},
		{"marker without a token", engine.ScratchDB{Name: "snapdata_verify_a_1", Marker: `snapdata verify scratch {"host":"h","pid":999999,"pidns":"pid:[1]","started":"2026-12-04T11:00:00Z"}`}, dead, ""},
		{"other name", engine.ScratchDB{Name: "orders", Marker: mk("h", "pid:[1]", 999999, recent)}, dead, ""},
	} {
		got := leftoverReason(c.db, now, "h", "pid:[1]", c.alive)
		if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
