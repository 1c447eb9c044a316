package router

// scan.go: the feature scan that runs over the body of a statement once its
// leading keywords have been read. It notes locking clauses, INTO, function
// calls, variables and where the statement ends.

type scanCtx uint8

const (
	// ctxRead: the body of a query (SELECT, WITH, DO...): INTO makes it a
	// write, and a call to an unknown function leaves it undecided.
	ctxRead scanCtx = iota
	// ctxExpr: a value in SET: calls to unknown functions count, INTO does not.
	ctxExpr
	// ctxOther: DML, DDL, SHOW...: the statement goes to the primary anyway;
	// only facts about session state matter.
	ctxOther
)

// stop tells scan where to stop besides the end of the statement.
type stop uint8

const (
	stopComma    stop = 1 << iota // at a ',' on the starting parenthesis depth
	stopClose                     // after the ')' that closes the starting depth
	stopFor                       // at the word FOR on the starting depth
	stopCompound                  // a BEGIN at depth 0 opens a compound body: ';' no longer ends it
)

type features struct {
	flags   Flags
	write   bool  // a feature makes the statement a KindWrite
	unknown bool  // a call to a function that is not a known built-in
	ntok    int   // tokens scanned (callers reset it)
	first   token // the first token scanned since ntok was reset
}

// scan consumes tokens up to the end of the statement (';', consumed, or the
// end of input) or a stop condition, and returns the token that ended it.
func scan(lx *lexer, f *features, ctx scanCtx, st stop) token {
	base := lx.depth
	var p1, p2 token
	into, compound := false, false
	for {
		t := lx.next()
		switch t.kind {
		case tokEOF:
			return t
		case tokPunct:
			switch t.text {
			case ";":
				if !compound {
					return t
				}
			case ",":
				if st&stopComma != 0 && lx.depth == base {
					return t
				}
			case ")":
				if st&stopClose != 0 && lx.depth < base {
					return t
				}
			}
		case tokWord:
			if st&stopFor != 0 && lx.depth == base && t.kw("FOR") {
				return t
			}
			if st&stopCompound != 0 && lx.depth == 0 && t.kw("BEGIN") {
				compound = true
			}
			scanWord(lx, f, ctx, t, p1, p2, &into)
		case tokQuoted:
			// `name`(...) can only be a stored function.
			if ctx != ctxOther && lx.peek().is("(") {
				f.unknown = true
			}
			if p1.is(".") {
				f.noteColumn(t)
			}
		case tokUserVar:
			if into || lx.peek().is(":=") {
				f.flags |= FlagUserVarWrite
			} else {
				f.flags |= FlagUserVarRead
			}
		case tokSysVar:
			f.flags |= sysVarFlags(t.text)
		}
		if into && t.kind != tokUserVar && !t.is(",") && !t.kw("INTO") {
			into = false
		}
		f.ntok++
		if f.ntok == 1 {
			f.first = t
		}
		p2, p1 = p1, t
	}
}

// scanWord notes what the word t means given the two tokens before it.
func scanWord(lx *lexer, f *features, ctx scanCtx, t, p1, p2 token, into *bool) {
	switch len(t.text) {
	case 3:
		if t.kw("FOR") && p1.kw("VALUE") {
			// MariaDB sequences: NEXT VALUE FOR s, PREVIOUS VALUE FOR s.
			if p2.kw("NEXT") {
				f.flags |= FlagSideEffect
				f.write = true
			} else if p2.kw("PREVIOUS") {
				f.flags |= FlagLastInsertID
			}
		}
	case 4:
		if ctx == ctxRead && t.kw("INTO") {
			f.flags |= FlagInto
			f.write = true
			*into = true
		} else if t.kw("MODE") && p1.kw("SHARE") && p2.kw("IN") {
			f.flags |= FlagLocking
			f.write = true
		}
	case 5, 6:
		if (t.kw("UPDATE") || t.kw("SHARE")) && p1.kw("FOR") {
			f.flags |= FlagLocking
			f.write = true
		}
	case 19:
		if t.kw("SQL_CALC_FOUND_ROWS") {
			f.flags |= FlagCalcFoundRows
		}
	}
	if lx.peek().is("(") {
		scanCall(lx, f, ctx, t, p1)
		return
	}
	if p1.is(".") {
		f.noteColumn(t)
	}
}

