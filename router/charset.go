package router

// charset.go: client character sets whose multi-byte characters can contain
// ASCII bytes.
//
// The server tokenizes a statement in character_set_client. In big5, gbk,
// sjis, cp932 and gb18030 the second byte of a character may be 0x5C, which a
// byte-wise scanner takes for a backslash, or a backtick, '@', '[' and the
// rest of 0x40-0x7E. The server's scanner steps over whole characters in
// strings, quoted identifiers and unquoted words alike (my_charlen in
// MariaDB's sql_lex.cc), and so must ours: after SET NAMES gbk, the string
// '<0x81><0x5C>' ends at its second quote, the backslash being half of a
// character. A lead byte without a valid trail byte is read as one byte, as
// the server does.
//
// After a backslash escape the server skips exactly one byte, not one
// character: skipQuotedMB does the same.

// mbLen returns the length of the multi-byte character of the session's
// client charset that starts at lx.s[i], or 0 if none starts there.
func (lx *lexer) mbLen(i int) int {
	s := lx.s
	c := s[i]
	if c < 0x81 || i+1 >= len(s) {
		return 0
	}
	t := s[i+1]
	n := 0
	switch {
	case lx.mode&ModeCharsetGBK != 0:
		if c <= 0xFE && (t >= 0x40 && t <= 0x7E || t >= 0x80 && t <= 0xFE) {
			n = 2
		}
	case lx.mode&ModeCharsetBig5 != 0:
		if c >= 0xA1 && c <= 0xF9 && (t >= 0x40 && t <= 0x7E || t >= 0xA1 && t <= 0xFE) {
			n = 2
		}
	case lx.mode&ModeCharsetSJIS != 0:
		if (c <= 0x9F || c >= 0xE0 && c <= 0xFC) && (t >= 0x40 && t <= 0x7E || t >= 0x80 && t <= 0xFC) {
			n = 2
		}
	case lx.mode&ModeCharsetGB18030 != 0:
		switch {
		case c == 0xFF:
		case t >= 0x40 && t <= 0x7E || t >= 0x80 && t <= 0xFE:
			n = 2
		case t >= 0x30 && t <= 0x39 && i+3 < len(s) && s[i+2] >= 0x81 && s[i+2] <= 0xFE &&
			s[i+3] >= 0x30 && s[i+3] <= 0x39:
			n = 4
		}
	}
	if n > 0 && lx.edits != nil {
		lx.edits.mb = append(lx.edits.mb, i, i+n)
	}
	return n
}

// skipQuotedMB is skipQuoted for a multi-byte client charset.
func (lx *lexer) skipQuotedMB(q byte, backslash bool) {
	s := lx.s
	for i := lx.pos + 1; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x80:
			if n := lx.mbLen(i); n > 0 {
				i += n
			} else {
				i++
			}
		case c == '\\' && backslash:
			i += 2
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			lx.pos = i + 1
			return
		default:
			i++
		}
	}
	lx.pos = len(s)
	lx.broken = true
}
