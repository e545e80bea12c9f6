// Package mycnf gives a mysql:// DSN the credentials the MySQL/MariaDB
// client programs would use: the MYSQL_PWD environment variable and option
// files (~/.my.cnf, or the file a DSN names with defaults-file=PATH).
//
// Precedence, for each setting: what the DSN says, then (for the password)
// MYSQL_PWD, then the option file. Option files are read like the mysql
// client reads them: the groups [client], [client-server],
// [client-mariadb], [mariadb-client], [mysqldump] and [mariadb-dump]; a
// later line wins over an earlier one whatever its group; !include and
// !includedir are followed; the keys used are user, password, host, port
// and socket (also with the loose- prefix and '_' for '-').
package mycnf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/snapdata/snapdata/internal/dsn"
)

// EnvPassword is the environment variable the MySQL clients read a
// password from.
const EnvPassword = "MYSQL_PWD"

// Groups are the option-file groups read.
var groups = map[string]bool{
	"client": true, "client-server": true, "client-mariadb": true,
	"mariadb-client": true, "mysqldump": true, "mariadb-dump": true,
}

// Options are the settings found in option files.
type Options struct {
	User, Password, Host, Socket string
	Port                         int
	HasUser, HasPassword         bool
	HasHost, HasPort, HasSocket  bool
}

// Credentials are what a connection uses.
type Credentials struct {
	User     string
	Password string
	Host     string // "" when neither the DSN nor an option file names one
	Port     string // "" likewise
	Socket   string // a unix socket from an option file, used when the DSN names no host
	// PasswordFrom says where the password came from: "dsn", "MYSQL_PWD",
	// the option file's path, or "" (none). Never the password itself.
	PasswordFrom string
}

// DefaultsFileParams are the DSN parameters that name an option file,
// read instead of ~/.my.cnf.
var DefaultsFileParams = []string{"defaults-file", "defaults_file"}

// Resolve returns the credentials for d. getenv reads the environment
// (MYSQL_PWD, HOME). An option file that cannot be read or parsed is an
// error naming it (and the line).
func Resolve(d *dsn.DSN, getenv func(string) string) (Credentials, error) {
	var c Credentials
	u := d.URL
	if u == nil {
		return c, errors.New("not a mysql:// DSN")
	}
	hasUser, hasPass := false, false
	if u.User != nil {
		c.User = u.User.Username()
		hasUser = c.User != ""
		c.Password, hasPass = u.User.Password()
	}
	c.Host, c.Port = u.Hostname(), u.Port()
	if hasPass {
		c.PasswordFrom = "dsn"
	} else if p := getenv(EnvPassword); p != "" {
		c.Password, c.PasswordFrom, hasPass = p, EnvPassword, true
	}
	q := u.Query()
	path, required := "", false
	for _, k := range DefaultsFileParams {
		if v := q.Get(k); v != "" {
			path, required = v, true
		}
	}
	if path == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home == "" {
			return c, nil
		}
		path = filepath.Join(home, ".my.cnf")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !required {
		return c, nil
	}
	o, err := ReadFile(path)
	if err != nil {
		return c, err
	}
	if !hasUser && o.HasUser {
		c.User = o.User
	}
	if !hasPass && o.HasPassword {
		c.Password, c.PasswordFrom = o.Password, path
	}
	if c.Host == "" && o.HasHost {
		c.Host = o.Host
	}
	if c.Port == "" && o.HasPort {
		c.Port = strconv.Itoa(o.Port)
	}
	if o.HasSocket {
		c.Socket = o.Socket
	}
	return c, nil
}

// ReadFile reads the client settings of an option file.
func ReadFile(path string) (Options, error) {
	var o Options
	err := readInto(&o, path, 0)
	return o, err
}

