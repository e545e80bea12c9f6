package testsrv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestPostgresShared(t *testing.T) {
	pg := Postgres(t)
	if pg2 := Postgres(t); pg2 != pg {
		t.Fatal("Postgres returned a second server; want the shared one")
	}
	dsn1 := pg.CreateDatabase(t, "Some-Name")
	dsn2 := pg.CreateDatabase(t, "Some-Name")
	if dsn1 == dsn2 {
		t.Fatalf("CreateDatabase returned the same DSN twice: %s", dsn1)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn1)
	if err != nil {
		t.Fatalf("connect to created database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Error("user is not a superuser")
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want off", fsync, err)
	}
	for _, tool := range []string{"pg_dump", "psql", "pg_restore"} {
		if _, err := os.Stat(pg.BinDir() + "/" + tool); err != nil {
			t.Errorf("BinDir %s lacks %s: %v", pg.BinDir(), tool, err)
		}
	}
	// A wrong password is refused: authentication is really on.
	bad := strings.Replace(dsn1, pg.Password, "wrong", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Error("connect with a wrong password succeeded")
	}
}

func TestNewPostgresIndependent(t *testing.T) {
	a := Postgres(t)
	var dir string
	t.Run("own", func(t *testing.T) {
		b := NewPostgres(t, PGOptions{Settings: map[string]string{"wal_level": "logical"}})
		if b.Port == a.Port || b.Dir == a.Dir {
			t.Fatalf("NewPostgres shares port or dir with the shared server")
		}
		dir = b.Dir
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, b.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var level string
		if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
			t.Errorf("wal_level = %q, %v; want logical", level, err)
		}
	})
	// The sub-test's server is gone and its directory removed.
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s of a stopped server still exists (%v)", dir, err)
	}
}

func TestMariaDBShared(t *testing.T) {
	my := MariaDB(t)
	if MariaDB(t) != my {
		t.Fatal("MariaDB returned a second server; want the shared one")
	}
	dsn := my.CreateDatabase(t, "shop")
	if !strings.HasPrefix(dsn, "mysql://snapdata:") || !strings.Contains(dsn, "/shop_") {
		t.Errorf("DSN = %s", strings.Replace(dsn, my.Password, "***", 1))
	}
	name := dsn[strings.LastIndex(dsn, "/")+1:]
	db, err := sql.Open("mysql", my.DriverDSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (id int primary key) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	var grants string
	if err := db.QueryRow("SHOW GRANTS").Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants, "ALL PRIVILEGES") {
		t.Errorf("grants = %s", grants)
	}
}

func TestNewMariaDBWithBinlog(t *testing.T) {
	my := NewMariaDB(t, MariaDBOptions{ServerID: 7, LogBin: true})
	db, err := sql.Open("mysql", my.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int
	var logBin int
	if err := db.QueryRow("SELECT @@server_id, @@log_bin").Scan(&id, &logBin); err != nil {
		t.Fatal(err)
	}
	if id != 7 || logBin != 1 {
		t.Errorf("server_id=%d log_bin=%d; want 7, 1", id, logBin)
	}
}

func TestS3(t *testing.T) {
	srv := S3(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	c := srv.Client()
	body := []byte("hello")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("got %q", got)
	}
	if u := srv.URL("bkt", "pre/fix"); u != "s3://bkt/pre/fix?endpoint="+srv.Endpoint+"&region=us-east-1" {
		t.Errorf("URL = %s", u)
	}
	t.Run("env", func(t *testing.T) {
		srv.SetEnv(t)
		if os.Getenv("AWS_ACCESS_KEY_ID") != srv.AccessKey || os.Getenv("AWS_SECRET_ACCESS_KEY") != srv.SecretKey {
			t.Error("SetEnv did not set the credentials")
		}
	})
}

func TestMissingBinarySkipsOrFails(t *testing.T) {
	missing := fmt.Errorf("start: %w", &MissingError{What: "x", Hint: "y"})
	t.Setenv(RequireEnv, "")
	if !shouldSkip(missing) {
		t.Errorf("without %s a missing binary does not skip", RequireEnv)
	}
	if shouldSkip(errors.New("boom")) {
		t.Error("a start-up failure skips instead of failing")
	}
	t.Setenv(RequireEnv, "1")
	if shouldSkip(missing) {
		t.Errorf("with %s a missing binary skips instead of failing", RequireEnv)
	}
}

func TestProcStopKillsGroup(t *testing.T) {
	dir := t.TempDir()
	// A shell that ignores the stop signal and has a child: stop must
	// still end both.
	cmd := exec.Command("sh", "-c", "trap '' TERM; sleep 300 & wait")
	pr, err := startProc("sleeper", cmd, dir+"/log", syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	pr.grace = 500 * time.Millisecond
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	pr.stop()
	if !pr.exited() {
		t.Fatal("process still running after stop")
	}
	if groupAlive(cmd.Process.Pid) {
		t.Error("process group still has members after stop")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("stop took too long")
	}
}
