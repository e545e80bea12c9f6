package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapdata/snapdata/internal/clone"
	"github.com/snapdata/snapdata/internal/progress"
)

func (e *env) cloneCommand() *cobra.Command {
	var dryRun, asJSON, noSwap, keepPrevious, terminate bool
	var snapshot, from, to, repository, fromRepo string
	var allow []string
	cmd := &cobra.Command{
		Use:   "clone NAME | --from SOURCE --to TARGET --allow PATTERN",
		Short: "Make a safe copy of a database: allow-listed target, dev users, kept rows, hooks, swap",
		Long: `Copy a source into a target that only the clone's allow-list names: a database (PostgreSQL,
MySQL/MariaDB, SQLite), a plain SQL file (file:PATH.sql) or a portable export (file:PATH.tar.gz).

The copy comes from a fresh snapshot of the live source (taken first, through the normal backup:
read-only sessions, one consistent view) or from a stored snapshot (--snapshot, or from.snapshot in
the config). A database is built beside the target under a snapdata_clone_… name and replaces the
target only when everything succeeded (PostgreSQL: ALTER DATABASE … RENAME; MySQL/MariaDB: one
RENAME TABLE; SQLite and files: a rename): a clone that fails or is killed leaves the old target as
it was, and the next clone removes what it left. Production logins and grants never reach the copy.

A target is refused (exit 3) before anything is written when it matches no allow pattern, matches
the config's protect: list, or is the source itself (also under another host name).

  snapdata clone acceptance --dry-run          # the whole plan; nothing is changed
  snapdata clone acceptance                    # the clone named in snapdata.yaml (clones:)
  snapdata clone acceptance --snapshot latest  # from the latest stored snapshot instead
  snapdata clone status acceptance             # what the target holds now
  snapdata clone --from orders --to postgres://admin@dev-db/orders_dev \
      --allow 'postgres://*@dev-db/orders_*'   # ad hoc
  snapdata clone --from sqlite:./app.db --to file:./app-dev.sql --allow 'file:./*.sql'

See docs/clone.md for the config keys (credentials, keep_rows, hooks, swap).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if from != "" || to != "" {
				if len(args) != 0 {
					return usageErr{fmt.Errorf("clone takes either a NAME from the config or --from and --to, not both (got %q)", args)}
				}
				if from == "" || to == "" {
					return usageErr{errors.New("an ad hoc clone needs both --from SOURCE and --to TARGET (and --allow PATTERN)")}
				}
				return nil
			}
			if len(args) != 1 {
				return usageErr{errors.New("clone expects one clone NAME from the config, or --from SOURCE --to TARGET (see 'snapdata clone --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec *clone.Spec
			var err error
			if len(args) == 1 {
				spec, err = clone.FromConfig(e.app.Config, args[0])
				if err != nil {
					return err
				}
				if cmd.Flags().Changed("allow") || cmd.Flags().Changed("repository") {
					return usageErr{errors.New("--allow and --repository go with --from/--to; a named clone takes them from the config")}
				}
			} else {
				spec = &clone.Spec{Name: "ad-hoc", Source: from, To: to, Allow: allow, Protect: e.app.Config.Protect,
					Repository: repository, FromRepository: fromRepo, Swap: true}
				if allow == nil {
					spec.Allow = []string{}
				}
			}
			if snapshot != "" {
				spec.Snapshot = snapshot
				if spec.FromRepository == "" {
					spec.FromRepository = spec.Repository
				}
				if spec.FromRepository == "none" {
					spec.FromRepository = ""
				}
			}
			if spec.FromRepository == "" && spec.Snapshot != "" {
				spec.FromRepository = e.repo
			}
			if cmd.Flags().Changed("no-swap") {
				spec.Swap = !noSwap
			}
			if keepPrevious {
				spec.KeepPrevious = true
			}
			if terminate {
				spec.TerminateSessions = true
			}
			return e.runClone(spec, dryRun, asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "print the plan (source and snapshot, target and the allow rule, tables, users, passwords to reset, kept rows, hooks, swap steps) and change nothing")
	f.BoolVar(&asJSON, "json", false, "print the plan and the result as JSON")
	f.StringVar(&snapshot, "snapshot", "", "clone a stored snapshot (an id or latest) instead of taking a fresh one")
	f.StringVar(&from, "from", "", "ad hoc: the source (a config source name or a DSN)")
	f.StringVar(&to, "to", "", "ad hoc: the target: a DSN, file:PATH.sql or file:PATH.tar.gz")
	f.StringArrayVar(&allow, "allow", nil, "ad hoc: a pattern of targets this clone may write (repeatable), e.g. 'postgres://*@dev-db/*' or 'file:./*.sql'")
	f.StringVar(&repository, "repository", "", "ad hoc: the repository the fresh snapshot goes to (default: a temporary one, removed after)")
	f.StringVar(&fromRepo, "from-repository", "", "ad hoc, with --snapshot: the repository holding the snapshot (default --repo)")
	f.BoolVar(&noSwap, "no-swap", false, "load into the target in place instead of building beside it (a failure leaves it partly loaded)")
	f.BoolVar(&keepPrevious, "keep-previous", false, "keep the target's previous content after the swap (as snapdata_prev_… or FILE.previous)")
	f.BoolVar(&terminate, "terminate-sessions", false, "end the sessions connected to the target at the swap instead of waiting for them")
	cmd.AddCommand(e.cloneStatusCommand())
	return cmd
}

func (e *env) runClone(spec *clone.Spec, dryRun, asJSON bool) error {
	c := &clone.Cloner{App: e.app}
	plan, err := c.Plan(e.ctx, spec)
	if err != nil {
		return err
	}
	if dryRun {
		if asJSON {
			return printJSON(e, plan)
		}
		fmt.Fprintf(e.stdout, "clone %s: dry run, nothing is changed\n", spec.Name)
		return writePlan(e.stdout, plan)
	}
	e.app.Logger.Info("clone plan", "clone", spec.Name, "source", plan.Source, "snapshot", plan.Snapshot, "target", plan.Target,
		"allowed_by", plan.AllowedBy, "tables", len(plan.Tables), "steps", plan.Steps)
	if !e.quiet && !e.logJSON && !asJSON {
		fmt.Fprintf(e.stderr, "clone %s: plan\n", spec.Name)
		_ = writePlan(e.stderr, plan)
	}
	p := e.newProgress("clone " + spec.Name)
	c.Progress = p
	res, err := c.Execute(e.ctx, spec, plan)
	p.Done()
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e, res)
	}
	msg := fmt.Sprintf("cloned snapshot %s (%s) into %s in %s", shortID(res.Snapshot), plan.Source, plan.Target, res.Duration.Round(time.Millisecond))
	if res.Kept != nil {
		var n int64
		for _, t := range res.Kept.Tables {
			n += t.Inserted + t.Overwritten
		}
		msg += fmt.Sprintf("; kept %d rows", n)
	}
	if res.Previous != "" {
		msg += "; previous copy kept as " + res.Previous
	}
	e.printf("%s\n", msg)
	return nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func writePlan(w io.Writer, p *clone.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  source:\t%s\n", p.Source)
	switch {
	case p.Fresh:
		fmt.Fprintf(tw, "  snapshot:\ta fresh snapshot, taken first, into the %s repository\n", p.Repository)
	default:
		fmt.Fprintf(tw, "  snapshot:\t%s of %s (%s repository)\n", shortID(p.Snapshot), p.SnapshotTime.Format(time.RFC3339), p.Repository)
	}
	exists := "does not exist yet"
	if p.TargetExists {
		exists = "exists"
	}
	fmt.Fprintf(tw, "  target:\t%s (%s, %s)\n", p.Target, p.TargetKind, exists)
	fmt.Fprintf(tw, "  allowed by:\t%s\n", p.AllowedBy)
	if p.CrossEngine {
		fmt.Fprintf(tw, "  engines:\t%s to %s through the portable format\n", p.Engine, p.TargetEngine)
	}
	for _, u := range p.Users {
		fmt.Fprintf(tw, "  user:\t%s (%s access)\n", u.Name, u.Access)
	}
	if p.ResetOtherPasswords {
		fmt.Fprintf(tw, "  passwords reset:\t%s\n", orNone(p.ResetPasswords))
	}
	for _, k := range p.Keep {
		fmt.Fprintf(tw, "  keep rows:\t%s\n", k.Rule)
	}
	if p.KeptNow != nil {
		for _, t := range p.KeptNow.Tables {
			fmt.Fprintf(tw, "  kept now:\t%s: %d rows (%d matched, %d dependents)\n", t.Table, t.Matched+t.Dependents, t.Matched, t.Dependents)
		}
	}
	if p.KeyOffset > 0 {
		fmt.Fprintf(tw, "  key offset:\t%d\n", p.KeyOffset)
	}
	for _, h := range p.Hooks.PreData {
		fmt.Fprintf(tw, "  pre_data hook:\t%s\n", h)
	}
	for _, h := range p.Hooks.Post {
		fmt.Fprintf(tw, "  post hook:\t%s\n", h)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Tables) > 0 {
		fmt.Fprintf(w, "  tables (from %s):\n", p.TablesFrom)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    TABLE\tROWS\tBYTES\tDATA")
		for _, t := range p.Tables {
			data := "yes"
			if !t.Data {
				data = "no (exclude_data)"
			}
			fmt.Fprintf(tw, "    %s\t%d\t%s\t%s\n", t.Name, t.Rows, progress.Bytes(t.Bytes), data)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	} else if p.Fresh {
		fmt.Fprintln(w, "  tables: known after the snapshot (the repository holds no snapshot of the source yet)")
	}
	fmt.Fprintln(w, "  steps:")
	for i, s := range p.Steps {
		fmt.Fprintf(w, "    %d. %s\n", i+1, s)
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (e *env) cloneStatusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show what a clone's target holds now: the snapshot it came from, and when",
		Long: `Read the record snapdata keeps with a clone's target (the database's comment on PostgreSQL and
MariaDB 10.5+, a PATH.snapdata-clone.json file beside a file or SQLite target) and print the
snapshot the target was cloned from, its source and time, and when the clone ran.

  snapdata clone status acceptance
  snapdata clone status acceptance --json`,
		Args: exactArgs(1, "one clone NAME from the config"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := clone.FromConfig(e.app.Config, args[0])
			if err != nil {
				return err
			}
			st, err := (&clone.Cloner{App: e.app}).Status(e.ctx, spec)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e, st)
			}
			switch {
			case !st.Exists:
				e.printf("clone %s: target %s does not exist\n", st.Clone, st.Target)
			case !st.Known:
				e.printf("clone %s: target %s exists but holds no clone record (not made by snapdata clone, or by a release before it kept one)\n", st.Clone, st.Target)
			default:
				e.printf("clone %s: target %s holds snapshot %s of %s (taken %s), cloned %s on %s\n", st.Clone, st.Target,
					shortID(st.Snapshot), st.Source, st.SnapshotTime.Format(time.RFC3339), st.ClonedAt.Format(time.RFC3339), st.Host)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}
