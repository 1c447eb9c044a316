package router

// fastpath.go: classification by leading keywords. Each handler reads the
// keywords it needs, scans the rest of the statement for features and either
// decides (ok) or gives up, in which case the statement goes to the parser.

// fastStatement classifies the statement at the next token. When ok is false
// the lexer is left somewhere inside the statement.
func fastStatement(lx *lexer, depth int) (c Class, ok bool) {
	if depth > maxDepth {
		return Class{}, false
	}
	t := lx.next()
	var f features
	if t.is("(") {
		return parenQuery(lx, &f)
	}
	if t.kind != tokWord {
		return Class{}, false
	}
	switch len(t.text) {
	case 2:
		switch {
		case t.kw("DO"):
			scan(lx, &f, ctxRead, 0)
			return readResult(&f)
		case t.kw("XA"):
			return xa(lx, &f)
		}
	case 3:
		switch {
		case t.kw("SET"):
			return set(lx, depth)
		case t.kw("USE"):
			return use(lx, &f)
		case t.kw("GET"):
			if u := lx.peek(); u.kw("DIAGNOSTICS") || u.kw("CURRENT") || u.kw("STACKED") {
				scan(lx, &f, ctxOther, 0)
				return Class{Kind: KindRead, Flags: f.flags | FlagNeedsPrevious}, true
			}
		}
	case 4:
		switch {
		case t.kw("SHOW"):
			return show(lx, &f)
		case t.kw("DESC"):
			return explain(lx, &f, depth)
		case t.kw("WITH"):
			return withQuery(lx, &f)
		case t.kw("LOCK"):
			return lock(lx, &f)
		case t.kw("DROP"):
			return drop(lx, &f)
		case t.kw("LOAD"):
			if lx.peek().kw("INDEX") {
				return writeRest(lx, &f, FlagImplicitCommit)
			}
			return writeRest(lx, &f, 0)
		case t.kw("CALL"):
			return writeRest(lx, &f, 0)
		case t.kw("KILL"):
			return kill(lx, &f)
		case t.kw("STOP"):
			return writeRest(lx, &f, FlagImplicitCommit)
		case t.kw("HELP"):
			scan(lx, &f, ctxOther, 0)
			return Class{Kind: KindRead}, true
		}
	case 5:
		switch {
		case t.kw("BEGIN"):
			return begin(lx, &f)
		case t.kw("START"):
			return start(lx, &f)
		case t.kw("TABLE"):
			scan(lx, &f, ctxRead, 0)
			return readResult(&f)
		case t.kw("FLUSH"):
			return flush(lx, &f)
		case t.kw("ALTER"):
			return writeCompound(lx, &f, FlagImplicitCommit)
		case t.kw("GRANT"), t.kw("RESET"), t.kw("CACHE"), t.kw("CHECK"):
			return writeRest(lx, &f, FlagImplicitCommit)
		case t.kw("PURGE"):
			return writeRest(lx, &f, 0)
		}
	case 6:
		switch {
		case t.kw("SELECT"):
			scan(lx, &f, ctxRead, 0)
			return readResult(&f)
		case t.kw("INSERT"), t.kw("UPDATE"), t.kw("DELETE"), t.kw("SIGNAL"), t.kw("BINLOG"):
			return writeRest(lx, &f, 0)
		case t.kw("VALUES"):
			scan(lx, &f, ctxRead, 0)
			return readResult(&f)
		case t.kw("COMMIT"):
			return endTx(lx, KindCommit)
		case t.kw("CREATE"):
			return create(lx, &f)
		case t.kw("UNLOCK"):
			return unlock(lx, &f)
		case t.kw("RENAME"), t.kw("REVOKE"), t.kw("REPAIR"), t.kw("CHANGE"):
			return writeRest(lx, &f, FlagImplicitCommit)
		case t.kw("BACKUP"):
			return backup(lx, &f)
		}
	case 7:
		switch {
		case t.kw("REPLACE"), t.kw("HANDLER"):
			return writeRest(lx, &f, 0)
		case t.kw("EXPLAIN"), t.kw("ANALYZE"):
			if t.kw("ANALYZE") {
				if u := lx.peek(); u.kw("TABLE") || u.kw("TABLES") || u.kw("NO_WRITE_TO_BINLOG") || u.kw("LOCAL") {
					return writeRest(lx, &f, FlagImplicitCommit)
				}
			}
			return explain(lx, &f, depth)
		case t.kw("EXECUTE"):
			return execute(lx, &f, depth)
		case t.kw("PREPARE"):
			return prepare(lx, &f, depth)
		case t.kw("RELEASE"):
			if lx.next().kw("SAVEPOINT") {
				return named(lx, &f, KindReleaseSavepoint)
			}
		case t.kw("INSTALL"):
			return writeRest(lx, &f, FlagImplicitCommit)
		}
	case 8:
		switch {
		case t.kw("DESCRIBE"):
			return explain(lx, &f, depth)
		case t.kw("ROLLBACK"):
			return endTx(lx, KindRollback)
		case t.kw("TRUNCATE"), t.kw("OPTIMIZE"):
			return writeRest(lx, &f, FlagImplicitCommit)
		case t.kw("SHUTDOWN"), t.kw("RESIGNAL"):
			return writeRest(lx, &f, 0)
		case t.kw("CHECKSUM"):
			scan(lx, &f, ctxOther, 0)
			return Class{Kind: KindRead, Flags: f.flags}, true
		}
	case 9:
		switch {
		case t.kw("SAVEPOINT"):
			return named(lx, &f, KindSavepoint)
		case t.kw("UNINSTALL"):
			return writeRest(lx, &f, FlagImplicitCommit)
		}
	case 10:
		if t.kw("DEALLOCATE") && lx.next().kw("PREPARE") {
			return named(lx, &f, KindDeallocate)
		}
	}
	return Class{}, false
}

