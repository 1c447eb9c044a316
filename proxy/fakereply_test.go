package proxy

import (
	"encoding/binary"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The answers a fakeServer script can give. Each encodes itself as the
// packets a server sends, shaped by the capabilities the client asked for
// (classic EOF packets or OK terminators, session-state data or not).

// fakeReply is a scripted answer to one command.
type fakeReply interface {
	encode(e *fakeEncoder)
}

// fakeOK is an OK packet. status is sent as is (fakeIdle outside a
// transaction); SERVER_SESSION_STATE_CHANGED is added when vars or schema
// report changes and the client tracks session state.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html
type fakeOK struct {
	affected, insertID uint64
	status, warnings   uint16
	info               string
	vars               []fakeVar // system variables the command changed, in order
	schema             string    // the schema it changed to, if any
}

// fakeVar is one system variable reported changed in an OK packet.
type fakeVar struct{ name, value string }

// fakeErr is an ERR packet.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html
type fakeErr struct {
	code    uint16
	state   string // SQLSTATE, 5 characters
	message string
}

// fakeRows is a result set of string columns. Each value is nil (NULL) or
// printed with fmt.Sprint. Rows go in the text protocol, or in the binary
// protocol when they answer COM_STMT_EXECUTE. status ends the result (the
// EOF or OK terminator).
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset.html
type fakeRows struct {
	columns  []string
	rows     [][]any
	status   uint16
	warnings uint16
}

// fakeMulti is several results answering one command (a multi-statement or
// a CALL): each but the last says more follow.
type fakeMulti []fakeReply

// fakePrepared answers COM_STMT_PREPARE: the connection hands out the id.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_prepare.html
type fakePrepared struct {
	id              uint32
	params, columns uint16
}

// Answers that are not packets, or not only: the connection acts on them.
type (
	// fakeNoReply sends nothing: the answer to COM_STMT_CLOSE.
	fakeNoReply struct{}
	// fakeHang never answers; the connection stays open until the client
	// closes it or the server stops.
	fakeHang struct{}
	// fakeCut sends the first packets of reply whole, with partial half
	// of the next one too, and closes the connection: a server dying
	// mid-answer.
	fakeCut struct {
		reply   fakeReply
		packets int
		partial bool
	}
)

func (fakeNoReply) encode(*fakeEncoder) {}
func (fakeHang) encode(*fakeEncoder)    {}
func (fakeCut) encode(*fakeEncoder)     {}

// fakeMaxFrame is the largest frame payload: longer packets are split.
const fakeMaxFrame = 1<<24 - 1

// fakeEncoder frames the packets of one answer.
type fakeEncoder struct {
	caps   uint32 // the client's
	binary bool   // rows go in the binary protocol
	more   bool   // more results follow the one being encoded
	seq    uint8  // sequence id of the next frame
	out    []byte
	starts []int // where each packet begins in out
}

// packet appends payload as one packet, split into frames as needed.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
func (e *fakeEncoder) packet(payload []byte) {
	e.starts = append(e.starts, len(e.out))
	for {
		n := min(len(payload), fakeMaxFrame)
		e.out = append(e.out, byte(n), byte(n>>8), byte(n>>16), e.seq)
		e.out = append(e.out, payload[:n]...)
		e.seq++
		payload = payload[n:]
		if n < fakeMaxFrame {
			return
		}
	}
}

// cutAt returns how much of out to send to stop after packet i-1, or
// with partial inside packet i: after its header and half its payload (half
// the header when the payload is tiny). All of out when there is no packet i.
func (e *fakeEncoder) cutAt(i int, partial bool) int {
	if i >= len(e.starts) {
		return len(e.out)
	}
	start := e.starts[i]
	n := int(e.out[start]) | int(e.out[start+1])<<8 | int(e.out[start+2])<<16
	switch {
	case !partial:
		return start
	case n < 2:
		return start + 2
	}
	return start + 4 + n/2
}

func (e *fakeEncoder) status(s uint16) uint16 {
	if e.more {
		s |= mysql.SERVER_MORE_RESULTS_EXISTS
	}
	return s
}

func (r fakeOK) encode(e *fakeEncoder) { e.packet(r.payload(e, 0x00)) }

// payload builds the OK packet with header 0x00, or 0xFE as the terminator
// of a result set with CLIENT_DEPRECATE_EOF.
func (r fakeOK) payload(e *fakeEncoder, header byte) []byte {
	status := e.status(r.status)
	tracking := e.caps&mysql.CLIENT_SESSION_TRACK != 0
	var state []byte
	if tracking {
		for _, v := range r.vars {
			entry := appendLenenc(appendLenenc(nil, v.name), v.value)
			state = append(state, mysql.SESSION_TRACK_SYSTEM_VARIABLES)
			state = appendLenenc(state, string(entry))
		}
		if r.schema != "" {
			state = append(state, mysql.SESSION_TRACK_SCHEMA)
			state = appendLenenc(state, string(appendLenenc(nil, r.schema)))
		}
	}
	if len(state) > 0 {
		status |= mysql.SERVER_SESSION_STATE_CHANGED
	}
	b := []byte{header}
	b = mysql.AppendLengthEncodedInteger(b, r.affected)
	b = mysql.AppendLengthEncodedInteger(b, r.insertID)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, r.warnings)
	switch {
	case !tracking:
		b = append(b, r.info...)
	case len(state) > 0:
		b = appendLenenc(b, r.info)
		b = appendLenenc(b, string(state))
	case r.info != "":
		// Servers leave the message out when it is empty and nothing
		// changed; the documentation allows both.
		b = appendLenenc(b, r.info)
	}
	return b
}

