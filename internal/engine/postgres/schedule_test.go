package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseEntryTables(t *testing.T) {
	cases := []struct {
		fn   func(string) (string, bool)
		sql  string
		want string
	}{
		{parseIndexTable, "CREATE INDEX events_at_idx ON public.events USING btree (at);", "public.events"},
		{parseIndexTable, "CREATE UNIQUE INDEX \"Odd ON idx\" ON ONLY \"Mixed Schema\".\"Order\"\"Items\" USING btree (x);", `"Mixed Schema"."Order""Items"`},
		{parseIndexTable, "CREATE INDEX i ON app.\"weird name.with dot\" USING gin (payload);", `app."weird name.with dot"`},
		{parseAlterTable, "ALTER TABLE ONLY public.album\n    ADD CONSTRAINT album_pkey PRIMARY KEY (album_id);", "public.album"},
		{parseAlterTable, "ALTER TABLE app.events\n    ADD CONSTRAINT x FOREIGN KEY (a) REFERENCES app.users(id);", "app.events"},
		{fkRef, "ALTER TABLE ONLY \"Mixed Schema\".\"OrderItems\"\n    ADD CONSTRAINT \"OrderItems_user_id_fkey\" FOREIGN KEY (user_id, \"a)\"\"b\") REFERENCES app.users(id) DEFERRABLE INITIALLY DEFERRED;", "app.users"},
		{fkRef, "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES \"Sch\".\"Ref\"(id) NOT VALID;", `"Sch"."Ref"`},
	}
	for _, c := range cases {
		got, ok := c.fn(entrySQL("--\n-- Name: x; Type: X; Schema: public; Owner: -\n--\n\n" + c.sql + "\n\n"))
		if !ok || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.sql, got, ok, c.want)
		}
	}
	for _, bad := range []string{"CREATE TRIGGER x", "ALTER TABLE public", "ALTER TABLE ONLY public.t ADD CONSTRAINT c CHECK (a > 0)", ""} {
		if _, ok := fkRef(bad); ok {
			t.Errorf("parseFK(%q) succeeded", bad)
		}
	}
}

func TestIndexColumnsForForeignKeys(t *testing.T) {
	for _, c := range []struct {
		index string
		cols  string // "" when refused
	}{
		{"CREATE INDEX i ON public.t USING btree (a);", "(a)"},
		{"CREATE UNIQUE INDEX i ON ONLY public.t USING btree (a, \"B c\");", "(a, \"B c\")"},
		{"CREATE INDEX i ON public.t USING btree (a) INCLUDE (b);", "(a)"},
		{"CREATE INDEX i ON public.t USING btree (a) WHERE (a > 0);", ""},
		{"CREATE INDEX i ON public.t USING hash (a);", ""},
		{"CREATE INDEX i ON public.t USING btree (lower(a));", "(lower(a))"},
	} {
		got, ok := parseIndexCols(c.index)
		if (c.cols == "") == ok || got != c.cols {
			t.Errorf("parseIndexCols(%q) = %q, %v; want %q", c.index, got, ok, c.cols)
		}
	}
	from, name, cols, to, refCols, ok := parseFKCols("ALTER TABLE ONLY public.items\n    ADD CONSTRAINT f FOREIGN KEY (order_id, \"Line\") REFERENCES public.orders(id, line) DEFERRABLE;")
	if !ok || from != "public.items" || name != "f" || cols != `(order_id, "Line")` || to != "public.orders" || refCols != "(id, line)" {
		t.Errorf("parseFKCols = %q %q %q %q %q %v", from, name, cols, to, refCols, ok)
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"(a, b)", "(b, a)", true},
		{"(a,b)", "(b, a)", true},
		{"(a)", "(a, b)", false},
		{`("A", b)`, `("A", b)`, true},
		{`("A", b)`, `(b, "A")`, false}, // quoted names: only as written
		{"(lower(a))", "(a)", false},
	} {
		if got := sameCols(c.a) == sameCols(c.b); got != c.same {
			t.Errorf("sameCols(%s) == sameCols(%s): %v, want %v", c.a, c.b, got, c.same)
		}
	}
	for _, c := range []struct {
		idx, fk string
		want    bool
	}{
		{"(a)", "(a)", true},
		{"(a, b)", "(a)", true},
		{"(a, b)", "(a, b)", true},
		{"(b, a)", "(a, b)", false},
		{"(a)", "(a, b)", false},
		{"(lower(a))", "(a)", false},
		{"(ab)", "(a)", false},
	} {
		if got := leadingCols(c.idx, c.fk); got != c.want {
			t.Errorf("leadingCols(%s, %s) = %v, want %v", c.idx, c.fk, got, c.want)
		}
	}
}

