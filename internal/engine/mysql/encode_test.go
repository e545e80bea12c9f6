package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"math/rand"
	"testing"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/rowsum"
	"github.com/snapdata/snapdata/internal/testsrv"
)

// escapeReference is appendEscaped written plainly, byte by byte.
func escapeReference(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case 0:
			dst = append(dst, '\\', '0')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendEscaped agrees with the reference on every length up to 40 around
// every position of each escaped byte, on bytes next to them in value
// (which a wrong word test would confuse), and on random values.
func TestAppendEscaped(t *testing.T) {
	special := []byte{'\\', '\t', '\n', '\r', 0}
	near := []byte{'[', ']', '\b', '\v', '\f', 0x0e, 1, 0x80, 0xff, 0xdc, 0x89, 0x8a, 0x8d, 'a'}
	check := func(v []byte) {
		t.Helper()
		got := appendEscaped([]byte("prefix"), v)
		want := escapeReference([]byte("prefix"), v)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendEscaped(%q) = %q, want %q", v, got, want)
		}
	}
	for n := 0; n <= 40; n++ {
		for _, fill := range near {
			base := bytes.Repeat([]byte{fill}, n)
			check(base)
			for i := 0; i < n; i++ {
				for _, c := range special {
					v := append([]byte(nil), base...)
					v[i] = c
					check(v)
				}
			}
		}
	}
	rng := rand.New(rand.NewSource(1))
	for range 20000 {
		v := make([]byte, rng.Intn(100))
		for i := range v {
			if rng.Intn(10) == 0 {
				v[i] = special[rng.Intn(len(special))]
			} else {
				v[i] = byte(rng.Intn(256))
			}
		}
		check(v)
	}
}

func BenchmarkAppendEscaped(b *testing.B) {
	v := []byte(`{"type": "page_view", "path": "/products/1234/reviews", "referrer": "https://example.com/search?q=blue+shoes", "session": "6f1c2a9e-3b7d-4e0a-9c1f-2d8e5b7a4c3f", "ms": 1234}`)
	dst := make([]byte, 0, 2*len(v))
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		dst = appendEscaped(dst[:0], v)
	}
}

// sqlRows is what scanRows replaced: the rows of query through
// database/sql, each encoded as a stream row.
func sqlRows(ctx context.Context, c *sql.Conn, query string, ncol int) ([]byte, error) {
	rs, err := c.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	raw := make([]sql.RawBytes, max(ncol, 1))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([][]byte, ncol)
	var out []byte
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i := range vals {
			vals[i] = raw[i]
		}
		out = appendRow(out, vals)
	}
	return out, rs.Err()
}

// The driver-level row reader produces the same bytes as database/sql's:
// every table of the rich schema (integers signed and unsigned, BIT, FLOAT
// as DOUBLE, DECIMAL, dates, YEAR, JSON, binary, NULL, empty strings) and of
// Chinook.
func TestDriverRowsMatchDatabaseSQL(t *testing.T) {
	my := testsrv.MariaDB(t)
	ctx := ctxT(t)
	for _, src := range []*dsn.DSN{loadRich(t, my), loadChinook(t, my)} {
		c := session(t, ctx, src)
		if _, err := c.ExecContext(ctx, "SET SESSION character_set_results = binary"); err != nil {
			t.Fatal(err)
		}
		tables, err := loadTables(ctx, c, src.Database(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tables) < 5 {
			t.Fatalf("%s: only %d tables", src.Database(), len(tables))
		}
		for _, tb := range tables {
			var direct []byte
			n1, _, err := scanTable(ctx, c, tb, "", rowsum.XXH3, func(row []byte) error {
				direct = append(direct, row...)
				return nil
			}, nil)
			if err != nil {
				t.Fatalf("%s.%s: %v", src.Database(), tb.Name, err)
			}
			viaSQL, err := sqlRows(ctx, c, tb.selectSQL(""), len(tb.Columns))
			if err != nil {
				t.Fatalf("%s.%s through database/sql: %v", src.Database(), tb.Name, err)
			}
			if !bytes.Equal(direct, viaSQL) || n1 != int64(len(direct)) {
				t.Errorf("%s.%s: %d bytes from the driver (%d counted); %d bytes through database/sql",
					src.Database(), tb.Name, len(direct), n1, len(viaSQL))
			}
		}
	}
}
