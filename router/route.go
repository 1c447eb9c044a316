package router

import "time"

// Target is where a statement runs.
type Target uint8

const (
	// TargetPrimary: the session's primary connection.
	TargetPrimary Target = iota
	// TargetReplica: a replica chosen by weighted round robin (the
	// session's read-only transaction replica while one is open).
	TargetReplica
	// TargetLast: the connection that ran the session's previous statement
	// (FOUND_ROWS(), SHOW WARNINGS and the like answer about it).
	TargetLast
	// TargetRefuse: nowhere. The session is in a read-only transaction and
	// the statement writes: the proxy answers ER_CANT_EXECUTE_IN_READ_ONLY_
	// TRANSACTION (1792), as the server would.
	TargetRefuse
)

func (t Target) String() string {
	switch t {
	case TargetPrimary:
		return "primary"
	case TargetReplica:
		return "replica"
	case TargetLast:
		return "last"
	case TargetRefuse:
		return "refuse"
	}
	return "target?"
}

// Pin is why a session's statements all go to the primary for now. Pins are
// kept as a bitset; the metric label is the String of one bit.
type Pin uint8

const (
	PinTransaction Pin = 1 << iota // a transaction is open on the primary
	PinTempTable                   // the session created temporary tables
	PinLockTables                  // LOCK TABLES, FLUSH ... WITH READ LOCK
	PinLockFunc                    // GET_LOCK named locks
	PinUnsyncable                  // session state that cannot be copied to replicas
	PinTextPrepare                 // SQL-level PREPARE statements live on the primary
)

var pinNames = []string{"transaction", "temp_table", "lock_tables", "named_lock", "unsyncable_state", "text_prepare"}

func (p Pin) String() string {
	for i, n := range pinNames {
		if p == 1<<i {
			return n
		}
	}
	return "mixed"
}

// Pins lists the single pins set in p.
func (p Pin) Pins() []Pin {
	var out []Pin
	for i := range pinNames {
		if p&(1<<i) != 0 {
			out = append(out, 1<<i)
		}
	}
	return out
}

// Consistency is the read-your-writes level of a session.
type Consistency uint8

const (
	// ConsistencySession: after a write, the session reads from the primary
	// for a window (see Policy.SessionWindow), so it sees its own writes.
	ConsistencySession Consistency = iota
	// ConsistencyEventual: reads go to replicas regardless of recent writes.
	ConsistencyEventual
	// ConsistencyCausal: after a write, a replica serves the session's reads
	// only once it has applied the write (decided by the proxy, which knows
	// GTID positions); until then reads go to the primary.
	ConsistencyCausal
	// ConsistencyGlobal: a replica serves a read only once it has applied
	// everything the primary had committed when the read began.
	ConsistencyGlobal
)

// Policy holds the routing settings of a session.
type Policy struct {
	Consistency Consistency
	// SessionWindow is how long reads stay on the primary after a write in
	// ConsistencySession.
	SessionWindow time.Duration
	// CausalWait is how long a causal read may wait on a replica for the
	// session's last write to arrive before it goes to the primary.
	CausalWait time.Duration
	// LazyImplicit lets an autocommit=0 session read from replicas until its
	// first write opens a transaction on the primary. Off: everything goes to
	// the primary while autocommit is 0.
	LazyImplicit bool
}

// State is what routing remembers about one session. The proxy's session
// goroutine owns it; Decide reads it and Note updates it.
type State struct {
	Pins Pin
	// Autocommit mirrors the session's autocommit (true until SET autocommit=0).
	Autocommit bool
	// ReadOnlyTx is set while a START TRANSACTION READ ONLY runs on a replica.
	ReadOnlyTx bool
	// UserVars is set once the session assigned user variables; reads that
	// use them then run on the primary, where they live.
	UserVars bool
	// LastWrite is when the session's last write finished (zero: never).
	LastWrite time.Time
	// FoundRows is set while the last statement was a SELECT
	// SQL_CALC_FOUND_ROWS: the FOUND_ROWS() that usually follows must find
	// the connection it ran on, so the session keeps its connections until
	// its next statement.
	FoundRows bool
	// namedLocks counts GET_LOCK calls not yet matched by RELEASE_LOCK.
	namedLocks int
}

