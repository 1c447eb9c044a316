package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// trafficSeeds returns client->server byte streams recorded from real
// clients (mariadb CLI, PyMySQL, mysqlclient, go-sql-driver) talking to
// Switchyard.
func trafficSeeds(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/traffic/*.bin")
	if len(files) == 0 {
		t.Fatal("no recorded traffic in testdata/traffic")
	}
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// bytesConn is a net.Conn that reads a fixed input and discards writes.
type bytesConn struct {
	r *bytes.Reader
	w io.Writer
}

func (c *bytesConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *bytesConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *bytesConn) Close() error                { return nil }
func (c *bytesConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6033} }
func (c *bytesConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *bytesConn) SetDeadline(t time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzDecode feeds arbitrary bytes to every decoder of client input: packet
// framing, the handshake response, COM_CHANGE_USER and KILL.
func FuzzDecode(f *testing.F) {
	for _, s := range trafficSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("\x05\x00\x00\x00\x03KILL 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newPconn(&bytesConn{r: bytes.NewReader(data), w: io.Discard}, 64)
		for i := 0; i < 100; i++ {
			c.seq = uint8(i)
			p, err := c.readPacket(1 << 20)
			if err != nil {
				break
			}
			if r, err := parseHandshakeResponse(p); err == nil && r.user == "" && len(p) < 32 {
				t.Fatalf("accepted a %d-byte handshake response", len(p))
			}
			_, _ = parseChangeUser(p, rawCaps|mysql.CLIENT_CONNECT_ATTRS)
			if len(p) > 0 && p[0] == mysql.COM_QUERY {
				id1, q1, err1 := killArgs(router.Classify(string(p[1:])))
				id2, q2, err2 := killArgs(router.Classify(string(p[1:])))
				if id1 != id2 || q1 != q2 || (err1 == nil) != (err2 == nil) {
					t.Fatal("killArgs is not deterministic")
				}
			}
		}
	})
}

// FuzzHandshake runs a whole session against arbitrary client bytes. The
// only backend is unreachable, so a session that gets past authentication
// ends at the backend dial. No input may panic (the session would recover,
// so the panic counter is checked) or hang.
func FuzzHandshake(f *testing.F) {
	for _, s := range trafficSeeds(f) {
		f.Add(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	srv, err := New(Options{
		Users:            []User{NewUser("app", "app-secret"), {Name: "nopass"}},
		Backends:         []*Backend{{Name: "dead", Addr: dead, Role: "primary"}},
		HandshakeTimeout: time.Second,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		RSAKey:           fuzzKey(f),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sess := newSession(srv, 1, &bytesConn{r: bytes.NewReader(data), w: io.Discard})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sess.serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("%d panics", n)
		}
	})
}

// fuzzKey returns a small RSA key so that each fuzz worker starts quickly.
func fuzzKey(tb testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
