package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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
// those marked atomic or guarded by a mutex, which KILL, Shutdown and the
// pools use from other goroutines.
type session struct {
	srv    *Server
	id     uint32
	client *pconn
	log    *slog.Logger

	cred      *credential
	sentUser  string // the user name the client logged in as, accepted or not (for logs)
	user      User
	counted   string // user name counted against limits (guarded by srv.mu)
	caps      uint32 // negotiated with the client
	scramble  []byte // from the greeting; COM_CHANGE_USER answers it too
	overTLS   bool
	collation uint8
	db        string

	primary *backendConn // connection to the primary (attached at login, or at the first write when the primary was down then)
	// replicas holds the connections to replicas, opened on first use,
	// by backend state: a reload makes new Backends for the same servers.
	replicas map[*backendState]*backendConn
	last     *backendConn      // ran the previous statement
	txConn   *backendConn      // replica running a read-only transaction
	route    router.State      // routing memory (pins, recent writes...)
	policy   router.Policy     // routing settings for this user
	vars     map[string]string // session variables changed by the client
	varsGen  uint64            // bumped when vars change
	varsStr  string            // prepareVars as text, for statement cache keys
	varsAt   uint64            // varsGen when varsStr was made
	mode     router.Mode       // lexMode's answer, made when varsGen was modeAt
	modeAt   uint64
	modeOK   bool
	// defaultSQLMode is the primary's default sql_mode, the session's until
	// it sets its own.
	defaultSQLMode string
	lastGTID       string   // GTID of the session's last write (MariaDB last_gtid, MySQL's tracked OWN_GTID)
	prevGTID       string   // lastGTID before the running statement
	wanted         *gtidSet // the last GTID position waited for, parsed (see wantGTID)
	stmts          map[uint32]*stmt
	lastID         uint32 // last statement id handed out
	failed         bool   // the last command ended with an ERR packet
	warnings       uint16 // warning count of the last statement's final OK/EOF
	cursor         bool   // a prepared statement opened a cursor
	insertID       uint64 // the session's LAST_INSERT_ID(), from the primary's OK packets
	retryable      bool   // the running command may run again if its replica fails
	// primaryRetryable: the running command is a read or a SET on the
	// primary; if the primary fails before any of the answer went out, and
	// the session's state can follow it to another connection
	// (canHandBack, asked only then), it runs again on the primary that
	// replaces it.
	primaryRetryable bool
	// reroutable: a refusal from the replica running the command (see
	// refusedAsWrite) moves it to the primary; rerouted: it did.
	reroutable bool
	// demotable: a read-only refusal from the primary running the command
	// (it was demoted, by this Switchyard's switchover or another's) means
	// nothing ran: the command waits for the new primary and runs there.
	demotable bool
	rerouted  bool
	started   time.Time // when the current command arrived
	sent      time.Time // when it was sent to a backend

	dg    digestState // the running statement's digest (digest.go)
	out   []byte      // scratch for packets built by Switchyard
	okBuf []byte      // scratch for OK packets being rewritten

	retries prometheus.Counter
	// reason and reasonCount are the routing reason counted last and its
	// counter (countReason).
	reason      string
	reasonCount prometheus.Counter
	// longPending: some statement may have pendingLong set (canHandBack
	// looks at them only then).
	longPending bool

	// inFlight: a statement is past the write gate, or a transaction is
	// open (gate.go).
	inFlight atomic.Bool

	// ncMu guards s.client.nc against the TLS upgrade, which replaces it,
	// for the goroutines other than the session's that use it (clientConn).
	ncMu sync.Mutex

	parkMu   sync.Mutex   // guards the writes of parkedAt, woken and the deadline wakers set
	parkedAt atomic.Int64 // unix nanos handBackWhenIdle began waiting for the client; 0: not waiting
	woken    bool         // wakeParked cut that wait short
	deadline bool         // the client's read deadline may be set
	// idleUntil is the idle deadline armed on the client connection (see
	// idleDeadline); zero when another deadline, or none, is in force.
	idleUntil time.Time

	busy          atomic.Bool                 // a command is running
	active        atomic.Pointer[backendConn] // backend connection of the running command
	activeReplica atomic.Pointer[backendConn] // the same, when it is not the primary connection
	killed        atomic.Bool                 // KILL CONNECTION arrived
	info          atomic.Pointer[SessionInfo] // who is logged in; nil before login
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

// userName names the session's user in logs: the authenticated one, else
// the one the client asked for ("" before its handshake response).
func (s *session) userName() string {
	if s.cred != nil {
		return s.cred.user
	}
	return s.sentUser
}

// errQuit ends a session normally.
var errQuit = errors.New("client quit")

// close gives the backend connections back (see handBack and resetAndPutAll)
// and closes the client.
func (s *session) close() {
	if s.killed.Load() {
		for _, bc := range s.conns() {
			bc.broken = true
		}
	}
	if s.canHandBack() {
		// Nothing of the session's lives on its connections alone: they go
		// back as they are, with their prepared statements, and no reset
		// round trip (the next session syncs its own state, see sync).
		s.handBack()
	} else {
		s.resetAndPutAll()
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

// resetAndPutAll resets every backend connection and puts it back in its pool.
func (s *session) resetAndPutAll() {
	for _, bc := range s.conns() {
		s.resetAndPut(bc)
	}
	s.primary, s.last, s.txConn = nil, nil, nil
	clear(s.replicas)
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

// attachAtLogin gives a new session its first backend connection, which
// shows that the backend takes the user: the primary's, or, when the
// primary cannot be reached (down, or a failover under way), a replica's.
// Reads then go on; the first write attaches the primary.
func (s *session) attachAtLogin() error {
	var err error
	if f := s.srv.opts().NoPrimary; f == nil || !f() {
		err = s.attachPrimary()
		if err == nil {
			s.defaultSQLMode = s.primary.backend.sqlMode()
			return nil
		}
		var se *sqlError
		if !errors.As(err, &se) || se.code != codeConnRefused {
			return err
		}
	}
	bc, rerr := s.replicaConn()
	if errors.Is(rerr, errNoReplica) {
		// A failover under way: the replica being promoted and the others
		// repointed are out of rotation for a moment. Wait, as a read
		// does, for a replica or for the new primary.
		o := s.srv.opts()
		down := o.NoPrimary != nil && o.NoPrimary()
		if s.awaitReadable() {
			bc, rerr = s.replicaConn()
		} else if down && !o.NoPrimary() {
			if err = s.attachPrimary(); err == nil {
				s.defaultSQLMode = s.primary.backend.sqlMode()
				return nil
			}
		}
	}
	if rerr != nil {
		if err == nil {
			err = newSQLError(codeConnRefused, "switchyard: no primary to connect to now (%v), and no replica: %v", s.srv.primary().Name, rerr)
		}
		return err
	}
	s.log.Debug("logged in on a replica: the primary cannot be reached", "backend", bc.backend.Name, "err", err)
	s.defaultSQLMode = bc.backend.sqlMode()
	return nil
}

// acquire takes a connection to b from the pool, in the session's state.
// A connection for reads (replica) is made read-only first: whatever a
// statement sent there tries to change, the server refuses. A pooled
// connection that turns out dead in those round trips (its server went
// away while it sat idle) is dropped and replaced, once: nothing of the
// client's had been sent on it.
func (s *session) acquire(b *Backend, replica bool) (*backendConn, error) {
	bc, err := s.acquireOnce(b, replica)
	var se *sqlError
	if err != nil && !errors.As(err, &se) {
		bc, err = s.acquireOnce(b, replica)
	}
	if err != nil && !errors.As(err, &se) {
		b.markFailed()
		return nil, newSQLError(codeConnRefused, "switchyard: cannot use a connection to %s %s (%s): %v", b.roleName(), b.Name, b.Addr, err)
	}
	return bc, err
}

func (s *session) acquireOnce(b *Backend, replica bool) (*backendConn, error) {
	key := poolKey{user: s.cred.user, caps: s.caps&backendCapsMask | mysql.CLIENT_SESSION_TRACK, collation: s.collation}
	p := b.pool(s.cred.user, s.srv.opts().Pool)
	bc, err := p.acquire(context.Background(), key, s.cred, s.db, s)
	if err != nil {
		var se *sqlError
		if errors.As(err, &se) {
			return nil, se
		}
		b.markFailed()
		return nil, newSQLError(codeConnRefused, "switchyard: cannot connect to %s %s (%s): %v", b.roleName(), b.Name, b.Addr, err)
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

// resetAndPut resets a backend connection and puts it back in its pool (or
// closes it when it cannot be reset).
func (s *session) resetAndPut(bc *backendConn) {
	if !bc.broken {
		if err := bc.reset(); err != nil { // each round trip within bc.timeout
			bc.broken = true
		}
	}
	bc.pool.put(bc)
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
	status := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	if s.primary != nil {
		status = s.primary.status &^ (statusStateChanged | mysql.SERVER_MORE_RESULTS_EXISTS)
	}
	s.out = appendOK(s.out[:0], 0, 0, status, 0)
	return s.writeClient(s.out)
}

// clientConn returns the client connection, for goroutines other than the
// session's (Shutdown, KILL, pool wake-ups).
func (s *session) clientConn() net.Conn {
	s.ncMu.Lock()
	defer s.ncMu.Unlock()
	return s.client.nc
}

// wakeIfIdle interrupts a session waiting for its next command, so that it
// notices a shutdown. Busy sessions notice it when their command ends.
func (s *session) wakeIfIdle() {
	if !s.busy.Load() {
		_ = s.clientConn().SetReadDeadline(time.Now())
	}
}

// wakeParked makes a session that waits for its client's next command
// while holding connections (handBackWhenIdle) hand them back now. It reports
// whether the session was waiting so.
func (s *session) wakeParked() bool {
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if s.parkedAt.Load() == 0 || s.woken {
		return false
	}
	s.woken = true
	_ = s.clientConn().SetReadDeadline(time.Now())
	return true
}

// abort closes the session's connections from another goroutine.
func (s *session) abort() {
	s.aborted.Store(true)
	s.clientConn().Close()
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
