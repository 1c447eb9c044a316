package apps

import (
	"fmt"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// Where a statement must run.
const (
	onAny     = ""
	onPrimary = sandbox.RolePrimary
	onReplica = sandbox.RoleReplica
)

// expectedRole says where routing r must send a read, and why. It only
// states what the routing rules decide whatever the timing: a read after a
// write counts as inside the session window only when even the upper bound
// of the time since the write is shorter than the window.
func expectedRole(ev event, r routing) (role, why string) {
	switch {
	case ev.Locking:
		return onPrimary, "a locking read"
	case ev.TxWrote:
		return onPrimary, "its transaction has written"
	case !ev.Autocommit && r.Implicit == "primary":
		return onPrimary, "autocommit is off and implicit_transactions is primary"
	case ev.SinceWriteMs != nil && r.Consistency == "causal":
		// A replica that has applied the write, or the primary: the stale
		// read checks prove which.
		return onAny, "after the session's write, causal"
	case ev.SinceWriteMs != nil && r.Consistency == "session" && *ev.SinceWriteMs < float64(r.SessionWindow.Milliseconds()):
		return onPrimary, fmt.Sprintf("at most %.0fms after the session's write, inside session_window %s",
			*ev.SinceWriteMs, r.SessionWindow)
	case !ev.SessionWrote:
		return onReplica, "the session has not written"
	}
	return onAny, "outside the session window"
}

// placement counts where an application's reads ran.
type placement struct {
	primary, replica int            // reads that ran there
	want             map[string]int // reads by expected role (onAny included)
	servers          map[int]int    // reads by server_id
}

// checkReads checks every read of rep: it names the server that ran it, runs
// where routing r sends it, and the rows it returned were written by the
// primary.
func checkReads(t *testing.T, sb *sandbox.Sandbox, r routing, rep *report) placement {
	t.Helper()
	roles := map[int]string{}
	for _, srv := range sb.Servers() {
		roles[srv.ServerID] = srv.Role
	}
	p := placement{want: map[string]int{}, servers: map[int]int{}}
	for _, ev := range rep.reads() {
		if ev.ServerID == nil {
			t.Errorf("%s %s: read %q did not report a server", rep.App, rep.Phase, ev.Name)
			continue
		}
		got, ok := roles[*ev.ServerID]
		if !ok {
			t.Errorf("%s %s: read %q ran on unknown server_id %d", rep.App, rep.Phase, ev.Name, *ev.ServerID)
			continue
		}
		p.servers[*ev.ServerID]++
		if got == onPrimary {
			p.primary++
		} else {
			p.replica++
		}
		want, why := expectedRole(ev, r)
		p.want[want]++
		if want != onAny && got != want {
			t.Errorf("%s %s: read %q ran on the %s (server_id %d), want the %s: %s",
				rep.App, rep.Phase, ev.Name, got, *ev.ServerID, want, why)
		}
		for _, w := range ev.WrittenBy {
			if w != sb.Primary.ServerID {
				t.Errorf("%s %s: read %q returned a row written by server_id %d, want the primary's %d",
					rep.App, rep.Phase, ev.Name, w, sb.Primary.ServerID)
			}
		}
	}
	t.Logf("%s %s under %s: %d reads on the primary, %d on replicas (by server_id %v)",
		rep.App, rep.Phase, r.Name, p.primary, p.replica, p.servers)
	return p
}
