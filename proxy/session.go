package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/router"
)

// session serves one client connection. Its goroutine owns every field except
// those marked atomic, which KILL and Shutdown use from other goroutines.
type session struct {
	srv    *Server
	id     uint32
	client *pconn
	log    *slog.Logger

	cred      *credential
	user      User
	counted   string // user name counted against limits (guarded by srv.mu)
	caps      uint32 // negotiated with the client
	scramble  []byte // from the greeting; COM_CHANGE_USER answers it too
	overTLS   bool
	collation uint8
	db        string

	primary  *backendConn              // connection to the primary (attached at login)
	replicas map[*Backend]*backendConn // connections to replicas, opened on first use
	last     *backendConn              // ran the previous statement
	txConn   *backendConn              // replica running a read-only transaction
	route    router.State              // routing memory (pins, recent writes...)
	policy   router.Policy             // routing settings for this user
	vars     map[string]string         // session variables changed by the client
	varsGen  uint64                    // bumped when vars change
	varsStr  string                    // prepareVars as text, for statement cache keys
	varsAt   uint64                    // varsGen when varsStr was made
	mode     router.Mode               // lexMode's answer, made when varsGen was modeAt
	modeAt   uint64
	modeOK   bool
	// defaultSQLMode is the primary's default sql_mode, the session's until
	// it sets its own.
	defaultSQLMode string
	lastGTID       string // GTID of the session's last write (MariaDB last_gtid)
	prevGTID       string // lastGTID before the running statement
	stmts          map[uint32]*stmt
	lastID         uint32 // last statement id handed out
	failed         bool   // the last command ended with an ERR packet
	warnings       uint16 // warning count of the last statement's final OK/EOF
	cursor         bool   // a prepared statement opened a cursor
	insertID       uint64 // the session's LAST_INSERT_ID(), from the primary's OK packets
	retryable      bool   // the running command may run again if its replica fails
	// reroutable: a refusal from the replica running the command (see
	// refusedAsWrite) moves it to the primary; rerouted: it did.
	reroutable bool
	rerouted   bool
	started    time.Time // when the current command arrived
	sent       time.Time // when it was sent to a backend

	out   []byte // scratch for packets built by Switchyard
	okBuf []byte // scratch for OK packets being rewritten

	retries prometheus.Counter

	parkMu   sync.Mutex   // guards the writes of parkedAt, woken and the deadline wakers set
	parkedAt atomic.Int64 // unix nanos releaseWhenIdle began waiting for the client; 0: not waiting
	woken    bool         // wakeParked cut that wait short
	deadline bool         // the client's read deadline may be set

	busy          atomic.Bool                 // a command is running
	active        atomic.Pointer[backendConn] // backend connection of the running command
	activeReplica atomic.Pointer[backendConn] // the same, when it is not the primary connection
	killed        atomic.Bool                 // KILL CONNECTION arrived
	aborted       atomic.Bool                 // Shutdown gave up waiting
}

func newSession(srv *Server, id uint32, nc net.Conn) *session {
	return &session{
		srv:     srv,
		id:      id,
		client:  newPconn(nc, clientBufSize),
		log:     srv.log.With("conn_id", id, "client", nc.RemoteAddr().String()),
		route:   router.NewState(),
		retries: srv.m.retries,
	}
}

// serve runs the session to its end and closes the client connection.
func (s *session) serve() {
	defer func() {
		if r := recover(); r != nil {
			s.srv.panics.Add(1)
			s.srv.m.panics.Inc()
			s.log.Error("session panic", "panic", r, "stack", string(debug.Stack()))
			s.sendError(newSQLError(mysql.ER_UNKNOWN_ERROR, "switchyard: internal error in session %d; the connection is closed", s.id))
		}
		s.close()
	}()
	if err := s.handshake(); err != nil {
		if s.cred == nil {
			s.srv.m.rejected.WithLabelValues("handshake").Inc()
		}
		if !isClosed(err) {
			s.log.Warn("connection rejected", "err", err, "user", s.userName())
		}
		return
	}
	s.countBytes() // handshake bytes are not part of the first command
	s.log.Debug("client connected", "user", s.cred.user, "db", s.db)
	for {
		err := s.command()
		if err == nil {
			continue
		}
		if !errors.Is(err, errQuit) && !isClosed(err) {
			s.log.Info("session ended", "err", err)
		}
		return
	}
}

