package router

import (
	"strings"
	"testing"
)

func TestVersionReading(t *testing.T) {
	for _, tc := range []struct {
		comment string
		want    execReading
	}{
		{"/*! x */", readCode},
		{"/*!40101 x */", readCode},
		{"/*!50699 x */", readCode},
		{"/*!4010 x */", readCode}, // four digits are no version: code "4010 x"
		{"/*!50700 x */", readAmbiguous},
		{"/*!80000 x */", readAmbiguous},
		{"/*!99999 x */", readAmbiguous},
		{"/*!100100 x */", readAmbiguous},
		{"/*!401011 x */", readAmbiguous}, // MariaDB reads six digits, MySQL five
		{"/*!899999 x */", readAmbiguous},
		{"/*!900000 x */", readAmbiguous}, // MySQL 9 reads 90000: code there
		{"/*M!900000 x */", readComment},
		{"/*M!999999 x */", readComment},
		{"/*M! x */", readAmbiguous},
		{"/*M!40101 x */", readAmbiguous},
		{"/*M!100100 x */", readAmbiguous},
	} {
		s := tc.comment
		mariadb := strings.HasPrefix(s, "/*M!")
		i := strings.IndexByte(s, '!') + 1
		v, digits := 0, 0
		for digits < 6 && s[i+digits] >= '0' && s[i+digits] <= '9' {
			v = v*10 + int(s[i+digits]-'0')
			digits++
		}
		if digits < 5 {
			digits = 0
		}
		if got := versionReading(mariadb, digits, v); got != tc.want {
			t.Errorf("versionReading(%q) = %d, want %d", s, got, tc.want)
		}
	}
}

func TestAmbiguousIn(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want ambiguous
	}{
		{"SELECT 1", ambiguous{}},
		{"SELECT /*!40101 1 */", ambiguous{}},
		{"/*M!999999 x */ SELECT 1", ambiguous{}},
		//         0         1         2         3
		//         0123456789012345678901234567890123
		{"SELECT /*!80000 1 */, 2", ambiguous{n: 1, start: 7, open: 15, close: 18, end: 20}},
		{"SELECT /*!80000 1 -- */\n, 2", ambiguous{n: 1, start: 7, open: 15, close: -1, end: 23}},
		{"SELECT /*!80000 '*/' */", ambiguous{n: 1, start: 7, open: 15, close: 21, end: 19}},
		{"SELECT /*!80000 /* */ 1 */", ambiguous{n: 1, start: 7, open: 15, close: 24, end: 26}},
		{"SELECT /*M! 1 /*!80000 2 */", ambiguous{n: 2, start: 7, open: 11, close: -1, end: -1}},
		{"SELECT '/*!80000', /*M!100100 1 */", ambiguous{n: 1, start: 19, open: 29, close: 32, end: 34}},
	} {
		if got := ambiguousIn(tc.sql, 0); got != tc.want {
			t.Errorf("ambiguousIn(%q) = %+v, want %+v", tc.sql, got, tc.want)
		}
	}
}

// TestClassifyVersionedComments: a statement whose reading depends on
// whether a versioned comment runs is a read only if it is one both ways.
func TestClassifyVersionedComments(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		mode Mode
		want string
	}{
		{"/*!50700 SELECT */ DELETE FROM t", 0, "write unsure"},
		{"/*!50700 SELECT 1 -- */ INSERT INTO t VALUES (1)", 0, "write unsure"},
		{"/*!40101 SELECT */ 1 FROM t", 0, "read fast"},
		{"SELECT /*!40001 SQL_NO_CACHE */ * FROM t", 0, "read fast"},
		{"SELECT 1 /*!80000 , 2 */ FROM t", 0, "read"},
		{"SELECT 1 /*!80000 , 2 */ FROM t", ModeANSIQuotes, "read"},
		{"SELECT 1 /*!80000 , @a := 2 */ FROM t", 0, "read uservar-write"},
		{`SELECT 1 /*!80000 , "*/" */ FROM t`, 0, "write unsure"},
		{`SELECT 1 /*!80000 , "*/" */ FROM t`, ModeANSIQuotes, "write unsure"},
		{"SELECT 1 /*!80000 , '\\'*/ FROM t", 0, "write unsure"},
		{"SELECT 1 /*!80000 , '\\'*/ FROM t", ModeNoBackslashEscapes, "read"},
		{"INSERT INTO t /*!80000 IGNORE */ VALUES (1)", 0, "write"},
		{"INSERT INTO t /*!80000 IGNORE */ VALUES (1) /*M! */", 0, "write"},
		{"UPDATE t SET a = 1 /*!80000 , b = 2 */ /*!80000 , c = 3 */ /*!80000 , d = 4 */", 0, "write unsure"},
		{"/*!80000 SELECT 1 */", 0, "write unsure"},
		{"/*!80000 */", 0, "write unsure"},
		{"/* switchyard:route=primary */ SELECT 1 /*!80000 , 2 */", 0, "read hint=primary"},
		{"PREPARE s FROM 'SELECT 1 /*!80000 , 2 */ FROM t'", 0, `prepare name="s" inner=read{}`},
		{"PREPARE s FROM '/*!50700 SELECT */ DELETE FROM t'", 0, `prepare name="s" inner=write{unsure}`},
		{"EXECUTE IMMEDIATE '/*!50700 SELECT */ DELETE FROM t'", 0, "write unsure"},
		{"SELECT 1; /*!50700 SELECT 2 -- */ DELETE FROM t", 0, "write unsure"},
	} {
		if got := ClassifyMode(tc.sql, tc.mode).String(); got != tc.want {
			t.Errorf("ClassifyMode(%q, %#x) = %v, want %v", tc.sql, tc.mode, got, tc.want)
		}
	}
}

func TestClassifyHostileComments(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("/*!80000 SELECT 1 */", 10000),
		"SELECT 1" + strings.Repeat(" /*!80000 , 2 */", 10000),
		"SELECT 1" + strings.Repeat(" /*M!", 10000),
		strings.Repeat("/*!80000 /* ", 10000),
		"SELECT " + strings.Repeat("point(", 3000) + strings.Repeat(")", 3000),
	} {
		if c := Classify(s); c.Kind == KindRead {
			t.Errorf("Classify(%.40q...) = %v, want no read", s, c)
		}
	}
}
