package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// Prepared statements (binary protocol). The client sees statement ids that
// belong to its session. A statement is prepared on the primary when the
// client prepares it (so that errors and metadata come from the server that
// takes writes), and lazily on any other connection the first time it
// executes there.
//
// Connections keep the statements prepared on them when a multiplexed
// session hands them back (up to maxCachedStmts each): the next session that
// executes the same text there, in the same database and with the same
// parsing variables, uses the server's statement without preparing it again.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html

// stmt is a prepared statement as the session knows it.
type stmt struct {
	sql      string
	db       string // the session's database when the client prepared it
	class    router.Class
	params   uint16
	columns  uint16
	on       map[*backendConn]*serverStmt // the statement on each connection
	types    []byte                       // parameter types last sent by the client
	longData bool                         // COM_STMT_SEND_LONG_DATA was used: stay on the primary
	// pendingLong: long data was sent and not yet consumed by an execute; it
	// lives on the primary connection, which the session must keep.
	pendingLong bool
	last        *backendConn // ran the last execute (COM_STMT_FETCH goes there)
	digest      *digestText  // made at the first execute with digests on
}

// serverStmt is a statement prepared on one backend connection.
type serverStmt struct {
	id     uint32
	types  []byte // parameter types the server last received for it
	shared bool   // in the connection's cache: outlives the session
}

// stmtKey names a statement in a connection's cache: the same text prepared
// in the same database under the same prepareVars.
type stmtKey struct{ db, vars, sql string }

// maxCachedStmts bounds the statements a connection keeps for other
// sessions (the server's max_prepared_stmt_count is global).
const maxCachedStmts = 64

// stmtOn returns st's statement on bc: the session's own, one the
// connection kept, or one prepared there now.
func (s *session) stmtOn(bc *backendConn, st *stmt) (*serverStmt, error) {
	if ss := st.on[bc]; ss != nil {
		return ss, nil
	}
	if ss := bc.cached[s.stmtKey(st)]; ss != nil {
		st.on[bc] = ss
		return ss, nil
	}
	return s.prepareOn(bc, st)
}

// stmtKey names st in connection caches: its table names were resolved in
// the database it was prepared in, whatever the session uses now.
func (s *session) stmtKey(st *stmt) stmtKey {
	return stmtKey{db: st.db, vars: s.varsKey(), sql: st.sql}
}

// prepareVars are the session variables that change what the server makes
// of a statement's text when it prepares it. Others (time_zone, say) matter
// when it executes, and follow the session to the connection anyway.
var prepareVars = [...]string{"character_set_client", "character_set_connection", "collation_connection", "sql_mode"}

// varsKey renders the session's prepareVars for stmtKey, again only after
// the session's variables changed. (Variables are only ever set with a bump
// of varsGen, so a session with some has varsGen > 0 and the zero varsAt
// never passes for current.)
func (s *session) varsKey() string {
	if len(s.vars) == 0 {
		return ""
	}
	if s.varsAt != s.varsGen {
		var b strings.Builder
		for _, name := range prepareVars {
			if v, ok := s.vars[name]; ok {
				b.WriteString(name)
				b.WriteByte('=')
				b.WriteString(v)
				b.WriteByte(0)
			}
		}
		s.varsStr, s.varsAt = b.String(), s.varsGen
	}
	return s.varsStr
}

// keep puts ss, just prepared on bc, in bc's cache when there is room and
// the cache has no statement for the same text yet.
func (s *session) keep(bc *backendConn, st *stmt, ss *serverStmt) {
	if len(bc.cached) >= maxCachedStmts {
		return
	}
	k := s.stmtKey(st)
	if _, ok := bc.cached[k]; ok {
		return
	}
	if bc.cached == nil {
		bc.cached = make(map[stmtKey]*serverStmt)
	}
	bc.cached[k] = ss
	ss.shared = true
}

// prepare serves COM_STMT_PREPARE on the primary.
func (s *session) prepare(p []byte) error {
	if err := s.followPrimary(); err != nil {
		return err
	}
	sql := string(p[1:])
	c := router.ClassifyMode(sql, s.lexMode())
	c.Name = ""
	bc, _, err := s.connFor(router.Decision{Target: router.TargetPrimary})
	if err != nil {
		s.sendError(asSQLError(err))
		return nil
	}
	err = s.forwardTo(bc, p, func(bc *backendConn, _ byte) error { return s.relayPrepare(bc, sql, c) })
	if err == nil {
		s.observe(bc, cmdPrepare, c.Kind, time.Now())
	}
	return err
}