// readResult is the class of a query whose body has been scanned.
func readResult(f *features) (Class, bool) {
	if f.unknown {
		return Class{}, false
	}
	if f.write {
		return Class{Kind: KindWrite, Flags: f.flags}, true
	}
	return Class{Kind: KindRead, Flags: f.flags}, true
}

// writeRest scans the rest of a statement that goes to the primary.
func writeRest(lx *lexer, f *features, flags Flags) (Class, bool) {
	scan(lx, f, ctxOther, 0)
	return Class{Kind: KindWrite, Flags: flags | f.flags}, true
}

// kill classifies KILL (already read): KILL [HARD|SOFT] [CONNECTION|QUERY]
// id gives the id as Name, and FlagKillQuery for QUERY; any other form
// gives no Name (see KindKill).
func kill(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	if t.kw("HARD") || t.kw("SOFT") {
		t = lx.next()
	}
	var flags Flags
	switch {
	case t.kw("CONNECTION"):
		t = lx.next()
	case t.kw("QUERY"):
		flags = FlagKillQuery
		t = lx.next()
	}
	var id string
	if t.kind == tokNumber && isDigits(t.text) && lx.peek().end() {
		id = t.text
	}
	if !t.end() {
		scan(lx, f, ctxOther, 0)
	}
	return Class{Kind: KindKill, Flags: flags, Name: id}, true
}

// isDigits reports whether s is a non-empty run of decimal digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// writeCompound is writeRest for statements that may hold a compound body
// whose ';' do not end the statement (CREATE PROCEDURE, ALTER EVENT).
func writeCompound(lx *lexer, f *features, flags Flags) (Class, bool) {
	scan(lx, f, ctxOther, stopCompound)
	return Class{Kind: KindWrite, Flags: flags | f.flags}, true
}

// parenQuery classifies a query that starts with '(' (already read).
func parenQuery(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	for t.is("(") {
		t = lx.next()
	}
	switch {
	case t.kw("SELECT"), t.kw("VALUES"), t.kw("TABLE"):
		scan(lx, f, ctxRead, 0)
		return readResult(f)
	case t.kw("WITH"):
		return withQuery(lx, f)
	}
	return Class{}, false
}

// withQuery classifies WITH [RECURSIVE] cte [(cols)] AS (query) [, ...] stmt
// (WITH already read). The CTE bodies are scanned like any query; the
// statement after them decides the kind.
func withQuery(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	if t.kw("RECURSIVE") {
		t = lx.next()
	}
	for {
		if t.kind != tokWord && t.kind != tokQuoted {
			return Class{}, false
		}
		t = lx.next()
		if t.is("(") {
			if !skipGroup(lx) {
				return Class{}, false
			}
			t = lx.next()
		}
		if !t.kw("AS") || !lx.next().is("(") {
			return Class{}, false
		}
		if e := scan(lx, f, ctxRead, stopClose); !e.is(")") {
			return Class{}, false
		}
		t = lx.next()
		if !t.is(",") {
			break
		}
		t = lx.next()
	}
	switch {
	case t.kw("SELECT"), t.kw("VALUES"), t.kw("TABLE"), t.is("("):
		scan(lx, f, ctxRead, 0)
		return readResult(f)
	case t.kw("UPDATE"), t.kw("DELETE"), t.kw("INSERT"), t.kw("REPLACE"):
		if f.unknown {
			return Class{}, false
		}
		return writeRest(lx, f, 0)
	}
	return Class{}, false
}

