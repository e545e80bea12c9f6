// Package retention decides which snapshots forget keeps, with restic's
// rules: keep the last N, the newest per hour/day/week/month/year for the
// last N such periods, everything within a duration, and tagged snapshots.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/manifest"
)

// Policy is a set of keep rules. A zero Policy keeps everything.
type Policy struct {
	Last    int           `json:"keep_last,omitempty"`
	Hourly  int           `json:"keep_hourly,omitempty"`
	Daily   int           `json:"keep_daily,omitempty"`
	Weekly  int           `json:"keep_weekly,omitempty"`
	Monthly int           `json:"keep_monthly,omitempty"`
	Yearly  int           `json:"keep_yearly,omitempty"`
	Within  time.Duration `json:"keep_within,omitempty"`
	Tags    []string      `json:"keep_tags,omitempty"`
}

// Empty reports whether the policy has no rule.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 && p.Within == 0 && len(p.Tags) == 0
}

func (p Policy) String() string {
	var parts []string
	add := func(n int, what string) {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(p.Last, "last")
	add(p.Hourly, "hourly")
	add(p.Daily, "daily")
	add(p.Weekly, "weekly")
	add(p.Monthly, "monthly")
	add(p.Yearly, "yearly")
	if p.Within > 0 {
		parts = append(parts, "all within "+p.Within.String())
	}
	for _, t := range p.Tags {
		parts = append(parts, "tag "+t)
	}
	if len(parts) == 0 {
		return "keep everything"
	}
	return "keep " + strings.Join(parts, ", ")
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot *manifest.Snapshot
	Keep     bool
	Reasons  []string // why it is kept
}

// Apply decides for the snapshots of ONE source. The newest snapshot is
// always kept. The result is ordered newest first.
func Apply(snaps []*manifest.Snapshot, p Policy) []Decision {
	list := append([]*manifest.Snapshot(nil), snaps...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Time.After(list[j].Time) })
	out := make([]Decision, len(list))
	for i, s := range list {
		out[i] = Decision{Snapshot: s}
	}
	if len(list) == 0 {
		return out
	}
	if p.Empty() {
		for i := range out {
			out[i].Keep = true
			out[i].Reasons = []string{"no keep rule"}
		}
		return out
	}
	type bucketRule struct {
		n    int
		name string
		key  func(time.Time) string
	}
	rules := []bucketRule{
		{p.Last, "last", func(t time.Time) string { return t.Format(time.RFC3339Nano) + "#" }},
		{p.Hourly, "hourly", func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{p.Daily, "daily", func(t time.Time) string { return t.Format("2006-01-02") }},
		{p.Weekly, "weekly", func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{p.Monthly, "monthly", func(t time.Time) string { return t.Format("2006-01") }},
		{p.Yearly, "yearly", func(t time.Time) string { return t.Format("2006") }},
	}
	for ri, r := range rules {
		if r.n == 0 {
			continue
		}
		left := r.n
		last := ""
		for i, s := range list {
			k := r.key(s.Time.Local())
			if ri == 0 {
				k = fmt.Sprint(i) // every snapshot is its own bucket
			}
			if k == last {
				continue
			}
			last = k
			if left == 0 {
				break
			}
			if left > 0 {
				left--
			}
			out[i].Keep = true
			out[i].Reasons = append(out[i].Reasons, r.name)
		}
	}
	if p.Within > 0 {
		newest := list[0].Time
		for i, s := range list {
			if newest.Sub(s.Time) <= p.Within {
				out[i].Keep = true
				out[i].Reasons = append(out[i].Reasons, "within "+p.Within.String())
			}
		}
	}
	for _, tag := range p.Tags {
		for i, s := range list {
			if s.HasTag(tag) {
				out[i].Keep = true
				out[i].Reasons = append(out[i].Reasons, "tag "+tag)
			}
		}
	}
	if !out[0].Keep {
		out[0].Keep = true
	}
	if len(out[0].Reasons) == 0 || out[0].Reasons[len(out[0].Reasons)-1] != "newest" {
		out[0].Reasons = append(out[0].Reasons, "newest")
	}
	return out
}

// BySource groups snapshots by source.
func BySource(snaps []*manifest.Snapshot) map[string][]*manifest.Snapshot {
	m := map[string][]*manifest.Snapshot{}
	for _, s := range snaps {
		m[s.Source] = append(m[s.Source], s)
	}
	return m
}
