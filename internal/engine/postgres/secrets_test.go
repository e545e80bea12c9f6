package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/engine/enginetest"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// TestSecretsStayOutOfChildren backs up with a password holding an
// unencoded '/' in the user information, a password= parameter and an
// sslpassword= parameter, through a pg_dump stand-in that records its
// arguments and environment before running the real one. No secret may be
// in pg_dump's argv (any user reads /proc/PID/cmdline); snapdata's own
// secrets (SNAPDATA_PASSWORD, a config's ${VAR}, S3 keys) may not be in
// its environment; sslpassword reaches it in a 0600 service file that is
// gone afterwards; and no error shows a password.
func TestSecretsStayOutOfChildren(t *testing.T) {
	pg := testsrv.Postgres(t)
	ctx := context.Background()
	src := newDB(t, pg, "secrets")
	exec1(t, src, "CREATE TABLE t (x int PRIMARY KEY); INSERT INTO t VALUES (1)")
	const rolePW = "2024/Summer!p"
	exec1(t, src, "CREATE ROLE leaky LOGIN SUPERUSER PASSWORD '"+rolePW+"'")
	t.Cleanup(func() { exec1(t, mustDSN(t, pg.DSN("postgres")), "DROP ROLE IF EXISTS leaky") })

	t.Setenv("SNAPDATA_PASSWORD", "repo-Secret-9")
	t.Setenv("ORDERS_PASSWORD", "config-Secret-9")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3-Secret-9")
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	fake := filepath.Join(dir, "pg_dump")
	script := fmt.Sprintf(`#!/bin/bash
if [ "$1" = --version ]; then exec '%s' --version; fi
{ printf 'ARG %%s\n' "$@"; env | sed 's/^/ENV /'; if [ -n "$PGSERVICEFILE" ]; then stat -c 'MODE %%a' "$PGSERVICEFILE"; sed 's/^/SVC /' "$PGSERVICEFILE"; fi; } >> '%s'
exec '%s' "$@"
`, filepath.Join(pg.BinDir(), "pg_dump"), record, filepath.Join(pg.BinDir(), "pg_dump"))
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	e := New()
	e.PgDump = fake
	db := src.Database()
	hostPort := fmt.Sprintf("%s:%d", pg.Host, pg.Port)
	for _, tc := range []struct {
		name, dsn string
		secrets   []string
	}{
		{"userinfo with an unencoded /", "postgres://leaky:" + rolePW + "@" + hostPort + "/" + db + "?sslmode=disable&sslpassword=SslKey-Secret-9", []string{rolePW, "SslKey-Secret-9"}},
		{"password parameter", "postgresql://" + hostPort + "/" + db + "?user=leaky&password=" + url.QueryEscape(rolePW) + "&sslmode=disable", []string{rolePW}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(record)
			res, err := e.Backup(ctx, mustDSN(t, tc.dsn), engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			if len(res.Tables) != 1 {
				t.Fatalf("backup saw %d tables, want 1", len(res.Tables))
			}
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			var services []string
			for _, line := range strings.Split(string(b), "\n") {
				kind, rest, _ := strings.Cut(line, " ")
				for _, s := range append([]string{"repo-Secret-9", "config-Secret-9", "s3-Secret-9"}, tc.secrets...) {
					if kind == "ARG" && strings.Contains(rest, s) {
						t.Errorf("pg_dump's argv holds a secret: %q", line)
					}
				}
				for _, s := range []string{"repo-Secret-9", "config-Secret-9", "s3-Secret-9"} {
					if kind == "ENV" && strings.Contains(rest, s) {
						t.Errorf("pg_dump's environment holds snapdata's secret: %q", line)
					}
				}
				if kind == "ENV" && strings.HasPrefix(rest, "PGSERVICEFILE=") {
					services = append(services, strings.TrimPrefix(rest, "PGSERVICEFILE="))
				}
				if kind == "MODE" && rest != "600" {
					t.Errorf("the service file has mode %s, want 600", rest)
				}
			}
			if !strings.Contains(string(b), "ENV PGPASSWORD="+rolePW+"\n") {
				t.Errorf("pg_dump did not get the password in PGPASSWORD")
			}
			if strings.Contains(tc.dsn, "sslpassword") {
				if !strings.Contains(string(b), "SVC sslpassword=SslKey-Secret-9\n") || len(services) == 0 {
					t.Errorf("pg_dump did not get sslpassword in a service file:\n%s", b)
				}
			}
			for _, f := range services {
				if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the service file %s is left behind: %v", f, err)
				}
			}
		})
	}

	// A wrong password, a password of one letter that the message's words
	// contain: the error says what failed and shows neither.
	for _, pw := range []string{"wrong/Secret-9", "p"} {
		u := "postgres://leaky:" + pw + "@" + hostPort + "/" + db + "?sslmode=disable&sslpassword=SslKey-Secret-9"
		_, err := e.Backup(ctx, mustDSN(t, u), engine.BackupOptions{Logger: testLogger(t)}, enginetest.NewMemory())
		if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("backup with a wrong password: %v", err)
		}
		if strings.Contains(err.Error(), "wrong/Secret-9") || strings.Contains(err.Error(), "SslKey") || strings.Contains(err.Error(), "xxxxxostgres") ||
			!strings.Contains(err.Error(), "postgres://leaky:xxxxx@") {
			t.Errorf("the error shows a secret or mangles the message: %v", err)
		}
	}
}
