package router

import "unicode/utf8"

// digest.go: statement digests, the text of a statement with its literals
// taken out, so that statements that differ only in their values are counted
// together. The digest is built from the lexer's tokens, so a string literal
// is recognised exactly as the server (and the classifier) would in the
// session's sql_mode and client charset: its bytes never reach the digest,
// whatever quotes, escapes or multi-byte characters it holds.
//
// Rules, applied to the tokens:
//   - string and number literals (hex 0x.., X'..', B'..', N'..', _charset'..',
//     a signed number) become "?"; TRUE, FALSE and NULL stay;
//   - an IN list made only of literals and placeholders becomes "IN (...)";
//   - the rows of a multi-row VALUES after the first become ", ...";
//   - comments go, whitespace becomes one space where one is needed, common
//     keywords are upper-cased, a trailing ";" goes;
//   - the text is cut at MaxDigestLen bytes.

// MaxDigestLen bounds the length of a digest's text.
const MaxDigestLen = 1024

// Digest returns the digest text of sql, tokenized in mode, and its id (a
// 64-bit FNV-1a hash of the text).
func Digest(sql string, mode Mode) (text string, id uint64) {
	b := AppendDigest(nil, sql, mode)
	return string(b), DigestID(b)
}

// DigestID returns the id of a digest text.
func DigestID(text []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range text {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// AppendDigest appends the digest text of sql, tokenized in mode, to dst.
// It allocates only when dst has no room.
func AppendDigest(dst []byte, sql string, mode Mode) []byte {
	var lx lexer
	lx.init(sql, mode)
	d := digester{out: dst, base: len(dst), inList: -1}
	for {
		t := lx.next()
		if t.kind == tokEOF {
			break
		}
		if t.is(";") && lx.peek().kind == tokEOF {
			break
		}
		switch {
		case t.kind == tokString, t.kind == tokNumber:
			d.literal(t)
		case t.kind == tokWord && lx.peek().kind == tokString && introducer(t, lx.pk):
			lx.next()
			d.literal(t)
		case (t.is("-") || t.is("+")) && !d.prevValue && lx.peek().kind == tokNumber:
			lx.next()
			d.literal(t)
		case t.is(",") && d.valuesDepth == d.depth+1 && d.rowDone && lx.peek().is("("):
			// Another row of a multi-row VALUES: it folds into ", ...".
			d.skipRow(&lx)
		default:
			d.token(t)
		}
		if len(d.out)-d.base > MaxDigestLen {
			break
		}
	}
	if len(d.out)-d.base > MaxDigestLen {
		cut := d.base + MaxDigestLen
		for cut > d.base && !utf8.RuneStart(d.out[cut]) {
			cut--
		}
		d.out = append(d.out[:cut], "..."...)
	}
	return d.out
}

// introducer reports whether the word w makes one literal with the string s
// after it: X'..', B'..', N'..' (written without a space), or a charset
// introducer such as _utf8mb4 '..'.
func introducer(w, s token) bool {
	if len(w.text) > 1 && w.text[0] == '_' {
		return true
	}
	if w.pos+len(w.text) != s.pos || len(w.text) != 1 {
		return false
	}
	switch w.text[0] {
	case 'x', 'X', 'b', 'B', 'n', 'N':
		return true
	}
	return false
}

// digester writes a digest, one token at a time.
type digester struct {
	out  []byte
	base int // where the digest starts in out

	prev      token // the last token written
	prevValue bool  // ... and it ends an operand: a sign after it is binary
	prevKW    bool  // ... and it is a keyword
	written   bool  // a token has been written

	depth int // parentheses open

	// inList is where the "(" of an IN list is in out, -1 if none is
	// open; listPure says that it holds only literals and commas so far.
	inList    int
	listDepth int
	listPure  bool
	afterIn   bool // the last token was IN

	// valuesDepth is depth+1 at a VALUES keyword (0: none); rowDone: the
	// first row after it closed; folded: ", ..." was written.
	valuesDepth int
	rowDone     bool
	folded      bool
}

// literal writes a literal as "?".
func (d *digester) literal(t token) {
	d.space(token{kind: tokParam, text: "?", pos: t.pos})
	d.out = append(d.out, '?')
	d.wrote(token{kind: tokParam, text: "?", pos: t.pos + len(t.text)}, true, false)
}

// token writes any other token.
func (d *digester) token(t token) {
	if d.rowDone && d.depth+1 == d.valuesDepth {
		d.valuesDepth, d.rowDone = 0, false // the rows ended
	}
	kw := false
	if t.kind == tokWord {
		kw = isDigestKeyword(t.text)
	}
	if t.is(")") && d.inList >= 0 && d.depth == d.listDepth {
		// The IN list ends: fold it when it held only values.
		if d.listPure {
			d.out = append(d.out[:d.inList], "(...)"...)
			d.depth--
			d.inList = -1
			d.wrote(t, true, false)
			return
		}
		d.inList = -1
	}
	constant := kw && (eqFold(t.text, "NULL") || eqFold(t.text, "TRUE") || eqFold(t.text, "FALSE"))
	if d.inList >= 0 && d.depth == d.listDepth && !t.is(",") && t.kind != tokParam && !constant {
		d.listPure = false
	}
	d.space(t)
	if t.is("(") && d.afterIn && d.inList < 0 {
		d.inList, d.listDepth, d.listPure = len(d.out), d.depth+1, true
	}
	if kw {
		for i := 0; i < len(t.text); i++ {
			c := t.text[i]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			d.out = append(d.out, c)
		}
	} else {
		d.out = append(d.out, t.text...)
	}
	switch {
	case t.is("("):
		d.depth++
	case t.is(")"):
		if d.depth > 0 {
			d.depth--
		}
		if d.valuesDepth == d.depth+1 {
			d.rowDone = true
		}
	case kw && (eqFold(t.text, "VALUES") || eqFold(t.text, "VALUE")):
		d.valuesDepth, d.rowDone, d.folded = d.depth+1, false, false
	}
	value := t.kind != tokPunct && !kw || t.is(")") || constant
	d.wrote(t, value, kw)
	d.afterIn = kw && eqFold(t.text, "IN")
}

// wrote records t as the last token written.
func (d *digester) wrote(t token, value, kw bool) {
	d.prev, d.prevValue, d.prevKW, d.written = t, value, kw, true
	d.afterIn = false
}

// space writes the space that goes between the last token and t, if any.
func (d *digester) space(t token) {
	if !d.written {
		return
	}
	p := d.prev
	switch {
	case p.is("(") || p.is(".") || t.is(")") || t.is(",") || t.is(".") || t.is(";"):
		return
	case t.is("(") && (p.kind == tokWord && !d.prevKW || p.kind == tokQuoted):
		return // a function call
	case p.kind == tokPunct && t.kind == tokPunct && p.pos+len(p.text) == t.pos &&
		!p.is(",") && !p.is(")") && !t.is("("):
		return // a two-byte operator: >=, <>, !=, ||, ->
	}
	d.out = append(d.out, ' ')
}

// skipRow skips, after the "," just read, one more row of a multi-row
// VALUES, and writes ", ..." for the first such row.
func (d *digester) skipRow(lx *lexer) {
	depth := 0
	for {
		t := lx.next()
		switch {
		case t.kind == tokEOF:
			return
		case t.is("("):
			depth++
		case t.is(")"):
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if !d.folded {
		d.folded = true
		d.out = append(d.out, ", ..."...)
		d.wrote(token{kind: tokPunct, text: "...", pos: -1}, true, false)
	}
}

// isDigestKeyword reports whether w is one of the keywords a digest writes
// in upper case.
func isDigestKeyword(w string) bool {
	var buf [16]byte
	if len(w) > len(buf) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return digestKeywords[string(buf[:len(w)])]
}

var digestKeywords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range []string{
		"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "XOR", "IN", "IS", "NULL", "TRUE", "FALSE", "AS", "ON",
		"USING", "JOIN", "INNER", "LEFT", "RIGHT", "OUTER", "CROSS", "STRAIGHT_JOIN", "NATURAL", "ORDER", "GROUP",
		"BY", "HAVING", "LIMIT", "OFFSET", "ASC", "DESC", "DISTINCT", "ALL", "UNION", "EXCEPT", "INTERSECT",
		"BETWEEN", "LIKE", "REGEXP", "RLIKE", "ESCAPE", "EXISTS", "CASE", "WHEN", "THEN", "ELSE", "END", "FOR",
		"UPDATE", "SHARE", "LOCK", "MODE", "INSERT", "REPLACE", "INTO", "VALUES", "VALUE", "SET", "DELETE",
		"DUPLICATE", "KEY", "IGNORE", "LOW_PRIORITY", "HIGH_PRIORITY", "DELAYED", "QUICK", "WITH", "RECURSIVE",
		"BEGIN", "START", "TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "WORK", "READ", "WRITE",
		"ONLY", "CONSISTENT", "SNAPSHOT", "SHOW", "CALL", "DO", "USE", "EXPLAIN", "DESCRIBE", "CREATE", "DROP",
		"ALTER", "TABLE", "TEMPORARY", "INDEX", "VIEW", "IF", "TRUNCATE", "GLOBAL", "SESSION", "LOCAL", "NAMES",
		"DEFAULT", "INTERVAL", "DIV", "MOD", "SQL_CALC_FOUND_ROWS", "SQL_NO_CACHE", "NOWAIT", "SKIP", "LOCKED",
		"OF", "ROW", "ROWS", "OVER", "PARTITION", "WINDOW", "PREPARE", "EXECUTE", "DEALLOCATE", "KILL", "QUERY",
		"CONNECTION", "BINARY", "COLLATE", "UNLOCK", "TABLES", "DATABASE", "SCHEMA", "STATEMENT",
	} {
		m[w] = true
	}
	return m
}()
