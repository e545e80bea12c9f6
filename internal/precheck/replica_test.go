package precheck_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/app"
	"github.com/snapdata/snapdata/internal/config"
	"github.com/snapdata/snapdata/internal/crypto"
	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/precheck"
	"github.com/snapdata/snapdata/internal/repository"
	"github.com/snapdata/snapdata/internal/serve"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.Main(m)) }

func lagOf(t *testing.T, raw string) precheck.Lag {
	t.Helper()
	d, err := dsn.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	l, err := precheck.ReplicationLag(context.Background(), d)
	if err != nil {
		t.Fatalf("ReplicationLag(%s): %v", d, err)
	}
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runJob runs a serve job with max_replication_lag against source raw, the
// way `snapdata run` does, and returns its outcome.
func runJob(t *testing.T, raw, maxLag string) *serve.Outcome {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "snapdata.yaml")
	y := fmt.Sprintf(`repositories:
  main: { url: ./repo, password: pw-for-tests }
sources:
  db: { dsn: %q }
jobs:
  - name: replica-backup
    source: db
    prechecks: { max_replication_lag: %s }
`, raw, maxLag)
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	noenv := func(string) (string, bool) { return "", false }
	cfg, err := config.Load(cfgPath, noenv)
	if err != nil {
		t.Fatal(err)
	}
	kdf := crypto.KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 1024, Threads: 1, Salt: crypto.RandomBytes(16)}
	r, _, err := app.New(cfg, nil, func(string) string { return "" }).InitRepository(context.Background(), "main", repository.InitOptions{KDF: &kdf})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	o, err := serve.RunOnce(context.Background(), serve.Options{ConfigPath: cfgPath, Lookup: noenv,
		Getenv: func(string) string { return "" }, Logger: slog.New(slog.DiscardHandler)}, "replica-backup")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A MariaDB replica of a MariaDB primary: no lag on the primary, a known lag
// on a running replica, "unknown" with the SQL thread stopped (skip), a
// real delay above the maximum (skip).
func TestMariaDBReplicaLag(t *testing.T) {
	primary := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{ServerID: 1, LogBin: true})
	replica := testsrv.NewMariaDB(t, testsrv.MariaDBOptions{ServerID: 2})
	primary.Exec(t, "", "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	replica.Exec(t, "", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=current_pos",
		primary.Port, primary.User, primary.Password), "START SLAVE")

	if l := lagOf(t, primary.DSN("shop")); l.Replica || !l.Known || l.Lag != 0 {
		t.Fatalf("primary: %+v", l)
	}
	// Seconds_Behind_Master can read 0 before the SQL thread has applied
	// the first events, so also wait for the replicated table.
	rdb, err := sql.Open("mysql", replica.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	waitFor(t, "the replica to catch up", func() bool {
		l := lagOf(t, replica.DSN(""))
		var one int
		err := rdb.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'orders'").Scan(&one)
		return l.Replica && l.Known && l.Lag == 0 && err == nil && one == 1
	})
	if d := precheck.CheckLag(lagOf(t, replica.DSN("shop")), 3*time.Hour); d.Skip {
		t.Fatalf("caught-up replica skipped: %+v", d)
	}
	if o := runJob(t, replica.DSN("shop"), "3h"); o.Status != serve.StatusSuccess {
		t.Fatalf("backup of a caught-up replica: %+v", o)
	}

	// SQL thread stopped: the lag is unknown, the run is skipped.
	replica.Exec(t, "", "STOP SLAVE SQL_THREAD")
	l := lagOf(t, replica.DSN("shop"))
	if !l.Replica || l.Known {
		t.Fatalf("replica with stopped SQL thread: %+v", l)
	}
	if d := precheck.CheckLag(l, 3*time.Hour); !d.Skip || d.Reason != "lag_unknown" {
		t.Fatalf("decision: %+v", d)
	}
	if o := runJob(t, replica.DSN("shop"), "3h"); o.Status != serve.StatusSkipped || o.Reason != "lag_unknown" {
		t.Fatalf("job on a stopped replica: %+v", o)
	}

	// A delayed replica: the lag grows past the maximum.
	replica.Exec(t, "", "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=120", "START SLAVE")
	primary.Exec(t, "shop", "INSERT INTO orders (v) VALUES (1)")
	waitFor(t, "a lag of 2s", func() bool {
		l := lagOf(t, replica.DSN("shop"))
		return l.Known && l.Lag >= 2*time.Second
	})
	if d := precheck.CheckLag(lagOf(t, replica.DSN("shop")), time.Second); !d.Skip || d.Reason != "replication_lag" {
		t.Fatalf("decision: %+v", d)
	}
	if o := runJob(t, replica.DSN("shop"), "1s"); o.Status != serve.StatusSkipped || o.Reason != "replication_lag" {
		t.Fatalf("job on a lagging replica: %+v", o)
	}
}

