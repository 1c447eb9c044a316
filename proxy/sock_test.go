package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sockPair returns a pconn over a sock for one end of a loopback TCP
// connection, and the other end.
func sockPair(t *testing.T) (*pconn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { nc.Close(); peer.Close() })
	c := newBackendPconn(nc)
	if c.sock == nil {
		t.Fatal("no sock over a TCP connection")
	}
	return c, peer
}

// send holds payload as one packet with flushAwait.
func send(t *testing.T, c *pconn, payload string) {
	t.Helper()
	c.seq = 0
	if err := c.writePacket([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := c.flushAwait(); err != nil {
		t.Fatal(err)
	}
	if len(c.sock.pending) == 0 {
		t.Fatal("flushAwait sent the command instead of holding it")
	}
}

// serverGotPing checks that peer received the command "ping" (see send).
func serverGotPing(t *testing.T, peer net.Conn) {
	t.Helper()
	b := make([]byte, 8)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, b); err != nil || string(b[4:]) != "ping" {
		t.Fatalf("the server got %q (%v), want the command", b, err)
	}
}

// echo answers each packet from peer with the same payload, after delay
// (alternating with no delay at all, so that answers race the wait).
func echo(peer net.Conn, delay time.Duration) {
	pc := newPconn(peer, 4096)
	for i := 0; ; i++ {
		pc.seq = 0
		p, err := pc.readPacket(0)
		if err != nil {
			return
		}
		if i%2 == 1 {
			time.Sleep(delay)
		}
		if pc.writePacket(p) != nil || pc.flush() != nil {
			return
		}
	}
}

// TestSockRoundTrips sends commands held by flushAwait and reads their
// answers: answers that come at once and answers that come late are both
// read, and none is lost (a lost wake-up would hang until the deadline).
func TestSockRoundTrips(t *testing.T) {
	c, peer := sockPair(t)
	go echo(peer, time.Millisecond)
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range 2000 {
		want := strings.Repeat("x", i%300+1)
		send(t, c, want)
		c.seq = 1
		got, err := c.readPacket(0)
		if err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("round trip %d: got %d bytes, want %d", i, len(got), len(want))
		}
		if len(c.sock.pending) != 0 {
			t.Fatalf("round trip %d: the command is still held after its answer", i)
		}
	}
}

// TestSockUnaskedData reads what the server sent before the command (as
// a server's error before it closes an idle connection) together with the
// answer, rather than waiting for more.
func TestSockUnaskedData(t *testing.T) {
	c, peer := sockPair(t)
	if _, err := peer.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the bytes are in c's socket before the command
	send(t, c, "ping")
	go func() {
		b := make([]byte, 8)
		_, _ = io.ReadFull(peer, b) // the command: header and "ping"
		_, _ = peer.Write([]byte("late"))
	}()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 9)
	if _, err := io.ReadFull(c.br, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "earlylate" {
		t.Fatalf("read %q, want earlylate", got)
	}
}

// TestSockPeerGone reports a connection the server closed, whether before
// the command went out or while its answer was awaited, instead of
// waiting; and a server that does not answer, at the read deadline.
func TestSockPeerGone(t *testing.T) {
	t.Run("closed before", func(t *testing.T) {
		c, peer := sockPair(t)
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		send(t, c, "ping")
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.readPacket(0)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after the server closed: %v, want EOF or a reset at once", err)
		}
	})
	t.Run("reset before", func(t *testing.T) {
		c, peer := sockPair(t)
		_ = peer.(*net.TCPConn).SetLinger(0) // close with a reset
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		send(t, c, "ping")
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.readPacket(0)
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "write" {
			t.Fatalf("read after the server reset the connection: %v, want the write's error", err)
		}
	})
	t.Run("closed while waiting", func(t *testing.T) {
		c, peer := sockPair(t)
		send(t, c, "ping")
		go func() {
			b := make([]byte, 8)
			_, _ = io.ReadFull(peer, b)
			time.Sleep(20 * time.Millisecond)
			peer.Close()
		}()
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.readPacket(0); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		c, peer := sockPair(t)
		send(t, c, "ping")
		_ = c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.readPacket(0)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the deadline", err)
		}
		serverGotPing(t, peer)
	})
}

