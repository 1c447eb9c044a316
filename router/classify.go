// Package router is the pure core of Switchyard: it classifies statements and
// holds the rules that turn a classification into a route. It does no I/O and
// reads no clock.
//
// Classify looks at the text of one COM_QUERY or COM_STMT_PREPARE and reports
// the facts routing needs: whether the statement reads or writes, controls a
// transaction, changes session state, takes locks, or depends on the statement
// before it. A byte-level scanner decides the common shapes without
// allocating (FlagFastPath); the TiDB parser (github.com/pingcap/tidb/pkg/parser)
// decides the rest. Whatever neither can decide is reported as a KindWrite with
// FlagUnsure, so it goes to the primary and can be counted: a call of a name
// that is not a built-in of the server (it may be a stored function that
// writes), a versioned comment that servers read differently (readings.go),
// a session whose sql_mode or client charset the classifier cannot read
// (Mode).
package router

import (
	"strconv"
	"strings"
)

// Kind is what a statement does, as far as routing cares. The zero Kind is
// KindWrite, so a zero Class sends a statement to the primary.
type Kind uint8

const (
	// KindWrite statements must run on the primary: DML (INSERT, UPDATE,
	// DELETE, REPLACE, LOAD DATA), DDL, CALL, SET GLOBAL, SELECT ... FOR
	// UPDATE/SHARE, SELECT ... INTO, statements calling functions with side
	// effects, and anything the classifier could not decide (FlagUnsure).
	KindWrite Kind = iota
	// KindRead statements change nothing but, at most, user variables of
	// the session: SELECT, SHOW, DESCRIBE, EXPLAIN of a read, WITH ... SELECT,
	// VALUES, TABLE, DO, HELP. A read may still depend on one connection or
	// server: see ReadCaveats.
	KindRead
	// KindEmpty is a query with no statement, only whitespace and comments.
	// The server answers it with ER_EMPTY_QUERY.
	KindEmpty
	// KindBegin starts a transaction: BEGIN [WORK], START TRANSACTION
	// [READ ONLY|READ WRITE|WITH CONSISTENT SNAPSHOT], XA START|BEGIN.
	// FlagTxReadOnly marks READ ONLY. It commits any open transaction.
	KindBegin
	// KindCommit ends a transaction: COMMIT, XA COMMIT. FlagChain: a new
	// transaction starts at once; FlagRelease: the server disconnects.
	KindCommit
	// KindRollback ends a transaction: ROLLBACK, XA ROLLBACK (FlagChain and
	// FlagRelease as for KindCommit).
	KindRollback
	// KindSavepoint is SAVEPOINT name.
	KindSavepoint
	// KindReleaseSavepoint is RELEASE SAVEPOINT name.
	KindReleaseSavepoint
	// KindRollbackToSavepoint is ROLLBACK [WORK] TO [SAVEPOINT] name: the
	// transaction stays open.
	KindRollbackToSavepoint
	// KindSet is a SET statement that changes only session state: system
	// variables (FlagSessionVar), user variables (FlagUserVarWrite), autocommit
	// (FlagAutocommitOn/Off), the next transaction (FlagSetTransaction).
	// A SET that changes global state is a KindWrite with FlagGlobalSet.
	KindSet
	// KindUse is USE db; Class.Name is the database.
	KindUse
	// KindPrepare is PREPARE name FROM ...; Class.Name is the statement name
	// and InnerKind/InnerFlags classify the prepared text when it is a
	// literal (for FROM @var they are KindWrite and FlagUnsure).
	KindPrepare
	// KindExecute is EXECUTE name [USING ...]; Class.Name is the name. (EXECUTE
	// IMMEDIATE 'text' is classified as its text.)
	KindExecute
	// KindDeallocate is DEALLOCATE PREPARE name or DROP PREPARE name.
	KindDeallocate
	// KindLockTables takes locks the session holds until it releases them:
	// LOCK TABLES, FLUSH TABLES ... WITH READ LOCK, FLUSH TABLES ... FOR
	// EXPORT, LOCK INSTANCE FOR BACKUP, BACKUP LOCK, BACKUP STAGE.
	KindLockTables
	// KindUnlockTables releases them: UNLOCK TABLES, UNLOCK INSTANCE, BACKUP
	// UNLOCK, BACKUP STAGE END.
	KindUnlockTables
	// KindKill is KILL: the proxy answers it, since the connection ids its
	// clients know are its own, not a server's. For the forms KILL
	// [HARD|SOFT] [CONNECTION|QUERY] id, Class.Name is the id as written
	// (decimal digits) and FlagKillQuery marks KILL QUERY. Any other form
	// (KILL USER, KILL QUERY ID, an expression) has no Name, and so does a
	// text holding a KILL beside other statements, or one that the servers
	// read differently: such a KILL is not to be served, nor sent on.
	KindKill

	numKinds
)

