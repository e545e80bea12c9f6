package dsn

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, engine, database, redacted string
	}{
		{"sqlite:./app.db", SQLite, "app.db", "sqlite:app.db"},
		{"sqlite3:/var/lib/app.db", SQLite, "app.db", "sqlite:/var/lib/app.db"},
		{"sqlite:///abs/app.db", SQLite, "app.db", "sqlite:/abs/app.db"},
		{"postgres://app:s3cret@db:5432/orders?sslmode=disable", Postgres, "orders", "postgres://app:xxxxx@db:5432/orders?sslmode=disable"},
		{"postgresql://app:s3cret@db/orders", Postgres, "orders", "postgresql://app:xxxxx@db/orders"},
		{"postgres://db:5432/", Postgres, "", "postgres://db:5432/"},
		{"mysql://root:s3cret@127.0.0.1:3306/shop", MySQL, "shop", "mysql://root:xxxxx@127.0.0.1:3306/shop"},
		{"mariadb://root:s3cret@127.0.0.1/shop", MySQL, "shop", "mariadb://root:xxxxx@127.0.0.1/shop"},
		{"postgres://app@db/orders?password=s3cret", Postgres, "orders", "postgres://app@db/orders?password=xxxxx"},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if d.Engine != tc.engine || d.Database() != tc.database || d.String() != tc.redacted {
			t.Errorf("Parse(%q) = engine %q, database %q, shown as %q; want %q, %q, %q",
				tc.in, d.Engine, d.Database(), d.String(), tc.engine, tc.database, tc.redacted)
		}
		if strings.Contains(d.SourceName(), "s3cret") {
			t.Errorf("SourceName of %q holds the password: %q", tc.in, d.SourceName())
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sqlite:", "no file path after sqlite:"},
		{"sqlite://", "no file path after sqlite://"},
		{"oracle://scott:s3cret@db/orcl", `unknown scheme "oracle" (expected sqlite, postgres, postgresql, mysql or mariadb)`},
		{"orders", "is not a DSN: it has no scheme:// (expected sqlite:PATH"},
		{"://s3cret@", "is not a DSN"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	d, err := Parse("postgresql://app:s3cret@db:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	o := d.WithDatabase("orders")
	if o.Engine != Postgres || o.Database() != "orders" || o.String() != "postgresql://app:xxxxx@db:5432/orders?sslmode=disable" {
		t.Errorf("WithDatabase: %q (%s, %s)", o.String(), o.Engine, o.Database())
	}
	if d.Database() != "postgres" {
		t.Errorf("WithDatabase changed the original: %s", d.Database())
	}
}

// TestSecretsNeverShown puts a password in every position a DSN can hold
// one and checks that neither String, Redact, SourceName nor a parse error
// shows it, and that the secret fields are blanked, not the password's text
// wherever it occurs (the password "p" must not turn "postgres" into
// "xxxxxostgres").
func TestSecretsNeverShown(t *testing.T) {
	for _, tc := range []struct {
		in, secret, shown string
	}{
		{"postgres://bars:S3cretPW@host/db", "S3cretPW", "postgres://bars:xxxxx@host/db"},
		{"postgres://host/db?user=u&password=P4ssQuery", "P4ssQuery", "postgres://host/db?user=u&password=xxxxx"},
		{"postgres://u@host/db?sslmode=require&sslpassword=SslS3cret", "SslS3cret", "postgres://u@host/db?sslmode=require&sslpassword=xxxxx"},
		{"postgresql://u:2024/Summer!@host:5433/db", "2024/Summer!", "postgresql://u:xxxxx@host:5433/db"},
		{"mysql://u:a/b/c@db.example:3306/shop", "a/b/c", "mysql://u:xxxxx@db.example:3306/shop"},
		{"mariadb://u:pa?ss@host/shop", "pa?ss", "mariadb://u:xxxxx@host/shop"},
		{"postgres://u:12#34@host/db", "12#34", "postgres://u:xxxxx@host/db"},
		{"postgres://u:p@ss/w@rd@host/db", "p@ss/w@rd", "postgres://u:xxxxx@host/db"},
		{"postgres://u:p@host/postgres?sslmode=disable", "p", "postgres://u:xxxxx@host/postgres?sslmode=disable"},
		{"postgres://u:S3%2Fcret@host/db", "S3/cret", "postgres://u:xxxxx@host/db"},
		{"postgres://u:1234@[::1]:5432/db", "1234", "postgres://u:xxxxx@[::1]:5432/db"},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := d.String(); got != tc.shown {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.shown)
		}
		if got := Redact(tc.in); got != tc.shown {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.shown)
		}
		if strings.Contains(d.SourceName(), tc.secret) && len(tc.secret) > 2 {
			t.Errorf("SourceName(%q) = %q holds the password", tc.in, d.SourceName())
		}
		if d.URL.Hostname() == "u" || strings.Contains(d.Database(), "@") {
			t.Errorf("Parse(%q) read host %q, database %q: the password was taken for the host", tc.in, d.URL.Hostname(), d.Database())
		}
	}
}

// TestReservedCharactersInPassword checks that a password holding an
// unencoded '/', '?', '#' or '@' is read as the password (not as host, port
// and path) and reaches the driver unchanged.
func TestReservedCharactersInPassword(t *testing.T) {
	for _, tc := range []struct{ in, user, pass, host, port, db string }{
		{"postgres://u:2024/Summer!@host/db", "u", "2024/Summer!", "host", "", "db"},
		{"postgres://u:2024/Summer!@host", "u", "2024/Summer!", "host", "", ""},
		{"mysql://backup:x/y?z#w@10.0.0.5:3307/shop", "backup", "x/y?z#w", "10.0.0.5", "3307", "shop"},
		{"postgres://u:p@ss/w@rd@host:6432/db?sslmode=disable", "u", "p@ss/w@rd", "host", "6432", "db"},
		// the usual forms are untouched
		{"postgres://u:p%2Fw@host/db?application_name=me@box", "u", "p/w", "host", "", "db"},
		{"postgres://host/db?application_name=me@box", "", "", "host", "", "db"},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		var user, pass string
		if d.URL.User != nil {
			user = d.URL.User.Username()
			pass, _ = d.URL.User.Password()
		}
		if user != tc.user || pass != tc.pass || d.URL.Hostname() != tc.host || d.URL.Port() != tc.port || d.Database() != tc.db {
			t.Errorf("Parse(%q) = user %q password %q host %q port %q database %q; want %q %q %q %q %q",
				tc.in, user, pass, d.URL.Hostname(), d.URL.Port(), d.Database(), tc.user, tc.pass, tc.host, tc.port, tc.db)
		}
		// Raw is what drivers get: it must parse back to the same password.
		back, err := Parse(d.Raw)
		if err != nil {
			t.Errorf("Parse(Raw of %q): %v", tc.in, err)
			continue
		}
		if p, _ := back.Password(); p != tc.pass {
			t.Errorf("Raw of %q carries password %q, want %q", tc.in, p, tc.pass)
		}
	}
}

// TestNotADSNSaysWhy checks that a refused DSN's message says what is
// wrong and never shows the password.
func TestNotADSNSaysWhy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"orders", "has no scheme://"},
		{"u:Hunter2x@host/db", "has no scheme://"},
		{"://u:Hunter2x@host/db", "the scheme before :// is empty"},
		{"postgres://u:Hunter2x@host:port/db", "the port after the host is not a number"},
		{"postgres://u:Hunter2x@host/d%zzb", "%-escape"},
		{"postgres://u:Hunter2x@ho st/db", "host holds a character"},
		{"postgres://u:Hunter2x@host/db\n", "control character"},
		{"redis://u:Hunter2x@host/0", `unknown scheme "redis"`},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "Hunter2x") {
			t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
		}
	}
}

