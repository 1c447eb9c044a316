package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The command phase: one client command at a time, each relayed to the
// session's backend connection or answered by Switchyard.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html

const (
	codeInactivity = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
	codeSecureOnly = 3159 // ER_SECURE_TRANSPORT_REQUIRED
)

// command reads and serves one command. A non-nil error ends the session.
func (s *session) command() error {
	if s.srv.isDraining() && !s.inTransaction() {
		s.client.seq = 0
		s.sendError(newSQLError(mysql.ER_SERVER_SHUTDOWN, "Server shutdown in progress: switchyard is draining"))
		return errQuit
	}
	s.client.release()
	s.client.seq = 0
	nc := s.client.nc
	if t := s.srv.opts.IdleTimeout; t > 0 {
		_ = nc.SetReadDeadline(time.Now().Add(t))
	} else {
		_ = nc.SetReadDeadline(time.Time{})
	}
	if s.srv.isDraining() && !s.inTransaction() {
		return s.command() // Shutdown raced with the deadline reset
	}
	p, err := s.client.readPacket(s.srv.opts.MaxPacketSize)
	s.busy.Store(true)
	defer s.busy.Store(false)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && s.srv.isDraining():
			s.client.seq = 0
			s.sendError(newSQLError(mysql.ER_SERVER_SHUTDOWN, "Server shutdown in progress: switchyard is draining"))
			return errQuit
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.client.seq = 0
			s.sendError(newSQLError(codeInactivity, "The client was disconnected by switchyard because of inactivity (timeouts.idle %s)", s.srv.opts.IdleTimeout))
			return fmt.Errorf("idle timeout")
		case errors.Is(err, errPacketTooLarge):
			s.sendError(newSQLError(mysql.ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes (switchyard limits.max_packet_size is %d)", s.srv.opts.MaxPacketSize))
			return err
		case errors.Is(err, errSequence):
			s.sendError(newSQLError(mysql.ER_NET_PACKETS_OUT_OF_ORDER, "Got packets out of order: %v", err))
			return err
		}
		return err
	}
	_ = nc.SetReadDeadline(time.Time{})
	if len(p) == 0 {
		s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: empty command"))
		return nil
	}
	return s.dispatch(p)
}

// testHookDispatch, when set by tests, sees every command before dispatch.
var testHookDispatch func(p []byte)

