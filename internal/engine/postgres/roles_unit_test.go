package postgres

import (
	"strings"
	"testing"
)

func TestSettingValue(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"work_mem", "8MB", "'8MB'"},
		{"search_path", "app, public", "'app', 'public'"},
		{"search_path", `"$user", public`, "'$user', 'public'"},
		{"search_path", `"we,ird""s", x`, `'we,ird"s', 'x'`},
		{"application_name", "it's", "'it''s'"},
	} {
		if got := settingValue(c.name, c.value); got != c.want {
			t.Errorf("settingValue(%s, %q) = %s, want %s", c.name, c.value, got, c.want)
		}
	}
}

// TestPlanRolesNeverAltersExisting: roles that exist get no statement at
// all, superuser roles need a superuser (an error before any change), and
// a membership is granted only to a role the plan creates.
func TestPlanRolesNeverAltersExisting(t *testing.T) {
	g := &pgGlobals{Passwords: true,
		Roles: []pgRole{{Name: "me", Login: true, Password: "SCRAM-SHA-256$x"}, {Name: "old", Login: true, Password: "SCRAM-SHA-256$y"},
			{Name: "grp", ConnLimit: -1}, {Name: "new", Login: true, Password: "SCRAM-SHA-256$z", ConnLimit: -1}},
		Memberships: []pgMembership{{Role: "grp", Member: "old"}, {Role: "grp", Member: "new", Admin: true}, {Role: "gone", Member: "new"}},
		Settings:    []pgRoleSetting{{Role: "old", Config: []string{"work_mem=1MB"}}, {Role: "new", Config: []string{"work_mem=2MB"}}, {Role: "new", Database: "src", Config: []string{"search_path=a, b"}}},
	}
	p := planRoles(g, map[string]bool{"me": true, "old": true}, map[string]bool{"dst": true}, "me", false, 150000, "src", "dst")
	var all []string
	for _, s := range p.stmts {
		all = append(all, s.sql)
	}
	joined := strings.Join(all, "\n")
	for _, bad := range []string{`"me"`, `"old"`, "SCRAM-SHA-256$x", "SCRAM-SHA-256$y", "1MB", "gone"} {
		if strings.Contains(joined, bad) {
			t.Errorf("the plan touches %s:\n%s", bad, joined)
		}
	}
	for _, want := range []string{`CREATE ROLE grp WITH NOSUPERUSER`, `CREATE ROLE new WITH`, `PASSWORD 'SCRAM-SHA-256$z'`,
		`ALTER ROLE new SET work_mem TO '2MB'`, `ALTER ROLE new IN DATABASE dst SET search_path TO 'a', 'b'`, `GRANT grp TO new WITH ADMIN OPTION`} {
		if !strings.Contains(joined, want) {
			t.Errorf("the plan lacks %s:\n%s", want, joined)
		}
	}
	// A superuser role: skipped when the restore is not a superuser's;
	// the source's bootstrap superuser always.
	g.Roles = append(g.Roles, pgRole{Name: "admin2", Super: true}, pgRole{Name: "postgres", Super: true, Bootstrap: true})
	creates := func(super bool, role string) bool {
		p := planRoles(g, map[string]bool{"me": true}, nil, "me", super, 150000, "", "")
		for _, s := range p.stmts {
			if strings.HasPrefix(s.sql, "CREATE ROLE "+role+" ") {
				return true
			}
		}
		return false
	}
	if creates(false, "admin2") || !creates(true, "admin2") {
		t.Error("a superuser role is created by a non-superuser restore, or not by a superuser's")
	}
	if creates(true, "postgres") {
		t.Error("the source's bootstrap superuser is created")
	}
}
