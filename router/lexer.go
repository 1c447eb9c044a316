package router

import "strings"

// lexer.go: a byte-level tokenizer that knows just enough of MySQL's lexical
// rules to classify statements without the full grammar: where strings, quoted
// identifiers and comments begin and end, user and system variables, and
// executable comments. Tokens are substrings of the input, so the tokenizer
// never allocates.
//
// Lexical structure: https://mariadb.com/kb/en/comment-syntax/,
// https://dev.mysql.com/doc/refman/8.0/en/comments.html and
// https://dev.mysql.com/doc/refman/8.0/en/string-literals.html.

type tokKind uint8

const (
	tokEOF     tokKind = iota
	tokWord            // unquoted identifier or keyword
	tokQuoted          // `identifier` (or "identifier" under ANSI_QUOTES)
	tokString          // 'string' or "string"
	tokNumber          // anything that starts with a digit
	tokUserVar         // @name, @'name', @`name`
	tokSysVar          // @@name, @@session.name, @@global.name
	tokParam           // ? placeholder
	tokPunct           // one byte of punctuation, or ":="
)

type token struct {
	kind tokKind
	text string // the token as written, quotes included
	pos  int    // byte offset of the token in the input
}

// is reports whether t is the punctuation p.
func (t token) is(p string) bool { return t.kind == tokPunct && t.text == p }

// kw reports whether t is the unquoted word w; w must be upper case.
func (t token) kw(w string) bool { return t.kind == tokWord && eqFold(t.text, w) }

// end reports whether t ends a statement.
func (t token) end() bool { return t.kind == tokEOF || (t.kind == tokPunct && t.text == ";") }

type lexer struct {
	s    string
	pos  int
	mode Mode

	inExec  bool  // inside /*!...*/ or /*M!...*/, whose closing */ is skipped
	started bool  // a token has been returned: later comments carry no hint
	hint    Route // the route forced by a leading switchyard comment
	broken  bool  // an unterminated string, identifier or comment

	usedParser bool // some statement needed the slow path

	// marks, when not nil, collects the start and end offsets of the
	// executable comment markers skipped (for the parser, which reads
	// them differently).
	marks *[]int

	depth    int // parenthesis depth after the last token returned by next
	lastEnd  int // end offset and kind of the last token scanned
	lastKind tokKind
	maxDepth int

	peeked bool
	pk     token
}

func (lx *lexer) init(s string, mode Mode) {
	*lx = lexer{s: s, mode: mode}
}

// next returns the next token and consumes it.
func (lx *lexer) next() token {
	var t token
	if lx.peeked {
		lx.peeked = false
		t = lx.pk
	} else {
		t = lx.scan()
	}
	if t.kind == tokPunct && len(t.text) == 1 {
		switch t.text[0] {
		case '(':
			lx.depth++
			if lx.depth > lx.maxDepth {
				lx.maxDepth = lx.depth
			}
		case ')':
			if lx.depth > 0 {
				lx.depth--
			}
		}
	}
	return t
}

// peek returns the next token without consuming it.
func (lx *lexer) peek() token {
	if !lx.peeked {
		lx.pk = lx.scan()
		lx.peeked = true
	}
	return lx.pk
}