// dispatch serves the command in p.
func (s *session) dispatch(p []byte) error {
	if testHookDispatch != nil {
		testHookDispatch(p)
	}
	switch p[0] {
	case mysql.COM_QUIT:
		return errQuit
	case mysql.COM_PING:
		return s.sendOK()
	case mysql.COM_QUERY:
		if id, query, ok, err := parseKill(p[1:]); ok {
			return s.kill(id, query, err)
		}
		return s.forward(p, s.relayResults)
	case mysql.COM_INIT_DB:
		return s.initDB(p)
	case mysql.COM_FIELD_LIST:
		return s.forward(p, func(bc *backendConn, _ byte) error { return s.relayFieldList(bc) })
	case mysql.COM_STATISTICS, mysql.COM_STMT_RESET:
		if p[0] == mysql.COM_STMT_RESET && !s.mapStmt(p) {
			return nil
		}
		return s.forward(p, func(bc *backendConn, _ byte) error { return s.relayOne(bc) })
	case mysql.COM_SET_OPTION:
		// The option outlives COM_RESET_CONNECTION: the connection must not
		// go back to the pool afterwards.
		return s.forward(p, func(bc *backendConn, _ byte) error { bc.broken = true; return s.relayOne(bc) })
	case mysql.COM_RESET_CONNECTION:
		err := s.forward(p, func(bc *backendConn, _ byte) error { return s.relayOne(bc) })
		if err == nil {
			clear(s.stmts)
		}
		return err
	case mysql.COM_CHANGE_USER:
		return s.changeUser(p)
	case mysql.COM_PROCESS_KILL:
		if len(p) < 5 {
			s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: short COM_PROCESS_KILL"))
			return nil
		}
		return s.kill(binary.LittleEndian.Uint32(p[1:]), false, nil)
	case mysql.COM_STMT_PREPARE:
		return s.forward(p, func(bc *backendConn, _ byte) error { return s.relayPrepare(bc) })
	case mysql.COM_STMT_EXECUTE:
		if !s.mapStmt(p) {
			return nil
		}
		return s.forward(p, s.relayResults)
	case mysql.COM_STMT_FETCH:
		if !s.mapStmt(p) {
			return nil
		}
		return s.forward(p, func(bc *backendConn, _ byte) error { return s.relayFetch(bc) })
	case mysql.COM_STMT_SEND_LONG_DATA, mysql.COM_STMT_CLOSE:
		// No response: an unknown statement is ignored, as the server does.
		if len(p) < 5 {
			return nil
		}
		id := binary.LittleEndian.Uint32(p[1:])
		st := s.stmts[id]
		if st == nil {
			return nil
		}
		binary.LittleEndian.PutUint32(p[1:], st.backendID)
		if p[0] == mysql.COM_STMT_CLOSE {
			delete(s.stmts, id)
		}
		return s.forward(p, nil)
	default:
		s.sendError(newSQLError(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command: switchyard does not support command 0x%02x", p[0]))
		return nil
	}
}

// mapStmt replaces the client's statement id in p with the backend's. For an
// unknown id it answers with an error and returns false.
func (s *session) mapStmt(p []byte) bool {
	if len(p) < 5 {
		s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: short statement command"))
		return false
	}
	id := binary.LittleEndian.Uint32(p[1:])
	st := s.stmts[id]
	if st == nil {
		s.sendError(newSQLError(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (%d) given to %s", id, commandName(p[0])))
		return false
	}
	binary.LittleEndian.PutUint32(p[1:], st.backendID)
	return true
}

func commandName(c byte) string {
	switch c {
	case mysql.COM_STMT_EXECUTE:
		return "mysqld_stmt_execute"
	case mysql.COM_STMT_FETCH:
		return "mysqld_stmt_fetch"
	case mysql.COM_STMT_RESET:
		return "mysqld_stmt_reset"
	}
	return fmt.Sprintf("command 0x%02x", c)
}

// forward sends the command p to the session's backend connection and relays
// the response with relay (nil: the command has no response). A backend that
// fails ends the session: its server-side state is gone, and the client
// must not carry on as if it were not.
func (s *session) forward(p []byte, relay func(*backendConn, byte) error) error {
	if s.backend == nil {
		if err := s.attachPrimary(); err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
	}
	bc := s.backend
	s.active.Store(bc)
	defer s.active.Store(nil)
	bc.seq = 0
	err := bc.writePacket(p)
	if err == nil {
		err = bc.flush()
	}
	if err == nil && relay != nil {
		err = relay(bc, p[0])
	}
	if err == nil {
		return nil
	}
	bc.broken = true
	var cg clientGone
	if errors.As(err, &cg) {
		return cg.err
	}
	if s.killed.Load() || s.aborted.Load() {
		return errQuit
	}
	var se *sqlError
	if !errors.As(err, &se) {
		se = newSQLError(codeLostBackend, "Lost connection to backend %s (%s) during query: %v; switchyard closes this session because its server state is gone",
			bc.backend.Name, bc.backend.Addr, err)
	}
	s.log.Warn("backend failed during command", "backend", bc.backend.Addr, "thread", bc.threadID, "err", err)
	s.sendError(se)
	return fmt.Errorf("backend %s: %w", bc.backend.Addr, err)
}

// initDB serves COM_INIT_DB and remembers the database on success.
func (s *session) initDB(p []byte) error {
	db := string(p[1:])
	err := s.forward(p, func(bc *backendConn, _ byte) error {
		f, head, err := peekPacket(bc)
		if err != nil {
			return err
		}
		if len(head) > 0 && head[0] == 0x00 {
			s.db, bc.db = db, db
			s.status = okStatus(head)
		}
		return s.relayOneFramed(bc, f)
	})
	return err
}