// show classifies SHOW ... (SHOW already read).
func show(lx *lexer, f *features) (Class, bool) {
	var flags Flags
	global := false
	t := lx.next()
	for t.kw("GLOBAL") || t.kw("SESSION") || t.kw("LOCAL") || t.kw("FULL") || t.kw("ALL") || t.kw("EXTENDED") {
		if t.kw("GLOBAL") {
			global = true
		}
		t = lx.next()
	}
	if t.kind != tokWord {
		return Class{}, false
	}
	switch {
	case t.kw("WARNINGS"), t.kw("ERRORS"), t.kw("COUNT"), t.kw("PROFILE"), t.kw("PROFILES"):
		flags = FlagNeedsPrevious
	case t.kw("PROCESSLIST"), t.kw("STATUS"), t.kw("MASTER"), t.kw("BINLOG"), t.kw("SLAVE"), t.kw("SLAVES"),
		t.kw("REPLICA"), t.kw("REPLICAS"), t.kw("BINARY"), t.kw("RELAYLOG"), t.kw("ENGINE"), t.kw("OPEN"),
		t.kw("EXPLAIN"), t.kw("ANALYZE"), t.kw("INNODB"), t.kw("MUTEX"):
		flags = FlagServerLocal
	case t.kw("VARIABLES"):
		if global {
			flags = FlagServerLocal
		}
	}
	// SHOW ... WHERE evaluates expressions: a stored function there may
	// write, as in a SELECT.
	scan(lx, f, ctxExpr, 0)
	if f.unknown || f.write {
		return Class{Kind: KindWrite, Flags: flags | f.flags | FlagUnsure}, true
	}
	return Class{Kind: KindRead, Flags: flags | f.flags}, true
}

// explain classifies EXPLAIN, DESCRIBE, DESC and ANALYZE <statement> (the
// keyword already read). Explaining a statement gets the class of the
// statement: this is exact for ANALYZE and EXPLAIN ANALYZE, which run it, and
// errs towards the primary for plain EXPLAIN of a write.
func explain(lx *lexer, f *features, depth int) (Class, bool) {
	for {
		t := lx.peek()
		switch {
		case t.kw("EXTENDED"), t.kw("PARTITIONS"), t.kw("ANALYZE"):
			lx.next()
			continue
		case t.kw("FORMAT"):
			lx.next()
			if !lx.next().is("=") {
				return Class{}, false
			}
			lx.next()
			continue
		case t.kw("FOR"):
			// EXPLAIN FOR CONNECTION id
			scan(lx, f, ctxOther, 0)
			return Class{Kind: KindRead, Flags: FlagServerLocal}, true
		case t.kw("SELECT"), t.kw("WITH"), t.kw("INSERT"), t.kw("UPDATE"), t.kw("DELETE"), t.kw("REPLACE"),
			t.kw("TABLE"), t.kw("VALUES"), t.is("("):
			c, ok := fastStatement(lx, depth+1)
			return Class{Kind: c.Kind, Flags: c.Flags}, ok
		case t.end():
			return Class{}, false
		}
		break
	}
	// DESCRIBE table [column]
	scan(lx, f, ctxOther, 0)
	return Class{Kind: KindRead, Flags: f.flags}, true
}

// use classifies USE db (USE already read).
func use(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	if t.kind != tokWord && t.kind != tokQuoted {
		return Class{}, false
	}
	if !scan(lx, f, ctxOther, 0).end() || f.ntok != 0 {
		return Class{}, false
	}
	return Class{Kind: KindUse, Name: unquote(t, lx.mode)}, true
}

