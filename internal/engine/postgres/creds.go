package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
)

var _ engine.CredentialManager = (*Engine)(nil)

// CreateUsers implements engine.CredentialManager on the database db (the
// copy being built: its grants and ownerships survive the rename into the
// target's name). Everything happens in one transaction.
//
// Passwords never travel in clear: the client computes the SCRAM-SHA-256
// verifier and sends that (CREATE ROLE … PASSWORD 'SCRAM-SHA-256$…'), so
// neither a server log of the statement nor an error shows the password.
//
// Roles are server-wide. A role that exists gets the new password, LOGIN
// and VALID UNTIL 'infinity'; one that is a superuser or may create roles
// or databases, replicate or bypass row security loses those attributes
// (which needs a superuser session; without one it is refused). Its
// privileges on this database's schemas, tables and sequences are revoked
// before the asked ones are granted; what it holds elsewhere on the server
// (other databases, role memberships) is left alone. PUBLIC loses CREATE
// on every schema (PostgreSQL before 15 grants it on public).
//
// The copy is closed to every other login: CONNECT and TEMPORARY are
// revoked from PUBLIC on the database; each user gets CONNECT.
//
//   - readonly: USAGE on every schema, SELECT on every table, view,
//     materialized view, foreign table and sequence.
//   - readwrite: also INSERT, UPDATE and DELETE on every table, USAGE and
//     UPDATE on every sequence (nextval for serial and identity columns).
//   - owner: owns the database, its schemas and the objects in them
//     (tables, views, sequences, functions, procedures, types, domains;
//     not extension members, operators, collations or text search
//     objects). The first owner user owns; further owner users are made
//     members of it. When the session is not a superuser it is made a
//     member of the owner user first (ALTER … OWNER TO needs that), so it
//     keeps its hold on the copy.
//
// Tables, sequences and schemas created later in the database by the
// session's role (hooks) or by the owner user get the same grants through
// ALTER DEFAULT PRIVILEGES. Functions stay executable by PUBLIC, as
// PostgreSQL makes them.
func (e *Engine) CreateUsers(ctx context.Context, db *dsn.DSN, users []engine.User) error {
	if err := engine.CheckUsers(users); err != nil {
		return err
	}
	c, err := connect(ctx, db, false)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create users on %s: %w", db, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var dbName, me string
	var super bool
	if err := tx.QueryRow(ctx, `SELECT current_database(), current_user, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&dbName, &me, &super); err != nil {
		return fmt.Errorf("create users on %s: read the session's role: %w", db, err)
	}
	for _, u := range users {
		if u.Name == me {
			return fmt.Errorf("create users on %s: user %s is the login the clone connects with: give the copy's users other names", db, u.Name)
		}
	}
	schemas, err := userSchemas(ctx, tx)
	if err != nil {
		return fmt.Errorf("create users on %s: %w", db, err)
	}
	exec := func(what, stmt string) error {
		if _, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("create users on %s: %s: %w", db, what, serverMessage(err))
		}
		return nil
	}
	qdb := quoteIdent(dbName)
	if err := exec("close the database to other logins", "REVOKE CONNECT, TEMPORARY ON DATABASE "+qdb+" FROM PUBLIC"); err != nil {
		return err
	}
	// PostgreSQL before 15 lets PUBLIC create in schema public: the
	// copy's users get only what they ask for.
	for _, s := range schemas {
		if err := exec("take CREATE on schema "+s+" from PUBLIC", "REVOKE CREATE ON SCHEMA "+quoteIdent(s)+" FROM PUBLIC"); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := createRole(ctx, tx, u, super, exec); err != nil {
			return err
		}
		q := quoteIdent(u.Name)
		if err := exec("revoke what "+u.Name+" held", "REVOKE ALL ON DATABASE "+qdb+" FROM "+q); err != nil {
			return err
		}
		for _, s := range schemas {
			qs := quoteIdent(s)
			for _, stmt := range []string{
				"REVOKE ALL ON ALL TABLES IN SCHEMA " + qs + " FROM " + q,
				"REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + qs + " FROM " + q,
				"REVOKE ALL ON SCHEMA " + qs + " FROM " + q,
			} {
				if err := exec("revoke what "+u.Name+" held", stmt); err != nil {
					return err
				}
			}
		}
		if err := exec("let "+u.Name+" connect", "GRANT CONNECT ON DATABASE "+qdb+" TO "+q); err != nil {
			return err
		}
	}
	var owner string
	for _, u := range users {
		if u.Access != engine.AccessOwner {
			continue
		}
		if owner != "" {
			if err := exec("make "+u.Name+" an owner", "GRANT "+quoteIdent(owner)+" TO "+quoteIdent(u.Name)); err != nil {
				return err
			}
			continue
		}
		owner = u.Name
		if err := giveOwnership(ctx, tx, dbName, schemas, owner, me, super, exec); err != nil {
			return err
		}
	}
	creators := []string{me}
	if owner != "" && owner != me {
		creators = append(creators, owner)
	}
	for _, u := range users {
		if u.Access == engine.AccessOwner {
			continue
		}
		q := quoteIdent(u.Name)
		tables, seqs := "SELECT", "SELECT"
		if u.Access == engine.AccessReadWrite {
			tables, seqs = "SELECT, INSERT, UPDATE, DELETE", "SELECT, USAGE, UPDATE"
		}
		var stmts []string
		for _, r := range creators { // what an earlier call granted for later objects
			fr := "ALTER DEFAULT PRIVILEGES FOR ROLE " + quoteIdent(r)
			stmts = append(stmts,
				fr+" REVOKE ALL ON SCHEMAS FROM "+q,
				fr+" REVOKE ALL ON TABLES FROM "+q,
				fr+" REVOKE ALL ON SEQUENCES FROM "+q)
		}
		for _, s := range schemas {
			qs := quoteIdent(s)
			stmts = append(stmts,
				"GRANT USAGE ON SCHEMA "+qs+" TO "+q,
				"GRANT "+tables+" ON ALL TABLES IN SCHEMA "+qs+" TO "+q,
				"GRANT "+seqs+" ON ALL SEQUENCES IN SCHEMA "+qs+" TO "+q)
		}
		for _, r := range creators {
			fr := "ALTER DEFAULT PRIVILEGES FOR ROLE " + quoteIdent(r)
			stmts = append(stmts,
				fr+" GRANT USAGE ON SCHEMAS TO "+q,
				fr+" GRANT "+tables+" ON TABLES TO "+q,
				fr+" GRANT "+seqs+" ON SEQUENCES TO "+q)
		}
		for _, stmt := range stmts {
			if err := exec("grant "+string(u.Access)+" access to "+u.Name, stmt); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create users on %s: commit: %w", db, serverMessage(err))
	}
	return nil
}

// createRole creates u's role or sets its password and login attributes.
func createRole(ctx context.Context, tx pgx.Tx, u engine.User, super bool, exec func(what, stmt string) error) error {
	verifier, err := scramVerifier(u.Password)
	if err != nil {
		return fmt.Errorf("user %s: %w", u.Name, err)
	}
	q := quoteIdent(u.Name)
	var attrs []bool
	var rolsuper, createdb, createrole, repl, bypass bool
	err = tx.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1`, u.Name).
		Scan(&rolsuper, &createdb, &createrole, &repl, &bypass)
	if err == pgx.ErrNoRows {
		return exec("create user "+u.Name, "CREATE ROLE "+q+" LOGIN PASSWORD "+quoteLiteral(verifier))
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, serverMessage(err))
	}
	attrs = []bool{rolsuper, createdb, createrole, repl, bypass}
	if slices.Contains(attrs, true) {
		if !super {
			return fmt.Errorf("user %s exists with more power than %s access (superuser, createdb, createrole, replication or bypassrls) and only a superuser session can take it away", u.Name, u.Access)
		}
		if err := exec("limit user "+u.Name, "ALTER ROLE "+q+" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"); err != nil {
			return err
		}
	}
	return exec("set the password of user "+u.Name, "ALTER ROLE "+q+" LOGIN VALID UNTIL 'infinity' PASSWORD "+quoteLiteral(verifier))
}

