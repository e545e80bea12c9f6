package testsrv

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PGOptions configures a PostgreSQL server started by NewPostgres.
type PGOptions struct {
	// Settings are extra server settings passed as -c name=value, e.g.
	// {"wal_level": "logical", "max_wal_senders": "5"}.
	Settings map[string]string
	// HBA lines are appended to pg_hba.conf (the default allows the
	// superuser over TCP from 127.0.0.1 with scram-sha-256, including
	// replication connections).
	HBA []string
	// TLS turns ssl on with a self-signed certificate for 127.0.0.1;
	// clients may use sslmode=require (the certificate is not trusted,
	// so not verify-ca).
	TLS bool
	// Major picks the server's major version (e.g. 12 or 17); 0 means the
	// newest installed. A major that Debian's packages do not provide here
	// comes from the binary cache, where scripts/install-deps puts the
	// server programs of the majors that the version tests use
	// (OtherPostgresMajors).
	Major int
}

// OtherPostgresMajors are the PostgreSQL majors besides Debian's that
// scripts/install-deps fetches into the binary cache (the server programs
// only: initdb and postgres; the client programs, pg_dump and psql, are
// Debian's). Keep the two lists in step.
var OtherPostgresMajors = []int{12, 13, 14, 16, 17}

// PG is a running PostgreSQL server.
type PG struct {
	Host     string // always 127.0.0.1
	Port     int
	User     string // a superuser
	Password string
	Dir      string // temporary directory with data/, the socket and the log

	binDir string
	major  int
	stop   func()
}

// BinDir is the directory holding the client programs (pg_dump, psql, ...):
// those of the server's own version for Debian's server, else the newest
// installed (whose pg_dump dumps only servers up to its own major).
func (p *PG) BinDir() string { return p.binDir }

// Major is the server's major version.
func (p *PG) Major() int { return p.major }

// SocketDir is the directory of the server's unix socket.
func (p *PG) SocketDir() string { return filepath.Join(p.Dir, "sock") }

// DataDir is the cluster's data directory.
func (p *PG) DataDir() string { return filepath.Join(p.Dir, "data") }

// LogPath is the server log file.
func (p *PG) LogPath() string { return filepath.Join(p.Dir, "postgres.log") }

// DSN returns a URL for database db: postgres://user:pass@127.0.0.1:port/db?sslmode=disable.
func (p *PG) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop stops the server now. It is called automatically at clean-up.
func (p *PG) Stop() { p.stop() }

// CreateDatabase creates a new, empty database whose name is derived from
// name (lower-cased, with a unique numeric suffix) and returns its DSN.
func (p *PG) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", sanitizeName(name), nextSeq())
	p.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	return p.DSN(db)
}

// Exec runs SQL statements in database db as the superuser, failing t on error.
func (p *PG) Exec(t testing.TB, db string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN(db))
	if err != nil {
		t.Fatalf("testsrv: connect to PostgreSQL database %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("testsrv: PostgreSQL %s: %q: %v", db, s, err)
		}
	}
}

var sharedPG struct {
	once sync.Once
	pg   *PG
	err  error
}

// Postgres returns the PostgreSQL server shared by all tests of this binary,
// starting it on first use. Call Cleanup from TestMain to stop it.
func Postgres(t testing.TB) *PG {
	t.Helper()
	sharedPG.once.Do(func() {
		sharedPG.pg, sharedPG.err = startPostgres(PGOptions{})
	})
	if sharedPG.err != nil {
		fail(t, sharedPG.err)
	}
	return sharedPG.pg
}

// NewPostgres starts a PostgreSQL server of t's own; it stops when t ends.
func NewPostgres(t testing.TB, opts PGOptions) *PG {
	t.Helper()
	pg, err := startPostgres(opts)
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(pg.stop)
	return pg
}

// PostgresBinDir finds the directory of PostgreSQL's server programs: the
// newest /usr/lib/postgresql/*/bin, else the directory of initdb in PATH.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", &MissingError{What: "PostgreSQL (initdb)", Hint: "apt-get install postgresql"}
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return filepath.Dir(p), nil
}

// postgresMajorBinDir finds the server programs of one major version:
// Debian's /usr/lib/postgresql/N/bin, else N/bin under the binary cache's
// postgresql directory (scripts/install-deps).
func postgresMajorBinDir(major int) (string, error) {
	dirs := []string{fmt.Sprintf("/usr/lib/postgresql/%d/bin", major)}
	if c := BinCache(); c != "" {
		dirs = append(dirs, filepath.Join(c, "postgresql", strconv.Itoa(major), "bin"))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", &MissingError{What: fmt.Sprintf("PostgreSQL %d (postgres, in %s)", major, strings.Join(dirs, " or ")),
		Hint: "scripts/install-deps fetches the majors of the version tests into the binary cache"}
}

