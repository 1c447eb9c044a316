package router

import "testing"

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
		for _, mode := range []Mode{0, ModeNoBackslashEscapes, ModeANSIQuotes} {
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
				KindRollbackToSavepoint:
			default:
				if c.Name != "" {
					t.Fatalf("ClassifyMode(%q, %d) = %v: a name on a %v", sql, mode, c, c.Kind)
				}
			}
			_ = c.String()
		}
	})
}
