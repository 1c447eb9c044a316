package proxy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchyard-db/switchyard/replication"
)

// Control of a running Server: reload, drain, and status for the admin API.

// Update puts new options in force without dropping client sessions: users,
// backends (matched by address, keeping their pools and state), weights,
// roles, routing, limits and timeouts. Sessions already logged in keep their
// user and routing policy; new statements use the new backends at once.
// TLS, the RSA key, the logger and the registerer cannot change.
func (s *Server) Update(opts Options) error {
	if err := opts.normalize(); err != nil {
		return err
	}
	old := s.opts()
	opts.TLS, opts.TLSMode, opts.RSAKey = old.TLS, old.TLSMode, old.RSAKey
	opts.Logger, opts.Registerer = old.Logger, old.Registerer
	byAddr := make(map[string]*Backend, len(old.Backends))
	for _, b := range old.Backends {
		byAddr[b.Addr] = b
	}
	kept := make(map[*Backend]bool)
	backends := make([]*Backend, 0, len(opts.Backends))
	for _, nb := range opts.Backends {
		if b := byAddr[nb.Addr]; b != nil {
			nb.backendState = b.backendState
			kept[b] = true
		}
		backends = append(backends, nb)
	}
	opts.Backends = backends
	s.install(&opts)
	for _, b := range old.Backends {
		if !kept[b] {
			// Removed: idle connections close now; sessions let go of the
			// rest as they end.
			b.reapIdle(time.Now(), true)
		}
	}
	s.log.Info("configuration updated", "backends", len(backends), "users", len(opts.Users))
	return nil
}

// errUnknownBackend is returned for a backend name not in the configuration.
var errUnknownBackend = errors.New("unknown backend")

// Drain takes the backend named out of service (drained true) or puts it
// back. A drained replica gets no new reads; sessions move away at their
// next statement outside a read-only transaction. The primary cannot be
// drained: writes have nowhere else to go.
func (s *Server) Drain(name string, drained bool) error {
	for _, b := range s.opts().Backends {
		if b.Name != name {
			continue
		}
		if drained && b.is(s.primary()) {
			return fmt.Errorf("backend %s is the primary: writes have nowhere else to go", name)
		}
		b.drained.Store(drained)
		s.log.Warn("backend drain changed", "backend", name, "drained", drained)
		return nil
	}
	return fmt.Errorf("%w %q", errUnknownBackend, name)
}

// BackendStatus describes one backend for the admin API.
type BackendStatus struct {
	Name    string           `json:"name"`
	Address string           `json:"address"`
	Role    replication.Role `json:"role"`
	Weight  int              `json:"weight"`
	Drained bool             `json:"drained"`
	// Usable is whether the backend may take new reads now (replicas) or
	// writes (the primary).
	Usable bool `json:"usable"`
	// InUse and Idle count the pooled connections, over all users.
	InUse int `json:"in_use"`
	Idle  int `json:"idle"`
	// WritableBy lists the users who can change data on this replica, as
	// last checked (read_only off, or privileges that bypass it). Empty is
	// what a replica should show.
	WritableBy []string `json:"writable_by,omitempty"`
}

// Backends reports every backend's state.
func (s *Server) Backends() []BackendStatus {
	primary := s.primary()
	var out []BackendStatus
	for _, b := range s.opts().Backends {
		bs := BackendStatus{Name: b.Name, Address: b.Addr, Role: b.Role, Weight: b.Weight, Drained: b.drained.Load()}
		if b == primary {
			bs.Role = replication.RolePrimary
			bs.Usable = b.failedUntil.Load() <= time.Now().UnixNano()
		} else {
			if bs.Role == replication.RoleAuto {
				bs.Role = replication.RoleReplica
			}
			bs.Usable = s.usable(b)
			bs.WritableBy = b.writableBy()
			slices.Sort(bs.WritableBy)
		}
		bs.InUse, bs.Idle = b.counts()
		out = append(out, bs)
	}
	return out
}

// Ready reports whether the proxy can serve: the primary answers. It dials
// the primary and reads its greeting, within the connect timeout.
func (s *Server) Ready() error {
	b := s.primary()
	if err := probe(b.Addr, s.opts().Pool.Connect); err != nil {
		return fmt.Errorf("primary %s (%s): %w", b.Name, b.Addr, err)
	}
	return nil
}

// Clients returns the number of client sessions.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Abandon closes the replica connections of statements running now on the
// backend named, because it stopped answering (the monitor saw it hang or
// die). Reads among them that had not answered yet run again elsewhere; the
// others fail with codeLostBackend. Primary connections are left alone: a write
// in flight is never cut short by Switchyard.
func (s *Server) Abandon(name string) int {
	for _, b := range s.opts().Backends {
		if b.Name == name && !b.is(s.primary()) {
			b.abandonDials()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.sessions {
		if bc := sess.activeReplica.Load(); bc != nil && bc.backend.Name == name {
			bc.nc.Close()
			n++
		}
	}
	if n > 0 {
		s.log.Warn("abandoned statements on a failed backend", "backend", name, "statements", n)
	}
	return n
}

// CutOff closes every connection to the backend named, in use or idle.
// After a failover the old primary must not acknowledge anything: a
// statement running there fails with a lost connection, and sessions that
// held a connection there move to the new primary at their next statement.
// It returns how many connections it closed.
func (s *Server) CutOff(name string) int {
	n := 0
	for _, b := range s.opts().Backends {
		if b.Name != name {
			continue
		}
		b.abandonDials()
		for _, p := range b.userPools() {
			p.mu.Lock()
			for bc := range p.inUse {
				bc.nc.Close()
				n++
			}
			p.mu.Unlock()
		}
		b.reapIdle(time.Now(), true)
	}
	if n > 0 {
		s.log.Warn("cut off connections to a former primary", "backend", name, "connections", n)
	}
	return n
}
