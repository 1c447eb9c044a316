package router

// mode.go: the session settings that change how the server tokenizes or
// parses a statement, and how the proxy finds them out.

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/charset"
)

// Mode is what the classifier must know of a session besides the statement:
// the parts of its sql_mode that change how statements are tokenized or
// parsed, and its client character set when that one's multi-byte characters
// may contain ASCII bytes. The zero Mode is the default sql_mode with a
// client charset such as utf8mb4 or latin1.
//
// The proxy knows NO_BACKSLASH_ESCAPES from the
// SERVER_STATUS_NO_BACKSLASH_ESCAPES bit of every OK packet; ModeForSQLMode,
// ModeForCharset and ModeForCollationID turn what it tracks into modes.
type Mode uint16

const (
	// ModeNoBackslashEscapes: backslash is an ordinary character in strings.
	ModeNoBackslashEscapes Mode = 1 << iota
	// ModeANSIQuotes: "text" is an identifier, not a string.
	ModeANSIQuotes
	// ModeUnsafe: the session's grammar or character set is one the
	// classifier does not know (sql_mode ORACLE, MSSQL, DB2, POSTGRESQL or
	// MAXDB, or a client charset it cannot tokenize). Every statement is
	// then KindWrite with FlagUnsure, keeping only the flags that make the
	// proxy hold the session on the primary (FlagTempTableCreate,
	// FlagLockFunc, FlagUserVarWrite, ...).
	ModeUnsafe
	// ModeCharsetGBK: the client charset is gbk. A lead byte 0x81-0xFE and a
	// trail byte 0x40-0x7E or 0x80-0xFE make one character, so a trail byte
	// may look like a backslash, backtick or '@'.
	ModeCharsetGBK
	// ModeCharsetBig5: big5: lead 0xA1-0xF9, trail 0x40-0x7E or 0xA1-0xFE.
	ModeCharsetBig5
	// ModeCharsetSJIS: sjis or cp932: lead 0x81-0x9F or 0xE0-0xFC, trail
	// 0x40-0x7E or 0x80-0xFC.
	ModeCharsetSJIS
	// ModeCharsetGB18030: gb18030 (MySQL only): gbk's two-byte characters
	// and four-byte ones, 0x81-0xFE 0x30-0x39 0x81-0xFE 0x30-0x39.
	ModeCharsetGB18030
	// ModeCharset8Bit: a single-byte client charset in which some bytes from
	// 0x80 up are whitespace or control characters: latin1 and most other
	// ISO 8859 and DOS or Windows code pages. There the no-break space 0xA0
	// (0xFF in cp852 and cp866) separates words, and "--" followed by such a
	// byte starts a comment. A statement with one of these outside strings,
	// quoted identifiers and comments is unsure.
	ModeCharset8Bit
	// ModeMySQL: the servers are MySQL, not MariaDB. Names that are
	// built-in functions on MariaDB only (NVL, JSON_DETAILED, MD5 and SHA1,
	// which MySQL 9.7 removed, the geometry functions without ST_...) call
	// stored functions there, so a call of one is unsure.
	ModeMySQL
)

// modeCharsets are the bits that make the lexer read multi-byte characters.
const modeCharsets = ModeCharsetGBK | ModeCharsetBig5 | ModeCharsetSJIS | ModeCharsetGB18030

// ModeForSQLMode returns the modes of a sql_mode value as the server reports
// it (@@sql_mode or a session-tracked sql_mode): comma-separated names in any
// case. NO_BACKSLASH_ESCAPES gives ModeNoBackslashEscapes; ANSI_QUOTES, and
// the combination modes that include it (ANSI, ORACLE, MSSQL, DB2,
// POSTGRESQL, MAXDB), give ModeANSIQuotes. The combination modes that change
// the grammar (ORACLE, MSSQL, DB2, POSTGRESQL, MAXDB) also give ModeUnsafe:
// under sql_mode=ORACLE, for one, "SELECT s.nextval FROM dual" advances a
// sequence. https://mariadb.com/kb/en/sql-mode/
// Other names do not change how a statement is classified and are ignored.
func ModeForSQLMode(sqlMode string) Mode {
	var m Mode
	for rest := sqlMode; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		name = strings.TrimSpace(name)
		switch {
		case eqFold(name, "NO_BACKSLASH_ESCAPES"):
			m |= ModeNoBackslashEscapes
		case eqFold(name, "ANSI_QUOTES"), eqFold(name, "ANSI"):
			m |= ModeANSIQuotes
		case eqFold(name, "ORACLE"), eqFold(name, "MSSQL"), eqFold(name, "DB2"), eqFold(name, "POSTGRESQL"),
			eqFold(name, "MAXDB"):
			m |= ModeANSIQuotes | ModeUnsafe
		}
	}
	return m
}

