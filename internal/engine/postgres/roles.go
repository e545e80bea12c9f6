package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/snapdata/snapdata/internal/dsn"
	"github.com/snapdata/snapdata/internal/engine"
	"github.com/snapdata/snapdata/internal/manifest"
)

// FormatRoles is the format of the globals stream: the server's roles, the
// equivalent of pg_dumpall --globals-only (without tablespaces).
const FormatRoles = "pg-roles/1"

// pgGlobals is the JSON of the globals stream.
type pgGlobals struct {
	// Passwords says whether the roles' password hashes were readable
	// (pg_authid, superusers only); without them roles are stored with no
	// password.
	Passwords   bool            `json:"passwords"`
	Roles       []pgRole        `json:"roles"`
	Memberships []pgMembership  `json:"memberships,omitempty"`
	Settings    []pgRoleSetting `json:"settings,omitempty"`
}

type pgRole struct {
	Name        string `json:"name"`
	Bootstrap   bool   `json:"bootstrap,omitempty"` // the source's initdb superuser (oid 10)
	Super       bool   `json:"superuser,omitempty"`
	Inherit     bool   `json:"inherit"`
	CreateRole  bool   `json:"createrole,omitempty"`
	CreateDB    bool   `json:"createdb,omitempty"`
	Login       bool   `json:"login,omitempty"`
	Replication bool   `json:"replication,omitempty"`
	BypassRLS   bool   `json:"bypassrls,omitempty"`
	ConnLimit   int    `json:"connlimit"`
	Password    string `json:"password,omitempty"` // the server's SCRAM or MD5 hash, never a clear password
	ValidUntil  string `json:"valid_until,omitempty"`
}

// pgMembership is "GRANT Role TO Member". Inherit and Set are PostgreSQL
// 16's per-grant options (nil before 16: the member's INHERIT attribute
// decides, SET is always true).
type pgMembership struct {
	Role    string `json:"role"`
	Member  string `json:"member"`
	Admin   bool   `json:"admin,omitempty"`
	Inherit *bool  `json:"inherit,omitempty"`
	Set     *bool  `json:"set,omitempty"`
}

// pgRoleSetting is ALTER ROLE Role [IN DATABASE Database] SET ….
type pgRoleSetting struct {
	Role     string   `json:"role"`
	Database string   `json:"database,omitempty"` // "" for every database
	Config   []string `json:"config"`             // name=value, as pg_db_role_setting holds them
}

// BackupGlobals implements engine.GlobalsBackuper.
func (e *Engine) BackupGlobals(ctx context.Context, server *dsn.DSN, sink engine.Sink, opts engine.GlobalsBackupOptions) (map[string]string, error) {
	log := opts.Logger
	c, err := connect(ctx, server, true)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	g, err := readGlobals(ctx, c)
	if err != nil {
		return nil, err
	}
	unreadable := !g.Passwords
	if opts.NoSecrets {
		g.Passwords = false
		for i := range g.Roles {
			g.Roles[i].Password = ""
		}
	}
	b, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode roles: %w", err)
	}
	w, err := sink.Create(ctx, manifest.Stream{Name: engine.GlobalsStream, Kind: manifest.KindMeta, Format: FormatRoles})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", engine.GlobalsStream, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("write stream %s: %w", engine.GlobalsStream, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("commit stream %s: %w", engine.GlobalsStream, err)
	}
	meta := map[string]string{"roles": fmt.Sprintf("%d roles, %d memberships, %d role settings", len(g.Roles), len(g.Memberships), len(g.Settings))}
	switch {
	case g.Passwords:
		meta["roles_passwords"] = "stored (the server's hashes)"
	case opts.NoSecrets:
		meta["roles_passwords"] = "not stored: the repository is not encrypted"
		log.Warn("roles stored without their passwords: the repository is not encrypted, and password hashes are stored in encrypted repositories only")
	case unreadable:
		meta["roles_passwords"] = "not stored: the backup user cannot read pg_authid (a superuser can)"
		log.Warn("roles stored without their passwords: the backup user cannot read pg_authid (back up as a superuser to keep them); restore --roles creates them without a password")
	}
	return meta, nil
}

