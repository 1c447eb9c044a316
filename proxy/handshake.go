package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The server side of the connection phase.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html

// serverCaps are the capabilities Switchyard offers clients. Each one is
// honoured end to end: the backend connection serving a session is opened
// with the same protocol-shaping flags the client negotiated (see
// backendCapsMask), so result sets relay verbatim. CLIENT_COMPRESS is not
// offered: Switchyard does not compress.
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_IGNORE_SPACE |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF

// backendCapsMask selects the client flags that change what a server sends or
// how it parses, and so must match between a client and its backend connection.
const backendCapsMask = mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_INTERACTIVE |
	mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF

const (
	authNative      = mysql.AUTH_NATIVE_PASSWORD
	authCachingSha2 = mysql.AUTH_CACHING_SHA2_PASSWORD
)

// errBadHandshake reports a malformed handshake response.
var errBadHandshake = errors.New("malformed handshake response")

// handshakeResponse is what a client sends in HandshakeResponse41.
type handshakeResponse struct {
	caps      uint32
	collation uint8
	user      string
	authData  []byte
	db        string
	plugin    string
	attrs     []Attribute // connection attributes, in the client's order
	tls       bool        // the client upgraded to TLS
}

// newScramble returns 20 random bytes in 1..127 without '$', like MySQL's
// own salts: some clients treat the scramble as a NUL-terminated string.
func newScramble() []byte {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = b[i]&0x7f | 1
		if b[i] == '$' {
			b[i] = '%'
		}
	}
	return b
}

// appendGreeting builds the Protocol::HandshakeV10 payload.
func appendGreeting(b []byte, version string, connID uint32, scramble []byte, caps uint32, plugin string) []byte {
	b = append(b, 10)
	b = append(b, version...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, connID)
	b = append(b, scramble[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, mysql.DEFAULT_COLLATION_ID)
	b = binary.LittleEndian.AppendUint16(b, mysql.SERVER_STATUS_AUTOCOMMIT)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, byte(len(scramble)+1))
	b = append(b, make([]byte, 10)...)
	b = append(b, scramble[8:]...)
	b = append(b, 0)
	b = append(b, plugin...)
	return append(b, 0)
}

// parseSSLRequest reports whether p is a bare SSLRequest (the 32-byte prefix
// of a handshake response with CLIENT_SSL set).
func parseSSLRequest(p []byte) bool {
	return len(p) == 32 && binary.LittleEndian.Uint32(p)&mysql.CLIENT_SSL != 0
}

// parseHandshakeResponse decodes HandshakeResponse41. Clients that do not
// speak protocol 4.1 are refused: every supported client does.
func parseHandshakeResponse(p []byte) (*handshakeResponse, error) {
	if len(p) < 32 {
		return nil, fmt.Errorf("%w: %d bytes", errBadHandshake, len(p))
	}
	r := &handshakeResponse{caps: binary.LittleEndian.Uint32(p), collation: p[8]}
	if r.caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return nil, fmt.Errorf("%w: client does not speak protocol 4.1", errBadHandshake)
	}
	rest := p[32:]
	user, rest, ok := cutNul(rest)
	if !ok {
		return nil, fmt.Errorf("%w: unterminated user name", errBadHandshake)
	}
	r.user = string(user)
	switch {
	case r.caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		n, isNull, k := lenEncInt(rest)
		if isNull || k == 0 || uint64(len(rest)-k) < n {
			return nil, fmt.Errorf("%w: bad auth data length", errBadHandshake)
		}
		r.authData, rest = rest[k:k+int(n)], rest[k+int(n):]
	case r.caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return nil, fmt.Errorf("%w: bad auth data length", errBadHandshake)
		}
		n := int(rest[0])
		r.authData, rest = rest[1:1+n], rest[1+n:]
	default:
		var data []byte
		if data, rest, ok = cutNul(rest); !ok {
			return nil, fmt.Errorf("%w: unterminated auth data", errBadHandshake)
		}
		r.authData = data
	}
	if r.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && len(rest) > 0 {
		db, after, ok := cutNul(rest)
		if !ok {
			return nil, fmt.Errorf("%w: unterminated database name", errBadHandshake)
		}
		r.db, rest = string(db), after
	}
	if r.caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(rest) > 0 {
		plugin, after, _ := cutNul(rest)
		r.plugin, rest = string(plugin), after
	}
	if r.caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(rest) > 0 {
		attrs, err := parseAttributes(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadHandshake, err)
		}
		r.attrs = attrs
	}
	r.authData = bytes.Clone(r.authData)
	return r, nil
}

