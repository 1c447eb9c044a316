package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Relaying responses from a backend to the client, packet by packet. Each
// function reads exactly one complete response to one command, so that the
// backend connection is ready for the next command afterwards; memory does not
// grow with the size of the response.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response.html

// clientGone wraps a failure to talk to the client during a relay.
type clientGone struct{ err error }

func (e clientGone) Error() string { return "client: " + e.err.Error() }
func (e clientGone) Unwrap() error { return e.err }

// headSize is how much of a packet's start relays inspect.
const headSize = 64

// peekPacket reads the next frame header from bc and peeks at the start of its payload.
func peekPacket(bc *backendConn) (frame, []byte, error) {
	f, err := bc.readFrameHeader()
	if err != nil {
		return f, nil, err
	}
	head, err := bc.peekPayload(min(f.n, headSize))
	return f, head, err
}

// copyPacket copies one logical packet whose first frame header is f from
// src to dst, including continuation frames of split packets.
func copyPacket(src, dst *pconn, f frame) error {
	for {
		if err := src.copyFrame(dst, f); err != nil {
			return err
		}
		if f.n < maxFrame {
			return nil
		}
		var err error
		if f, err = src.readFrameHeader(); err != nil {
			return err
		}
	}
}

// toClient copies a backend packet to the client, telling client failures apart.
func (s *session) toClient(bc *backendConn, f frame) error {
	err := copyPacket(bc.pconn, s.client, f)
	var dw errDstWrite
	if errors.As(err, &dw) {
		return clientGone{dw.err}
	}
	return err
}

// flushClient flushes the client writer.
func (s *session) flushClient() error {
	if err := s.client.flush(); err != nil {
		return clientGone{err}
	}
	return nil
}

// isTerminator reports whether a packet starting with 0xFE of payload length
// n ends a result set: an EOF packet, or with CLIENT_DEPRECATE_EOF an OK
// packet with the 0xFE header. A row cannot be mistaken for it: a row
// starting with 0xFE holds a value of 2^24 bytes or more.
func isTerminator(caps uint32, n int) bool {
	if caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		return n < maxFrame
	}
	return n < 9
}

// terminatorStatus returns the status flags of an EOF or OK packet.
func terminatorStatus(caps uint32, head []byte) uint16 {
	if head[0] == 0xfe && caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		if len(head) >= 5 {
			return binary.LittleEndian.Uint16(head[3:])
		}
		return 0
	}
	return okStatus(head)
}

// okStatus returns the status flags of an OK packet.
func okStatus(head []byte) uint16 {
	rest := head[1:]
	for range 2 { // affected rows, last insert id
		_, _, n := mysql.LengthEncodedInt(rest)
		if n == 0 || n > len(rest) {
			return 0
		}
		rest = rest[n:]
	}
	if len(rest) < 2 {
		return 0
	}
	return binary.LittleEndian.Uint16(rest)
}

// relayResults relays the response to COM_QUERY or COM_STMT_EXECUTE: one or
// more results (OK, ERR or result set), LOCAL INFILE requests included.
func (s *session) relayResults(bc *backendConn, cmd byte) error {
	for {
		f, head, err := peekPacket(bc)
		if err != nil {
			return err
		}
		if len(head) == 0 {
			return fmt.Errorf("%w: empty response packet", errBackendProtocol)
		}
		switch head[0] {
		case 0x00:
			st := okStatus(head)
			s.status = st
			if err := s.toClient(bc, f); err != nil {
				return err
			}
			if st&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				return s.flushClient()
			}
		case 0xff:
			if err := s.toClient(bc, f); err != nil {
				return err
			}
			return s.flushClient()
		case 0xfb:
			if cmd != mysql.COM_QUERY {
				return fmt.Errorf("%w: LOCAL INFILE request outside COM_QUERY", errBackendProtocol)
			}
			if err := s.localInfile(bc, f); err != nil {
				return err
			}
		default:
			more, err := s.relayResultSet(bc, f, head, cmd)
			if err != nil || !more {
				return err
			}
		}
	}
}

// relayResultSet relays one result set whose column-count packet is f. It
// reports whether more results follow.
func (s *session) relayResultSet(bc *backendConn, f frame, head []byte, cmd byte) (more bool, err error) {
	columns, _, _ := mysql.LengthEncodedInt(head)
	if err := s.toClient(bc, f); err != nil {
		return false, err
	}
	if err := s.relayPackets(bc, int(columns)); err != nil {
		return false, err
	}
	if bc.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		f, head, err := peekPacket(bc)
		if err != nil {
			return false, err
		}
		if len(head) == 0 || head[0] != 0xfe {
			return false, fmt.Errorf("%w: no EOF after column definitions", errBackendProtocol)
		}
		st := terminatorStatus(bc.caps, head)
		if err := s.toClient(bc, f); err != nil {
			return false, err
		}
		if cmd == mysql.COM_STMT_EXECUTE && st&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
			// A cursor was opened: rows come with COM_STMT_FETCH.
			s.status = st
			return false, s.flushClient()
		}
	}
	st, err := s.relayRows(bc)
	if err != nil {
		return false, err
	}
	if st&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
		return true, nil
	}
	return false, s.flushClient()
}

