package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// The restore runs its data loads and post-data entries (indexes, keys,
// foreign keys) as one dependency graph on Jobs sessions, like pg_restore:
// a table's indexes and keys start as soon as its rows are in, a foreign
// key as soon as both tables' rows and the referenced table's keys are.
// Every task names the tables it locks and how; a worker never starts a
// task whose locks conflict with a running task's (it would only wait on
// the server while holding a session), and picks the ready task with the
// longest estimated path to the end of the restore first.

// lockMode is a PostgreSQL table lock mode (the numbering of lock.h).
type lockMode uint8

const (
	lockAccessShare          lockMode = 1 // (used for the pseudo key lockEverything)
	lockRowShare             lockMode = 2 // referenced table of VALIDATE CONSTRAINT (foreign key)
	lockRowExclusive         lockMode = 3 // COPY
	lockShareUpdateExclusive lockMode = 4 // VALIDATE CONSTRAINT
	lockShare                lockMode = 5 // CREATE INDEX
	lockShareRowExclusive    lockMode = 6 // ADD FOREIGN KEY, both tables
	lockAccessExclusive      lockMode = 8 // TRUNCATE, ADD PRIMARY KEY/UNIQUE
)

// lockConflicts[m] is the set (bit i = mode i) of modes that conflict with m.
var lockConflicts = [9]uint16{
	1: 1 << 8,
	2: 1<<7 | 1<<8,
	3: 1<<5 | 1<<6 | 1<<7 | 1<<8,
	4: 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8,
	5: 1<<3 | 1<<4 | 1<<6 | 1<<7 | 1<<8,
	6: 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8,
	7: 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8,
	8: 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8,
}

// lockSet is a set of lock modes on one table (bit i = mode i).
type lockSet uint16

func (a lockSet) conflicts(b lockSet) bool {
	for m := 1; m < len(lockConflicts); m++ {
		if a&(1<<m) != 0 && uint16(b)&lockConflicts[m] != 0 {
			return true
		}
	}
	return false
}

// task is one unit of restore work run on one session.
type task struct {
	name string // for errors and logs: "table x", "schema entry …"
	// group: tasks of one group (the loads of one table's parts) do not
	// run at the same time while another task could run instead.
	group string
	cost  float64            // estimated work (bytes), for priorities
	locks map[string]lockSet // table key -> modes
	deps  []*task
	run   func(ctx context.Context, worker int) error

	succ    []*task
	waiting int     // unfinished dependencies
	prio    float64 // cost of the longest path from here to the end, plus serialized work (prepareTasks)
	order   int     // position in the task list, the tie-breaker
	// idle: how many other workers had nothing to run when this task
	// started (set by the scheduler before run; read by run).
	idle int
}

func (t *task) lock(key string, m lockMode) {
	if t.locks == nil {
		t.locks = map[string]lockSet{}
	}
	t.locks[key] |= 1 << m
}