// TestSourceName checks the one normal form of a source's name: schemes,
// default ports, credentials, loopback addresses and sockets of one server
// and database give one name, and names recorded by earlier releases
// normalise to it.
func TestSourceName(t *testing.T) {
	for _, tc := range []struct {
		want string
		ins  []string
	}{
		{"postgres://localhost:5432/orders", []string{
			"postgres://localhost/orders", "postgresql://localhost:5432/orders", "postgres://127.0.0.1/orders",
			"postgres://app:S3cret@127.0.0.1:5432/orders?sslmode=disable", "postgres://[::1]:5432/orders",
			"postgres:///orders", "postgres:///orders?host=/var/run/postgresql",
			"postgres://LOCALHOST/orders", "postgres://app@localhost/?dbname=orders",
			"postgres://u:pw@localhost/orders?password=x&sslpassword=y",
		}},
		{"postgres://db.example:6432/orders", []string{"postgres://db.example:6432/orders", "postgresql://u:2024/Summer!@DB.example:6432/orders"}},
		{"mysql://localhost:3306/shop", []string{
			"mysql://localhost/shop", "mariadb://root:pw@127.0.0.1:3306/shop", "mysql:///shop",
			"mysql://root@/shop?socket=/run/mysqld/mysqld.sock", "mariadb://localhost:3306/shop",
		}},
		{"mysql://localhost:3307/shop", []string{"mysql://127.0.0.1:3307/shop", "mysql://u@:3307/shop?socket=/run/mysqld/other.sock"}},
	} {
		for _, in := range tc.ins {
			d, err := Parse(in)
			if err != nil {
				t.Errorf("Parse(%q): %v", in, err)
				continue
			}
			if got := d.SourceName(); got != tc.want {
				t.Errorf("SourceName(%q) = %q, want %q", in, got, tc.want)
			}
			if got := SourceKey(in); got != tc.want {
				t.Errorf("SourceKey(%q) = %q, want %q", in, got, tc.want)
			}
		}
	}
	if SourceKey("orders") != "orders" {
		t.Errorf("a config name changed: %q", SourceKey("orders"))
	}
	if got := ShowSource("postgres://u:2024/Summer!@host/db"); strings.Contains(got, "Summer") {
		t.Errorf("ShowSource shows an old name's password: %q", got)
	}
}