// relayRows relays row packets up to and including the terminator (or an
// ERR), returning the terminator's status flags.
func (s *session) relayRows(bc *backendConn) (uint16, error) {
	for {
		f, head, err := peekPacket(bc)
		if err != nil {
			return 0, err
		}
		if len(head) == 0 {
			return 0, fmt.Errorf("%w: empty row packet", errBackendProtocol)
		}
		switch {
		case head[0] == 0xfe && isTerminator(bc.caps, f.n):
			st := terminatorStatus(bc.caps, head)
			s.status = st
			return st, s.toClient(bc, f)
		case head[0] == 0xff:
			return 0, s.toClient(bc, f)
		}
		if err := s.toClient(bc, f); err != nil {
			return 0, err
		}
	}
}

// relayPackets relays n whole packets.
func (s *session) relayPackets(bc *backendConn, n int) error {
	for range n {
		f, err := bc.readFrameHeader()
		if err != nil {
			return err
		}
		if err := s.toClient(bc, f); err != nil {
			return err
		}
	}
	return nil
}

// relayOne relays a response of exactly one packet.
func (s *session) relayOne(bc *backendConn) error {
	f, head, err := peekPacket(bc)
	if err != nil {
		return err
	}
	if len(head) > 0 && head[0] == 0x00 {
		s.status = okStatus(head)
	}
	if err := s.toClient(bc, f); err != nil {
		return err
	}
	return s.flushClient()
}

// relayFetch relays the rows answering COM_STMT_FETCH.
func (s *session) relayFetch(bc *backendConn) error {
	if _, err := s.relayRows(bc); err != nil {
		return err
	}
	return s.flushClient()
}

// relayFieldList relays the column definitions answering COM_FIELD_LIST.
func (s *session) relayFieldList(bc *backendConn) error {
	_, err := s.relayRows(bc)
	if err != nil {
		return err
	}
	return s.flushClient()
}

// relayPrepare relays a COM_STMT_PREPARE response, replacing the server's
// statement id with one the session hands out.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_prepare.html
func (s *session) relayPrepare(bc *backendConn) error {
	f, head, err := peekPacket(bc)
	if err != nil {
		return err
	}
	if len(head) == 0 || head[0] != 0x00 || f.n < 12 || f.n > headSize {
		return s.relayOneFramed(bc, f)
	}
	ok := append(s.out[:0], head...)
	_ = bc.skipPayload(f.n)
	st := &stmt{
		backendID: binary.LittleEndian.Uint32(ok[1:]),
		columns:   binary.LittleEndian.Uint16(ok[5:]),
		params:    binary.LittleEndian.Uint16(ok[7:]),
	}
	s.lastID++
	id := s.lastID
	if s.stmts == nil {
		s.stmts = make(map[uint32]*stmt)
	}
	s.stmts[id] = st
	binary.LittleEndian.PutUint32(ok[1:], id)
	s.client.seq = f.seq
	if err := s.client.writePacket(ok); err != nil {
		return clientGone{err}
	}
	eof := bc.caps&mysql.CLIENT_DEPRECATE_EOF == 0
	for _, n := range []uint16{st.params, st.columns} {
		if n == 0 {
			continue
		}
		if err := s.relayPackets(bc, int(n)); err != nil {
			return err
		}
		if eof {
			if err := s.relayPackets(bc, 1); err != nil {
				return err
			}
		}
	}
	return s.flushClient()
}

// relayOneFramed relays a one-packet response whose header is already read.
func (s *session) relayOneFramed(bc *backendConn, f frame) error {
	if err := s.toClient(bc, f); err != nil {
		return err
	}
	return s.flushClient()
}

// localInfile serves LOAD DATA LOCAL INFILE: the server's request goes to the
// client, and the file's packets, up to an empty one, go back to the server.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_local_infile_request.html
func (s *session) localInfile(bc *backendConn, f frame) error {
	if err := s.toClient(bc, f); err != nil {
		return err
	}
	if err := s.flushClient(); err != nil {
		return err
	}
	for {
		cf, err := s.client.readFrameHeader()
		if err != nil {
			return clientGone{err}
		}
		if err := s.client.copyFrame(bc.pconn, cf); err != nil {
			var dw errDstWrite
			if errors.As(err, &dw) {
				return dw.err
			}
			return clientGone{err}
		}
		if cf.n == 0 {
			return bc.flush()
		}
	}
}
