package testsrv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MariaDBOptions configures a MariaDB server started by NewMariaDB.
type MariaDBOptions struct {
	// ServerID is the server-id (default 1).
	ServerID int
	// LogBin enables the binary log (ROW format) under Dir/binlog.
	LogBin bool
	// Args are extra mariadbd command-line options, e.g. "--gtid-strict-mode=1".
	Args []string
	// TLS gives the server a self-signed certificate for 127.0.0.1;
	// clients may connect with tls=skip-verify.
	TLS bool
}

// My is a running MariaDB server.
type My struct {
	Host     string // always 127.0.0.1
	Port     int
	User     string // has ALL PRIVILEGES WITH GRANT OPTION, from any host
	Password string
	Dir      string // temporary directory with data/, the socket and the log
	ServerID int

	binDir string
	stop   func()
}

// BinDir is the directory of the mariadbd program; client programs
// (mariadb, mariadb-dump) are looked up in PATH.
func (m *My) BinDir() string { return m.binDir }

// Socket is the path of the server's unix socket.
func (m *My) Socket() string { return filepath.Join(m.Dir, "mariadb.sock") }

// DataDir is the server's data directory.
func (m *My) DataDir() string { return filepath.Join(m.Dir, "data") }

// LogPath is the server's log file.
func (m *My) LogPath() string { return filepath.Join(m.Dir, "mariadb.log") }

// DSN returns a URL for database db: mysql://user:pass@127.0.0.1:port/db.
func (m *My) DSN(db string) string {
	u := url.URL{
		Scheme: "mysql",
		User:   url.UserPassword(m.User, m.Password),
		Host:   fmt.Sprintf("%s:%d", m.Host, m.Port),
		Path:   "/" + db,
	}
	return u.String()
}

// DriverDSN returns a github.com/go-sql-driver/mysql DSN for database db.
func (m *My) DriverDSN(db string) string {
	c := mysql.NewConfig()
	c.User = m.User
	c.Passwd = m.Password
	c.Net = "tcp"
	c.Addr = fmt.Sprintf("%s:%d", m.Host, m.Port)
	c.DBName = db
	return c.FormatDSN()
}

// Stop stops the server now. It is called automatically at clean-up.
func (m *My) Stop() { m.stop() }

// CreateDatabase creates a new, empty database whose name is derived from
// name (lower-cased, with a unique numeric suffix) and returns its DSN.
func (m *My) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", sanitizeName(name), nextSeq())
	m.Exec(t, "", "CREATE DATABASE `"+db+"` CHARACTER SET utf8mb4")
	return m.DSN(db)
}

// Exec runs SQL statements in database db (may be "") as the privileged
// user, failing t on error.
func (m *My) Exec(t testing.TB, db string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := sql.Open("mysql", m.DriverDSN(db))
	if err != nil {
		t.Fatalf("testsrv: open MariaDB database %s: %v", db, err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("testsrv: MariaDB %s: %q: %v", db, s, err)
		}
	}
}

var sharedMy struct {
	once sync.Once
	my   *My
	err  error
}

// MariaDB returns the MariaDB server shared by all tests of this binary,
// starting it on first use. Call Cleanup from TestMain to stop it.
func MariaDB(t testing.TB) *My {
	t.Helper()
	sharedMy.once.Do(func() {
		sharedMy.my, sharedMy.err = startMariaDB(MariaDBOptions{})
	})
	if sharedMy.err != nil {
		fail(t, sharedMy.err)
	}
	return sharedMy.my
}

// NewMariaDB starts a MariaDB server of t's own (for example a replication
// primary or replica); it stops when t ends.
func NewMariaDB(t testing.TB, opts MariaDBOptions) *My {
	t.Helper()
	my, err := startMariaDB(opts)
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(my.stop)
	return my
}

func startMariaDB(opts MariaDBOptions) (my *My, err error) {
	missing := &MissingError{What: "MariaDB (mariadbd, mariadb-install-db)", Hint: "apt-get install mariadb-server mariadb-client"}
	server, err := lookPath("mariadbd", "/usr/sbin", "/usr/local/sbin")
	if err != nil {
		return nil, missing
	}
	install, err := lookPath("mariadb-install-db", "/usr/bin", "/usr/local/bin")
	if err != nil {
		return nil, missing
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	osUser := "root"
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	dir, err := makeTempDir("mariadb")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	m := &My{Host: "127.0.0.1", User: "snapdata", Password: randomHex(16), Dir: dir,
		ServerID: opts.ServerID, binDir: filepath.Dir(server)}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("start MariaDB: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	// Its own tmpdir: the bootstrap's temporary tables in the shared /tmp
	// once vanished under a concurrent test run ("Error on delete of
	// '/tmp/#sql-temptable-….MAI'").
	cmd := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+m.DataDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--user="+osUser, "--tmpdir="+filepath.Join(dir, "tmp"))
	cmd.Dir = dir
	if err := runLogged(ctx, cmd, filepath.Join(dir, "install.log")); err != nil {
		return nil, fmt.Errorf("start MariaDB: mariadb-install-db: %w", err)
	}
	initSQL := ""
	for _, host := range []string{"%", "localhost"} {
		initSQL += fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n", m.User, host, m.Password)
		initSQL += fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION;\n", m.User, host)
	}
	initFile := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initFile, []byte(initSQL), 0o600); err != nil {
		return nil, fmt.Errorf("start MariaDB: %w", err)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		m.Port = port
		args := []string{
			"--no-defaults",
			"--datadir=" + m.DataDir(),
			"--socket=" + m.Socket(),
			"--port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--pid-file=" + filepath.Join(dir, "mariadb.pid"),
			"--tmpdir=" + filepath.Join(dir, "tmp"),
			"--user=" + osUser,
			"--init-file=" + initFile,
			"--skip-name-resolve",
			"--server-id=" + strconv.Itoa(opts.ServerID),
			"--character-set-server=utf8mb4",
			"--collation-server=utf8mb4_general_ci",
			"--innodb-buffer-pool-size=64M",
			"--innodb-log-file-size=48M",
			"--innodb-flush-log-at-trx-commit=2",
			"--innodb-doublewrite=0",
			"--skip-innodb-use-native-aio",
			"--max-connections=200",
		}
		if opts.LogBin {
			args = append(args, "--log-bin="+filepath.Join(dir, "binlog"), "--binlog-format=ROW", "--sync-binlog=0")
		}
		if opts.TLS {
			cert, key, err := writeSelfSignedCert(dir, nil)
			if err != nil {
				return nil, fmt.Errorf("start MariaDB: %w", err)
			}
			args = append(args, "--ssl-cert="+cert, "--ssl-key="+key)
		}
		args = append(args, opts.Args...)
		cmd := exec.Command(server, args...)
		cmd.Dir = dir
		pr, err := startProc("MariaDB", cmd, m.LogPath(), syscall.SIGTERM)
		if err != nil {
			return nil, err
		}
		err = pr.waitReady(func(ctx context.Context) error {
			db, err := sql.Open("mysql", m.DriverDSN(""))
			if err != nil {
				return err
			}
			defer db.Close()
			return db.PingContext(ctx)
		})
		if err == nil {
			m.stop = register(func() {
				pr.stop()
				_ = os.RemoveAll(dir)
			})
			return m, nil
		}
		died := pr.exited()
		pr.stop()
		lastErr = err
		if !died {
			break
		}
	}
	return nil, fmt.Errorf("start MariaDB: %w", lastErr)
}
