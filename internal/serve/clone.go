package serve

import (
	"context"
	"fmt"

	"github.com/snapdata/snapdata/internal/clone"
)

// runClone runs a clone job (jobs: - clone: NAME): the plan is logged,
// then the clone runs; the outcome carries the snapshot it used.
func (s *Service) runClone(ctx context.Context, g *generation, t task, o *Outcome) {
	spec, err := clone.FromConfig(g.cfg, t.Job.Clone)
	if err != nil {
		o.Status, o.Message = StatusFailure, err.Error()
		return
	}
	c := &clone.Cloner{App: g.app}
	plan, err := c.Plan(ctx, spec)
	if err != nil {
		o.Status, o.Message = StatusFailure, err.Error()
		return
	}
	s.log.Info("clone plan", "task", t.Name, "clone", spec.Name, "source", plan.Source, "snapshot", plan.Snapshot,
		"target", plan.Target, "allowed_by", plan.AllowedBy, "steps", plan.Steps)
	res, err := c.Execute(ctx, spec, plan)
	if err != nil {
		o.Status, o.Message = StatusFailure, err.Error()
		return
	}
	o.Status = StatusSuccess
	o.Snapshots = append(o.Snapshots, res.Snapshot)
	o.Message = fmt.Sprintf("cloned snapshot %.8s into %s", res.Snapshot, plan.Target)
	if t.Repo != "" {
		if repo, err := g.app.OpenRepository(ctx, t.Repo); err == nil {
			s.refreshRepo(ctx, t.Repo, repo)
			repo.Close()
		}
	}
}
