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
		{"orders", "is not a DSN: expected sqlite:PATH"},
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
