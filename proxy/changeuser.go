package proxy

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// changeUser serves COM_CHANGE_USER: Switchyard authenticates the new user
// itself, then gives the session a fresh backend connection as that user.
// Like the server, it resets the session: prepared statements, variables and
// temporary tables are gone. A failed change ends the session.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_change_user.html
func (s *session) changeUser(p []byte) error {
	r, err := parseChangeUser(p[1:], s.caps)
	if err != nil {
		s.sendError(newSQLError(mysql.ER_MALFORMED_PACKET, "Malformed communication packet: %v", err))
		return err
	}
	r.tls = s.overTLS
	// An authentication exchange may read from the client again.
	s.clientReadDeadline(s.srv.opts().HandshakeTimeout)
	cred, err := s.authenticate(r, s.scramble)
	if err != nil {
		if errors.Is(err, errAccessDenied) {
			s.sendError(newSQLError(mysql.ER_ACCESS_DENIED_ERROR, "Access denied for user '%s' (using password: %s)", r.user, yesNo(len(r.authData) > 0)))
		} else {
			s.sendError(asSQLError(err))
		}
		return fmt.Errorf("change user to %q: %w", r.user, err)
	}
	u, _ := s.srv.user(cred.user)
	if err := s.srv.admit(s, u); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	s.resetAndPutAll()
	s.cred, s.user, s.db = cred, u, r.db
	if r.collation != 0 {
		s.collation = r.collation
	}
	clear(s.stmts)
	clear(s.vars)
	s.varsGen++
	s.route.Reset()
	s.policy = s.srv.policyFor(u)
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	if old := s.info.Load(); old != nil {
		info := *old
		info.User, info.Attributes = cred.user, r.attrs
		s.info.Store(&info)
	}
	return s.sendOK()
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// parseChangeUser decodes the COM_CHANGE_USER payload after the command byte.
func parseChangeUser(p []byte, caps uint32) (*handshakeResponse, error) {
	user, rest, ok := cutNul(p)
	if !ok {
		return nil, errors.New("COM_CHANGE_USER: unterminated user name")
	}
	r := &handshakeResponse{caps: caps, user: string(user)}
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return nil, errors.New("COM_CHANGE_USER: bad auth data length")
		}
		n := int(rest[0])
		r.authData, rest = bytes.Clone(rest[1:1+n]), rest[1+n:]
	} else {
		var data []byte
		if data, rest, ok = cutNul(rest); !ok {
			return nil, errors.New("COM_CHANGE_USER: unterminated auth data")
		}
		r.authData = bytes.Clone(data)
	}
	db, rest, _ := cutNul(rest)
	r.db = string(db)
	if len(rest) >= 2 {
		r.collation = rest[0]
		rest = rest[2:]
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(rest) > 0 {
		plugin, after, _ := cutNul(rest)
		r.plugin, rest = string(plugin), after
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(rest) > 0 {
		attrs, err := parseAttributes(rest)
		if err != nil {
			return nil, fmt.Errorf("COM_CHANGE_USER: %v", err)
		}
		r.attrs = attrs
	}
	return r, nil
}
