package oracle

import (
	"bytes"
	"fmt"
)

// cmdKind is what the scanner read at the start of a command.
type cmdKind uint8

const (
	cmdEOF      cmdKind = iota
	cmdEmpty            // a delimiter with nothing before it
	cmdLine             // a line starting with '#' or '-'
	cmdBlockEnd         // '}'
	cmdQuery            // text up to the delimiter, or an if/while up to its '{'
)

type command struct {
	kind cmdKind
	text string
	line int
}

// scanner splits a mysqltest file into commands like mysqltest's read_line.
type scanner struct {
	src   []byte
	pos   int
	line  int
	delim string
	// mbLead reports whether a byte starts a two-byte character of the current
	// character set whose second byte may look like ASCII (a quote, a backslash):
	// mysqltest reads such characters whole. Nil for single-byte sets and UTF-8.
	mbLead func(byte) bool
	// noBackslash and ansiQuotes follow the session's sql_mode, which mysqltest
	// learns from the server: with NO_BACKSLASH_ESCAPES a backslash escapes
	// nothing, with ANSI_QUOTES it escapes nothing inside "...".
	noBackslash, ansiQuotes bool
	// cli reads a script of the mariadb command-line client: no blocks, and
	// "delimiter X" is a line of its own (see ExtractSQLScript).
	cli bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// skipSpace skips white space, counting lines.
func (s *scanner) skipSpace() {
	for s.pos < len(s.src) && isSpace(s.src[s.pos]) {
		if s.src[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

// skipLine moves past the next newline.
func (s *scanner) skipLine() {
	i := bytes.IndexByte(s.src[s.pos:], '\n')
	if i < 0 {
		s.pos = len(s.src)
		return
	}
	s.pos += i + 1
	s.line++
}

func (s *scanner) atDelim() bool { return bytes.HasPrefix(s.src[s.pos:], []byte(s.delim)) }

// next reads one command.
func (s *scanner) next() (command, error) {
	s.skipSpace()
	if s.pos >= len(s.src) {
		return command{kind: cmdEOF}, nil
	}
	line := s.line
	switch c := s.src[s.pos]; {
	case c == '#' || c == '-':
		start := s.pos
		s.skipLine()
		return command{kind: cmdLine, text: string(bytes.TrimRight(s.src[start:s.pos], "\r\n")), line: line}, nil
	case s.atDelim():
		s.pos += len(s.delim)
		return command{kind: cmdEmpty, line: line}, nil
	case c == '}' && !s.cli:
		s.pos++
		return command{kind: cmdBlockEnd, line: line}, nil
	}
	return s.query()
}

// query reads up to the delimiter outside quotes, or for if and while up to '{'.
func (s *scanner) query() (command, error) {
	start, line := s.pos, s.line
	block := false
	w, rest := firstWord(string(s.src[s.pos:min(s.pos+10, len(s.src))]))
	if s.cli && w == "delimiter" && (rest == "" || isSpace(rest[0])) {
		s.skipLine()
		return command{kind: cmdQuery, text: string(bytes.TrimSpace(s.src[start:s.pos])), line: line}, nil
	}
	if !s.cli && (w == "if" || w == "while") {
		block = rest == "" || rest[0] == '(' || isSpace(rest[0])
	}
	var quote byte
	quoteLine := 0
	slash := false // the previous byte outside quotes was a backslash
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if s.mbLead != nil && c >= 0x80 && s.mbLead(c) && s.pos+1 < len(s.src) {
			s.pos += 2
			slash = false
			continue
		}
		if c == '\n' {
			s.line++
		}
		if quote != 0 {
			switch {
			case c == quote:
				quote = 0
			case c == '\\' && s.escapes(quote) && s.pos+1 < len(s.src):
				s.pos++
				if s.src[s.pos] == '\n' {
					s.line++
				}
			}
			s.pos++
			continue
		}
		switch {
		case s.atDelim():
			text := s.src[start:s.pos]
			s.pos += len(s.delim)
			return command{kind: cmdQuery, text: crlf(text), line: line}, nil
		case c == '{' && block:
			s.pos++
			return command{kind: cmdQuery, text: crlf(s.src[start:s.pos]), line: line}, nil
		case (c == '\'' || c == '"' || c == '`') && !slash:
			quote, quoteLine = c, s.line
		}
		slash = c == '\\' && !s.noBackslash
		s.pos++
	}
	if quote != 0 {
		return command{}, fmt.Errorf("quote %c opened on line %d is never closed", quote, quoteLine)
	}
	// mysqltest drops an unterminated last command.
	return command{kind: cmdEOF}, nil
}

// escapes reports whether a backslash escapes the next byte inside quote.
func (s *scanner) escapes(quote byte) bool {
	return quote != '`' && !s.noBackslash && !(s.ansiQuotes && quote == '"')
}

// crlf returns text with "\r\n" turned into "\n", as mysqltest reads it.
func crlf(text []byte) string {
	if bytes.IndexByte(text, '\r') < 0 {
		return string(text)
	}
	return string(bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n")))
}

// mbLeadFunc returns the scanner's mbLead for a character set name: the sets whose
// second byte can be an ASCII byte.
func mbLeadFunc(charset string) func(byte) bool {
	switch charset {
	case "sjis", "cp932":
		return func(c byte) bool { return c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc }
	case "gbk", "gb18030":
		return func(c byte) bool { return c >= 0x81 && c <= 0xfe }
	case "big5":
		return func(c byte) bool { return c >= 0xa1 && c <= 0xf9 }
	}
	return nil
}
