package router

// set.go: the SET statement in all its forms.
// https://mariadb.com/kb/en/set/, https://dev.mysql.com/doc/refman/8.0/en/set-variable.html

import "strings"

type txScope uint8

const (
	scopeNext txScope = iota // SET TRANSACTION: the next transaction only
	scopeSession
	scopeGlobal
)

// set classifies a SET statement (SET already read).
func set(lx *lexer, depth int) (Class, bool) {
	var f features
	switch t := lx.peek(); {
	case t.kw("PASSWORD"):
		return writeRest(lx, &f, FlagImplicitCommit)
	case t.kw("ROLE"):
		scan(lx, &f, ctxOther, 0)
		return Class{Kind: KindSet, Flags: FlagSessionVar}, true
	case t.kw("DEFAULT"):
		saved := *lx
		lx.next()
		if lx.peek().kw("ROLE") {
			return writeRest(lx, &f, FlagImplicitCommit)
		}
		*lx = saved
	case t.kw("STATEMENT"):
		lx.next()
		return setStatement(lx, &f, depth)
	case t.kw("TRANSACTION"):
		lx.next()
		return setTransaction(lx, scopeNext)
	case t.kw("GLOBAL"), t.kw("SESSION"), t.kw("LOCAL"):
		saved := *lx
		lx.next()
		if lx.peek().kw("TRANSACTION") {
			lx.next()
			if t.kw("GLOBAL") {
				return setTransaction(lx, scopeGlobal)
			}
			return setTransaction(lx, scopeSession)
		}
		*lx = saved
	}
	return assignments(lx, &f)
}

// setStatement classifies SET STATEMENT var = value [, ...] FOR statement
// (SET STATEMENT already read): the variables apply to that one statement.
// https://mariadb.com/kb/en/set-statement/
//
// Some variables change what the proxy relies on: SET STATEMENT
// tx_read_only=0 FOR INSERT ... writes from a session whose transaction is
// read only, and session_track_* hide the changes the proxy tracks from the
// OK packet. Such a statement is KindWrite + FlagUnsure whatever follows FOR.
func setStatement(lx *lexer, f *features, depth int) (Class, bool) {
	probe := *lx
	base := probe.depth
	for {
		t := probe.next()
		if t.end() || t.kw("FOR") && probe.depth == base {
			break
		}
		if eq := probe.peek(); probe.depth == base && (eq.is("=") || eq.is(":=")) && guardedVar(t, lx.mode) {
			scan(lx, f, ctxOther, 0)
			return Class{Kind: KindWrite, Flags: FlagUnsure | f.flags}, true
		}
	}
	if e := scan(lx, f, ctxExpr, stopFor); !e.kw("FOR") || f.unknown {
		return Class{}, false
	}
	saved := *lx
	c, ok := fastStatement(lx, depth+1)
	if !ok {
		// The statement after FOR needs the parser, which does not know
		// SET STATEMENT: give it that statement alone.
		*lx = saved
		start := lx.peek().pos
		end := skipStatement(lx)
		lx.usedParser = true
		c = slowStatement(lx.s[start:end], lx.mode, depth+1)
	}
	c.Flags |= f.flags
	if f.write {
		c.Kind = KindWrite
	}
	return c, true
}

// guardedVar reports whether the variable token t, assigned in SET STATEMENT,
// is one that must not change for a single statement behind the proxy's back.
func guardedVar(t token, mode Mode) bool {
	var name string
	switch t.kind {
	case tokSysVar:
		name = sysVarName(t.text)
	case tokWord, tokQuoted:
		name = unquote(t, mode)
	default:
		return false
	}
	var buf [48]byte
	low, ok := lowerInto(buf[:], name)
	if !ok {
		return false
	}
	n := string(low)
	return n == "tx_read_only" || n == "transaction_read_only" || n == "read_only" ||
		strings.HasPrefix(n, "session_track_")
}