// relayPrepare relays a COM_STMT_PREPARE response, replacing the server's
// statement id with one the session hands out.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_prepare.html
func (s *session) relayPrepare(bc *backendConn, sql string, c router.Class) error {
	f, head, err := peekPacket(bc)
	if err != nil {
		return err
	}
	if len(head) > 0 && head[0] == 0xff {
		// The server refused it (a syntax error, max_prepared_stmt_count):
		// relay the ERR packet whose header was just read.
		s.relayedError(bc, head)
		if err := s.toClient(bc, f); err != nil {
			return err
		}
		return s.flushClient()
	}
	if len(head) == 0 || head[0] != 0x00 || f.n < 12 || f.n > headSize {
		return fmt.Errorf("%w: %d-byte packet answering COM_STMT_PREPARE", errBackendProtocol, f.n)
	}
	ok := append(s.out[:0], head...)
	_ = bc.skipPayload(f.n)
	st := &stmt{
		sql:     sql,
		db:      s.db,
		class:   c,
		columns: binary.LittleEndian.Uint16(ok[5:]),
		params:  binary.LittleEndian.Uint16(ok[7:]),
	}
	ss := &serverStmt{id: binary.LittleEndian.Uint32(ok[1:])}
	st.on = map[*backendConn]*serverStmt{bc: ss}
	s.keep(bc, st, ss)
	s.lastID++
	id := s.lastID
	if s.stmts == nil {
		s.stmts = make(map[uint32]*stmt)
	}
	s.stmts[id] = st
	binary.LittleEndian.PutUint32(ok[1:], id)
	s.client.seq = f.seq
	if err := s.client.writePacket(ok); err != nil {
		return clientGone{err}
	}
	if err := s.relayPrepareMeta(bc, st, true); err != nil {
		return err
	}
	return s.flushClient()
}