// charsetModes are the client charsets the lexer can read, with their mode.
//
// Mode 0: the UTF-8 charsets, the single-byte charsets whose bytes from 0x80
// up are all letters or symbols, and the multi-byte charsets whose trail
// bytes are 0x80 and up (ujis, eucjpms, gb2312) or ASCII letters (euckr),
// which the lexer reads as parts of a word wherever they stand.
//
// ModeCharset8Bit: the single-byte charsets in which MariaDB 10.11 reads
// some byte from 0x80 up as whitespace or as a control character that ends
// a word or makes "--" a comment (found by trying every byte on the server).
//
// The server refuses ucs2, utf16, utf16le and utf32 as a client charset.
var charsetModes = func() map[string]Mode {
	m := make(map[string]Mode)
	for _, name := range strings.Fields(`ascii binary cp1251 cp1256 cp1257 eucjpms euckr gb2312 koi8r koi8u macce
		swe7 tis620 ujis utf8 utf8mb3 utf8mb4`) {
		m[name] = 0
	}
	for _, name := range strings.Fields(`armscii8 cp1250 cp850 cp852 cp866 dec8 geostd8 greek hebrew hp8 keybcs2
		latin1 latin2 latin5 latin7 macroman`) {
		m[name] = ModeCharset8Bit
	}
	m["gbk"] = ModeCharsetGBK
	m["big5"] = ModeCharsetBig5
	m["sjis"] = ModeCharsetSJIS
	m["cp932"] = ModeCharsetSJIS
	m["gb18030"] = ModeCharsetGB18030
	return m
}()

// ModeForCharset returns the mode for a client character set, named as in
// character_set_client ("gbk", "sjis", "utf8mb4", in any case). Charsets whose
// multi-byte characters can contain ASCII bytes get their ModeCharset bit
// (big5, gbk, sjis and cp932 exist on MariaDB and MySQL, gb18030 on MySQL);
// latin1 and the other single-byte charsets with whitespace above 0x7F get
// ModeCharset8Bit; UTF-8 and the other charsets the lexer reads as it is get
// 0. Any other name, the empty string included, gives ModeUnsafe.
func ModeForCharset(name string) Mode {
	var buf [16]byte
	low, ok := lowerInto(buf[:], strings.TrimSpace(name))
	if !ok {
		return ModeUnsafe
	}
	if m, ok := charsetModes[string(low)]; ok {
		return m
	}
	return ModeUnsafe
}

// ModeForCollationID returns the mode for the collation id a client sends in
// its handshake response, which sets its character set. Ids below 256 mean
// the same charset on MariaDB and MySQL; the table is the TiDB parser's
// (MySQL's numbering). An unknown id gives ModeUnsafe.
// https://mariadb.com/kb/en/connection/#handshake-response-packet
func ModeForCollationID(id uint8) Mode {
	c, err := charset.GetCollationByID(int(id))
	if err != nil || c == nil {
		return ModeUnsafe
	}
	return ModeForCharset(c.CharsetName)
}

// unsafeKeep are the flags a statement keeps under ModeUnsafe: the ones that
// make the proxy hold the session on the primary or remember state, which are
// safe to believe even when wrong. Flags that release such holds are dropped.
const unsafeKeep = FlagMultiStatement | FlagImplicitCommit | FlagTempTableCreate | FlagLockFunc | FlagUserVarWrite |
	FlagUserVarRead | FlagCalcFoundRows | FlagSideEffect | FlagFastPath

// unsafeClass is c for a session whose grammar or charset the classifier does
// not know: every statement goes to the primary, counted as unsure. A KILL
// stays one: the proxy answers it, as it does in any mode.
func unsafeClass(c Class) Class {
	if c.Kind == KindKill {
		return c
	}
	return Class{Kind: KindWrite, Flags: FlagUnsure | c.Flags&unsafeKeep, Hint: c.Hint}
}
