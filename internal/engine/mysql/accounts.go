package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// FormatAccounts is the format of the globals stream: the server's accounts
// and roles as SHOW CREATE USER and SHOW GRANTS print them.
const FormatAccounts = "mysql-accounts/1"

// account is one account ('user'@'host') or MariaDB role of the server.
type account struct {
	User string `json:"user"`
	Host string `json:"host,omitempty"` // "" for a role
	Role bool   `json:"role,omitempty"`
	// Create is SHOW CREATE USER's statement (with the authentication
	// plugin and the password hash), or CREATE ROLE for a role.
	Create string `json:"create"`
	// Grants are SHOW GRANTS' statements: global, database, table,
	// column and routine privileges, roles granted, the default role.
	Grants []string `json:"grants"`
}

// systemAccount reports the accounts a backup leaves out: the server's own
// (mariadb.sys, mysql.sys, mysql.session, mysql.infoschema, PUBLIC),
// anonymous accounts, and root: every server has its own root, and a
// restore must not hand the source's root password to another server.
func systemAccount(user string) bool {
	return user == "" || user == "root" || user == "PUBLIC" || user == "mariadb.sys" || strings.HasPrefix(user, "mysql.")
}

// accountName is 'user'@'host' (a role: 'role'), for reports.
func (a account) accountName() string {
	if a.Role {
		return quoteString(a.User)
	}
	return quoteString(a.User) + "@" + quoteString(a.Host)
}

