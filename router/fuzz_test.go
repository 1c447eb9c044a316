package router

import (
	"strings"
	"testing"
)

// FuzzClassify checks that Classify never panics, answers the same twice,
// and keeps its invariants, in every mode.
func FuzzClassify(f *testing.F) {
	entries, _ := readGolden(f)
	for _, e := range entries {
		f.Add(e.stmt)
	}
	for _, s := range []string{"/*!40101 SELECT 1 */", "/*M!100100 SET x=1 */", "SELECT 'a\\'; DELETE FROM t; -- '",
		"WITH RECURSIVE c(n) AS (SELECT 1) SELECT * FROM c", "SET STATEMENT x=1 FOR SELECT 1"} {
		f.Add(s)
	}
	const writeFlags = FlagLocking | FlagInto | FlagSideEffect | FlagLockFunc | FlagReleaseLockFunc | FlagUnsure |
		FlagMultiStatement | FlagGlobalSet
	f.Fuzz(func(t *testing.T, sql string) {
		for _, mode := range []Mode{0, ModeNoBackslashEscapes, ModeANSIQuotes, ModeCharsetGBK, ModeCharsetBig5,
			ModeCharsetSJIS, ModeCharsetGB18030 | ModeNoBackslashEscapes, ModeCharset8Bit, ModeUnsafe} {
			c := ClassifyMode(sql, mode)
			if again := ClassifyMode(sql, mode); again != c {
				t.Fatalf("ClassifyMode(%q, %d) = %v, then %v", sql, mode, c, again)
			}
			if c.Kind >= numKinds || c.Hint > RouteReplica || c.InnerKind >= numKinds {
				t.Fatalf("ClassifyMode(%q, %d) = %#v: out of range", sql, mode, c)
			}
			if c.Kind == KindRead && c.Flags&writeFlags != 0 {
				t.Fatalf("ClassifyMode(%q, %d) = %v: a read with write flags", sql, mode, c)
			}
			if c.Kind != KindPrepare && (c.InnerKind != 0 || c.InnerFlags != 0) {
				t.Fatalf("ClassifyMode(%q, %d) = %#v: inner class outside PREPARE", sql, mode, c)
			}
			switch c.Kind {
			case KindPrepare, KindExecute, KindDeallocate, KindUse, KindSavepoint, KindReleaseSavepoint,
				KindRollbackToSavepoint, KindKill:
			default:
				if c.Name != "" {
					t.Fatalf("ClassifyMode(%q, %d) = %v: a name on a %v", sql, mode, c, c.Kind)
				}
			}
			_ = c.String()
		}
	})
}

// FuzzReadings checks the rules for statements whose reading depends on the
// server or session: when ClassifyMode calls a statement a read, no reading
// of its ambiguous versioned comments is a write, and no mode that adds
// uncertainty (ModeUnsafe) makes it or anything else a read.
func FuzzReadings(f *testing.F) {
	entries, _ := readGolden(f)
	for _, e := range entries {
		if strings.Contains(e.stmt, "/*") {
			f.Add(e.stmt, uint16(0))
		}
	}
	for _, s := range []string{
		"/*!50700 SELECT */ DELETE FROM t",
		"/*!50700 SELECT 1 -- */ INSERT INTO t VALUES (1)",
		"SELECT 1 /*!80000 , 2 */ /*M!100100 , 3 */ FROM t",
		"SELECT 1 /*!80000 , '*/ FROM t; DELETE FROM t; -- ' */",
		"/*M!999999 /* */ SELECT 1, '*/ DELETE FROM t -- '",
		"SELECT 'xx\x81\x5c', f_ins() -- '",
		"SELECT /*M! 1 */ 2 /*!50700 , f() */",
	} {
		f.Add(s, uint16(0))
		f.Add(s, uint16(ModeCharsetGBK))
	}
	f.Fuzz(func(t *testing.T, sql string, m uint16) {
		mode := Mode(m) & (ModeNoBackslashEscapes | ModeANSIQuotes | ModeCharset8Bit | modeCharsets)
		if mode&modeCharsets&(mode&modeCharsets-1) != 0 {
			mode &^= modeCharsets // one client charset at a time
		}
		c := ClassifyMode(sql, mode)
		switch u := ClassifyMode(sql, mode|ModeUnsafe); {
		case c.Kind == KindKill:
			// The proxy answers a KILL itself, in any mode.
			if u != c {
				t.Fatalf("ClassifyMode(%q, %#x|ModeUnsafe) = %v, want %v as without it", sql, mode, u, c)
			}
		case u.Kind != KindWrite || u.Flags&FlagUnsure == 0:
			t.Fatalf("ClassifyMode(%q, %#x|ModeUnsafe) = %v, want an unsure write", sql, mode, u)
		}
		if c.Kind != KindRead {
			return
		}
		if c.Flags&FlagUnsure != 0 {
			t.Fatalf("ClassifyMode(%q, %#x) = %v: an unsure read", sql, mode, c)
		}
		// Walk the readings the way classify does, and check each.
		var walk func(text string, n int)
		walk = func(text string, n int) {
			if n > maxReadings {
				return
			}
			r, amb := reading(text, mode, 0)
			if r.Kind != KindRead {
				t.Fatalf("ClassifyMode(%q, %#x) = %v, but reading it as %q gives %v", sql, mode, c, text, r)
			}
			if amb.n == 0 {
				return
			}
			if amb.end < 0 {
				t.Fatalf("ClassifyMode(%q, %#x) = %v, but an ambiguous comment never ends", sql, mode, c)
			}
			walk(blank(text, amb.start, amb.end), n+1)
			if amb.close >= 0 {
				walk(blank(text, amb.start, amb.open, amb.close, amb.close+2), n+1)
			}
		}
		walk(sql, 0)
	})
}
