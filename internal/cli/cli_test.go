package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/snapdata/snapdata/internal/backend/local"
	"github.com/snapdata/snapdata/internal/compress"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestMain doubles as the snapdata binary: with SNAPDATA_TEST_EXEC=1 the
// test binary runs the CLI, so crash tests can kill a real process.
func TestMain(m *testing.M) {
	if os.Getenv("SNAPDATA_TEST_EXEC") == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(testsrv.Main(m))
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// snap runs the CLI in-process.
func snap(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return result{out.String(), errb.String(), code}
}

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, args ...string) result {
	t.Helper()
	r := snap(t, args...)
	if r.code != 0 {
		t.Fatalf("snapdata %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// setup makes a temp dir with a password and returns it.
func setup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("SNAPDATA_PASSWORD", "test password")
	t.Setenv("SNAPDATA_REPO", "")
	t.Setenv("SNAPDATA_CONFIG", "")
	t.Chdir(dir)
	return dir
}

var chinookBytes []byte

func chinook(t *testing.T, dst string) {
	t.Helper()
	if chinookBytes == nil {
		_, file, _, _ := callerFile()
		b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "chinook.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		chinookBytes = b
	}
	if err := os.WriteFile(dst, chinookBytes, 0o644); err != nil {
		t.Fatal(err)
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func scalar(t *testing.T, db *sql.DB, q string) any {
	t.Helper()
	var v any
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

type snapshotOut struct {
	ID           string   `json:"id"`
	Time         string   `json:"time"`
	Source       string   `json:"source"`
	Engine       string   `json:"engine"`
	Tags         []string `json:"tags"`
	LogicalBytes int64    `json:"logical_bytes"`
	AddedBytes   int64    `json:"added_bytes"`
	Tables       []struct {
		Name     string `json:"name"`
		Rows     int64  `json:"rows"`
		Checksum string `json:"checksum"`
	} `json:"tables"`
}

func listSnapshots(t *testing.T, args ...string) []snapshotOut {
	t.Helper()
	r := must(t, append([]string{"snapshots", "--json"}, args...)...)
	var out []snapshotOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, r.stdout)
	}
	return out
}

func TestChinookRoundTrip(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	r := must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite", "--tag", "first")
	if !strings.Contains(r.stdout, "snapshot ") || !strings.Contains(r.stdout, "11 tables") {
		t.Errorf("backup output: %s", r)
	}
	snaps := listSnapshots(t, "--repo", "repo")
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %+v", snaps)
	}
	s := snaps[0]
	if len(s.ID) != 64 || s.Engine != "sqlite" || s.Source != "sqlite:"+filepath.Join(dir, "chinook.sqlite") || len(s.Tags) != 1 || s.Tags[0] != "first" || s.LogicalBytes == 0 || s.AddedBytes == 0 || len(s.Tables) != 11 {
		t.Errorf("snapshot JSON: %+v", s)
	}
	rows := map[string]int64{}
	for _, tb := range s.Tables {
		rows[tb.Name] = tb.Rows
		if len(tb.Checksum) != 64 {
			t.Errorf("table %s checksum %q", tb.Name, tb.Checksum)
		}
	}
	if rows["Track"] != 3503 || rows["InvoiceLine"] != 2240 {
		t.Errorf("row counts: %v", rows)
	}
	must(t, "restore", "--repo", "repo", s.ID[:8], "--to", "sqlite:restored.db")
	src, dst := openDB(t, "chinook.sqlite"), openDB(t, "restored.db")
	if v := scalar(t, dst, "PRAGMA integrity_check"); v != "ok" {
		t.Errorf("integrity_check: %v", v)
	}
	for name, n := range rows {
		got := scalar(t, dst, fmt.Sprintf(`SELECT count(*) FROM %q`, name))
		if got != n {
			t.Errorf("table %s: %v rows restored, %d backed up", name, got, n)
		}
	}
	// Row content identical, spot-checked on the biggest tables and the schema.
	for _, q := range []string{
		`SELECT group_concat(TrackId || Name || ifnull(Composer,'∅') || Milliseconds || UnitPrice, '|') FROM (SELECT * FROM Track ORDER BY TrackId)`,
		`SELECT group_concat(InvoiceId || InvoiceDate || BillingAddress || Total, '|') FROM (SELECT * FROM Invoice ORDER BY InvoiceId)`,
		`SELECT group_concat(type || name || sql, '|') FROM (SELECT * FROM sqlite_master ORDER BY name)`,
	} {
		if a, b := scalar(t, src, q), scalar(t, dst, q); a != b {
			t.Errorf("%s differs after restore", q)
		}
	}
	// The target now exists: a second restore is refused (exit 3) and
	// leaves it alone; --clean replaces it.
	r = snap(t, "restore", "--repo", "repo", "latest", "--to", "sqlite:restored.db")
	if r.code != ExitRefused || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "--clean") {
		t.Errorf("restore over an existing file: %s", r)
	}
	must(t, "restore", "--repo", "repo", "latest", "--to", "sqlite:restored.db", "--clean")
	r = must(t, "verify", "--repo", "repo", "latest")
	if !strings.Contains(r.stdout, "Track") || strings.Contains(r.stdout, "MISMATCH") {
		t.Errorf("verify: %s", r)
	}
	must(t, "check", "--repo", "repo", "--read-data")
}

func TestSkipUnchangedAndSecondBackupCost(t *testing.T) {
	setup(t)
	db := openDB(t, "big.db")
	for _, q := range []string{
		`CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, amount REAL)`,
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 120000)
		 INSERT INTO events SELECT x, 'kind-' || (x % 17), '{"user": ' || (abs(random()) % 100000) || ', "note": "' || hex(randomblob(12)) || '"}', (abs(random()) % 100000) / 100.0 FROM c`,
		`CREATE TABLE small (k TEXT PRIMARY KEY, v TEXT)`,
		`INSERT INTO small VALUES ('a', 'b')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:big.db")
	first := repoSize(t, "repo")
	// A full second backup of unchanged data adds at most 0.5 %.
	must(t, "backup", "--repo", "repo", "sqlite:big.db")
	second := repoSize(t, "repo")
	if added := second - first; float64(added) > 0.005*float64(first) {
		t.Errorf("second backup added %d bytes, %.3f%% of the first (%d)", added, 100*float64(added)/float64(first), first)
	}
	// --skip-unchanged records nothing and says so.
	r := must(t, "backup", "--repo", "repo", "sqlite:big.db", "--skip-unchanged")
	if !strings.Contains(r.stderr, "skipped") || strings.Contains(r.stdout, "saved") {
		t.Errorf("skip-unchanged: %s", r)
	}
	if n := len(listSnapshots(t, "--repo", "repo")); n != 2 {
		t.Errorf("%d snapshots after a skipped backup, want 2", n)
	}
	// A real change is backed up, and only the changed table costs space.
	db = openDB(t, "big.db")
	if _, err := db.Exec(`UPDATE small SET v = 'changed'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := repoSize(t, "repo")
	r = must(t, "backup", "--repo", "repo", "sqlite:big.db", "--skip-unchanged")
	if !strings.Contains(r.stdout, "saved") {
		t.Errorf("changed data was not backed up: %s", r)
	}
	if added := repoSize(t, "repo") - before; float64(added) > 0.01*float64(first) {
		t.Errorf("changing one tiny table added %d bytes", added)
	}
}

func repoSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.Contains(p, string(os.PathSeparator)+"locks"+string(os.PathSeparator)) {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A backup taken while a writer moves money between accounts must restore
// with the total unchanged: the backup reads one consistent snapshot.
func TestBackupUnderConcurrentWriter(t *testing.T) {
	for _, mode := range []string{"WAL", "DELETE"} {
		t.Run(mode, func(t *testing.T) {
			setup(t)
			db := openDB(t, "bank.db")
			const accounts, balance = 200, 1000
			for _, q := range []string{
				`PRAGMA journal_mode = ` + mode,
				`CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)`,
				fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT %d) INSERT INTO accounts SELECT x, %d FROM c`, accounts, balance),
				`CREATE TABLE transfers (id INTEGER PRIMARY KEY, src INT, dst INT, amount INT, note TEXT)`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			must(t, "init", "--repo", "repo")
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var commits atomic.Int64
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(1))
				for ctx.Err() == nil {
					tx, err := db.Begin()
					if err != nil {
						continue
					}
					a, b, amt := 1+rng.Intn(accounts), 1+rng.Intn(accounts), 1+rng.Intn(50)
					_, e1 := tx.Exec(`UPDATE accounts SET balance = balance - ? WHERE id = ?`, amt, a)
					_, e2 := tx.Exec(`INSERT INTO transfers (src, dst, amount, note) VALUES (?, ?, ?, ?)`, a, b, amt, strings.Repeat("x", rng.Intn(200)))
					_, e3 := tx.Exec(`UPDATE accounts SET balance = balance + ? WHERE id = ?`, amt, b)
					if e1 != nil || e2 != nil || e3 != nil || tx.Commit() != nil {
						_ = tx.Rollback()
						continue
					}
					commits.Add(1)
				}
			}()
			for commits.Load() < 200 {
				time.Sleep(5 * time.Millisecond)
			}
			// Back up until the writer has committed at least 50 transactions
			// while a backup was running, so the test proves concurrency on a
			// fast machine and a slow one alike.
			var during int64
			backups := 0
			for ; backups < 40 && (backups < 3 || during < 50); backups++ {
				before := commits.Load()
				must(t, "backup", "--repo", "repo", "sqlite:bank.db")
				during += commits.Load() - before
			}
			cancel()
			wg.Wait()
			if during < 50 {
				t.Errorf("only %d writer commits during %d backups: the writer did not run concurrently", during, backups)
			}
			for i, s := range listSnapshots(t, "--repo", "repo") {
				target := fmt.Sprintf("restored-%d.db", i)
				must(t, "restore", "--repo", "repo", s.ID, "--to", "sqlite:"+target)
				rdb := openDB(t, target)
				if total := scalar(t, rdb, `SELECT sum(balance) FROM accounts`); total != int64(accounts*balance) {
					t.Errorf("snapshot %d: total %v, want %d", i, total, accounts*balance)
				}
				// The transfer log matches the balances: same moment for both tables.
				if moved := scalar(t, rdb, `SELECT count(*) FROM transfers`); moved == int64(0) {
					t.Errorf("snapshot %d: no transfers captured", i)
				}
			}
		})
	}
}

