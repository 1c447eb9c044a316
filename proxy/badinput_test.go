package proxy

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestBadInput sends each kind of bad input on its own connection and checks
// the clean error (or close), and that a bystander session keeps working.
func TestBadInput(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.MaxPacketSize = 1 << 20
		o.HandshakeTimeout = time.Second // every login below must also finish within it
	})
	bystander := loginRaw(t, p.addr, appUser, appPass, "", 0)
	check := func(t *testing.T) {
		t.Helper()
		if res := bystander.query("SELECT 1"); res[0][0] == 0xff {
			t.Fatalf("bystander: %v", parseErr(res[0]))
		}
	}

	t.Run("empty command", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		r.command(nil)
		r.expectErr(mysql.ER_MALFORMED_PACKET)
		if res := r.query("SELECT 1"); res[0][0] == 0xff {
			t.Fatal("session unusable after an empty command")
		}
		check(t)
	})
	t.Run("unknown command", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		for _, c := range []byte{mysql.COM_BINLOG_DUMP, mysql.COM_SHUTDOWN, 0x20, 0xee} {
			r.command([]byte{c, 1, 2, 3})
			e := r.expectErr(mysql.ER_UNKNOWN_COM_ERROR)
			if e.state != "08S01" {
				t.Errorf("SQLSTATE %s", e.state)
			}
		}
		check(t)
	})
	t.Run("oversized packet", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		r.command(append([]byte{mysql.COM_QUERY}, bytes.Repeat([]byte("x"), 2<<20)...))
		r.expectErr(mysql.ER_NET_PACKET_TOO_LARGE)
		r.expectClosed()
		check(t)
	})
	t.Run("bad sequence id", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		r.c.seq = 5
		r.send(append([]byte{mysql.COM_QUERY}, "SELECT 1"...))
		r.expectErr(mysql.ER_NET_PACKETS_OUT_OF_ORDER)
		r.expectClosed()
		check(t)
	})
	t.Run("truncated packet", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		// A header announcing 100 bytes, then 3 bytes and a close.
		r.c.nc.Write([]byte{100, 0, 0, 0, mysql.COM_QUERY, 'S', 'E'})
		r.c.nc.(*net.TCPConn).CloseWrite()
		r.expectClosed()
		check(t)
	})
	t.Run("malformed statement ids", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		r.command([]byte{mysql.COM_STMT_EXECUTE, 1})
		r.expectErr(mysql.ER_MALFORMED_PACKET)
		r.command([]byte{mysql.COM_STMT_EXECUTE, 9, 9, 0, 0, 0, 1, 0, 0, 0})
		r.expectErr(mysql.ER_UNKNOWN_STMT_HANDLER)
		r.command([]byte{mysql.COM_STMT_CLOSE, 9, 9, 0, 0}) // no answer, as on a server
		if res := r.query("SELECT 1"); res[0][0] == 0xff {
			t.Fatal("session unusable")
		}
		check(t)
	})
	t.Run("garbage handshake", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		r.send([]byte{1, 2, 3})
		r.expectErr(mysql.ER_HANDSHAKE_ERROR)
		r.expectClosed()
		check(t)
	})
	t.Run("handshake stall", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		e := r.expectErr(mysql.ER_HANDSHAKE_ERROR)
		if !bytes.Contains([]byte(e.message), []byte("within")) {
			t.Errorf("message %q", e.message)
		}
		r.expectClosed()
		check(t)
	})
	t.Run("wrong password", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		r.send(r.handshakeResponse(appUser, "wrong", ""))
		e := r.expectErr(mysql.ER_ACCESS_DENIED_ERROR)
		if e.state != "28000" || !bytes.Contains([]byte(e.message), []byte("'app'@'127.0.0.1'")) {
			t.Errorf("got %v", e)
		}
		r.expectClosed()
		check(t)
	})
	t.Run("unknown user", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		r.send(r.handshakeResponse("nobody", "x", ""))
		r.expectErr(mysql.ER_ACCESS_DENIED_ERROR)
		check(t)
	})
	t.Run("unknown database", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		r.send(r.handshakeResponse(appUser, appPass, "no_such_db"))
		r.expectErr(mysql.ER_BAD_DB_ERROR)
		check(t)
	})
	t.Run("tls requested but off", func(t *testing.T) {
		r := dialRaw(t, p.addr)
		req := make([]byte, 32)
		req[0], req[1] = 0, 0x0a // CLIENT_SSL | CLIENT_PROTOCOL_41 (bits 11, 9)
		req[1] = 0x0a
		r.send(req)
		r.expectErr(mysql.ER_HANDSHAKE_ERROR)
		check(t)
	})
}

// TestPanicRecovered checks that a panic ends only its own session, with an
// error packet, and is counted.
func TestPanicRecovered(t *testing.T) {
	p := startProxy(t, nil)
	testHookDispatch = func(b []byte) {
		if bytes.Contains(b, []byte("trigger-panic")) {
			panic("test panic")
		}
	}
	defer func() { testHookDispatch = nil }()
	other := loginRaw(t, p.addr, appUser, appPass, "", 0)
	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	r.command(append([]byte{mysql.COM_QUERY}, "SELECT 'trigger-panic'"...))
	r.expectErr(mysql.ER_UNKNOWN_ERROR)
	r.expectClosed()
	if n := p.panics.Load(); n != 1 {
		t.Errorf("panics = %d", n)
	}
	if res := other.query("SELECT 1"); res[0][0] == 0xff {
		t.Fatal("other session broken")
	}
}

// TestBackendDown gives a clear error naming the unreachable primary.
func TestBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, func(o *Options) {
		o.Backends = []*Backend{{Name: "gone", Addr: dead, Role: "primary"}}
	})
	r := dialRaw(t, p.addr)
	r.send(r.handshakeResponse(appUser, appPass, ""))
	e := r.expectErr(codeConnRefused)
	if !bytes.Contains([]byte(e.message), []byte(dead)) || !bytes.Contains([]byte(e.message), []byte("refused")) {
		t.Errorf("message %q does not name the primary and the cause", e.message)
	}
}
