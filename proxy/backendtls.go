package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// BackendTLS secures Switchyard's connections to one backend. A nil
// *BackendTLS means plain TCP.
type BackendTLS struct {
	// Config is the client side's TLS configuration: the roots and the
	// name the server's certificate is checked against (or
	// InsecureSkipVerify), and the client certificate. It must not be
	// modified once in use.
	Config *tls.Config
	// Preferred logs in over plain TCP when the server does not offer TLS.
	// Without it such a server fails the login with errNoBackendTLS.
	Preferred bool
}

// errNoBackendTLS is wrapped when TLS is required and a backend does not
// offer it (its greeting lacks CLIENT_SSL).
var errNoBackendTLS = errors.New("the server does not offer TLS, which Switchyard requires of it (backend_tls.mode)")

// startTLS asks the server for TLS with an SSLRequest (the first 32 bytes of
// a handshake response, caps including CLIENT_SSL), then runs the TLS
// handshake on the connection. The rest of the login goes over TLS.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
func (bc *backendConn) startTLS(ctx context.Context, cfg *tls.Config, caps uint32, collation uint8) error {
	if bc.br.Buffered() > 0 {
		// The server speaks first only once: anything more is not MySQL.
		return fmt.Errorf("%w: data after the greeting", errBackendProtocol)
	}
	req := binary.LittleEndian.AppendUint32(make([]byte, 0, 32), caps|mysql.CLIENT_SSL)
	req = binary.LittleEndian.AppendUint32(req, 1<<30)
	req = append(req, collation)
	req = append(req, make([]byte, 23)...)
	if err := bc.writePacket(req); err != nil {
		return err
	}
	if err := bc.flush(); err != nil {
		return err
	}
	tc := tls.Client(bc.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	bc.pconn.reset(tc)
	bc.overTLS = true
	return nil
}

// transport names how bc reaches its server, for messages.
func (bc *backendConn) transport() string {
	if bc.overTLS {
		return "TLS"
	}
	return "plain TCP"
}

// loginFailed names the backend and the transport in a failed login, so
// that a client can tell which server refused Switchyard and why. A
// server's refusal keeps its code and SQLSTATE (1045 stays 1045); other
// failures become the dial error that acquire reports as codeConnRefused.
func (bc *backendConn) loginFailed(err error) error {
	var se *sqlError
	if !errors.As(err, &se) {
		return fmt.Errorf("log in: %w", err)
	}
	b := bc.backend
	return &sqlError{code: se.code, state: se.state,
		message: fmt.Sprintf("switchyard: login to %s %s (%s) over %s failed: %s", b.roleName(), b.Name, b.Addr, bc.transport(), se.message)}
}