// Killing a backup at random moments never leaves a partial snapshot or a
// repository that check finds unhealthy, and the next backup succeeds.
func TestCrashSafetyKill9(t *testing.T) {
	setup(t)
	db := openDB(t, "data.db")
	for _, q := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`,
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 60000) INSERT INTO t SELECT x, hex(randomblob(40)) FROM c`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	// Time one whole backup process so the kills land mid-way on a fast
	// machine and a slow one alike.
	must(t, "init", "--repo", "repo-probe")
	probe := exec.Command(os.Args[0], "backup", "--repo", "repo-probe", "sqlite:data.db")
	probe.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1")
	start := time.Now()
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("probe backup: %v: %s", err, out)
	}
	window := time.Since(start) * 5 / 4
	t.Logf("one backup process takes %v; kills land within %v", time.Since(start), window)
	const runs = 20
	sizes := []string{"4KiB", "8KiB", "16KiB", "64KiB", "256KiB"}
	repos := map[string]int{} // repo -> completed backups
	killedMidway := 0
	for i := 0; i < runs; i++ {
		repo := fmt.Sprintf("repo-%s", sizes[i%len(sizes)])
		if _, ok := repos[repo]; !ok {
			must(t, "init", "--repo", repo, "--chunk-size", sizes[i%len(sizes)])
			repos[repo] = 0
		}
		// Change some data so each run has new chunks to write.
		if _, err := db.Exec(`UPDATE t SET v = hex(randomblob(40)) WHERE id % 50 = ?`, i%50); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "backup", "--repo", repo, "sqlite:data.db")
		cmd.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(window))))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if err == nil {
			repos[repo]++
		} else {
			killedMidway++
		}
		r := snap(t, "check", "--repo", repo)
		if r.code != 0 {
			t.Fatalf("run %d: check after kill -9: %s", i, r)
		}
		if n := len(listSnapshots(t, "--repo", repo)); n != repos[repo] {
			t.Fatalf("run %d: %d snapshots listed, %d backups completed", i, n, repos[repo])
		}
	}
	if killedMidway < runs/2 {
		t.Errorf("only %d of %d runs were killed mid-way: the test did not exercise crashes", killedMidway, runs)
	}
	for repo, n := range repos {
		must(t, "backup", "--repo", repo, "sqlite:data.db")
		snaps := listSnapshots(t, "--repo", repo)
		if len(snaps) != n+1 {
			t.Fatalf("%s: %d snapshots after the final backup, want %d", repo, len(snaps), n+1)
		}
		must(t, "restore", "--repo", repo, "latest", "--to", "sqlite:"+repo+".db")
		must(t, "check", "--repo", repo, "--read-data")
		// A killed backup's lock blocks prune until it goes stale (its pid
		// could live in another PID namespace); unlock removes it.
		must(t, "unlock", "--repo", repo)
		r := must(t, "prune", "--repo", repo)
		if !strings.Contains(r.stdout, "removed") {
			t.Errorf("prune: %s", r)
		}
		must(t, "check", "--repo", repo, "--read-data")
	}
}

