package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The MySQL packet framing: a 3-byte little-endian payload length, a 1-byte
// sequence id, then the payload. Payloads of maxFrame bytes or more are split
// into frames of exactly maxFrame bytes followed by a shorter one (possibly
// empty). See https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
const maxFrame = 1<<24 - 1

var (
	// errPacketTooLarge is returned when a logical packet exceeds the limit.
	errPacketTooLarge = errors.New("packet larger than max_allowed_packet")
	// errSequence is returned when a packet arrives with an unexpected sequence id.
	errSequence = errors.New("packet out of order")
)

// pconn frames MySQL packets on one connection. Reads go through a bufio.Reader
// so that relaying can peek at packet headers without copying; writes go
// through a bufio.Writer so that the many small packets of a result set leave
// in few syscalls (callers Flush at the end of a response).
//
// A pconn is used by one goroutine at a time.
type pconn struct {
	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	seq uint8 // sequence id expected next / to use next

	sock  *sock         // the socket under br and bw, when flushAwait can hold a command (backends)
	buf   []byte        // reusable buffer for whole logical packets
	small *bufio.Writer // the own writer while bw is borrowed (see borrowWriter)

	in, out uint64 // bytes read and written, headers included (for metrics)
	// missing counts the payload bytes of the frame being copied in (see
	// copyFrame) that have not been written yet: while it is not zero, the
	// stream stops in the middle of a packet.
	missing int
}

const (
	clientBufSize  = 4 << 10  // client buffers stay small: many idle clients
	backendBufSize = 32 << 10 // backend buffers are few and busy
	keepBufSize    = 64 << 10 // larger packet buffers are dropped after use
)

// bigWriters lend large write buffers to client connections while they
// relay a result set, so that a big result leaves in few writes while idle
// clients keep their small buffers.
var bigWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, relayBufSize) }}

const relayBufSize = 64 << 10

// borrowWriter swaps in a large write buffer until returnWriter. It does
// nothing while bytes wait in the small one (say, the OK packets of earlier
// results of a multi-statement), which must leave first.
func (c *pconn) borrowWriter() {
	if c.small != nil || c.bw.Buffered() > 0 {
		return
	}
	big := bigWriters.Get().(*bufio.Writer)
	big.Reset(c.nc)
	c.small, c.bw = c.bw, big
}

// returnWriter flushes the borrowed buffer and gives it back.
func (c *pconn) returnWriter() error {
	if c.small == nil {
		return nil
	}
	err := c.bw.Flush()
	big := c.bw
	c.bw, c.small = c.small, nil
	big.Reset(nil)
	bigWriters.Put(big)
	return err
}

func newPconn(nc net.Conn, size int) *pconn {
	return &pconn{nc: nc, br: bufio.NewReaderSize(nc, size), bw: bufio.NewWriterSize(nc, size)}
}

// newBackendPconn returns the pconn of a backend connection: over a plain
// socket, its buffers go through a sock (see flushAwait).
func newBackendPconn(nc net.Conn) *pconn {
	s := newSock(nc)
	if s == nil {
		return newPconn(nc, backendBufSize)
	}
	return &pconn{nc: nc, sock: s, br: bufio.NewReaderSize(s, backendBufSize), bw: bufio.NewWriterSize(s, backendBufSize)}
}

// reset replaces the underlying connection (after a TLS upgrade) keeping buffers.
func (c *pconn) reset(nc net.Conn) {
	c.nc, c.sock = nc, nil
	c.br.Reset(nc)
	c.bw.Reset(nc)
}

// readPacket reads one logical packet, joining split frames, and checks its
// sequence id. The returned slice is valid until the next read; max bounds the
// payload size (0: no limit).
func (c *pconn) readPacket(max int) ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		f, err := c.readFrameHeader()
		if err != nil {
			if err == io.EOF && len(c.buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n := f.n
		if f.seq != c.seq {
			want := c.seq
			c.seq = f.seq + 1
			return nil, fmt.Errorf("%w: got sequence id %d, want %d", errSequence, f.seq, want)
		}
		c.seq++
		if max > 0 && len(c.buf)+n > max {
			c.discardPacket(n)
			return nil, errPacketTooLarge
		}
		c.in += uint64(4 + n)
		start := len(c.buf)
		c.buf = grow(c.buf, n)
		if _, err := io.ReadFull(c.br, c.buf[start:start+n]); err != nil {
			return nil, err
		}
		if n < maxFrame {
			return c.buf, nil
		}
	}
}

// discardPacket skips the rest of an oversized packet (n bytes of the
// current frame, then any continuation frames), so that the peer finishes
// sending and can read the error that follows. It gives up after a few
// seconds: the connection is closed afterwards anyway.
func (c *pconn) discardPacket(n int) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.br.Discard(n); err != nil || n < maxFrame {
			return
		}
		var hdr [4]byte
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return
		}
		f := frameAt(hdr[:])
		n, c.seq = f.n, f.seq+1
	}
}

// shrinkBuf drops an oversized packet buffer so idle connections stay small.
func (c *pconn) shrinkBuf() {
	if cap(c.buf) > keepBufSize {
		c.buf = nil
	}
}

