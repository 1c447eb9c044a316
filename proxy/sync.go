package proxy

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// Session state follows the session from connection to connection: before
// a statement runs, its connection is brought to the session's database and
// session variables (sync), and to its LAST_INSERT_ID() when the statement
// reads it (syncInsertID). The session's variables also decide how its
// statements are tokenized (lexMode).

// sync brings bc to the session's state: its database and every session
// variable the client changed. The round trips it makes can be cut short
// (see hold).
func (s *session) sync(bc *backendConn) error {
	if bc.owner == s && bc.gen == s.varsGen && bc.db == s.db {
		return nil
	}
	defer s.hold(bc)()
	return s.syncHeld(bc)
}

// syncHeld is sync for a connection the session holds already. The
// transaction access mode is left alone on read-only connections:
// Switchyard keeps them read-only whatever the session sets.
func (s *session) syncHeld(bc *backendConn) error {
	if bc.owner == s && bc.gen == s.varsGen && bc.db == s.db {
		return nil
	}
	if bc.db != s.db {
		if s.db == "" {
			return errors.New("cannot leave the current database on this connection")
		}
		if err := bc.useDB(s.db); err != nil {
			return err
		}
	}
	if err := s.syncVars(bc); err != nil {
		name, ok := readOnlyVarIn(err)
		if !ok || !s.learnReadOnly(bc, name) {
			return err
		}
		// The server refused the whole SET, so nothing changed: try once
		// more without that variable.
		if err := s.syncVars(bc); err != nil {
			return err
		}
	}
	bc.owner, bc.gen = s, s.varsGen
	return nil
}

// syncVars sets the session's variables on bc, in one SET.
func (s *session) syncVars(bc *backendConn) error {
	var set strings.Builder
	add := func(name, value string) {
		if set.Len() == 0 {
			set.WriteString("SET SESSION ")
		} else {
			set.WriteString(", ")
		}
		set.WriteString(name)
		set.WriteByte('=')
		set.WriteString(value)
	}
	// The SET is read under the connection's sql_mode as it is now, before
	// the SET changes it.
	mode, ok := bc.vars["sql_mode"]
	if !ok {
		mode = bc.backend.sqlMode()
	}
	noBackslash := router.ModeForSQLMode(mode)&router.ModeNoBackslashEscapes != 0
	// Sorted, so that character_set_* come before collation_*: setting a
	// character set resets its collation.
	for _, name := range slices.Sorted(maps.Keys(s.vars)) {
		if bc.readOnly && isTxReadOnlyVar(name) {
			continue
		}
		if value := s.vars[name]; bc.vars[name] != value {
			add(name, sqlValue(name, value, noBackslash))
		}
	}
	// Variables another session changed on this connection go back to
	// their defaults.
	for _, name := range slices.Sorted(maps.Keys(bc.vars)) {
		if _, ok := s.vars[name]; !ok && !(bc.readOnly && isTxReadOnlyVar(name)) {
			add(name, "DEFAULT")
		}
	}
	if set.Len() == 0 {
		return nil
	}
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, set.String()...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	clear(bc.vars)
	if bc.vars == nil {
		bc.vars = make(map[string]string, len(s.vars))
	}
	for name, value := range s.vars {
		if !(bc.readOnly && isTxReadOnlyVar(name)) {
			bc.vars[name] = value
		}
	}
	return nil
}

// Read-only variables. A server reports some variables through session
// tracking that it refuses to set (error 1238): untracked lists those known,
// but a server version may report a new one. Without learning it, every
// session that saw it change would fail each statement on another
// connection from then on; with it, the first refusal costs one more round
// trip, and no session copies the variable again.

// codeReadOnlyVar is ER_INCORRECT_GLOBAL_LOCAL_VAR: "Variable 'x' is a read
// only variable" (the same code also says a variable is global-only or
// session-only: those are not reported by session tracking).
const codeReadOnlyVar = 1238

// readOnlyVarIn returns the variable that err, a server's refusal of a SET,
// names as read-only.
func readOnlyVarIn(err error) (string, bool) {
	var se *sqlError
	if !errors.As(err, &se) || se.code != codeReadOnlyVar {
		return "", false
	}
	_, rest, ok := strings.Cut(se.message, "'")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "'")
	if !ok || !strings.Contains(se.message, "read only") {
		return "", false
	}
	return name, true
}

