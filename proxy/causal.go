package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// Causal reads: a read that must see the session's last write (consistency
// causal) goes to a replica only once that replica has applied the write's
// GTID; a global read, only once it has applied everything the primary had
// committed when the read began. Otherwise it runs on the primary. GTIDs
// are MariaDB's positions (domain-server-seq per domain) or MySQL's GTID
// sets (uuid:interval...), told apart by the server's version.

// caughtUp reports whether the replica behind bc has applied the session's
// last write: known from an earlier check on bc, from the monitor's view of
// the replica, or by waiting for it there up to the causal wait. The
// primary (in the read rotation with read_from_primary) took the write
// itself.
func (s *session) caughtUp(bc *backendConn) bool {
	if bc.backend.is(s.srv.primary()) {
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
	if bc.backend.is(s.srv.primary()) {
		return true
	}
	pc, _, err := s.primaryConn()
	if err != nil {
		return false
	}
	q := "SELECT @@GLOBAL.gtid_executed"
	if isMariaDB(pc.version) {
		q = "SELECT @@GLOBAL.gtid_binlog_pos"
	}
	done := s.hold(pc)
	pos, err := pc.queryValue(q)
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
	mariaDB := isMariaDB(bc.version)
	if f := s.srv.opts().AppliedGTID; f != nil {
		applied := bc.backend.appliedGTID(f(bc.backend.Name), mariaDB)
		if applied.covers(s.wantGTID(pos, mariaDB)) {
			bc.seenGTID = pos
			return true
		}
	}
	wait := s.policy.CausalWait
	if wait <= 0 {
		return false
	}
	// MariaDB's MASTER_GTID_WAIT answers 0 once the position is applied,
	// -1 on timeout; MySQL's WAIT_FOR_EXECUTED_GTID_SET 0 or 1.
	q := "SELECT WAIT_FOR_EXECUTED_GTID_SET('%s', %.3f)"
	if mariaDB {
		q = "SELECT MASTER_GTID_WAIT('%s', %.3f)"
	}
	// The server gives up after wait; the deadline covers a server that
	// does not answer at all (frozen, or cut off by the monitor's Abandon).
	done := s.hold(bc)
	v, err := bc.queryValueWithin(fmt.Sprintf(q, pos, wait.Seconds()), wait+gtidWaitMargin)
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
// for a replica's answer to its GTID wait before it drops the connection
// and reads from the primary.
const gtidWaitMargin = 500 * time.Millisecond

// wantGTID returns the GTID position pos parsed, from the session's cache:
// a causal session checks its last write against each replica on every
// read until the next write, and parses it once.
func (s *session) wantGTID(pos string, mariaDB bool) *gtidSet {
	if g := s.wanted; g != nil && g.text == pos && g.mariaDB == mariaDB {
		return g
	}
	s.wanted = parseGTIDSet(pos, mariaDB)
	return s.wanted
}

// appliedGTID returns the position the monitor reports b has applied,
// parsed: once per change of the text, whatever the number of sessions
// that read it.
func (b *Backend) appliedGTID(pos string, mariaDB bool) *gtidSet {
	if g := b.applied.Load(); g != nil && g.text == pos && g.mariaDB == mariaDB {
		return g
	}
	g := parseGTIDSet(pos, mariaDB)
	b.applied.Store(g)
	return g
}

// gtidSet is a GTID position or set as a server wrote it, parsed. It is
// not changed once made: sessions share a backend's.
type gtidSet struct {
	text    string
	mariaDB bool
	set     mysql.GTIDSet // nil: the text is not a GTID set
}

// parseGTIDSet parses a MariaDB position or a MySQL GTID set.
func parseGTIDSet(text string, mariaDB bool) *gtidSet {
	g := &gtidSet{text: text, mariaDB: mariaDB}
	flavor := mysql.MySQLFlavor
	if mariaDB {
		flavor = mysql.MariaDBFlavor
		// go-mysql reads an empty element as 0-0-0, a GTID of domain 0,
		// which would move that domain's position back (with a log line
		// of its own). No server writes one.
		if strings.Contains(","+text+",", ",,") {
			return g
		}
	}
	if set, err := mysql.ParseGTIDSet(flavor, text); err == nil {
		g.set = set
	}
	return g
}

// covers reports whether the position g includes every GTID of want: for
// MariaDB, g's sequence number in each of want's domains is at least
// want's (whichever server wrote it: a domain's transactions apply in
// order); for MySQL, want is a subset of g. An empty want covers nothing:
// a session that knows no GTID cannot know what it waits for.
func (g *gtidSet) covers(want *gtidSet) bool {
	if g == nil || g.set == nil || want.set == nil || want.set.IsEmpty() || g.mariaDB != want.mariaDB {
		return false
	}
	return g.set.Contain(want.set)
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
// committed without reporting it: it asks the primary. MariaDB keeps the
// session's last GTID in @@last_gtid. MySQL has no such variable; its
// @@GLOBAL.gtid_executed holds every transaction the primary committed,
// the write included once it has committed: a replica that has all of them
// has the write (the wait may be for more than needed, never for less).
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
	q := "SELECT @@GLOBAL.gtid_executed"
	if isMariaDB(bc.version) {
		q = "SELECT @@last_gtid"
	}
	done := s.hold(bc)
	if v, err := bc.queryValue(q); err == nil {
		s.lastGTID = v
	}
	done()
}
