package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// grant is one privilege on the backed-up database, one of its tables or
// one column, as information_schema reports it. Accounts are server-wide in
// MySQL, so only these database-scoped grants belong to a database's backup;
// the accounts themselves (and their passwords) do not.
type grant struct {
	Grantee   string `json:"grantee"` // 'user'@'host', as information_schema writes it
	Table     string `json:"table,omitempty"`
	Column    string `json:"column,omitempty"`
	Privilege string `json:"privilege"`
	Grantable bool   `json:"grantable,omitempty"`
	// A grant on a stored routine: its name and PROCEDURE or FUNCTION.
	Routine     string `json:"routine,omitempty"`
	RoutineType string `json:"routine_type,omitempty"`
}

// captureGrants reads the grants on database name. information_schema shows
// every account's grants to a user with SELECT on the mysql schema, and only
// the user's own otherwise. Grants on routines come from mysql.procs_priv
// (no information_schema view has them), readable with SELECT on the mysql
// schema; without it they are left out, like other accounts' grants. Grants
// on wildcard database patterns (GRANT … ON `app\_%`.*) are not included:
// they belong to no one database.
func captureGrants(ctx context.Context, q querier, name string) ([]grant, error) {
	var out []grant
	for _, src := range []struct{ query, what string }{
		{"SELECT GRANTEE, '', '', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = ?", "database"},
		{"SELECT GRANTEE, TABLE_NAME, '', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ?", "table"},
		{"SELECT GRANTEE, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = ?", "column"},
	} {
		rows, err := names(ctx, q, src.query, name)
		if err != nil {
			return nil, fmt.Errorf("reading %s privileges of %s: %w", src.what, name, err)
		}
		for _, r := range rows {
			out = append(out, grant{Grantee: r[0], Table: r[1], Column: r[2], Privilege: r[3], Grantable: r[4] == "YES"})
		}
	}
	rows, err := names(ctx, q, "SELECT User, Host, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv WHERE Db = ?", name)
	switch {
	case err == nil:
		out = append(out, routineGrants(rows)...)
	case !isPrivilegeError(err) && mysqlErr(err) != 1146: // 1146: no such table
		return nil, fmt.Errorf("reading routine privileges of %s: %w", name, err)
	}
	slices.SortFunc(out, func(a, b grant) int {
		return cmp.Or(cmp.Compare(a.Grantee, b.Grantee), cmp.Compare(a.RoutineType, b.RoutineType), cmp.Compare(a.Routine, b.Routine),
			cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Privilege, b.Privilege))
	})
	return out, nil
}

// routineGrants turns mysql.procs_priv rows (user, host, routine, type,
// privileges as a SET such as "Execute,Alter Routine,Grant") into grants.
func routineGrants(rows [][]string) []grant {
	var out []grant
	for _, r := range rows {
		grantee := "'" + r[0] + "'@'" + r[1] + "'"
		privs := strings.Split(r[4], ",")
		grantable := slices.Contains(privs, "Grant")
		for _, p := range privs {
			if p == "" || p == "Grant" {
				continue
			}
			out = append(out, grant{Grantee: grantee, Routine: r[2], RoutineType: strings.ToUpper(r[3]),
				Privilege: strings.ToUpper(p), Grantable: grantable})
		}
	}
	return out
}

// quoteGrantee re-quotes an information_schema grantee ('user'@'host') for
// a GRANT statement, so a name cannot break out of its quotes.
func quoteGrantee(g string) (string, error) {
	i := strings.LastIndex(g, "'@'")
	if !strings.HasPrefix(g, "'") || !strings.HasSuffix(g, "'") || i <= 0 {
		return "", fmt.Errorf("unexpected grantee %q", g)
	}
	return quoteString(g[1:i]) + "@" + quoteString(g[i+3:len(g)-1]), nil
}

// grantStatements turns grants into GRANT statements on database db, one per
// grantee, object and grant option; column privileges are grouped per
// privilege. With tables set, only grants on those tables are kept (a
// --table restore does not touch the database's own grants).
func grantStatements(grants []grant, db string, tables map[string]bool) ([]string, error) {
	type key struct {
		grantee, table       string
		routine, routineType string
		grantable            bool
	}
	type entry struct {
		privs []string
		cols  map[string][]string // privilege -> quoted columns
	}
	entries := map[key]*entry{}
	var keys []key
	for _, g := range grants {
		if len(tables) > 0 && (g.Table == "" || !tables[g.Table]) {
			continue
		}
		if g.Routine != "" && g.RoutineType != "PROCEDURE" && g.RoutineType != "FUNCTION" {
			return nil, fmt.Errorf("grant on routine %s: unexpected routine type %q", g.Routine, g.RoutineType)
		}
		k := key{g.Grantee, g.Table, g.Routine, g.RoutineType, g.Grantable}
		e := entries[k]
		if e == nil {
			e = &entry{cols: map[string][]string{}}
			entries[k] = e
			keys = append(keys, k)
		}
		if g.Column != "" {
			e.cols[g.Privilege] = append(e.cols[g.Privilege], quoteIdent(g.Column))
		} else {
			e.privs = append(e.privs, g.Privilege)
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.grantee, b.grantee), cmp.Compare(a.routineType, b.routineType), cmp.Compare(a.routine, b.routine),
			cmp.Compare(a.table, b.table), boolOrder(a.grantable, b.grantable))
	})
	var out []string
	for _, k := range keys {
		e := entries[k]
		list := append([]string{}, e.privs...)
		var withCols []string
		for p := range e.cols {
			withCols = append(withCols, p)
		}
		slices.Sort(withCols)
		for _, p := range withCols {
			list = append(list, p+" ("+strings.Join(e.cols[p], ", ")+")")
		}
		to, err := quoteGrantee(k.grantee)
		if err != nil {
			return nil, err
		}
		on := quoteIdent(db) + ".*"
		switch {
		case k.routine != "":
			on = k.routineType + " " + quoteIdent(db) + "." + quoteIdent(k.routine)
		case k.table != "":
			on = quoteIdent(db) + "." + quoteIdent(k.table)
		}
		s := "GRANT " + strings.Join(list, ", ") + " ON " + on + " TO " + to
		if k.grantable {
			s += " WITH GRANT OPTION"
		}
		out = append(out, s)
	}
	return out, nil
}

// restoreGrants applies the snapshot's grants to database db. An account
// that does not exist on the target server, or a restoring user without
// the GRANT OPTION, is a warning naming the statement: the data is restored,
// and the grants can be applied by hand.
func restoreGrants(ctx context.Context, db *sql.DB, grants []grant, name string, tables map[string]bool, log *slog.Logger) error {
	stmts, err := grantStatements(grants, name, tables)
	if err != nil || len(stmts) == 0 {
		return err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("restoring grants: %w", err)
	}
	defer c.Close()
	// A GRANT must never create an account (without a password) that the
	// target lacks. MariaDB does that unless NO_AUTO_CREATE_USER is set;
	// MySQL 8 never does and has no such mode, so an error here is fine.
	_, _ = c.ExecContext(ctx, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_CREATE_USER')")
	for _, s := range stmts {
		_, err := c.ExecContext(ctx, s)
		switch {
		case err == nil:
		case mysqlErr(err) == 1133 || mysqlErr(err) == 1410 || isPrivilegeError(err):
			log.Warn("grant not restored (the account is server-wide: create it on the target, or use --no-privileges)", "statement", s, "error", err)
		default:
			return fmt.Errorf("restoring grant (%s): %w", s, err)
		}
	}
	return nil
}

// boolOrder orders false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