// serverMajor reads the major version that a directory's postgres reports.
func serverMajor(ctx context.Context, binDir string) (int, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s/postgres --version: %w", binDir, err)
	}
	// "postgres (PostgreSQL) 17.10"
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s/postgres --version printed %q", binDir, out)
	}
	v := f[len(f)-1]
	if i := strings.IndexByte(v, '.'); i > 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s/postgres --version printed %q", binDir, out)
	}
	return n, nil
}

// linkTree recreates the tree src at dst (which must not exist) with hard
// links to src's files (copies where the file system refuses links) and the
// same symlinks; directories are readable by everyone.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			if err := os.Link(path, to); err == nil {
				return nil
			}
			return copyFile(path, to)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// pgCredential returns the OS user to run PostgreSQL as: PostgreSQL refuses
// to run as root, so as root it runs as "postgres" (or "nobody").
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, fmt.Errorf("running as root, but there is no 'postgres' or 'nobody' user to run PostgreSQL as")
}

func startPostgres(opts PGOptions) (pg *PG, err error) {
	clientDir, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	binDir := clientDir
	if opts.Major != 0 {
		if binDir, err = postgresMajorBinDir(opts.Major); err != nil {
			return nil, err
		}
	}
	vctx, vcancel := context.WithTimeout(context.Background(), startTimeout)
	major, err := serverMajor(vctx, binDir)
	vcancel()
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	if opts.Major != 0 && major != opts.Major {
		return nil, fmt.Errorf("start PostgreSQL %d: %s/postgres is PostgreSQL %d", opts.Major, binDir, major)
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("pg")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil && opts.Major != 0 && !strings.HasPrefix(binDir, "/usr/") {
		// The binary cache may sit in root's home, which the server's
		// user cannot enter: give the server its own hard-linked tree.
		tree := filepath.Join(dir, "install")
		if err := linkTree(filepath.Dir(binDir), tree); err != nil {
			return nil, fmt.Errorf("start PostgreSQL %d: %w", opts.Major, err)
		}
		binDir = filepath.Join(tree, "bin")
	}
	p := &PG{Host: "127.0.0.1", User: "snapdata", Password: randomHex(16), Dir: dir, binDir: clientDir, major: major}
	for _, d := range []string{p.DataDir(), p.SocketDir()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
	}
	pwFile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	if cred != nil {
		for _, f := range []string{p.DataDir(), p.SocketDir(), pwFile} {
			if err := os.Chown(f, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("start PostgreSQL: %w", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	initLog := filepath.Join(dir, "initdb.log")
	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", p.DataDir(), "-U", p.User, "--pwfile="+pwFile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if err := runLogged(ctx, initdb, initLog); err != nil {
		return nil, fmt.Errorf("start PostgreSQL: initdb: %w", err)
	}
	_ = os.Remove(pwFile)
	var tlsSettings map[string]string
	if opts.TLS {
		cert, key, err := writeSelfSignedCert(p.DataDir(), cred)
		if err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
		tlsSettings = map[string]string{"ssl": "on", "ssl_cert_file": cert, "ssl_key_file": key}
	}
	if len(opts.HBA) > 0 {
		f, err := os.OpenFile(filepath.Join(p.DataDir(), "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
		for _, l := range opts.HBA {
			fmt.Fprintln(f, l)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		p.Port = port
		settings := map[string]string{
			"listen_addresses":        "127.0.0.1",
			"port":                    strconv.Itoa(port),
			"unix_socket_directories": p.SocketDir(),
			"fsync":                   "off",
			"synchronous_commit":      "off",
			"full_page_writes":        "off",
			"shared_buffers":          "32MB",
			"max_connections":         "100",
			"logging_collector":       "off",
			"log_min_messages":        "warning",
		}
		for k, v := range tlsSettings {
			settings[k] = v
		}
		for k, v := range opts.Settings {
			settings[k] = v
		}
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		args := []string{"-D", p.DataDir()}
		for _, k := range keys {
			args = append(args, "-c", k+"="+settings[k])
		}
		cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		// SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients.
		pr, err := startProc("PostgreSQL", cmd, p.LogPath(), syscall.SIGINT)
		if err != nil {
			return nil, err
		}
		err = pr.waitReady(func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, p.DSN("postgres"))
			if err != nil {
				return err
			}
			return conn.Close(ctx)
		})
		if err == nil {
			p.stop = register(func() {
				pr.stop()
				_ = os.RemoveAll(dir)
			})
			return p, nil
		}
		died := pr.exited()
		pr.stop()
		lastErr = err
		if !died {
			break
		}
		// The process died, perhaps because another process took the
		// port; try another one.
	}
	return nil, fmt.Errorf("start PostgreSQL: %w", lastErr)
}
