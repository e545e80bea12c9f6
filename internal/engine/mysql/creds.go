package mysql

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

var _ engine.CredentialManager = (*Engine)(nil)

// CreateUsers implements engine.CredentialManager. Each user is the
// account 'name'@'%' (created, or given the new password and unlocked when
// it exists); its privileges on db's database (the final name: the copy's
// tables move there by RENAME TABLE) are revoked, database- and
// table-level, then the asked ones granted on `db`.* ('_' and '%' escaped,
// so the grant names that database only):
//
//   - readonly: SELECT, SHOW VIEW
//   - readwrite: also INSERT, UPDATE, DELETE (AUTO_INCREMENT needs no more)
//   - owner: ALL PRIVILEGES (create, alter, drop, index, routines, …)
//
// What an existing account holds on other databases or globally is left
// alone: the same dev account may serve other copies on the server.
//
// On MariaDB the password never travels in clear: the statement carries
// its mysql_native_password hash (IDENTIFIED BY PASSWORD '*…'). MySQL
// 8.0 has no such form for its default plugin, so the statement carries
// the password and the server rewrites it in its logs; errors returned
// here never show it.
func (e *Engine) CreateUsers(ctx context.Context, d *dsn.DSN, users []engine.User) error {
	if err := engine.CheckUsers(users); err != nil {
		return err
	}
	dbName := d.Database()
	if dbName == "" {
		return fmt.Errorf("create users on %s: the DSN names no database", d)
	}
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return err
	}
	defer db.Close()
	maria, err := isMariaDB(ctx, db)
	if err != nil {
		return fmt.Errorf("create users on %s: %w", d, err)
	}
	var me string
	if err := db.QueryRowContext(ctx, "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)").Scan(&me); err != nil {
		return fmt.Errorf("create users on %s: read the session's user: %w", d, err)
	}
	for _, u := range users {
		if u.Name == me {
			return fmt.Errorf("create users on %s: user %s is the login the clone connects with: give the copy's users other names", d, u.Name)
		}
	}
	grantDB := quoteIdent(escapeGrantDB(dbName)) + ".*"
	for _, u := range users {
		account := quoteString(u.Name) + "@'%'"
		fail := func(what string, err error) error {
			return fmt.Errorf("create users on %s: %s %s: %w", d, what, u.Name, hidePassword(err, u.Password))
		}
		ident := identifiedBy(u.Password, maria)
		if _, err := db.ExecContext(ctx, "CREATE USER IF NOT EXISTS "+account+" "+ident); err != nil {
			return fail("create user", err)
		}
		if _, err := db.ExecContext(ctx, "ALTER USER "+account+" "+ident+" ACCOUNT UNLOCK"); err != nil {
			return fail("set the password of", err)
		}
		if _, err := db.ExecContext(ctx, "REVOKE ALL PRIVILEGES ON "+grantDB+" FROM "+account); err != nil && mysqlErr(err) != 1141 {
			return fail("revoke what was granted to", err)
		}
		tables, err := tableGrants(ctx, db, u.Name, dbName)
		if err != nil {
			return fail("read the table grants of", err)
		}
		for _, t := range tables {
			stmt := "REVOKE ALL PRIVILEGES ON " + quoteIdent(dbName) + "." + quoteIdent(t) + " FROM " + account
			if _, err := db.ExecContext(ctx, stmt); err != nil && mysqlErr(err) != 1147 {
				return fail("revoke a table grant of", err)
			}
		}
		privs := "SELECT, SHOW VIEW"
		switch u.Access {
		case engine.AccessReadWrite:
			privs = "SELECT, INSERT, UPDATE, DELETE, SHOW VIEW"
		case engine.AccessOwner:
			privs = "ALL PRIVILEGES"
		}
		if _, err := db.ExecContext(ctx, "GRANT "+privs+" ON "+grantDB+" TO "+account); err != nil {
			return fail("grant "+string(u.Access)+" access to", err)
		}
	}
	return nil
}

