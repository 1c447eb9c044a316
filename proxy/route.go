package proxy

import (
	"errors"
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
		if errors.Is(err, errNoReplica) && s.awaitReadable() {
			bc, err = s.replicaConn()
		}
		if err == nil && d.Reason == "causal" && !s.caughtUp(bc) {
			return s.primaryConn()
		}
		if err == nil && d.Reason == "global" && !s.caughtUpGlobal(bc) {
			return s.primaryConn()
		}
		if err == nil {
			return bc, router.TargetReplica, nil
		}
		if s.srv.opts().NoReplicaError {
			return nil, router.TargetReplica, newSQLError(mysql.ER_UNKNOWN_ERROR,
				"switchyard: %w for a read (routing.no_replica is error): %v", errNoReplica, err)
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

// replicaConn picks a replica by weighted round robin among the usable ones
// and returns the session's connection to it, in the session's state.
func (s *session) replicaConn() (*backendConn, error) {
	b := s.srv.pickReplica()
	if b == nil {
		return nil, errNoReplica
	}
	if bc := s.replicas[b.backendState]; bc != nil && bc.broken {
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
		s.replicas = make(map[*backendState]*backendConn)
	}
	s.replicas[b.backendState] = bc
	return bc, nil
}

// dropConn closes a replica connection that failed and forgets it.
func (s *session) dropConn(bc *backendConn) {
	bc.broken = true
	if s.replicas[bc.backend.backendState] == bc {
		delete(s.replicas, bc.backend.backendState)
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
	s.resetAndPut(bc)
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
	p := s.opts().Routing
	if u.Consistency != nil {
		p.Consistency = *u.Consistency
	}
	return p
}
