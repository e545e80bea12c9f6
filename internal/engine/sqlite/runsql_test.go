package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "copy.db")
	execAll(t, path, "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)")
	target := mustDSN(t, path)
	e := New()
	ctx := context.Background()
	good := `-- a hook; with a semicolon
INSERT INTO settings VALUES ('a;b', 'it''s; fine'), ("c", [not;a;name]);
/* block; comment */
CREATE TABLE log (msg TEXT);
CREATE TRIGGER note AFTER INSERT ON settings BEGIN
  INSERT INTO log VALUES ('added; ' || new.k);
  UPDATE log SET msg = CASE WHEN msg LIKE 'added%' THEN upper(msg) ELSE msg END;
END;
INSERT INTO settings VALUES ('t', ` + "`x;y`" + `)`
	err := e.RunSQL(ctx, target, "good.sql", strings.NewReader(good))
	if err == nil || !strings.Contains(err.Error(), "good.sql:2: ") {
		t.Fatalf("RunSQL with a bracketed column name = %v, want an error at good.sql:2", err)
	}
	good = strings.Replace(good, "[not;a;name]", "'d;e'", 1)
	good = strings.Replace(good, "`x;y`", "'x;y'", 1)
	if err := e.RunSQL(ctx, target, "good.sql", strings.NewReader(good)); err != nil {
		t.Fatalf("RunSQL: %v", err)
	}
	got := fmt.Sprint(query(t, path, "SELECT k, v FROM settings ORDER BY k"), query(t, path, "SELECT msg FROM log"))
	if want := "[[a;b it's; fine] [c d;e] [t x;y]] [[ADDED; T]]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}

	bad := `-- line 1
CREATE TABLE t1 (id INTEGER);
INSERT INTO t1 VALUES (1);

/* line 5 */
-- line 6
INSERT INTO settings VALUES ('a;b', 'duplicate');
INSERT INTO t1 VALUES (2);`
	err = e.RunSQL(ctx, target, "fail.sql", strings.NewReader(bad))
	if err == nil || !strings.Contains(err.Error(), "fail.sql:7: ") || !strings.Contains(err.Error(), "UNIQUE constraint failed: settings.k") {
		t.Fatalf("RunSQL = %v, want fail.sql:7 and the UNIQUE constraint message", err)
	}
	if n := query(t, path, "SELECT count(*) FROM sqlite_master WHERE name = 't1'")[0][0]; n != int64(0) {
		t.Errorf("the failed script left t1 behind")
	}
}