// named classifies a statement of the given kind followed by just a name:
// SAVEPOINT, RELEASE SAVEPOINT, DEALLOCATE PREPARE (keywords already read).
func named(lx *lexer, f *features, k Kind) (Class, bool) {
	t := lx.next()
	if t.kind != tokWord && t.kind != tokQuoted {
		return Class{}, false
	}
	scan(lx, f, ctxOther, 0)
	if f.ntok != 0 {
		return Class{}, false
	}
	return Class{Kind: k, Name: unquote(t, lx.mode)}, true
}

// begin classifies BEGIN [WORK] and BEGIN NOT ATOMIC (BEGIN already read).
func begin(lx *lexer, f *features) (Class, bool) {
	t := lx.peek()
	switch {
	case t.end():
		lx.next()
		return Class{Kind: KindBegin, Flags: FlagImplicitCommit}, true
	case t.kw("WORK"):
		lx.next()
		if scan(lx, f, ctxOther, 0); f.ntok != 0 {
			return Class{}, false
		}
		return Class{Kind: KindBegin, Flags: FlagImplicitCommit}, true
	case t.kw("NOT"):
		// BEGIN NOT ATOMIC ... END: an anonymous compound statement.
		for lx.next().kind != tokEOF {
		}
		return Class{Kind: KindWrite}, true
	}
	return Class{}, false
}

// start classifies START TRANSACTION and START SLAVE/REPLICA (START read).
func start(lx *lexer, f *features) (Class, bool) {
	if !lx.peek().kw("TRANSACTION") {
		return writeRest(lx, f, FlagImplicitCommit)
	}
	lx.next()
	flags := FlagImplicitCommit
	var prev token
	for {
		t := lx.next()
		if t.end() {
			break
		}
		if t.kw("ONLY") && prev.kw("READ") {
			flags |= FlagTxReadOnly
		}
		prev = t
	}
	return Class{Kind: KindBegin, Flags: flags}, true
}

// endTx classifies COMMIT and ROLLBACK [WORK] [AND [NO] CHAIN] [[NO]
// RELEASE] and ROLLBACK [WORK] TO [SAVEPOINT] name (keyword already read).
func endTx(lx *lexer, k Kind) (Class, bool) {
	var flags Flags
	no := false
	for {
		t := lx.next()
		switch {
		case t.end():
			return Class{Kind: k, Flags: flags}, true
		case t.kw("WORK"), t.kw("AND"):
		case t.kw("NO"):
			no = true
			continue
		case t.kw("CHAIN"):
			if !no {
				flags |= FlagChain
			}
		case t.kw("RELEASE"):
			if !no {
				flags |= FlagRelease
			}
		case t.kw("TO") && k == KindRollback:
			if lx.peek().kw("SAVEPOINT") {
				lx.next()
			}
			var f features
			return named(lx, &f, KindRollbackToSavepoint)
		default:
			return Class{}, false
		}
		no = false
	}
}

// xa classifies XA statements (XA already read).
func xa(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	var k Kind
	switch {
	case t.kw("START"), t.kw("BEGIN"):
		k = KindBegin
	case t.kw("COMMIT"):
		k = KindCommit
	case t.kw("ROLLBACK"):
		k = KindRollback
	case t.kw("END"), t.kw("PREPARE"), t.kw("RECOVER"):
		k = KindWrite
	default:
		return Class{}, false
	}
	scan(lx, f, ctxOther, 0)
	return Class{Kind: k, Flags: FlagXA}, true
}

// lock classifies LOCK TABLES and LOCK INSTANCE FOR BACKUP (LOCK read).
func lock(lx *lexer, f *features) (Class, bool) {
	switch t := lx.peek(); {
	case t.kw("TABLE"), t.kw("TABLES"):
		scan(lx, f, ctxOther, 0)
		return Class{Kind: KindLockTables, Flags: FlagImplicitCommit}, true
	case t.kw("INSTANCE"):
		scan(lx, f, ctxOther, 0)
		return Class{Kind: KindLockTables}, true
	}
	return Class{}, false
}

// unlock classifies UNLOCK TABLES and UNLOCK INSTANCE (UNLOCK read).
func unlock(lx *lexer, f *features) (Class, bool) {
	switch t := lx.peek(); {
	case t.kw("TABLE"), t.kw("TABLES"):
		scan(lx, f, ctxOther, 0)
		return Class{Kind: KindUnlockTables, Flags: FlagImplicitCommit}, true
	case t.kw("INSTANCE"):
		scan(lx, f, ctxOther, 0)
		return Class{Kind: KindUnlockTables}, true
	}
	return Class{}, false
}

