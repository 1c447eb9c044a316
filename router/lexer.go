package router

import "strings"

// lexer.go: a byte-level tokenizer that knows just enough of MySQL's lexical
// rules to classify statements without the full grammar: where strings, quoted
// identifiers and comments begin and end, user and system variables,
// executable comments, and the multi-byte characters of some client charsets
// (charset.go). Tokens are substrings of the input, so the tokenizer never
// allocates.
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
	execAmb bool  // ... and that comment is the first ambiguous one (amb)
	started bool  // a token has been returned: later comments carry no hint
	hint    Route // the route forced by a leading switchyard comment
	broken  bool  // an unterminated string, identifier or comment

	usedParser bool // some statement needed the slow path

	// ambN counts the versioned comments that servers read differently;
	// amb, when not nil, records where the first one is (ambiguousIn).
	ambN int
	amb  *ambiguous

	// edits, when not nil, collects what the parser's copy of the text
	// must blank or replace (see parserText).
	edits *parserEdits

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
		if lx.inExec {
			// An executable comment that never closes (a "--" inside it
			// hid its "*/"): MariaDB rejects the statement.
			lx.broken = true
		}
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
		lx.pos = lx.wordEnd(start+1, true)
		return lx.emit(tokNumber, start)
	case isWordByte(c):
		i := start + 1
		for i < len(s) && s[i] < 0x80 && isWordByte(s[i]) {
			i++
		}
		if c >= 0x80 || i < len(s) && s[i] >= 0x80 {
			i = lx.wordEnd(start, false)
		}
		lx.pos = i
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
	lx.pos = lx.wordEnd(lx.pos, true)
	return lx.emit(kind, start)
}

// wordEnd returns the end of the word bytes (and dots, if dots) from i. A
// multi-byte character of the client charset is part of the word whatever
// its trail bytes are, as in the server's identifier scanner.
func (lx *lexer) wordEnd(i int, dots bool) int {
	s := lx.s
	mb := lx.mode&modeCharsets != 0
	for i < len(s) {
		c := s[i]
		if mb && c >= 0x80 {
			if n := lx.mbLen(i); n > 0 {
				i += n
				continue
			}
		}
		if (c == 0xA0 || c == 0xFF) && lx.mode&ModeCharset8Bit != 0 {
			// A no-break space: the server ends the word here.
			lx.broken = true
		}
		if !isWordByte(c) && (!dots || c != '.') {
			break
		}
		i++
	}
	return i
}

// skipQuoted skips a quoted string or identifier that starts at lx.pos. A
// doubled quote stands for itself; a backslash escapes the next byte when
// backslash is set. An unterminated quote runs to the end of the input.
func (lx *lexer) skipQuoted(q byte, backslash bool) {
	if lx.mode&modeCharsets != 0 {
		lx.skipQuotedMB(q, backslash)
		return
	}
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

// skipSpace skips whitespace and comments. Of an executable comment (/*!,
// /*!NNNNN, /*M!, /*M!NNNNNN) that some server runs, only the markers are
// skipped (see blockComment). Comments before the first token are searched
// for a routing hint.
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
			(lx.pos+2 == len(s) || s[lx.pos+2] <= ' ' || s[lx.pos+2] == 0x7F):
			// "--" and a space or control character: MariaDB's
			// my_isspace or my_iscntrl in the client charset.
			lx.lineComment(lx.pos + 2)
		case c == '-' && lx.pos+2 < len(s) && s[lx.pos+1] == '-' && s[lx.pos+2] >= 0x80 &&
			lx.mode&ModeCharset8Bit != 0:
			// Whether that is a comment depends on the charset's table.
			lx.broken = true
			return
		case c == '/' && lx.pos+1 < len(s) && s[lx.pos+1] == '*':
			lx.blockComment()
		case c == '*' && lx.inExec && lx.pos+1 < len(s) && s[lx.pos+1] == '/':
			lx.inExec = false
			if lx.execAmb {
				lx.execAmb = false
				lx.amb.close = lx.pos
			}
			lx.edit(lx.pos, lx.pos+2)
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
	lx.edit(lx.pos, end)
	lx.pos = end
}

