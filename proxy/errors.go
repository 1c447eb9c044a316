package proxy

import (
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Error codes Switchyard itself sends, with SQLSTATE 08S01 (connection
// exception). They are server codes: libmariadb, under the mariadb client
// and mysqlclient (Django), reads an error packet carrying a client-library
// code (2000-2999, such as 2003 or 2013) as a malformed packet, and shows
// "Received malformed packet" instead of the message.
const (
	codeConnRefused = 1429 // ER_CONNECT_TO_FOREIGN_DATA_SOURCE: a backend cannot be reached
	codeLostBackend = 1158 // ER_NET_READ_ERROR: a backend went away during a command
)

// sqlError is an error that reaches the client as a MySQL ERR packet.
type sqlError struct {
	code    uint16
	state   string
	message string
	// wrapped is what Switchyard's own error stands for, for errors.Is
	// and errors.As (errPoolTimeout, errNoReplica...): only its text in
	// message reaches the client. Nil for a server's answer.
	wrapped error
}

func (e *sqlError) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.code, e.state, e.message)
}

// Unwrap returns the errors a %w verb in newSQLError's format named.
func (e *sqlError) Unwrap() error { return e.wrapped }

// newSQLError builds an error with the SQLSTATE MySQL assigns to code (HY000
// if none). The message is formatted as by fmt.Errorf: the operands of %w
// verbs are wrapped, so that errors.Is matches them.
func newSQLError(code uint16, format string, args ...any) *sqlError {
	state := mysql.MySQLState[code]
	if state == "" {
		state = "HY000"
	}
	if code == codeLostBackend || code == codeConnRefused {
		state = "08S01"
	}
	err := fmt.Errorf(format, args...)
	e := &sqlError{code: code, state: state, message: err.Error()}
	switch err.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.wrapped = err
	}
	return e
}

// asSQLError turns any error into one fit for the client: an sqlError passes
// through, anything else becomes ER_UNKNOWN_ERROR with the error's text.
func asSQLError(err error) *sqlError {
	var se *sqlError
	if errors.As(err, &se) {
		return se
	}
	return newSQLError(mysql.ER_UNKNOWN_ERROR, "switchyard: %v", err)
}

// appendErr appends an ERR packet payload (protocol 4.1 format).
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html
func appendErr(b []byte, e *sqlError) []byte {
	b = append(b, 0xff, byte(e.code), byte(e.code>>8), '#')
	state := e.state
	if len(state) != 5 {
		state = "HY000"
	}
	b = append(b, state...)
	return append(b, e.message...)
}

// appendOK appends an OK packet payload.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html
func appendOK(b []byte, affected, insertID uint64, status, warnings uint16) []byte {
	b = append(b, 0x00)
	b = mysql.AppendLengthEncodedInteger(b, affected)
	b = mysql.AppendLengthEncodedInteger(b, insertID)
	return append(b, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
}

// parseErr decodes an ERR packet payload (protocol 4.1 format).
func parseErr(p []byte) *sqlError {
	if len(p) < 3 || p[0] != 0xff {
		return newSQLError(mysql.ER_MALFORMED_PACKET, "malformed error packet")
	}
	e := &sqlError{code: uint16(p[1]) | uint16(p[2])<<8, state: "HY000"}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.state = string(rest[1:6])
		rest = rest[6:]
	}
	e.message = string(rest)
	return e
}

// errorCode returns the code of the sqlError in err, or 0.
func errorCode(err error) uint16 {
	var se *sqlError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}
