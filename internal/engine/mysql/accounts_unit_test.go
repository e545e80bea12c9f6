package mysql

import "testing"

func TestGrantScope(t *testing.T) {
	for _, c := range []struct {
		grant string
		want  int
	}{
		{"GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'", scopeServer},
		{"GRANT PROCESS, RELOAD ON *.* TO `app`@`%`", scopeServer},
		{"GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%` WITH GRANT OPTION", scopeDatabase},
		{"GRANT SELECT ON `sh op`.* TO `a`@`%`", scopeDatabase},
		{"GRANT SELECT, INSERT ON `shop`.`items` TO `app`@`%`", scopeObject},
		{"GRANT SELECT (`name`, `x on y`) ON `shop`.`items` TO `app`@`10.1.2.%`", scopeObject},
		{"GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `app`@`%`", scopeObject},
		{"GRANT `analyst` TO `reporter`@`%`", scopeServer},
		{"GRANT `on to` TO `reporter`@`%` WITH ADMIN OPTION", scopeServer},
		{"GRANT PROXY ON ''@'%' TO 'app'@'%'", scopeServer},
		{"SET DEFAULT ROLE `analyst` FOR `reporter`@`%`", scopeServer},
		{"GRANT SELECT ON `a.b`.* TO `u`@`%`", scopeDatabase},
	} {
		if got := grantScope(c.grant); got != c.want {
			t.Errorf("grantScope(%s) = %d, want %d", c.grant, got, c.want)
		}
	}
}

func TestSystemAccount(t *testing.T) {
	for user, want := range map[string]bool{"root": true, "mariadb.sys": true, "mysql.session": true, "mysql.infoschema": true,
		"PUBLIC": true, "": true, "app": false, "rooter": false, "mysqlapp": false} {
		if systemAccount(user) != want {
			t.Errorf("systemAccount(%q) = %v", user, !want)
		}
	}
}
