package proxy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// Routing: each statement is classified by router, which decides between
// the primary, a replica, or the connection that ran the previous statement.
// The session then picks the connection, brings it to the session's state
// (database and session variables, learned through session tracking) and
// runs the statement there.

// errNoReplica is wrapped when a read cannot go to any replica.
var errNoReplica = errors.New("no usable replica")

// connFor returns the connection for decision d, and the target actually
// used (reads fall back to the primary when no replica can serve them).
func (s *session) connFor(d router.Decision) (*backendConn, router.Target, error) {
	switch d.Target {
	case router.TargetLast:
		if s.last != nil {
			return s.last, router.TargetLast, nil
		}
	case router.TargetReplica:
		if s.route.ReadOnlyTx && s.txConn != nil {
			return s.txConn, router.TargetReplica, nil
		}
		bc, err := s.replicaConn()
		if err == nil && d.Reason == "causal" && !s.caughtUp(bc) {
			return s.primaryConn()
		}
		if err == nil && d.Reason == "global" && !s.caughtUpGlobal(bc) {
			return s.primaryConn()
		}
		if err == nil {
			return bc, router.TargetReplica, nil
		}
		if s.srv.o().NoReplicaError {
			return nil, router.TargetReplica, newSQLError(mysql.ER_UNKNOWN_ERROR,
				"switchyard: %v for a read (routing.no_replica is error): %v", errNoReplica, err)
		}
		s.log.Debug("read falls back to the primary", "reason", err)
	}
	return s.primaryConn()
}

// primaryConn returns the session's primary connection.
func (s *session) primaryConn() (*backendConn, router.Target, error) {
	if s.primary == nil {
		if err := s.attachPrimary(); err != nil {
			return nil, router.TargetPrimary, err
		}
	}
	return s.primary, router.TargetPrimary, nil
}

// caughtUp reports whether the replica behind bc has applied the session's
// last write: known from an earlier check on bc, from the monitor's view of
// the replica, or by waiting for it there (MASTER_GTID_WAIT) up to the
// causal wait. The primary (in the read rotation with read_from_primary)
// took the write itself.
func (s *session) caughtUp(bc *backendConn) bool {
	if bc.backend == s.srv.primary() {
		return true
	}
	gtid := s.lastGTID
	if gtid == "" {
		// No GTID from the server (tracking unavailable): behave as
		// session consistency, reading from the primary for the window.
		return s.route.LastWrite.IsZero() || time.Since(s.route.LastWrite) >= s.policy.SessionWindow
	}
	return s.waitFor(bc, gtid)
}

// caughtUpGlobal reports whether the replica behind bc has applied every
// transaction the primary had committed when the read began: the primary's
// position is read now, and the replica waits for it up to the causal wait.
func (s *session) caughtUpGlobal(bc *backendConn) bool {
	if bc.backend == s.srv.primary() {
		return true
	}
	pc, _, err := s.primaryConn()
	if err != nil {
		return false
	}
	done := s.hold(pc)
	pos, err := pc.queryValue("SELECT @@GLOBAL.gtid_binlog_pos")
	done()
	if err != nil || pos == "" {
		return err == nil // nothing committed yet: any replica will do
	}
	return s.waitFor(bc, pos)
}

// waitFor waits on bc's server until it has applied the GTID position pos.
func (s *session) waitFor(bc *backendConn, pos string) bool {
	if bc.seenGTID == pos {
		return true
	}
	if f := s.srv.o().AppliedGTID; f != nil && gtidCovers(f(bc.backend.Name), pos) {
		bc.seenGTID = pos
		return true
	}
	wait := s.policy.CausalWait
	if wait <= 0 {
		return false
	}
	// The server gives up after wait; the deadline covers a server that
	// does not answer at all (frozen, or cut off by the monitor's Abandon).
	done := s.hold(bc)
	v, err := bc.queryValueWithin(fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos, wait.Seconds()), wait+gtidWaitMargin)
	done()
	if err != nil {
		s.log.Debug("GTID wait failed", "backend", bc.backend.Addr, "err", err)
		if !isSQLError(err) {
			s.dropConn(bc)
		}
		return false
	}
	if v != "0" {
		return false
	}
	bc.seenGTID = pos
	return true
}

// gtidWaitMargin is how much longer than the causal wait Switchyard waits
// for a replica's answer to MASTER_GTID_WAIT before it drops the connection
// and reads from the primary.
const gtidWaitMargin = 500 * time.Millisecond

