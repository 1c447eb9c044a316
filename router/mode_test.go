package router

import (
	"slices"
	"strings"
	"testing"
)

func TestModeForSQLMode(t *testing.T) {
	for _, tc := range []struct {
		sqlMode string
		want    Mode
	}{
		{"", 0},
		{"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION", 0},
		{"STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", ModeNoBackslashEscapes},
		{"ansi_quotes", ModeANSIQuotes},
		{"REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI", ModeANSIQuotes},
		{"ANSI", ModeANSIQuotes},
		{"PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE,NO_KEY_OPTIONS,NO_TABLE_OPTIONS,NO_FIELD_OPTIONS," +
			"NO_AUTO_CREATE_USER,SIMULTANEOUS_ASSIGNMENT", ModeANSIQuotes | ModeUnsafe},
		{"MSSQL", ModeANSIQuotes | ModeUnsafe},
		{" db2 , no_backslash_escapes ", ModeANSIQuotes | ModeUnsafe | ModeNoBackslashEscapes},
		{"POSTGRESQL", ModeANSIQuotes | ModeUnsafe},
		{"MAXDB", ModeANSIQuotes | ModeUnsafe},
		{"ANSI_QUOTESX,XANSI", 0},
	} {
		if got := ModeForSQLMode(tc.sqlMode); got != tc.want {
			t.Errorf("ModeForSQLMode(%q) = %#x, want %#x", tc.sqlMode, got, tc.want)
		}
	}
}

