package proxy

import (
	"errors"
	"time"
)

// Following the primary through a switchover: statements for the primary
// wait briefly while there is none (awaitPrimary), and a session moves to
// the new one between transactions (followPrimary).

// awaitPrimary holds a statement bound for the primary while the monitor
// knows of no writable server (a switchover in progress: the old primary is
// read-only and the new one not yet promoted), up to a few seconds, instead
// of sending it to a server that would refuse it.
func (s *session) awaitPrimary() {
	f := s.srv.opts().NoPrimary
	if f == nil || !f() || s.inTransaction() {
		return
	}
	deadline := time.Now().Add(primaryWait)
	for f() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitNewPrimary waits up to Options.AwaitFailover for another server to
// take writes after the primary could not be reached; it reports whether
// one did.
func (s *session) awaitNewPrimary() bool {
	return s.awaitPrimaryChange(s.srv.primary(), s.srv.opts().AwaitFailover)
}

// followsTopology reports whether the monitor names the primary, so that
// it may change under the session.
func (s *session) followsTopology() bool { return s.srv.opts().Primary != nil }

// awaitPrimaryChange waits up to d for a server other than old to take
// writes, asking the monitor to look at old at once; it reports whether one
// did.
func (s *session) awaitPrimaryChange(old *Backend, d time.Duration) bool {
	o := s.srv.opts()
	if d <= 0 || o.Primary == nil {
		return false
	}
	if o.Recheck != nil {
		o.Recheck(old.Name)
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if now := s.srv.primary(); !now.is(old) && (o.NoPrimary == nil || !o.NoPrimary()) {
			return true
		}
	}
	return false
}

// awaitReadable holds a read that has no usable replica while the primary,
// where it would fall back, is down too (a failover under way: a replica
// being promoted, the others not caught up yet), up to
// Options.AwaitFailover, until a replica is usable again or a primary
// takes writes. It reports whether a replica is usable now.
func (s *session) awaitReadable() bool {
	o := s.srv.opts()
	if o.AwaitFailover <= 0 || o.NoPrimary == nil || !o.NoPrimary() {
		return false
	}
	deadline := time.Now().Add(o.AwaitFailover)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if s.srv.pickReplica() != nil {
			return true
		}
		if !o.NoPrimary() {
			return false // the new primary serves the read
		}
	}
	return false
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
	s.resetAndPut(bc)
	if err := s.attachPrimary(); err != nil {
		s.sendError(asSQLError(err))
		return err
	}
	return nil
}