// setTransaction classifies the characteristics after SET [scope] TRANSACTION.
func setTransaction(lx *lexer, scope txScope) (Class, bool) {
	readOnly := false
	var prev token
	for {
		t := lx.next()
		if t.end() {
			break
		}
		if t.kw("ONLY") && prev.kw("READ") {
			readOnly = true
		}
		prev = t
	}
	var flags Flags
	switch scope {
	case scopeGlobal:
		return Class{Kind: KindWrite, Flags: FlagGlobalSet}, true
	case scopeSession:
		flags = FlagSessionVar | FlagSetTransaction
	default:
		flags = FlagSetTransaction
	}
	if readOnly {
		flags |= FlagTxReadOnly
	}
	return Class{Kind: KindSet, Flags: flags}, true
}

// assignments classifies SET assignment [, assignment] ... . A scope keyword
// (GLOBAL, SESSION, LOCAL, PERSIST) applies to the assignments after it that
// name no scope; @@global.x and @@session.x apply to themselves only.
func assignments(lx *lexer, f *features) (Class, bool) {
	var flags Flags
	write, global := false, false
	for {
		t := lx.next()
		switch {
		case t.kw("GLOBAL"), t.kw("PERSIST"), t.kw("PERSIST_ONLY"):
			global = true
			t = lx.next()
		case t.kw("SESSION"), t.kw("LOCAL"):
			global = false
			t = lx.next()
		}
		isSys, isGlobal, name := false, global, ""
		switch {
		case t.kind == tokUserVar:
			flags |= FlagUserVarWrite
		case t.kind == tokSysVar:
			isSys = true
			name, isGlobal = sysVarScope(t.text)
		case t.kw("NAMES"), t.kw("CHARSET"), t.kw("CHARACTER"):
			// SET NAMES cs [COLLATE c], SET CHARACTER SET cs: no '='.
			if t.kw("CHARACTER") && !lx.next().kw("SET") {
				return Class{}, false
			}
			if global {
				flags |= FlagGlobalSet
				write = true
			} else {
				flags |= FlagSessionVar
			}
			if !scan(lx, f, ctxExpr, stopComma).is(",") {
				return setResult(flags, write, f)
			}
			continue
		case t.kind == tokWord || t.kind == tokQuoted:
			isSys = true
			name = unquote(t, lx.mode)
			if lx.peek().is(".") {
				// A structured variable: keycache.key_buffer_size.
				lx.next()
				u := lx.next()
				if u.kind != tokWord && u.kind != tokQuoted {
					return Class{}, false
				}
				name = unquote(u, lx.mode)
			}
		default:
			return Class{}, false
		}
		if eq := lx.next(); !eq.is("=") && !eq.is(":=") {
			return Class{}, false
		}
		f.ntok = 0
		e := scan(lx, f, ctxExpr, stopComma)
		if isSys {
			switch {
			case isGlobal:
				flags |= FlagGlobalSet
				write = true
			case eqFold(name, "AUTOCOMMIT"):
				flags |= autocommitValue(f, lx.mode)
			default:
				flags |= FlagSessionVar
			}
		}
		if !e.is(",") {
			return setResult(flags, write, f)
		}
	}
}

func setResult(flags Flags, write bool, f *features) (Class, bool) {
	flags |= f.flags
	if f.unknown {
		// A stored function in a SET value may write; the proxy might also
		// replay the statement on other connections.
		flags |= FlagUnsure
		write = true
	}
	if write || f.write {
		return Class{Kind: KindWrite, Flags: flags}, true
	}
	return Class{Kind: KindSet, Flags: flags}, true
}

// autocommitValue reads the value of SET autocommit = value: a single token
// 0, 1, ON, OFF, TRUE, FALSE (bare or quoted). Anything else (DEFAULT, an
// expression, a variable) cannot be known here: FlagUnsure.
func autocommitValue(f *features, mode Mode) Flags {
	if f.ntok != 1 {
		return FlagUnsure
	}
	v := f.first.text
	switch f.first.kind {
	case tokNumber, tokWord:
	case tokString:
		v = unquote(f.first, mode)
	default:
		return FlagUnsure
	}
	switch {
	case v == "1", eqFold(v, "ON"), eqFold(v, "TRUE"):
		return FlagAutocommitOn
	case v == "0", eqFold(v, "OFF"), eqFold(v, "FALSE"):
		return FlagAutocommitOff
	}
	return FlagUnsure
}
