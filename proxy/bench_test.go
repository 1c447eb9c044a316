package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
)

// Microbenchmarks of the hot path. The backend side is a canned response
// replayed from memory, so that they measure Switchyard's own work: relay,
// routing and state application (end-to-end figures come from test/bench).

// loopConn replays the same bytes forever and discards writes.
type loopConn struct {
	bytesConn
	data []byte
	off  int
}

func (c *loopConn) Read(b []byte) (int, error) {
	n := copy(b, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

func (c *loopConn) Write(b []byte) (int, error) { return len(b), nil }

// resultSet builds a text result set of rows rows with one column of
// rowSize bytes (classic EOF framing).
func resultSet(rows, rowSize int) []byte {
	out, add := packetWriter()
	add([]byte{1})
	add([]byte(benchColumnDef))
	add([]byte{0xfe, 0, 0, 2, 0})
	row := mysql.AppendLengthEncodedInteger(nil, uint64(rowSize))
	row = append(row, bytes.Repeat([]byte("x"), rowSize)...)
	for range rows {
		add(row)
	}
	add([]byte{0xfe, 0, 0, 2, 0})
	return *out
}

// benchColumnDef is the definition of the one VARCHAR column c of the
// benchmarks' result sets.
const benchColumnDef = "\x03def\x00\x00\x00\x01c\x01c\x0c\x21\x00\xff\x00\x00\x00\xfd\x00\x00\x00\x00\x00"

// packetWriter returns a buffer and a function that appends a packet to it,
// sequence numbers counting from 1 (a result set's first packet).
func packetWriter() (*[]byte, func([]byte)) {
	var out []byte
	seq := byte(1)
	return &out, func(p []byte) {
		out = append(out, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), seq)
		out = append(out, p...)
		seq++
	}
}

func benchSession(b *testing.B, backendData []byte) (*session, *backendConn) {
	m, _ := registerMetrics(nil) // without a registry it cannot fail
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: m}
	opts := &Options{}
	srv.cur.Store(opts)
	s := newSession(srv, 1, &bytesConn{r: bytes.NewReader(nil), w: io.Discard})
	s.client = newPconn(&loopConn{}, clientBufSize)
	be := &Backend{Name: "bench", Addr: "127.0.0.1:1", backendState: &backendState{}}
	bc := &backendConn{pconn: newPconn(&loopConn{data: backendData}, backendBufSize), backend: be}
	s.primary = bc
	return s, bc
}

func benchRelay(b *testing.B, rows, rowSize int) {
	data := resultSet(rows, rowSize)
	s, bc := benchSession(b, data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkRelaySmallResult relays a one-row result, as a point select.
func BenchmarkRelaySmallResult(b *testing.B) { benchRelay(b, 1, 120) }

// BenchmarkRelayRangeResult relays 100 rows of 120 bytes, as sysbench's
// range selects (oltp_read_only) return.
func BenchmarkRelayRangeResult(b *testing.B) { benchRelay(b, 100, 120) }

// BenchmarkRelayLargeResult relays 10,000 rows of 1 KiB.
func BenchmarkRelayLargeResult(b *testing.B) { benchRelay(b, 10000, 1024) }

// TestRelayAllocatesNothingPerRow checks the zero-allocation claim for rows.
func TestRelayAllocatesNothingPerRow(t *testing.T) {
	data := resultSet(1000, 200)
	s, bc := benchSession(&testing.B{}, data)
	allocs := testing.AllocsPerRun(50, func() {
		if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("relaying 1000 rows allocates %.1f times", allocs)
	}
}

// BenchmarkExecuteRouting routes and binds a sysbench-style prepared point
// select whose parameter types must be put back. It does not classify: the
// statement is classified once, when prepared (outside the loop), as the
// proxy does; BenchmarkClassify in router measures classification.
func BenchmarkExecuteRouting(b *testing.B) {
	s, bc := benchSession(b, nil)
	st := &stmt{class: router.Classify("SELECT c FROM sbtest1 WHERE id=?"), params: 1, on: map[*backendConn]*serverStmt{}}
	first := []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 42, 0, 0, 0}
	later := []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 42, 0, 0, 0}
	ss := &serverStmt{id: 7}
	s.bindTypes(first, st, ss)
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		d := router.Decide(st.class, &s.route, s.policy, now)
		p := s.bindTypes(later, st, ss)
		binary.LittleEndian.PutUint32(p[1:], ss.id)
		router.Note(st.class, d.Target, true, &s.route, false, true, now)
	}
	_ = bc
}