func (s *session) userName() string {
	if s.cred != nil {
		return s.cred.user
	}
	return ""
}

// errQuit ends a session normally.
var errQuit = errors.New("client quit")

// close releases the backend connections and closes the client.
func (s *session) close() {
	if s.killed.Load() {
		for _, bc := range s.conns() {
			bc.broken = true
		}
	}
	if s.canRelease() {
		// Nothing of the session's lives on its connections alone: they go
		// back as they are, with their prepared statements, and no reset
		// round trip (the next session syncs its own state, see sync).
		s.releaseIdle()
	} else {
		s.releaseAll()
	}
	s.client.nc.Close()
}

// conns lists the session's backend connections.
func (s *session) conns() []*backendConn {
	var out []*backendConn
	if s.primary != nil {
		out = append(out, s.primary)
	}
	for _, bc := range s.replicas {
		out = append(out, bc)
	}
	return out
}

// releaseAll hands every backend connection back to its pool.
func (s *session) releaseAll() {
	for _, bc := range s.conns() {
		s.release(bc)
	}
	s.primary, s.last, s.txConn = nil, nil, nil
	clear(s.replicas)
}

// handshake authenticates the client and attaches a primary connection.
func (s *session) handshake() error {
	nc := s.client.nc
	_ = nc.SetDeadline(time.Now().Add(s.srv.o().HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})

	caps := serverCaps
	if s.srv.o().TLSMode != TLSOff {
		caps |= mysql.CLIENT_SSL
	}
	scramble := newScramble()
	s.scramble = scramble
	s.client.seq = 0
	if err := s.writeClient(appendGreeting(s.out[:0], s.srv.serverVersion(), s.id, scramble, caps, s.srv.o().AuthPlugin)); err != nil {
		return err
	}
	p, err := s.client.readPacket(4096)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: no handshake response within %s", s.srv.o().HandshakeTimeout))
			return fmt.Errorf("handshake timeout: %w", err)
		}
		if errors.Is(err, errSequence) || errors.Is(err, errPacketTooLarge) {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: %v", err))
		}
		return fmt.Errorf("read handshake response: %w", err)
	}
	overTLS := false
	if parseSSLRequest(p) {
		if s.srv.o().TLSMode == TLSOff {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: TLS requested but switchyard has tls.mode off"))
			return errors.New("client asked for TLS, which is off")
		}
		if err := s.upgradeTLS(s.srv.o().TLS); err != nil {
			return err
		}
		overTLS = true
		if p, err = s.client.readPacket(4096); err != nil {
			return fmt.Errorf("read handshake response over tls: %w", err)
		}
	}
	r, err := parseHandshakeResponse(p)
	if err != nil {
		s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: %v", err))
		return err
	}
	r.tls = overTLS
	s.overTLS = overTLS
	if s.srv.o().TLSMode == TLSRequired && !overTLS {
		s.sendError(newSQLError(3159, "Connections using insecure transport are prohibited: switchyard requires TLS (tls.mode: required)"))
		return errors.New("client without TLS refused")
	}
	s.caps = r.caps & caps
	s.collation = r.collation
	s.db = r.db
	cred, err := s.authenticate(r, scramble)
	if err != nil {
		if errors.Is(err, errAccessDenied) {
			using := "YES"
			if len(r.authData) == 0 {
				using = "NO"
			}
			host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
			s.sendError(newSQLError(mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user '%s'@'%s' (using password: %s)", r.user, host, using))
			return fmt.Errorf("user %q: %w", r.user, err)
		}
		s.sendError(asSQLError(err))
		return err
	}
	s.cred = cred
	s.user, _ = s.srv.user(cred.user)
	if err := s.srv.admit(s, s.user); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	s.policy = s.srv.policyFor(s.user)
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	s.defaultSQLMode = s.primary.backend.sqlMode()
	return s.sendOK()
}

// attachPrimary gives the session a connection to the primary.
func (s *session) attachPrimary() error {
	bc, err := s.acquire(s.srv.primary(), false)
	if err != nil {
		return err
	}
	s.primary = bc
	return nil
}

// acquire takes a connection to b from the pool, in the session's state.
// A connection for reads (replica) is made read-only first: whatever a
// statement sent there tries to change, the server refuses.
func (s *session) acquire(b *Backend, replica bool) (*backendConn, error) {
	key := poolKey{user: s.cred.user, caps: s.caps&backendCapsMask | mysql.CLIENT_SESSION_TRACK, collation: s.collation}
	p := b.pool(s.cred.user, s.srv.o().Pool)
	bc, err := p.acquire(context.Background(), key, s.cred, s.db, s)
	if err != nil {
		var se *sqlError
		if errors.As(err, &se) {
			return nil, se
		}
		b.markFailed()
		return nil, newSQLError(codeConnRefused, "switchyard: cannot connect to %s %s (%s): %v", b.role(), b.Name, b.Addr, err)
	}
	done := s.hold(bc)
	err = bc.setReadOnly(replica)
	if err == nil && replica {
		s.srv.checkWritable(p, bc)
	}
	if err == nil {
		err = s.syncHeld(bc)
	}
	done()
	if err != nil {
		p.discard(bc)
		return nil, err
	}
	return bc, nil
}

// hold marks bc as the connection the session waits on, for a round trip
// Switchyard makes on its own, so that KILL, Shutdown and the monitor's
// Abandon can cut the wait short by closing it. The returned func ends the
// hold.
func (s *session) hold(bc *backendConn) func() {
	s.active.Store(bc)
	if bc != s.primary {
		s.activeReplica.Store(bc)
		if s.srv.excluded(bc.backend) {
			// Abandon may have looked already: cut it off here.
			bc.nc.Close()
		}
	}
	return s.unhold
}

func (s *session) unhold() {
	s.active.Store(nil)
	s.activeReplica.Store(nil)
}

// setReadOnly makes the transactions of bc read-only (ro) or lets them
// write again, when Switchyard's own setting differs. Undoing it forgets
// what the connection knows of the session's transaction variables, so that
// the next sync sets them as the session has them.
func (bc *backendConn) setReadOnly(ro bool) error {
	if bc.readOnly == ro {
		return nil
	}
	q := "SET SESSION TRANSACTION READ WRITE"
	if ro {
		q = "SET SESSION TRANSACTION READ ONLY"
	}
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, q...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	bc.readOnly = ro
	if !ro {
		for name := range bc.vars {
			if isTxReadOnlyVar(name) {
				delete(bc.vars, name)
			}
		}
		bc.owner = nil
	}
	return nil
}

// isTxReadOnlyVar reports the variables that hold the session's transaction
// access mode. Switchyard owns them on replica connections: they are never
// copied there from the session, and a change reported there means the
// connection is no longer safe for reads.
func isTxReadOnlyVar(name string) bool {
	return name == "tx_read_only" || name == "transaction_read_only"
}

// release resets a backend connection and returns it to its pool (or closes
// it when it cannot be reset).
func (s *session) release(bc *backendConn) {
	if !bc.broken {
		if err := bc.reset(); err != nil { // each round trip within bc.timeout
			bc.broken = true
		}
	}
	bc.pool.put(bc)
}

// reset returns bc to a fresh session state, tracking included.
func (bc *backendConn) reset() error {
	res, err := bc.roundTrip([]byte{mysql.COM_RESET_CONNECTION})
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	clear(bc.vars)
	clear(bc.cached) // the server closed every statement
	bc.insertID = 0
	bc.readOnly = false // the reset restored the server's default
	bc.owner = nil
	return bc.setupTracking()
}

// setupTracking turns on session state tracking of every variable.
func (bc *backendConn) setupTracking() error {
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, trackSetup...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	return nil
}

// roundTrip sends a one-packet command that Switchyard issues itself and
// reads its one-packet answer, within bc.timeout. It marks bc broken on I/O
// errors, a missed deadline included.
func (bc *backendConn) roundTrip(cmd []byte) ([]byte, error) {
	defer bc.within(bc.timeout)()
	return bc.exchange(cmd)
}

// within sets a deadline d from now on bc (none for d <= 0) and returns the
// func that clears it.
func (bc *backendConn) within(d time.Duration) func() {
	if d <= 0 {
		return func() {}
	}
	_ = bc.nc.SetDeadline(time.Now().Add(d))
	return bc.clearDeadline
}

func (bc *backendConn) clearDeadline() { _ = bc.nc.SetDeadline(time.Time{}) }

// exchange is roundTrip without a deadline of its own.
func (bc *backendConn) exchange(cmd []byte) ([]byte, error) {
	bc.seq = 0
	if err := bc.writePacket(cmd); err != nil {
		bc.broken = true
		return nil, err
	}
	if err := bc.flush(); err != nil {
		bc.broken = true
		return nil, err
	}
	p, err := bc.readPacket(1 << 20)
	if err != nil {
		bc.broken = true
		return nil, err
	}
	if len(p) == 0 {
		bc.broken = true
		return nil, errBackendProtocol
	}
	if p[0] == 0x00 {
		// Keep the status current: a reset turns autocommit back on, and a
		// session handed this connection reports its status at login.
		if l := parseOKLayout(p); l.status != 0 {
			bc.status = binary.LittleEndian.Uint16(p[l.status:])
		}
	}
	return p, nil
}

// writeClient writes one packet to the client and flushes.
func (s *session) writeClient(p []byte) error {
	if err := s.client.writePacket(p); err != nil {
		return err
	}
	return s.client.flush()
}

// sendError sends e as an ERR packet with the next sequence id.
func (s *session) sendError(e *sqlError) {
	s.srv.m.countError(e.code)
	s.out = appendErr(s.out[:0], e)
	_ = s.writeClient(s.out)
}

// sendOK sends an OK packet with the session's status.
func (s *session) sendOK() error {
	st := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	if s.primary != nil {
		st = s.primary.status &^ (statusStateChanged | mysql.SERVER_MORE_RESULTS_EXISTS)
	}
	s.out = appendOK(s.out[:0], 0, 0, st, 0)
	return s.writeClient(s.out)
}

// wakeIfIdle interrupts a session waiting for its next command, so that it
// notices a shutdown. Busy sessions notice it when their command ends.
func (s *session) wakeIfIdle() {
	if !s.busy.Load() {
		_ = s.client.nc.SetReadDeadline(time.Now())
	}
}

// wakeParked makes a session that waits for its client's next command
// while holding connections (releaseWhenIdle) hand them back now. It reports
// whether the session was waiting so.
func (s *session) wakeParked() bool {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parkedAt.Load() == 0 || s.woken {
		return false
	}
	s.woken = true
	_ = s.client.nc.SetReadDeadline(time.Now())
	return true
}

// abort closes the session's connections from another goroutine.
func (s *session) abort() {
	s.aborted.Store(true)
	s.client.nc.Close()
	if bc := s.active.Load(); bc != nil {
		bc.nc.Close()
	}
}

// inTransaction reports whether the client has a transaction open.
func (s *session) inTransaction() bool {
	return (s.primary != nil && s.primary.status&mysql.SERVER_STATUS_IN_TRANS != 0) || s.route.ReadOnlyTx
}

// isClosed reports errors that just mean the peer went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, errQuit) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// queryValue runs a query Switchyard issues itself on bc and returns the
// first column of its first row ("" for NULL), within bc.timeout. An ERR
// comes back as an *sqlError; an I/O error marks bc broken.
func (bc *backendConn) queryValue(q string) (string, error) {
	return bc.queryValueWithin(q, bc.timeout)
}

// queryValueWithin is queryValue with a deadline d from now.
func (bc *backendConn) queryValueWithin(q string, d time.Duration) (string, error) {
	defer bc.within(d)()
	first, err := bc.exchange(append([]byte{mysql.COM_QUERY}, q...))
	if err != nil {
		return "", err
	}
	switch first[0] {
	case 0xff:
		return "", parseErr(first)
	case 0x00:
		return "", nil
	}
	columns, _, _ := mysql.LengthEncodedInt(first)
	skip := int(columns)
	if bc.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		skip++
	}
	for range skip {
		if _, err := bc.readPacket(1 << 20); err != nil {
			bc.broken = true
			return "", err
		}
	}
	var value string
	for {
		p, err := bc.readPacket(1 << 24)
		if err != nil {
			bc.broken = true
			return "", err
		}
		switch {
		case len(p) > 0 && p[0] == 0xff:
			return "", parseErr(p)
		case len(p) > 0 && p[0] == 0xfe && len(p) < maxFrame:
			if l := parseOKLayout(p); p[0] == 0xfe && bc.caps&mysql.CLIENT_DEPRECATE_EOF != 0 && l.status != 0 {
				bc.status = binary.LittleEndian.Uint16(p[l.status:])
			}
			return value, nil
		case value == "" && len(p) > 0 && p[0] != 0xfb:
			v, _, _, err := mysql.LengthEncodedString(p)
			if err == nil {
				value = string(v)
			}
		}
	}
}

// isSQLError reports whether err is a server's answer rather than an I/O failure.
func isSQLError(err error) bool {
	var se *sqlError
	return errors.As(err, &se)
}