// backup classifies MariaDB's BACKUP LOCK, BACKUP UNLOCK and BACKUP STAGE.
func backup(lx *lexer, f *features) (Class, bool) {
	t := lx.next()
	k := KindLockTables
	switch {
	case t.kw("LOCK"):
	case t.kw("UNLOCK"):
		k = KindUnlockTables
	case t.kw("STAGE"):
		if lx.peek().kw("END") {
			k = KindUnlockTables
		}
	default:
		return Class{}, false
	}
	scan(lx, f, ctxOther, 0)
	return Class{Kind: k}, true
}

// flush classifies FLUSH; FLUSH TABLES ... WITH READ LOCK and ... FOR EXPORT
// leave the session holding locks.
func flush(lx *lexer, f *features) (Class, bool) {
	k := KindWrite
	var prev token
	for {
		t := lx.next()
		if t.end() {
			break
		}
		if (t.kw("LOCK") && prev.kw("READ")) || (t.kw("EXPORT") && prev.kw("FOR")) {
			k = KindLockTables
		}
		prev = t
	}
	return Class{Kind: k, Flags: FlagImplicitCommit}, true
}

// create classifies CREATE ... (CREATE read).
func create(lx *lexer, f *features) (Class, bool) {
	if lx.peek().kw("OR") {
		lx.next()
		if !lx.next().kw("REPLACE") {
			return Class{}, false
		}
	}
	if lx.peek().kw("TEMPORARY") {
		return writeRest(lx, f, FlagTempTableCreate)
	}
	return writeCompound(lx, f, FlagImplicitCommit)
}

// drop classifies DROP ... (DROP read).
func drop(lx *lexer, f *features) (Class, bool) {
	switch t := lx.peek(); {
	case t.kw("TEMPORARY"):
		return writeRest(lx, f, FlagTempTableDrop)
	case t.kw("PREPARE"):
		lx.next()
		return named(lx, f, KindDeallocate)
	}
	return writeRest(lx, f, FlagImplicitCommit)
}

// prepare classifies PREPARE name FROM 'text' | @var (PREPARE read).
func prepare(lx *lexer, f *features, depth int) (Class, bool) {
	t := lx.next()
	if t.kind != tokWord && t.kind != tokQuoted {
		return Class{}, false
	}
	if !lx.next().kw("FROM") {
		return Class{}, false
	}
	c := Class{Kind: KindPrepare, Name: unquote(t, lx.mode)}
	switch v := lx.next(); v.kind {
	case tokString:
		inner := classify(unquote(v, lx.mode), lx.mode, depth+1)
		if inner.Flags&FlagFastPath == 0 {
			lx.usedParser = true
		}
		c.InnerKind, c.InnerFlags = inner.Kind, inner.Flags&^FlagFastPath
	case tokUserVar:
		c.Flags |= FlagUserVarRead
		c.InnerKind, c.InnerFlags = KindWrite, FlagUnsure
	default:
		return Class{}, false
	}
	if scan(lx, f, ctxOther, 0); f.ntok != 0 {
		return Class{}, false
	}
	return c, true
}

// execute classifies EXECUTE name [USING ...] and EXECUTE IMMEDIATE
// (EXECUTE read).
func execute(lx *lexer, f *features, depth int) (Class, bool) {
	t := lx.next()
	if t.kw("IMMEDIATE") {
		switch u := lx.peek(); {
		case u.kind == tokString:
			lx.next()
			inner := classify(unquote(u, lx.mode), lx.mode, depth+1)
			if inner.Flags&FlagFastPath == 0 {
				lx.usedParser = true
			}
			scan(lx, f, ctxOther, 0)
			inner.Flags = (inner.Flags | f.flags) &^ FlagFastPath
			inner.Hint = RouteDefault
			return inner, true
		case !u.end() && !u.kw("USING"):
			// EXECUTE IMMEDIATE @var or CONCAT(...): text unknown here.
			scan(lx, f, ctxOther, 0)
			return Class{Kind: KindWrite, Flags: FlagUnsure | f.flags}, true
		}
	}
	if t.kind != tokWord && t.kind != tokQuoted {
		return Class{}, false
	}
	scan(lx, f, ctxOther, 0)
	return Class{Kind: KindExecute, Flags: f.flags, Name: unquote(t, lx.mode)}, true
}
