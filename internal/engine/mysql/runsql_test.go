package mysql

import (
	"strings"
	"testing"

	"github.com/snapdata/snapdata/internal/testsrv"
)

func TestRunSQL(t *testing.T) {
	my := testsrv.MariaDB(t)
	ctx := ctxT(t)
	e := New()
	_, target := newDB(t, my, "runsql")
	good := "# a hook\n" + `CREATE TABLE settings (k varchar(20) PRIMARY KEY, v varchar(40));
INSERT INTO settings VALUES ('a;b', 'it''s; fine'), ("c", 'back\';slash'), (` + "`" + `x` + "`" + `, 'q') ON DUPLICATE KEY UPDATE v = v;
-- a comment; with a semicolon
/* a block; comment */
DELIMITER //
CREATE PROCEDURE put(IN k varchar(20))
BEGIN
  INSERT INTO settings VALUES (k, 'from; procedure');
  UPDATE settings SET v = 'bumped' WHERE settings.k = 'c';
END//
DELIMITER ;
CALL put('p');
SET @n = 3;
INSERT INTO settings VALUES ('n', @n)`
	err := e.RunSQL(ctx, target, "good.sql", strings.NewReader(good))
	if err == nil || !strings.Contains(err.Error(), "good.sql:3: ERROR 1054") {
		t.Fatalf("RunSQL with an unknown column x = %v, want good.sql:3: ERROR 1054", err)
	}
	// CREATE TABLE committed implicitly before the failure (MySQL DDL).
	good = strings.Replace(good, "(`x`, 'q')", "('x', 'q')", 1)
	my.Exec(t, target.Database(), "DROP TABLE settings")
	if err := e.RunSQL(ctx, target, "good.sql", strings.NewReader(good)); err != nil {
		t.Fatalf("RunSQL: %v", err)
	}
	c := session(t, ctx, target)
	var got string
	if err := c.QueryRowContext(ctx, "SELECT GROUP_CONCAT(CONCAT(k, '=', v) ORDER BY k SEPARATOR '|') FROM settings").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "a;b=it's; fine|c=bumped|n=3|p=from; procedure|x=q"; got != want {
		t.Errorf("settings = %q, want %q", got, want)
	}

	tests := []struct {
		name, script, want string
	}{
		{"third statement fails on line 7", `-- line 1
UPDATE settings SET v = 'changed' WHERE k = 'x';
INSERT INTO settings VALUES ('new', 'row');

/* line 5 */
# line 6
INSERT INTO settings VALUES ('x', 'duplicate');
INSERT INTO settings VALUES ('after', 'row');`, "fail.sql:7: ERROR 1062 (23000): Duplicate entry 'x' for key 'PRIMARY'"},
		{"syntax error inside a statement", "UPDATE settings SET v = 'changed' WHERE k = 'x';\nSELECT 1,\n  2,\n  FROM nowhere;", "fail.sql:4: ERROR 1064 (42000)"},
		{"unterminated quote", "UPDATE settings SET v = 'changed' WHERE k = 'x';\nSELECT `abc", "fail.sql: line 2: unterminated quoted name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.RunSQL(ctx, target, "fail.sql", strings.NewReader(tt.script))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RunSQL = %v, want an error containing %q", err, tt.want)
			}
			// Row changes before the failure were rolled back.
			var v string
			var n int
			if err := c.QueryRowContext(ctx, "SELECT v, (SELECT count(*) FROM settings) FROM settings WHERE k = 'x'").Scan(&v, &n); err != nil || v != "q" || n != 5 {
				t.Errorf("after the failed script: x=%q, %d rows, %v; want q, 5 rows", v, n, err)
			}
		})
	}
}
