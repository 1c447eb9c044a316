package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
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
	status    uint16 // server status flags last reported to the client

	backend *backendConn // the backend connection serving this session
	stmts   map[uint32]*stmt
	lastID  uint32 // last statement id handed out

	out []byte // scratch for packets built by Switchyard

	busy    atomic.Bool                 // a command is running
	active  atomic.Pointer[backendConn] // backend connection of the running command
	killed  atomic.Bool                 // KILL CONNECTION arrived
	aborted atomic.Bool                 // Shutdown gave up waiting
}

// stmt is a prepared statement as the client knows it.
type stmt struct {
	backendID uint32
	params    uint16
	columns   uint16
}

func newSession(srv *Server, id uint32, nc net.Conn) *session {
	return &session{
		srv:    srv,
		id:     id,
		client: newPconn(nc, clientBufSize),
		log:    srv.log.With("conn_id", id, "client", nc.RemoteAddr().String()),
		status: mysql.SERVER_STATUS_AUTOCOMMIT,
	}
}

// serve runs the session to its end and closes the client connection.
func (s *session) serve() {
	defer func() {
		if r := recover(); r != nil {
			s.srv.panics.Add(1)
			s.log.Error("session panic", "panic", r, "stack", string(debug.Stack()))
			s.sendError(newSQLError(mysql.ER_UNKNOWN_ERROR, "switchyard: internal error in session %d; the connection is closed", s.id))
		}
		s.close()
	}()
	if err := s.handshake(); err != nil {
		if !isClosed(err) {
			s.log.Warn("connection rejected", "err", err, "user", s.userName())
		}
		return
	}
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

// close releases the backend connection and closes the client.
func (s *session) close() {
	if s.backend != nil {
		s.releaseBackend()
	}
	s.client.nc.Close()
}

// handshake authenticates the client and attaches a primary connection.
func (s *session) handshake() error {
	nc := s.client.nc
	_ = nc.SetDeadline(time.Now().Add(s.srv.opts.HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})

	caps := serverCaps
	if s.srv.opts.TLSMode != TLSOff {
		caps |= mysql.CLIENT_SSL
	}
	scramble := newScramble()
	s.scramble = scramble
	s.client.seq = 0
	if err := s.writeClient(appendGreeting(s.out[:0], s.srv.serverVersion(), s.id, scramble, caps, s.srv.opts.AuthPlugin)); err != nil {
		return err
	}
	p, err := s.client.readPacket(4096)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: no handshake response within %s", s.srv.opts.HandshakeTimeout))
			return fmt.Errorf("handshake timeout: %w", err)
		}
		if errors.Is(err, errSequence) || errors.Is(err, errPacketTooLarge) {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: %v", err))
		}
		return fmt.Errorf("read handshake response: %w", err)
	}
	overTLS := false
	if parseSSLRequest(p) {
		if s.srv.opts.TLSMode == TLSOff {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: TLS requested but switchyard has tls.mode off"))
			return errors.New("client asked for TLS, which is off")
		}
		if err := s.upgradeTLS(s.srv.opts.TLS); err != nil {
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
	if s.srv.opts.TLSMode == TLSRequired && !overTLS {
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
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	s.status = s.backend.status
	return s.writeClient(appendOK(s.out[:0], 0, 0, s.status, 0))
}

// attachPrimary gives the session a connection to the primary.
func (s *session) attachPrimary() error {
	b := s.srv.primary()
	key := poolKey{user: s.cred.user, caps: s.caps & backendCapsMask, collation: s.collation}
	ctx := context.Background()
	bc, err := b.pool(s.cred.user, s.srv.opts.Pool).acquire(ctx, key, s.cred, s.db)
	if err != nil {
		var se *sqlError
		if errors.As(err, &se) {
			return se
		}
		return newSQLError(codeConnRefused, "switchyard: cannot connect to primary %s (%s): %v", b.Name, b.Addr, err)
	}
	if bc.db != s.db {
		if err := s.syncDB(bc); err != nil {
			b.pool(s.cred.user, s.srv.opts.Pool).discard(bc)
			return err
		}
	}
	s.backend = bc
	return nil
}

// syncDB makes bc's current database the session's.
func (s *session) syncDB(bc *backendConn) error {
	if s.db == "" {
		// A backend cannot leave its database; a connection that has one is
		// only reused for sessions that have one too.
		return newSQLError(mysql.ER_UNKNOWN_ERROR, "switchyard: cannot clear the current database")
	}
	p := append([]byte{mysql.COM_INIT_DB}, s.db...)
	res, err := bc.roundTrip(p)
	if err != nil {
		return err
	}
	if res[0] == 0xff {
		return parseErr(res)
	}
	bc.db = s.db
	return nil
}

// releaseBackend resets the session's backend connection and returns it to
// its pool (or closes it when it cannot be reset).
func (s *session) releaseBackend() {
	bc := s.backend
	s.backend = nil
	p := bc.backend.pool(s.cred.user, s.srv.opts.Pool)
	if !bc.broken {
		_ = bc.nc.SetDeadline(time.Now().Add(s.srv.opts.Pool.Connect))
		res, err := bc.roundTrip([]byte{mysql.COM_RESET_CONNECTION})
		_ = bc.nc.SetDeadline(time.Time{})
		if err != nil || res[0] != 0x00 {
			bc.broken = true
		}
	}
	p.put(bc)
}

// roundTrip sends a one-packet command that Switchyard issues itself and
// reads its one-packet answer. It marks bc broken on I/O errors.
func (bc *backendConn) roundTrip(cmd []byte) ([]byte, error) {
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
	s.out = appendErr(s.out[:0], e)
	_ = s.writeClient(s.out)
}

// sendOK sends an OK packet with the session's status.
func (s *session) sendOK() error {
	s.out = appendOK(s.out[:0], 0, 0, s.status, 0)
	return s.writeClient(s.out)
}

// wakeIfIdle interrupts a session waiting for its next command, so that it
// notices a shutdown. Busy sessions notice it when their command ends.
func (s *session) wakeIfIdle() {
	if !s.busy.Load() {
		_ = s.client.nc.SetReadDeadline(time.Now())
	}
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
	return s.status&mysql.SERVER_STATUS_IN_TRANS != 0
}

// isClosed reports errors that just mean the peer went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, errQuit)
}
