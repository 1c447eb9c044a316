package proxy

import (
	"sync/atomic"

	"github.com/switchyard-db/switchyard/replication"
)

// replicaSchedule is a weighted round-robin schedule: each replica appears
// as often as its weight (reduced by the weights' common divisor).
type replicaSchedule struct {
	slots []*Backend
	next  atomic.Uint64
}

// newReplicaSchedule builds the read rotation over backends. With
// withPrimary, a backend configured as the primary takes reads too.
// A backend that is the primary only by discovery (role left empty) stays
// in the schedule either way: pickReplica skips whichever backend is the
// primary at the time unless reads from the primary are on.
func newReplicaSchedule(backends []*Backend, withPrimary bool) *replicaSchedule {
	reads := func(b *Backend) bool { return (b.Role != replication.RolePrimary || withPrimary) && b.Weight > 0 }
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
	if !s.opts().ReadFromPrimary {
		primary = s.primary()
	}
	// A slot whose replica cannot serve takes the next ticket rather than
	// the next slot, so that its share spreads over the others by their
	// weights instead of falling to its neighbour.
	for range n {
		b := rs.slots[rs.next.Add(1)%uint64(n)]
		if b != primary && s.usable(b) {
			return b
		}
	}
	// Tickets taken meanwhile by other sessions may have skipped the
	// usable ones: look at every slot once.
	for _, b := range rs.slots {
		if b != primary && s.usable(b) {
			return b
		}
	}
	return nil
}
