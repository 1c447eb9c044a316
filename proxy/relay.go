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
	if err == nil {
		return nil
	}
	if dw, ok := err.(errDstWrite); ok {
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

// relayResults relays the response to COM_QUERY or COM_STMT_EXECUTE: one or
// more results (OK, ERR or result set), LOCAL INFILE requests included.
func (s *session) relayResults(bc *backendConn, cmd byte) error {
	for first := true; ; first = false {
		f, head, err := peekPacket(bc)
		if err != nil {
			return err
		}
		if len(head) == 0 {
			return fmt.Errorf("%w: empty response packet", errBackendProtocol)
		}
		if first && head[0] == 0xff && len(head) >= 3 && (s.reroutable && refusedAsWrite(binary.LittleEndian.Uint16(head[1:])) ||
			s.demotable && demoted(binary.LittleEndian.Uint16(head[1:]))) {
			// Nothing of the answer reached the client: run it elsewhere.
			if err := bc.skipPayload(f.n); err != nil {
				return err
			}
			return errRefused
		}
		switch head[0] {
		case 0x00:
			status, err := s.relayOK(bc, f)
			if err != nil {
				return err
			}
			if status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				return s.flushClient()
			}
		case 0xff:
			s.relayedError(bc, head)
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
	columns, _, k := lenEncInt(head)
	if k == 0 {
		return false, fmt.Errorf("%w: short column count", errBackendProtocol)
	}
	s.client.borrowWriter() // returned when the command ends
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
		status, err := s.relayEOF(bc, f, head)
		if err != nil {
			return false, err
		}
		if cmd == mysql.COM_STMT_EXECUTE && status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
			// A cursor was opened: rows come with COM_STMT_FETCH.
			return false, s.flushClient()
		}
	}
	status, err := s.relayRows(bc)
	if err != nil {
		return false, err
	}
	if status&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
		return true, nil
	}
	return false, s.flushClient()
}

// relayEOF relays a classic EOF packet, with the session's status bits.
func (s *session) relayEOF(bc *backendConn, f frame, head []byte) (uint16, error) {
	if len(head) < 5 {
		return 0, s.toClient(bc, f)
	}
	status := binary.LittleEndian.Uint16(head[3:])
	bc.status = status
	s.warnings = binary.LittleEndian.Uint16(head[1:])
	// head aliases the read buffer: patch the status before it is copied.
	binary.LittleEndian.PutUint16(head[3:], s.clientStatus(bc, status))
	return status, s.toClient(bc, f)
}

// relayRows relays row packets up to and including the terminator (or an
// ERR), returning the terminator's status flags.
func (s *session) relayRows(bc *backendConn) (uint16, error) {
	for {
		k, err := s.copyRun(bc, 0, true)
		if err != nil {
			return 0, err
		}
		s.dg.rowsSent += uint64(k)
		f, head, err := peekPacket(bc)
		if err != nil {
			return 0, err
		}
		if len(head) == 0 {
			return 0, fmt.Errorf("%w: empty row packet", errBackendProtocol)
		}
		switch {
		case head[0] == 0xfe && isTerminator(bc.caps, f.n):
			if bc.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
				return s.relayOK(bc, f)
			}
			return s.relayEOF(bc, f, head)
		case head[0] == 0xff:
			s.relayedError(bc, head)
			return 0, s.toClient(bc, f)
		}
		if err := s.toClient(bc, f); err != nil {
			return 0, err
		}
		s.dg.rowsSent++
	}
}

// relayPackets relays n whole packets.
func (s *session) relayPackets(bc *backendConn, n int) error {
	for n > 0 {
		k, err := s.copyRun(bc, n, false)
		if err != nil {
			return err
		}
		if n -= k; n == 0 {
			return nil
		}
		n--
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

// copyRun copies to the client, in one write, the packets that lie whole
// in bc's read buffer, from its start: at most limit of them (0: no limit),
// and with rows, only up to the first that is not a row (a terminator or an
// error, which the caller looks at). It returns how many it copied. A
// packet that is not whole in the buffer yet, or split in frames, is left
// to the packet-by-packet path, as is an empty one. A result set's rows
// leave this way in one copy instead of one each, and no row needs its own
// look: nothing in a row changes on the way.
func (s *session) copyRun(bc *backendConn, limit int, rows bool) (int, error) {
	if testNoRuns {
		return 0, nil
	}
	buf, _ := bc.br.Peek(bc.br.Buffered())
	end, k := 0, 0
	var seq uint8
	for (limit == 0 || k < limit) && len(buf)-end >= 4 {
		f := frameAt(buf[end:])
		if f.n == 0 || f.n >= maxFrame || len(buf)-end-4 < f.n {
			break
		}
		if first := buf[end+4]; rows && (first == 0xff || first == 0xfe && isTerminator(bc.caps, f.n)) {
			break
		}
		seq = f.seq
		end += 4 + f.n
		k++
	}
	if k == 0 {
		return 0, nil
	}
	if _, err := s.client.bw.Write(buf[:end]); err != nil {
		return 0, clientGone{err}
	}
	_, _ = bc.br.Discard(end)
	s.client.seq = seq + 1
	s.client.out += uint64(end)
	bc.in += uint64(end)
	return k, nil
}

// testNoRuns, set by tests, turns copyRun off: the packet-by-packet path
// is then the reference its output is compared with.
var testNoRuns bool

// relayOne relays a response of exactly one packet (OK, ERR, or the string
// of COM_STATISTICS).
func (s *session) relayOne(bc *backendConn, _ byte) error {
	f, head, err := peekPacket(bc)
	if err != nil {
		return err
	}
	switch {
	case len(head) > 0 && head[0] == 0x00:
		if _, err := s.relayOK(bc, f); err != nil {
			return err
		}
	case len(head) > 0 && head[0] == 0xfe && f.n < 9:
		if _, err := s.relayEOF(bc, f, head); err != nil {
			return err
		}
	default:
		if len(head) > 0 && head[0] == 0xff {
			s.relayedError(bc, head)
		}
		if err := s.toClient(bc, f); err != nil {
			return err
		}
	}
	return s.flushClient()
}

// relayFetch relays the rows answering COM_STMT_FETCH, or the column
// definitions answering COM_FIELD_LIST: packets up to a terminator.
func (s *session) relayFetch(bc *backendConn, _ byte) error {
	if _, err := s.relayRows(bc); err != nil {
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
		// Each packet of the file within net_read, as the server bounds it.
		s.clientReadDeadline(s.srv.opts().NetReadTimeout)
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

// demoted reports the errors of a server that is read-only as a whole:
// ER_OPTION_PREVENTS_STATEMENT (1290, read_only or super_read_only) and
// ER_READ_ONLY_MODE (1836). A read-only transaction's refusal (1792) is the
// client's own doing and passes through.
func demoted(code uint16) bool {
	return code == mysql.ER_OPTION_PREVENTS_STATEMENT || code == 1836
}

// relayedError notes an ERR packet passing from a backend to the client.
func (s *session) relayedError(bc *backendConn, head []byte) {
	s.failed = true
	if len(head) < 3 {
		return
	}
	code := binary.LittleEndian.Uint16(head[1:])
	s.srv.m.countError(code)
	if code == mysql.ER_OPTION_PREVENTS_STATEMENT && bc == s.primary {
		// The primary says it is read-only: it was demoted. Have the
		// monitor look now rather than at its next probe.
		if f := s.srv.opts().Recheck; f != nil {
			f(bc.backend.Name)
		}
	}
}