func readInto(o *Options, path string, depth int) error {
	if depth > 10 {
		return fmt.Errorf("option file %s: !include nested more than 10 deep", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("option file: %w", err)
	}
	if st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("option file %s is world-writable (the mysql client ignores such files): chmod o-w %s", path, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("option file: %w", err)
	}
	group := ""
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("option file %s line %d: %s", path, n, fmt.Sprintf(format, args...))
		}
		switch {
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return bad("group %q lacks its closing ]", line)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return bad("unexpected %q after the group name", rest)
			}
			group = strings.ToLower(strings.TrimSpace(line[1:end]))
			continue
		case strings.HasPrefix(line, "!includedir"):
			dir := resolve(path, strings.TrimSpace(strings.TrimPrefix(line, "!includedir")))
			ents, err := os.ReadDir(dir)
			if err != nil {
				return bad("!includedir: %v", err)
			}
			var names []string
			for _, e := range ents {
				if !e.IsDir() && (strings.HasSuffix(e.Name(), ".cnf") || strings.HasSuffix(e.Name(), ".ini")) {
					names = append(names, e.Name())
				}
			}
			sort.Strings(names)
			for _, name := range names {
				if err := readInto(o, filepath.Join(dir, name), depth+1); err != nil {
					return err
				}
			}
			continue
		case strings.HasPrefix(line, "!include"):
			if err := readInto(o, resolve(path, strings.TrimSpace(strings.TrimPrefix(line, "!include"))), depth+1); err != nil {
				return err
			}
			continue
		case line[0] == '!':
			return bad("unknown directive %q (expected !include or !includedir)", line)
		}
		// The line's text is not quoted in errors: it may be a password.
		if group == "" {
			return bad("an option comes before any [group]")
		}
		key, raw, hasValue := strings.Cut(line, "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "_", "-")
		key = strings.TrimPrefix(key, "loose-")
		if key == "" || strings.ContainsAny(key, " \t\"'") {
			return bad("expected key = value or a lone key")
		}
		value, err := parseValue(raw)
		if err != nil {
			return bad("%s: %v", key, err)
		}
		if !groups[group] {
			continue
		}
		switch key {
		case "user":
			o.User, o.HasUser = value, true
		case "password":
			// A bare "password" makes the mysql client prompt; snapdata
			// never prompts, so it sets nothing.
			if hasValue {
				o.Password, o.HasPassword = value, true
			}
		case "host":
			o.Host, o.HasHost = value, true
		case "port":
			p, err := strconv.Atoi(value)
			if err != nil || p <= 0 || p > 65535 {
				return bad("port %q is not a port number", value)
			}
			o.Port, o.HasPort = p, true
		case "socket":
			o.Socket, o.HasSocket = value, true
		}
	}
	return nil
}

// resolve makes an !include path relative to the including file's
// directory.
func resolve(from, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(from), p)
}

// parseValue reads an option value: quoted ("…" or '…') or bare, with the
// mysql client's escapes (\n \t \r \b \s \\ \" \'), a bare value ending at
// a '#' comment.
func parseValue(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	var b strings.Builder
	if q := raw[0]; q == '"' || q == '\'' {
		for i := 1; i < len(raw); i++ {
			ch := raw[i]
			switch {
			case ch == '\\' && i+1 < len(raw):
				i++
				b.WriteByte(unescape(raw[i]))
			case ch == q:
				if rest := strings.TrimSpace(raw[i+1:]); rest != "" && rest[0] != '#' {
					return "", errors.New("unexpected text after the quoted value")
				}
				return b.String(), nil
			default:
				b.WriteByte(ch)
			}
		}
		return "", errors.New("the quoted value lacks its closing quote")
	}
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		switch {
		case ch == '#':
			return strings.TrimSpace(b.String()), nil
		case ch == '\\' && i+1 < len(raw):
			i++
			b.WriteByte(unescape(raw[i]))
		default:
			b.WriteByte(ch)
		}
	}
	return strings.TrimSpace(b.String()), nil
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 's':
		return ' '
	}
	return c
}
