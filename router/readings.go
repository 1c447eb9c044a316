package router

// readings.go: statements whose meaning depends on which server reads them.
//
// A versioned comment /*!NNNNN ... */ is code to a server whose version is at
// least NNNNN and a comment to the others, and the servers Switchyard fronts
// do not agree on it (https://mariadb.com/kb/en/comment-syntax/,
// https://dev.mysql.com/doc/refman/8.0/en/comments.html):
//
//   - MySQL runs /*!NNNNN when NNNNN is at most its version, and never runs
//     MariaDB's /*M!NNNNNN (to MySQL it is an ordinary comment).
//   - MariaDB runs /*!NNNNN only when NNNNN is below 50700 or is a six-digit
//     MariaDB version up to its own: it skips 50700-99999, which are MySQL 5.7
//     and later. It runs /*M!NNNNNN up to its version, and /*M! without one.
//
// So "/*!50700 SELECT */ DELETE FROM t" deletes on MariaDB and selects on
// MySQL 8. The lexer (lexer.go) reads as code what every supported server
// runs (/*! without a version, /*!NNNNN below 50700), as a comment what none
// does (six-digit versions from 900000 up, such as mariadb-dump's
// /*M!999999), and calls the rest ambiguous. It reads ambiguous comments as
// code and counts them; classify then classifies the other readings too, and
// keeps a class only when every reading agrees on it.

// maxReadings bounds the readings of one text that are classified: a text
// with more is KindWrite + FlagUnsure.
const maxReadings = 4

// ambiguous records the versioned comments of a text whose reading depends on
// the server, and where the first one is.
type ambiguous struct {
	n     int // ambiguous comments met (each read as code)
	start int // the first one's "/*"
	open  int // the end of its opening marker (after the version)
	close int // the "*/" that ended it as code; -1 if none did
	end   int // its end read as a comment (after its "*/"); -1 if it never ends
}

// ambiguousIn finds the ambiguous versioned comments of sql. The lexer's
// comments do not depend on the statements, so a plain pass over the tokens
// meets the comments the classifying pass met.
func ambiguousIn(sql string, mode Mode) ambiguous {
	var a ambiguous
	var lx lexer
	lx.init(sql, mode)
	lx.amb = &a
	for lx.next().kind != tokEOF {
	}
	a.n = lx.ambN
	return a
}

// classifyAmbiguous classifies sql, whose reading with every ambiguous
// comment as code is c, in every reading of those comments.
//
// With one ambiguous comment there are two readings: if both are reads, the
// statement is a read with the flags of both. Otherwise, and with more than
// one ambiguous comment always, only a statement that goes to the primary
// anyway keeps its class: one that is the same KindWrite class in every
// reading. A KILL keeps its class when every reading is that KILL, and is a
// KindKill without a Name when only some readings hold one. Anything else is
// KindWrite + FlagUnsure.
func classifyAmbiguous(sql string, mode Mode, depth int, c Class, amb ambiguous) Class {
	var rs readings
	if !rs.collect(sql, mode, depth, c, amb) {
		return Class{Kind: KindWrite, Flags: FlagUnsure, Hint: c.Hint}
	}
	return rs.result()
}

type readings struct {
	classes []Class
}

// collect adds the class of every reading of sql, given c and amb from its
// reading with every ambiguous comment as code. It reports false when there
// are more than maxReadings.
func (rs *readings) collect(sql string, mode Mode, depth int, c Class, amb ambiguous) bool {
	if amb.n == 0 {
		rs.classes = append(rs.classes, c)
		return len(rs.classes) <= maxReadings
	}
	if amb.n >= maxReadings || len(rs.classes)+2 > maxReadings {
		return false
	}
	// The first ambiguous comment as code. With just one, that is c. With
	// more, the comment's markers are blanked so that it is plain code, and
	// the others are read both ways. If it never ends as code, the server
	// rejects the statement and c is already unsure.
	if amb.n == 1 || amb.close < 0 {
		rs.classes = append(rs.classes, c)
	} else {
		text := blank(sql, amb.start, amb.open, amb.close, amb.close+2)
		ca, ambA := reading(text, mode, depth)
		if !rs.collect(text, mode, depth, ca, ambA) {
			return false
		}
	}
	// The first ambiguous comment as a comment: blanked whole. Text that was
	// inside a string in the other reading may now hold new ones.
	if amb.end < 0 {
		rs.classes = append(rs.classes, unsure)
		return len(rs.classes) <= maxReadings
	}
	text := blank(sql, amb.start, amb.end)
	cb, ambB := reading(text, mode, depth)
	return rs.collect(text, mode, depth, cb, ambB)
}

// reading classifies sql with its ambiguous comments read as code, and
// finds them.
func reading(sql string, mode Mode, depth int) (Class, ambiguous) {
	c, n := classifyReading(sql, mode, depth)
	if n == 0 {
		return c, ambiguous{}
	}
	return c, ambiguousIn(sql, mode)
}

// result combines the readings as classifyAmbiguous describes.
func (rs *readings) result() Class {
	cs := rs.classes
	hint := cs[0].Hint
	same := true
	for i := range cs {
		cs[i].Flags &^= FlagFastPath // the readings allocated
		hint = joinHints(hint, cs[i].Hint)
		cs[i].Hint = RouteDefault
		if cs[i] != cs[0] {
			same = false
		}
	}
	kill := false
	for _, c := range cs {
		kill = kill || c.Kind == KindKill
	}
	switch {
	case len(cs) == 2 && cs[0].Kind == KindRead && cs[1].Kind == KindRead:
		return Class{Kind: KindRead, Flags: cs[0].Flags | cs[1].Flags, Hint: hint}
	case same && (cs[0].Kind == KindWrite || cs[0].Kind == KindKill):
		c := cs[0]
		c.Hint = hint
		return c
	case kill:
		// A KILL in some reading: the proxy's to answer, not to serve.
		return Class{Kind: KindKill, Hint: hint}
	}
	return Class{Kind: KindWrite, Flags: FlagUnsure, Hint: hint}
}

// joinHints is the hint of a statement whose readings carry hints a and b: a
// primary hint in either wins, differing replica and default hints give the
// default.
func joinHints(a, b Route) Route {
	switch {
	case a == b:
		return a
	case a == RoutePrimary || b == RoutePrimary:
		return RoutePrimary
	}
	return RouteDefault
}

// blank returns s with the byte ranges [r[0], r[1]), [r[2], r[3]), ...
// replaced by spaces, so that every other byte keeps its offset.
func blank(s string, r ...int) string {
	b := []byte(s)
	for i := 0; i+1 < len(r); i += 2 {
		for j := r[i]; j < r[i+1] && j < len(b); j++ {
			b[j] = ' '
		}
	}
	return string(b)
}
