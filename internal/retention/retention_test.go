package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/manifest"
)

func snapsEvery(start time.Time, step time.Duration, n int) []*manifest.Snapshot {
	var out []*manifest.Snapshot
	for i := 0; i < n; i++ {
		out = append(out, &manifest.Snapshot{ID: fmt.Sprintf("%02d", i), Time: start.Add(time.Duration(i) * step), Source: "s"})
	}
	return out
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.ID)
		}
	}
	return out
}

func TestApply(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 30, 0, 0, time.Local) // a Thursday
	hourly := snapsEvery(base, time.Hour, 50)              // 50 hours: 00:30 day 1 .. 01:30 day 3
	tagged := snapsEvery(base, time.Hour, 5)
	tagged[1].Tags = []string{"keep"}
	cases := []struct {
		name  string
		snaps []*manifest.Snapshot
		p     Policy
		want  string
	}{
		{"empty policy keeps all", hourly[:3], Policy{}, "[02 01 00]"},
		{"keep last 3", hourly, Policy{Last: 3}, "[49 48 47]"},
		{"keep hourly 2", hourly, Policy{Hourly: 2}, "[49 48]"},
		{"keep daily 2", hourly, Policy{Daily: 2}, "[49 47]"}, // newest of day 3 and of day 2
		{"keep daily 5 (only 3 days)", hourly, Policy{Daily: 5}, "[49 47 23]"},
		{"keep last 1 + daily 2", hourly, Policy{Last: 1, Daily: 2}, "[49 47]"},
		{"keep within 2h", hourly, Policy{Within: 2 * time.Hour}, "[49 48 47]"},
		{"keep tag keeps tagged + newest", tagged, Policy{Tags: []string{"keep"}}, "[04 01]"},
		{"newest always kept", hourly[:4], Policy{Tags: []string{"nothing"}}, "[03]"},
		{"keep weekly 1", hourly, Policy{Weekly: 1}, "[49]"},
		{"keep monthly 1 yearly 1", hourly, Policy{Monthly: 1, Yearly: 1}, "[49]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fmt.Sprint(kept(Apply(c.snaps, c.p)))
			if got != c.want {
				t.Errorf("kept %s, want %s", got, c.want)
			}
		})
	}
}