// TestSockFullSendBuffer holds a command while the socket's send buffer
// is full: what the socket does not take goes out through the connection's
// usual write, which waits for the server to read, and the answer follows.
func TestSockFullSendBuffer(t *testing.T) {
	c, peer := sockPair(t)
	// Fill the send path until the socket takes no more.
	filled := 0
	chunk := make([]byte, 64<<10)
	err := c.sock.raw.Write(func(fd uintptr) bool {
		for filled < 256<<20 {
			n, err := syscall.Write(int(fd), chunk)
			if err == syscall.EAGAIN {
				return true
			}
			if err != nil {
				t.Errorf("filling the socket: %v", err)
				return true
			}
			filled += n
		}
		t.Error("the socket took 256 MiB without the peer reading")
		return true
	})
	if err != nil || t.Failed() {
		t.Fatalf("filling the socket: %v", err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1900)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // the command waits for room meanwhile
		if _, err := io.CopyN(io.Discard, peer, int64(filled)); err != nil {
			got <- nil
			return
		}
		pc := newPconn(peer, 4096)
		p, err := pc.readPacket(0)
		if err != nil {
			got <- nil
			return
		}
		got <- bytes.Clone(p)
		pc.seq = 1
		_ = pc.writePacket([]byte("done"))
		_ = pc.flush()
	}()
	c.seq = 0
	if err := c.writePacket(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.flushAwait(); err != nil {
		t.Fatal(err)
	}
	if len(c.sock.pending) != 4+len(payload) {
		t.Fatalf("%d bytes held, want the whole command (%d)", len(c.sock.pending), 4+len(payload))
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	c.seq = 1
	answer, err := c.readPacket(0)
	if err != nil || string(answer) != "done" {
		t.Fatalf("answer %q, %v", answer, err)
	}
	if !bytes.Equal(<-got, payload) {
		t.Fatal("the server did not get the command whole")
	}
	if cap(c.sock.pending) > maxPending {
		t.Errorf("a held buffer of %d bytes is kept after use", cap(c.sock.pending))
	}
}

// TestSockWriteAfterHold sends a held command before anything written
// after it, should a write come before the read.
func TestSockWriteAfterHold(t *testing.T) {
	c, peer := sockPair(t)
	send(t, c, "first")
	if err := c.writePacket([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4+5+4+6)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("first")) || bytes.Index(b, []byte("first")) > bytes.Index(b, []byte("second")) {
		t.Fatalf("the server got %q, want first then second", b)
	}
	if len(c.sock.pending) != 0 {
		t.Fatal("the command is still held after it went out")
	}
}

// TestSockNotOverTLS keeps the usual path where the connection is not a
// plain socket.
func TestSockNotOverTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := newBackendPconn(a); c.sock != nil {
		t.Fatal("a sock over a pipe")
	}
	c, _ := sockPair(t)
	c.reset(a)
	if c.sock != nil {
		t.Fatal("the sock stays after the connection is replaced (TLS)")
	}
}

// TestSockBufferedBeforeCommand sends the command at once when bytes wait
// in the read buffer already: the next read takes them without reaching
// the socket, and would never send a held command.
func TestSockBufferedBeforeCommand(t *testing.T) {
	c, peer := sockPair(t)
	if _, err := peer.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := c.br.Peek(1); err != nil || b[0] != 's' {
		t.Fatalf("peek: %q %v", b, err)
	}
	c.seq = 0
	if err := c.writePacket([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := c.flushAwait(); err != nil {
		t.Fatal(err)
	}
	if len(c.sock.pending) != 0 {
		t.Fatal("the command is held while the read buffer has bytes")
	}
	serverGotPing(t, peer)
}

// TestSockAllocatesNothing checks that a round trip through a held
// command allocates nothing.
func TestSockAllocatesNothing(t *testing.T) {
	c, peer := sockPair(t)
	go echo(peer, 0)
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	cmd := []byte("SELECT 1")
	if n := testing.AllocsPerRun(200, func() {
		c.seq = 0
		if err := c.writePacket(cmd); err != nil {
			t.Fatal(err)
		}
		if err := c.flushAwait(); err != nil {
			t.Fatal(err)
		}
		c.seq = 1
		if _, err := c.readPacket(0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a round trip allocates %.1f times", n)
	}
}