func fkRef(s string) (string, bool) {
	_, _, to, ok := parseFK(s)
	return to, ok
}

func entry(typ, sql string) dumpEntry {
	return dumpEntry{Type: typ, Title: "Name: " + sql, Body: "--\n-- Name: x\n--\n\n" + sql + "\n"}
}

// recorder runs a plan with fake work and records start and end order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(ev string) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) index(ev string) int { return slices.Index(r.events, ev) }

func runPlan(t *testing.T, p *planned, workers int, fail string) (*recorder, error) {
	t.Helper()
	r := &recorder{}
	for _, tk := range p.tasks {
		tk.run = func(ctx context.Context, w int) error {
			r.add("start " + tk.name)
			select {
			case <-time.After(time.Duration(1+int(tk.cost)%3) * time.Millisecond):
			case <-ctx.Done():
				r.add("cancelled " + tk.name)
				return ctx.Err()
			}
			if tk.name == fail {
				return fmt.Errorf("boom in %s", tk.name)
			}
			r.add("end " + tk.name)
			return nil
		}
	}
	err := runTasks(context.Background(), workers, p.tasks, nil, nil, nil)
	return r, err
}

func shopPlan() (planInput, *planned) {
	in := planInput{
		data: []dataLoad{
			{table: "public.customers", bytes: 100},
			{table: "public.events", bytes: 500},
			{table: "public.orders", bytes: 200},
		},
		post: []dumpEntry{
			entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"),
			entry(entryConstraint, "ALTER TABLE ONLY public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);"),
			entry(entryIndex, "CREATE INDEX events_at ON public.events USING btree (at);"),
			entry(entryConstraint, "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);"),
			entry(entryFK, "ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);"),
			entry(entryFK, "ALTER TABLE ONLY public.orders ADD CONSTRAINT ord_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);"),
		},
	}
	return in, planRestore(in)
}

func TestScheduleOrder(t *testing.T) {
	for round := 0; round < 20; round++ {
		in, p := shopPlan()
		r, err := runPlan(t, p, 2, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.events) != 2*len(p.tasks) {
			t.Fatalf("ran %d events for %d tasks: %v", len(r.events), len(p.tasks), r.events)
		}
		// The biggest table is loaded first.
		if i := r.index("start table public.events"); i > 1 {
			t.Errorf("the biggest table started as event %d: %v", i, r.events)
		}
		for i, en := range in.post {
			name := p.post[i].name
			start := r.index("start " + name)
			table, _ := parseAlterTable(entrySQL(en.Body))
			if en.Type == entryIndex {
				table, _ = parseIndexTable(entrySQL(en.Body))
			}
			if end := r.index("end table " + table); end < 0 || start < end {
				t.Errorf("%s started (%d) before its table's rows were in (%d): %v", name, start, end, r.events)
			}
			if en.Type == entryFK {
				if end := r.index("end " + p.post[0].name); start < end {
					t.Errorf("%s started before the referenced key: %v", name, r.events)
				}
			}
		}
		// Tasks with conflicting locks never overlap.
		running := map[string]bool{}
		byName := map[string]*task{}
		for _, tk := range p.tasks {
			byName[tk.name] = tk
		}
		for _, ev := range r.events {
			what, name, _ := cutSpace(ev)
			if what == "start" {
				for other := range running {
					for k, set := range byName[name].locks {
						if set.conflicts(byName[other].locks[k]) {
							t.Fatalf("%s started while %s held %s: %v", name, other, k, r.events)
						}
					}
				}
				running[name] = true
			} else {
				delete(running, name)
			}
		}
	}
}

