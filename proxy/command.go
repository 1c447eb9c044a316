package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// The command phase: one client command at a time, each relayed to the
// session's backend connection or answered by Switchyard.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html

const (
	codeInactivity = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
	codeSecureOnly = 3159 // ER_SECURE_TRANSPORT_REQUIRED
)

// command reads and serves one command. A non-nil error ends the session.
//
// While Switchyard drains (Shutdown), a session outside a transaction ends
// before it reads another command: its client connection just closes, as
// a server's does at wait_timeout. An error packet sent now would reach the
// client unasked, and the next command would read it as its own answer.
func (s *session) command() error {
	if s.srv.isDraining() && !s.inTransaction() {
		return errQuit
	}
	s.client.shrinkBuf()
	s.client.seq = 0
	nc := s.client.nc
	now := time.Now() // the wait for the next command starts
	s.idleDeadline(now)
	if s.srv.isDraining() && !s.inTransaction() {
		return errQuit // Shutdown raced with the deadline reset
	}
	err := s.handBackWhenIdle(now)
	if err == nil && s.srv.isDraining() && !s.inTransaction() {
		return errQuit // Shutdown's wake-up may have been undone there
	}
	if err == nil {
		err = s.awaitCommand()
	}
	var p []byte
	if err == nil {
		p, err = s.client.readPacket(s.srv.opts().MaxPacketSize)
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.srv.isDraining() {
			err = fmt.Errorf("%w: %w", errNetRead, err)
		}
	}
	s.busy.Store(true)
	defer s.busy.Store(false)
	defer s.leaveGate()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.deadline = true // set by the idle timeout, net_read or a waker
			s.idleUntil = time.Time{}
		}
		switch {
		case errors.Is(err, errNetRead):
			// The client stopped in the middle of a packet. The answer
			// follows the command's first frame, whose header may not be
			// complete.
			if s.client.seq == 0 {
				s.client.seq = 1
			}
			s.sendError(newSQLError(mysql.ER_NET_READ_INTERRUPTED, "Got timeout reading communication packets"))
			return fmt.Errorf("%w (timeouts.net_read %s)", err, s.srv.opts().NetReadTimeout)
		case errors.Is(err, os.ErrDeadlineExceeded) && s.srv.isDraining() && s.inTransaction() && !s.srv.drainExpired.Load():
			// Woken by Shutdown with a transaction open: let the client
			// finish it; the check at the top ends the session after.
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded) && s.srv.isDraining():
			return errQuit // woken by Shutdown: close without a word
		case errors.Is(err, os.ErrDeadlineExceeded) && s.srv.opts().IdleTimeout <= 0:
			// A wake-up that lost a race with the command: nothing expired.
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			// MySQL 8 says why before it closes an idle connection, with
			// sequence id 0 since no command is running; clients expect
			// it there (go-sql-driver reports the error, PyMySQL a lost
			// connection).
			s.client.seq = 0
			s.sendError(newSQLError(codeInactivity, "The client was disconnected by switchyard because of inactivity (timeouts.idle %s)", s.srv.opts().IdleTimeout))
			return fmt.Errorf("idle timeout")
		case errors.Is(err, errPacketTooLarge):
			s.sendError(newSQLError(mysql.ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes (switchyard limits.max_packet_size is %d)", s.srv.opts().MaxPacketSize))
			return err
		case errors.Is(err, errSequence):
			s.sendError(newSQLError(mysql.ER_NET_PACKETS_OUT_OF_ORDER, "Got packets out of order: %v", err))
			return err
		}
		return err
	}
	if s.deadline && s.idleUntil.IsZero() {
		// net_read's deadline, or a waker's. The idle deadline stays:
		// reads within the command set their own (clientReadDeadline).
		_ = nc.SetReadDeadline(time.Time{})
		s.deadline = false
	}
	s.started = time.Now()
	defer s.countBytes()
	defer s.client.returnWriter() // responses end flushed: nothing is lost
	if len(p) == 0 {
		s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: empty command"))
		return nil
	}
	if se := shortCommand(p); se != nil {
		s.sendError(se)
		return nil
	}
	return s.dispatch(p)
}

// errNetRead is wrapped when a client packet stops arriving half-way.
var errNetRead = errors.New("client packet incomplete within net_read timeout")