func TestDamageNamedByCheck(t *testing.T) {
	setup(t)
	chinook(t, "a.sqlite")
	db := openDB(t, "b.sqlite")
	if _, err := db.Exec(`CREATE TABLE other (x TEXT); INSERT INTO other VALUES ('independent data')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:a.sqlite")
	must(t, "backup", "--repo", "repo", "sqlite:b.sqlite")
	snaps := listSnapshots(t, "--repo", "repo")
	var victimSnap string
	for _, s := range snaps {
		if strings.HasSuffix(s.Source, "a.sqlite") {
			victimSnap = s.ID
		}
	}
	// Flip one byte in the largest data object (it belongs to a.sqlite).
	var victim string
	var size int64
	_ = filepath.Walk("repo/data", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > size {
			victim, size = p, fi.Size()
		}
		return nil
	})
	b, _ := os.ReadFile(victim)
	b[len(b)/3] ^= 0x80
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := snap(t, "check", "--repo", "repo", "--read-data")
	if r.code != ExitFailure || !strings.Contains(r.stdout, "data/"+filepath.Base(victim)) || !strings.Contains(r.stdout, victimSnap[:8]) {
		t.Errorf("check --read-data after damage: %s", r)
	}
	r = snap(t, "restore", "--repo", "repo", victimSnap[:8], "--to", "sqlite:damaged.db")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("restore of the damaged snapshot: %s", r)
	}
	if _, err := os.Stat("damaged.db"); err == nil {
		t.Error("a failed restore left its target behind")
	}
	must(t, "restore", "--repo", "repo", "latest", "--source", "sqlite:"+filepath.Join(mustGetwd(t), "b.sqlite"), "--to", "sqlite:undamaged.db")
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestBadInput(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	if err := os.WriteFile("notes.txt", []byte("just some notes, definitely not a database file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("afile", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("bad.yaml", []byte("repositories:\n  main: { url: ./repo }\nsources:\n  app:\n    dsn: sqlite:x.db\n    pasword: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"missing source file", nil, []string{"backup", "--repo", "repo", "sqlite:missing.db"}, ExitFailure, []string{"missing.db does not exist", "no snapshot was written"}},
		{"not sqlite", nil, []string{"backup", "--repo", "repo", "sqlite:notes.txt"}, ExitFailure, []string{"notes.txt is not a sqlite database"}},
		{"unwritable repository path", nil, []string{"init", "--repo", "afile/repo"}, ExitFailure, []string{"afile/repo", "not a directory"}},
		{"wrong password", map[string]string{"SNAPDATA_PASSWORD": "nope"}, []string{"snapshots", "--repo", "repo"}, ExitFailure, []string{"wrong password"}},
		{"no password", map[string]string{"SNAPDATA_PASSWORD": ""}, []string{"snapshots", "--repo", "repo"}, ExitUsage, []string{"SNAPDATA_PASSWORD", "--password-file"}},
		{"unknown snapshot id", nil, []string{"restore", "--repo", "repo", "deadbeef", "--to", "sqlite:x.db"}, ExitUsage, []string{`no snapshot with id "deadbeef"`}},
		{"no repository there", nil, []string{"snapshots", "--repo", "nowhere"}, ExitFailure, []string{"no repository found at nowhere", "snapdata init"}},
		{"config with unknown key", map[string]string{"SNAPDATA_CONFIG": filepath.Join(dir, "bad.yaml")}, []string{"snapshots"}, ExitUsage, []string{"bad.yaml:6", `unknown key "pasword"`, "expected one of: dsn, row_order, tags"}},
		{"not a DSN", nil, []string{"backup", "--repo", "repo", "chinook"}, ExitUsage, []string{`"chinook" is neither a DSN`}},
		{"unknown scheme", nil, []string{"backup", "--repo", "repo", "oracle://u:secret@h/db"}, ExitUsage, []string{"unknown scheme", "xxxxx"}},
		{"no source", nil, []string{"backup", "--repo", "repo"}, ExitUsage, []string{"at least one SOURCE"}},
		{"unknown flag", nil, []string{"backup", "--repo", "repo", "--frobnicate", "sqlite:chinook.sqlite"}, ExitUsage, []string{"unknown flag: --frobnicate"}},
		{"restore without --to", nil, []string{"restore", "--repo", "repo", "latest"}, ExitUsage, []string{"--to TARGET"}},
		{"forget without rules", nil, []string{"forget", "--repo", "repo"}, ExitUsage, []string{"at least one keep rule"}},
		{"bad chunk size", nil, []string{"init", "--repo", "r2", "--chunk-size", "3MB"}, ExitUsage, []string{"power of two"}},
		{"unknown chunker", nil, []string{"init", "--repo", "r2", "--chunker", "buzhash"}, ExitUsage, []string{`--chunker "buzhash"`, "fastcdc, rabin"}},
		{"unknown compression", nil, []string{"init", "--repo", "r2", "--compression", "max"}, ExitUsage, []string{`--compression "max"`, "fastest, default, better"}},
		{"no repository given", nil, []string{"snapshots"}, ExitUsage, []string{"no repository given", "SNAPDATA_REPO"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			r := snap(t, c.args...)
			if r.code != c.code {
				t.Errorf("exit code %d, want %d: %s", r.code, c.code, r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r)
				}
			}
			if strings.Contains(r.stderr+r.stdout, "secret") {
				t.Errorf("a password leaked: %s", r)
			}
		})
	}
	// Nothing above created a snapshot.
	if n := len(listSnapshots(t, "--repo", "repo")); n != 0 {
		t.Errorf("%d snapshots after failed backups", n)
	}
}

func TestConfigSourcesAndForget(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	if err := os.WriteFile("pw", []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SNAPDATA_PASSWORD", "")
	t.Setenv("APP_DB", "chinook.sqlite")
	cfg := "repositories:\n  main: { url: ./backups, password_file: ./pw }\nsources:\n  app: { dsn: \"sqlite:${APP_DB}\", tags: [prod] }\n"
	if err := os.WriteFile("snapdata.yaml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, "init")
	for i := 0; i < 4; i++ {
		must(t, "backup", "app")
	}
	snaps := listSnapshots(t, "--source", "app")
	if len(snaps) != 4 || snaps[0].Source != "app" || snaps[0].Tags[0] != "prod" {
		t.Fatalf("snapshots: %+v", snaps)
	}
	r := must(t, "forget", "--keep-last", "2", "--dry-run")
	if !strings.Contains(r.stdout, "would remove 2 snapshots") || strings.Count(r.stdout, "remove  ") != 2 {
		t.Errorf("forget --dry-run: %s", r)
	}
	if n := len(listSnapshots(t)); n != 4 {
		t.Fatalf("dry run removed snapshots: %d left", n)
	}
	r = must(t, "forget", "--keep-last", "2", "--prune")
	if !strings.Contains(r.stdout, "removed 2 snapshots") || !strings.Contains(r.stdout, "pruned") {
		t.Errorf("forget: %s", r)
	}
	left := listSnapshots(t)
	if len(left) != 2 || left[1].ID != snaps[3].ID {
		t.Errorf("after forget: %+v", left)
	}
	// The newest snapshot survives any rule.
	must(t, "forget", "--keep-tag", "nothing-has-this")
	if left = listSnapshots(t); len(left) != 1 || left[0].ID != snaps[3].ID {
		t.Errorf("newest not kept: %+v", left)
	}
	must(t, "restore", "latest", "--source", "app", "--to", "sqlite:out.db")
	must(t, "check", "--read-data")
}

func TestExportAndImport(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo", "--no-encryption")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	must(t, "export", "--repo", "repo", "latest", "--format", "sql", "-o", "dump.sql")
	sqlText, err := os.ReadFile("dump.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, "fromsql.db")
	if _, err := db.Exec(string(sqlText)); err != nil {
		t.Fatalf("load exported SQL: %v", err)
	}
	if n := scalar(t, db, `SELECT count(*) FROM Track`); n != int64(3503) {
		t.Errorf("Track rows from SQL export: %v", n)
	}
	must(t, "export", "--repo", "repo", "latest", "--format", "tar.gz", "-o", "chinook.tar.gz")
	must(t, "import", "chinook.tar.gz", "--to", "sqlite:imported.db")
	idb := openDB(t, "imported.db")
	src := openDB(t, "chinook.sqlite")
	q := `SELECT count(*), sum(Milliseconds), group_concat(Name, '|') FROM (SELECT * FROM Track ORDER BY TrackId)`
	var a1, a2 [3]any
	if err := src.QueryRow(q).Scan(&a1[0], &a1[1], &a1[2]); err != nil {
		t.Fatal(err)
	}
	if err := idb.QueryRow(q).Scan(&a2[0], &a2[1], &a2[2]); err != nil {
		t.Fatal(err)
	}
	if a1 != a2 {
		t.Error("imported Track differs from the source")
	}
	r := snap(t, "import", "chinook.tar.gz", "--to", "sqlite:imported.db")
	if r.code != ExitRefused {
		t.Errorf("import over an existing database: %s", r)
	}
	r = snap(t, "import", "dump.sql", "--to", "sqlite:x.db")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "dump.sql") {
		t.Errorf("import of a non-archive: %s", r)
	}
}

// export -o writes through what the name points at: a FIFO (like
// /dev/stdout or /dev/null, something to write into, not to replace) stays
// a FIFO and receives the SQL; a symlink stays a symlink and its target
// gets the file; a regular file is replaced only once the export is
// complete, and a failed export leaves neither a partial file nor its
// temporary file behind.
func TestExportOutputs(t *testing.T) {
	dir := setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo", "--no-encryption")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	must(t, "export", "--repo", "repo", "latest", "-o", "want.sql")
	want, err := os.ReadFile("want.sql")
	if err != nil {
		t.Fatal(err)
	}

	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // blocks until the export opens the FIFO
		got <- b
	}()
	must(t, "export", "--repo", "repo", "latest", "-o", fifo)
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Errorf("the FIFO received %d bytes, want the %d of the SQL export", len(b), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the export never opened the FIFO")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("after the export the FIFO is %v (%v)", fi.Mode(), err)
	}

	if err := os.WriteFile("target.sql", []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.sql", "link.sql"); err != nil {
		t.Fatal(err)
	}
	must(t, "export", "--repo", "repo", "latest", "-o", "link.sql")
	if fi, err := os.Lstat("link.sql"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after the export link.sql is %v (%v), want the symlink", fi.Mode(), err)
	}
	if b, _ := os.ReadFile("target.sql"); !bytes.Equal(b, want) {
		t.Errorf("the symlink's target holds %d bytes, want the export", len(b))
	}

	if err := os.WriteFile("keep.sql", []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Damage every stored chunk: the export opens keep.sql, then fails.
	objs, _ := filepath.Glob(filepath.Join(dir, "repo", "data", "*", "*"))
	for _, o := range objs {
		if err := os.WriteFile(o, []byte("damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := snap(t, "export", "--repo", "repo", "latest", "-o", "keep.sql"); r.code == 0 || len(objs) == 0 {
		t.Fatalf("export from a damaged repository (%d objects): %s", len(objs), r)
	}
	if r := snap(t, "export", "--repo", "repo", "latest", "--format", "tar.gz"); r.code != ExitUsage || !strings.Contains(r.stderr, "-o /dev/stdout") {
		t.Errorf("tar.gz export without -o: %s", r)
	}
	if r := snap(t, "export", "--repo", "repo", "latest", "--format", "tar.gz", "-o", "."); r.code == 0 || !strings.Contains(r.stderr, "directory") {
		t.Errorf("export into a directory: %s", r)
	}
	if b, _ := os.ReadFile("keep.sql"); string(b) != "old" {
		t.Errorf("a failed export changed keep.sql: %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.snapdata-tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestS3Repository(t *testing.T) {
	srv := testsrv.S3(t)
	setup(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	chinook(t, "chinook.sqlite")
	repo := srv.URL(bucket, "team/backups")
	must(t, "init", "--repo", repo)
	must(t, "backup", "--repo", repo, "sqlite:chinook.sqlite")
	must(t, "backup", "--repo", repo, "sqlite:chinook.sqlite")
	snaps := listSnapshots(t, "--repo", repo)
	if len(snaps) != 2 || snaps[1].AddedBytes != 0 {
		t.Errorf("snapshots on S3: %+v", snaps)
	}
	must(t, "restore", "--repo", repo, "latest", "--to", "sqlite:fromS3.db")
	if v := scalar(t, openDB(t, "fromS3.db"), `SELECT count(*) FROM Track`); v != int64(3503) {
		t.Errorf("Track rows restored from S3: %v", v)
	}
	must(t, "check", "--repo", repo, "--read-data")
	must(t, "forget", "--repo", repo, "--keep-last", "1", "--prune")
	r := snap(t, "init", "--repo", srv.URL("no-such-bucket-"+strings.ToLower(t.Name()), "x"))
	if r.code != ExitFailure || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("missing bucket: %s", r)
	}
	if strings.Contains(r.stderr, srv.SecretKey) {
		t.Error("the S3 secret key leaked into an error")
	}
}

func TestHelpTeaches(t *testing.T) {
	r := must(t, "--help")
	for _, cmd := range []string{"init", "backup", "snapshots", "restore", "forget", "prune", "check", "unlock", "verify", "export", "import", "copy", "version"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("--help does not list %s", cmd)
		}
	}
	r = must(t, "backup", "--help")
	if !strings.Contains(r.stdout, "snapdata backup --repo ./backups sqlite:./app.db") {
		t.Errorf("backup --help has no example: %s", r.stdout)
	}
	if r := must(t, "version"); !strings.Contains(r.stdout, "zstd: "+compress.Implementation) {
		t.Errorf("version does not name the zstd implementation: %s", r.stdout)
	}
}

// Each chunker and compression init accepts makes a repository that
// backs up, deduplicates and restores.
func TestInitChunkerAndCompression(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	for _, c := range [][]string{{"--chunker", "rabin"}, {"--chunker", "fastcdc", "--compression", "better"}, {"--compression", "default", "--chunk-size", "64KiB"}, {"--columns=false"}, {"--chunker", "rabin", "--columns=false"}} {
		repo := "repo-" + strings.Join(c, "")
		out := must(t, append([]string{"init", "--repo", repo}, c...)...)
		wantFilter := "rows stored column by column"
		if slices.Contains(c, "--columns=false") {
			wantFilter = "rows stored row by row"
		}
		if !strings.Contains(out.stdout, wantFilter) {
			t.Errorf("%v: init says %q, want it to say %q", c, out.stdout, wantFilter)
		}
		must(t, "backup", "--repo", repo, "sqlite:chinook.sqlite")
		must(t, "backup", "--repo", repo, "sqlite:chinook.sqlite")
		snaps := listSnapshots(t, "--repo", repo)
		if len(snaps) != 2 {
			t.Fatalf("%v: %d snapshots", c, len(snaps))
		}
		// Sorted by time: the unchanged second backup reuses every chunk.
		if snaps[0].AddedBytes == 0 || snaps[1].AddedBytes != 0 {
			t.Errorf("%v: backups added %d then %d bytes", c, snaps[0].AddedBytes, snaps[1].AddedBytes)
		}
		must(t, "check", "--repo", repo, "--read-data")
		must(t, "restore", "--repo", repo, "latest", "--to", "sqlite:"+repo+".db")
		db := openDB(t, repo+".db")
		if n := scalar(t, db, "SELECT count(*) FROM Track"); n != int64(3503) {
			t.Errorf("%v: %v tracks restored", c, n)
		}
		db.Close()
	}
}

// Several backups may run at once against one repository, as separate
// processes, and forget waits for none of them to break.
func TestConcurrentBackupProcesses(t *testing.T) {
	setup(t)
	must(t, "init", "--repo", "repo", "--chunk-size", "16KiB")
	const n = 4
	for i := 0; i < n; i++ {
		chinook(t, fmt.Sprintf("db%d.sqlite", i))
		db := openDB(t, fmt.Sprintf("db%d.sqlite", i))
		if _, err := db.Exec(fmt.Sprintf(`UPDATE Track SET Name = Name || ' (copy %d)' WHERE TrackId %% 7 = 0`, i)); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([][]byte, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "backup", "--repo", "repo", fmt.Sprintf("sqlite:db%d.sqlite", i))
			cmd.Env = append(os.Environ(), "SNAPDATA_TEST_EXEC=1")
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Errorf("backup %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	snaps := listSnapshots(t, "--repo", "repo")
	if len(snaps) != n {
		t.Fatalf("%d snapshots after %d concurrent backups", len(snaps), n)
	}
	must(t, "check", "--repo", "repo", "--read-data")
	for i, s := range snaps {
		must(t, "restore", "--repo", "repo", s.ID, "--to", fmt.Sprintf("sqlite:r%d.db", i))
	}
}

// verify catches a manifest that does not match the data: here a manifest
// whose checksum for one table was altered after the fact.
func TestVerifyCatchesInjectedMismatch(t *testing.T) {
	setup(t)
	chinook(t, "chinook.sqlite")
	must(t, "init", "--repo", "repo")
	must(t, "backup", "--repo", "repo", "sqlite:chinook.sqlite")
	ctx := context.Background()
	repo, err := repository.Open(ctx, local.New("repo"), []byte("test password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := repo.Find(ctx, "latest", "")
	if err != nil {
		t.Fatal(err)
	}
	orig := s.ID
	for i := range s.Tables {
		if s.Tables[i].Name == "Genre" {
			s.Tables[i].Rows++
		}
		if s.Tables[i].Name == "Track" {
			s.Tables[i].Checksum = strings.Repeat("0", 64)
		}
	}
	s.Time = s.Time.Add(time.Second)
	id, err := repo.SaveManifest(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch)
	r := snap(t, "verify", "--repo", "repo", id[:10])
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("verify left scratch files: %v", left)
	}
	if r.code != ExitFailure || !strings.Contains(r.stderr, "failed verification") {
		t.Fatalf("verify of a tampered manifest: %s", r)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		bad := strings.Contains(line, "MISMATCH")
		if strings.HasPrefix(line, "Track ") && (!bad || !strings.Contains(line, "checksum differs")) {
			t.Errorf("Track line: %q", line)
		}
		if strings.HasPrefix(line, "Genre ") && (!bad || !strings.Contains(line, "rows 25, manifest says 26")) {
			t.Errorf("Genre line: %q", line)
		}
		if strings.HasPrefix(line, "Album ") && bad {
			t.Errorf("Album flagged: %q", line)
		}
	}
	// The untouched snapshot still verifies, and no scratch file is left.
	must(t, "verify", "--repo", "repo", orig[:10])
}