// escapeGrantDB escapes the wildcards of a database name in GRANT.
func escapeGrantDB(s string) string {
	return strings.NewReplacer(`\`, `\\`, "_", `\_`, "%", `\%`).Replace(s)
}

// tableGrants lists the tables of db on which user@'%' holds table-level
// privileges.
func tableGrants(ctx context.Context, db *sql.DB, user, dbName string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT Table_name FROM mysql.tables_priv WHERE User = ? AND Host = '%' AND Db = ?", user, dbName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// identifiedBy is the IDENTIFIED clause for a password: MariaDB gets the
// mysql_native_password hash, MySQL the password (which it rewrites in its
// logs).
func identifiedBy(password string, maria bool) string {
	if maria {
		return "IDENTIFIED BY PASSWORD " + quoteString(nativeHash(password))
	}
	return "IDENTIFIED BY " + quoteString(password)
}

// nativeHash is mysql_native_password's stored form: "*" and the upper-case
// hex of SHA1(SHA1(password)).
func nativeHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// hidePassword returns err, or an error without the password's text when a
// server message echoes the statement (MySQL's syntax errors quote it).
func hidePassword(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Errorf("server error %d (the message quoted the statement and is not shown: it holds the password)", me.Number)
	}
	return errors.New("the error quoted the statement and is not shown: it holds the password")
}

func isMariaDB(ctx context.Context, db *sql.DB) (bool, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return false, fmt.Errorf("read the server version: %w", err)
	}
	return strings.Contains(strings.ToLower(v), "mariadb"), nil
}

// systemAccounts are the server's own accounts, never logins of people or
// applications.
var systemAccounts = []string{"mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"}

type userHost struct{ user, host string }

func (a userHost) String() string { return a.user + "@" + a.host }

// accounts lists the server's accounts, without roles and system accounts.
func listUserHosts(ctx context.Context, db *sql.DB) ([]userHost, error) {
	rows, err := db.QueryContext(ctx, "SELECT User, Host FROM mysql.user WHERE is_role <> 'Y' ORDER BY User, Host")
	if mysqlErr(err) == 1054 { // MySQL: no is_role column (roles are locked accounts)
		rows, err = db.QueryContext(ctx, "SELECT User, Host FROM mysql.user ORDER BY User, Host")
	}
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []userHost
	for rows.Next() {
		var a userHost
		if err := rows.Scan(&a.user, &a.host); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		if !slices.Contains(systemAccounts, a.user) {
			out = append(out, a)
		}
	}
	return out, rows.Err()
}

// passwordPlugins are the authentication plugins that check a password.
var passwordPlugins = []string{"mysql_native_password", "caching_sha2_password", "sha256_password", "ed25519", "parsec", "mysql_old_password"}

var pluginRE = regexp.MustCompile(`(?i)\b(?:VIA|WITH)\s+['"]?([a-z0-9_]+)`)

// passwordOnly reports whether every way a's SHOW CREATE USER lets it in
// checks a password (and not, say, unix_socket).
func passwordOnly(ctx context.Context, db *sql.DB, a userHost) (bool, error) {
	var stmt string
	if err := db.QueryRowContext(ctx, "SHOW CREATE USER "+quoteString(a.user)+"@"+quoteString(a.host)).Scan(&stmt); err != nil {
		return false, err
	}
	for _, m := range pluginRE.FindAllStringSubmatch(stmt, -1) {
		if !slices.Contains(passwordPlugins, strings.ToLower(m[1])) {
			return false, nil
		}
	}
	return true, nil
}

// ResetOtherPasswords implements engine.CredentialManager. Every account
// gets a random password except: the accounts of the connecting user name
// (all hosts: the management login may come in through another host
// entry), those whose user name or user@host is in keep, roles, the
// server's system accounts (mariadb.sys, mysql.sys, mysql.session,
// mysql.infoschema) and accounts that can log in without a password
// (unix_socket, auth_socket, PAM, GSSAPI, also as an alternative, as
// MariaDB's root@localhost): a password would change how they log in,
// and no production password opens them. Accounts the server ignores (a
// host name under skip-name-resolve) are left too. Names are returned as user@host.
func (e *Engine) ResetOtherPasswords(ctx context.Context, d *dsn.DSN, keep []string) ([]string, error) {
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	maria, err := isMariaDB(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("reset passwords on %s: %w", d, err)
	}
	var me string
	if err := db.QueryRowContext(ctx, "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)").Scan(&me); err != nil {
		return nil, fmt.Errorf("reset passwords on %s: read the session's user: %w", d, err)
	}
	list, err := listUserHosts(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("reset passwords on %s: %w", d, err)
	}
	var changed []string
	for _, a := range list {
		if a.user == me || slices.Contains(keep, a.user) || slices.Contains(keep, a.String()) {
			continue
		}
		ok, err := passwordOnly(ctx, db, a)
		if mysqlErr(err) == 1133 {
			continue // a host name under skip-name-resolve: the server lets nobody in through it
		}
		if err != nil {
			return changed, fmt.Errorf("reset passwords on %s: read how %s logs in: %w", d, a, err)
		}
		if !ok {
			continue
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return changed, fmt.Errorf("random password: %w", err)
		}
		pw := base64.RawURLEncoding.EncodeToString(b)
		stmt := "ALTER USER " + quoteString(a.user) + "@" + quoteString(a.host) + " " + identifiedBy(pw, maria)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return changed, fmt.Errorf("reset the password of %s on %s: %w", a, d, hidePassword(err, pw))
		}
		changed = append(changed, a.String())
	}
	return changed, nil
}

// Logins implements engine.CredentialManager: every account as user@host,
// without roles and system accounts.
func (e *Engine) Logins(ctx context.Context, d *dsn.DSN) ([]string, error) {
	none := ""
	db, err := open(ctx, d, &none)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	list, err := listUserHosts(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("list logins on %s: %w", d, err)
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.String()
	}
	return out, nil
}
