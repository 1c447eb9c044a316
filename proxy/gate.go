package proxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The write gate: while a switchover changes the primary, statements bound
// for the primary outside a transaction wait at the gate, and the switchover
// waits until no session is past it (HoldWrites, WaitQuiet). Reads on
// replicas go on.
//
// A session marks itself in flight (session.inFlight) before it looks at
// the gate, and the switchover closes the gate before it looks at the
// sessions: whichever comes second sees the other, so no statement reaches
// the old primary once WaitQuiet has returned.

// writeGate is the Server's gate.
type writeGate struct {
	held atomic.Bool
	mu   sync.Mutex
	open chan struct{} // closed when the hold in force ends
}

// gateMaxWait bounds a statement's wait at a gate whose holder never lets
// go (it cannot: release is deferred), so that no session waits forever.
const gateMaxWait = time.Minute

// HoldWrites makes statements bound for the primary wait, from sessions
// not in a transaction, until release is called. Holds do not nest: the
// caller (a switchover) runs one at a time.
func (s *Server) HoldWrites() (release func()) {
	g := &s.gate
	g.mu.Lock()
	g.open = make(chan struct{})
	g.held.Store(true)
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.held.Store(false)
			close(g.open)
			g.mu.Unlock()
		})
	}
}

// WaitQuiet waits until no session has a statement past the gate or a
// transaction open: then nothing reaches the primary until the hold ends.
// When ctx ends first it says how many sessions were still busy.
func (s *Server) WaitQuiet(ctx context.Context) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		busy := 0
		s.mu.Lock()
		for _, sess := range s.sessions {
			if sess.inFlight.Load() {
				busy++
			}
		}
		s.mu.Unlock()
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions still ran a statement or held a transaction open: %w", busy, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// enterGate marks the session in flight before a statement goes to decide
// its connection. A write (toPrimary) outside a transaction waits while
// writes are held; it reports whether it waited, and the primary may have
// changed meanwhile.
func (s *session) enterGate(toPrimary bool) (waited bool) {
	s.inFlight.Store(true)
	g := &s.srv.gate
	if !toPrimary || !g.held.Load() || s.inTransaction() {
		return false
	}
	s.inFlight.Store(false)
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	t := time.NewTimer(gateMaxWait)
	select {
	case <-open:
	case <-t.C:
	}
	t.Stop()
	s.inFlight.Store(true)
	return true
}

// leaveGate ends the session's flight once its command is done, unless a
// transaction stays open: WaitQuiet waits for that too.
func (s *session) leaveGate() {
	if !s.inTransaction() {
		s.inFlight.Store(false)
	}
}