func (lx *lexer) scan() token {
	lx.skipSpace()
	s := lx.s
	if lx.pos >= len(s) {
		return token{kind: tokEOF, pos: len(s)}
	}
	lx.started = true
	start := lx.pos
	c := s[start]
	switch {
	case c == '\'':
		lx.skipQuoted('\'', lx.mode&ModeNoBackslashEscapes == 0)
		return lx.emit(tokString, start)
	case c == '"':
		if lx.mode&ModeANSIQuotes != 0 {
			lx.skipQuoted('"', false)
			return lx.emit(tokQuoted, start)
		}
		lx.skipQuoted('"', lx.mode&ModeNoBackslashEscapes == 0)
		return lx.emit(tokString, start)
	case c == '`':
		lx.skipQuoted('`', false)
		return lx.emit(tokQuoted, start)
	case c == '@' && start == lx.lastEnd && (lx.lastKind == tokString || lx.lastKind == tokQuoted):
		// 'user'@'host' in an account name, not a variable.
		lx.pos++
		return lx.emit(tokPunct, start)
	case c == '@':
		return lx.scanVar(start)
	case c == '?':
		lx.pos++
		return lx.emit(tokParam, start)
	case c >= '0' && c <= '9', c == '.' && start+1 < len(s) && s[start+1] >= '0' && s[start+1] <= '9':
		lx.pos++
		for lx.pos < len(s) && (isWordByte(s[lx.pos]) || s[lx.pos] == '.') {
			lx.pos++
		}
		return lx.emit(tokNumber, start)
	case isWordByte(c):
		lx.pos++
		for lx.pos < len(s) && isWordByte(s[lx.pos]) {
			lx.pos++
		}
		return lx.emit(tokWord, start)
	case c == ':' && start+1 < len(s) && s[start+1] == '=':
		lx.pos += 2
		return lx.emit(tokPunct, start)
	}
	lx.pos++
	return lx.emit(tokPunct, start)
}

// emit returns the token of the given kind from start to the current position.
func (lx *lexer) emit(kind tokKind, start int) token {
	lx.lastEnd, lx.lastKind = lx.pos, kind
	return token{kind: kind, text: lx.s[start:lx.pos], pos: start}
}

// scanVar scans @name, @'name', @@name and @@scope.name.
func (lx *lexer) scanVar(start int) token {
	s := lx.s
	lx.pos++ // '@'
	kind := tokUserVar
	if lx.pos < len(s) && s[lx.pos] == '@' {
		kind = tokSysVar
		lx.pos++
	}
	if lx.pos < len(s) {
		switch q := s[lx.pos]; q {
		case '\'', '"':
			lx.skipQuoted(q, lx.mode&ModeNoBackslashEscapes == 0)
			return lx.emit(kind, start)
		case '`':
			lx.skipQuoted(q, false)
			return lx.emit(kind, start)
		}
	}
	for lx.pos < len(s) && (isWordByte(s[lx.pos]) || s[lx.pos] == '.') {
		lx.pos++
	}
	return lx.emit(kind, start)
}

// skipQuoted skips a quoted string or identifier that starts at lx.pos. A
// doubled quote stands for itself; a backslash escapes the next byte when
// backslash is set. An unterminated quote runs to the end of the input.
func (lx *lexer) skipQuoted(q byte, backslash bool) {
	s := lx.s
	i := lx.pos + 1
	for i < len(s) {
		// Jump to the next quote; a backslash before it may escape it.
		j := strings.IndexByte(s[i:], q)
		if j < 0 {
			break
		}
		if backslash {
			if k := strings.IndexByte(s[i:i+j], '\\'); k >= 0 {
				i += k + 2
				continue
			}
		}
		i += j
		if i+1 < len(s) && s[i+1] == q {
			i += 2
			continue
		}
		lx.pos = i + 1
		return
	}
	lx.pos = len(s)
	lx.broken = true
}

// skipSpace skips whitespace and comments. Executable comments (/*!, /*!NNNNN,
// /*M!, /*M!NNNNNN) are code to MariaDB: only their markers are skipped.
// Comments before the first token are searched for a routing hint.
func (lx *lexer) skipSpace() {
	s := lx.s
	for lx.pos < len(s) {
		c := s[lx.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.pos++
		case c == '#':
			lx.lineComment(lx.pos + 1)
		case c == '-' && lx.pos+1 < len(s) && s[lx.pos+1] == '-' &&
			(lx.pos+2 == len(s) || s[lx.pos+2] <= ' '):
			lx.lineComment(lx.pos + 2)
		case c == '/' && lx.pos+1 < len(s) && s[lx.pos+1] == '*':
			lx.blockComment()
		case c == '*' && lx.inExec && lx.pos+1 < len(s) && s[lx.pos+1] == '/':
			lx.inExec = false
			if lx.marks != nil {
				*lx.marks = append(*lx.marks, lx.pos, lx.pos+2)
			}
			lx.pos += 2
		default:
			return
		}
	}
}