// A PostgreSQL standby made with pg_basebackup -R: caught up means no lag;
// with replay paused while the primary writes, the lag grows and the run is
// skipped.
func TestPostgresStandbyLag(t *testing.T) {
	primary := testsrv.NewPostgres(t, testsrv.PGOptions{})
	primary.Exec(t, "postgres", "CREATE TABLE items (id serial PRIMARY KEY, v int)", "INSERT INTO items (v) VALUES (1)")
	standby := startStandby(t, primary)

	if l := lagOf(t, primary.DSN("postgres")); l.Replica || !l.Known {
		t.Fatalf("primary: %+v", l)
	}
	primary.Exec(t, "postgres", "INSERT INTO items (v) VALUES (2)")
	waitFor(t, "the standby to catch up", func() bool {
		l := lagOf(t, standby)
		return l.Replica && l.Known && l.Lag < time.Second
	})
	if o := runJob(t, standby, "1h"); o.Status != serve.StatusSuccess {
		t.Fatalf("backup of a caught-up standby: %+v", o)
	}

	exec1(t, standby, "SELECT pg_wal_replay_pause()")
	primary.Exec(t, "postgres", "INSERT INTO items (v) VALUES (3)")
	time.Sleep(2500 * time.Millisecond)
	waitFor(t, "a replay lag of 2s", func() bool {
		l := lagOf(t, standby)
		return l.Replica && l.Known && l.Lag >= 2*time.Second
	})
	if d := precheck.CheckLag(lagOf(t, standby), time.Second); !d.Skip || d.Reason != "replication_lag" {
		t.Fatalf("decision: %+v", d)
	}
	if o := runJob(t, standby, "1s"); o.Status != serve.StatusSkipped || o.Reason != "replication_lag" {
		t.Fatalf("job on a lagging standby: %+v", o)
	}
	exec1(t, standby, "SELECT pg_wal_replay_resume()")
	waitFor(t, "the standby to catch up again", func() bool {
		l := lagOf(t, standby)
		return l.Known && l.Lag < time.Second
	})
}

func exec1(t *testing.T, raw, sql string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// startStandby clones primary with pg_basebackup -R and starts it as a hot
// standby on a free port; it returns its DSN.
func startStandby(t *testing.T, primary *testsrv.PG) string {
	t.Helper()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	dir, err := os.MkdirTemp("", "snapdata-standby-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	bb := exec.Command(filepath.Join(primary.BinDir(), "pg_basebackup"), "-h", primary.Host, "-p", strconv.Itoa(primary.Port),
		"-U", primary.User, "-D", data, "-R", "-X", "stream", "-c", "fast")
	bb.Env = append(os.Environ(), "PGPASSWORD="+primary.Password)
	bb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := bb.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	port, err := testsrv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "standby.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(primary.BinDir(), "postgres"), "-D", data, "-c", "port="+strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir, "-c", "hot_standby=on", "-c", "fsync=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	raw := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", primary.User, primary.Password, port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, raw)
		cancel()
		if err == nil {
			c.Close(context.Background())
			return raw
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "standby.log"))
			t.Fatalf("standby exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "standby.log"))
			t.Fatalf("standby not ready: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
