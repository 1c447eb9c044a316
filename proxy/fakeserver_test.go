package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// A scripted MySQL server for unit tests: it speaks enough of the protocol
// for Switchyard to log in and run commands, answers each command as the
// test scripts it, and records what it received. The protocol code here is
// written from the MySQL documentation, not from Switchyard's own (it only
// shares go-mysql's constants), so that a misreading in one is not repeated
// in the other.
// https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html

// fakeServer is a MySQL server on a loopback port. Logins as appUser or
// otherUser with their passwords succeed (mysql_native_password); every
// command goes to the script, and to the default answers (defaultReply)
// when the script returns nil. It closes when the test ends.
type fakeServer struct {
	t    testing.TB
	ln   net.Listener
	addr string

	done chan struct{} // closed by close: hanging connections give up
	wg   sync.WaitGroup

	mu       sync.Mutex
	script   fakeScript
	users    map[string]string    // name -> password
	conns    map[uint32]*fakeConn // open, by connection id
	nextID   uint32
	logins   int
	received []fakeCommand
}

// fakeScript answers one command on connection c. It runs on c's goroutine
// (commands of one connection are answered in order) and may block, as long
// as it gives up when c.srv.done closes. nil means the default answer.
type fakeScript func(c *fakeConn, cmd fakeCommand) fakeReply

// fakeCommand is one command the server received.
type fakeCommand struct {
	conn uint32 // connection id, as sent in the greeting
	cmd  byte   // mysql.COM_*
	// text is the query of COM_QUERY, the schema of COM_INIT_DB and the SQL
	// of COM_STMT_PREPARE, and of the statement a COM_STMT_* names.
	text string
	stmt uint32 // statement id of COM_STMT_*, as this server handed it out
	raw  []byte // the whole payload
}

// fakeVersion is what fake servers call themselves in their greeting.
const fakeVersion = "10.11.99-MariaDB-fake"

// startFake starts a fake server answering with script (nil: defaults only).
func startFake(t testing.TB, script fakeScript) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{
		t: t, ln: ln, addr: ln.Addr().String(),
		users:  map[string]string{appUser: appPass, otherUser: otherPass},
		done:   make(chan struct{}),
		script: script,
		conns:  make(map[uint32]*fakeConn),
	}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

// setPassword changes the password the server expects from user.
func (f *fakeServer) setPassword(user, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[user] = password
}

// setScript replaces the script for the commands that arrive from now on.
func (f *fakeServer) setScript(script fakeScript) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = script
}

func (f *fakeServer) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.mu.Lock()
		f.nextID++
		c := &fakeConn{srv: f, id: f.nextID, nc: nc, br: bufio.NewReader(nc), stmts: make(map[uint32]string)}
		f.conns[c.id] = c
		f.wg.Add(1)
		f.mu.Unlock()
		go c.serve()
	}
}

// close stops the server: connections close, hanging scripts give up, and
// close waits for every goroutine of the server. Later calls do nothing.
func (f *fakeServer) close() {
	f.ln.Close()
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.mu.Lock()
	for _, c := range f.conns {
		c.nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// disconnect closes the server's side of connection id, as a server does
// when the connection is killed or times out.
func (f *fakeServer) disconnect(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.conns[id]; c != nil {
		c.nc.Close()
	}
}

// commands returns what the server received so far, in order.
func (f *fakeServer) commands() []fakeCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCommand(nil), f.received...)
}

// queries returns the text of every COM_QUERY received so far, in order.
func (f *fakeServer) queries() []string {
	var out []string
	for _, c := range f.commands() {
		if c.cmd == mysql.COM_QUERY {
			out = append(out, c.text)
		}
	}
	return out
}

// received reports whether a COM_QUERY with exactly this text arrived.
func (f *fakeServer) receivedQuery(q string) bool {
	for _, got := range f.queries() {
		if got == q {
			return true
		}
	}
	return false
}

// loginCount returns how many logins succeeded.
func (f *fakeServer) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

// openConns returns how many connections are open on the server's side.
func (f *fakeServer) openConns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// fakeConn is one client connection of a fakeServer, served by one
// goroutine: scripts may read its fields.
type fakeConn struct {
	srv  *fakeServer
	id   uint32
	nc   net.Conn
	br   *bufio.Reader
	caps uint32 // the capabilities the client asked for
	user string
	db   string

	stmts    map[uint32]string // prepared statements by id: their SQL
	lastStmt uint32
	binary   bool // the command being answered is COM_STMT_EXECUTE: binary rows
}

// fakeServerCaps are the capabilities the fake offers: what MariaDB offers,
// minus compression and TLS.
const fakeServerCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_IGNORE_SPACE |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF

// fakeIdle is the status of a session outside a transaction.
const fakeIdle = mysql.SERVER_STATUS_AUTOCOMMIT

