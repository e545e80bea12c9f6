package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/snapdata/snapdata/internal/repository"
)

// metrics live in a private registry: nothing global.
type metrics struct {
	reg *prometheus.Registry

	lastSuccess  *prometheus.GaugeVec
	lastRun      *prometheus.GaugeVec
	lastDuration *prometheus.GaugeVec
	bytesAdded   *prometheus.GaugeVec
	running      *prometheus.GaugeVec
	runs         *prometheus.CounterVec
	skips        *prometheus.CounterVec

	stored    *prometheus.GaugeVec
	logical   *prometheus.GaugeVec
	dedup     *prometheus.GaugeVec
	snapshots *prometheus.GaugeVec
	reloads   *prometheus.CounterVec
}

func newMetrics() *metrics {
	job := []string{"job"}
	repo := []string{"repository"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_job_last_success_timestamp_seconds",
			Help: "Unix time of the job's last successful run (an unchanged source counts as success)."}, job),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_job_last_run_timestamp_seconds",
			Help: "Unix time the job's last run ended, whatever its outcome."}, job),
		lastDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_job_last_duration_seconds",
			Help: "Duration of the job's last run."}, job),
		bytesAdded: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_job_last_bytes_added",
			Help: "Stored bytes the job's last run added to the repository."}, job),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_job_running",
			Help: "1 while the job runs in this process."}, job),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdata_job_runs_total",
			Help: "Job runs by outcome (success, failure, skipped)."}, []string{"job", "outcome"}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdata_job_skips_total",
			Help: "Skipped runs and unchanged sources, by reason."}, []string{"job", "reason"}),
		stored: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_repository_stored_bytes",
			Help: "Bytes the repository occupies in storage."}, repo),
		logical: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_repository_logical_bytes",
			Help: "Sum of the logical (uncompressed, undeduplicated) sizes of all snapshots."}, repo),
		dedup: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_repository_dedup_ratio",
			Help: "Logical bytes of all snapshots divided by stored bytes."}, repo),
		snapshots: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "snapdata_repository_snapshots",
			Help: "Number of snapshots in the repository."}, repo),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "snapdata_config_reloads_total",
			Help: "Config reloads by result (ok, error)."}, []string{"result"}),
	}
	m.reg.MustRegister(m.lastSuccess, m.lastRun, m.lastDuration, m.bytesAdded, m.running, m.runs, m.skips,
		m.stored, m.logical, m.dedup, m.snapshots, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(o *Outcome) {
	m.runs.WithLabelValues(o.Task, o.Status).Inc()
	m.lastRun.WithLabelValues(o.Task).Set(float64(o.Start.Unix()) + o.Duration)
	m.lastDuration.WithLabelValues(o.Task).Set(o.Duration)
	if o.Status == StatusSkipped {
		m.skips.WithLabelValues(o.Task, o.Reason).Inc()
		return
	}
	for _, s := range o.Sources {
		if s.Reason == ReasonUnchanged {
			m.skips.WithLabelValues(o.Task, ReasonUnchanged).Inc()
		}
	}
	m.bytesAdded.WithLabelValues(o.Task).Set(float64(o.BytesAdded))
	if o.Status == StatusSuccess {
		m.lastSuccess.WithLabelValues(o.Task).Set(float64(o.Start.Unix()) + o.Duration)
	}
}

// restore sets a task's gauges from its remembered state (a state file
// written by an earlier serve or run), leaving alone those it lacks.
func (m *metrics) restore(task string, st *TaskState) {
	if st == nil {
		return
	}
	if !st.LastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(task).Set(float64(st.LastSuccess.UnixNano()) / 1e9)
	}
	if o := st.Last; o != nil && !o.Start.IsZero() {
		m.lastRun.WithLabelValues(task).Set(float64(o.Start.Unix()) + o.Duration)
		m.lastDuration.WithLabelValues(task).Set(o.Duration)
		if o.Status != StatusSkipped {
			m.bytesAdded.WithLabelValues(task).Set(float64(o.BytesAdded))
		}
	}
}

func (m *metrics) repoStats(name string, st repository.Stats) {
	m.stored.WithLabelValues(name).Set(float64(st.StoredBytes))
	m.logical.WithLabelValues(name).Set(float64(st.LogicalBytes))
	m.snapshots.WithLabelValues(name).Set(float64(st.Snapshots))
	if st.StoredBytes > 0 {
		m.dedup.WithLabelValues(name).Set(float64(st.LogicalBytes) / float64(st.StoredBytes))
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
