package replication_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// peer is another Switchyard's side of a switchover: a monitor standing by
// with a write gate that records what it was asked to do and what the
// servers looked like then.
type peer struct {
	*watched
	mu sync.Mutex
	// writableAtQuiet: whether the old primary still took writes when the
	// peer was asked to quiesce (it must: the peer holds before the demotion).
	writableAtQuiet []bool
	// primaryAtRelease: the primary the peer's monitor saw when it let
	// writes go.
	primaryAtRelease []string
	quiet            func(ctx context.Context) error
}

func standBy(t *testing.T, sb *sandbox.Sandbox, acct replication.Account, quiet func(context.Context) error) *peer {
	p := &peer{watched: startMonitor(t, sb, testOptions(sb, false)), quiet: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunStandby(ctx, replication.StandbyOptions{
			Account: acct, Timeout: time.Second,
			HoldWrites: func() func() {
				return func() {
					p.mu.Lock()
					p.primaryAtRelease = append(p.primaryAtRelease, p.Snapshot().Primary)
					p.mu.Unlock()
				}
			},
			WaitQuiet: func(ctx context.Context) error {
				var ro int
				err := errors.New("no primary")
				for _, srv := range sb.Servers() {
					if srv.Name == p.Snapshot().Primary {
						db, derr := sb.RootDB(srv)
						if err = derr; err == nil {
							err = db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro)
						}
					}
				}
				p.mu.Lock()
				p.writableAtQuiet = append(p.writableAtQuiet, err == nil && ro == 0)
				quiet := p.quiet
				p.mu.Unlock()
				return quiet(ctx)
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// TestStandbyHoldsWrites: a switchover made by one monitor has another,
// standing by on the primary, hold its writes before the primary turns
// read-only and let them go once it sees the new primary. A peer whose
// sessions never quiesce is waited for only up to the timeout.
func TestStandbyHoldsWrites(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{})
	acct := replication.Account{User: "root", Password: sb.Opts.RootPassword,
		ReplicationUser: sandbox.ReplicationUser, ReplicationPassword: sandbox.ReplicationPassword}
	m := startMonitor(t, sb, testOptions(sb, false))
	p := standBy(t, sb, acct, func(context.Context) error { return nil })
	// Give the stand-by connection its first probe interval to log in.
	time.Sleep(2 * testInterval)

	to := sb.Replicas[0]
	rep, err := m.Switchover(context.Background(), replication.SwitchoverOptions{Target: to.Name, Account: acct, Timeout: time.Second})
	if err != nil {
		t.Fatalf("switchover: %v (%+v)", err, rep)
	}
	if rep.PeersHeld != 1 {
		t.Errorf("peers held: %d, want 1; steps %+v", rep.PeersHeld, rep.Steps)
	}
	p.waitReleased(t, 1)
	p.mu.Lock()
	if len(p.writableAtQuiet) != 1 || !p.writableAtQuiet[0] {
		t.Errorf("the peer was asked to quiesce %d times, the old primary writable then: %v (want once, true)",
			len(p.writableAtQuiet), p.writableAtQuiet)
	}
	if p.primaryAtRelease[0] != to.Name {
		t.Errorf("the peer let writes go while its monitor saw %q as the primary, want %s", p.primaryAtRelease[0], to.Name)
	}
	p.mu.Unlock()
	t.Logf("switchover to %s: writes held %s here and in %d other; steps %+v", to.Name, rep.WritesHeld, rep.PeersHeld, rep.Steps)

	// Back, with the peer never quiet: the switchover waits for it up to
	// its timeout, then goes on without it.
	p.mu.Lock()
	p.quiet = func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("a session keeps its transaction open")
	}
	p.mu.Unlock()
	m.waitFor(t, patience, "every backend usable on the new topology", func(s *replication.Snapshot) bool {
		for _, b := range s.Backends {
			if b.State != replication.Usable {
				return false
			}
		}
		return s.Primary == to.Name
	})
	p.waitFor(t, patience, "the peer sees the new primary", func(s *replication.Snapshot) bool { return s.Primary == to.Name })
	time.Sleep(2 * testInterval) // the stand-by connection moves to the new primary
	start := time.Now()
	rep, err = m.Switchover(context.Background(), replication.SwitchoverOptions{Target: sb.Primary.Name, Account: acct, Timeout: time.Second})
	if err != nil {
		t.Fatalf("switchover back: %v (%+v)", err, rep)
	}
	if rep.PeersHeld != 0 || rep.WritesHeld < time.Second {
		t.Errorf("switchover back with a peer never quiet: peers held %d, writes held %s; want 0 and at least the 1s timeout",
			rep.PeersHeld, rep.WritesHeld)
	}
	p.waitReleased(t, 2)
	t.Logf("switchover back with a peer never quiet: took %s, writes held %s", time.Since(start).Round(time.Millisecond), rep.WritesHeld)
}

// waitReleased waits until the peer has let writes go n times.
func (p *peer) waitReleased(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		p.mu.Lock()
		got := len(p.primaryAtRelease)
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peer let writes go %d times, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStandbyIgnoresOtherAccounts: user locks are anyone's to take. An
// application holding the switchover lock does not make a Switchyard hold
// its writes, and one holding a stand-by slot is not waited for.
func TestStandbyIgnoresOtherAccounts(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{})
	acct := replication.Account{User: "root", Password: sb.Opts.RootPassword,
		ReplicationUser: sandbox.ReplicationUser, ReplicationPassword: sandbox.ReplicationPassword}
	app := sb.Opts.Users[0]
	adb, err := sql.Open("mysql", sb.Primary.DSN(app.Name, app.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	attacker, err := adb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	for _, key := range []string{"switchyard.peer.0", "switchyard.switchover"} {
		var got int
		if err := attacker.QueryRowContext(t.Context(), "SELECT GET_LOCK(?, 0)", key).Scan(&got); err != nil || got != 1 {
			t.Fatalf("%s takes %s: %d, %v", app.Name, key, got, err)
		}
	}
	m := startMonitor(t, sb, testOptions(sb, false))
	p := standBy(t, sb, acct, func(context.Context) error { return nil })
	time.Sleep(2500 * time.Millisecond) // two stand-by sleeps and more
	p.mu.Lock()
	holds := len(p.writableAtQuiet)
	p.mu.Unlock()
	if holds != 0 {
		t.Errorf("the peer held its writes %d times for an application's lock", holds)
	}

	if _, err := attacker.ExecContext(t.Context(), "DO RELEASE_LOCK('switchyard.switchover')"); err != nil {
		t.Fatal(err)
	}
	timeout := 2 * time.Second
	rep, err := m.Switchover(t.Context(), replication.SwitchoverOptions{Target: sb.Replicas[0].Name, Account: acct, Timeout: timeout})
	if err != nil {
		t.Fatalf("switchover: %v (%+v)", err, rep)
	}
	for _, st := range rep.Steps {
		if st.Step == "hold writes in the other Switchyards" && st.Took >= timeout {
			t.Errorf("the switchover waited %s for the stand-by slot an application holds", st.Took)
		}
	}
	if rep.PeersHeld != 1 {
		t.Errorf("peers held: %d, want the one Switchyard standing by", rep.PeersHeld)
	}
	p.waitReleased(t, 1)
}
