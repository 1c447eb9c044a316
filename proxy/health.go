package proxy

import (
	"time"
)

// Backend health as routing sees it: the monitor's verdict (Options.Health),
// an operator's drain, and a short exclusion after a failed connection
// attempt.

// usable reports whether b may serve reads now.
func (s *Server) usable(b *Backend) bool {
	if b.drained.Load() {
		return false
	}
	if until := b.failedUntil.Load(); until != 0 && until > time.Now().UnixNano() {
		return false
	}
	if h := s.opts().Health; h != nil {
		return h(b.Name)
	}
	return true
}

// excluded reports whether the monitor has taken b out of service now. The
// monitor publishes that before it abandons statements running there (see
// Abandon), so a session that marks a connection active and then finds its
// backend not excluded is sure to be cut off if it hangs.
func (s *Server) excluded(b *Backend) bool {
	h := s.opts().Health
	return h != nil && !h(b.Name) && b.Addr != s.primary().Addr
}

// markFailed keeps a backend that could not be reached out of read rotation
// for a second, until the monitor (or the next try) says otherwise.
func (b *Backend) markFailed() {
	b.failedUntil.Store(time.Now().Add(time.Second).UnixNano())
}
