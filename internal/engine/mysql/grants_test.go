package mysql

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/testsrv"
)

func showGrants(t *testing.T, my *testsrv.My, account string) string {
	t.Helper()
	db, err := open(ctxT(t), mustDSN(t, my.DSN("")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := names(ctxT(t), db, "SHOW GRANTS FOR "+account)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r[0] + "\n")
	}
	return b.String()
}

// Grants on the database, a table, columns and routines are captured,
// restored onto the target database's name, skipped with --no-privileges
// and with a warning (not a failure) when the account does not exist on the
// target.
func TestGrantsRoundTrip(t *testing.T) {
	my := testsrv.MariaDB(t)
	e := New()
	name, src := newDB(t, my, "grants")
	user := fmt.Sprintf("reader_%d", time.Now().UnixNano()%1e9)
	account := "'" + user + "'@'%'"
	my.Exec(t, name,
		"CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(20), balance INT)",
		"INSERT INTO accounts VALUES (1, 'ann', 10)",
		"CREATE USER "+account+" IDENTIFIED BY 'pw'",
		"GRANT SELECT, SHOW VIEW ON `"+name+"`.* TO "+account,
		"GRANT INSERT ON `"+name+"`.accounts TO "+account+" WITH GRANT OPTION",
		"GRANT UPDATE (owner, balance), SELECT (id) ON `"+name+"`.accounts TO "+account,
		"CREATE PROCEDURE close_account(IN a INT) UPDATE accounts SET balance = 0 WHERE id = a",
		"CREATE FUNCTION total() RETURNS INT READS SQL DATA RETURN (SELECT SUM(balance) FROM accounts)",
		"GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE `"+name+"`.close_account TO "+account,
		"GRANT EXECUTE ON FUNCTION `"+name+"`.total TO "+account+" WITH GRANT OPTION",
	)
	t.Cleanup(func() { my.Exec(t, "", "DROP USER IF EXISTS "+account) })
	mem, _ := backup(t, e, src, 1)

	target := restoreInto(t, e, my, mem, "grants_restored", engine.RestoreOptions{})
	// SHOW GRANTS for the restored database equals that of the source,
	// database name aside.
	onDB := func(all, db string) []string {
		var out []string
		for _, line := range strings.Split(all, "\n") {
			if strings.Contains(line, "`"+db+"`") {
				out = append(out, strings.ReplaceAll(line, "`"+db+"`", "`DB`"))
			}
		}
		sort.Strings(out)
		return out
	}
	all := showGrants(t, my, account)
	want, got := onDB(all, name), onDB(all, target.Database())
	if len(want) != 4 || strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("grants on the source:\n%s\ngrants on the restored database:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}

	plain := restoreInto(t, e, my, mem, "grants_noprivs", engine.RestoreOptions{NoPrivileges: true})
	if got := showGrants(t, my, account); strings.Contains(got, "`"+plain.Database()+"`") {
		t.Errorf("--no-privileges restored grants:\n%s", got)
	}

	// The account is gone on the target: the restore succeeds and warns.
	my.Exec(t, "", "DROP USER "+account)
	var logs bytes.Buffer
	gone := mustDSN(t, my.DSN(fmt.Sprintf("grants_gone_%d", time.Now().UnixNano()%1e9)))
	err := e.Restore(context.Background(), mem, gone, engine.RestoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("restore with a missing account: %v", err)
	}
	if !strings.Contains(logs.String(), "grant not restored") || !strings.Contains(logs.String(), user) {
		t.Errorf("no warning naming the missing account:\n%s", logs.String())
	}
	db, err := open(ctxT(t), mustDSN(t, my.DSN("")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = ?", user).Scan(&n); err != nil || n != 0 {
		t.Errorf("restoring grants created the missing account (%d rows, %v)", n, err)
	}
}

func TestGrantStatements(t *testing.T) {
	grants := []grant{
		{Grantee: "'a'@'%'", Privilege: "SELECT"},
		{Grantee: "'a'@'%'", Table: "t", Privilege: "INSERT", Grantable: true},
		{Grantee: "'a'@'%'", Table: "t", Column: "x", Privilege: "UPDATE"},
		{Grantee: "'o'b'@'h'", Table: "u", Privilege: "DELETE"},
		{Grantee: "'a'@'%'", Routine: "p", RoutineType: "PROCEDURE", Privilege: "EXECUTE"},
		{Grantee: "'a'@'%'", Routine: "p", RoutineType: "PROCEDURE", Privilege: "ALTER ROUTINE"},
		{Grantee: "'a'@'%'", Routine: "f", RoutineType: "FUNCTION", Privilege: "EXECUTE", Grantable: true},
	}
	got, err := grantStatements(grants, "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GRANT SELECT ON `d`.* TO 'a'@'%'",
		"GRANT UPDATE (`x`) ON `d`.`t` TO 'a'@'%'",
		"GRANT INSERT ON `d`.`t` TO 'a'@'%' WITH GRANT OPTION",
		"GRANT EXECUTE ON FUNCTION `d`.`f` TO 'a'@'%' WITH GRANT OPTION",
		"GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE `d`.`p` TO 'a'@'%'",
		"GRANT DELETE ON `d`.`u` TO 'o''b'@'h'",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	only, _ := grantStatements(grants, "d", map[string]bool{"u": true})
	if len(only) != 1 || !strings.Contains(only[0], "`d`.`u`") {
		t.Errorf("--table u: %v", only)
	}
	if _, err := grantStatements([]grant{{Grantee: "bogus", Privilege: "SELECT"}}, "d", nil); err == nil {
		t.Error("a malformed grantee was accepted")
	}
	if _, err := grantStatements([]grant{{Grantee: "'a'@'%'", Routine: "r", RoutineType: "EVENT", Privilege: "EXECUTE"}}, "d", nil); err == nil {
		t.Error("a grant on an unknown routine type was accepted")
	}
	rg := routineGrants([][]string{{"a", "%", "p", "PROCEDURE", "Execute,Alter Routine,Grant"}, {"b", "h", "f", "FUNCTION", "Execute"}})
	wantRG := []grant{
		{Grantee: "'a'@'%'", Routine: "p", RoutineType: "PROCEDURE", Privilege: "EXECUTE", Grantable: true},
		{Grantee: "'a'@'%'", Routine: "p", RoutineType: "PROCEDURE", Privilege: "ALTER ROUTINE", Grantable: true},
		{Grantee: "'b'@'h'", Routine: "f", RoutineType: "FUNCTION", Privilege: "EXECUTE"},
	}
	if fmt.Sprint(rg) != fmt.Sprint(wantRG) {
		t.Errorf("routineGrants = %v, want %v", rg, wantRG)
	}
}
