package mysql_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine/mysql"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestCredentialSources connects to a real server with the password in
// the DSN, MYSQL_PWD, ~/.my.cnf or a ?defaults-file=, right or wrong in
// each place: the DSN's password wins over MYSQL_PWD, which wins over the
// option file, as with the mysql client.
func TestCredentialSources(t *testing.T) {
	my := testsrv.MariaDB(t)
	right, wrong := my.Password, "wrong-pw-6d1e"
	home := t.TempDir()
	t.Setenv("HOME", home)
	other := filepath.Join(t.TempDir(), "other.cnf")
	if err := os.WriteFile(other, []byte("[client]\npassword = "+right+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(pw *string, query string) string {
		u, _ := url.Parse(my.DSN(""))
		u.User = url.User(my.User)
		if pw != nil {
			u.User = url.UserPassword(my.User, *pw)
		}
		u.RawQuery = query
		return u.String()
	}
	type where struct{ dsn, env, file *string }
	for _, c := range []struct {
		name  string
		w     where
		query string
		ok    bool
	}{
		{"dsn right", where{dsn: &right}, "", true},
		{"dsn right over env and file wrong", where{dsn: &right, env: &wrong, file: &wrong}, "", true},
		{"dsn wrong over env and file right", where{dsn: &wrong, env: &right, file: &right}, "", false},
		{"env right", where{env: &right}, "", true},
		{"env right over file wrong", where{env: &right, file: &wrong}, "", true},
		{"env wrong over file right", where{env: &wrong, file: &right}, "", false},
		{"file right", where{file: &right}, "", true},
		{"file wrong", where{file: &wrong}, "", false},
		{"nothing", where{}, "", false},
		{"defaults-file instead of ~/.my.cnf", where{file: &wrong}, "defaults-file=" + url.QueryEscape(other), true},
		{"defaults_file under MYSQL_PWD", where{env: &wrong}, "defaults_file=" + url.QueryEscape(other), false},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			cnf := filepath.Join(home, ".my.cnf")
			os.Remove(cnf)
			if c.w.file != nil {
				if err := os.WriteFile(cnf, []byte("[client]\nuser = nobody_else\npassword = \""+*c.w.file+"\"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := ""
			if c.w.env != nil {
				env = *c.w.env
			}
			t.Setenv("MYSQL_PWD", env)
			d, err := dsn.Parse(base(c.w.dsn, c.query))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = mysql.New().Databases(ctx, d)
			if (err == nil) != c.ok {
				t.Fatalf("connect: %v, want success %v", err, c.ok)
			}
			if err != nil && (strings.Contains(err.Error(), right) || strings.Contains(err.Error(), wrong)) {
				t.Fatal("the connection error shows a password")
			}
		})
	}
	// A malformed option file: the error names the file and the line.
	cnf := filepath.Join(home, ".my.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser = a\npassword = \"unterminated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYSQL_PWD", "")
	d, _ := dsn.Parse(base(nil, ""))
	_, err := mysql.New().Databases(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), cnf+" line 3:") || strings.Contains(err.Error(), "unterminated") {
		t.Errorf("a malformed ~/.my.cnf: %v; want its path and line 3, not the line's text", err)
	}
}
