package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Expand replaces ${VAR}, ${VAR:-default} and ${VAR?message} in s; $$ is a
// literal dollar. lookup reports whether a variable is set.
func Expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		i += 2 + end
		name, op, arg := expr, "", ""
		if j := strings.Index(expr, ":-"); j >= 0 {
			name, op, arg = expr[:j], ":-", expr[j+2:]
		} else if j := strings.IndexByte(expr, '?'); j >= 0 {
			name, op, arg = expr[:j], "?", expr[j+1:]
		}
		if !validName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s}", name, expr)
		}
		v, ok := lookup(name)
		switch op {
		case ":-":
			if !ok || v == "" {
				v = arg
			}
		case "?":
			if !ok {
				if arg == "" {
					arg = "is not set"
				}
				return "", fmt.Errorf("${%s}: %s", name, arg)
			}
		default:
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
			}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func interpolateNode(file string, n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode {
		v, err := Expand(n.Value, lookup)
		if err != nil {
			return &Error{File: file, Line: n.Line, Msg: err.Error()}
		}
		if v != n.Value {
			// Let the expanded text resolve as if written plainly, so that
			// keep_last: "${KEEP:-12}" becomes a number and a DSN a string.
			n.Value, n.Tag, n.Style = v, "", 0
		}
		return nil
	}
	for _, c := range n.Content {
		if err := interpolateNode(file, c, lookup); err != nil {
			return err
		}
	}
	return nil
}