// NumKinds is the number of Kinds, for tables indexed by Kind.
const NumKinds = int(numKinds)

var kindNames = [numKinds]string{
	KindWrite:               "write",
	KindRead:                "read",
	KindEmpty:               "empty",
	KindBegin:               "begin",
	KindCommit:              "commit",
	KindRollback:            "rollback",
	KindSavepoint:           "savepoint",
	KindReleaseSavepoint:    "release-savepoint",
	KindRollbackToSavepoint: "rollback-to-savepoint",
	KindSet:                 "set",
	KindUse:                 "use",
	KindPrepare:             "prepare",
	KindExecute:             "execute",
	KindDeallocate:          "deallocate",
	KindLockTables:          "lock-tables",
	KindUnlockTables:        "unlock-tables",
	KindKill:                "kill",
}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Flags are facts about a statement beyond its Kind. Several may be set.
type Flags uint32

const (
	// FlagUnsure: the classifier could not decide. On a statement it could
	// not classify (a parse failure, an unknown statement, a call to a
	// function that is not a known built-in, such as a stored function that
	// may write) Kind is KindWrite. On a KindSet it means the new autocommit
	// value is unknown (SET autocommit = @v, DEFAULT or an expression): read
	// SERVER_STATUS_AUTOCOMMIT from the OK packet. A KindRead is never unsure.
	FlagUnsure Flags = 1 << iota
	// FlagMultiStatement: the query holds several statements separated by ';'.
	// Kind is then KindWrite (KindKill if one of them is a KILL) and Flags is
	// the union of every statement's.
	FlagMultiStatement
	// FlagImplicitCommit: the statement commits an open transaction
	// (DDL, LOCK/UNLOCK TABLES, BEGIN, GRANT, FLUSH, ...).
	FlagImplicitCommit
	// FlagLocking: SELECT ... FOR UPDATE, FOR SHARE or LOCK IN SHARE MODE.
	FlagLocking
	// FlagInto: SELECT ... INTO OUTFILE, DUMPFILE or @variables.
	FlagInto
	// FlagSideEffect: calls a function that changes state, such as
	// NEXTVAL, SETVAL, NEXT VALUE FOR, s.nextval, LAST_INSERT_ID(expr),
	// GET_LOCK, or one that a session may use as a delay or lock and that a
	// read-only transaction does not stop: SLEEP, BENCHMARK.
	FlagSideEffect
	// FlagLockFunc: calls GET_LOCK: the session may now hold a named lock.
	FlagLockFunc
	// FlagReleaseLockFunc: calls RELEASE_LOCK or RELEASE_ALL_LOCKS.
	FlagReleaseLockFunc
	// FlagReleaseAllLocks: calls RELEASE_ALL_LOCKS: afterwards the session
	// holds no named lock.
	FlagReleaseAllLocks
	// FlagTempTableCreate: CREATE TEMPORARY TABLE (or SEQUENCE). It does not
	// commit.
	FlagTempTableCreate
	// FlagTempTableDrop: DROP TEMPORARY TABLE. It does not commit.
	FlagTempTableDrop
	// FlagUserVarWrite: assigns a user variable (SET @v = ..., SELECT @v := ...,
	// SELECT ... INTO @v).
	FlagUserVarWrite
	// FlagUserVarRead: reads a user variable (@v).
	FlagUserVarRead
	// FlagNeedsPrevious: the result depends on the statement that ran just
	// before on the same connection: FOUND_ROWS(), ROW_COUNT(), SHOW
	// WARNINGS/ERRORS, SHOW COUNT(*) WARNINGS, @@warning_count, @@error_count,
	// GET DIAGNOSTICS, SHOW PROFILE(S).
	FlagNeedsPrevious
	// FlagCalcFoundRows: SELECT SQL_CALC_FOUND_ROWS: FOUND_ROWS() asks
	// about it next, on the same connection.
	FlagCalcFoundRows
	// FlagLastInsertID: reads a value the session generated with an earlier
	// write: LAST_INSERT_ID(), @@identity, @@last_insert_id, LASTVAL(),
	// PREVIOUS VALUE FOR. It belongs on the connection that ran the writes.
	FlagLastInsertID
	// FlagServerLocal: the answer describes the server that runs it, so a
	// replica would answer differently from the primary: CONNECTION_ID(),
	// @@server_id, @@read_only, @@gtid_*, SHOW PROCESSLIST, SHOW STATUS, SHOW
	// MASTER/SLAVE STATUS, IS_USED_LOCK(), MASTER_GTID_WAIT(), ...
	FlagServerLocal
	// FlagSessionVar: sets a session system variable other than autocommit
	// (SET NAMES, SET CHARACTER SET, SET [SESSION] var, SET ROLE, SET SESSION
	// TRANSACTION ...).
	FlagSessionVar
	// FlagAutocommitOff: sets autocommit to 0 in the session.
	FlagAutocommitOff
	// FlagAutocommitOn: sets autocommit to 1 in the session; this commits an
	// open transaction.
	FlagAutocommitOn
	// FlagSetTransaction: SET [SESSION] TRANSACTION: without SESSION it
	// applies to the next transaction only.
	FlagSetTransaction
	// FlagTxReadOnly: START TRANSACTION READ ONLY or SET TRANSACTION READ ONLY.
	FlagTxReadOnly
	// FlagGlobalSet: SET GLOBAL (or PERSIST): a change to the server, not
	// the session. The statement is a KindWrite.
	FlagGlobalSet
	// FlagChain: COMMIT/ROLLBACK AND CHAIN.
	FlagChain
	// FlagRelease: COMMIT/ROLLBACK RELEASE.
	FlagRelease
	// FlagXA: an XA statement.
	FlagXA
	// FlagKillQuery: KILL QUERY, which ends the statement a connection runs
	// rather than the connection (KindKill).
	FlagKillQuery
	// FlagFastPath: decided by the scanner alone, without the parser.
	FlagFastPath

	numFlags = iota
)