// NewState returns the state of a fresh session.
func NewState() State { return State{Autocommit: true} }

// Decision is where one statement goes and why.
type Decision struct {
	Target Target
	// Reason names the rule that chose the target, for metrics and logs
	// (a fixed set of strings).
	Reason string
}

// Decide chooses where the statement classified as c runs, at time now.
func Decide(c Class, state *State, p Policy, now time.Time) Decision {
	if state.ReadOnlyTx {
		return decideReadOnlyTx(c, state)
	}
	if state.Pins != 0 {
		return Decision{TargetPrimary, "pinned"}
	}
	if c.Hint == RoutePrimary {
		return Decision{TargetPrimary, "hint"}
	}
	switch c.Kind {
	case KindBegin:
		if c.Flags&FlagTxReadOnly != 0 && c.Flags&FlagXA == 0 {
			return Decision{TargetReplica, "read_only_transaction"}
		}
		return Decision{TargetPrimary, "transaction"}
	case KindRead:
		return decideRead(c, state, p, now)
	case KindEmpty:
		return Decision{TargetLast, "empty"}
	}
	if c.Flags&FlagUnsure != 0 {
		return Decision{TargetPrimary, "unsure"}
	}
	return Decision{TargetPrimary, "write"}
}

// EndsReadOnlyTx reports whether c, run in a session whose read-only
// transaction is open on a replica, ends that transaction first, as the
// server would: statements that commit implicitly (BEGIN, DDL, LOCK TABLES,
// SET autocommit=1, ...). The proxy then commits the replica transaction,
// clears State.ReadOnlyTx and decides c again like any statement.
func EndsReadOnlyTx(c Class) bool {
	switch c.Kind {
	case KindBegin, KindLockTables, KindUnlockTables:
		return true
	case KindCommit, KindRollback:
		return false
	}
	return c.Flags&(FlagImplicitCommit|FlagAutocommitOn) != 0
}

// decideReadOnlyTx routes a statement inside a read-only transaction that
// runs on a replica (State.ReadOnlyTx). Only what the transaction may do
// runs there: reads, the statements that end it or mark savepoints, and
// statements the classifier cannot decide (the replica connection is
// read-only, so the server refuses them if they write). Writes get the
// server's own answer for a read-only transaction without reaching any
// server. What a read-only transaction does not hold back (SET GLOBAL,
// named locks, session variables) is not transactional: it runs on the
// primary, as outside the transaction. Statements for which EndsReadOnlyTx
// is true must be handled by the caller before Decide.
func decideReadOnlyTx(c Class, state *State) Decision {
	switch c.Kind {
	case KindRead:
		if c.Flags&(FlagLastInsertID|FlagUserVarWrite) != 0 || (c.Flags&FlagUserVarRead != 0 && state.UserVars) {
			// Session state that lives on the primary connection.
			return Decision{TargetPrimary, "session_state"}
		}
		if c.Flags&FlagNeedsPrevious != 0 {
			return Decision{TargetLast, "needs_previous"}
		}
		return Decision{TargetReplica, "read_only_transaction"}
	case KindEmpty:
		return Decision{TargetLast, "empty"}
	case KindCommit, KindRollback, KindSavepoint, KindReleaseSavepoint, KindRollbackToSavepoint,
		KindPrepare, KindExecute, KindDeallocate:
		return Decision{TargetReplica, "read_only_transaction"}
	case KindSet, KindUse:
		return Decision{TargetPrimary, "write"}
	case KindWrite:
		const nonTransactional = FlagGlobalSet | FlagLockFunc | FlagReleaseLockFunc | FlagReleaseAllLocks
		switch {
		case c.Flags&FlagUnsure != 0 && c.Flags&FlagMultiStatement == 0:
			return Decision{TargetReplica, "read_only_transaction"}
		case c.Flags&nonTransactional != 0 && c.Flags&(FlagLocking|FlagInto|FlagMultiStatement) == 0:
			return Decision{TargetPrimary, "write"}
		}
	}
	return Decision{TargetRefuse, "read_only_transaction_write"}
}

