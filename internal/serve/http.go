package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/manifest"
)

// startHTTP binds the listener and serves /, /healthz, /metrics and /api/*.
func (s *Service) startHTTP(cfg *config.Config) (*http.Server, string, error) {
	listen := s.opts.Listen
	if listen == "" && cfg.Server != nil {
		listen = cfg.Server.Listen
	}
	if listen == "" {
		listen = DefaultListen
	}
	token, err := serverToken(cfg)
	if err != nil {
		return nil, "", err
	}
	if !isLoopback(listen) && token == "" {
		return nil, "", cfg.Errorf("server", "server.listen %s is not a loopback address: set server.token or server.token_file so that the status page and metrics require a token (or listen on 127.0.0.1)", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: s.handler(token), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "error", err.Error())
		}
	}()
	return srv, ln.Addr().String(), nil
}

func serverToken(cfg *config.Config) (string, error) {
	if cfg.Server == nil {
		return "", nil
	}
	if cfg.Server.Token != "" {
		return cfg.Server.Token, nil
	}
	if cfg.Server.TokenFile != "" {
		b, err := os.ReadFile(cfg.ResolvePath(cfg.Server.TokenFile))
		if err != nil {
			return "", cfg.Errorf("server.token_file", "server.token_file: %v", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", cfg.Errorf("server.token_file", "server.token_file %s is empty", cfg.Server.TokenFile)
		}
		return t, nil
	}
	return "", nil
}

// isLoopback reports whether a listen address only accepts local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Service) handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.jobViews())
	})
	mux.HandleFunc("GET /api/snapshots", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.snapshotViews(r.Context()))
	})
	mux.HandleFunc("GET /{$}", s.statusPage)
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !tokenOK(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="snapdata"`)
			http.Error(w, "a token is required: send 'Authorization: Bearer TOKEN' or add ?token=TOKEN", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func tokenOK(r *http.Request, token string) bool {
	got := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// JobView is one row of /api/jobs and of the status page's job table.
type JobView struct {
	Task        string     `json:"task"`
	Job         string     `json:"job,omitempty"`
	Kind        string     `json:"kind"`
	Repository  string     `json:"repository"`
	Sources     []string   `json:"sources,omitempty"`
	Schedule    string     `json:"schedule"`
	NextRun     *time.Time `json:"next_run,omitempty"`
	Running     bool       `json:"running"`
	RunningFor  float64    `json:"running_seconds,omitempty"`
	Last        *Outcome   `json:"last,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

func (s *Service) jobViews() []JobView {
	g := s.current()
	var sch *scheduler
	if s.sched != nil {
		sch = s.sched()
	}
	var out []JobView
	for _, t := range jobTasks(g.cfg) {
		v := JobView{Task: t.Name, Kind: t.Kind, Repository: t.Repo, Schedule: t.Schedule}
		if t.Job != nil {
			v.Job = t.Job.Name
			v.Sources = append(v.Sources, t.Job.Source...)
		}
		if sch != nil {
			if id, ok := sch.entries[t.Name]; ok {
				if n := sch.cron.Entry(id).Next; !n.IsZero() {
					v.NextRun = &n
				}
			}
		}
		st := s.state(t.Name)
		s.mu.Lock()
		if since, ok := s.running[t.Name]; ok {
			v.Running = true
			v.RunningFor = round3(time.Since(since).Seconds())
		}
		if st.Last != nil {
			cp := *st.Last
			v.Last = &cp
		}
		if !st.LastSuccess.IsZero() {
			ls := st.LastSuccess
			v.LastSuccess = &ls
		}
		s.mu.Unlock()
		out = append(out, v)
	}
	return out
}

// SnapshotView is one entry of /api/snapshots.
type SnapshotView struct {
	Repository string           `json:"repository"`
	ID         string           `json:"id"`
	Time       time.Time        `json:"time"`
	Source     string           `json:"source"`
	Engine     string           `json:"engine"`
	Host       string           `json:"host"`
	Tags       []string         `json:"tags"`
	Logical    int64            `json:"logical_bytes"`
	Added      int64            `json:"added_bytes"`
	Duration   float64          `json:"duration_seconds"`
	Tables     []manifest.Table `json:"tables"`
}

// RepoView is a repository on the status page.
type RepoView struct {
	Name       string  `json:"name"`
	Stored     int64   `json:"stored_bytes"`
	Logical    int64   `json:"logical_bytes"`
	Dedup      float64 `json:"dedup_ratio"`
	Snapshots  int     `json:"snapshots"`
	Error      string  `json:"error,omitempty"`
	snapshotsV []SnapshotView
}

// repoViews returns the repositories the jobs use, listing them when the
// cache is older than 30s.
func (s *Service) repoViews(ctx context.Context) []RepoView {
	g := s.current()
	names := map[string]bool{}
	for _, t := range jobTasks(g.cfg) {
		names[t.Repo] = true
	}
	var list []string
	for n := range names {
		if n != "" {
			list = append(list, n)
		}
	}
	sort.Strings(list)
	var out []RepoView
	for _, n := range list {
		s.mu.Lock()
		v := s.repos[n]
		s.mu.Unlock()
		if v == nil || time.Since(v.at) > 30*time.Second {
			v = s.loadRepoView(ctx, n)
		}
		rv := RepoView{Name: n, Stored: v.stats.StoredBytes, Logical: v.stats.LogicalBytes, Snapshots: len(v.snaps), Error: v.err}
		if rv.Stored > 0 {
			rv.Dedup = float64(rv.Logical) / float64(rv.Stored)
		}
		for i := len(v.snaps) - 1; i >= 0; i-- {
			sn := v.snaps[i]
			rv.snapshotsV = append(rv.snapshotsV, SnapshotView{Repository: n, ID: sn.ID, Time: sn.Time, Source: sn.Source,
				Engine: sn.Engine, Host: sn.Host, Tags: sn.Tags, Logical: sn.LogicalBytes, Added: sn.AddedBytes,
				Duration: sn.Duration, Tables: sn.Tables})
		}
		out = append(out, rv)
	}
	return out
}

func (s *Service) loadRepoView(ctx context.Context, name string) *repoView {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v := &repoView{at: time.Now()}
	g := s.current()
	repo, err := g.app.OpenRepository(ctx, name)
	if err == nil {
		defer repo.Close()
		v.stats, err = repo.Stats(ctx)
		if err == nil {
			s.metrics.repoStats(name, v.stats)
			v.snaps, err = repo.List(ctx)
		}
	}
	if err != nil {
		v.err = g.scrub.Scrub(err.Error())
		return v
	}
	s.mu.Lock()
	s.repos[name] = v
	s.mu.Unlock()
	return v
}

func (s *Service) snapshotViews(ctx context.Context) []SnapshotView {
	out := []SnapshotView{}
	for _, rv := range s.repoViews(ctx) {
		out = append(out, rv.snapshotsV...)
	}
	return out
}