func grow(b []byte, n int) []byte {
	need := len(b) + n
	if need <= cap(b) {
		return b[:need]
	}
	nb := make([]byte, need, max(need, 2*cap(b), 256))
	copy(nb, b)
	return nb
}

// writePacket writes payload as one logical packet (split as needed) with the
// next sequence ids. It buffers; call flush.
func (c *pconn) writePacket(payload []byte) error {
	for {
		n := min(len(payload), maxFrame)
		if err := writeHeader(c.bw, n, c.seq); err != nil {
			return err
		}
		c.seq++
		c.out += uint64(4 + n)
		if _, err := c.bw.Write(payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if n < maxFrame {
			return nil
		}
	}
}

func (c *pconn) flush() error { return c.bw.Flush() }

// flushAwait is flush for a command whose answer the caller reads next:
// over a sock, the command is held and goes out at the start of that read,
// which then waits for the answer without a wasted read(2) (see sock).
// With bytes in the read buffer already, that read would not happen: the
// command goes out now.
func (c *pconn) flushAwait() error {
	if c.sock == nil || c.br.Buffered() > 0 {
		return c.bw.Flush()
	}
	c.sock.holding = true
	err := c.bw.Flush()
	c.sock.holding = false
	return err
}

// writeHeader writes a frame header byte by byte: a [4]byte handed to
// bufio.Writer.Write would escape to the heap, once per relayed row.
func writeHeader(w *bufio.Writer, n int, seq uint8) error {
	if w.Available() < 4 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_ = w.WriteByte(byte(n))
	_ = w.WriteByte(byte(n >> 8))
	_ = w.WriteByte(byte(n >> 16))
	return w.WriteByte(seq)
}

// frame is the header of one physical frame being relayed.
type frame struct {
	n   int   // payload length
	seq uint8 // sequence id
}

// frameAt decodes the frame header at the start of h (4 bytes at least).
func frameAt(h []byte) frame {
	return frame{n: int(h[0]) | int(h[1])<<8 | int(h[2])<<16, seq: h[3]}
}

// readFrameHeader reads the next frame header without consuming the payload.
func (c *pconn) readFrameHeader() (frame, error) {
	hdr, err := c.br.Peek(4)
	if err != nil {
		return frame{}, err
	}
	f := frameAt(hdr)
	_, _ = c.br.Discard(4)
	return f, nil
}

// peekPayload returns up to n bytes of the current frame's payload without
// consuming them (fewer when the read buffer is smaller).
func (c *pconn) peekPayload(n int) ([]byte, error) {
	n = min(n, c.br.Size())
	b, err := c.br.Peek(n)
	if err != nil && len(b) < n {
		return nil, err
	}
	return b, nil
}

// copyFrame copies one frame (header already read) to dst without allocating.
func (c *pconn) copyFrame(dst *pconn, f frame) error {
	if err := writeHeader(dst.bw, f.n, f.seq); err != nil {
		return errDstWrite{err}
	}
	dst.seq = f.seq + 1
	dst.out += uint64(4 + f.n)
	c.in += uint64(4 + f.n)
	dst.missing = f.n
	return c.copyPayload(dst, f.n)
}

// copyPayload moves n payload bytes from c to dst through the read buffer.
func (c *pconn) copyPayload(dst *pconn, n int) error {
	for n > 0 {
		b, err := c.br.Peek(min(n, c.br.Size()))
		if len(b) == 0 {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if _, err := dst.bw.Write(b); err != nil {
			return errDstWrite{err}
		}
		_, _ = c.br.Discard(len(b))
		n -= len(b)
		dst.missing -= len(b)
	}
	return nil
}

// skipPayload discards n payload bytes.
func (c *pconn) skipPayload(n int) error {
	_, err := c.br.Discard(n)
	return err
}

// errDstWrite marks a failure on the writing side of a relay, so that the
// caller can tell which peer failed (a vanished client versus a failed backend).
type errDstWrite struct{ err error }

func (e errDstWrite) Error() string { return e.err.Error() }
func (e errDstWrite) Unwrap() error { return e.err }

// lenEncInt reads a length-encoded integer from the start of b, as
// mysql.LengthEncodedInt does, but n is 0 when b ends before the integer
// does: go-mysql's version indexes past the end of a short b, and b comes
// from a peer.
func lenEncInt(b []byte) (num uint64, isNull bool, n int) {
	if len(b) == 0 {
		return 0, true, 0
	}
	need := 1
	switch b[0] {
	case 0xfc:
		need = 3
	case 0xfd:
		need = 4
	case 0xfe:
		need = 9
	}
	if len(b) < need {
		return 0, false, 0
	}
	return mysql.LengthEncodedInt(b)
}

// lenEncString reads a length-encoded string from the start of b, as
// mysql.LengthEncodedString does, with an error rather than a panic or a
// wrong slice when b does not hold it whole (a short integer, or a length
// beyond b, up to 2^64-1).
func lenEncString(b []byte) (s []byte, isNull bool, n int, err error) {
	num, isNull, k := lenEncInt(b)
	switch {
	case k == 0:
		return nil, false, 0, io.ErrUnexpectedEOF
	case isNull:
		return b[k:k], true, k, nil
	case num > uint64(len(b)-k):
		return nil, false, k, io.ErrUnexpectedEOF
	}
	end := k + int(num)
	return b[k:end:end], false, end, nil
}
