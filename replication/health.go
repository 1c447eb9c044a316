package replication

import (
	"errors"
	"fmt"
	"time"
)

// verdict is what one probe says about a backend: the state it calls for and why.
type verdict struct {
	state  State
	reason string // empty for Usable
}

// judge reads one observation of a backend that currently plays role. The primary is
// judged on reachability alone; a replica also on its replication threads and lag.
func judge(obs *observation, role Role, lag lagResult, maxLag time.Duration) verdict {
	switch {
	case errors.Is(obs.err, errLoginRefused):
		return verdict{Down, obs.err.Error()} // the server answered: not "unreachable"
	case obs.err != nil:
		return verdict{Down, "unreachable: " + obs.err.Error()}
	}
	if role == RolePrimary {
		return verdict{Usable, ""}
	}
	if obs.replErr != "" {
		return verdict{Down, "replica status: " + obs.replErr}
	}
	rs := obs.repl
	switch {
	case rs == nil:
		return verdict{Down, "not replicating"}
	case rs.ioRunning == "No" && rs.ioErrno != 0:
		return verdict{Down, "replication broken: I/O thread " + threadError(rs.ioErrno, rs.ioError)}
	case rs.sqlRunning == "No" && rs.sqlErrno != 0:
		return verdict{Down, "replication broken: SQL thread " + threadError(rs.sqlErrno, rs.sqlError)}
	case rs.ioRunning == "No" && rs.sqlRunning == "No":
		return verdict{Down, "replication stopped: I/O and SQL threads stopped"}
	// A thread stopped without an error was stopped on purpose (STOP REPLICA
	// SQL_THREAD, a backup tool): the replica falls further behind for as long as it
	// stays stopped. An I/O thread that is "Connecting" is retrying, not stopped.
	case rs.ioRunning == "No":
		return verdict{Down, "replication stopped: I/O thread stopped"}
	case rs.sqlRunning == "No":
		return verdict{Down, "replication stopped: SQL thread stopped"}
	case lag.source == "":
		return verdict{Lagging, fmt.Sprintf("lag unknown (I/O thread %s, SQL thread %s)", rs.ioRunning, rs.sqlRunning)}
	case lag.lag > maxLag:
		return verdict{Lagging, fmt.Sprintf("lag %s above %s", lag.lag.Round(time.Millisecond), maxLag)}
	}
	return verdict{Usable, ""}
}

// health is a backend's state with the memory its hysteresis needs.
type health struct {
	state   State
	since   time.Time // when state last changed
	reason  string    // why not Usable, or progress towards readmission
	good    int       // consecutive good checks while not Usable
	checked bool      // at least one verdict applied
}

// next applies verdict v, judged at time at, and returns the new health. Exclusion is
// immediate. Readmission of a replica takes readmitAfter consecutive good verdicts; the
// primary and a backend's first verdict take effect at once.
func (h health) next(v verdict, role Role, readmitAfter int, at time.Time) health {
	n := h
	n.reason = v.reason
	target := v.state
	switch {
	case !h.checked:
		n.checked = true
	case v.state != Usable, h.state == Usable, role == RolePrimary:
	default:
		n.good++
		if n.good < readmitAfter {
			target = h.state
			n.reason = fmt.Sprintf("readmitting: %d of %d good checks", n.good, readmitAfter)
		}
	}
	if v.state != Usable || target == Usable {
		n.good = 0
	}
	if target != h.state || !h.checked {
		n.since = at
	}
	n.state = target
	return n
}

// probeDelay is the time between the starts of two probes after failures consecutive
// probes could not reach the server: the interval, doubling from the second failure,
// capped at maxBackoff. A reachable server, however unhealthy, keeps the interval.
func probeDelay(interval, maxBackoff time.Duration, failures int) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, max(maxBackoff, interval))
}
