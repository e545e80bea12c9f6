package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestRunSQL(t *testing.T) {
	pg := testsrv.Postgres(t)
	ctx := context.Background()
	e := New()
	target := newDB(t, pg, "runsql")
	good := `-- a hook
CREATE TABLE settings (k text PRIMARY KEY, v text);
INSERT INTO settings VALUES ('a;b', 'it''s; fine'), ('c', E'back\'slash;');
/* a block comment; with /* nested; */ semicolons */
CREATE FUNCTION bump(x int) RETURNS int LANGUAGE plpgsql AS $fn$
BEGIN
  -- a semicolon inside the body; and a $$ inside
  RETURN x + 1;
END
$fn$;
CREATE FUNCTION three() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN bump(1) = 2 THEN 3 ELSE 0 END;
END;
INSERT INTO settings VALUES ('three', three()::text)`
	pg.Exec(t, "postgres", "ALTER DATABASE "+target.Database()+" SET TimeZone = 'Asia/Tokyo'")
	good += ";\nINSERT INTO settings VALUES ('tz', current_setting('TimeZone'))"
	if err := e.RunSQL(ctx, target, "good.sql", strings.NewReader(good)); err != nil {
		t.Fatalf("RunSQL: %v", err)
	}
	c, err := pgx.Connect(ctx, pg.DSN(target.Database()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var got string
	if err := c.QueryRow(ctx, "SELECT string_agg(k || '=' || v, '|' ORDER BY k) FROM settings").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "a;b=it's; fine|c=back'slash;|three=3|tz=Asia/Tokyo"; got != want {
		t.Errorf("settings = %q, want %q", got, want)
	}

	tests := []struct {
		name, script, want string
	}{
		{"third statement fails on line 7", `-- line 1
CREATE TABLE t1 (id int);
INSERT INTO t1 VALUES (1);

/* line 5 */
-- line 6
INSERT INTO t1 VALUES (1 / 0);
INSERT INTO t1 VALUES (2);`, "fail.sql:7: ERROR: division by zero (SQLSTATE 22012)"},
		{"syntax error inside a statement", `CREATE TABLE t1 (id int);
SELECT 1,
  2,
  FROM nowhere;`, `fail.sql:4: ERROR: syntax error at or near "FROM"`},
		{"COPY FROM STDIN", "CREATE TABLE t1 (id int);\n\ncopy t1 (id) from stdin;\n1\n\\.\n", "fail.sql:3: COPY … FROM STDIN reads psql's data lines"},
		{"unterminated string", "CREATE TABLE t1 (id int);\nSELECT 'abc", "fail.sql: line 2: unterminated string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.RunSQL(ctx, target, "fail.sql", strings.NewReader(tt.script))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RunSQL = %v, want an error containing %q", err, tt.want)
			}
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 't1'").Scan(&n); err != nil || n != 0 {
				t.Errorf("the failed script left t1 behind (%d, %v)", n, err)
			}
		})
	}
}