func cutSpace(s string) (string, string, bool) {
	for i := range s {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestScheduleErrorCancels(t *testing.T) {
	_, p := shopPlan()
	failing := p.data["public.customers"].name
	r, err := runPlan(t, p, 2, failing)
	if err == nil || err.Error() != "boom in "+failing {
		t.Fatalf("err = %v, want the failing task's error", err)
	}
	// Nothing that depends on the failed load ran.
	for i := range p.post {
		if r.index("start "+p.post[i].name) >= 0 && slices.Contains(p.post[i].deps, p.data["public.customers"]) {
			t.Errorf("%s ran after its dependency failed: %v", p.post[i].name, r.events)
		}
	}
}

func TestScheduleErrorStopsRunningTasks(t *testing.T) {
	started := make(chan struct{})
	long := &task{name: "long", cost: 10, run: func(ctx context.Context, _ int) error {
		close(started)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("not cancelled")
		}
	}}
	bad := &task{name: "bad", cost: 1, run: func(ctx context.Context, _ int) error {
		<-started
		return errors.New("bad failed")
	}}
	never := &task{name: "never", deps: []*task{bad}, run: func(ctx context.Context, _ int) error {
		return errors.New("ran after its dependency failed")
	}}
	t0 := time.Now()
	err := runTasks(context.Background(), 2, []*task{long, bad, never}, nil, nil, nil)
	if err == nil || err.Error() != "bad failed" {
		t.Fatalf("err = %v", err)
	}
	if time.Since(t0) > 5*time.Second {
		t.Fatal("the running task was not cancelled")
	}
}

func TestSchedulePartitions(t *testing.T) {
	in := planInput{
		data: []dataLoad{
			{table: "app.events_2023", bytes: 10},
			{table: "app.events_2024", bytes: 10},
			{table: "app.users", bytes: 5},
		},
		partitions: map[string][]string{"app.events": {"app.events_2023", "app.events_2024"}},
		post: []dumpEntry{
			entry(entryConstraint, "ALTER TABLE ONLY app.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, at);"),
			entry(entryConstraint, "ALTER TABLE ONLY app.events_2023 ADD CONSTRAINT events_2023_pkey PRIMARY KEY (id, at);"),
			entry(entryIndexAttach, "ALTER INDEX app.events_pkey ATTACH PARTITION app.events_2023_pkey;"),
			entry(entryFK, "ALTER TABLE app.users ADD CONSTRAINT u_ev FOREIGN KEY (a, b) REFERENCES app.events(id, at);"),
			entry(entryIndex, "CREATE INDEX something odd;"),
		},
	}
	p := planRestore(in)
	if err := prepareTasks(p.tasks); err != nil {
		t.Fatal(err)
	}
	parentPK, attach, fk, odd := p.post[0], p.post[2], p.post[3], p.post[4]
	for _, d := range []string{"app.events_2023", "app.events_2024"} {
		if !slices.Contains(parentPK.deps, p.data[d]) {
			t.Errorf("parent key does not wait for %s", d)
		}
	}
	if !slices.Contains(attach.deps, parentPK) || !slices.Contains(attach.deps, p.post[1]) || !slices.Contains(attach.deps, odd) {
		t.Errorf("attach deps: %v", attach.deps)
	}
	if !slices.Contains(fk.deps, attach) || !slices.Contains(fk.deps, odd) {
		t.Errorf("foreign key on a partitioned table does not wait for attachments")
	}
	if len(odd.deps) != 3 || odd.locks[lockEverything] != 1<<lockAccessExclusive {
		t.Errorf("unparsed entry: deps %d, locks %v", len(odd.deps), odd.locks)
	}
	if _, err := runPlan(t, p, 3, ""); err != nil {
		t.Fatal(err)
	}
}

func TestPlanSplitsKeysAndForeignKeys(t *testing.T) {
	in, _ := shopPlan()
	in.validateFKs = true
	in.kinds = map[string]byte{"public.customers": 'r', "public.events": 'r', "public.orders": 'r'}
	in.post = append(in.post,
		entry(entryConstraint, "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_x UNIQUE (a) INCLUDE (b);"),
		entry(entryFK, "ALTER TABLE ONLY public.orders ADD CONSTRAINT nv FOREIGN KEY (c) REFERENCES public.customers(id) NOT VALID;"),
		entry(entryIndex, "CREATE INDEX orders_cust_at ON public.orders USING btree (customer_id, created_at);"))
	p := planRestore(in)
	if err := prepareTasks(p.tasks); err != nil {
		t.Fatal(err)
	}
	sqls := map[string]string{}
	for tk, ts := range p.sql {
		sqls[tk.name] = entrySQL(ts.sql)
	}
	want := map[string]string{
		`schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);" (index)`: "CREATE UNIQUE INDEX customers_pkey ON public.customers USING btree (id);\n",
		`schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"`:         "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_pkey;\n",
		// Options: left as it is.
		`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_x UNIQUE (a) INCLUDE (b);"`:                                              "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_x UNIQUE (a) INCLUDE (b);\n",
		`schema entry "Name: ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);"`:            "ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id) NOT VALID;\n",
		`schema entry "Name: ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`: "ALTER TABLE ONLY public.events VALIDATE CONSTRAINT \"ev_cust\";\n",
		// An index leads with the referencing column: validated by a merge
		// join of index scans, hash joins off for that statement.
		`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT ord_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`: "BEGIN;\nSET LOCAL enable_hashjoin = off;\nALTER TABLE ONLY public.orders VALIDATE CONSTRAINT \"ord_cust\";\nCOMMIT;\n",
		// Already NOT VALID: one task, unchanged.
		`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT nv FOREIGN KEY (c) REFERENCES public.customers(id) NOT VALID;"`: "ALTER TABLE ONLY public.orders ADD CONSTRAINT nv FOREIGN KEY (c) REFERENCES public.customers(id) NOT VALID;\n",
	}
	for name, sql := range want {
		if got, ok := sqls[name]; !ok || got != sql {
			t.Errorf("%s:\n got %q\nwant %q", name, got, sql)
		}
	}
	if _, ok := sqls[`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT nv FOREIGN KEY (c) REFERENCES public.customers(id) NOT VALID;" (validate)`]; ok {
		t.Error("a NOT VALID foreign key got validated")
	}
	// The key's index and a secondary index of one table may run
	// together; the constraint and the validation wait for what they need.
	byName := map[string]*task{}
	for _, tk := range p.tasks {
		byName[tk.name] = tk
	}
	evIdx := byName[`schema entry "Name: ALTER TABLE ONLY public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);" (index)`]
	evAt := byName[`schema entry "Name: CREATE INDEX events_at ON public.events USING btree (at);"`]
	if evIdx == nil || evAt == nil || evIdx.locks["public.events"].conflicts(evAt.locks["public.events"]) {
		t.Errorf("the key's index build conflicts with another index build of the same table")
	}
	// The merge-join validation waits for the index it scans.
	ordVal := byName[`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT ord_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`]
	ordIdx := byName[`schema entry "Name: CREATE INDEX orders_cust_at ON public.orders USING btree (customer_id, created_at);"`]
	if ordVal == nil || ordIdx == nil || !slices.Contains(ordVal.deps, ordIdx) {
		t.Errorf("validation of ord_cust does not wait for index orders_cust_at")
	}
	val := byName[`schema entry "Name: ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`]
	if val.locks["public.customers"].conflicts(lockSet(1 << lockShare)) {
		t.Error("validation blocks index builds on the referenced table")
	}
	if !val.locks["public.events"].conflicts(evAt.locks["public.events"]) {
		t.Error("validation does not conflict with index builds on its own table")
	}
	if _, err := runPlan(t, p, 2, ""); err != nil {
		t.Fatal(err)
	}
}

func TestScheduleSplitsADominatingTable(t *testing.T) {
	in := planInput{
		jobs: 2,
		data: []dataLoad{
			{table: "public.big", bytes: 900, parts: []int64{300, 300, 300}},
			{table: "public.a", bytes: 50, parts: []int64{50}},
			{table: "public.b", bytes: 40, parts: []int64{20, 20}},
		},
		post: []dumpEntry{
			entry(entryIndex, "CREATE INDEX big_x ON public.big USING btree (x);"),
			entry(entryConstraint, "ALTER TABLE ONLY public.b ADD CONSTRAINT b_pkey PRIMARY KEY (id);"),
		},
	}
	p := planRestore(in)
	if len(p.parts["public.big"]) != 3 || p.data["public.big"] != nil {
		t.Fatalf("the dominating table is not loaded by parts: %d part tasks", len(p.parts["public.big"]))
	}
	if len(p.parts["public.b"]) != 0 || p.data["public.b"] == nil {
		t.Fatal("a small split table is loaded by parts")
	}
	for round := 0; round < 20; round++ {
		r, err := runPlan(t, p, 2, "")
		if err != nil {
			t.Fatal(err)
		}
		idx := r.index("start " + p.post[0].name)
		for _, pt := range p.parts["public.big"] {
			if end := r.index("end " + pt.name); end < 0 || idx < end {
				t.Fatalf("index of big started before %s ended: %v", pt.name, r.events)
			}
		}
		// Two parts of big run together only once the small tables
		// have started.
		running := 0
		for _, ev := range r.events {
			what, name, _ := cutSpace(ev)
			if !strings.HasPrefix(name, "table public.big part") {
				continue
			}
			if what == "start" {
				running++
			} else {
				running--
			}
			if running > 1 && (r.index("start table public.a") > r.index(ev) || r.index("start table public.b") > r.index(ev)) {
				t.Fatalf("two parts of big ran together while another table waited: %v", r.events)
			}
		}
	}
}

// Tasks that serialize on a table lock (two validations of one table's
// foreign keys) count each other's cost in their priority, so the table's
// chain starts before shorter independent work; tasks before them in the
// graph (the table's load) do not count.
func TestSerializedWorkRaisesPriority(t *testing.T) {
	newTask := func(name string, cost float64, deps ...*task) *task {
		return &task{name: name, cost: cost, deps: deps}
	}
	load := newTask("load t", 10)
	load.lock("t", lockAccessExclusive)
	a := newTask("validate a", 4, load)
	a.lock("t", lockShareUpdateExclusive)
	b := newTask("validate b", 4, load)
	b.lock("t", lockShareUpdateExclusive)
	after := newTask("after b", 1, b) // b's successor, on another table
	c := newTask("index c", 6)
	c.lock("u", lockShare)
	d := newTask("index d", 5)
	d.lock("u", lockShare) // SHARE does not conflict with itself: no extra
	// Two foreign keys between the same two tables share both locks: each
	// counts the other once.
	e := newTask("add fk e", 2)
	f := newTask("add fk f", 3)
	for _, k := range []string{"x", "y"} {
		e.lock(k, lockShareRowExclusive)
		f.lock(k, lockShareRowExclusive)
	}
	tasks := []*task{load, a, b, after, c, d, e, f}
	if err := prepareTasks(tasks); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		t    *task
		want float64
	}{
		{a, 4 + 4},     // its own cost + b's
		{b, 4 + 4 + 1}, // + a's, + its successor's path
		{after, 1},     // holds no lock on t
		{load, 10 + 9}, // the load's own cost + b's priority; a and b are after it, not beside it
		{c, 6}, {d, 5}, // independent, non-conflicting
		{e, 2 + 3}, {f, 3 + 2}, // not 2 + 3 + 3: one other task, two shared tables
	} {
		if tc.t.prio != tc.want {
			t.Errorf("priority of %s = %v, want %v", tc.t.name, tc.t.prio, tc.want)
		}
	}

	// Without the load in front, on two workers: the serialized pair
	// starts before the independent index builds that are longer than
	// either of its tasks alone.
	a2 := newTask("validate a", 4)
	a2.lock("t", lockShareUpdateExclusive)
	b2 := newTask("validate b", 4)
	b2.lock("t", lockShareUpdateExclusive)
	c2 := newTask("index c", 6)
	d2 := newTask("index d", 5)
	p := &planned{tasks: []*task{c2, d2, a2, b2}}
	r, err := runPlan(t, p, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]bool{}
	for _, ev := range r.events {
		if what, name, _ := cutSpace(ev); what == "start" && len(first) < 2 {
			first[name] = true
		}
	}
	if !first["validate a"] && !first["validate b"] {
		t.Errorf("first two tasks %v, want one of the serialized validations among them: %v", first, r.events)
	}
}

