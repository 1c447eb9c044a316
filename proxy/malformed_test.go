package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

// TestEmptyQuery sends COM_QUERY without a statement: the answer is the
// server's ER_EMPTY_QUERY, and the session goes on.
func TestEmptyQuery(t *testing.T) {
	p := startProxy(t, nil)
	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	before := holdingsOf(p)

	r.command([]byte{mysql.COM_QUERY})
	if e := r.expectErr(mysql.ER_EMPTY_QUERY); e.state != "42000" || e.message != "Query was empty" {
		t.Errorf("empty COM_QUERY: %v, want ERROR 1065 (42000): Query was empty", e)
	}
	if res := r.query("SELECT 1"); res[0][0] == 0xff {
		t.Fatalf("SELECT 1 after the empty query: %v", parseErr(res[0]))
	}

	db := p.db(t, appUser, appPass, "")
	_, err := db.Exec("")
	var me *driver.MySQLError
	if !errors.As(err, &me) || me.Number != mysql.ER_EMPTY_QUERY {
		t.Errorf(`go-sql-driver Exec(""): %v, want error 1065`, err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("go-sql-driver Ping after the empty query: %v", err)
	}
	if n := p.panics.Load(); n != 0 {
		t.Errorf("%d session panics", n)
	}
	db.Close()
	settledAt(t, p, before)
}

// TestShortCommands sends commands too short for their fixed fields: each
// gets ER_MALFORMED_PACKET naming it, from Switchyard (the only backend is
// unreachable by then), and the session goes on.
func TestShortCommands(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.ReleaseIdle = time.Millisecond })
	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	before := holdingsOf(p)

	// Once the session holds no connection, the backends give way to one
	// nothing listens on: any answer that needs a server is error codeConnRefused.
	waitIdlePools(t, p)
	o := *p.opts()
	o.Backends = []*Backend{{Name: "gone", Addr: deadAddr(t), Role: "primary"}}
	if err := p.Update(o); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    []byte
	}{
		{"COM_INIT_DB", []byte{mysql.COM_INIT_DB}},
		{"COM_FIELD_LIST", []byte{mysql.COM_FIELD_LIST}},
		{"COM_FIELD_LIST", []byte{mysql.COM_FIELD_LIST, 't'}},
		{"COM_SET_OPTION", []byte{mysql.COM_SET_OPTION, 0}},
		{"COM_PROCESS_KILL", []byte{mysql.COM_PROCESS_KILL, 1}},
		{"COM_STMT_EXECUTE", []byte{mysql.COM_STMT_EXECUTE}},
		{"COM_STMT_EXECUTE", []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0}},
		{"COM_STMT_FETCH", []byte{mysql.COM_STMT_FETCH, 1, 0, 0, 0}},
		{"COM_STMT_CLOSE", []byte{mysql.COM_STMT_CLOSE, 1}},
		{"COM_STMT_RESET", []byte{mysql.COM_STMT_RESET, 1, 0}},
		{"COM_STMT_SEND_LONG_DATA", []byte{mysql.COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		r.command(c.p)
		e := r.expectErr(mysql.ER_MALFORMED_PACKET)
		if !strings.Contains(e.message, c.name) {
			t.Errorf("% x: message %q does not name %s", c.p, e.message, c.name)
		}
	}
	r.command([]byte{mysql.COM_QUERY})
	r.expectErr(mysql.ER_EMPTY_QUERY)
	r.command([]byte{mysql.COM_PING})
	if ok := r.read(); ok[0] != 0x00 {
		t.Fatalf("COM_PING after malformed commands: %v", parseErr(ok))
	}
	r.command(append([]byte{mysql.COM_QUERY}, "SELECT 1"...))
	r.expectErr(codeConnRefused) // the commands above reached no server

	// A short COM_CHANGE_USER ends the session, as a failed change does.
	r.command([]byte{mysql.COM_CHANGE_USER})
	if e := r.expectErr(mysql.ER_MALFORMED_PACKET); !strings.Contains(e.message, "COM_CHANGE_USER") {
		t.Errorf("short COM_CHANGE_USER: message %q does not name it", e.message)
	}
	r.expectClosed()
	if n := p.panics.Load(); n != 0 {
		t.Errorf("%d session panics", n)
	}
	before.inUse = []int{0} // one backend now, and nothing holds it
	settledAt(t, p, before)
}

