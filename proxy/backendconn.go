package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// backendConn is one authenticated connection to a backend server. It is
// owned by one session at a time, or by its pool while idle.
type backendConn struct {
	*pconn
	backend  *Backend
	threadID uint32 // the server's connection id, for KILL
	version  string // the server's version, from its greeting
	caps     uint32 // capabilities negotiated with the server
	overTLS  bool   // the connection went over to TLS at login
	fullAuth bool   // the login needed caching_sha2_password full authentication
	key      poolKey
	status   uint16 // server status flags from the last OK/EOF
	db       string // current database as far as Switchyard knows
	broken   bool   // a command failed mid-way: never reuse
	noPool   bool   // holds state a reset does not clear: close after use
	idleAt   time.Time

	vars     map[string]string // session variables set on this connection
	seenGTID string            // a GTID this server is known to have applied
	insertID uint64            // LAST_INSERT_ID() on this connection, as far as known
	owner    *session          // session whose state was last synced here
	gen      uint64            // owner's varsGen at that sync
	// readOnly: Switchyard made this connection's transactions read-only
	// (SET SESSION TRANSACTION READ ONLY), as every replica connection is.
	// The server then refuses any change to a table made through it, even
	// by a user whose privileges bypass read_only.
	readOnly bool
	// timeout bounds each round trip Switchyard makes on its own here
	// (Options.BackendTimeout); zero means none.
	timeout time.Duration

	pool   *userPool               // the pool that opened it
	cached map[stmtKey]*serverStmt // prepared statements kept for any session
}

// errBackendProtocol reports a backend that does not speak the protocol we expect.
var errBackendProtocol = errors.New("unexpected packet from backend")

// dialBackend connects and logs in to b as cred. key.caps are the session's
// negotiated capabilities; the protocol-shaping ones are requested from the
// server too (see backendCapsMask).
func dialBackend(ctx context.Context, b *Backend, key poolKey, cred *credential, db string, timeout time.Duration) (*backendConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", b.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// The login follows ctx too, not only its deadline: a backend the
	// monitor abandons (frozen, unreachable) must not hold a session for the
	// rest of the timeout waiting for its greeting.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	bc := &backendConn{pconn: newBackendPconn(nc), backend: b, key: key, db: db}
	err = bc.login(ctx, key, cred, db, b.tlsInForce())
	if !stop() {
		// Cut short (the error is then a deadline error), or just as the
		// login ended: say why.
		err = errors.Join(context.Cause(ctx), err)
	}
	if err != nil {
		nc.Close()
		return nil, bc.loginFailed(err)
	}
	_ = nc.SetDeadline(time.Time{})
	return bc, nil
}

// alive reports whether an idle connection still looks usable: the server
// has neither closed it nor sent anything unsolicited. It costs one
// non-blocking peek at the socket, no round trip.
func (bc *backendConn) alive() bool {
	if bc.br.Buffered() > 0 {
		return false
	}
	conn := bc.nc
	if tc, ok := conn.(*tls.Conn); ok {
		// Look below TLS: a record the server sent unasked (a
		// close_notify alert) means the connection is not idle and clean.
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true // not a socket (tests): nothing to look at
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the healthy answer; EOF, data or any other
		// error means the connection is not idle and clean.
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && alive
}

// Close closes the network connection.
func (bc *backendConn) Close() error { return bc.nc.Close() }

func (bc *backendConn) String() string {
	return fmt.Sprintf("%s thread %d", bc.backend.Addr, bc.threadID)
}

// Switchyard's own commands on a backend connection, as opposed to the
// client commands it relays (relay.go): each is one round trip with a
// deadline, and an I/O error marks the connection broken.

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
	columns, _, _ := lenEncInt(first)
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
			v, _, _, err := lenEncString(p)
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

// setupTracking turns on session state tracking of every variable (and on
// MySQL of the session's GTIDs).
func (bc *backendConn) setupTracking() error {
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, trackSetupFor(bc.version)...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	return nil
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
