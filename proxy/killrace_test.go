package proxy

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestKillAfterHandOff forces the race between KILL and multiplexing: after
// KILL chose the connection running the target's statement, and before it
// reaches the server, the target finishes, gives the connection back, and
// the pool hands it on to another session, which starts a statement. The
// KILL must not reach that statement.
func TestKillAfterHandOff(t *testing.T) {
	for _, query := range []bool{true, false} {
		t.Run(fmt.Sprintf("query=%v", query), func(t *testing.T) {
			// One connection to one server for everyone: when the target
			// gives it back, the waiting bystander gets it.
			p := startProxy(t, func(o *Options) {
				o.Backends = o.Backends[:1]
				o.Pool.MaxOpen = 1
			})
			killer := loginRaw(t, p.addr, appUser, appPass, "", 0)
			target := loginRaw(t, p.addr, appUser, appPass, "", 0)
			bystander := loginRaw(t, p.addr, appUser, appPass, "", 0)
			before := holdingsOf(p)
			before.clients = 0 // all three leave before the end

			target.command(append([]byte{mysql.COM_QUERY}, "SELECT SLEEP(0.5)"...))
			waitBusy(t, p.Server, target.connID)
			bystander.command(append([]byte{mysql.COM_QUERY}, "SELECT SLEEP(1)"...))
			waitPoolWaiters(t, p)
			by, _ := p.lookup(bystander.connID)

			var handedOn, aimed atomic.Bool
			testHookKillAimed = func(_ *session, bc *backendConn) {
				aimed.Store(true)
				// Let the target finish and the bystander start.
				deadline := time.Now().Add(5 * time.Second)
				for by.active.Load() == nil && time.Now().Before(deadline) {
					waitTick()
				}
				handedOn.Store(by.active.Load() == bc)
			}
			t.Cleanup(func() { testHookKillAimed = nil })
			kill := "KILL CONNECTION "
			if query {
				kill = "KILL QUERY "
			}
			killer.command(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("%s%d", kill, target.connID)...))
			if ok := killer.read(); ok[0] != 0x00 {
				t.Fatalf("%s: %v", kill, parseErr(ok))
			}
			testHookKillAimed = nil
			if !aimed.Load() {
				t.Fatalf("%s never aimed at the target's connection: the race was not exercised", kill)
			}
			if handedOn.Load() {
				t.Errorf("the connection the KILL was aimed at passed to another session before the KILL went out")
			}

			// The bystander's sleep ran to its end: SLEEP returns 0, not
			// the 1 of an interrupted sleep, nor an error.
			res := bystander.readResult()
			if last := res[len(res)-1]; last[0] == 0xff {
				t.Fatalf("the bystander's statement failed: %v", parseErr(last))
			}
			if row := res[len(res)-2]; string(row) != "\x010" {
				t.Errorf("the bystander's SLEEP(1) returned %q, want 0", row[1:])
			}
			if query {
				if res := target.readResult(); res[len(res)-1][0] == 0xff {
					t.Errorf("the target's statement failed: %v", parseErr(res[len(res)-1]))
				}
				if res := target.query("SELECT 1"); res[0][0] == 0xff {
					t.Errorf("the target's session after KILL QUERY: %v", parseErr(res[0]))
				}
			} else {
				target.readResult() // it ended before the KILL went out
				target.expectClosed()
			}
			for _, r := range []*rawClient{killer, target, bystander} {
				r.c.nc.Close()
			}
			settledAt(t, p, before)
		})
	}
}

// waitPoolWaiters waits until a session waits for a pooled connection.
func waitPoolWaiters(t *testing.T, p *testProxy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, b := range p.opts().Backends {
			b.mu.Lock()
			for _, up := range b.pools {
				if up.waiting.Load() > 0 {
					b.mu.Unlock()
					return
				}
			}
			b.mu.Unlock()
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waits for a connection")
		}
		waitTick()
	}
}

// readResult reads the answer to a query already sent: an OK or ERR, or a
// result set up to its terminator.
func (r *rawClient) readResult() [][]byte {
	r.t.Helper()
	first := r.read()
	if first[0] == 0x00 || first[0] == 0xff {
		return [][]byte{first}
	}
	ps := [][]byte{first}
	n, _, _ := mysql.LengthEncodedInt(first)
	for range n {
		ps = append(ps, r.read())
	}
	if r.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		ps = append(ps, r.read())
	}
	for {
		p := r.read()
		ps = append(ps, p)
		if p[0] == 0xff || (p[0] == 0xfe && len(p) < 0xffffff) {
			return ps
		}
	}
}
