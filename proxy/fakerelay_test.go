package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Relaying tests against scripted backends: large and many results, errors
// passed through, and backends that die in the middle of an answer.

// result is one result of a command as a rawClient read it.
type result struct {
	rows   [][]byte // row packets
	status uint16   // of the OK packet or terminator
	err    *sqlError
}

// results reads the results of the command just sent, up to the one
// without SERVER_MORE_RESULTS_EXISTS or an error.
func (r *rawClient) results() []result {
	r.t.Helper()
	var out []result
	for {
		var res result
		p := r.read()
		switch p[0] {
		case 0xff:
			res.err = parseErr(p)
			return append(out, res)
		case 0x00:
			res.status = terminatorStatus(r.caps, p)
		default:
			n, _, _ := mysql.LengthEncodedInt(p)
			for range n {
				r.read() // column definitions
			}
			if r.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
				r.read()
			}
			for res.status == 0 {
				p := r.read()
				switch {
				case p[0] == 0xff:
					res.err = parseErr(p)
					return append(out, res)
				case p[0] == 0xfe && len(p) < fakeMaxFrame:
					res.status = terminatorStatus(r.caps, p)
				default:
					res.rows = append(res.rows, p)
				}
			}
		}
		out = append(out, res)
		if res.status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
			return out
		}
	}
}

// clientFlavors are the two ways a client can ask for result sets to end.
var clientFlavors = []struct {
	name string
	caps uint32
}{
	{"eof", 0},
	{"deprecate_eof", mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_SESSION_TRACK},
}

// TestRelayManyRows relays 20,000 rows with NULLs, each byte for byte.
func TestRelayManyRows(t *testing.T) {
	big := fakeRows{columns: []string{"id", "name", "note"}, status: fakeIdle}
	for i := range 20000 {
		var note any
		if i%7 != 0 {
			note = strings.Repeat("n", i%50)
		}
		big.rows = append(big.rows, []any{i, fmt.Sprintf("row %d", i), note})
	}
	for _, fl := range clientFlavors {
		t.Run(fl.name, func(t *testing.T) {
			fp := startFakeProxy(t, 0, nil)
			fp.primary.setScript(answer("SELECT * FROM big", big))
			r := fp.login(t, fl.caps)
			r.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM big"...))
			res := r.results()
			if len(res) != 1 || res[0].err != nil {
				t.Fatalf("got %d results (error %v), want 1", len(res), res[0].err)
			}
			if len(res[0].rows) != len(big.rows) {
				t.Fatalf("got %d rows, want %d", len(res[0].rows), len(big.rows))
			}
			for i, row := range res[0].rows {
				if want := fakeTextRow(big.rows[i]); !bytes.Equal(row, want) {
					t.Fatalf("row %d: % x, want % x", i, row, want)
				}
			}
			if res[0].status != fakeIdle {
				t.Errorf("status 0x%04x, want 0x%04x", res[0].status, fakeIdle)
			}
		})
	}
}

// TestRelayMultiResults relays several results answering one command, and
// one that ends in an error half-way.
func TestRelayMultiResults(t *testing.T) {
	for _, fl := range clientFlavors {
		t.Run(fl.name, func(t *testing.T) {
			fp := startFakeProxy(t, 0, nil)
			fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
				switch cmd.text {
				case "CALL report()":
					return fakeMulti{rowsOf("a", 1), fakeOK{affected: 2, status: fakeIdle}, rowsOf("b", 2, 3), fakeOK{status: fakeIdle}}
				case "CALL broken()":
					return fakeMulti{rowsOf("a", 1), fakeErr{1146, "42S02", "Table 'shop.nope' doesn't exist"}}
				}
				return nil
			})
			r := fp.login(t, fl.caps)
			r.command(append([]byte{mysql.COM_QUERY}, "CALL report()"...))
			res := r.results()
			var rows []int
			for _, x := range res {
				rows = append(rows, len(x.rows))
			}
			if fmt.Sprint(rows) != "[1 0 2 0]" {
				t.Fatalf("CALL report(): results with %v rows, want [1 0 2 0]", rows)
			}
			r.command(append([]byte{mysql.COM_QUERY}, "CALL broken()"...))
			res = r.results()
			if len(res) != 2 || res[1].err == nil || res[1].err.code != 1146 {
				t.Fatalf("CALL broken(): %d results, last error %v, want 2 ending in 1146", len(res), res[len(res)-1].err)
			}
			r.command([]byte{mysql.COM_PING})
			if p := r.read(); p[0] != 0x00 {
				t.Fatalf("ping after the results: %v", parseErr(p))
			}
		})
	}
}

// TestRelayRowLargerThanAFrame relays a row of more than 16 MiB, which
// travels in several frames and starts with 0xFE like a terminator.
func TestRelayRowLargerThanAFrame(t *testing.T) {
	value := strings.Repeat("0123456789abcdef", fakeMaxFrame/16+10)
	for _, fl := range clientFlavors {
		t.Run(fl.name, func(t *testing.T) {
			fp := startFakeProxy(t, 0, nil)
			fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
				switch cmd.text {
				case "SELECT big":
					return rowsOf("v", value, "small")
				case "SELECT small":
					return rowsOf("v", "ok")
				}
				return nil
			})
			r := fp.login(t, fl.caps)
			r.command(append([]byte{mysql.COM_QUERY}, "SELECT big"...))
			res := r.results()
			if len(res) != 1 || res[0].err != nil || len(res[0].rows) != 2 {
				t.Fatalf("SELECT big: %d results, error %v", len(res), res[0].err)
			}
			got, _, _, err := mysql.LengthEncodedString(res[0].rows[0])
			if err != nil || string(got) != value {
				t.Fatalf("the big value came back with %d bytes (err %v), want %d", len(got), err, len(value))
			}
			r.command(append([]byte{mysql.COM_QUERY}, "SELECT small"...))
			if res := r.results(); len(res) != 1 || res[0].err != nil || len(res[0].rows) != 1 {
				t.Fatalf("the next query after the big row: %+v", res)
			}
		})
	}
}

