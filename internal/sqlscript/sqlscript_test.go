package sqlscript

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		d      Dialect
		script string
		want   []Statement
	}{
		{"plain", Postgres, "SELECT 1;\nSELECT 2;\n\n  SELECT 3", []Statement{{"SELECT 1", 1}, {"SELECT 2", 2}, {"SELECT 3", 4}}},
		{"strings and comments", Postgres,
			"-- a comment; with a semicolon\nINSERT INTO t VALUES ('a;b', 'it''s;');\n/* block ; /* nested ; */ still */ SELECT \"x;y\" FROM t;\nSELECT E'\\';';",
			[]Statement{{"INSERT INTO t VALUES ('a;b', 'it''s;')", 2}, {"SELECT \"x;y\" FROM t", 3}, {"SELECT E'\\';'", 4}}},
		{"dollar quotes", Postgres,
			"CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN\n  PERFORM 1;\n  RETURN $$x;$$::text;\nEND\n$body$ LANGUAGE plpgsql;\nSELECT $1x;",
			[]Statement{{"CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN\n  PERFORM 1;\n  RETURN $$x;$$::text;\nEND\n$body$ LANGUAGE plpgsql", 1}, {"SELECT $1x", 7}}},
		{"begin atomic", Postgres,
			"CREATE OR REPLACE FUNCTION g(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\n  SELECT 3;\nEND;\nSELECT 4;",
			[]Statement{{"CREATE OR REPLACE FUNCTION g(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\n  SELECT 3;\nEND", 1}, {"SELECT 4", 6}}},
		{"rule actions in parentheses", Postgres, "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;",
			[]Statement{{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", 1}, {"SELECT 1", 2}}},
		{"pg transaction words are statements", Postgres, "BEGIN;\nSELECT 1;\nEND;", []Statement{{"BEGIN", 1}, {"SELECT 1", 2}, {"END", 3}}},
		{"mysql", MySQL,
			"# hash comment;\nINSERT INTO t VALUES ('a\\';b', \"c;d\", `e;f`);\n--not a comment\n;\n-- comment;\nSELECT 1 /*! , 2; */;",
			[]Statement{{"INSERT INTO t VALUES ('a\\';b', \"c;d\", `e;f`)", 2}, {"--not a comment", 3}, {"SELECT 1 /*! , 2; */", 6}}},
		{"mysql delimiter", MySQL,
			"DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND//\nDELIMITER ;\nCALL p();\n",
			[]Statement{{"CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND", 2}, {"CALL p()", 8}}},
		{"sqlite trigger", SQLite,
			"CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = CASE WHEN new.a THEN 1 END;\n  DELETE FROM [x;y];\nEND;\nSELECT `a;b`;",
			[]Statement{{"CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = CASE WHEN new.a THEN 1 END;\n  DELETE FROM [x;y];\nEND", 1}, {"SELECT `a;b`", 5}}},
		{"sqlite begin transaction", SQLite, "BEGIN;\nSELECT 1;\nCOMMIT;", []Statement{{"BEGIN", 1}, {"SELECT 1", 2}, {"COMMIT", 3}}},
		{"empty statements", SQLite, ";;\n-- only a comment\n;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.script, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		d      Dialect
		script string
		want   string
	}{
		{Postgres, "SELECT 1;\nSELECT 'abc;\n", "line 2: unterminated string"},
		{Postgres, "SELECT 1;\n\nSELECT $x$ abc;\n", "line 3: unterminated dollar-quoted string"},
		{Postgres, "SELECT 1;\n\\connect other\n", `line 2: \connect is a psql meta-command`},
		{MySQL, "SELECT `a;\n", "line 1: unterminated quoted name"},
		{MySQL, "DELIMITER\n", "line 1: DELIMITER needs a terminator"},
	}
	for _, tt := range tests {
		_, err := Split(tt.script, tt.d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Split(%q) = %v, want an error containing %q", tt.script, err, tt.want)
		}
	}
}