// Attribute is a connection attribute a client sent at login
// (CLIENT_CONNECT_ATTRS): "_client_name", "program_name", or the
// application's own.
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// parseAttributes decodes the connection attributes at the start of b: a
// length-encoded total, then length-encoded name and value strings. A
// declared length must fit.
func parseAttributes(b []byte) ([]Attribute, error) {
	n, isNull, k := lenEncInt(b)
	if isNull || k == 0 || uint64(len(b)-k) < n {
		return nil, errors.New("bad connection attributes length")
	}
	b = b[k : k+int(n)]
	var attrs []Attribute
	for len(b) > 0 {
		name, _, k, err := lenEncString(b)
		if err != nil {
			return nil, errors.New("bad connection attribute name")
		}
		if k >= len(b) { // go-mysql reads an empty string there
			return nil, fmt.Errorf("connection attribute %q without a value", name)
		}
		value, _, m, err := lenEncString(b[k:])
		if err != nil {
			return nil, errors.New("bad connection attribute value")
		}
		attrs = append(attrs, Attribute{string(name), string(value)})
		b = b[k+m:]
	}
	return attrs, nil
}

// cutNul splits b at its first NUL byte.
func cutNul(b []byte) (before, after []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// upgradeTLS upgrades the client connection after an SSLRequest. A client
// sends its TLS ClientHello right behind the SSLRequest, so bytes already
// buffered belong to the TLS stream.
func (s *session) upgradeTLS(cfg *tls.Config) error {
	var nc net.Conn = s.client.nc
	if n := s.client.br.Buffered(); n > 0 {
		b, _ := s.client.br.Peek(n)
		nc = &prefixConn{Conn: nc, prefix: bytes.Clone(b)}
	}
	tc := tls.Server(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	s.ncMu.Lock() // Shutdown may be looking at the connection (clientConn)
	s.client.reset(tc)
	s.ncMu.Unlock()
	return nil
}

// prefixConn replays bytes read ahead before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// handshake authenticates the client and attaches a primary connection.
func (s *session) handshake() error {
	nc := s.client.nc
	_ = nc.SetDeadline(time.Now().Add(s.srv.opts().HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})

	caps := serverCaps
	if s.srv.opts().TLSMode != TLSOff {
		caps |= mysql.CLIENT_SSL
	}
	scramble := newScramble()
	s.scramble = scramble
	s.client.seq = 0
	if err := s.writeClient(appendGreeting(s.out[:0], s.srv.serverVersion(), s.id, scramble, caps, s.srv.opts().AuthPlugin)); err != nil {
		return err
	}
	p, err := s.client.readPacket(4096)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: no handshake response within %s", s.srv.opts().HandshakeTimeout))
			return fmt.Errorf("handshake timeout: %w", err)
		}
		if errors.Is(err, errSequence) || errors.Is(err, errPacketTooLarge) {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: %v", err))
		}
		return fmt.Errorf("read handshake response: %w", err)
	}
	overTLS := false
	if parseSSLRequest(p) {
		if s.srv.opts().TLSMode == TLSOff {
			s.sendError(newSQLError(mysql.ER_HANDSHAKE_ERROR, "Bad handshake: TLS requested but switchyard has tls.mode off"))
			return errors.New("client asked for TLS, which is off")
		}
		if err := s.upgradeTLS(s.srv.opts().TLS); err != nil {
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
	s.sentUser = r.user
	s.overTLS = overTLS
	if s.srv.opts().TLSMode == TLSRequired && !overTLS {
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
	if err := s.attachAtLogin(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	s.info.Store(&SessionInfo{ID: s.id, User: cred.user, Client: nc.RemoteAddr().String(), TLS: overTLS,
		Since: time.Now(), Attributes: r.attrs})
	return s.sendOK()
}