func (c *fakeConn) serve() {
	defer c.srv.wg.Done()
	defer func() {
		c.nc.Close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c.id)
		c.srv.mu.Unlock()
	}()
	if !c.login() {
		return
	}
	for {
		p, seq, err := c.readPacket()
		if err != nil {
			return // the client closed, or close did
		}
		if seq != 0 {
			c.srv.t.Errorf("fake server: command 0x%02x arrived with sequence id %d, want 0", p[0], seq)
			return
		}
		if len(p) == 0 || p[0] == mysql.COM_QUIT {
			return
		}
		c.binary = p[0] == mysql.COM_STMT_EXECUTE
		if !c.answer(c.command(p)) {
			return
		}
	}
}

// login runs the server side of the connection phase with
// mysql_native_password and reports whether the client got in.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
func (c *fakeConn) login() bool {
	scramble := []byte("abcdefghijklmnopqrst") // 20 bytes, as MySQL's
	if err := c.write(fakeGreeting(fakeVersion, c.id, scramble), 0); err != nil {
		return false
	}
	p, _, err := c.readPacket()
	if err != nil {
		return false // a client that only wanted the greeting
	}
	caps, user, auth, db, ok := parseFakeLogin(p)
	if !ok {
		_ = c.reply(fakeErr{mysql.ER_HANDSHAKE_ERROR, "08S01", "Bad handshake"}, 2)
		return false
	}
	c.caps, c.user, c.db = caps, user, db
	c.srv.mu.Lock()
	pass, known := c.srv.users[user]
	c.srv.mu.Unlock()
	want := []byte(nil)
	if pass != "" {
		want = mysql.CalcNativePassword(scramble, []byte(pass))
	}
	if !known || !bytes.Equal(auth, want) {
		using := "NO"
		if len(auth) > 0 {
			using = "YES"
		}
		_ = c.reply(fakeErr{mysql.ER_ACCESS_DENIED_ERROR, "28000",
			fmt.Sprintf("Access denied for user '%s'@'localhost' (using password: %s)", user, using)}, 2)
		return false
	}
	c.srv.mu.Lock()
	c.srv.logins++
	c.srv.mu.Unlock()
	return c.reply(fakeOK{status: fakeIdle}, 2) == nil
}

// fakeGreeting builds Protocol::HandshakeV10.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
func fakeGreeting(version string, id uint32, scramble []byte) []byte {
	b := []byte{10}
	b = append(b, version...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = append(b, scramble[:8]...)
	b = append(b, 0) // filler
	b = binary.LittleEndian.AppendUint16(b, uint16(fakeServerCaps&0xffff))
	b = append(b, 33) // utf8mb3_general_ci
	b = binary.LittleEndian.AppendUint16(b, fakeIdle)
	b = binary.LittleEndian.AppendUint16(b, uint16(fakeServerCaps>>16))
	b = append(b, byte(len(scramble)+1))
	b = append(b, make([]byte, 10)...) // reserved
	b = append(b, scramble[8:]...)
	b = append(b, 0)
	b = append(b, mysql.AUTH_NATIVE_PASSWORD...)
	return append(b, 0)
}

// parseFakeLogin reads Protocol::HandshakeResponse41.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
func parseFakeLogin(p []byte) (caps uint32, user string, auth []byte, db string, ok bool) {
	if len(p) < 32 {
		return 0, "", nil, "", false
	}
	caps = binary.LittleEndian.Uint32(p)
	rest := p[32:] // capabilities, max packet size, collation, 23 bytes of filler
	cstring := func() (string, bool) {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return "", false
		}
		s := string(rest[:i])
		rest = rest[i+1:]
		return s, true
	}
	if user, ok = cstring(); !ok {
		return
	}
	switch {
	case caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		n, _, k := mysql.LengthEncodedInt(rest)
		if k == 0 || uint64(len(rest)-k) < n {
			return 0, "", nil, "", false
		}
		auth, rest = rest[k:k+int(n)], rest[k+int(n):]
	case len(rest) > 0 && int(rest[0]) < len(rest):
		auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	default:
		return 0, "", nil, "", false
	}
	if caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		if db, ok = cstring(); !ok {
			return
		}
	}
	return caps, user, bytes.Clone(auth), db, true
}

