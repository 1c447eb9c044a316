package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sock sits between a backend connection's buffers and its TCP socket, so
// that a command can go out and the wait for its answer begin without a
// read in between.
//
// Go's net package reads a socket in three steps: it clears the socket's
// readiness, tries read(2), and only when that finds nothing (EAGAIN) parks
// the goroutine until epoll reports data. Right after a command goes to a
// server its answer cannot be there yet, so that first read is a wasted
// syscall on every statement (issue 16 counted about one per statement).
// sock clears the readiness first, then writes the command, then parks:
// the answer arrives after the write, so its epoll event comes after the
// clearing and is not lost. A server only ever speaks in answer to a
// command; anything it sent unasked before (an error before it closes the
// connection) is read together with the answer, and a closed connection
// wakes the wait by itself (the write draws a reset).
//
// Only the next Read after flushAwait works this way; every other read and
// write goes straight to the connection. The client side keeps the usual
// path: a client may send its next command before it reads the answer to
// the last one, and data that arrived before the readiness was cleared
// would never wake the wait.
type sock struct {
	net.Conn
	raw syscall.RawConn

	holding bool   // Write keeps bytes in pending instead of sending them
	pending []byte // a command to send at the start of the next Read

	// The state of a Read with a held command, for readStep.
	step   func(uintptr) bool // s.readStep
	p      []byte
	n      int
	err    error
	sent   bool
	failed bool // err is the write's
}

// newSock returns a sock for nc, or nil when nc is not a plain socket (TLS,
// or an in-memory pipe in tests): those take the usual path.
func newSock(nc net.Conn) *sock {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &sock{Conn: nc, raw: raw}
	s.step = s.readStep
	return s
}

// maxPending is the largest held command whose buffer is kept afterwards.
const maxPending = 4 << 10

// Write sends p, after any held command; while holding it keeps p instead.
func (s *sock) Write(p []byte) (int, error) {
	if s.holding {
		s.pending = append(s.pending, p...)
		return len(p), nil
	}
	if len(s.pending) > 0 {
		if _, err := s.Conn.Write(s.pending); err != nil {
			return 0, err
		}
		s.dropPending()
	}
	return s.Conn.Write(p)
}

func (s *sock) dropPending() {
	s.pending = s.pending[:0]
	if cap(s.pending) > maxPending {
		s.pending = nil
	}
}

// Read reads into p. With a command held, it sends the command and waits
// for the answer without trying to read first.
func (s *sock) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		return s.Conn.Read(p)
	}
	s.p, s.n, s.err, s.sent, s.failed = p, 0, nil, false, false
	rerr := s.raw.Read(s.step)
	n, err, failed := s.n, s.err, s.failed
	s.p, s.err = nil, nil
	s.dropPending()
	switch {
	case rerr != nil:
		return 0, rerr // closed, or a deadline passed
	case failed:
		return 0, s.opError("write", err)
	case err != nil:
		return 0, s.opError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// readStep is Read's function for RawConn.Read, called first right after
// the readiness is cleared, then whenever epoll reports the socket
// readable; true ends the read. It is a method value made once (step): a
// closure made per read would be allocated per statement.
func (s *sock) readStep(fd uintptr) bool {
	if !s.sent {
		s.sent = true
		if s.err = s.sendHeld(int(fd)); s.err != nil {
			s.failed = true
			return true
		}
		return false // the answer cannot be here yet: wait for it
	}
	for {
		s.n, s.err = syscall.Read(int(fd), s.p)
		if s.err != syscall.EINTR {
			break
		}
	}
	if s.err == syscall.EAGAIN {
		return false // woken without data: wait again
	}
	return true
}

// sendHeld writes the held command on fd. What the socket does not take at
// once (a full send buffer, rare for a command) goes through the
// connection's usual write, which waits for room within the write deadline.
func (s *sock) sendHeld(fd int) error {
	b := s.pending
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			_, err = s.Conn.Write(b)
			return err
		case err != nil:
			return err
		}
		b = b[n:]
	}
	return nil
}

// opError wraps a syscall error as the net package reports its own.
func (s *sock) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}
