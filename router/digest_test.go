package router

import (
	"strings"
	"testing"
)

func TestDigest(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		sql, want string
	}{
		{0, "SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"},
		{0, "select  *\n\tfrom t where id=42;", "SELECT * FROM t WHERE id = ?"},
		{0, "SELECT c FROM sbtest1 WHERE id=?", "SELECT c FROM sbtest1 WHERE id = ?"},
		{0, "/* app:42 */ SELECT 1 -- trailing\n", "SELECT ?"},
		{0, "SELECT a FROM t # comment\nWHERE b = 'x'", "SELECT a FROM t WHERE b = ?"},
		{0, "/*+ switchyard:route=primary */ SELECT 1", "SELECT ?"},
		{0, "SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (...)"},
		{0, "SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (...)"},
		{0, "SELECT * FROM t WHERE id in (?,?,?,?)", "SELECT * FROM t WHERE id IN (...)"},
		{0, "SELECT * FROM t WHERE id IN ('a', -2, 0x1F, X'AB', NULL)", "SELECT * FROM t WHERE id IN (...)"},
		{0, "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)", "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = ?)"},
		{0, "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))", "SELECT * FROM t WHERE (a, b) IN ((?, ?), (?, ?))"},
		{0, "INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t(a, b) VALUES (?, ?)"},
		{0, "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, NOW())", "INSERT INTO t(a, b) VALUES (?, ?), ..."},
		{0, "INSERT INTO t VALUES (1),(2) ON DUPLICATE KEY UPDATE a = VALUES(a), b = 3", "INSERT INTO t VALUES (?), ... ON DUPLICATE KEY UPDATE a = VALUES (a), b = ?"},
		{0, "SELECT TRUE, false, NULL, 1.5e3, .5, -7, +8", "SELECT TRUE, FALSE, NULL, ?, ?, ?, ?"},
		{0, "SELECT a - 1, a-1, (-1), 2 - -1", "SELECT a - ?, a - ?, (?), ? - ?"},
		{0, "SELECT * FROM t WHERE a >= 1 AND b <> 'x' AND c != 2 OR d <=> NULL", "SELECT * FROM t WHERE a >= ? AND b <> ? AND c != ? OR d <=> NULL"},
		{0, "SELECT _utf8mb4'abc', _binary 'x', N'y', b'0101', x'4142', 0xFF", "SELECT ?, ?, ?, ?, ?, ?"},
		{0, `SELECT 'it''s', "a\"b", 'c\'d', 'ünï©ødé'`, "SELECT ?, ?, ?, ?"},
		{0, "SELECT `we'ird`, t.`col` FROM `db`.`t` t", "SELECT `we'ird`, t.`col` FROM `db`.`t` t"},
		{0, "SELECT COUNT(*), max(x) FROM t", "SELECT COUNT(*), max(x) FROM t"},
		{0, "SELECT @a := 1, @@session.sql_mode", "SELECT @a := ?, @@session.sql_mode"},
		{0, "/*!40101 SET NAMES utf8 */", "SET NAMES utf8"},
		{0, "SELECT 1; SELECT 2", "SELECT ?; SELECT ?"},
		{0, "SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT ? OFFSET ?"},
		{0, "SELECT 'unterminated", "SELECT ?"},
		{ModeANSIQuotes, `SELECT "col" FROM t WHERE a = 'x'`, `SELECT "col" FROM t WHERE a = ?`},
		{ModeNoBackslashEscapes, `SELECT 'a\' , 'b'`, "SELECT ?, ?"},
		{ModeCharsetGBK, "SELECT '\x95\x5c' , 'x'", "SELECT ?, ?"},
		{0, "begin", "BEGIN"},
		{0, "UPDATE t SET a = a + 1 WHERE id = 5", "UPDATE t SET a = a + ? WHERE id = ?"},
	} {
		got, id := Digest(tc.sql, tc.mode)
		if got != tc.want {
			t.Errorf("Digest(%q, %d) = %q, want %q", tc.sql, tc.mode, got, tc.want)
		}
		if id != DigestID([]byte(got)) {
			t.Errorf("Digest(%q, %d): id %x is not the text's", tc.sql, tc.mode, id)
		}
	}
}

