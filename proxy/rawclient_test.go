package proxy

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// rawClient speaks the protocol by hand, for commands no client library
// sends (cursor fetch, COM_CHANGE_USER, COM_SET_OPTION...) and for bad input.
type rawClient struct {
	t        *testing.T
	c        *pconn
	connID   uint32
	scramble []byte
	caps     uint32
}

const rawCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_CONNECT_WITH_DB

// dialRaw connects without logging in and reads the greeting.
func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	r := &rawClient{t: t, c: newPconn(nc, 16<<10), caps: rawCaps}
	p := r.read()
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	r.connID, r.scramble = g.threadID, g.scramble
	return r
}

// loginRaw connects and logs in with mysql_native_password.
func loginRaw(t *testing.T, addr, user, pass, db string, extraCaps uint32) *rawClient {
	t.Helper()
	r := dialRaw(t, addr)
	r.caps |= extraCaps
	r.send(r.handshakeResponse(user, pass, db))
	if p := r.read(); p[0] != 0x00 {
		t.Fatalf("login as %s: %v", user, parseErr(p))
	}
	return r
}

func (r *rawClient) handshakeResponse(user, pass, db string) []byte {
	out := binary.LittleEndian.AppendUint32(nil, r.caps)
	out = binary.LittleEndian.AppendUint32(out, 1<<24)
	out = append(out, mysql.DEFAULT_COLLATION_ID)
	out = append(out, make([]byte, 23)...)
	out = append(out, user...)
	out = append(out, 0)
	auth := mysql.CalcNativePassword(r.scramble, []byte(pass))
	out = append(out, byte(len(auth)))
	out = append(out, auth...)
	out = append(out, db...)
	out = append(out, 0)
	out = append(out, authNative...)
	return append(out, 0)
}

// send writes one packet with the next sequence id.
func (r *rawClient) send(p []byte) {
	r.t.Helper()
	if err := r.c.writePacket(p); err != nil {
		r.t.Fatal(err)
	}
	if err := r.c.flush(); err != nil {
		r.t.Fatal(err)
	}
}

// command starts a new command.
func (r *rawClient) command(p []byte) {
	r.c.seq = 0
	r.send(p)
}

// read reads one packet.
func (r *rawClient) read() []byte {
	r.t.Helper()
	p, err := r.c.readPacket(0)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return append([]byte(nil), p...)
}

// readUntilEOF reads packets up to and including an EOF or ERR, returning
// them all.
func (r *rawClient) readUntilEOF() [][]byte {
	r.t.Helper()
	var ps [][]byte
	for {
		p := r.read()
		ps = append(ps, p)
		if p[0] == 0xff || (p[0] == 0xfe && len(p) < 9) {
			return ps
		}
	}
}

// query runs a text query and returns every packet of a single result.
func (r *rawClient) query(q string) [][]byte {
	r.t.Helper()
	r.command(append([]byte{mysql.COM_QUERY}, q...))
	return r.readResult()
}

// expectErr reads one packet and checks it is an ERR with code.
func (r *rawClient) expectErr(code uint16) *sqlError {
	r.t.Helper()
	p := r.read()
	if p[0] != 0xff {
		r.t.Fatalf("got packet 0x%02x, want ERR %d", p[0], code)
	}
	e := parseErr(p)
	if e.code != code {
		r.t.Fatalf("got %v, want code %d", e, code)
	}
	return e
}

// expectClosed checks that the server closes the connection.
func (r *rawClient) expectClosed() {
	r.t.Helper()
	_ = r.c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := r.c.readPacket(0); err == nil {
		r.t.Fatalf("connection still open: got packet % x", p[:min(len(p), 16)])
	}
}

// terminatorStatus returns the status flags of an EOF or OK packet.
func terminatorStatus(caps uint32, p []byte) uint16 {
	if p[0] == 0xfe && caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		return binary.LittleEndian.Uint16(p[3:])
	}
	l := parseOKLayout(p)
	return binary.LittleEndian.Uint16(p[l.status:])
}
