package serve

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/progress"
)

// chartSeries is one source's history for the chart.
type chartSeries struct {
	Repository string
	Source     string
	SVG        template.HTML
	Count      int
}

type statusData struct {
	Host      string
	Now       time.Time
	Config    string
	Jobs      []JobView
	Repos     []RepoView
	Charts    []chartSeries
	TokenQS   string
	Snapshots []SnapshotView
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"bytes": progress.Bytes,
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "–"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"at": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"rel": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		d := time.Until(*t).Round(time.Second)
		if d >= 0 {
			return "in " + d.String()
		}
		return (-d).String() + " ago"
	},
	"short": func(id string) string {
		if len(id) > 8 {
			return id[:8]
		}
		return id
	},
	"secs": func(f float64) string {
		return (time.Duration(f * float64(time.Second))).Round(time.Millisecond).String()
	},
	"ratio": func(f float64) string { return fmt.Sprintf("%.2f×", f) },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
}).Parse(statusHTML))

const statusHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>snapdata — {{.Host}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.sub{color:#667;margin-bottom:16px}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
.ok{color:#0a7a32;font-weight:600}.failure{color:#c0262d;font-weight:600}.skipped{color:#8a6d00;font-weight:600}.running{color:#1f5fbf;font-weight:600}
.msg{color:#444;max-width:520px;word-break:break-word}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{background:#fff;padding:10px;box-shadow:0 1px 2px #0001}
.chart h3{font-size:14px;margin:0 0 6px}
details{background:#fff;margin:2px 0;padding:4px 10px}
summary{cursor:pointer}
code{font:12px ui-monospace,monospace}
.num{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>snapdata</h1>
<div class="sub">{{.Host}} · {{.Config}} · {{at .Now}} · <a href="/api/jobs{{.TokenQS}}">/api/jobs</a> · <a href="/api/snapshots{{.TokenQS}}">/api/snapshots</a> · <a href="/metrics{{.TokenQS}}">/metrics</a></div>

<h2>Jobs</h2>
<table id="jobs">
<thead><tr><th>Job</th><th>Kind</th><th>Sources</th><th>Repository</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Outcome</th><th>Message</th></tr></thead>
<tbody>
{{range .Jobs}}<tr>
<td><b>{{.Task}}</b></td><td>{{.Kind}}</td><td>{{join .Sources}}</td><td>{{.Repository}}</td>
<td><code>{{if .Schedule}}{{.Schedule}}{{else}}run only{{end}}</code></td>
<td>{{when .NextRun}}<br><small>{{rel .NextRun}}</small></td>
{{if .Last}}<td>{{at .Last.Start}}<br><small>{{secs .Last.Duration}}{{if .Last.BytesAdded}} · +{{bytes .Last.BytesAdded}}{{end}}</small></td>
<td>{{if .Running}}<span class="running">running</span><br>{{end}}<span class="{{if eq .Last.Status "success"}}ok{{else}}{{.Last.Status}}{{end}}">{{.Last.Status}}</span>{{if .Last.Reason}}<br><small>{{.Last.Reason}}</small>{{end}}</td>
<td class="msg">{{.Last.Message}}</td>
{{else}}<td>never</td><td>{{if .Running}}<span class="running">running</span>{{else}}–{{end}}</td><td></td>{{end}}
</tr>{{end}}
</tbody></table>

<h2>Repositories</h2>
<table id="repos"><thead><tr><th>Repository</th><th class="num">Snapshots</th><th class="num">Stored</th><th class="num">Logical</th><th class="num">Dedup</th><th>Problem</th></tr></thead><tbody>
{{range .Repos}}<tr><td>{{.Name}}</td><td class="num">{{.Snapshots}}</td><td class="num">{{bytes .Stored}}</td><td class="num">{{bytes .Logical}}</td><td class="num">{{ratio .Dedup}}</td><td class="failure">{{.Error}}</td></tr>{{end}}
</tbody></table>

<h2>Stored bytes and bytes added per snapshot</h2>
<div class="charts">
{{range .Charts}}<div class="chart" data-source="{{.Source}}"><h3>{{.Source}} <small>({{.Repository}}, {{.Count}} snapshots)</small></h3>{{.SVG}}</div>
{{else}}<p>No snapshots yet.</p>{{end}}
</div>

<h2>Snapshots</h2>
<table id="snapshots"><thead><tr><th>ID</th><th>Time</th><th>Source</th><th>Engine</th><th class="num">Logical</th><th class="num">Added</th><th>Tables</th></tr></thead><tbody>
{{range .Snapshots}}<tr><td><code>{{short .ID}}</code></td><td>{{at .Time}}</td><td>{{.Source}}</td><td>{{.Engine}}</td><td class="num">{{bytes .Logical}}</td><td class="num">{{bytes .Added}}</td>
<td><details><summary>{{len .Tables}} tables</summary><table><tr><th>Table</th><th class="num">Rows</th><th class="num">Bytes</th></tr>{{range .Tables}}<tr><td>{{.Name}}</td><td class="num">{{.Rows}}</td><td class="num">{{bytes .Bytes}}</td></tr>{{end}}</table></details></td></tr>
{{end}}</tbody></table>
</body></html>
`

func (s *Service) statusPage(w http.ResponseWriter, r *http.Request) {
	repos := s.repoViews(r.Context())
	d := statusData{Host: hostname(), Now: time.Now(), Config: s.current().cfg.Path, Jobs: s.jobViews(), Repos: repos}
	if t := r.URL.Query().Get("token"); t != "" {
		d.TokenQS = "?token=" + url.QueryEscape(t)
	}
	for _, rv := range repos {
		d.Snapshots = append(d.Snapshots, rv.snapshotsV...)
		bySource := map[string][]SnapshotView{}
		for _, sv := range rv.snapshotsV {
			bySource[sv.Source] = append(bySource[sv.Source], sv)
		}
		names := make([]string, 0, len(bySource))
		for n := range bySource {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			list := bySource[n]
			sort.Slice(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
			d.Charts = append(d.Charts, chartSeries{Repository: rv.Name, Source: n, Count: len(list), SVG: chartSVG(list)})
		}
	}
	sort.SliceStable(d.Snapshots, func(i, j int) bool { return d.Snapshots[i].Time.After(d.Snapshots[j].Time) })
	if len(d.Snapshots) > 200 {
		d.Snapshots = d.Snapshots[:200]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTmpl.Execute(w, d); err != nil {
		s.log.Warn("status page", "error", err.Error())
	}
}

// chartSVG draws one source's history: a line of stored bytes (the running
// sum of the bytes each snapshot added, left axis) and bars of the bytes
// each snapshot added (right axis), over time.
func chartSVG(snaps []SnapshotView) template.HTML {
	const W, H = 560.0, 220.0
	const left, right, top, bottom = 70.0, 70.0, 16.0, 40.0
	pw, ph := W-left-right, H-top-bottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="growth" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="stored bytes and bytes added per snapshot">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fbfbfd" stroke="#d0d4dc"/>`, left, top, pw, ph)
	if len(snaps) == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	cum := make([]float64, len(snaps))
	var sum, maxAdd float64
	for i, s := range snaps {
		sum += float64(s.Added)
		cum[i] = sum
		if float64(s.Added) > maxAdd {
			maxAdd = float64(s.Added)
		}
	}
	maxCum := niceCeil(sum)
	maxAdd = niceCeil(maxAdd)
	t0, t1 := snaps[0].Time, snaps[len(snaps)-1].Time
	span := t1.Sub(t0).Seconds()
	x := func(t time.Time) float64 {
		if span <= 0 {
			return left + pw/2
		}
		return left + 8 + (pw-16)*t.Sub(t0).Seconds()/span
	}
	// Grid and axis labels.
	for i := 0; i <= 4; i++ {
		y := top + ph - ph*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e6e8ee"/>`, left, y, left+pw, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#1f5fbf">%s</text>`, left-6, y+3, template.HTMLEscapeString(progress.Bytes(int64(maxCum*float64(i)/4))))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#d9822b">%s</text>`, left+pw+6, y+3, template.HTMLEscapeString(progress.Bytes(int64(maxAdd*float64(i)/4))))
	}
	// Bars: bytes added.
	bw := pw / float64(len(snaps)) * 0.6
	if bw > 18 {
		bw = 18
	}
	if bw < 1.5 {
		bw = 1.5
	}
	for _, s := range snaps {
		h := 0.0
		if maxAdd > 0 {
			h = ph * float64(s.Added) / maxAdd
		}
		fmt.Fprintf(&b, `<rect class="added" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f0a050" opacity="0.85"><title>%s: +%s</title></rect>`,
			x(s.Time)-bw/2, top+ph-h, bw, h, s.Time.Local().Format("2006-01-02 15:04:05"), template.HTMLEscapeString(progress.Bytes(s.Added)))
	}
	// Line: stored bytes.
	var pts []string
	for i, s := range snaps {
		y := top + ph
		if maxCum > 0 {
			y = top + ph - ph*cum[i]/maxCum
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.Time), y))
	}
	fmt.Fprintf(&b, `<polyline class="stored" points="%s" fill="none" stroke="#1f5fbf" stroke-width="2"/>`, strings.Join(pts, " "))
	for i, p := range pts {
		xy := strings.Split(p, ",")
		fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="#1f5fbf"><title>stored %s</title></circle>`, xy[0], xy[1], template.HTMLEscapeString(progress.Bytes(int64(cum[i]))))
	}
	// Time axis.
	layout := "15:04:05"
	if span > 24*3600 {
		layout = "01-02 15:04"
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" fill="#555">%s</text>`, left, top+ph+14, t0.Local().Format(layout))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`, left+pw, top+ph+14, t1.Local().Format(layout))
	// Legend.
	ly := H - 8
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1f5fbf" stroke-width="2"/><text x="%.1f" y="%.1f" font-size="11" fill="#333">stored bytes (left)</text>`, left, ly-4, left+18, ly-4, left+22, ly)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="9" fill="#f0a050"/><text x="%.1f" y="%.1f" font-size="11" fill="#333">bytes added per snapshot (right)</text>`, left+160, ly-9, left+176, ly)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