// relayPrepareMeta relays (toClient) or skips the parameter and column
// definitions that follow a prepare OK.
func (s *session) relayPrepareMeta(bc *backendConn, st *stmt, toClient bool) error {
	eof := bc.caps&mysql.CLIENT_DEPRECATE_EOF == 0
	for _, n := range []uint16{st.params, st.columns} {
		if n == 0 {
			continue
		}
		count := int(n)
		if eof {
			count++
		}
		for range count {
			f, err := bc.readFrameHeader()
			if err != nil {
				return err
			}
			if toClient {
				err = s.toClient(bc, f)
			} else {
				err = bc.skipPayload(f.n)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareOn prepares st on bc, quietly, and returns its server statement.
func (s *session) prepareOn(bc *backendConn, st *stmt) (ss *serverStmt, err error) {
	if st.db != "" && bc.db != st.db && bc.db != "" {
		// The session changed databases since the client prepared st: its
		// table names mean what they meant then.
		back := bc.db
		if err := bc.useDB(st.db); err != nil {
			return nil, err
		}
		defer func() {
			if berr := bc.useDB(back); berr != nil && err == nil {
				ss, err = nil, berr
			}
		}()
	}
	bc.seq = 0
	if err := bc.writePacket(append([]byte{mysql.COM_STMT_PREPARE}, st.sql...)); err != nil {
		return nil, err
	}
	if err := bc.flush(); err != nil {
		return nil, err
	}
	p, err := bc.readPacket(1 << 20)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 || p[0] != 0x00 || len(p) < 12 {
		if len(p) > 0 && p[0] == 0xff {
			return nil, parseErr(p)
		}
		return nil, errBackendProtocol
	}
	ss = &serverStmt{id: binary.LittleEndian.Uint32(p[1:])}
	if err := s.relayPrepareMeta(bc, st, false); err != nil {
		return nil, err
	}
	st.on[bc] = ss
	s.keep(bc, st, ss)
	return ss, nil
}

// execute serves COM_STMT_EXECUTE, routed by what the statement does.
func (s *session) execute(p []byte) error {
	st, _ := s.lookupStmt(p)
	if st == nil {
		return nil
	}
	if st.digest == nil {
		st.digest = s.srv.digests.digest(st.sql, s.lexMode(), &s.dg.buf)
	}
	s.dg.begin(st.digest)
	d, ok := s.decide(st.class)
	if !ok {
		return nil
	}
	if st.longData {
		d = router.Decision{Target: router.TargetPrimary, Reason: "long_data"}
	}
	return s.run(st.class, d, func(bc *backendConn, target router.Target) error {
		return s.executeOn(bc, target, st, p)
	})
}

// executeOn runs the execute packet p of st on bc, preparing it there first
// when needed.
func (s *session) executeOn(bc *backendConn, target router.Target, st *stmt, p []byte) error {
	ss, err := s.stmtOn(bc, st)
	if err != nil {
		if bc == s.primary {
			return s.backendFailed(bc, err)
		}
		s.log.Debug("prepare on replica failed, using the primary", "err", err)
		s.dropConnIfBroken(bc, err)
		if bc, target, err = s.primaryConn(); err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
		if ss, err = s.stmtOn(bc, st); err != nil {
			return s.backendFailed(bc, err)
		}
	}
	p = s.bindTypes(p, st, ss)
	binary.LittleEndian.PutUint32(p[1:], ss.id)
	s.failed = false
	if len(p) > 5 && p[5]&0x07 != 0 { // CURSOR_TYPE_*: the cursor lives on bc
		s.cursor = true
	}
	s.beforeWrite(bc)
	if err = s.forwardTo(bc, p, s.relayResults); err != nil {
		return err
	}
	s.afterWrite(st.class, bc)
	st.last = bc
	st.pendingLong = false
	now := time.Now()
	s.note(st.class, target, bc, now) // a write's window starts when it finished
	s.observe(bc, cmdExecute, st.class.Kind, now)
	return nil
}

// bindTypes makes sure the server statement knows the parameter types. The
// client sends them once (new-params-bound flag 1) and then leaves them out;
// a statement prepared later on another connection has never seen them, and
// one kept by a connection may have seen another session's, so Switchyard
// puts them back in.
func (s *session) bindTypes(p []byte, st *stmt, ss *serverStmt) []byte {
	if st.params == 0 {
		return p
	}
	flagAt := 10 + (int(st.params)+7)/8
	if len(p) <= flagAt {
		return p
	}
	switch {
	case p[flagAt] == 1 && len(p) >= flagAt+1+2*int(st.params):
		st.types = append(st.types[:0], p[flagAt+1:flagAt+1+2*int(st.params)]...)
		ss.types = append(ss.types[:0], st.types...)
	case p[flagAt] == 0 && st.types != nil && !bytes.Equal(ss.types, st.types):
		// Prepared here later, or last bound by another session with
		// other types.
		out := make([]byte, 0, len(p)+len(st.types))
		out = append(out, p[:flagAt]...)
		out = append(out, 1)
		out = append(out, st.types...)
		out = append(out, p[flagAt+1:]...)
		ss.types = append(ss.types[:0], st.types...)
		return out
	}
	return p
}

// lookupStmt finds the statement named in a COM_STMT_* packet, answering an
// error when there is none.
func (s *session) lookupStmt(p []byte) (*stmt, uint32) {
	if len(p) < 5 {
		s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: short statement command"))
		return nil, 0
	}
	id := binary.LittleEndian.Uint32(p[1:])
	st := s.stmts[id]
	if st == nil {
		s.sendError(newSQLError(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (%d) given to %s", id, commandName(p[0])))
	}
	return st, id
}

// stmtCommand serves COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_CLOSE and
// COM_STMT_SEND_LONG_DATA.
func (s *session) stmtCommand(p []byte) error {
	if (p[0] == mysql.COM_STMT_CLOSE || p[0] == mysql.COM_STMT_SEND_LONG_DATA) && (len(p) < 5 || s.stmts[binary.LittleEndian.Uint32(p[1:])] == nil) {
		return nil // no response to these, even for an unknown statement
	}
	st, id := s.lookupStmt(p)
	if st == nil {
		return nil
	}
	switch p[0] {
	case mysql.COM_STMT_FETCH:
		bc := st.last
		if bc == nil || st.on[bc] == nil {
			s.sendError(newSQLError(mysql.ER_STMT_HAS_NO_OPEN_CURSOR, "The statement (%d) has no open cursor.", id))
			return nil
		}
		binary.LittleEndian.PutUint32(p[1:], st.on[bc].id)
		return s.forwardTo(bc, p, s.relayFetch)
	case mysql.COM_STMT_SEND_LONG_DATA:
		st.longData, st.pendingLong = true, true
		s.longPending = true
		bc, _, err := s.connFor(router.Decision{Target: router.TargetPrimary})
		if err != nil {
			return nil // no response possible; the execute will report
		}
		ss, err := s.stmtOn(bc, st)
		if err != nil {
			return s.backendFailed(bc, err)
		}
		binary.LittleEndian.PutUint32(p[1:], ss.id)
		return s.forwardTo(bc, p, nil)
	case mysql.COM_STMT_CLOSE:
		delete(s.stmts, id)
		for bc, ss := range st.on {
			if ss.shared {
				continue // the connection keeps it for the next session
			}
			binary.LittleEndian.PutUint32(p[1:], ss.id)
			if err := s.forwardTo(bc, p, nil); err != nil {
				return err
			}
		}
		return nil
	default: // COM_STMT_RESET: on every connection, answered from the primary's
		st.longData, st.pendingLong = false, false
		for bc, ss := range st.on {
			if bc == s.primary {
				continue
			}
			binary.LittleEndian.PutUint32(p[1:], ss.id)
			if res, err := bc.roundTrip(p); err != nil || res[0] == 0xff {
				s.dropConn(bc)
			}
		}
		bc, _, err := s.primaryConn()
		if err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
		ss, err := s.stmtOn(bc, st)
		if err != nil {
			return s.backendFailed(bc, err)
		}
		binary.LittleEndian.PutUint32(p[1:], ss.id)
		return s.forwardTo(bc, p, s.relayOne)
	}
}
