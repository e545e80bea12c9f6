// Package sqlscript splits an SQL script (a clone hook) into statements the
// way each engine's own client does, so that a statement can be sent alone
// and an error can name the line it starts on.
//
// The splitter honours, per dialect:
//
//   - PostgreSQL: '…' strings (” inside), E'…' strings (backslash escapes),
//     "…" identifiers, $tag$…$tag$ dollar quotes, -- and nested /* */
//     comments, BEGIN ATOMIC … END bodies of CREATE FUNCTION/PROCEDURE
//     (CASE … END inside them) and parentheses (a rule's actions), as psql. A line starting with a backslash (a psql
//     meta-command such as \connect) is an error: it is not SQL.
//   - MySQL/MariaDB: '…' and "…" strings with backslash escapes, `…`
//     identifiers, -- (followed by a space), # and /* */ comments, and
//     DELIMITER lines, which change the statement terminator as in the
//     mysql client (for CREATE PROCEDURE/TRIGGER bodies).
//   - SQLite: '…' strings, "…", `…` and […] identifiers, -- and /* */
//     comments, and CREATE TRIGGER … BEGIN … END bodies (CASE … END inside
//     them).
package sqlscript

import (
	"fmt"
	"strings"
)

// Dialect selects the quoting and comment rules.
type Dialect int

// Dialects.
const (
	Postgres Dialect = iota
	MySQL
	SQLite
)

// Statement is one statement of a script.
type Statement struct {
	SQL  string // the statement without its terminator, leading comments and surrounding blanks
	Line int    // 1-based line of the statement's first character in the script
}

// Split returns the statements of script. Empty statements (";;",
// comments only) are left out. An unterminated string, quoted identifier,
// dollar quote or comment is an error naming the line it starts on.
func Split(script string, d Dialect) ([]Statement, error) {
	s := &splitter{src: script, d: d, delim: ";", line: 1}
	return s.run()
}

type splitter struct {
	src   string
	d     Dialect
	delim string
	pos   int
	line  int
	out   []Statement

	// the statement being read
	start     int // -1: no statement text yet
	startLine int
	words     []string // the first words of the statement (upper case), for block detection
	depth     int      // open BEGIN/CASE blocks inside a body
	parens    int      // open parentheses (PostgreSQL: a rule's actions hold semicolons)
	lastWord  string
}

func (s *splitter) run() ([]Statement, error) {
	s.start = -1
	atLineStart := true
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if atLineStart && s.start < 0 {
			if stop, err := s.lineCommand(); err != nil {
				return nil, err
			} else if stop {
				continue
			}
		}
		atLineStart = false
		switch {
		case c == '\n':
			s.line++
			s.pos++
			atLineStart = true
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			s.pos++
			continue
		case s.comment():
			continue
		}
		if s.depth == 0 && s.parens <= 0 && strings.HasPrefix(s.src[s.pos:], s.delim) {
			s.emit(s.pos)
			s.pos += len(s.delim)
			continue
		}
		if s.start < 0 {
			s.start, s.startLine = s.pos, s.line
		}
		if err := s.token(); err != nil {
			return nil, err
		}
	}
	s.emit(len(s.src))
	return s.out, nil
}