func TestModeForCharset(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Mode
	}{
		{"utf8mb4", 0}, {"utf8mb3", 0}, {"utf8", 0}, {"binary", 0}, {"ascii", 0},
		{"ujis", 0}, {"euckr", 0}, {"gb2312", 0}, {"cp1251", 0}, {"koi8r", 0},
		{"latin1", ModeCharset8Bit}, {"Latin1", ModeCharset8Bit}, {"cp1250", ModeCharset8Bit},
		{"cp852", ModeCharset8Bit}, {"hp8", ModeCharset8Bit},
		{"gbk", ModeCharsetGBK}, {"GBK", ModeCharsetGBK},
		{"big5", ModeCharsetBig5},
		{"sjis", ModeCharsetSJIS}, {"cp932", ModeCharsetSJIS},
		{"gb18030", ModeCharsetGB18030},
		{"ucs2", ModeUnsafe}, {"utf16", ModeUnsafe}, {"utf32", ModeUnsafe}, {"", ModeUnsafe},
		{"klingon", ModeUnsafe}, {"a-charset-name-longer-than-the-buffer", ModeUnsafe},
	} {
		if got := ModeForCharset(tc.name); got != tc.want {
			t.Errorf("ModeForCharset(%q) = %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestModeForCollationID(t *testing.T) {
	for _, tc := range []struct {
		id   uint8
		want Mode
	}{
		{8, ModeCharset8Bit}, // latin1_swedish_ci
		{33, 0},              // utf8mb3_general_ci
		{45, 0},              // utf8mb4_general_ci
		{63, 0},              // binary
		{224, 0},             // utf8mb4_unicode_ci
		{255, 0},             // utf8mb4_0900_ai_ci (MySQL 8)
		{1, ModeCharsetBig5},
		{84, ModeCharsetBig5},
		{28, ModeCharsetGBK},
		{87, ModeCharsetGBK},
		{13, ModeCharsetSJIS},
		{88, ModeCharsetSJIS},
		{95, ModeCharsetSJIS}, // cp932_japanese_ci
		{96, ModeCharsetSJIS},
		{248, ModeCharsetGB18030},
		{249, ModeCharsetGB18030},
		{250, ModeCharsetGB18030},
		{35, ModeUnsafe}, // ucs2_general_ci: not a client charset
		{0, ModeUnsafe},
		{252, ModeUnsafe}, // unassigned
	} {
		if got := ModeForCollationID(tc.id); got != tc.want {
			t.Errorf("ModeForCollationID(%d) = %#x, want %#x", tc.id, got, tc.want)
		}
	}
}

// TestClassifyCharsets: after SET NAMES gbk (big5, sjis, cp932, gb18030) the
// second byte of a character may be 0x5C, a backtick or '@'. Read byte by
// byte, these statements hide a call of a stored function inside a string or
// identifier that the server ends earlier.
func TestClassifyCharsets(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		mode Mode
		want string
	}{
		// The server ends the string after the character 0x81 0x5C and
		// calls f_ins.
		{"SELECT 'xx\x81\x5c', f_ins() -- '", 0, "read fast"},
		{"SELECT 'xx\x81\x5c', f_ins() -- '", ModeCharsetGBK, "write unsure"},
		{"SELECT 'xx\x81\x5c', f_ins() -- '", ModeCharsetSJIS, "write unsure"},
		{"SELECT 'xx\x81\x5c', f_ins() -- '", ModeCharsetGB18030, "write unsure"},
		{"SELECT 'xx\x81\x5c', f_ins() -- '", ModeCharsetBig5, "read fast"}, // 0x81 is no big5 lead byte
		{"SELECT 'xx\xa1\x5c', f_ins() -- '", ModeCharsetBig5, "write unsure"},
		{"SELECT \"xx\x81\x5c\", f_ins() -- \"", ModeCharsetGBK, "write unsure"},
		{"SELECT 'xx\x81\x5c', f_ins() -- '", ModeCharsetGBK | ModeNoBackslashEscapes, "write unsure"},
		// The opposite: byte by byte the string ends at the backslash's
		// quote; the server reads on.
		{"SELECT 'xx\x81\x5c' FROM t", 0, "write unsure,fast"},
		{"SELECT 'xx\x81\x5c' FROM t", ModeCharsetGBK, "read fast"},
		// A backtick as a trail byte, in and out of quotes.
		{"SELECT `a\x81\x60`, f_ins() -- `", ModeCharsetGBK, "write unsure"},
		{"SELECT a\x81\x60, f_ins() -- `", ModeCharsetGBK, "write unsure"},
		{"SELECT a\x81\x60 FROM t", ModeCharsetGBK, "read fast"},
		// '@' as a trail byte is part of the word, not a user variable.
		{"SELECT a\x81@b FROM t", 0, "read uservar-read,fast"},
		{"SELECT a\x81@b FROM t", ModeCharsetGBK, "read fast"},
		{"SELECT @a\x81@b", ModeCharsetGBK, "read uservar-read,fast"},
		// After a backslash the server skips one byte, not one character.
		{"SELECT '\\\x81\x5c', f_ins() -- '", ModeCharsetGBK, "read fast"},
		// gb18030's four-byte characters: 0x81 0x30 0x81 0x30 holds no
		// backslash, so the one after it escapes the quote.
		{"SELECT '\x81\x30\x81\x30\x5c', f_ins() -- '", ModeCharsetGB18030, "read fast"},
		{"SELECT '\x81\x30\x81\x30\x81\x5c', f_ins() -- '", ModeCharsetGB18030, "write unsure"},
		// Ordinary text in these charsets.
		{"SELECT * FROM t WHERE name = '\xc4\xe3\xba\xc3' AND a = 1", ModeCharsetGBK, "read fast"},
		{"SELECT `\xb1\xed`.a FROM `\xb1\xed`", ModeCharsetGBK, "read fast"},
		{"UPDATE t SET name = '\x83\x5c' WHERE id = 1", ModeCharsetSJIS, "write fast"},
		{"USE `\x81\x60db`", ModeCharsetGBK, "use fast name=\"\\x81`db\""},
		{"PREPARE s FROM 'SELECT ''\x81\x5c'', f_ins() -- '''", ModeCharsetGBK,
			`prepare name="s" inner=write{unsure}`},
		{"PREPARE s FROM 'SELECT ''\x81\x5c'' FROM t'", ModeCharsetGBK, `prepare fast name="s" inner=read{}`},
		// latin1 and the like: the no-break space 0xA0 separates words, and
		// "--" before it or a control character starts a comment.
		{"SELECT 1 --\xa0'\n, f_ins() -- '", 0, "read fast"},
		{"SELECT 1 --\xa0'\n, f_ins() -- '", ModeCharset8Bit, "write unsure,fast"},
		{"SELECT 1 --\x7f'\n, f_ins() -- '", 0, "write unsure"},
		{"SELECT a FROM t\xa0FOR UPDATE", ModeCharset8Bit, "write unsure,fast"},
		{"SELECT 'caf\xe9\xa0' FROM t WHERE a = \xe9t\xe9", ModeCharset8Bit, "read fast"},
		// The parser reads the same tokens: the characters become UTF-8.
		{"SELECT my_func('\x81\x5c')", ModeCharsetGBK, "write unsure"},
		{"SELECT 'xx\x81\x5c' FROM t WHERE a IN (SELECT b FROM u)", ModeCharsetGBK, "read fast"},
	} {
		if got := ClassifyMode(tc.sql, tc.mode).String(); got != tc.want {
			t.Errorf("ClassifyMode(%q, %#x) = %v, want %v", tc.sql, tc.mode, got, tc.want)
		}
	}
}

// TestParserTextCharsets checks that the parser is given the tokens the
// lexer saw: a string ending in a gbk character whose second byte is 0x5C.
func TestParserTextCharsets(t *testing.T) {
	const sql = "SELECT 'xx\x81\x5c' AS a /* c */, 'y'"
	got, ok := parserText(sql, ModeCharsetGBK)
	if want := "SELECT 'xx\u00e9' AS a        , 'y'"; !ok || got != want {
		t.Errorf("parserText(%q, gbk) = %q, %v, want %q", sql, got, ok, want)
	}
	if c := slowStatement(sql, ModeCharsetGBK, 0); c.Kind != KindRead {
		t.Errorf("slowStatement(%q, gbk) = %v, want read", sql, c)
	}
	if c := slowStatement(sql, 0, 0); c.Kind == KindRead {
		t.Errorf("slowStatement(%q, 0) = %v, want unsure", sql, c)
	}
}

// TestClassifyUnsafeMode: under sql_mode=ORACLE (and the other grammar
// changing modes) or an unknown client charset, nothing is a read and only
// the flags that hold a session on the primary are kept.
func TestClassifyUnsafeMode(t *testing.T) {
	oracle := ModeForSQLMode("PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE")
	for _, tc := range []struct {
		sql  string
		mode Mode
		want string
	}{
		{"SELECT s.nextval FROM dual", oracle, "write unsure,side-effect,fast"},
		{"SELECT 1", oracle, "write unsure,fast"},
		{"SELECT 1", ModeForCharset("utf16"), "write unsure,fast"},
		{"", oracle, "write unsure,fast"},
		{"BEGIN", oracle, "write unsure,implicit-commit,fast"},
		{"CREATE TEMPORARY TABLE t (a INT)", oracle, "write unsure,temp-create,fast"},
		{"SELECT RELEASE_LOCK('x')", oracle, "write unsure,side-effect,fast"},
		{"USE db", oracle, "write unsure,fast"},
		{"/* switchyard:route=primary */ SELECT 1", oracle, "write unsure,fast hint=primary"},
		{"PREPARE s FROM 'SELECT 1'", oracle, "write unsure,fast"},
	} {
		if got := ClassifyMode(tc.sql, tc.mode).String(); got != tc.want {
			t.Errorf("ClassifyMode(%q, %#x) = %v, want %v", tc.sql, tc.mode, got, tc.want)
		}
	}
}

func TestBuiltinFunctions(t *testing.T) {
	names := BuiltinFunctions()
	if !slices.IsSorted(names) {
		t.Errorf("BuiltinFunctions() is not sorted")
	}
	if len(names) < 400 {
		t.Errorf("BuiltinFunctions() has %d names, want at least 400", len(names))
	}
	for _, want := range []string{"abs", "count", "json_extract", "st_astext", "mbrcontains", "column_get",
		"regexp_substr", "get_lock", "nextval", "point", "sleep", "trim_oracle"} {
		if _, ok := slices.BinarySearch(names, want); !ok {
			t.Errorf("BuiltinFunctions() lacks %s", want)
		}
	}
	for _, name := range names {
		if name != strings.ToLower(name) || strings.TrimSpace(name) != name {
			t.Errorf("BuiltinFunctions() has %q, not a lower-case name", name)
		}
	}
	// MySQL-only functions, TiDB's internal names and keywords are not
	// MariaDB built-ins.
	for _, bad := range []string{"any_value", "bin_to_uuid", "uuid_to_bin", "is_uuid", "statement_digest",
		"statement_digest_text", "format_bytes", "format_pico_time", "icu_version", "roles_graphml", "firstrow",
		"char_func", "insert_func", "default_func", "dateliteral", "timeliteral", "timestampliteral", "istrue",
		"isfalse", "getvar", "setvar", "json_log", "st_log", "column_log", "regexp_log", "mbrlog", "grouping",
		"ps_thread_id", "source_pos_wait", "json_table", "against", "values", "in", "select"} {
		if _, ok := slices.BinarySearch(names, bad); ok {
			t.Errorf("BuiltinFunctions() has %s", bad)
		}
	}
}

// TestModeMySQL: a call of a name that is a built-in on MariaDB only is a
// stored function call on MySQL, so unsure there, in every spelling.
func TestModeMySQL(t *testing.T) {
	for _, name := range mariaDBOnly {
		for _, q := range []string{"SELECT " + name + "(1)", "SELECT " + strings.ToUpper(name) + " (1, 2)",
			"SELECT a FROM t WHERE b = " + name + "()"} {
			if c := ClassifyMode(q, ModeMySQL); c.Flags&FlagUnsure == 0 {
				t.Errorf("ClassifyMode(%q, ModeMySQL) = %v, want unsure", q, c)
			}
		}
	}
	for _, q := range []string{"SELECT md5('a')", "SELECT NVL(a, 1) FROM t"} {
		if c := ClassifyMode(q, 0); c.Kind != KindRead || c.Flags&FlagUnsure != 0 {
			t.Errorf("ClassifyMode(%q, 0) = %v, want a sure read (a MariaDB built-in)", q, c)
		}
	}
	if c := ClassifyMode("SELECT CONCAT(a, UPPER(b)) FROM t", ModeMySQL); c.Kind != KindRead || c.Flags&FlagUnsure != 0 {
		t.Errorf("built-ins of both engines: %v, want a sure read", c)
	}
}