// command records the command in p and returns the answer to send.
func (c *fakeConn) command(p []byte) fakeReply {
	cmd := fakeCommand{conn: c.id, cmd: p[0], raw: bytes.Clone(p)}
	switch p[0] {
	case mysql.COM_QUERY, mysql.COM_INIT_DB, mysql.COM_STMT_PREPARE:
		cmd.text = string(p[1:])
	case mysql.COM_STMT_EXECUTE, mysql.COM_STMT_CLOSE, mysql.COM_STMT_RESET, mysql.COM_STMT_SEND_LONG_DATA, mysql.COM_STMT_FETCH:
		if len(p) >= 5 {
			cmd.stmt = binary.LittleEndian.Uint32(p[1:])
			cmd.text = c.stmts[cmd.stmt]
		}
	}
	c.srv.mu.Lock()
	c.srv.received = append(c.srv.received, cmd)
	script := c.srv.script
	c.srv.mu.Unlock()

	var r fakeReply
	if script != nil {
		r = script(c, cmd)
	}
	if r == nil {
		r = c.defaultReply(cmd)
	}
	// What the server remembers of the command once it succeeded.
	switch cmd.cmd {
	case mysql.COM_INIT_DB:
		if _, failed := r.(fakeErr); !failed {
			c.db = cmd.text
		}
	case mysql.COM_RESET_CONNECTION:
		clear(c.stmts)
	case mysql.COM_STMT_CLOSE:
		delete(c.stmts, cmd.stmt)
	case mysql.COM_STMT_PREPARE:
		if pr, ok := r.(fakePrepared); ok {
			c.lastStmt++
			pr.id = c.lastStmt
			c.stmts[pr.id] = cmd.text
			r = pr
		}
	}
	return r
}

// defaultReply answers what Switchyard sends on its own, as MariaDB would:
// session setup, the sql_mode and writability queries, GTID positions, USE,
// reset and ping. Other queries get an error naming them, so that a test
// scripts every answer it relies on.
func (c *fakeConn) defaultReply(cmd fakeCommand) fakeReply {
	one := func(name, value string) fakeReply {
		return fakeRows{columns: []string{name}, rows: [][]any{{value}}, status: fakeIdle}
	}
	switch cmd.cmd {
	case mysql.COM_QUERY:
		q := cmd.text
		switch {
		case strings.HasPrefix(q, "SET "), q == "COMMIT", q == "ROLLBACK":
			return fakeOK{status: fakeIdle}
		case q == "SELECT @@SESSION.sql_mode":
			return one("@@SESSION.sql_mode", "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION")
		case strings.Contains(q, "@@GLOBAL.read_only"):
			return one("writable", "0") // a read-only replica
		case q == "SELECT @@last_gtid", q == "SELECT @@GLOBAL.gtid_binlog_pos":
			return one(q[len("SELECT "):], "")
		case strings.HasPrefix(q, "SELECT MASTER_GTID_WAIT("):
			return one("MASTER_GTID_WAIT", "0")
		}
		return fakeErr{mysql.ER_UNKNOWN_ERROR, "HY000", "fake server: no answer scripted for " + q}
	case mysql.COM_INIT_DB:
		return fakeOK{status: fakeIdle, schema: cmd.text}
	case mysql.COM_PING, mysql.COM_RESET_CONNECTION:
		return fakeOK{status: fakeIdle}
	case mysql.COM_STMT_EXECUTE, mysql.COM_STMT_RESET:
		if cmd.text == "" {
			return fakeErr{mysql.ER_UNKNOWN_STMT_HANDLER, "HY000", fmt.Sprintf("Unknown prepared statement handler (%d)", cmd.stmt)}
		}
		return fakeOK{status: fakeIdle}
	case mysql.COM_STMT_PREPARE:
		return fakePrepared{params: uint16(strings.Count(cmd.text, "?"))}
	case mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		return fakeNoReply{}
	}
	return fakeErr{mysql.ER_UNKNOWN_COM_ERROR, "08S01", "Unknown command"}
}

// answer sends r and reports whether the connection stays open.
func (c *fakeConn) answer(r fakeReply) bool {
	switch r := r.(type) {
	case fakeNoReply:
		return true
	case fakeHang:
		// Read and drop whatever comes until the client or close hangs up.
		_, _ = io.Copy(io.Discard, c.br)
		return false
	case fakeCut:
		e := c.encode(r.reply, 1)
		_, _ = c.nc.Write(e.out[:e.cutAt(r.packets, r.partial)])
		return false
	}
	return c.reply(r, 1) == nil
}

// reply sends r starting at sequence id seq.
func (c *fakeConn) reply(r fakeReply, seq uint8) error {
	_, err := c.nc.Write(c.encode(r, seq).out)
	return err
}

func (c *fakeConn) encode(r fakeReply, seq uint8) *fakeEncoder {
	e := &fakeEncoder{caps: c.caps, binary: c.binary, seq: seq}
	if r != nil {
		r.encode(e)
	}
	return e
}

// write sends one packet with sequence id seq.
func (c *fakeConn) write(p []byte, seq uint8) error {
	e := &fakeEncoder{seq: seq}
	e.packet(p)
	_, err := c.nc.Write(e.out)
	return err
}

// readPacket reads one packet, joining split frames, and returns the
// sequence id of its first frame.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
func (c *fakeConn) readPacket() ([]byte, uint8, error) {
	var p []byte
	var first uint8
	for i := 0; ; i++ {
		var h [4]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, 0, err
		}
		n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
		if i == 0 {
			first = h[3]
		}
		start := len(p)
		p = append(p, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, p[start:]); err != nil {
			return nil, 0, err
		}
		if n < fakeMaxFrame {
			return p, first, nil
		}
	}
}