// ReadCaveats are the flags that tie a KindRead to one connection or server:
// a read carrying any of them should not simply go to any replica.
const ReadCaveats = FlagUserVarWrite | FlagUserVarRead | FlagNeedsPrevious | FlagLastInsertID | FlagServerLocal

var flagNames = [numFlags]string{
	"unsure", "multi", "implicit-commit", "locking", "into", "side-effect", "lock-func",
	"release-lock-func", "release-all-locks", "temp-create", "temp-drop", "uservar-write", "uservar-read",
	"needs-previous", "calc-found-rows", "last-insert-id", "server-local", "session-var", "autocommit-off",
	"autocommit-on", "set-transaction", "read-only", "global-set", "chain", "release", "xa",
	"kill-query", "fast",
}

func (f Flags) String() string {
	if f == 0 {
		return ""
	}
	var b strings.Builder
	for i := 0; i < numFlags; i++ {
		if f&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(flagNames[i])
	}
	if rest := f &^ (1<<numFlags - 1); rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}

// Route is a routing hint written by the application in a leading comment:
// /* switchyard:route=primary */ or /* switchyard:route=replica */.
type Route uint8

const (
	RouteDefault Route = iota // no hint
	RoutePrimary
	RouteReplica
)

func (r Route) String() string {
	switch r {
	case RouteDefault:
		return "default"
	case RoutePrimary:
		return "primary"
	case RouteReplica:
		return "replica"
	}
	return "route(" + strconv.Itoa(int(r)) + ")"
}

// Class is the classification of one query. It is a small comparable value.
type Class struct {
	Kind Kind
	// Hint is the route forced by a switchyard comment before the first
	// statement, if any.
	Hint Route
	// InnerKind and InnerFlags classify the statement text of a KindPrepare.
	InnerKind  Kind
	Flags      Flags
	InnerFlags Flags
	// Name is the prepared statement name (KindPrepare, KindExecute,
	// KindDeallocate), savepoint name (KindSavepoint, KindReleaseSavepoint,
	// KindRollbackToSavepoint), database (KindUse), without quotes, or
	// connection id (KindKill). It shares memory with the classified text
	// unless unquoting changed it.
	Name string
}