// readGlobals reads every role but PostgreSQL's own (pg_*), with its
// memberships and settings.
func readGlobals(ctx context.Context, c *pgx.Conn) (*pgGlobals, error) {
	var version int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	g := &pgGlobals{Passwords: true}
	const cols = `oid = 10, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, COALESCE(rolvaliduntil::text, '')`
	// pg_authid is readable by superusers only: try it in a savepoint-free
	// way (a failed query in autocommit mode leaves nothing to roll back).
	rows, err := c.Query(ctx, "SELECT "+cols+", COALESCE(rolpassword, '') FROM pg_catalog.pg_authid WHERE rolname !~ '^pg_' ORDER BY rolname")
	if err == nil {
		g.Roles, err = scanRoles(rows, true)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		g.Passwords = false
		rows, err = c.Query(ctx, "SELECT "+cols+" FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname")
		if err == nil {
			g.Roles, err = scanRoles(rows, false)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	// Memberships: PostgreSQL 16 may record one grant per grantor; the
	// options are merged (any grant with ADMIN gives ADMIN).
	q := `SELECT r.rolname, m.rolname, am.admin_option, false, false FROM pg_catalog.pg_auth_members am
		JOIN pg_catalog.pg_roles r ON r.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member
		WHERE m.rolname !~ '^pg_' ORDER BY 1, 2`
	if version >= 160000 {
		q = strings.Replace(q, "false, false", "am.inherit_option, am.set_option", 1)
	}
	rows, err = c.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read role memberships: %w", err)
	}
	byPair := map[[2]string]int{}
	for rows.Next() {
		var m pgMembership
		var inh, set bool
		if err := rows.Scan(&m.Role, &m.Member, &m.Admin, &inh, &set); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read role memberships: %w", err)
		}
		if version >= 160000 {
			m.Inherit, m.Set = &inh, &set
		}
		k := [2]string{m.Role, m.Member}
		if i, ok := byPair[k]; ok {
			o := &g.Memberships[i]
			o.Admin = o.Admin || m.Admin
			if o.Inherit != nil {
				*o.Inherit = *o.Inherit || inh
				*o.Set = *o.Set || set
			}
			continue
		}
		byPair[k] = len(g.Memberships)
		g.Memberships = append(g.Memberships, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read role memberships: %w", err)
	}
	rows, err = c.Query(ctx, `SELECT r.rolname, COALESCE(d.datname, ''), s.setconfig FROM pg_catalog.pg_db_role_setting s
		JOIN pg_catalog.pg_roles r ON r.oid = s.setrole LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
		WHERE r.rolname !~ '^pg_' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read role settings: %w", err)
	}
	for rows.Next() {
		var s pgRoleSetting
		if err := rows.Scan(&s.Role, &s.Database, &s.Config); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read role settings: %w", err)
		}
		g.Settings = append(g.Settings, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read role settings: %w", err)
	}
	return g, nil
}

func scanRoles(rows pgx.Rows, withPassword bool) ([]pgRole, error) {
	defer rows.Close()
	var out []pgRole
	for rows.Next() {
		var r pgRole
		dest := []any{&r.Bootstrap, &r.Name, &r.Super, &r.Inherit, &r.CreateRole, &r.CreateDB, &r.Login, &r.Replication, &r.BypassRLS, &r.ConnLimit, &r.ValidUntil}
		if withPassword {
			dest = append(dest, &r.Password)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// readGlobalsStream decodes a snapshot's globals stream.
func readGlobalsStream(ctx context.Context, snap engine.SnapshotReader) (*pgGlobals, error) {
	for _, st := range snap.Manifest().StreamsOf(manifest.KindMeta) {
		if st.Name != engine.GlobalsStream {
			continue
		}
		if st.Format != FormatRoles {
			return nil, fmt.Errorf("stream %s: format %q, expected %s", st.Name, st.Format, FormatRoles)
		}
		r, err := snap.Open(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("open stream %s: %w", st.Name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", st.Name, err)
		}
		var g pgGlobals
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, fmt.Errorf("decode stream %s: %w", st.Name, err)
		}
		return &g, nil
	}
	return nil, engine.ErrNoGlobals
}

// RestoreGlobals implements engine.GlobalsRestorer. Every role the target
// server lacks is created, with its attributes, password hash, role-wide
// settings and memberships, in one transaction: all or nothing. A role the
// server has (the connecting role, the target's superuser) is not changed.
func (e *Engine) RestoreGlobals(ctx context.Context, snap engine.SnapshotReader, target *dsn.DSN, opts engine.GlobalsOptions) (*engine.GlobalsReport, error) {
	g, err := readGlobalsStream(ctx, snap)
	if err != nil {
		return nil, err
	}
	c, err := maintenanceConn(ctx, target)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	var me string
	var super bool
	var version int
	if err := c.QueryRow(ctx, "SELECT current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), current_setting('server_version_num')::int").Scan(&me, &super, &version); err != nil {
		return nil, fmt.Errorf("read the connecting role: %w", err)
	}
	existing := map[string]bool{}
	rows, err := c.Query(ctx, "SELECT rolname FROM pg_catalog.pg_roles")
	if err != nil {
		return nil, fmt.Errorf("list the target's roles: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the target's roles: %w", err)
		}
		existing[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the target's roles: %w", err)
	}
	databases := map[string]bool{}
	rows, err = c.Query(ctx, "SELECT datname FROM pg_catalog.pg_database")
	if err != nil {
		return nil, fmt.Errorf("list the target's databases: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the target's databases: %w", err)
		}
		databases[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the target's databases: %w", err)
	}
	plan := planRoles(g, existing, databases, me, super, version, opts.SourceDatabase, opts.Database)
	if opts.DryRun || len(plan.stmts) == 0 {
		return plan.report, nil
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore roles: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it does nothing
	for _, s := range plan.stmts {
		if _, err := tx.Exec(ctx, s.sql); err != nil {
			// The statement is not shown: it may hold a password hash.
			return nil, fmt.Errorf("restore roles: %s: %w (no role was created)", s.what, scrubErr(err, s.secret))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("restore roles: commit: %w", err)
	}
	return plan.report, nil
}

type roleStmt struct {
	what   string // what it does, for errors ("create role app")
	sql    string
	secret string // a password hash the statement holds, "" if none
}

type rolePlan struct {
	stmts  []roleStmt
	report *engine.GlobalsReport
}

// planRoles decides what RestoreGlobals does: CREATE ROLE for each role
// the target lacks, then its settings and memberships; the source's
// bootstrap superuser, and with a restore that does not connect as a
// superuser the roles with SUPERUSER, REPLICATION or BYPASSRLS, are
// skipped (reported). Settings for one
// database are set when the database exists (those for srcDB, the
// snapshot's, go to dstDB, the restore's target). Roles that exist are
// never altered.
func planRoles(g *pgGlobals, existing, databases map[string]bool, me string, super bool, version int, srcDB, dstDB string) rolePlan {
	p := rolePlan{report: &engine.GlobalsReport{}}
	created := map[string]bool{}
	details := map[string][]string{}
	for _, r := range g.Roles {
		switch {
		case r.Name == me:
			p.report.Actions = append(p.report.Actions, engine.GlobalsAction{Name: r.Name, Action: engine.GlobalsExists, Detail: "the role this restore connects as: left as it is"})
			continue
		case existing[r.Name]:
			p.report.Actions = append(p.report.Actions, engine.GlobalsAction{Name: r.Name, Action: engine.GlobalsExists, Detail: "left as it is (attributes, password, settings and memberships unchanged)"})
			continue
		case r.Bootstrap:
			p.report.Actions = append(p.report.Actions, engine.GlobalsAction{Name: r.Name, Action: engine.GlobalsSkipped, Detail: "the source server's bootstrap superuser: the target has its own (restore with --no-owner if objects belong to it)"})
			continue
		case !super && (r.Super || r.Replication || r.BypassRLS):
			p.report.Actions = append(p.report.Actions, engine.GlobalsAction{Name: r.Name, Action: engine.GlobalsSkipped, Detail: "has SUPERUSER, REPLICATION or BYPASSRLS, which only a superuser can give: restore --roles as a superuser to create it"})
			continue
		}
		created[r.Name] = true
		p.stmts = append(p.stmts, roleStmt{what: "create role " + r.Name, sql: createRoleSQL(r), secret: r.Password})
		if r.Password == "" && !g.Passwords && r.Login {
			details[r.Name] = append(details[r.Name], "no password (the snapshot holds none)")
		}
	}
	for _, s := range g.Settings {
		if !created[s.Role] {
			continue
		}
		in, db := "", s.Database
		if db != "" {
			if db == srcDB && dstDB != "" {
				db = dstDB // the restored database's settings go with it
			}
			if !databases[db] {
				details[s.Role] = append(details[s.Role], fmt.Sprintf("settings for database %s not restored (no such database on the target yet: create it before restore --roles)", db))
				continue
			}
			in = " IN DATABASE " + quoteIdent(db)
		}
		for _, kv := range s.Config {
			name, value, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			p.stmts = append(p.stmts, roleStmt{what: "set " + name + " for role " + s.Role,
				sql: "ALTER ROLE " + quoteIdent(s.Role) + in + " SET " + quoteIdent(name) + " TO " + settingValue(name, value)})
			where := ""
			if db != "" {
				where = " in database " + db
			}
			details[s.Role] = append(details[s.Role], "set "+name+where)
		}
	}
	for _, m := range g.Memberships {
		if !created[m.Member] {
			continue
		}
		if !created[m.Role] && !existing[m.Role] {
			details[m.Member] = append(details[m.Member], "not a member of "+m.Role+" (no such role on the target)")
			continue
		}
		var with []string
		if m.Admin {
			with = append(with, "ADMIN OPTION")
		}
		if version >= 160000 && m.Inherit != nil {
			with = append(with, "INHERIT "+strings.ToUpper(strconv.FormatBool(*m.Inherit)), "SET "+strings.ToUpper(strconv.FormatBool(*m.Set)))
		}
		s := "GRANT " + quoteIdent(m.Role) + " TO " + quoteIdent(m.Member)
		if len(with) > 0 {
			s += " WITH " + strings.Join(with, ", ")
		}
		p.stmts = append(p.stmts, roleStmt{what: "grant " + m.Role + " to " + m.Member, sql: s})
		details[m.Member] = append(details[m.Member], "member of "+m.Role)
	}
	for _, r := range g.Roles {
		if created[r.Name] {
			p.report.Actions = append(p.report.Actions, engine.GlobalsAction{Name: r.Name, Action: engine.GlobalsCreated, Detail: strings.Join(details[r.Name], "; ")})
		}
	}
	return p
}

// createRoleSQL is the CREATE ROLE statement of r.
func createRoleSQL(r pgRole) string {
	attr := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	parts := []string{
		attr(r.Super, "SUPERUSER", "NOSUPERUSER"),
		attr(r.Inherit, "INHERIT", "NOINHERIT"),
		attr(r.CreateRole, "CREATEROLE", "NOCREATEROLE"),
		attr(r.CreateDB, "CREATEDB", "NOCREATEDB"),
		attr(r.Login, "LOGIN", "NOLOGIN"),
		attr(r.Replication, "REPLICATION", "NOREPLICATION"),
		attr(r.BypassRLS, "BYPASSRLS", "NOBYPASSRLS"),
	}
	if r.ConnLimit != -1 {
		parts = append(parts, "CONNECTION LIMIT "+strconv.Itoa(r.ConnLimit))
	}
	if r.Password != "" {
		parts = append(parts, "PASSWORD "+quoteLiteral(r.Password))
	}
	if r.ValidUntil != "" {
		parts = append(parts, "VALID UNTIL "+quoteLiteral(r.ValidUntil))
	}
	return "CREATE ROLE " + quoteIdent(r.Name) + " WITH " + strings.Join(parts, " ")
}

// listSettings are the settings whose value is a list, which
// pg_db_role_setting keeps as "a, b" and ALTER ROLE takes as 'a', 'b' (as
// pg_dumpall writes them).
var listSettings = map[string]bool{
	"search_path": true, "temp_tablespaces": true, "session_preload_libraries": true,
	"local_preload_libraries": true, "shared_preload_libraries": true, "unix_socket_directories": true,
}

// settingValue renders a stored setting value for ALTER ROLE … SET.
func settingValue(name, value string) string {
	if !listSettings[strings.ToLower(name)] {
		return quoteLiteral(value)
	}
	var items []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(value); i++ {
		ch := value[i]
		switch {
		case ch == '"':
			if inQuote && i+1 < len(value) && value[i+1] == '"' {
				cur.WriteByte('"')
				i++
				continue
			}
			inQuote = !inQuote
		case ch == ',' && !inQuote:
			items = append(items, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	items = append(items, strings.TrimSpace(cur.String()))
	for i, it := range items {
		items[i] = quoteLiteral(it)
	}
	return strings.Join(items, ", ")
}

// scrubErr returns err with secret (a password hash) masked in its text.
func scrubErr(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, dsn.Mask))
}