// awaitCommand waits for the first byte of the next command, within the
// idle deadline if any. From then on the rest of the packet has
// Options.NetReadTimeout to arrive, as with MySQL's net_read_timeout: a
// client must not hold its session by sending half a packet. A packet
// already in the read buffer, the usual case, needs no deadline.
func (s *session) awaitCommand() error {
	br := s.client.br
	if _, err := br.Peek(1); err != nil {
		return err
	}
	if n := br.Buffered(); n >= 4 {
		h, _ := br.Peek(4)
		if 4+frameAt(h).n <= n {
			return nil
		}
	}
	s.clientReadDeadline(s.srv.opts().NetReadTimeout)
	return nil
}

// clientReadDeadline bounds the client's next reads: the rest of a packet,
// or those a command makes (LOCAL INFILE data, COM_CHANGE_USER's
// authentication).
func (s *session) clientReadDeadline(d time.Duration) {
	_ = s.client.nc.SetReadDeadline(time.Now().Add(d))
	s.deadline, s.idleUntil = true, time.Time{}
}

// shortCommand returns the error answering a command too short for its
// fixed fields, or nil. Lengths count the command byte; COM_QUERY,
// COM_PROCESS_KILL and COM_CHANGE_USER are checked where they are parsed.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html
func shortCommand(p []byte) *sqlError {
	var name string
	need := 0
	switch p[0] {
	case mysql.COM_INIT_DB:
		name, need = "COM_INIT_DB", 2 // a schema name
	case mysql.COM_FIELD_LIST:
		// A NUL-terminated table name, then a wildcard.
		if bytes.IndexByte(p[1:], 0) < 0 {
			return newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: COM_FIELD_LIST without a NUL-terminated table name")
		}
		return nil
	case mysql.COM_SET_OPTION:
		name, need = "COM_SET_OPTION", 3 // a 2-byte option
	case mysql.COM_STMT_EXECUTE:
		name, need = "COM_STMT_EXECUTE", 10 // statement id, flags, iteration count
	case mysql.COM_STMT_FETCH:
		name, need = "COM_STMT_FETCH", 9 // statement id, row count
	case mysql.COM_STMT_SEND_LONG_DATA:
		name, need = "COM_STMT_SEND_LONG_DATA", 7 // statement id, parameter number
	case mysql.COM_STMT_CLOSE:
		name, need = "COM_STMT_CLOSE", 5 // statement id
	case mysql.COM_STMT_RESET:
		name, need = "COM_STMT_RESET", 5 // statement id
	}
	if len(p) >= need {
		return nil
	}
	return newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: %s needs %d bytes, got %d", name, need, len(p))
}

// idleDeadline arms the client's read deadline for timeouts.idle, or clears
// it, while the session waits for the next command.
//
// Moving a deadline is a runtime timer update, worth about a microsecond
// per statement when done twice for each (benchmarked in issue 16), so the
// idle deadline is armed an eighth of timeouts.idle further than needed and
// left in place, across commands, while it is still at least timeouts.idle
// away: a client is cut off after between timeouts.idle and 9/8 of it of
// silence, never before. A deadline that fired, or another one set since,
// is armed afresh. now is the time the wait begins.
func (s *session) idleDeadline(now time.Time) {
	t := s.srv.opts().IdleTimeout
	if t <= 0 {
		if s.deadline {
			_ = s.client.nc.SetReadDeadline(time.Time{})
			s.deadline, s.idleUntil = false, time.Time{}
		}
		return
	}
	if !s.idleUntil.IsZero() && s.idleUntil.Sub(now) >= t {
		return
	}
	s.idleUntil = now.Add(t + t/8)
	_ = s.client.nc.SetReadDeadline(s.idleUntil)
	s.deadline = true
}

// countBytes moves the client byte counts into the metrics.
func (s *session) countBytes() {
	m := s.srv.m
	m.bytesIn.Add(float64(s.client.in))
	m.bytesOut.Add(float64(s.client.out))
	s.client.in, s.client.out = 0, 0
}

// testHookDispatch, when set by tests, sees every command before dispatch.
var testHookDispatch func(p []byte)