// learnReadOnly stops copying the variable name, which bc's server refused
// as read-only: it is forgotten by the session and the connection, and
// ignored when servers report it from now on. It reports whether the
// session had it (else the refusal was not about its state, and retrying
// would not help).
func (s *session) learnReadOnly(bc *backendConn, name string) bool {
	if _, ok := s.vars[name]; !ok {
		if _, ok := bc.vars[name]; !ok {
			return false
		}
	}
	if !s.srv.readOnlyVars.has([]byte(name)) {
		s.log.Warn("the server refuses to set a session variable it reports changed; it is no longer copied between connections",
			"backend", bc.backend.Name, "variable", name)
	}
	s.srv.readOnlyVars.add(name)
	if _, ok := s.vars[name]; ok {
		delete(s.vars, name)
		s.varsGen++
	}
	delete(bc.vars, name)
	return true
}

// varSet is a set of variable names that many sessions read and few write:
// each change copies it, so reads take no lock.
type varSet struct {
	mu sync.Mutex // serializes add
	m  atomic.Pointer[map[string]bool]
}

// has reports whether name is in the set; it does not allocate.
func (v *varSet) has(name []byte) bool {
	m := v.m.Load()
	return m != nil && (*m)[string(name)]
}

func (v *varSet) add(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	next := map[string]bool{name: true}
	if m := v.m.Load(); m != nil {
		maps.Copy(next, *m)
	}
	v.m.Store(&next)
}

// syncInsertID gives bc, a primary connection, the session's
// LAST_INSERT_ID() before a statement that reads it. Only such statements
// pay for it: a connection that changes hands keeps the last owner's value
// until one comes.
func (s *session) syncInsertID(bc *backendConn) error {
	if bc.insertID == s.insertID || bc.backend.Addr != s.srv.primary().Addr {
		return nil
	}
	defer s.hold(bc)()
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, "SET SESSION last_insert_id="+strconv.FormatUint(s.insertID, 10)...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	bc.insertID = s.insertID
	return nil
}

// useDB makes db the current database of bc (COM_INIT_DB).
func (bc *backendConn) useDB(db string) error {
	res, err := bc.roundTrip(append([]byte{mysql.COM_INIT_DB}, db...))
	if err != nil {
		return err
	}
	if res[0] == 0xff {
		return parseErr(res)
	}
	bc.db = db
	return nil
}

// sqlValue renders a tracked variable value as an SQL literal.
func sqlValue(name, v string, noBackslash bool) string {
	if v == "" && (name == "character_set_results" || strings.HasSuffix(name, "_path")) {
		return "NULL"
	}
	if isDecimal(v) {
		return v
	}
	if noBackslash {
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return "'" + quoteEscaper.Replace(v) + "'"
}

// isDecimal reports whether v is a number as servers report variables and
// as SQL reads it back unquoted: an optional minus, digits, and an optional
// fraction. Anything else (exponents, hexadecimal, '+', Go's digit
// separators, inf) is quoted.
func isDecimal(v string) bool {
	v = strings.TrimPrefix(v, "-")
	digits, dot := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// quoteEscaper escapes a value for a single-quoted SQL literal.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `'`, `''`)

// lexMode returns how the session's statements are tokenized: from the
// sql_mode and character_set_client the session set (learned through
// session tracking, whichever connection it ran on), else from the
// server's default sql_mode and the collation of the client's handshake. It
// never looks at the connection attached now: multiplexing may have handed
// it back, and it may hold another session's state until it is synced.
func (s *session) lexMode() router.Mode {
	if s.modeOK && s.modeAt == s.varsGen {
		return s.mode
	}
	sqlMode, ok := s.vars["sql_mode"]
	if !ok {
		sqlMode = s.defaultSQLMode
	}
	m := router.ModeForSQLMode(sqlMode)
	if cs, ok := s.vars["character_set_client"]; ok {
		m |= router.ModeForCharset(cs)
	} else {
		m |= router.ModeForCollationID(s.collation)
	}
	// A topology has one engine: the primary's. On MySQL, MariaDB's own
	// built-in functions are stored function calls.
	if s.primary != nil && !isMariaDB(s.primary.version) {
		m |= router.ModeMySQL
	}
	s.mode, s.modeAt, s.modeOK = m, s.varsGen, true
	return m
}

// isTxReadOnlyVar reports the variables that hold the session's transaction
// access mode. Switchyard owns them on replica connections: they are never
// copied there from the session, and a change reported there means the
// connection is no longer safe for reads.
func isTxReadOnlyVar(name string) bool {
	return name == "tx_read_only" || name == "transaction_read_only"
}
