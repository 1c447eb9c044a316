package proxy

import (
	"encoding/binary"
	"io"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Session state tracking. Every backend connection is opened with
// CLIENT_SESSION_TRACK and tracks all system variables, so each OK packet
// tells Switchyard which session variables and which schema a statement
// changed. The session keeps the values and copies them to its other
// backend connections before they run its statements.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html

const (
	statusStateChanged = 0x4000 // SERVER_SESSION_STATE_CHANGED
	statusANSIQuotes   = 0x8000 // MariaDB: sql_mode has ANSI_QUOTES

	// Types of session-state-change records.
	trackSystemVariables = 0
	trackSchema          = 1
	trackGTIDs           = 3 // MySQL: the GTID of the transaction the statement committed

	// trackSetup makes a backend connection report every session variable
	// change. It runs right after login and after COM_RESET_CONNECTION
	// (see trackSetupFor).
	trackSetup = "SET SESSION session_track_system_variables='*', session_track_schema=1, session_track_state_change=1"
	// trackSetupMySQL also has MySQL report the GTID of each transaction
	// the session commits. MariaDB reports it as the variable last_gtid
	// and has no session_track_gtids.
	trackSetupMySQL = trackSetup + ", session_track_gtids=OWN_GTID"
)

// trackSetupFor returns the tracking setup for a connection to a server of
// this version.
func trackSetupFor(version string) string {
	if isMariaDB(version) {
		return trackSetup
	}
	return trackSetupMySQL
}

// isMariaDB reports whether a server's greeting version is MariaDB's
// ("5.5.5-10.11.19-MariaDB-0+deb12u1-log") rather than MySQL's ("9.7.4").
// It is the one place Switchyard tells the two engines apart.
func isMariaDB(version string) bool { return strings.Contains(version, "MariaDB") }

// Variables that are not copied between backend connections:
//   - read-only ones, which a server reports but refuses to set (error
//     1238): statement_id (MySQL changes it with every statement),
//     in_transaction and last_gtid (MariaDB), and those no server reports
//     today but might;
//   - bookkeeping of the server for one connection: the next transaction's
//     GTID (gtid_next, gtid_seq_no: set elsewhere, the other connection would
//     own it), the last insert id and the statement timestamp;
//   - Switchyard's own tracking settings, and autocommit, which routing
//     handles (reads on replicas always run with autocommit on).
//
// A read-only variable missing here is learned the first time a server
// refuses it (see learnReadOnly).
var untracked = map[string]bool{
	"statement_id":   true,
	"in_transaction": true,
	"last_gtid":      true,
	"warning_count":  true,
	"error_count":    true,
	"gtid_owned":     true,
	"external_user":  true,
	"proxy_user":     true,

	"gtid_next":      true,
	"gtid_seq_no":    true,
	"insert_id":      true,
	"last_insert_id": true,
	"identity":       true,
	"timestamp":      true,

	"autocommit":                     true,
	"session_track_system_variables": true,
	"session_track_schema":           true,
	"session_track_state_change":     true,
	"session_track_transaction_info": true,
	"session_track_gtids":            true,
}

// okLayout locates the fields of an OK packet (header 0x00, or 0xFE as a
// result-set terminator with CLIENT_DEPRECATE_EOF).
type okLayout struct {
	status int // offset of the status flags; 0 if the packet is too short
	rest   int // offset after the warnings
}

func parseOKLayout(p []byte) okLayout {
	i := 1
	for range 2 { // affected rows, last insert id
		_, _, n := lenEncInt(p[min(i, len(p)):])
		if n == 0 || i+n > len(p) {
			return okLayout{}
		}
		i += n
	}
	if i+4 > len(p) {
		return okLayout{}
	}
	return okLayout{status: i, rest: i + 4}
}

// readOK reads the whole OK packet whose frame header is f into the
// session's ok buffer.
func (s *session) readOK(bc *backendConn, f frame) ([]byte, error) {
	s.okBuf = grow(s.okBuf[:0], f.n)
	if _, err := io.ReadFull(bc.br, s.okBuf); err != nil {
		return nil, err
	}
	return s.okBuf, nil
}

// relayOK relays an OK packet from bc: it learns the session state changes
// it reports, fixes the transaction bits of the status for statements that
// ran away from the primary, and drops session-tracking data the client did
// not ask for. It returns the status flags.
func (s *session) relayOK(bc *backendConn, f frame) (uint16, error) {
	if f.n >= maxFrame {
		return 0, errBackendProtocol
	}
	p, err := s.readOK(bc, f)
	if err != nil {
		return 0, err
	}
	l := parseOKLayout(p)
	if l.status == 0 {
		return 0, errBackendProtocol
	}
	status := binary.LittleEndian.Uint16(p[l.status:])
	bc.status = status
	s.warnings = binary.LittleEndian.Uint16(p[l.status+2:])
	if affected, _, n := lenEncInt(p[1:]); n > 0 {
		if p[0] == 0x00 {
			s.dg.rowsAffected += affected
		}
		if id, _, _ := lenEncInt(p[1+n:]); id != 0 && bc == s.primary {
			s.insertID, bc.insertID = id, id
		}
	}
	var info []byte
	if l.rest < len(p) {
		// With CLIENT_SESSION_TRACK the message is length-encoded and the
		// state changes follow it.
		msg, _, n, err := lenEncString(p[l.rest:])
		if err == nil {
			info = msg
			if status&statusStateChanged != 0 {
				s.learnState(bc, p[l.rest+n:])
			}
		}
	}
	status = s.clientStatus(bc, status)
	binary.LittleEndian.PutUint16(p[l.status:], status)
	s.client.seq = f.seq
	if s.caps&mysql.CLIENT_SESSION_TRACK == 0 && l.rest < len(p) {
		// Rebuild in the pre-tracking format: the message runs to the end.
		out := append(s.out[:0], p[:l.rest]...)
		binary.LittleEndian.PutUint16(out[l.status:], status&^statusStateChanged)
		out = append(out, info...)
		s.out = out
		p = out
	}
	if err := s.client.writePacket(p); err != nil {
		return 0, clientGone{err}
	}
	return status, nil
}

// learnState applies the session-state-change records in b (from bc).
// Names and values are compared before they are copied: a statement whose
// answer reports only what Switchyard ignores (MySQL's statement_id comes
// with every one) allocates nothing.
func (s *session) learnState(bc *backendConn, b []byte) {
	data, _, _, err := lenEncString(b)
	if err != nil {
		return
	}
	for len(data) > 0 {
		typ := data[0]
		entry, _, n, err := lenEncString(data[1:])
		if err != nil {
			return
		}
		data = data[1+n:]
		switch typ {
		case trackSystemVariables:
			name, _, k, err := lenEncString(entry)
			if err != nil {
				continue
			}
			value, _, _, err := lenEncString(entry[k:])
			if err != nil {
				continue
			}
			s.noteVar(bc, name, value)
		case trackSchema:
			db, _, _, err := lenEncString(entry)
			if err == nil {
				s.db = string(db)
				bc.db = s.db
			}
		case trackGTIDs:
			// One byte of encoding specification (0: the GTID set as
			// text), then the set: with OWN_GTID, the one GTID committed.
			if len(entry) == 0 || entry[0] != 0 {
				continue
			}
			if set, _, _, err := lenEncString(entry[1:]); err == nil && len(set) > 0 {
				s.lastGTID = string(set)
			}
		}
	}
}

// noteVar records a session variable value reported by bc. name and value
// alias the packet.
func (s *session) noteVar(bc *backendConn, name, value []byte) {
	if string(name) == "last_gtid" {
		s.lastGTID = string(value)
		return
	}
	if untracked[string(name)] || s.srv.readOnlyVars.has(name) {
		return
	}
	if bc.readOnly && isTxReadOnlyVar(string(name)) {
		// Switchyard's own setting, which nothing sent to a replica should
		// be able to change (a procedure could; none is sent there). If
		// it changed, the connection is not safe for reads any more.
		if string(value) != "ON" && string(value) != "1" {
			bc.broken = true
			s.log.Error("a read-only replica connection was made writable; closing it", "backend", bc.backend.Name, "variable", string(name))
		}
		return
	}
	if v, ok := bc.vars[string(name)]; ok && v == string(value) {
		if sv, ok := s.vars[string(name)]; ok && sv == v {
			return // known already
		}
	}
	n, v := string(name), string(value)
	if bc.vars == nil {
		bc.vars = make(map[string]string)
	}
	bc.vars[n] = v
	if s.vars == nil {
		s.vars = make(map[string]string)
	}
	if old, ok := s.vars[n]; !ok || old != v {
		s.vars[n] = v
		s.varsGen++
	}
}

// clientStatus is the status to report for a statement that ran on bc.
// Transaction and autocommit bits always describe the session, which lives
// on the primary, except inside a read-only transaction on a replica.
func (s *session) clientStatus(bc *backendConn, status uint16) uint16 {
	if bc == s.primary || s.route.ReadOnlyTx {
		return status
	}
	const sessionBits = mysql.SERVER_STATUS_IN_TRANS | mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_STATUS_IN_TRANS_READONLY
	ps := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	if s.primary != nil {
		ps = s.primary.status
	}
	return status&^sessionBits | ps&sessionBits
}