// A task learns how many workers sat idle when it started, not counting
// those that a task already startable will wake (the restore gives the
// idle ones to an index build as parallel workers).
func TestScheduleCountsIdleWorkers(t *testing.T) {
	noop := func(context.Context, int) error { return nil }
	t.Run("dispatch", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			conflict  bool // b and c lock the same table exclusively
			idle      int  // workers blocked in next
			wantB     int
			wantC     int
			runsAfter bool // c starts only after b ends
		}{
			{name: "another task ready", idle: 1, wantB: 0, wantC: 1},
			{name: "the other task conflicts", conflict: true, idle: 1, wantB: 1, wantC: 1, runsAfter: true},
			{name: "nobody idle", idle: 0, wantB: 0, wantC: 0},
			{name: "two idle, one ready", idle: 2, wantB: 1, wantC: 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := &task{name: "b", cost: 2, run: noop}
				c := &task{name: "c", cost: 1, run: noop}
				if tc.conflict {
					b.lock("t", lockAccessExclusive)
					c.lock("t", lockAccessExclusive)
				}
				tasks := []*task{b, c}
				if err := prepareTasks(tasks); err != nil {
					t.Fatal(err)
				}
				s := newScheduler(tasks)
				s.idle = tc.idle
				if got := s.next(); got != b || got.idle != tc.wantB {
					t.Fatalf("first: got %s idle %d, want b idle %d", got.name, got.idle, tc.wantB)
				}
				if tc.runsAfter {
					s.finish(b, nil)
				}
				if got := s.next(); got != c || got.idle != tc.wantC {
					t.Fatalf("second: got %s idle %d, want c idle %d", got.name, got.idle, tc.wantC)
				}
			})
		}
	})
	t.Run("workers", func(t *testing.T) {
		// Two workers: one loads, the other finds nothing to do and
		// waits; the index build after the load starts with that one idle.
		load := &task{name: "load", cost: 10, run: func(context.Context, int) error {
			time.Sleep(200 * time.Millisecond) // the other worker blocks meanwhile
			return nil
		}}
		build := &task{name: "index", cost: 1, deps: []*task{load}, run: noop}
		first := &task{name: "first", cost: 20, run: noop}
		if err := runTasks(context.Background(), 2, []*task{first, load, build}, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if build.idle != 1 {
			t.Errorf("index build started with %d idle workers, want 1", build.idle)
		}
	})
}