func (r fakeErr) encode(e *fakeEncoder) {
	b := []byte{0xff}
	b = binary.LittleEndian.AppendUint16(b, r.code)
	b = append(b, '#')
	b = append(b, r.state...)
	e.packet(append(b, r.message...))
}

func (r fakeRows) encode(e *fakeEncoder) {
	e.packet(mysql.AppendLengthEncodedInteger(nil, uint64(len(r.columns))))
	for _, name := range r.columns {
		e.packet(fakeColumn(name))
	}
	classicEOF := e.caps&mysql.CLIENT_DEPRECATE_EOF == 0
	if classicEOF {
		e.packet(fakeEOF(0, e.status(r.status)))
	}
	for _, row := range r.rows {
		if e.binary {
			e.packet(fakeBinaryRow(row))
		} else {
			e.packet(fakeTextRow(row))
		}
	}
	if classicEOF {
		e.packet(fakeEOF(r.warnings, e.status(r.status)))
	} else {
		e.packet(fakeOK{status: r.status, warnings: r.warnings}.payload(e, 0xfe))
	}
}

func (m fakeMulti) encode(e *fakeEncoder) {
	for i, r := range m {
		e.more = i < len(m)-1
		r.encode(e)
	}
	e.more = false
}

func (r fakePrepared) encode(e *fakeEncoder) {
	b := []byte{0x00}
	b = binary.LittleEndian.AppendUint32(b, r.id)
	b = binary.LittleEndian.AppendUint16(b, r.columns)
	b = binary.LittleEndian.AppendUint16(b, r.params)
	b = append(b, 0, 0, 0) // reserved, warning count
	e.packet(b)
	for _, n := range []uint16{r.params, r.columns} {
		if n == 0 {
			continue
		}
		for i := range n {
			e.packet(fakeColumn(fmt.Sprintf("c%d", i)))
		}
		if e.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			e.packet(fakeEOF(0, fakeIdle))
		}
	}
}

// fakeColumn is a Protocol::ColumnDefinition41 for a VARCHAR column.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_column_definition.html
func fakeColumn(name string) []byte {
	var b []byte
	for _, s := range []string{"def", "", "", "", name, name} { // catalog, schema, table, org_table, name, org_name
		b = appendLenenc(b, s)
	}
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, 33)   // utf8mb3_general_ci
	b = binary.LittleEndian.AppendUint32(b, 1024) // column length
	b = append(b, mysql.MYSQL_TYPE_VAR_STRING)
	b = binary.LittleEndian.AppendUint16(b, 0) // flags
	return append(b, 0, 0, 0)                  // decimals, filler
}

// fakeEOF is an EOF packet.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_eof_packet.html
func fakeEOF(warnings, status uint16) []byte {
	b := []byte{0xfe}
	b = binary.LittleEndian.AppendUint16(b, warnings)
	return binary.LittleEndian.AppendUint16(b, status)
}

// fakeTextRow is a row in the text protocol: NULL is 0xFB.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_row.html
func fakeTextRow(row []any) []byte {
	var b []byte
	for _, v := range row {
		if v == nil {
			b = append(b, 0xfb)
			continue
		}
		b = appendLenenc(b, fmt.Sprint(v))
	}
	return b
}

// fakeBinaryRow is a row in the binary protocol: a NULL bitmap (offset 2),
// then the values that are not NULL, strings as length-encoded strings.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html
func fakeBinaryRow(row []any) []byte {
	nulls := make([]byte, (len(row)+7+2)/8)
	var values []byte
	for i, v := range row {
		if v == nil {
			nulls[(i+2)/8] |= 1 << ((i + 2) % 8)
			continue
		}
		values = appendLenenc(values, fmt.Sprint(v))
	}
	b := append([]byte{0x00}, nulls...)
	return append(b, values...)
}

// appendLenenc appends s as a length-encoded string.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_dt_strings.html
func appendLenenc(b []byte, s string) []byte {
	b = mysql.AppendLengthEncodedInteger(b, uint64(len(s)))
	return append(b, s...)
}