// waitIdlePools waits until no session holds a backend connection.
func waitIdlePools(t *testing.T, p *testProxy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := 0
		for _, b := range p.Backends() {
			busy += b.InUse
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions still hold %d backend connections", busy)
		}
		waitTick()
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FuzzCommand feeds one arbitrary command payload to a logged-in session
// whose only backend is unreachable: no payload may panic the session or
// hang it, and whatever it answers must be framed as an answer (sequence
// ids from 1).
func FuzzCommand(f *testing.F) {
	for _, s := range trafficSeeds(f) {
		for _, cmd := range commandsIn(s) {
			f.Add(cmd)
		}
	}
	for _, c := range []byte{mysql.COM_QUERY, mysql.COM_INIT_DB, mysql.COM_FIELD_LIST, mysql.COM_CHANGE_USER,
		mysql.COM_SET_OPTION, mysql.COM_PROCESS_KILL, mysql.COM_STMT_PREPARE, mysql.COM_STMT_EXECUTE,
		mysql.COM_STMT_FETCH, mysql.COM_STMT_CLOSE, mysql.COM_STMT_RESET, mysql.COM_STMT_SEND_LONG_DATA} {
		f.Add([]byte{c})
		f.Add([]byte{c, 1, 0, 0, 0})
	}
	f.Add([]byte("\x03KILL QUERY 1"))
	srv, err := New(Options{
		Users:    []User{NewUser(appUser, appPass)},
		Backends: []*Backend{{Name: "dead", Addr: deadAddr(f), Role: "primary"}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		RSAKey:   fuzzKey(f),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	f.Fuzz(func(t *testing.T, payload []byte) {
		var in bytes.Buffer
		w := &pconn{bw: bufio.NewWriter(&in)}
		_ = w.writePacket(payload)
		_ = w.flush()
		var out bytes.Buffer
		sess := newSession(srv, 1, &bytesConn{r: bytes.NewReader(in.Bytes()), w: &out})
		sess.cred = &credential{user: appUser, password: appPass}
		sess.user, _ = srv.user(appUser)
		sess.policy = srv.policyFor(sess.user)
		done := make(chan any)
		go func() {
			defer func() { done <- recover() }()
			_ = sess.command()
		}()
		select {
		case r := <-done:
			if r != nil {
				t.Fatalf("command % x panicked: %v", payload[:min(len(payload), 32)], r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("command % x did not end", payload[:min(len(payload), 32)])
		}
		sess.close()
		c := newPconn(&bytesConn{r: bytes.NewReader(out.Bytes()), w: io.Discard}, 64)
		c.seq = 1
		for {
			if _, err := c.readPacket(0); err != nil {
				if err != io.EOF {
					t.Fatalf("answer to % x: %v", payload[:min(len(payload), 32)], err)
				}
				break
			}
		}
	})
}

// commandsIn returns the commands of a recorded client stream: the packets
// that start at sequence id 0, after the handshake.
func commandsIn(stream []byte) [][]byte {
	var cmds [][]byte
	for len(stream) >= 4 {
		n := int(stream[0]) | int(stream[1])<<8 | int(stream[2])<<16
		if len(stream) < 4+n || n == maxFrame {
			break
		}
		if stream[3] == 0 && n > 0 {
			cmds = append(cmds, bytes.Clone(stream[4:4+n]))
		}
		stream = stream[4+n:]
	}
	return cmds
}