// A foreign key without an index on its referencing columns is validated
// with hash joins off (sort and merge) only when the sort of integer keys
// fits in maintenance_work_mem.
func TestPlanValidatesBySortingWhenItFits(t *testing.T) {
	const mib = 1 << 20
	big := map[string]string{"a": "bigint", "b": "integer", "Cust Id": "smallint", "code": "text", "at": "timestamp with time zone"}
	for _, c := range []struct {
		rows int64
		cols string
		mem  int64
		want bool
	}{
		{5862068, "(a)", 256 * mib, true},  // measured: 196,609 kB
		{5862068, "(a)", 128 * mib, false}, // spills
		{8388608, "(a)", 192 * mib, true},  // exactly 2^23 slots of 24 bytes
		{8388609, "(a)", 256 * mib, false}, // one more row doubles the slots
		{1000000, "(a, b)", 256 * mib, true},
		{3000000, "(a, b)", 256 * mib, true},  // 96 MiB of slots + 137 MiB of tuples
		{3500000, "(a, b)", 256 * mib, false}, // 96 + 160 MiB and the rest
		{1000, `("Cust Id")`, 256 * mib, true},
		{1000, "(code)", 256 * mib, false}, // width unknown
		{1000, "(at)", 256 * mib, false},
		{1000, "(missing)", 256 * mib, false},
		{1000, "(a", 256 * mib, false},
		{1000, "a", 256 * mib, false},
		{1000, "(a b)", 256 * mib, false},
		{0, "(a)", 256 * mib, false},
		{1000, "(a)", 0, false},
	} {
		if got := sortsInMemory(c.rows, big, c.cols, c.mem); got != c.want {
			t.Errorf("sortsInMemory(%d, %s, %d MiB) = %v, want %v", c.rows, c.cols, c.mem/mib, got, c.want)
		}
	}

	in, _ := shopPlan()
	in.validateFKs = true
	in.kinds = map[string]byte{"public.customers": 'r', "public.events": 'r', "public.orders": 'r'}
	in.data[1].rows = 5862068 // events
	in.data[2].rows = 9000000 // orders: too many to sort in memory
	in.colTypes = map[string]map[string]string{
		"public.events": {"customer_id": "bigint"},
		"public.orders": {"customer_id": "bigint"},
	}
	in.sortMem = 256 * mib
	p := planRestore(in)
	sqls := map[string]string{}
	for tk, ts := range p.sql {
		sqls[tk.name] = entrySQL(ts.sql)
	}
	for name, want := range map[string]string{
		`schema entry "Name: ALTER TABLE ONLY public.events ADD CONSTRAINT ev_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`:  "BEGIN;\nSET LOCAL enable_hashjoin = off;\nALTER TABLE ONLY public.events VALIDATE CONSTRAINT \"ev_cust\";\nCOMMIT;\n",
		`schema entry "Name: ALTER TABLE ONLY public.orders ADD CONSTRAINT ord_cust FOREIGN KEY (customer_id) REFERENCES public.customers(id);" (validate)`: "ALTER TABLE ONLY public.orders VALIDATE CONSTRAINT \"ord_cust\";\n",
	} {
		if got := sqls[name]; got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	in.sortMem = 128 * mib
	p = planRestore(in)
	for tk, ts := range p.sql {
		if strings.Contains(ts.sql, "enable_hashjoin") {
			t.Errorf("%s turns hash joins off although its sort would spill", tk.name)
		}
	}
}

// A foreign key waits for the one unique key or index it references, not
// for the referenced table's other index builds; when that key cannot be
// told for certain, for all of them.
func TestForeignKeyWaitsForItsKeyOnly(t *testing.T) {
	const (
		pkey   = `schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"`
		email  = `schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_email_key UNIQUE (email);"`
		byName = `schema entry "Name: CREATE INDEX customers_name ON public.customers USING btree (name);"`
		pair   = `schema entry "Name: CREATE UNIQUE INDEX customers_pair ON public.customers USING btree (region, code);"`
	)
	base := []dumpEntry{
		entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"),
		entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_email_key UNIQUE (email);"),
		entry(entryIndex, "CREATE INDEX customers_name ON public.customers USING btree (name);"),
		entry(entryIndex, "CREATE UNIQUE INDEX customers_pair ON public.customers USING btree (region, code);"),
	}
	all := []string{pkey + " (index)", pkey, email + " (index)", email, byName, pair}
	for _, c := range []struct {
		name  string
		fk    string
		extra []dumpEntry
		kind  byte
		want  []string // the key tasks it waits for
	}{
		{"primary key", "FOREIGN KEY (customer_id) REFERENCES public.customers(id)", nil, 'r', []string{pkey + " (index)", pkey}},
		{"unique constraint", "FOREIGN KEY (customer_email) REFERENCES public.customers(email)", nil, 'r', []string{email + " (index)", email}},
		{"unique index, columns in another order", "FOREIGN KEY (c, r) REFERENCES public.customers(code, region)", nil, 'r', []string{pair}},
		{"no matching key: all", "FOREIGN KEY (x) REFERENCES public.customers(x)", nil, 'r', all},
		{"two keys on the same columns: all", "FOREIGN KEY (customer_id) REFERENCES public.customers(id)",
			[]dumpEntry{entry(entryIndex, "CREATE UNIQUE INDEX customers_id2 ON public.customers USING btree (id);")}, 'r',
			append(all, `schema entry "Name: CREATE UNIQUE INDEX customers_id2 ON public.customers USING btree (id);"`)},
		{"a key of unknown columns: all", "FOREIGN KEY (customer_id) REFERENCES public.customers(id)",
			[]dumpEntry{entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_excl EXCLUDE USING gist (span WITH &&);")}, 'r',
			append(all, `schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_excl EXCLUDE USING gist (span WITH &&);"`)},
		{"not a plain table: all", "FOREIGN KEY (customer_id) REFERENCES public.customers(id)", nil, 'p', nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			fkSQL := "ALTER TABLE ONLY public.orders ADD CONSTRAINT ord_cust " + c.fk + ";"
			in := planInput{
				data:        []dataLoad{{table: "public.customers", bytes: 100, rows: 10}, {table: "public.orders", bytes: 200, rows: 20}},
				post:        append(append(append([]dumpEntry{}, base...), c.extra...), entry(entryFK, fkSQL)),
				kinds:       map[string]byte{"public.customers": c.kind, "public.orders": 'r'},
				validateFKs: true,
			}
			p := planRestore(in)
			var add *task
			keyTasks := map[string]bool{}
			for _, tk := range p.tasks {
				if tk.name == `schema entry "Name: `+fkSQL+`"` {
					add = tk
				}
				if strings.HasPrefix(tk.name, "schema entry") && strings.Contains(tk.name, "public.customers") && !strings.Contains(tk.name, "FOREIGN KEY") {
					keyTasks[tk.name] = true
				}
			}
			if add == nil {
				t.Fatalf("no task adds the foreign key: %v", p.tasks)
			}
			var got []string
			for _, d := range add.deps {
				if keyTasks[d.name] {
					got = append(got, d.name)
				}
			}
			want := c.want
			if want == nil { // every index and key task of customers
				for n := range keyTasks {
					want = append(want, n)
				}
			}
			slices.Sort(got)
			want = slices.Clone(want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("adding the key waits for\n %q\nwant\n %q", got, want)
			}
			if _, err := runPlan(t, p, 2, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An index build's cost follows its key's column types (a text key sorts
// several times slower than an integer one), and falls back to the
// table-wide estimate when the columns or their types are unknown.
func TestIndexCostFollowsKeyTypes(t *testing.T) {
	types := map[string]string{"id": "bigint", "email": "character varying(200)", "name": "text",
		"total": "numeric(12,2)", "at": "timestamp with time zone", "doc": "jsonb"}
	const bytes, rows = 111_000_000, 757_575
	for _, c := range []struct {
		cols string
		want float64
	}{
		{"(id)", 0.02*bytes + 45*rows},
		{"(email)", 0.02*bytes + 180*rows},
		{"(name)", 0.02*bytes + 180*rows},
		{"(total)", 0.02*bytes + 70*rows},
		{"(id, at)", 0.02*bytes + 90*rows},
		{"(doc)", 0.02*bytes + 60*rows},
		{"(missing)", indexCost(bytes, rows)},
		{"(lower(email))", indexCost(bytes, rows)},
	} {
		if got := keyCost(bytes, rows, types, c.cols); got != c.want {
			t.Errorf("keyCost %s = %.0f, want %.0f", c.cols, got, c.want)
		}
	}
	// Measured on the bench (PostgreSQL 15, C.UTF-8): customers' email
	// key took 1.7-2.4 s, its primary key 0.37 s.
	if r := keyCost(bytes, rows, types, "(email)") / keyCost(bytes, rows, types, "(id)"); r < 3 || r > 7 {
		t.Errorf("text key / integer key cost ratio %.1f, measured 4.6-6.5", r)
	}

	in := planInput{
		data: []dataLoad{{table: "public.customers", bytes: bytes, rows: rows}},
		post: []dumpEntry{
			entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);"),
			entry(entryConstraint, "ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_email_key UNIQUE (email);"),
			entry(entryIndex, "CREATE INDEX customers_at ON public.customers USING btree (at);"),
			entry(entryIndex, "CREATE INDEX customers_lower ON public.customers USING btree (lower(name));"),
		},
		kinds:    map[string]byte{"public.customers": 'r'},
		colTypes: map[string]map[string]string{"public.customers": types},
	}
	costs := map[string]float64{}
	for _, tk := range planRestore(in).tasks {
		costs[tk.name] = tk.cost
	}
	for name, want := range map[string]float64{
		`schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);" (index)`:    keyCost(bytes, rows, types, "(id)"),
		`schema entry "Name: ALTER TABLE ONLY public.customers ADD CONSTRAINT customers_email_key UNIQUE (email);" (index)`: keyCost(bytes, rows, types, "(email)"),
		`schema entry "Name: CREATE INDEX customers_at ON public.customers USING btree (at);"`:                              keyCost(bytes, rows, types, "(at)"),
		`schema entry "Name: CREATE INDEX customers_lower ON public.customers USING btree (lower(name));"`:                  indexCost(bytes, rows),
	} {
		if got, ok := costs[name]; !ok || got != want {
			t.Errorf("%s: cost %.0f (planned: %v), want %.0f", name, got, ok, want)
		}
	}
}