func decideRead(c Class, state *State, p Policy, now time.Time) Decision {
	switch {
	case c.Flags&FlagNeedsPrevious != 0:
		return Decision{TargetLast, "needs_previous"}
	case c.Flags&(FlagLastInsertID|FlagUserVarWrite) != 0:
		return Decision{TargetPrimary, "session_state"}
	case c.Flags&FlagUserVarRead != 0 && state.UserVars:
		return Decision{TargetPrimary, "user_variables"}
	case !state.Autocommit && !p.LazyImplicit:
		return Decision{TargetPrimary, "autocommit_off"}
	case c.Hint == RouteReplica:
		return Decision{TargetReplica, "hint"}
	case p.Consistency == ConsistencyGlobal:
		return Decision{TargetReplica, "global"}
	case p.Consistency == ConsistencyCausal && !state.LastWrite.IsZero():
		// The proxy sends it to a replica that has applied the session's
		// last write (by GTID), or else to the primary.
		return Decision{TargetReplica, "causal"}
	case p.Consistency == ConsistencySession && !state.LastWrite.IsZero() && now.Sub(state.LastWrite) < p.SessionWindow:
		return Decision{TargetPrimary, "read_your_writes"}
	}
	return Decision{TargetReplica, "read"}
}

// Note records what a statement did, once it ran on target and succeeded (ok)
// or failed. inTx is the primary's SERVER_STATUS_IN_TRANS after it, and
// autocommit its SERVER_STATUS_AUTOCOMMIT.
func Note(c Class, target Target, ok bool, state *State, inTx, autocommit bool, now time.Time) {
	state.Autocommit = autocommit
	state.FoundRows = ok && c.Flags&FlagCalcFoundRows != 0
	if inTx {
		state.Pins |= PinTransaction
	} else {
		state.Pins &^= PinTransaction
	}
	if state.ReadOnlyTx {
		if c.Kind == KindCommit || c.Kind == KindRollback || EndsReadOnlyTx(c) {
			state.ReadOnlyTx = false
		}
		if target != TargetPrimary {
			return
		}
		// Non-transactional statements (named locks, SET GLOBAL) ran on
		// the primary beside the transaction: their effects count.
	}
	if !ok {
		return
	}
	if c.Kind == KindBegin && target == TargetReplica {
		state.ReadOnlyTx = true
	}
	f := c.Flags
	if c.Kind == KindPrepare {
		state.Pins |= PinTextPrepare
	}
	if f&FlagTempTableCreate != 0 {
		state.Pins |= PinTempTable
	}
	if c.Kind == KindLockTables {
		state.Pins |= PinLockTables
	}
	if c.Kind == KindUnlockTables {
		state.Pins &^= PinLockTables
	}
	if f&FlagLockFunc != 0 {
		state.namedLocks++
	}
	if f&FlagReleaseLockFunc != 0 && state.namedLocks > 0 {
		state.namedLocks--
	}
	if f&FlagReleaseAllLocks != 0 {
		state.namedLocks = 0
	}
	if state.namedLocks > 0 {
		state.Pins |= PinLockFunc
	} else {
		state.Pins &^= PinLockFunc
	}
	if f&FlagUserVarWrite != 0 {
		state.UserVars = true
	}
	if target == TargetPrimary && (c.Kind == KindWrite || c.Kind == KindCommit) {
		state.LastWrite = now
	}
}

// Reset forgets everything a session did: COM_RESET_CONNECTION and
// COM_CHANGE_USER start over.
func (state *State) Reset() { *state = NewState() }