// blockComment skips the comment at lx.pos, or just the opening marker of an
// executable comment.
//
// MariaDB's rules (sql_lex.cc, https://mariadb.com/kb/en/comment-syntax/):
// "/*!" and "/*M!" (upper-case M only) open executable comments. Exactly five
// digits after the "!" are a version, six when a sixth digit follows; fewer
// are no version, and the digits are code. A plain comment ends at the first
// "*/"; a versioned comment the server skips may hold one level of nested
// "/* */". An executable comment inside another ends both at its "*/".
// readings.go says which versioned comments are code, comments, or
// ambiguous.
func (lx *lexer) blockComment() {
	s := lx.s
	start := lx.pos
	i := start + 2
	exec, mariadb := false, false
	switch {
	case i < len(s) && s[i] == '!':
		exec, i = true, i+1
	case i+1 < len(s) && s[i] == 'M' && s[i+1] == '!':
		exec, mariadb, i = true, true, i+2
	}
	if !exec {
		end := strings.Index(s[i:], "*/")
		if end < 0 {
			lx.broken = true
			lx.pos = len(s)
			return
		}
		lx.noteComment(s[i : i+end])
		lx.edit(start, i+end+2)
		lx.pos = i + end + 2
		return
	}
	v, digits := 0, 0
	for digits < 6 && i+digits < len(s) && s[i+digits] >= '0' && s[i+digits] <= '9' {
		v = v*10 + int(s[i+digits]-'0')
		digits++
	}
	if digits < 5 {
		digits = 0
	}
	open := i + digits
	switch versionReading(mariadb, digits, v) {
	case readComment:
		end := skippedCommentEnd(s, open)
		if end < 0 {
			lx.broken = true
			lx.pos = len(s)
			return
		}
		lx.noteComment(s[open : end-2])
		lx.edit(start, end)
		lx.pos = end
		return
	case readAmbiguous:
		lx.ambN++
		if a := lx.amb; a != nil && lx.ambN == 1 {
			*a = ambiguous{start: start, open: open, close: -1, end: skippedCommentEnd(s, open)}
			lx.execAmb = !lx.inExec
		}
	}
	if lx.inExec {
		// MariaDB ends both comments at the next "*/" and reads the
		// second one as the tokens '*' '/': a syntax error at best.
		lx.broken = true
		lx.execAmb = false
	}
	lx.inExec = true
	lx.edit(start, open)
	lx.pos = open
}

type execReading uint8

const (
	readCode      execReading = iota // every supported server runs the content
	readComment                      // no server does
	readAmbiguous                    // some do and some do not
)

// versionReading says how the servers read an executable comment with the
// given version (digits 0: none); mariadb marks "/*M!".
func versionReading(mariadb bool, digits, v int) execReading {
	switch {
	case mariadb && digits == 6 && v >= 900000:
		// No MariaDB has such a version, and MySQL never runs /*M!
		// (mariadb-dump's /*M!999999 hides text from every server).
		return readComment
	case digits == 6 && v >= 900000:
		// MariaDB has no such version; MySQL reads five digits, 90000
		// and up: MySQL 9 runs it.
		return readAmbiguous
	case mariadb:
		return readAmbiguous // MySQL never runs /*M!
	case digits == 0, digits == 5 && v < 50700:
		return readCode
	}
	// 50700-99999: MySQL 5.7 and up run it, MariaDB does not. Six digits:
	// MariaDB compares them with its version, MySQL reads five of them.
	return readAmbiguous
}

// skippedCommentEnd returns the end (after "*/") of a versioned comment the
// server skips, whose text starts at i, or -1 if it never ends. Like MariaDB's
// consume_comment(lip, 1), one level of "/* */" may nest inside it.
func skippedCommentEnd(s string, i int) int {
	nested := false
	for ; i+1 < len(s); i++ {
		switch {
		case !nested && s[i] == '/' && s[i+1] == '*':
			nested = true
			i++
		case s[i] == '*' && s[i+1] == '/':
			if !nested {
				return i + 2
			}
			nested = false
			i++
		}
	}
	return -1
}

// edit records that the parser's copy of the text must blank s[a:b].
func (lx *lexer) edit(a, b int) {
	if lx.edits != nil {
		lx.edits.blank = append(lx.edits.blank, a, b)
	}
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

// charLen is mbLen for a lexer that may have no multi-byte charset.
func (lx *lexer) charLen(i int) int {
	if lx.mode&modeCharsets == 0 || lx.s[i] < 0x80 {
		return 1
	}
	if n := lx.mbLen(i); n > 0 {
		return n
	}
	return 1
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
	// In a multi-byte client charset a trail byte may look like a quote
	// or a backslash: step over whole characters.
	var mb lexer
	if mode&modeCharsets != 0 {
		mb.init(body, mode)
	}
	plain := true
	for i := 0; i < len(body); i++ {
		if n := mb.charLen(i); n > 1 {
			i += n - 1
			continue
		}
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
		if n := mb.charLen(i); n > 1 {
			out = append(out, body[i:i+n]...)
			i += n - 1
			continue
		}
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