// String returns a stable one-line description such as
// `read uservar-read,fast` or `prepare fast name="s1" inner=read{}`.
func (c Class) String() string {
	var b strings.Builder
	b.WriteString(c.Kind.String())
	if c.Flags != 0 {
		b.WriteByte(' ')
		b.WriteString(c.Flags.String())
	}
	if c.Name != "" {
		b.WriteString(" name=")
		b.WriteString(strconv.Quote(c.Name))
	}
	if c.Kind == KindPrepare {
		b.WriteString(" inner=")
		b.WriteString(c.InnerKind.String())
		b.WriteByte('{')
		b.WriteString(c.InnerFlags.String())
		b.WriteByte('}')
	}
	if c.Hint != RouteDefault {
		b.WriteString(" hint=")
		b.WriteString(c.Hint.String())
	}
	return b.String()
}

// Classify classifies sql, one COM_QUERY or COM_STMT_PREPARE text, as the
// server would read it with the default sql_mode. It is deterministic, safe
// for concurrent use, never panics, and does not allocate when it decides on
// the fast path (see FlagFastPath).
func Classify(sql string) Class { return ClassifyMode(sql, 0) }

// ClassifyMode is Classify for a session in the given Mode: the parts of its
// sql_mode and client charset that change how the server reads a statement.
func ClassifyMode(sql string, mode Mode) Class {
	return classify(sql, mode, 0)
}

// maxDepth bounds the nesting of statements inside statements (EXPLAIN,
// PREPARE, EXECUTE IMMEDIATE, SET STATEMENT ... FOR).
const maxDepth = 4

var unsure = Class{Kind: KindWrite, Flags: FlagUnsure}

// classify is ClassifyMode for a text nested depth statements deep. It reads
// every versioned comment that some supported server runs and another skips
// both ways (see readings.go), and applies ModeUnsafe last.
func classify(sql string, mode Mode, depth int) Class {
	c, n := classifyReading(sql, mode, depth)
	if n > 0 {
		c = classifyAmbiguous(sql, mode, depth, c, ambiguousIn(sql, mode))
	}
	if mode&ModeUnsafe != 0 {
		c = unsafeClass(c)
	}
	return c
}

// classifyReading classifies sql reading every ambiguous versioned comment
// as code, and counts them.
func classifyReading(sql string, mode Mode, depth int) (Class, int) {
	if depth > maxDepth {
		return unsure, 0
	}
	var lx lexer
	lx.init(sql, mode)
	var (
		out   Class
		n     int
		hint  Route
		first = true
	)
	for {
		if lx.peek().kind == tokEOF {
			break
		}
		if first {
			hint = lx.hint
			first = false
		}
		if lx.peek().is(";") {
			lx.next()
			continue
		}
		c := statement(&lx, depth)
		n++
		if n == 1 {
			out = c
			continue
		}
		kind := KindWrite
		if out.Kind == KindKill || c.Kind == KindKill {
			kind = KindKill // a KILL among other statements: not served
		}
		out = Class{Kind: kind, Flags: (out.Flags | c.Flags | FlagMultiStatement) &^ FlagKillQuery}
	}
	if first {
		hint = lx.hint
	}
	if n == 0 {
		out = Class{Kind: KindEmpty}
	}
	if lx.broken {
		// An unterminated quote or comment: the server rejects it, and where
		// it ends depends on details this scanner cannot see. A KILL
		// before it stays the proxy's, not served.
		if out.Kind == KindKill {
			out = Class{Kind: KindKill, Flags: out.Flags &^ FlagKillQuery}
		} else {
			out = Class{Kind: KindWrite, Flags: out.Flags | FlagUnsure}
		}
	}
	out.Flags &^= FlagFastPath
	if !lx.usedParser {
		out.Flags |= FlagFastPath
	}
	out.Hint = hint
	return out, lx.ambN
}

// statement classifies the statement starting at the next token and consumes
// it, up to and including the ';' that ends it.
func statement(lx *lexer, depth int) Class {
	start := lx.peek().pos
	saved := *lx
	c, ok := fastStatement(lx, depth)
	if ok {
		return c
	}
	// Find where the statement ends, then hand its text to the parser.
	*lx = saved
	end := skipStatement(lx)
	lx.usedParser = true
	return slowStatement(lx.s[start:end], lx.mode, depth)
}