// BackupGlobals implements engine.GlobalsBackuper.
func (e *Engine) BackupGlobals(ctx context.Context, server *dsn.DSN, sink engine.Sink, opts engine.GlobalsBackupOptions) (map[string]string, error) {
	log := opts.Logger
	if opts.NoSecrets {
		log.Warn("accounts and grants not stored: the repository is not encrypted, and account definitions (which hold password hashes) are stored in encrypted repositories only")
		return map[string]string{"accounts": "not stored: the repository is not encrypted"}, nil
	}
	none := ""
	db, err := open(ctx, server, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	accts, err := readAccounts(ctx, db)
	if isPrivilegeError(err) {
		log.Warn("accounts and grants not stored: the backup user cannot read mysql.user (it needs SELECT on the mysql schema)")
		return map[string]string{"accounts": "not stored: the backup user cannot read mysql.user (needs SELECT on the mysql schema)"}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSON(ctx, sink, manifest.Stream{Name: engine.GlobalsStream, Kind: manifest.KindMeta, Format: FormatAccounts}, accts); err != nil {
		return nil, err
	}
	roles := 0
	for _, a := range accts {
		if a.Role {
			roles++
		}
	}
	return map[string]string{"accounts": fmt.Sprintf("%d accounts, %d roles, with their grants and password hashes (root and system accounts left out)", len(accts)-roles, roles)}, nil
}

// readAccounts reads every account and role but the system ones.
func readAccounts(ctx context.Context, db *sql.DB) ([]account, error) {
	rows, err := names(ctx, db, "SELECT User, Host, IF(is_role = 'Y', 1, 0) FROM mysql.user ORDER BY User, Host")
	if mysqlErr(err) == 1054 { // MySQL: no is_role column (roles are locked accounts there)
		rows, err = names(ctx, db, "SELECT User, Host, 0 FROM mysql.user ORDER BY User, Host")
	}
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	var out []account
	for _, r := range rows {
		a := account{User: r[0], Host: r[1], Role: r[2] == "1"}
		if systemAccount(a.User) {
			continue
		}
		var grantsFor string
		if a.Role {
			a.Host = ""
			a.Create = "CREATE ROLE " + quoteIdent(a.User)
			grantsFor = quoteIdent(a.User)
		} else {
			grantsFor = quoteIdent(a.User) + "@" + quoteIdent(a.Host)
			if err := db.QueryRowContext(ctx, "SHOW CREATE USER "+grantsFor).Scan(&a.Create); err != nil {
				return nil, fmt.Errorf("reading account %s: %w", a.accountName(), err)
			}
		}
		g, err := names(ctx, db, "SHOW GRANTS FOR "+grantsFor)
		if err != nil {
			return nil, fmt.Errorf("reading grants of %s: %w", a.accountName(), err)
		}
		for _, l := range g {
			a.Grants = append(a.Grants, l[0])
		}
		out = append(out, a)
	}
	return out, nil
}

func readAccountsStream(ctx context.Context, snap engine.SnapshotReader) ([]account, error) {
	for _, st := range snap.Manifest().StreamsOf(manifest.KindMeta) {
		if st.Name != engine.GlobalsStream {
			continue
		}
		if st.Format != FormatAccounts {
			return nil, fmt.Errorf("stream %s: format %q, expected %s", st.Name, st.Format, FormatAccounts)
		}
		r, err := snap.Open(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("opening stream %s: %w", st.Name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("reading stream %s: %w", st.Name, err)
		}
		var out []account
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("decoding stream %s: %w", st.Name, err)
		}
		return out, nil
	}
	return nil, engine.ErrNoGlobals
}

// RestoreGlobals implements engine.GlobalsRestorer: it creates the
// accounts and roles the target server lacks (roles first), then gives
// them their global and database grants, roles and default role. Grants on
// tables, columns and routines are left to the restore of their database,
// whose snapshot carries them (grants.go): the tables do not exist yet. An
// account that exists, the one the restore connects as among them, is left
// as it is. MySQL/MariaDB cannot roll these statements back: an error
// stops the restore and says which accounts were created.
func (e *Engine) RestoreGlobals(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.GlobalsOptions) (*engine.GlobalsReport, error) {
	accts, err := readAccountsStream(ctx, snap)
	if err != nil {
		return nil, err
	}
	none := ""
	db, err := open(ctx, target, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore accounts: %w", err)
	}
	defer c.Close()
	var me string
	if err := c.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&me); err != nil {
		return nil, fmt.Errorf("restore accounts: reading the connecting account: %w", err)
	}
	rows, err := names(ctx, c, "SELECT User, Host FROM mysql.user")
	if err != nil {
		return nil, fmt.Errorf("restore accounts: listing the target's accounts (the user needs SELECT on the mysql schema): %w", err)
	}
	existing := map[[2]string]bool{}
	for _, r := range rows {
		existing[[2]string{r[0], r[1]}] = true
	}
	rep := &engine.GlobalsReport{}
	var create []account
	// Roles first: a user's grants may name them.
	for _, role := range []bool{true, false} {
		for _, a := range accts {
			if a.Role != role {
				continue
			}
			switch {
			case systemAccount(a.User):
				rep.Actions = append(rep.Actions, engine.GlobalsAction{Name: a.accountName(), Action: engine.GlobalsSkipped, Detail: "a system or root account: the target has its own"})
			case !a.Role && me == a.User+"@"+a.Host:
				rep.Actions = append(rep.Actions, engine.GlobalsAction{Name: a.accountName(), Action: engine.GlobalsExists, Detail: "the account this restore connects as: left as it is"})
			case existing[[2]string{a.User, a.Host}]:
				rep.Actions = append(rep.Actions, engine.GlobalsAction{Name: a.accountName(), Action: engine.GlobalsExists, Detail: "left as it is (password and grants unchanged)"})
			default:
				create = append(create, a)
			}
		}
	}
	type planned struct {
		a      account
		grants []string
		later  int // table, column and routine grants left to their database's restore
	}
	var plan []planned
	for _, a := range create {
		p := planned{a: a}
		for _, g := range a.Grants {
			switch grantScope(g) {
			case scopeObject:
				p.later++
			default:
				p.grants = append(p.grants, g)
			}
		}
		plan = append(plan, p)
	}
	detail := func(p planned) string {
		d := fmt.Sprintf("%d grants", len(p.grants))
		if p.later > 0 {
			d += fmt.Sprintf("; %d grants on tables or routines come with their database's restore", p.later)
		}
		return d
	}
	if opts.DryRun {
		for _, p := range plan {
			rep.Actions = append(rep.Actions, engine.GlobalsAction{Name: p.a.accountName(), Action: engine.GlobalsCreated, Detail: detail(p)})
		}
		return rep, nil
	}
	// A GRANT must never create an account the snapshot did not hold
	// (MariaDB does without NO_AUTO_CREATE_USER; MySQL 8 has no such mode).
	_, _ = c.ExecContext(ctx, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_CREATE_USER')")
	var done []string
	for _, p := range plan {
		fail := func(what string, err error) error {
			already := "no account was created"
			if len(done) > 0 {
				already = "created before the error: " + strings.Join(done, ", ")
			}
			return fmt.Errorf("restore accounts: %s %s: %w (%s)", what, p.a.accountName(), safeError(err), already)
		}
		if _, err := c.ExecContext(ctx, p.a.Create); err != nil {
			return nil, fail("creating", err)
		}
		done = append(done, p.a.accountName())
		for _, g := range p.grants {
			if _, err := c.ExecContext(ctx, g); err != nil {
				return nil, fail("granting privileges to", err)
			}
		}
		rep.Actions = append(rep.Actions, engine.GlobalsAction{Name: p.a.accountName(), Action: engine.GlobalsCreated, Detail: detail(p)})
	}
	// MariaDB grants a new role to its creator WITH ADMIN OPTION: take it
	// back, the connecting account is left as it was.
	if i := strings.LastIndexByte(me, '@'); i > 0 {
		for _, p := range plan {
			if !p.a.Role {
				continue
			}
			if _, err := c.ExecContext(ctx, "REVOKE "+quoteIdent(p.a.User)+" FROM "+quoteString(me[:i])+"@"+quoteString(me[i+1:])); err != nil && mysqlErr(err) != 1141 && mysqlErr(err) != 1617 {
				return nil, fmt.Errorf("restore accounts: taking role %s back from the connecting account %s: %w", p.a.User, me, err)
			}
		}
	}
	return rep, nil
}

// safeError drops the server's message from errors that may quote a
// statement (and with it a password hash): syntax errors.
func safeError(err error) error {
	switch mysqlErr(err) {
	case 1064, 1149:
		return fmt.Errorf("server error %d: syntax error (the statement is not shown: it holds a password hash)", mysqlErr(err))
	}
	return err
}

// Scopes of a SHOW GRANTS statement.
const (
	scopeServer = iota // ON *.*, roles, PROXY, SET DEFAULT ROLE
	scopeDatabase
	scopeObject // a table, column or routine
)

// grantScope classifies a SHOW GRANTS statement by what it is on.
func grantScope(g string) int {
	if !strings.HasPrefix(strings.ToUpper(g), "GRANT ") {
		return scopeServer
	}
	on := findKeyword(g, " ON ")
	if on < 0 {
		return scopeServer // GRANT role TO account
	}
	rest := g[on+4:]
	to := findKeyword(rest, " TO ")
	if to < 0 {
		return scopeServer
	}
	obj := strings.TrimSpace(rest[:to])
	switch {
	case obj == "*.*" || strings.HasPrefix(strings.ToUpper(g), "GRANT PROXY "):
		return scopeServer
	case strings.HasSuffix(obj, ".*"):
		return scopeDatabase
	}
	return scopeObject
}

// findKeyword finds kw (" ON ", " TO ") outside backquotes and quotes.
func findKeyword(s, kw string) int {
	var q byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if q != 0 {
			if ch == q {
				q = 0
			}
			continue
		}
		if ch == '`' || ch == '\'' || ch == '"' {
			q = ch
			continue
		}
		if strings.HasPrefix(strings.ToUpper(s[i:]), kw) {
			return i
		}
	}
	return -1
}