// lineCommand handles a line that is a client command rather than SQL:
// MySQL's DELIMITER, psql's backslash commands (an error). It reports
// whether it consumed the line.
func (s *splitter) lineCommand() (bool, error) {
	rest := s.src[s.pos:]
	trimmed := strings.TrimLeft(rest, " \t")
	eol := strings.IndexByte(trimmed, '\n')
	lineText := trimmed
	if eol >= 0 {
		lineText = trimmed[:eol]
	}
	switch s.d {
	case MySQL:
		if len(lineText) >= 10 && strings.EqualFold(lineText[:10], "DELIMITER ") || strings.EqualFold(strings.TrimSpace(lineText), "DELIMITER") {
			d := strings.TrimSpace(lineText[min(len(lineText), 9):])
			if d == "" {
				return false, fmt.Errorf("line %d: DELIMITER needs a terminator (DELIMITER // or DELIMITER ;)", s.line)
			}
			if f := strings.Fields(d); len(f) > 0 {
				d = f[0]
			}
			s.delim = d
			s.pos += len(rest) - len(trimmed) + len(lineText)
			return true, nil
		}
	case Postgres:
		if strings.HasPrefix(lineText, `\`) {
			cmd := lineText
			if f := strings.Fields(cmd); len(f) > 0 {
				cmd = f[0]
			}
			return false, fmt.Errorf("line %d: %s is a psql meta-command, not SQL: a hook script holds SQL statements only", s.line, cmd)
		}
	}
	return false, nil
}

// comment skips a comment at pos, reporting whether there was one.
func (s *splitter) comment() bool {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, "--"):
		if s.d == MySQL && len(rest) > 2 && !strings.ContainsRune(" \t\r\n", rune(rest[2])) {
			return false // MySQL: "--" starts a comment only before a blank
		}
		s.skipLine()
		return true
	case s.d == MySQL && rest[0] == '#':
		s.skipLine()
		return true
	case strings.HasPrefix(rest, "/*"):
		if s.d == MySQL && (strings.HasPrefix(rest, "/*!") || strings.HasPrefix(rest, "/*M!")) {
			return false // executable comment: part of the statement (token handles it)
		}
		s.blockComment()
		return true
	}
	return false
}

func (s *splitter) skipLine() {
	for s.pos < len(s.src) && s.src[s.pos] != '\n' {
		s.pos++
	}
}

// blockComment skips /* … */ (nested in PostgreSQL). An unterminated
// comment runs to the end of the script, as in the engines' clients.
func (s *splitter) blockComment() {
	depth := 0
	for s.pos < len(s.src) {
		rest := s.src[s.pos:]
		switch {
		case strings.HasPrefix(rest, "/*"):
			if depth == 0 || s.d == Postgres {
				depth++
			}
			s.pos += 2
		case strings.HasPrefix(rest, "*/"):
			depth--
			s.pos += 2
			if depth == 0 {
				return
			}
		default:
			if rest[0] == '\n' {
				s.line++
			}
			s.pos++
		}
	}
}

// token consumes one token of statement text: a quoted string or name,
// a dollar quote, a word or one other character.
func (s *splitter) token() error {
	c := s.src[s.pos]
	switch {
	case c == '\'':
		return s.quoted('\'', s.d == MySQL, "string")
	case (c == 'E' || c == 'e') && s.d == Postgres && s.pos+1 < len(s.src) && s.src[s.pos+1] == '\'' && !s.prevIdentChar():
		s.pos++
		return s.quoted('\'', true, "string")
	case c == '"':
		return s.quoted('"', s.d == MySQL, "quoted name")
	case c == '`' && s.d != Postgres:
		return s.quoted('`', false, "quoted name")
	case c == '[' && s.d == SQLite:
		return s.closeOn2("]", "bracketed name")
	case c == '$' && s.d == Postgres && !s.prevIdentChar():
		if tag, ok := dollarTag(s.src[s.pos:]); ok {
			return s.closeOn2(tag, "dollar-quoted string")
		}
		s.pos++
	case c == '/' && s.d == MySQL && strings.HasPrefix(s.src[s.pos:], "/*"):
		return s.closeOn2("*/", "comment")
	case isWordStart(c):
		j := s.pos
		for j < len(s.src) && isWordChar(s.src[j]) {
			j++
		}
		s.word(strings.ToUpper(s.src[s.pos:j]))
		s.pos = j
	case s.d == Postgres && c == '(':
		s.parens++
		s.pos++
	case s.d == Postgres && c == ')':
		s.parens--
		s.pos++
	default:
		s.pos++
	}
	return nil
}

func (s *splitter) prevIdentChar() bool {
	return s.pos > 0 && isWordChar(s.src[s.pos-1])
}

// quoted consumes a string or name closed by q (doubled q inside;
// backslash escapes when backslash).
func (s *splitter) quoted(q byte, backslash bool, what string) error {
	line := s.line
	s.pos++
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\\' && backslash && s.pos+1 < len(s.src):
			if s.src[s.pos+1] == '\n' {
				s.line++
			}
			s.pos += 2
			continue
		case c == q:
			if s.pos+1 < len(s.src) && s.src[s.pos+1] == q {
				s.pos += 2
				continue
			}
			s.pos++
			return nil
		case c == '\n':
			s.line++
		}
		s.pos++
	}
	return fmt.Errorf("line %d: unterminated %s", line, what)
}

// closeOn2 consumes text up to and including the first end after pos's
// opening (of len(end) when end is a tag, else one character).
func (s *splitter) closeOn2(end, what string) error {
	line := s.line
	open := len(end)
	if end == "]" || end == "*/" {
		open = 1
		if end == "*/" {
			open = 2
		}
	}
	i := strings.Index(s.src[s.pos+open:], end)
	if i < 0 {
		return fmt.Errorf("line %d: unterminated %s", line, what)
	}
	stop := s.pos + open + i + len(end)
	s.line += strings.Count(s.src[s.pos:stop], "\n")
	s.pos = stop
	return nil
}

// dollarTag returns the $tag$ opening s, if any.
func dollarTag(s string) (string, bool) {
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '$' {
			return s[:i+1], true
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || i > 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

func isWordStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isWordChar(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' || c == '$' }

// word tracks the words that open and close bodies holding semicolons:
// BEGIN ATOMIC … END (PostgreSQL functions), CREATE TRIGGER … BEGIN … END
// (SQLite), and CASE … END inside them.
func (s *splitter) word(w string) {
	if len(s.words) < 6 {
		s.words = append(s.words, w)
	}
	prev := s.lastWord
	s.lastWord = w
	if !s.hasBodies() {
		return
	}
	switch {
	case s.d == Postgres && w == "ATOMIC" && prev == "BEGIN" && s.depth == 0:
		s.depth++
	case s.d == SQLite && w == "BEGIN":
		s.depth++
	case w == "CASE" && s.depth > 0:
		s.depth++
	case w == "END" && s.depth > 0:
		s.depth--
	}
}

// hasBodies reports whether the statement is one whose body may hold
// semicolons: CREATE [OR REPLACE] FUNCTION/PROCEDURE (PostgreSQL) or
// CREATE [TEMP] TRIGGER (SQLite).
func (s *splitter) hasBodies() bool {
	if s.d == MySQL || len(s.words) < 2 || s.words[0] != "CREATE" {
		return false
	}
	for _, w := range s.words[1:] {
		switch w {
		case "OR", "REPLACE", "TEMP", "TEMPORARY":
			continue
		case "FUNCTION", "PROCEDURE":
			return s.d == Postgres
		case "TRIGGER":
			return s.d == SQLite
		}
		return false
	}
	return false
}

// emit ends the current statement at end.
func (s *splitter) emit(end int) {
	if s.start >= 0 {
		text := strings.TrimRight(s.src[s.start:end], " \t\r\n\f")
		if text != "" {
			s.out = append(s.out, Statement{SQL: text, Line: s.startLine})
		}
	}
	s.start, s.words, s.depth, s.parens, s.lastWord = -1, nil, 0, 0, ""
}