// prepareTasks links successors and computes priorities (cost of the
// longest path to a sink). It fails on a dependency cycle.
func prepareTasks(tasks []*task) error {
	in := map[*task]bool{}
	for i, t := range tasks {
		t.order = i
		t.succ, t.waiting = nil, 0
		in[t] = true
	}
	for _, t := range tasks {
		seen := map[*task]bool{}
		for _, d := range t.deps {
			if d == nil || seen[d] {
				continue
			}
			if !in[d] {
				return fmt.Errorf("schedule: %s depends on %s, which is not scheduled", t.name, d.name)
			}
			seen[d] = true
			d.succ = append(d.succ, t)
			t.waiting++
		}
	}
	// Kahn's order, then priorities in reverse.
	left := make(map[*task]int, len(tasks))
	var order, queue []*task
	for _, t := range tasks {
		left[t] = t.waiting
		if t.waiting == 0 {
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		order = append(order, t)
		for _, s := range t.succ {
			left[s]--
			if left[s] == 0 {
				queue = append(queue, s)
			}
		}
	}
	if len(order) != len(tasks) {
		return errors.New("schedule: dependency cycle between restore tasks")
	}
	// Tasks that take a self-conflicting lock on the same table run one
	// after another whatever the dependencies say (two VALIDATE CONSTRAINT
	// on one table, say): once one of them can start, the others that are
	// neither before nor after it in the graph still have to run too. Add
	// their cost to its priority, so a table whose serialized work is long
	// is not left for the end of the restore while the other session idles.
	longestPaths(order, serializedWork(tasks))
	return nil
}

// longestPaths sets each task's priority to the cost of the longest path
// from it to the end of the graph (order is topological), where a task
// counts extra[t] more than its own cost.
func longestPaths(order []*task, extra map[*task]float64) {
	for i := len(order) - 1; i >= 0; i-- {
		t := order[i]
		var best float64
		for _, s := range t.succ {
			best = max(best, s.prio)
		}
		t.prio = t.cost + extra[t] + best
	}
}

// maxSerialGroup bounds the tasks of one table whose mutual order is
// checked (pairwise reachability): beyond it the table gets no extra
// priority.
const maxSerialGroup = 64

// serializedWork returns, for each task that holds a self-conflicting lock
// mode on a table, the summed cost of the other tasks that hold one on the
// same table and are neither its ancestors nor its descendants (each such
// task counted once, however many tables the two share). Needs t.succ.
func serializedWork(tasks []*task) map[*task]float64 {
	groups := map[string][]*task{}
	for _, t := range tasks {
		for k, set := range t.locks {
			if k == lockEverything || k == lockAttach {
				continue
			}
			if set.conflicts(set) {
				groups[k] = append(groups[k], t)
			}
		}
	}
	type pair struct{ a, b *task }
	checked := map[pair]bool{}
	extra := map[*task]float64{}
	for _, g := range groups {
		if len(g) < 2 || len(g) > maxSerialGroup {
			continue
		}
		for i, a := range g {
			for _, b := range g[i+1:] {
				if (a.cost == 0 && b.cost == 0) || checked[pair{a, b}] || checked[pair{b, a}] {
					continue
				}
				checked[pair{a, b}] = true
				if reaches(a, b) || reaches(b, a) {
					continue
				}
				extra[a] += b.cost
				extra[b] += a.cost
			}
		}
	}
	return extra
}

// reaches reports whether to depends, directly or not, on from.
func reaches(from, to *task) bool {
	seen := map[*task]bool{}
	stack := []*task{from}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, s := range t.succ {
			if s == to {
				return true
			}
			if !seen[s] {
				seen[s] = true
				stack = append(stack, s)
			}
		}
	}
	return false
}

// scheduler hands out tasks to workers.
type scheduler struct {
	mu      sync.Mutex
	cond    *sync.Cond
	ready   []*task // pending, no unfinished dependencies
	left    int     // tasks not done
	running int
	idle    int                // workers blocked in next with nothing to run
	held    map[string]*[9]int // table key -> running holders per mode
	groups  map[string]int     // group -> running tasks
	err     error
}