// dispatch serves the command in p.
func (s *session) dispatch(p []byte) error {
	if testHookDispatch != nil {
		testHookDispatch(p)
	}
	s.failed = false
	s.retryable = false
	s.rerouted = false
	switch p[0] {
	case mysql.COM_QUIT:
		return errQuit
	case mysql.COM_PING:
		return s.sendOK()
	case mysql.COM_QUERY:
		if len(p) == 1 {
			// As the server answers it, and no backend needs to see it.
			s.sendError(newSQLError(mysql.ER_EMPTY_QUERY, "Query was empty"))
			return nil
		}
		return s.query(p)
	case mysql.COM_INIT_DB, mysql.COM_FIELD_LIST, mysql.COM_STATISTICS:
		bc, _, err := s.connFor(router.Decision{Target: router.TargetPrimary})
		if err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
		relay := s.relayOne
		if p[0] == mysql.COM_FIELD_LIST {
			relay = s.relayFetch
		}
		err = s.forwardTo(bc, p, relay)
		if err == nil && p[0] == mysql.COM_INIT_DB && !s.failed {
			s.db, bc.db = string(p[1:]), string(p[1:])
		}
		return err
	case mysql.COM_SET_OPTION:
		// The option outlives COM_RESET_CONNECTION, so the connection is not
		// pooled afterwards; and multi-statements only ever run on the
		// primary, so it is the only connection that needs it.
		bc, _, err := s.connFor(router.Decision{Target: router.TargetPrimary})
		if err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
		bc.noPool = true
		return s.forwardTo(bc, p, s.relayOne)
	case mysql.COM_RESET_CONNECTION:
		return s.resetConnection()
	case mysql.COM_CHANGE_USER:
		return s.changeUser(p)
	case mysql.COM_PROCESS_KILL:
		if len(p) < 5 {
			s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: short COM_PROCESS_KILL"))
			return nil
		}
		return s.kill(binary.LittleEndian.Uint32(p[1:]), false, nil)
	case mysql.COM_STMT_PREPARE:
		return s.prepare(p)
	case mysql.COM_STMT_EXECUTE:
		return s.execute(p)
	case mysql.COM_STMT_FETCH, mysql.COM_STMT_RESET, mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		return s.stmtCommand(p)
	default:
		s.sendError(newSQLError(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command: switchyard does not support command 0x%02x", p[0]))
		return nil
	}
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

// query serves COM_QUERY: classify, route, run, remember.
func (s *session) query(p []byte) error {
	sql := unsafe.String(&p[1], len(p)-1) // dispatch answered the empty query
	mode := s.lexMode()
	c := router.ClassifyMode(sql, mode)
	if c.Kind == router.KindKill {
		return s.kill(killArgs(c)) // Switchyard's connection ids, not a server's
	}
	s.dg.begin(s.srv.digests.digest(sql, mode, &s.dg.buf))
	d, ok := s.decide(c)
	if !ok {
		return nil
	}
	return s.run(c, d, func(bc *backendConn, target router.Target) error {
		s.beforeWrite(bc)
		if err := s.forwardTo(bc, p, s.relayResults); err != nil {
			return err
		}
		s.afterWrite(c, bc)
		now := time.Now()
		s.note(c, target, bc, now) // a write's window starts when it finished
		s.observe(bc, cmdQuery, c.Kind, now)
		return nil
	})
}

// decide routes a statement of class c. Inside a read-only transaction on a
// replica, a statement that ends it (see router.EndsReadOnlyTx) first
// commits it there, as the server would, and a write gets the server's
// answer for a read-only transaction without reaching any server; then ok
// is false: the client has its answer.
func (s *session) decide(c router.Class) (d router.Decision, ok bool) {
	if s.route.ReadOnlyTx && router.EndsReadOnlyTx(c) {
		s.endReadOnlyTx()
	}
	d = router.Decide(c, &s.route, s.policy, s.started)
	if d.Target == router.TargetRefuse {
		s.countReason(d.Reason)
		s.sendError(errReadOnlyTx)
		return d, false
	}
	return d, true
}

// errReadOnlyTx is the server's answer to a write in a read-only transaction.
var errReadOnlyTx = &sqlError{code: mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, state: "25006",
	message: "Cannot execute statement in a READ ONLY transaction"}

// endReadOnlyTx commits the session's read-only transaction on its replica.
// Nothing can be lost: the transaction changed nothing. A connection that
// fails to commit is dropped, which ends the transaction too.
func (s *session) endReadOnlyTx() {
	bc := s.txConn
	s.route.ReadOnlyTx, s.txConn = false, nil
	if bc == nil {
		return
	}
	done := s.hold(bc)
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, "COMMIT"...))
	done()
	if err != nil || res[0] != 0x00 {
		s.log.Debug("ending a read-only transaction failed; dropping its connection", "backend", bc.backend.Addr, "err", err)
		s.dropConn(bc)
	}
}

// run runs a statement of class c where decision d says, with exec, once
// the session follows the current primary. A read whose replica fails before
// answering runs once more, elsewhere; one that the replica's read-only
// session refused as a write runs on the primary.
func (s *session) run(c router.Class, d router.Decision, exec func(*backendConn, router.Target) error) error {
	s.countReason(d.Reason)
	s.dg.reason = d.Reason
	if d.Target == router.TargetPrimary {
		s.awaitPrimary()
	}
	if err := s.followPrimary(); err != nil {
		return err
	}
	awaited, demotedOnce, lostOnce := false, false, false
	for attempt := 0; ; attempt++ {
		if s.enterGate(d.Target == router.TargetPrimary) {
			// Held by a switchover: the primary may be another now.
			if err := s.followPrimary(); err != nil {
				return err
			}
		}
		bc, target, err := s.connFor(d)
		if err == nil && c.Flags&router.FlagLastInsertID != 0 {
			if err = s.syncInsertID(bc); err != nil && !isSQLError(err) {
				return s.backendFailed(bc, err)
			}
		}
		if err != nil && target == router.TargetPrimary && !awaited && errorCode(err) == codeConnRefused {
			// Nothing was sent: wait for the failover, then follow it.
			awaited = true
			if s.awaitNewPrimary() {
				if err := s.followPrimary(); err != nil {
					return err
				}
				continue
			}
		}
		if err != nil {
			s.sendError(asSQLError(err))
			return nil
		}
		onReplica := attempt == 0 && target == router.TargetReplica && !s.route.ReadOnlyTx
		s.retryable = onReplica && c.Kind == router.KindRead
		s.reroutable = onReplica
		s.demotable = target == router.TargetPrimary && !demotedOnce && s.followsTopology() && !s.inTransaction() && s.route.Autocommit
		// A SET changes only the session's state on the connection (SET
		// GLOBAL is a write): run again on the next primary, it leaves the
		// same state there. Django sends one as each connection opens.
		s.primaryRetryable = target == router.TargetPrimary && (c.Kind == router.KindRead || c.Kind == router.KindSet) &&
			!lostOnce && s.followsTopology()
		err = exec(bc, target)
		s.reroutable, s.demotable, s.primaryRetryable = false, false, false
		if errors.Is(err, errRetryPrimary) {
			// A read (a causal fallback, or no replica usable) or a SET
			// lost the primary before any of its answer went out: it
			// runs again on the server that takes over. Nothing the
			// session holds was only on that connection.
			lostOnce = true
			if s.awaitNewPrimary() {
				if err := s.followPrimary(); err != nil {
					return err
				}
				continue
			}
			s.sendError(newSQLError(codeLostBackend, "Lost connection to primary %s (%s) before it answered, and no other server took over writes",
				bc.backend.Name, bc.backend.Addr))
			return nil
		}
		if errors.Is(err, errRefused) && target == router.TargetPrimary {
			// The primary refused the statement as read-only before
			// running it: a switchover (maybe another Switchyard's)
			// demoted it. Run it on the new primary.
			demotedOnce = true
			if s.awaitPrimaryChange(bc.backend, max(s.srv.opts().AwaitFailover, primaryWait)) {
				if err := s.followPrimary(); err != nil {
					return err
				}
				continue
			}
			s.sendError(newSQLError(mysql.ER_OPTION_PREVENTS_STATEMENT, "switchyard: the primary %s is read-only (demoted) and no other server took over writes", bc.backend.Name))
			return nil
		}
		if errors.Is(err, errRefused) {
			// The classifier called a write a read, and the replica's
			// read-only session refused it before it changed anything:
			// the statement belongs on the primary.
			s.srv.m.refused.Inc()
			s.log.Warn("a replica refused a statement classified as a read; it runs on the primary",
				"backend", bc.backend.Name, "class", c.String())
			s.rerouted = true
			d = router.Decision{Target: router.TargetPrimary, Reason: "replica_refused"}
			s.countReason(d.Reason)
			s.dg.reason = d.Reason
			s.awaitPrimary()
			continue
		}
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// errRefused reports that a replica answered a statement with one of the
// errors of a read-only session (see refusedAsWrite) before any byte of the
// answer reached the client.
var errRefused = errors.New("a replica refused the statement as a write")

// refusedAsWrite reports the errors with which a read-only session or server
// refuses a statement that would write: the statement then runs on the
// primary. ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION (1792) comes from the
// read-only session Switchyard keeps on every replica connection;
// ER_OPTION_PREVENTS_STATEMENT (1290, --read-only or --super-read-only),
// ER_READ_ONLY_MODE (1836) and ER_INNODB_READ_ONLY (1874) from a read-only
// server.
func refusedAsWrite(code uint16) bool {
	switch code {
	case mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, mysql.ER_OPTION_PREVENTS_STATEMENT, 1836, 1874:
		return true
	}
	return false
}

// errRetry asks for a read to run again elsewhere: its replica failed before
// any byte of the answer reached the client.
var errRetry = errors.New("retry the read on another server")

// errRetryPrimary asks for a read to run again on the next primary: the
// primary failed before any byte of the answer reached the client (see
// session.primaryRetryable).
var errRetryPrimary = errors.New("retry the read on the next primary")

// forwardTo sends the command p to bc and relays the response with relay
// (nil: the command has no response). A failed primary connection ends the
// session: its server state is gone, and the client must not carry on as if
// it were not. A failed replica connection is dropped; the session goes on.
func (s *session) forwardTo(bc *backendConn, p []byte, relay func(*backendConn, byte) error) error {
	s.active.Store(bc)
	defer s.active.Store(nil)
	if bc != s.primary {
		s.activeReplica.Store(bc)
		defer s.activeReplica.Store(nil)
		// A long read on a replica does not hold up a switchover: should
		// it have to run again on the primary, it passes the gate again.
		s.leaveGate()
		if s.retryable && s.srv.excluded(bc.backend) {
			// The monitor excluded it (down or lagging) after it was
			// chosen, and its Abandon may have looked for statements
			// there already: the read runs elsewhere; the connection,
			// unused, stays.
			return errRetry
		}
	}
	s.sent = time.Now()
	bc.seq = 0
	err := bc.writePacket(p)
	if err == nil && relay != nil {
		err = bc.flushAwait() // sent by relay's first read
	} else if err == nil {
		err = bc.flush()
	}
	if err == nil && relay != nil {
		err = relay(bc, p[0])
	}
	if err == nil {
		s.last = bc
		return nil
	}
	if errors.Is(err, errRefused) {
		return err // the connection is fine and ready for the next command
	}
	var cg clientGone
	if errors.As(err, &cg) {
		bc.broken = true
		return cg.err
	}
	return s.backendFailed(bc, err)
}

// backendFailed reports a backend connection that failed during a command.
func (s *session) backendFailed(bc *backendConn, err error) error {
	bc.broken = true
	if s.killed.Load() || s.aborted.Load() {
		return errQuit
	}
	s.log.Warn("backend failed during command", "backend", bc.backend.Addr, "thread", bc.threadID, "err", err)
	se := newSQLError(codeLostBackend, "Lost connection to %s %s (%s) during query: %v",
		bc.backend.roleName(), bc.backend.Name, bc.backend.Addr, err)
	// Whatever of the answer is still in the client's buffer can be taken
	// back; what went out cannot. A stream cut inside a packet can carry
	// no error packet after it: the client would read it as the rest of
	// the packet.
	c := s.client
	unsent := c.out-uint64(c.missing) == uint64(c.bw.Buffered())
	if unsent {
		c.bw.Reset(c.nc)
		c.out, c.missing, c.seq = 0, 0, 1
	}
	if bc != s.primary {
		bc.backend.markFailed()
		s.dropConn(bc)
		if s.retryable && unsent {
			// Nothing reached the client yet: run the read again
			// elsewhere.
			s.retries.Inc()
			return errRetry
		}
		if c.missing != 0 {
			return fmt.Errorf("backend %s lost inside a packet already sent to the client: %w", bc.backend.Addr, err)
		}
		s.sendError(se)
		return nil
	}
	if c.missing != 0 {
		return fmt.Errorf("backend %s lost inside a packet already sent to the client: %w", bc.backend.Addr, err)
	}
	if s.primaryRetryable && unsent && s.canHandBack() {
		s.primary = nil
		s.dropConn(bc)
		s.retries.Inc()
		return errRetryPrimary
	}
	se.message += "; switchyard closes this session because its server state is gone"
	s.sendError(se)
	return fmt.Errorf("backend %s: %w", bc.backend.Addr, err)
}

// dropConnIfBroken drops bc when err came from the connection rather than
// from the server's answer.
func (s *session) dropConnIfBroken(bc *backendConn, err error) {
	var se *sqlError
	if !errors.As(err, &se) {
		s.dropConn(bc)
	}
}

// resetConnection serves COM_RESET_CONNECTION: the session starts over on
// fresh backend state, keeping its user and database.
func (s *session) resetConnection() error {
	s.resetAndPutAll()
	clear(s.stmts)
	clear(s.vars)
	s.varsGen++
	s.route.Reset()
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	return s.sendOK()
}
