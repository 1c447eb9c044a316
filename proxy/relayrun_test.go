package proxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// chunkConn hands out data in pieces of random sizes up to max, as TCP may
// deliver a response, and discards writes.
type chunkConn struct {
	bytesConn
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(c.data), 1+c.rnd.IntN(c.max))
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// variedResultSet is a text result set whose rows have lengths around the
// boundaries that matter to copyRun: tiny rows, rows near the read buffer's
// size, and rows larger than it, with the terminator the capabilities call
// for.
func variedResultSet(deprecateEOF bool) (data []byte, rows int) {
	out, add := packetWriter()
	add([]byte{1})
	add([]byte(benchColumnDef))
	if !deprecateEOF {
		add([]byte{0xfe, 0, 0, 2, 0})
	}
	for i, size := range []int{1, 2, 3, 120, 250, 251, 252, 4000, backendBufSize - 5, backendBufSize - 4, backendBufSize, 3 * backendBufSize, 120, 1} {
		row := mysql.AppendLengthEncodedInteger(nil, uint64(size))
		row = append(row, bytes.Repeat([]byte{byte('a' + i)}, size)...)
		add(row)
		rows++
	}
	for range 300 {
		add([]byte("\x0cabcdefghijkl"))
		rows++
	}
	add(terminator(deprecateEOF))
	return *out, rows
}

// terminator is the payload of variedResultSet's last packet.
func terminator(deprecateEOF bool) []byte {
	if deprecateEOF {
		return []byte{0xfe, 0, 0, 2, 0, 0, 0} // OK with the 0xfe header
	}
	return []byte{0xfe, 0, 0, 2, 0}
}

// TestRelayRunsInPieces relays result sets delivered in pieces of every
// size: what reaches the client, the sequence ids, the byte counts and the
// rows counted are the same whether the rows leave in runs (copyRun) or one
// by one, and the backend connection ends at the response's end.
func TestRelayRunsInPieces(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		data, rows := variedResultSet(deprecateEOF)
		var want []byte
		for _, max := range []int{1, 3, 7, 100, 1000, 5000, 40000, len(data)} {
			for seed := range uint64(5) {
				s, bc := benchSession(&testing.B{}, nil)
				if deprecateEOF {
					bc.caps = mysql.CLIENT_DEPRECATE_EOF
					s.caps = bc.caps
				}
				backend := &chunkConn{data: data, rnd: rand.New(rand.NewPCG(seed, uint64(max))), max: max}
				bc.pconn = newPconn(backend, backendBufSize)
				var got bytes.Buffer
				s.client = newPconn(&bytesConn{r: bytes.NewReader(nil), w: &got}, clientBufSize)
				s.client.seq = 1
				if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
					t.Fatalf("eof %v, pieces of up to %d: %v", !deprecateEOF, max, err)
				}
				if err := s.client.returnWriter(); err != nil {
					t.Fatal(err)
				}
				if len(backend.data) != 0 || bc.br.Buffered() != 0 {
					t.Fatalf("pieces of up to %d: %d bytes of the response left unread", max, len(backend.data)+bc.br.Buffered())
				}
				if s.dg.rowsSent != uint64(rows) {
					t.Errorf("pieces of up to %d: %d rows counted, want %d", max, s.dg.rowsSent, rows)
				}
				if s.client.out != uint64(got.Len()) {
					t.Errorf("pieces of up to %d: counted %d bytes out, relayed %d", max, s.client.out, got.Len())
				}
				if s.client.seq != data[len(data)-len(terminator(deprecateEOF))-1]+1 {
					t.Errorf("pieces of up to %d: the client's next sequence id is %d, want the terminator's + 1", max, s.client.seq)
				}
				if want == nil {
					want = bytes.Clone(got.Bytes())
					// The relay is a copy but for the terminator's status
					// flags, which are the session's.
					if len(want) != len(data) || !bytes.Equal(want[:len(want)-8], data[:len(data)-8]) {
						t.Fatalf("the relayed result differs from the backend's beyond its terminator")
					}
					continue
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("eof %v, pieces of up to %d (seed %d): the client got other bytes", !deprecateEOF, max, seed)
				}
			}
		}
	}
}

