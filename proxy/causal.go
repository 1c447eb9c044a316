package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-db/switchyard/router"
)

// Causal reads: a read that must see the session's last write (consistency
// causal) goes to a replica only once that replica has applied the write's
// GTID; a global read, only once it has applied everything the primary had
// committed when the read began. Otherwise it runs on the primary. GTID
// positions are MariaDB's lists of domain-server-seq.

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
	if f := s.srv.opts().AppliedGTID; f != nil && gtidCovers(f(bc.backend.Name), pos) {
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