func TestDigestLength(t *testing.T) {
	sql := "SELECT " + strings.Repeat("ünïcode_column, ", 200) + "x FROM t"
	got, _ := Digest(sql, 0)
	if len(got) > MaxDigestLen+3 || !strings.HasSuffix(got, "...") {
		t.Fatalf("Digest of %d bytes = %d bytes, want at most %d ending in ...", len(sql), len(got), MaxDigestLen+3)
	}
	if !strings.HasPrefix(got, "SELECT ünïcode_column") || !isValidUTF8(got) {
		t.Fatalf("Digest cut badly: %q", got)
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestDigestAllocates(t *testing.T) {
	buf := make([]byte, 0, 256)
	sql := "SELECT c FROM sbtest1 WHERE id IN (1, 2, 3) AND k = 'secret' /* x */"
	if n := testing.AllocsPerRun(100, func() { buf = AppendDigest(buf[:0], sql, 0) }); n != 0 {
		t.Errorf("AppendDigest allocates %v times, want 0", n)
	}
}

func BenchmarkDigest(b *testing.B) {
	buf := make([]byte, 0, 256)
	sql := "SELECT c FROM sbtest1 WHERE id BETWEEN 5 AND 105 ORDER BY c"
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendDigest(buf[:0], sql, 0)
	}
}

// FuzzDigest checks that a digest is the same twice, never holds four bytes
// in a row of a string literal's content that the statement with every
// string emptied does not produce too, and does not depend on what the
// literals hold.
func FuzzDigest(f *testing.F) {
	for _, s := range []string{"SELECT 'password123' FROM t", `SELECT "sécrèt" , 'a''b\'c'`, "SELECT X'DEADBEEF', 0xCAFEBABE",
		"INSERT INTO t VALUES ('aaaa'), ('bbbb')", "SELECT * FROM t WHERE a IN ('xxxx', 'yyyy')", "/*!50700 SELECT 'zzzz' */",
		"SELECT _utf8mb4'hidden' , N'more'", "SELECT 'x' 'yyyyy'"} {
		f.Add(s)
	}
	modes := []Mode{0, ModeNoBackslashEscapes, ModeANSIQuotes, ModeCharsetGBK, ModeCharsetSJIS, ModeCharset8Bit}
	f.Fuzz(func(t *testing.T, sql string) {
		for _, mode := range modes {
			got, id := Digest(sql, mode)
			if again, id2 := Digest(sql, mode); again != got || id2 != id {
				t.Fatalf("Digest(%q, %d) = %q, then %q", sql, mode, got, again)
			}
			emptied, lits := emptyStrings(sql, mode)
			want, _ := Digest(emptied, mode)
			if got != want {
				t.Fatalf("Digest(%q, %d) = %q, but with its strings emptied %q", sql, mode, got, want)
			}
			// The 4-byte sequences of the digest that the emptied
			// statement's digest lacks: none may come from a literal.
			foreign := make(map[string]bool)
			for i := 0; i+4 <= len(got); i++ {
				if w := got[i : i+4]; !strings.Contains(want, w) {
					foreign[w] = true
				}
			}
			for _, lit := range lits {
				for i := 0; i+4 <= len(lit) && len(foreign) > 0; i++ {
					if w := lit[i : i+4]; foreign[w] {
						t.Fatalf("Digest(%q, %d) = %q holds %q of the literal %q", sql, mode, got, w, lit)
					}
				}
			}
		}
	})
}

// emptyStrings returns sql with the content of every string literal taken
// out, and those contents.
func emptyStrings(sql string, mode Mode) (string, []string) {
	var lx lexer
	lx.init(sql, mode)
	var b strings.Builder
	var lits []string
	last := 0
	for {
		lx.broken = false
		t := lx.next()
		if t.kind == tokEOF {
			break
		}
		if t.kind != tokString {
			continue
		}
		q := t.text[:1]
		body := t.text[1:]
		closed := !lx.broken || t.pos+len(t.text) < len(sql)
		if closed {
			body = body[:len(body)-1]
		}
		lits = append(lits, body)
		b.WriteString(sql[last:t.pos])
		b.WriteString(q)
		if closed {
			b.WriteString(q)
		}
		last = t.pos + len(t.text)
	}
	b.WriteString(sql[last:])
	return b.String(), lits
}