// TestBackendErrorPassesThrough checks that a backend's ERR packet reaches
// the client byte for byte, and that the session goes on.
func TestBackendErrorPassesThrough(t *testing.T) {
	fp := startFakeProxy(t, 0, nil)
	e := fakeErr{1146, "42S02", "Table 'shop.nope' doesn't exist"}
	fp.primary.setScript(answer("DELETE FROM nope", e))
	r := fp.login(t, 0)
	r.command(append([]byte{mysql.COM_QUERY}, "DELETE FROM nope"...))
	enc := &fakeEncoder{}
	e.encode(enc)
	if got, want := r.read(), enc.out[4:]; !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	r.command([]byte{mysql.COM_PING})
	if p := r.read(); p[0] != 0x00 {
		t.Fatalf("ping after the error: %v", parseErr(p))
	}
}

// manyRows is a result large enough that the client has part of it before
// the end: 200 rows of 1 KiB.
func manyRows() fakeRows {
	r := fakeRows{columns: []string{"v"}, status: fakeIdle}
	for i := range 200 {
		r.rows = append(r.rows, []any{fmt.Sprintf("%04d", i) + strings.Repeat("x", 1020)})
	}
	return r
}

// lost reads what is left of an answer its backend abandoned, up to the
// error that ends it, which it returns; nil means the proxy closed the
// connection instead, which client libraries report as a lost connection
// (codeLostBackend) too. A client still waiting after two seconds fails the test: the
// stream stopped inside a packet that will never be finished.
func (r *rawClient) lost() *sqlError {
	r.t.Helper()
	_ = r.c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer r.c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		p, err := r.c.readPacket(0)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			r.t.Fatalf("the client still waits for the rest of the answer: the proxy stopped inside a packet")
		case err != nil:
			return nil
		case p[0] == 0xff:
			return parseErr(p)
		}
	}
}

// TestPrimaryLostMidResult has the primary die in the middle of a result,
// between two packets or inside one: after the rows it had, the client gets
// error codeLostBackend or (when part of a packet reached it) its connection closed,
// and the session ends (its server state is gone); the connection is not
// pooled again.
func TestPrimaryLostMidResult(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(cutName(partial), func(t *testing.T) {
			fp := startFakeProxy(t, 0, nil)
			fp.primary.setScript(answer("SELECT * FROM t", fakeCut{manyRows(), 150, partial}))
			r := fp.login(t, 0)
			r.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM t"...))
			e := r.lost()
			switch {
			case e == nil && !partial:
				t.Fatalf("the connection closed without error codeLostBackend")
			case e != nil && (e.code != codeLostBackend || e.state != "08S01"):
				t.Fatalf("got %v, want error codeLostBackend (08S01)", e)
			}
			r.expectClosed()
			waitFor(t, "the session to end", func() bool { return fp.Clients() == 0 })
			for _, b := range fp.Backends() {
				if b.InUse+b.Idle != 0 {
					t.Errorf("%s: %d in use, %d idle after losing the primary, want none", b.Name, b.InUse, b.Idle)
				}
			}
		})
	}
}

func cutName(partial bool) string {
	if partial {
		return "inside a packet"
	}
	return "between packets"
}

// TestReplicaLostMidRead has a replica die in the middle of a read, between
// two packets or inside one. When nothing reached the client yet, the read
// runs again on the primary and the client never knows. When part of the
// result did, the client gets error codeLostBackend and the session goes on (or, when
// the client has part of a packet, its connection closes); it is never left
// waiting.
func TestReplicaLostMidRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		packets int  // sent whole before the cut
		retried bool // nothing reached the client
	}{
		{"at the start", 0, true},
		{"within the client's buffer", 20, true},
		{"after rows reached the client", 150, false},
	} {
		for _, partial := range []bool{false, true} {
			t.Run(tc.name+"/"+cutName(partial), func(t *testing.T) {
				fp := startFakeProxy(t, 1, nil)
				fp.replicas[0].setScript(answer("SELECT * FROM t", fakeCut{manyRows(), tc.packets, partial}))
				fp.primary.setScript(answer("SELECT * FROM t", manyRows()))
				r := fp.login(t, 0)
				retries := counterValue(fp.m.retries)
				r.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM t"...))
				if tc.retried {
					_ = r.c.nc.SetReadDeadline(time.Now().Add(2 * time.Second)) // a broken stream shows as a timeout
					res := r.results()
					if last := res[len(res)-1]; last.err != nil || len(last.rows) != 200 {
						t.Fatalf("got %d rows and error %v, want the primary's 200 rows", len(last.rows), last.err)
					}
					if n := counterValue(fp.m.retries) - retries; n != 1 {
						t.Errorf("switchyard_read_retries_total went up by %v, want 1", n)
					}
				} else {
					e := r.lost()
					switch {
					case e == nil && !partial:
						t.Fatalf("the connection closed without error codeLostBackend; the session should go on")
					case e == nil:
						return // the client knows the connection is lost
					case e.code != codeLostBackend:
						t.Fatalf("got %v, want error codeLostBackend", e)
					}
				}
				r.command([]byte{mysql.COM_PING})
				if p := r.read(); p[0] != 0x00 {
					t.Fatalf("ping after losing the replica: %v", parseErr(p))
				}
			})
		}
	}
}
