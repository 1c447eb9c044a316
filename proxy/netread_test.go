package proxy

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestNetReadTimeout sends half a packet and stops: once a command has
// begun, the rest must follow within NetReadTimeout, else the session ends
// with ER_NET_READ_INTERRUPTED instead of waiting for timeouts.idle.
func TestNetReadTimeout(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.NetReadTimeout = 300 * time.Millisecond
		o.IdleTimeout = time.Hour
	})
	cases := []struct {
		name string
		sent []byte
	}{
		{"half a payload", []byte{100, 0, 0, 0, mysql.COM_QUERY, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'}},
		{"half a header", []byte{100, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := holdingsOf(p)
			r := loginRaw(t, p.addr, appUser, appPass, "", 0)
			_ = r.c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := r.c.nc.Write(c.sent); err != nil {
				t.Fatal(err)
			}
			r.c.seq = 1 // the answer to the command
			start := time.Now()
			if e := r.expectErr(mysql.ER_NET_READ_INTERRUPTED); e.state != "08S01" || e.message != "Got timeout reading communication packets" {
				t.Errorf("got %v", e)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the error came after %s; net_read is 300ms", d)
			}
			r.expectClosed()
			settledAt(t, p, before)
		})
	}
	t.Run("slow but in time", func(t *testing.T) {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		q := append([]byte{9, 0, 0, 0, mysql.COM_QUERY}, "SELECT 1"...)
		slowWrite(t, r.c.nc, q[:8], q[8:])
		r.c.seq = 1
		if res := r.readResult(); res[0][0] == 0xff {
			t.Fatalf("SELECT 1 sent in two parts: %v", parseErr(res[0]))
		}
	})
}

// slowWrite writes a, pauses well within the net_read timeout, then
// writes b, as a client on a slow network would.
func slowWrite(t *testing.T, nc net.Conn, a, b []byte) {
	t.Helper()
	if _, err := nc.Write(a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestCommandsSetNoDeadline checks that the net_read timeout costs nothing
// on the usual path: commands that arrive whole set no read deadline.
func TestCommandsSetNoDeadline(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.ReleaseIdle = -1 }) // no idle wake-ups either
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, cl) }()
	t.Cleanup(func() {
		cancel()
		<-served
	})

	r := loginRaw(t, ln.Addr().String(), appUser, appPass, "", 0)
	for range 100 {
		if res := r.query("SELECT 1"); res[0][0] == 0xff {
			t.Fatalf("SELECT 1: %v", parseErr(res[0]))
		}
	}
	if n := cl.readDeadlines.Load(); n != 0 {
		t.Errorf("100 commands set %d read deadlines, want none", n)
	}
	// A command that arrives in two parts does get one (set, then cleared).
	q := append([]byte{9, 0, 0, 0, mysql.COM_QUERY}, "SELECT 1"...)
	slowWrite(t, r.c.nc, q[:8], q[8:])
	r.c.seq = 1
	r.readResult()
	if n := cl.readDeadlines.Load(); n == 0 {
		t.Errorf("a command in two parts set no read deadline")
	}
}

// countingListener counts the read deadlines set on the connections it
// accepts.
type countingListener struct {
	net.Listener
	readDeadlines atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: nc, n: &l.readDeadlines}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetReadDeadline(t)
}