// noteColumn notes the word or quoted name t read as a column after '.'.
func (f *features) noteColumn(t token) {
	flags := sequenceColumn(t)
	f.flags |= flags
	if flags&FlagSideEffect != 0 {
		f.write = true
	}
}

// sequenceColumn returns the flags of the word t read as a column after '.':
// under sql_mode=ORACLE, s.nextval advances the sequence s and s.currval
// reads the session's last value of it
// (https://mariadb.com/kb/en/sequence-overview/). In other modes these are
// plain columns; the classifier does not wait to know the mode, so a column
// with one of these names keeps a read on the primary.
func sequenceColumn(t token) Flags {
	switch {
	case t.kind != tokWord && t.kind != tokQuoted:
		return 0
	case len(t.text) < 6 || len(t.text) > 9:
		return 0
	}
	name := t.text
	if t.kind == tokQuoted {
		name = name[1 : len(name)-1]
	}
	switch {
	case eqFold(name, "NEXTVAL"), eqFold(name, "SETVAL"):
		return FlagSideEffect
	case eqFold(name, "CURRVAL"), eqFold(name, "LASTVAL"):
		return FlagLastInsertID
	}
	return 0
}

// scanCall notes a call of the function named by t (the next token is '(').
func scanCall(lx *lexer, f *features, ctx scanCtx, t, p1 token) {
	if p1.is(".") {
		// db.func(...): a stored function.
		if ctx != ctxOther {
			f.unknown = true
		}
		return
	}
	fi, ok := lookupFunc(t.text)
	switch {
	case !ok:
		ok = contextKeyword(t, p1)
	case lx.mode&ModeMySQL != 0 && fi.notOnMySQL:
		ok = false // a MariaDB built-in: a stored function on MySQL
	case fi.adjacent && lx.peek().pos != t.pos+len(t.text):
		ok = false // "count (x)": a stored function
	case fi.args != argsAny:
		ok = fi.args.fits(callArgs(lx))
	}
	if !ok {
		if ctx != ctxOther {
			f.unknown = true
		}
		return
	}
	if fi.lastInsertID {
		lx.next() // '('
		if lx.peek().is(")") {
			f.flags |= FlagLastInsertID
		} else {
			f.flags |= FlagSideEffect
			f.write = true
		}
		return
	}
	f.flags |= fi.flags
	if fi.write {
		f.write = true
	}
}

// callArgs counts the arguments of the call whose '(' is the next token,
// reading ahead on a copy of the lexer. It gives up (-1) after maxArgScan
// tokens, so that nested calls cannot make the scan quadratic.
func callArgs(lx *lexer) int {
	const maxArgScan = 256
	c := *lx
	c.next() // '('
	if c.peek().is(")") {
		return 0
	}
	base, n := c.depth, 1
	for i := 0; i < maxArgScan; i++ {
		t := c.next()
		switch {
		case t.end():
			return n
		case t.is(",") && c.depth == base:
			n++
		case t.is(")") && c.depth < base:
			return n
		}
	}
	return -1
}

// skipGroup consumes tokens up to the ')' that closes the current depth. It
// reports false at the end of the statement.
func skipGroup(lx *lexer) bool {
	base := lx.depth
	for {
		t := lx.next()
		if t.end() {
			return false
		}
		if t.is(")") && lx.depth < base {
			return true
		}
	}
}

// skipStatement consumes the statement that starts at the next token and
// returns the offset where it ends (its ';' or the end of input). A
// statement that opens a compound body (CREATE PROCEDURE ... BEGIN ... END,
// BEGIN NOT ATOMIC ...) runs to the end of input.
func skipStatement(lx *lexer) int {
	first := true
	compound := false
	for {
		t := lx.next()
		switch {
		case t.kind == tokEOF:
			return t.pos
		case t.is(";") && !compound:
			return t.pos
		case first && (t.kw("CREATE") || t.kw("ALTER")):
			for {
				u := lx.next()
				if u.kind == tokEOF {
					return u.pos
				}
				if u.is(";") && !compound {
					return u.pos
				}
				if lx.depth == 0 && u.kw("BEGIN") {
					compound = true
				}
			}
		case first && t.kw("BEGIN") && lx.peek().kw("NOT"):
			compound = true
		}
		first = false
	}
}