// BenchmarkCountStatement counts a statement in
// switchyard_statements_total once its series exists, as each statement
// does after the first of its route, command and class.
func BenchmarkCountStatement(b *testing.B) {
	m, _ := registerMetrics(nil)
	bm := m.forBackend(&Backend{Name: "bench"})
	bm.countStatement(1, cmdQuery, router.KindRead)
	b.ReportAllocs()
	for b.Loop() {
		bm.countStatement(1, cmdQuery, router.KindRead)
	}
}

// BenchmarkSyncState applies a session's state to a pooled connection that
// served another session (SET NAMES, sql_mode, time_zone changed), against a
// backend answering OK; and the common case, where nothing changed.
func BenchmarkSyncState(b *testing.B) {
	ok := []byte{7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}
	s, bc := benchSession(b, ok)
	s.vars = map[string]string{"character_set_client": "latin1", "character_set_connection": "latin1",
		"character_set_results": "latin1", "sql_mode": "ANSI", "time_zone": "+00:00"}
	b.Run("changed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bc.owner, bc.vars = nil, nil
			if err := s.sync(bc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.sync(bc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// trackedResultSet builds a one-row text result set as MySQL sends it to a
// client with CLIENT_DEPRECATE_EOF and session tracking: its OK terminator
// reports statement_id, which MySQL changes with every statement.
func trackedResultSet() []byte {
	out, add := packetWriter()
	add([]byte{1})
	add([]byte(benchColumnDef))
	add([]byte("\x03abc"))
	entry := mysql.PutLengthEncodedString([]byte("statement_id"))
	entry = append(entry, mysql.PutLengthEncodedString([]byte("21"))...)
	state := append([]byte{trackSystemVariables}, mysql.PutLengthEncodedString(entry)...)
	ok := []byte{0xfe, 0, 0, 0x02, 0x40, 0, 0, 0} // status AUTOCOMMIT|SESSION_STATE_CHANGED, no warnings, empty info
	add(append(ok, mysql.PutLengthEncodedString(state)...))
	return *out
}

// BenchmarkRelayTrackedResult relays trackedResultSet: a point select on
// MySQL, whose terminator carries a session variable Switchyard ignores.
func BenchmarkRelayTrackedResult(b *testing.B) {
	data := trackedResultSet()
	s, bc := trackedSession(b, data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
			b.Fatal(err)
		}
	}
}

// trackedSession is benchSession with session tracking and OK terminators
// on both sides.
func trackedSession(b *testing.B, data []byte) (*session, *backendConn) {
	s, bc := benchSession(b, data)
	bc.caps = mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_SESSION_TRACK
	s.caps = bc.caps
	return s, bc
}

// causalCases are a session's last GTID and a replica's applied position,
// as each engine writes them.
var causalCases = []struct{ name, version, last, applied string }{
	{"mariadb", fakeVersion, "0-1-1500", "0-1-1502,1-2-7"},
	{"mysql", "9.7.4", "c1d77ffd-f17b-11f1-9daa-02fc00000001:1500",
		"c1d77ffd-f17b-11f1-9daa-02fc00000001:1-1502,\nd2e88000-f17b-11f1-9daa-02fc00000002:1-7"},
}

// causalSession returns a session whose last write has the GTID last, and
// its connection to a replica that the monitor reports has applied applied.
func causalSession(b *testing.B, version, last, applied string) (*session, *backendConn) {
	s, primary := benchSession(b, nil)
	primary.version = version
	replica := &Backend{Name: "replica", Addr: "127.0.0.1:2", backendState: &backendState{}}
	s.srv.cur.Store(&Options{
		Backends:    []*Backend{primary.backend, replica},
		AppliedGTID: func(string) string { return applied },
	})
	s.lastGTID = last
	return s, &backendConn{backend: replica, version: version}
}

// BenchmarkCausalCheck decides whether a replica has applied the session's
// last write from the monitor's view of it, as the first causal read on a
// replica after each write does.
func BenchmarkCausalCheck(b *testing.B) {
	for _, tc := range causalCases {
		b.Run(tc.name, func(b *testing.B) {
			s, bc := causalSession(b, tc.version, tc.last, tc.applied)
			b.ReportAllocs()
			for b.Loop() {
				bc.seenGTID = ""
				if !s.caughtUp(bc) {
					b.Fatal("not caught up")
				}
			}
		})
	}
}

// TestStatementHotPathsAllocateNothing checks the zero-allocation claims
// of BenchmarkRelayTrackedResult and BenchmarkCausalCheck: once a GTID is
// parsed, neither a MySQL answer's tracked state nor a causal check
// allocates.
func TestStatementHotPathsAllocateNothing(t *testing.T) {
	s, bc := trackedSession(&testing.B{}, trackedResultSet())
	if n := testing.AllocsPerRun(50, func() {
		if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("relaying a result with tracked state allocates %.1f times", n)
	}
	for _, tc := range causalCases {
		s, bc := causalSession(&testing.B{}, tc.version, tc.last, tc.applied)
		if n := testing.AllocsPerRun(50, func() {
			bc.seenGTID = ""
			if !s.caughtUp(bc) {
				t.Fatalf("%s: not caught up", tc.name)
			}
		}); n != 0 {
			t.Errorf("%s: a causal check allocates %.1f times", tc.name, n)
		}
	}
}

var _ net.Conn = (*loopConn)(nil)

// BenchmarkCommand serves whole commands as a point select does: the
// client's packet read, classification, digest, routing, the round trip to
// the backend, the relay of a one-row result and the bookkeeping after it
// (metrics, digests, session state). Both sides are canned bytes in memory,
// so it measures Switchyard's own CPU per statement, without syscalls.
func BenchmarkCommand(b *testing.B) {
	for _, tc := range []struct {
		name string
		cmd  []byte
	}{
		{"query", append([]byte{mysql.COM_QUERY}, "SELECT c FROM sbtest1 WHERE id=42"...)},
		// sysbench's point select, prepared (statement 1, one INT parameter
		// whose type the client sent with an earlier execute)
		{"execute", []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 42, 0, 0, 0}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := commandSession(b, tc.cmd, resultSet(1, 120))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.command(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCommandAllocatesNothing checks BenchmarkCommand's zero-allocation
// claim: once a session has served a statement, serving it again
// allocates nothing, from the client's packet to the metrics.
func TestCommandAllocatesNothing(t *testing.T) {
	for name, cmd := range map[string][]byte{
		"query":   append([]byte{mysql.COM_QUERY}, "SELECT c FROM sbtest1 WHERE id=42"...),
		"execute": {mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 42, 0, 0, 0},
	} {
		s := commandSession(&testing.B{}, cmd, resultSet(1, 120))
		if n := testing.AllocsPerRun(100, func() {
			if err := s.command(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: a command allocates %.1f times", name, n)
		}
		if s.last == nil || s.last.backend.Name != "replica" {
			t.Errorf("%s: the read did not run on the replica (last connection %v)", name, s.last)
		}
	}
}

// commandSession returns a session whose client sends cmd again and again
// and whose primary and replica answer each with answer, with digests on
// and statement 1 prepared.
func commandSession(b *testing.B, cmd, answer []byte) *session {
	s, bc := benchSession(b, answer)
	bc.pool = &userPool{backend: bc.backend}
	// Reads go to a replica, as configured by default; its connection
	// answers as the primary's does.
	replica := &Backend{Name: "replica", Addr: "127.0.0.1:2", Role: replication.RoleReplica, Weight: 1, backendState: &backendState{}}
	rc := &backendConn{pconn: newPconn(&loopConn{data: answer}, backendBufSize), backend: replica, pool: &userPool{backend: replica}}
	bc.backend.Role = replication.RolePrimary
	opts := &Options{Backends: []*Backend{bc.backend, replica}}
	s.srv.cur.Store(opts)
	s.srv.replicas.Store(newReplicaSchedule(opts.Backends, false))
	s.replicas = map[*backendState]*backendConn{replica.backendState: rc}
	s.srv.digests = newDigestStore(s.srv.m.digestsEvicted)
	s.srv.digests.setMax(1000)
	s.route.Autocommit = true
	s.user = NewUser("app", "secret")
	s.db = "sbtest"
	s.collation = 45 // utf8mb4_general_ci
	s.primary.version = fakeVersion
	for _, bc := range s.conns() { // in the session's state already
		bc.owner, bc.db = s, s.db
	}
	s.client = newPconn(&loopConn{data: append([]byte{byte(len(cmd)), byte(len(cmd) >> 8), 0, 0}, cmd...)}, clientBufSize)
	// Statement 1, prepared on both connections.
	sql := "SELECT c FROM sbtest1 WHERE id=?"
	on := map[*backendConn]*serverStmt{}
	for _, bc := range s.conns() {
		on[bc] = &serverStmt{id: 7, types: []byte{3, 0}}
	}
	s.stmts = map[uint32]*stmt{1: {sql: sql, class: router.Classify(sql), params: 1, types: []byte{3, 0}, on: on}}
	return s
}