// userSchemas lists the database's schemas besides the system ones.
func userSchemas(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// giveOwnership makes owner own the database, its schemas and their
// objects (those not belonging to an extension).
func giveOwnership(ctx context.Context, tx pgx.Tx, dbName string, schemas []string, owner, me string, super bool, exec func(what, stmt string) error) error {
	qo := quoteIdent(owner)
	if !super && owner != me {
		if err := exec("let the session act as "+owner, "GRANT "+qo+" TO "+quoteIdent(me)); err != nil {
			return err
		}
	}
	stmts := []string{"ALTER DATABASE " + quoteIdent(dbName) + " OWNER TO " + qo}
	for _, s := range schemas {
		stmts = append(stmts, "ALTER SCHEMA "+quoteIdent(s)+" OWNER TO "+qo)
	}
	// Relations (owned sequences and indexes follow their table), routines
	// and types, outside extensions.
	rows, err := tx.Query(ctx, `
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
         WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND (d.deptype = 'e' OR c.relkind = 'S' AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('d', 'e', 'r')
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list the objects %s is to own: %w", owner, err)
	}
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			rows.Close()
			return fmt.Errorf("list the objects %s is to own: %w", owner, err)
		}
		stmts = append(stmts, "ALTER "+kind+" "+name+" OWNER TO "+qo)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list the objects %s is to own: %w", owner, err)
	}
	for _, stmt := range stmts {
		if err := exec("give "+owner+" ownership", stmt); err != nil {
			return err
		}
	}
	return nil
}

// ResetOtherPasswords implements engine.CredentialManager: every role that
// can log in, except the session's own role, the roles named in keep and
// the predefined pg_* roles, gets a random SCRAM password that nobody
// knows. A superuser role is reset only from a superuser session (a
// managed server's own superuser, such as RDS's rdsadmin, is left alone:
// no session of the clone could alter it).
func (e *Engine) ResetOtherPasswords(ctx context.Context, db *dsn.DSN, keep []string) ([]string, error) {
	c, err := connect(ctx, db, false)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var super bool
	if err := c.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, fmt.Errorf("reset passwords on %s: read the session's role: %w", db, err)
	}
	rows, err := c.Query(ctx, `SELECT rolname, rolsuper FROM pg_roles
WHERE rolcanlogin AND rolname !~ '^pg_' AND rolname NOT IN (session_user, current_user) ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("reset passwords on %s: list logins: %w", db, err)
	}
	type role struct {
		name  string
		super bool
	}
	var roles []role
	for rows.Next() {
		var r role
		if err := rows.Scan(&r.name, &r.super); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reset passwords on %s: list logins: %w", db, err)
		}
		roles = append(roles, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reset passwords on %s: list logins: %w", db, err)
	}
	var changed []string
	for _, r := range roles {
		if slices.Contains(keep, r.name) || r.super && !super {
			continue
		}
		pw, err := randomPassword()
		if err != nil {
			return changed, err
		}
		verifier, err := scramVerifier(pw)
		if err != nil {
			return changed, err
		}
		if _, err := c.Exec(ctx, "ALTER ROLE "+quoteIdent(r.name)+" PASSWORD "+quoteLiteral(verifier), pgx.QueryExecModeSimpleProtocol); err != nil {
			return changed, fmt.Errorf("reset the password of %s on %s: %w", r.name, db, serverMessage(err))
		}
		changed = append(changed, r.name)
	}
	return changed, nil
}

// Logins implements engine.CredentialManager: the roles that can log in,
// without the predefined pg_* roles.
func (e *Engine) Logins(ctx context.Context, db *dsn.DSN) ([]string, error) {
	c, err := connect(ctx, db, false)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname !~ '^pg_' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list logins on %s: %w", db, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list logins on %s: %w", db, err)
	}
	return names, nil
}

// randomPassword returns 32 random bytes, base64url-encoded.
func randomPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for
// a password (RFC 5802/7677, as libpq's PQencryptPasswordConn does;
// without SASLprep, which leaves ASCII and NFKC-normalised passwords as
// they are).
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("random salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("hash a password: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, enc(salt), enc(stored[:]), enc(serverKey)), nil
}