// gtidCovers reports whether the MariaDB GTID position pos (a list of
// domain-server-seq) includes every GTID in want.
func gtidCovers(pos, want string) bool {
	if pos == "" || want == "" {
		return false
	}
	for _, w := range strings.Split(want, ",") {
		wd, ws, ok := splitGTID(strings.TrimSpace(w))
		if !ok {
			return false
		}
		covered := false
		for _, p := range strings.Split(pos, ",") {
			pd, ps, ok := splitGTID(strings.TrimSpace(p))
			if ok && pd == wd && ps >= ws {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// splitGTID returns the domain and sequence number of domain-server-seq.
func splitGTID(g string) (domain string, seq uint64, ok bool) {
	parts := strings.Split(g, "-")
	if len(parts) != 3 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(parts[2], 10, 64)
	return parts[0], n, err == nil
}

// replicaConn picks a replica by weighted round robin among the usable ones
// and returns the session's connection to it, in the session's state.
func (s *session) replicaConn() (*backendConn, error) {
	b := s.srv.pickReplica()
	if b == nil {
		return nil, errNoReplica
	}
	if bc := s.replicas[b]; bc != nil && bc.broken {
		s.dropConn(bc)
	} else if bc != nil {
		if err := s.sync(bc); err != nil {
			s.dropConn(bc)
			return nil, err
		}
		return bc, nil
	}
	bc, err := s.acquire(b, true)
	if err != nil {
		return nil, err
	}
	if s.replicas == nil {
		s.replicas = make(map[*Backend]*backendConn)
	}
	s.replicas[b] = bc
	return bc, nil
}

// dropConn closes a replica connection that failed and forgets it.
func (s *session) dropConn(bc *backendConn) {
	bc.broken = true
	if s.replicas[bc.backend] == bc {
		delete(s.replicas, bc.backend)
	}
	if s.last == bc {
		s.last = nil
	}
	if s.txConn == bc {
		s.txConn = nil
	}
	for _, st := range s.stmts {
		delete(st.on, bc)
		if st.last == bc {
			st.last = nil
		}
	}
	s.release(bc)
}

// sync brings bc to the session's state: its database and every session
// variable the client changed. The round trips it makes can be cut short
// (see hold).
func (s *session) sync(bc *backendConn) error {
	if bc.owner == s && bc.gen == s.varsGen && bc.db == s.db {
		return nil
	}
	defer s.hold(bc)()
	return s.syncHeld(bc)
}

// syncHeld is sync for a connection the session holds already. The
// transaction access mode is left alone on read-only connections:
// Switchyard keeps them read-only whatever the session sets.
func (s *session) syncHeld(bc *backendConn) error {
	if bc.owner == s && bc.gen == s.varsGen && bc.db == s.db {
		return nil
	}
	if bc.db != s.db {
		if s.db == "" {
			return errors.New("cannot leave the current database on this connection")
		}
		if err := bc.useDB(s.db); err != nil {
			return err
		}
	}
	var set strings.Builder
	add := func(name, value string) {
		if set.Len() == 0 {
			set.WriteString("SET SESSION ")
		} else {
			set.WriteString(", ")
		}
		set.WriteString(name)
		set.WriteByte('=')
		set.WriteString(value)
	}
	// Sorted, so that character_set_* come before collation_*: setting a
	// character set resets its collation.
	for _, name := range slices.Sorted(maps.Keys(s.vars)) {
		if bc.readOnly && isTxReadOnlyVar(name) {
			continue
		}
		if value := s.vars[name]; bc.vars[name] != value {
			add(name, sqlValue(name, value))
		}
	}
	// Variables another session changed on this connection go back to
	// their defaults.
	for _, name := range slices.Sorted(maps.Keys(bc.vars)) {
		if _, ok := s.vars[name]; !ok && !(bc.readOnly && isTxReadOnlyVar(name)) {
			add(name, "DEFAULT")
		}
	}
	if set.Len() > 0 {
		res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, set.String()...))
		if err != nil {
			return err
		}
		if res[0] != 0x00 {
			return parseErr(res)
		}
		clear(bc.vars)
		if bc.vars == nil {
			bc.vars = make(map[string]string, len(s.vars))
		}
		for name, value := range s.vars {
			if !(bc.readOnly && isTxReadOnlyVar(name)) {
				bc.vars[name] = value
			}
		}
	}
	bc.owner, bc.gen = s, s.varsGen
	return nil
}

// awaitPrimary holds a statement bound for the primary while the monitor
// knows of no writable server (a switchover in progress: the old primary is
// read-only and the new one not yet promoted), up to a few seconds, instead
// of sending it to a server that would refuse it.
func (s *session) awaitPrimary() {
	f := s.srv.o().NoPrimary
	if f == nil || !f() || s.inTransaction() {
		return
	}
	deadline := time.Now().Add(primaryWait)
	for f() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// primaryWait bounds awaitPrimary.
const primaryWait = 5 * time.Second

// followPrimary moves the session to the current primary after a switchover,
// at a statement outside a transaction. Session variables and the database
// follow; server-side state that cannot (temporary tables, locks, user
// variables, SQL prepared statements) stayed on the old primary, so such a
// session ends with an error saying so.
func (s *session) followPrimary() error {
	if s.primary == nil || s.inTransaction() {
		return nil
	}
	now := s.srv.primary()
	old := s.primary.backend
	if now.Addr == old.Addr {
		return nil
	}
	if s.route.Pins != 0 || s.route.UserVars {
		se := newSQLError(codeLostBackend, "switchyard: the primary moved from %s (%s) to %s (%s); this session's temporary tables, locks or variables stayed on the old one: reconnect",
			old.Name, old.Addr, now.Name, now.Addr)
		s.sendError(se)
		return errors.New("primary moved under a pinned session")
	}
	s.log.Info("session follows the new primary", "from", old.Addr, "to", now.Addr)
	bc := s.primary
	s.primary = nil
	for _, st := range s.stmts {
		delete(st.on, bc)
		if st.last == bc {
			st.last = nil
		}
	}
	if s.last == bc {
		s.last = nil
	}
	s.release(bc)
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	return nil
}

// useDB makes db the current database of bc (COM_INIT_DB).
func (bc *backendConn) useDB(db string) error {
	res, err := bc.roundTrip(append([]byte{mysql.COM_INIT_DB}, db...))
	if err != nil {
		return err
	}
	if res[0] == 0xff {
		return parseErr(res)
	}
	bc.db = db
	return nil
}

// syncInsertID gives bc, a primary connection, the session's
// LAST_INSERT_ID() before a statement that reads it. Only such statements
// pay for it: a connection that changes hands keeps the last owner's value
// until one comes.
func (s *session) syncInsertID(bc *backendConn) error {
	if bc.insertID == s.insertID || bc.backend.Addr != s.srv.primary().Addr {
		return nil
	}
	defer s.hold(bc)()
	res, err := bc.roundTrip(append([]byte{mysql.COM_QUERY}, "SET SESSION last_insert_id="+strconv.FormatUint(s.insertID, 10)...))
	if err != nil {
		return err
	}
	if res[0] != 0x00 {
		return parseErr(res)
	}
	bc.insertID = s.insertID
	return nil
}

// sqlValue renders a tracked variable value as an SQL literal.
func sqlValue(name, v string) string {
	if v == "" && (name == "character_set_results" || strings.HasSuffix(name, "_path")) {
		return "NULL"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && v != "" && v[0] != '+' && !strings.ContainsAny(v, "eEinfINF") {
		return v
	}
	return "'" + quoteEscaper.Replace(v) + "'"
}

// quoteEscaper escapes a value for a single-quoted SQL literal.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `'`, `''`)

// lexMode returns how the session's statements are tokenized: from the
// sql_mode and character_set_client the session set (learned through
// session tracking, whichever connection it ran on), else from the
// server's default sql_mode and the collation of the client's handshake. It
// never looks at the connection attached now: multiplexing may have handed
// it back, and it may hold another session's state until it is synced.
func (s *session) lexMode() router.Mode {
	if s.modeOK && s.modeAt == s.varsGen {
		return s.mode
	}
	sqlMode, ok := s.vars["sql_mode"]
	if !ok {
		sqlMode = s.defaultSQLMode
	}
	m := router.ModeForSQLMode(sqlMode)
	if cs, ok := s.vars["character_set_client"]; ok {
		m |= router.ModeForCharset(cs)
	} else {
		m |= router.ModeForCollationID(s.collation)
	}
	s.mode, s.modeAt, s.modeOK = m, s.varsGen, true
	return m
}

// beforeWrite forgets the session's last GTID before a statement runs on
// the primary, so that a write whose answer carries none (a result set with
// classic EOF packets, such as INSERT ... RETURNING) is not mistaken for one
// the replicas already have.
func (s *session) beforeWrite(bc *backendConn) {
	if bc == s.primary {
		s.prevGTID, s.lastGTID = s.lastGTID, ""
	}
}

// afterWrite makes sure the session knows the GTID of a write that
// committed without reporting it: it asks the primary (@@last_gtid).
func (s *session) afterWrite(c router.Class, bc *backendConn) {
	if bc != s.primary || s.lastGTID != "" {
		return
	}
	if s.failed || (c.Kind == router.KindRead && !s.rerouted) || s.inTransaction() {
		s.lastGTID = s.prevGTID // nothing committed
		return
	}
	if s.policy.Consistency != router.ConsistencyCausal {
		return
	}
	done := s.hold(bc)
	if v, err := bc.queryValue("SELECT @@last_gtid"); err == nil {
		s.lastGTID = v
	}
	done()
}

// note updates routing memory after a statement ran.
func (s *session) note(c router.Class, target router.Target, bc *backendConn, now time.Time) {
	if s.rerouted {
		c.Kind, c.Flags = router.KindWrite, c.Flags|router.FlagUnsure // it may have written
	}
	inTx, autocommit := false, true
	if s.primary != nil {
		inTx = s.primary.status&mysql.SERVER_STATUS_IN_TRANS != 0
		autocommit = s.primary.status&mysql.SERVER_STATUS_AUTOCOMMIT != 0
	}
	if bc == s.primary {
		target = router.TargetPrimary
	}
	pins := s.route.Pins
	router.Note(c, target, !s.failed, &s.route, inTx, autocommit, now)
	if added := s.route.Pins &^ pins; added != 0 {
		for _, p := range added.Pins() {
			s.srv.m.pins.WithLabelValues(p.String()).Inc()
		}
	}
	switch {
	case !s.route.ReadOnlyTx:
		s.txConn = nil
	case s.txConn == nil:
		s.txConn = bc
	}
}

// policyFor returns the routing policy of a user.
func (s *Server) policyFor(u User) router.Policy {
	p := s.o().Routing
	if u.Consistency != nil {
		p.Consistency = *u.Consistency
	}
	return p
}

// replicaSchedule is a weighted round-robin schedule: each replica appears
// as often as its weight (reduced by the weights' common divisor).
type replicaSchedule struct {
	slots []*Backend
	next  atomic.Uint64
}

// With withPrimary, a backend configured as the primary takes reads too.
// A backend that is the primary only by discovery (role left empty) stays
// in the schedule either way: pickReplica skips whichever backend is the
// primary at the time unless reads from the primary are on.
func newReplicaSchedule(backends []*Backend, withPrimary bool) *replicaSchedule {
	reads := func(b *Backend) bool { return (b.Role != "primary" || withPrimary) && b.Weight > 0 }
	g := 0
	for _, b := range backends {
		if reads(b) {
			g = gcd(g, b.Weight)
		}
	}
	rs := &replicaSchedule{}
	if g == 0 {
		return rs
	}
	// Interleave: round k takes every replica whose reduced weight exceeds k.
	for k := 0; ; k++ {
		added := false
		for _, b := range backends {
			if reads(b) && b.Weight/g > k {
				rs.slots = append(rs.slots, b)
				added = true
			}
		}
		if !added || len(rs.slots) > 10000 {
			break
		}
	}
	return rs
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pickReplica returns the next usable replica, or nil. The primary is not
// one unless Options.ReadFromPrimary puts it in the rotation.
func (s *Server) pickReplica() *Backend {
	rs := s.replicas.Load()
	n := len(rs.slots)
	if n == 0 {
		return nil
	}
	var primary *Backend
	if !s.o().ReadFromPrimary {
		primary = s.primary()
	}
	start := rs.next.Add(1)
	for i := range n {
		b := rs.slots[(start+uint64(i))%uint64(n)]
		if b != primary && s.usable(b) {
			return b
		}
	}
	return nil
}

// usable reports whether b may serve reads now.
func (s *Server) usable(b *Backend) bool {
	if b.drained.Load() || b.failedUntil.Load() > time.Now().UnixNano() {
		return false
	}
	if h := s.o().Health; h != nil {
		return h(b.Name)
	}
	return true
}

// excluded reports whether the monitor has taken b out of service now. The
// monitor publishes that before it abandons statements running there (see
// Abandon), so a session that marks a connection active and then finds its
// backend not excluded is sure to be cut off if it hangs.
func (s *Server) excluded(b *Backend) bool {
	h := s.o().Health
	return h != nil && !h(b.Name) && b.Addr != s.primary().Addr
}

// errExcluded fails a statement about to run on a backend the monitor has
// just found down.
var errExcluded = errors.New("the monitor found the backend down")

// markFailed keeps a backend that could not be reached out of read rotation
// for a second, until the monitor (or the next try) says otherwise.
func (b *Backend) markFailed() {
	b.failedUntil.Store(time.Now().Add(time.Second).UnixNano())
}

func (b *Backend) role() string {
	if b.Role == "" {
		return "backend"
	}
	return b.Role
}