func (lx *lexer) lineComment(body int) {
	s := lx.s
	end := body
	for end < len(s) && s[end] != '\n' {
		end++
	}
	lx.noteComment(s[body:end])
	lx.pos = end
}

func (lx *lexer) blockComment() {
	s := lx.s
	i := lx.pos + 2
	exec := false
	if i < len(s) && s[i] == '!' {
		exec, i = true, i+1
	} else if i+1 < len(s) && (s[i] == 'M' || s[i] == 'm') && s[i+1] == '!' {
		exec, i = true, i+2
	}
	if exec {
		// The version number: five digits in MySQL, five or six in MariaDB.
		// The server runs the content when it is at least that version; the
		// classifier assumes it does, except for six-digit versions from
		// 900000 up, which no server has (mariadb-dump writes /*M!999999
		// to hide text from every server).
		v, n := 0, 0
		for ; n < 6 && i < len(s) && s[i] >= '0' && s[i] <= '9'; n++ {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if n == 6 && v >= 900000 {
			exec = false
		}
	}
	if exec {
		lx.inExec = true
		if lx.marks != nil {
			*lx.marks = append(*lx.marks, lx.pos, i)
		}
		lx.pos = i
		return
	}
	for j := i; j+1 < len(s); j++ {
		if s[j] == '*' && s[j+1] == '/' {
			lx.noteComment(s[i:j])
			lx.pos = j + 2
			return
		}
	}
	lx.broken = true
	lx.pos = len(s)
}

const hintPrefix = "switchyard:route="

// noteComment records a routing hint found in a leading comment. The first
// valid hint wins.
func (lx *lexer) noteComment(body string) {
	if lx.started || lx.hint != RouteDefault {
		return
	}
	for i := 0; i+len(hintPrefix) <= len(body); i++ {
		if !eqFold(body[i:i+len(hintPrefix)], "SWITCHYARD:ROUTE=") {
			continue
		}
		v := body[i+len(hintPrefix):]
		n := 0
		for n < len(v) && isWordByte(v[n]) {
			n++
		}
		switch {
		case eqFold(v[:n], "PRIMARY"):
			lx.hint = RoutePrimary
			return
		case eqFold(v[:n], "REPLICA"):
			lx.hint = RouteReplica
			return
		}
	}
}

func isWordByte(c byte) bool { return wordBytes[c] }

// wordBytes marks the bytes of unquoted identifiers: ASCII letters, digits,
// '_', '$' and every byte of a multi-byte UTF-8 character.
var wordBytes = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
	}
	return t
}()

// eqFold compares s with upper, which must be upper-case ASCII, ignoring the
// case of ASCII letters in s.
func eqFold(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// lowerInto writes the ASCII lower case of s into buf and returns it, or false
// when s does not fit.
func lowerInto(buf []byte, s string) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}

// unquote returns the identifier or string in t without its quotes. It
// allocates only when the text contains an escaped or doubled quote.
func unquote(t token, mode Mode) string {
	s := t.text
	if len(s) < 2 {
		return s
	}
	q := s[0]
	if q != '\'' && q != '"' && q != '`' {
		return s
	}
	body := s[1:]
	if len(body) > 0 && body[len(body)-1] == q {
		body = body[:len(body)-1]
	}
	backslash := q != '`' && mode&ModeNoBackslashEscapes == 0 && t.kind != tokQuoted
	plain := true
	for i := 0; i < len(body); i++ {
		if body[i] == q || (backslash && body[i] == '\\') {
			plain = false
			break
		}
	}
	if plain {
		return body
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == q && i+1 < len(body) && body[i+1] == q:
			i++
		case c == '\\' && backslash && i+1 < len(body):
			i++
			switch body[i] {
			case '0':
				c = 0
			case 'b':
				c = '\b'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'Z':
				c = 0x1a
			case '%', '_':
				out = append(out, '\\')
				c = body[i]
			default:
				c = body[i]
			}
		}
		out = append(out, c)
	}
	return string(out)
}