// runTasks runs tasks on workers goroutines (worker ids 0..workers-1),
// logging the tasks and their priorities at debug level when log is set.
// setup, when not nil, runs first on each worker (to open its session);
// teardown runs when the worker ends. The first error cancels every
// running task and is returned.
func runTasks(ctx context.Context, workers int, tasks []*task, setup func(ctx context.Context, worker int) error, teardown func(worker int), log *slog.Logger) error {
	if len(tasks) == 0 {
		return nil
	}
	if err := prepareTasks(tasks); err != nil {
		return err
	}
	if log != nil {
		for _, t := range tasks {
			log.Debug("restore task", "task", t.name, "priority", int64(t.prio), "cost", int64(t.cost), "deps", len(t.deps))
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := newScheduler(tasks)
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.fail(context.Cause(ctx))
		s.mu.Unlock()
	})
	defer stop()

	var wg sync.WaitGroup
	for w := 0; w < max(1, min(workers, len(tasks))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if teardown != nil {
				defer teardown(w)
			}
			if setup != nil {
				if err := setup(ctx, w); err != nil {
					s.mu.Lock()
					s.fail(err)
					s.mu.Unlock()
					cancel(err)
					return
				}
			}
			for {
				t := s.next()
				if t == nil {
					return
				}
				err := t.run(ctx, w)
				if err == nil && ctx.Err() != nil {
					err = context.Cause(ctx)
				}
				s.finish(t, err)
				if err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.left > 0 {
		return fmt.Errorf("schedule: %d restore tasks were not run", s.left)
	}
	return nil
}

// newScheduler holds prepared tasks, the ones without dependencies ready.
func newScheduler(tasks []*task) *scheduler {
	s := &scheduler{left: len(tasks), held: map[string]*[9]int{}, groups: map[string]int{}}
	s.cond = sync.NewCond(&s.mu)
	for _, t := range tasks {
		if t.waiting == 0 {
			s.ready = append(s.ready, t)
		}
	}
	s.sortReady()
	return s
}

// fail records the first error and wakes every worker. Callers hold mu.
func (s *scheduler) fail(err error) {
	if err == nil {
		err = context.Canceled
	}
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
}

func (s *scheduler) sortReady() {
	sort.SliceStable(s.ready, func(i, j int) bool {
		a, b := s.ready[i], s.ready[j]
		if a.prio != b.prio {
			return a.prio > b.prio
		}
		return a.order < b.order
	})
}

func (s *scheduler) conflicts(t *task) bool {
	for k, want := range t.locks {
		h := s.held[k]
		if h == nil {
			continue
		}
		var have lockSet
		for m, n := range h {
			if n > 0 {
				have |= 1 << m
			}
		}
		if want.conflicts(have) {
			return true
		}
	}
	return false
}

func (s *scheduler) hold(t *task, d int) {
	for k, set := range t.locks {
		h := s.held[k]
		if h == nil {
			h = new([9]int)
			s.held[k] = h
		}
		for m := range h {
			if set&(1<<m) != 0 {
				h[m] += d
			}
		}
	}
}

// next blocks until a task can start, and returns nil when there is
// nothing left to do or the schedule failed.
func (s *scheduler) next() *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.err != nil || s.left == 0 {
			return nil
		}
		pick := -1
		for i, t := range s.ready {
			if s.conflicts(t) {
				continue
			}
			if t.group == "" || s.groups[t.group] == 0 {
				pick = i
				break
			}
			if pick < 0 {
				pick = i // same group as a running task: only if nothing else
			}
		}
		if pick >= 0 {
			t := s.ready[pick]
			s.ready = append(s.ready[:pick], s.ready[pick+1:]...)
			s.running++
			s.hold(t, 1)
			if t.group != "" {
				s.groups[t.group]++
			}
			// Idle workers that a task already ready will wake are
			// not idle for long.
			t.idle = s.idle
			for _, r := range s.ready {
				if t.idle == 0 {
					break
				}
				if !s.conflicts(r) {
					t.idle--
				}
			}
			return t
		}
		if s.running == 0 {
			// Nothing runs and nothing can start: only a bug gets here
			// (prepareTasks rejects cycles).
			s.fail(fmt.Errorf("schedule: %d restore tasks left but none can start", s.left))
			return nil
		}
		s.idle++
		s.cond.Wait()
		s.idle--
	}
}

func (s *scheduler) finish(t *task, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.hold(t, -1)
	if t.group != "" {
		s.groups[t.group]--
	}
	if err != nil {
		s.fail(err)
		return
	}
	s.left--
	added := false
	for _, n := range t.succ {
		n.waiting--
		if n.waiting == 0 {
			s.ready = append(s.ready, n)
			added = true
		}
	}
	if added {
		s.sortReady()
	}
	s.cond.Broadcast()
}