// relayPieces relays data, delivered in pieces of up to max bytes, as the
// response to COM_QUERY (with or without copyRun), and returns what the
// client got, the error and the rows counted.
func relayPieces(data []byte, max int, seed uint64, caps uint32, runs bool) ([]byte, error, uint64) {
	testNoRuns = !runs
	defer func() { testNoRuns = false }()
	s, bc := benchSession(&testing.B{}, nil)
	bc.caps, s.caps = caps, caps
	bc.pconn = newPconn(&chunkConn{data: data, rnd: rand.New(rand.NewPCG(seed, 1)), max: max}, backendBufSize)
	var got bytes.Buffer
	s.client = newPconn(&bytesConn{r: bytes.NewReader(nil), w: &got}, clientBufSize)
	s.client.seq = 1
	err := s.relayResults(bc, mysql.COM_QUERY)
	_ = s.client.returnWriter()
	_ = s.client.flush()
	return got.Bytes(), err, s.dg.rowsSent
}

// FuzzRelay relays arbitrary backend responses, whole and in pieces: no
// response may panic the relay, and what the client gets, whether the
// relay fails and the rows it counts are the same with copyRun as packet
// by packet.
func FuzzRelay(f *testing.F) {
	for _, deprecateEOF := range []bool{false, true} {
		data, _ := variedResultSet(deprecateEOF)
		f.Add(data[:min(len(data), 600)], uint16(7), deprecateEOF)
	}
	f.Add(resultSet(3, 10), uint16(1), false)
	f.Add(resultSet(50, 200), uint16(300), false)
	f.Add(trackedResultSet(), uint16(5), true)
	f.Fuzz(func(t *testing.T, data []byte, max uint16, deprecateEOF bool) {
		caps := uint32(0)
		if deprecateEOF {
			caps = mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_SESSION_TRACK
		}
		piece := int(max)%4096 + 1
		want, wantErr, wantRows := relayPieces(data, len(data)+1, 0, caps, false)
		for _, p := range []int{len(data) + 1, piece} {
			got, err, rows := relayPieces(data, p, uint64(max), caps, true)
			if (err == nil) != (wantErr == nil) || rows != wantRows || !bytes.Equal(got, want) {
				t.Fatalf("pieces of up to %d: client got %d bytes, err %v, %d rows; packet by packet %d bytes, err %v, %d rows",
					p, len(got), err, rows, len(want), wantErr, wantRows)
			}
		}
	})
}

// TestLenEncShort reads length-encoded integers and strings cut short or
// claiming more than there is, which go-mysql's readers index past (a
// backend's column count of 0xfc with nothing after it panicked the relay,
// found by FuzzRelay).
func TestLenEncShort(t *testing.T) {
	for _, b := range [][]byte{{0xfc}, {0xfc, 1}, {0xfd, 1, 2}, {0xfe, 1, 2, 3, 4, 5, 6, 7}} {
		if _, _, n := lenEncInt(b); n != 0 {
			t.Errorf("lenEncInt(% x) read %d bytes, want none", b, n)
		}
		if _, _, _, err := lenEncString(b); err == nil {
			t.Errorf("lenEncString(% x): no error", b)
		}
	}
	for _, b := range [][]byte{{3, 'a', 'b'}, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'}, {0xfc, 0xff, 0xff, 'a'}} {
		if s, _, _, err := lenEncString(b); err == nil {
			t.Errorf("lenEncString(% x) = %q, want an error: the length runs past the end", b, s)
		}
	}
	if s, null, n, err := lenEncString([]byte{3, 'a', 'b', 'c', 'd'}); string(s) != "abc" || null || n != 4 || err != nil {
		t.Errorf("lenEncString(3abcd) = %q %v %d %v", s, null, n, err)
	}
	if s, null, n, err := lenEncString([]byte{0xfb, 'x'}); len(s) != 0 || !null || n != 1 || err != nil {
		t.Errorf("lenEncString(NULL) = %q %v %d %v", s, null, n, err)
	}
	if v, null, n := lenEncInt([]byte{0xfc, 0x34, 0x12}); v != 0x1234 || null || n != 3 {
		t.Errorf("lenEncInt(fc 34 12) = %x %v %d", v, null, n)
	}
}
