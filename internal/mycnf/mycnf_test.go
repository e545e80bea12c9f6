package mycnf

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "extra.cnf", "[client]\nport = 3310\n")
	p := write(t, dir, "my.cnf", `# a comment
; another
[mysqld]
password = server-side-not-used
user = mysql

[client]
user = app_user   # trailing comment
password = "p#ss \"word\""
host=db.example
socket = /run/x.sock
loose_port = 3307
!include extra.cnf

[mysqldump]
password = 'dump\tpass'
[mysql]
password = mysql-only-not-read
`)
	o, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{User: "app_user", Password: "dump\tpass", Host: "db.example", Socket: "/run/x.sock", Port: 3310,
		HasUser: true, HasPassword: true, HasHost: true, HasPort: true, HasSocket: true}
	if o != want {
		t.Errorf("ReadFile = %+v\nwant %+v", o, want)
	}
}

// TestMalformed: each error names the file and the line, and never the
// line's text (it may be a password).
func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"nogroup", "password = s3cret-value\n", 1, "before any [group]"},
		{"unclosed", "[client]\nuser = a\n[client\n", 3, "lacks its closing ]"},
		{"quote", "[client]\npassword = \"s3cret-value\n", 2, "closing quote"},
		{"after", "[client]\n\npassword = \"s3cret\"-value\n", 3, "after the quoted value"},
		{"port", "[client]\nport = many\n", 2, "not a port number"},
		{"key", "[client]\ns3cret value\n", 2, "expected key = value"},
		{"directive", "[client]\n!frobnicate x\n", 2, "unknown directive"},
	} {
		p := write(t, dir, c.name+".cnf", c.text)
		_, err := ReadFile(p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, p) || !strings.Contains(msg, "line "+strconv.Itoa(c.line)+":") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the file, line %d and %q", c.name, msg, c.line, c.want)
		}
		if strings.Contains(msg, "s3cret") {
			t.Errorf("%s: the error shows the line's text", c.name)
		}
	}
	p := write(t, dir, "open.cnf", "[client]\npassword = x\n")
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "world-writable") {
		t.Errorf("a world-writable option file: %v", err)
	}
}

// TestPrecedence: the DSN's password over MYSQL_PWD over the option file;
// user, host and port from the file only where the DSN has none.
func TestPrecedence(t *testing.T) {
	home := t.TempDir()
	write(t, home, ".my.cnf", "[client]\nuser = file_user\npassword = file-pw\nhost = file-host\nport = 3333\n")
	other := write(t, t.TempDir(), "other.cnf", "[client]\npassword = other-file-pw\n")
	for _, c := range []struct {
		dsn, env                   string
		user, pw, from, host, port string
	}{
		{"mysql://u:dsn-pw@h:1/db", "env-pw", "u", "dsn-pw", "dsn", "h", "1"},
		{"mysql://u:@h/db", "env-pw", "u", "", "dsn", "h", "3333"},
		{"mysql://u@h/db", "env-pw", "u", "env-pw", "MYSQL_PWD", "h", "3333"},
		{"mysql://u@h/db", "", "u", "file-pw", filepath.Join(home, ".my.cnf"), "h", "3333"},
		{"mysql://h/db", "", "file_user", "file-pw", filepath.Join(home, ".my.cnf"), "h", "3333"},
		{"mysql://u@h/db?defaults-file=" + other, "", "u", "other-file-pw", other, "h", ""},
		{"mysql://u@h/db?defaults_file=" + other, "env-pw", "u", "env-pw", "MYSQL_PWD", "h", ""},
	} {
		d, err := dsn.Parse(c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"HOME": home, EnvPassword: c.env}
		cr, err := Resolve(d, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if cr.User != c.user || cr.Password != c.pw || cr.PasswordFrom != c.from || cr.Host != c.host || cr.Port != c.port {
			t.Errorf("%s with MYSQL_PWD=%q: got user %q, password from %q (%v), host %q, port %q; want %q, %q, %q, %q",
				d, c.env, cr.User, cr.PasswordFrom, cr.Password == c.pw, cr.Host, cr.Port, c.user, c.from, c.host, c.port)
		}
	}
	d, _ := dsn.Parse("mysql://u@h/db?defaults-file=/no/such/file.cnf")
	if _, err := Resolve(d, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "/no/such/file.cnf") {
		t.Errorf("a missing defaults-file: %v", err)
	}
}
