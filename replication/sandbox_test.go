package replication_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestHealthyTopology checks what the monitor reports about a healthy sandbox, that it
// holds exactly one connection per server (plus the heartbeat writer's on the
// primary), and that it leaves no goroutine behind.
func TestHealthyTopology(t *testing.T) {
	sb := sandboxtest.Require(t)
	for _, srv := range sb.Servers() {
		exec(t, sb, srv, "DO 1") // open the root pools before counting goroutines
	}
	leaks := goleak.IgnoreCurrent()
	// Registered first, so it runs last: after startMonitor's cleanup stopped the monitor.
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	m := startMonitor(t, sb, testOptions(sb, true))

	// Both usable too: on MySQL a replica whose applier wakes from idleness
	// (the heartbeat's first rows) reports Seconds_Behind_Source as the time
	// since the last event it applied, for one probe; before its heartbeat
	// row counts, that excludes it until readmit_after good probes.
	s, _ := m.waitFor(t, patience, "heartbeat lag on both replicas, both usable", func(s *replication.Snapshot) bool {
		return backend(s, "replica1").LagSource == replication.LagHeartbeat &&
			backend(s, "replica2").LagSource == replication.LagHeartbeat &&
			s.Usable("replica1") && s.Usable("replica2")
	})
	p := backend(s, "primary")
	if p.Role != replication.RolePrimary || p.ReadOnly || p.Replicating || p.Flavor != sb.Flavor || p.Version != sb.Version {
		t.Errorf("primary status = %+v", p)
	}
	// Every server reports the GTIDs it has: the primary's own transactions, which the
	// replicas have applied. The proxy's causal reads use them.
	origin := gtidOrigin(t, sb)
	for _, b := range s.Backends {
		if err := checkGTIDs(b, origin); err != nil {
			t.Errorf("%s: %v", b.Name, err)
		}
	}
	for _, srv := range sb.Replicas {
		r := backend(s, srv.Name)
		if r.Role != replication.RoleReplica || !r.ReadOnly || !r.Replicating || r.Source != sb.Primary.Addr() ||
			r.IOThread != "Yes" || r.SQLThread != "Yes" || r.IOError != "" || r.SQLError != "" {
			t.Errorf("%s status = %+v", srv.Name, r)
		}
		if r.Lag > testHeartbeat+2*schedSlack && m.timely(t) {
			t.Errorf("%s: heartbeat lag %s on an idle replica, want about one heartbeat interval", srv.Name, r.Lag)
		}
		t.Logf("%s: lag %s (%s), probe took %s", srv.Name, r.Lag, r.LagSource, r.ProbeTime)
	}
	if got := s.Readable(); !slices.Equal(got, []string{"replica1", "replica2"}) {
		t.Errorf("Readable() = %v", got)
	}
	if m.Primary() != "primary" || !m.Usable("replica1") || m.Usable("nope") {
		t.Errorf("Primary() = %q, Usable(replica1) = %v", m.Primary(), m.Usable("replica1"))
	}

	for _, srv := range sb.Servers() {
		want := 1
		if srv == sb.Primary {
			want = 2 // probe + heartbeat writer
		}
		db, _ := sb.RootDB(srv)
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
			sb.Opts.Monitor.Name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: monitor holds %d connections, want %d", srv.Name, n, want)
		}
	}
	// The heartbeat table was created on the primary and replicated.
	for _, srv := range sb.Replicas {
		db, _ := sb.RootDB(srv)
		var ts int64
		if err := db.QueryRow("SELECT ts FROM switchyard.heartbeat WHERE id = 1").Scan(&ts); err != nil {
			t.Errorf("%s: heartbeat row: %v", srv.Name, err)
		}
	}
	if st := m.Stats(); st.HeartbeatWrites == 0 || st.HeartbeatErrors != 0 || st.Conflicts != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestLagExclusion stalls a replica's applier (both threads keep running) while the
// primary keeps taking writes: the replica must be excluded within two check intervals
// of its lag crossing MaxLag, and readmitted once it has caught up, without flapping.
func TestLagExclusion(t *testing.T) {
	sb := sandboxtest.Require(t)
	m := startMonitor(t, sb, testOptions(sb, true))
	keepWriting(t, sb, sb.Primary)
	r := sb.Replicas[0]
	m.waitFor(t, patience, "heartbeat lag", func(s *replication.Snapshot) bool {
		return backend(s, r.Name).LagSource == replication.LagHeartbeat
	})

	release := stall(t, sb, r)
	stopped := time.Now()
	// Record the replica's probes: exclusion must come at the first probe that reads a
	// lag above MaxLag.
	var probes []replication.BackendStatus
	s, seen := m.waitFor(t, patience, r.Name+" lagging", func(s *replication.Snapshot) bool {
		b := backend(s, r.Name)
		if b.CheckedAt.After(stopped) && (len(probes) == 0 || !b.CheckedAt.Equal(probes[len(probes)-1].CheckedAt)) {
			probes = append(probes, b)
		}
		return b.State == replication.Lagging
	})
	for _, p := range probes[:max(0, len(probes)-1)] {
		if p.LagSource == "" || p.Lag > testMaxLag {
			t.Errorf("probe at +%s read lag %s (%q) but left the replica %v", p.CheckedAt.Sub(stopped), p.Lag, p.LagSource, p.State)
		}
	}
	b := backend(s, r.Name)
	if b.LagSource != replication.LagHeartbeat || b.IOThread != "Yes" || b.SQLThread != "Yes" {
		t.Fatalf("lagging %s: lag source %q, I/O thread %q, SQL thread %q, error %q",
			r.Name, b.LagSource, b.IOThread, b.SQLThread, b.LastError)
	}
	// The heartbeat lag is the age of the row the replica has applied when the probe
	// read it, so the lag crossed MaxLag (b.Lag - MaxLag) before that read; the snapshot
	// was published as the probe ended and the test saw it a poll later.
	read := b.CheckedAt.Add(b.ProbeTime)
	crossed := read.Add(-(b.Lag - testMaxLag))
	t.Logf("applier stalled; lag crossed %s after %s; replica excluded by a probe %s after crossing, seen by the test %s after",
		testMaxLag, crossed.Sub(stopped).Round(time.Millisecond), read.Sub(crossed).Round(time.Millisecond),
		seen.Sub(crossed).Round(time.Millisecond))
	if read.Sub(crossed) > 2*testInterval && m.timely(t) {
		t.Errorf("excluded %s after the lag crossed the threshold, want within two intervals (%s)", read.Sub(crossed), 2*testInterval)
	}
	if s.Usable(r.Name) || slices.Contains(s.Readable(), r.Name) || !s.Usable("replica2") {
		t.Errorf("while lagging: Readable() = %v", s.Readable())
	}

	// Let the lag grow further, then release the applier.
	m.waitFor(t, patience, "lag of 2×MaxLag", func(s *replication.Snapshot) bool {
		return backend(s, r.Name).Lag > 2*testMaxLag
	})
	release()
	started := time.Now()
	s, seen = m.waitFor(t, patience, r.Name+" readmitted", state(r.Name, replication.Usable))
	t.Logf("applier released; readmitted after %s with lag %s (%d good checks of %s needed)",
		seen.Sub(started).Round(time.Millisecond), backend(s, r.Name).Lag, testReadmit, testInterval)
	if min := time.Duration(testReadmit-1) * testInterval; seen.Sub(started) < min {
		t.Errorf("readmitted %s after restart, sooner than %d checks allow", seen.Sub(started), testReadmit)
	}
	// Stay a while: no flapping. (A stalled machine makes replicas really lag.)
	m.waitFor(t, patience, "ten more checks", func(s *replication.Snapshot) bool {
		return backend(s, r.Name).CheckedAt.After(seen.Add(10 * testInterval))
	})
	if !m.timely(t) {
		return
	}
	if got, want := m.states(r.Name), []replication.State{replication.Usable, replication.Lagging, replication.Usable}; !slices.Equal(got, want) {
		t.Errorf("%s went through %v, want %v", r.Name, got, want)
	}
	if got := m.states("replica2"); !slices.Equal(got, []replication.State{replication.Usable}) {
		t.Errorf("replica2 went through %v, want usable throughout", got)
	}
}

// TestHeartbeatAccuracy stalls a replica's applier while the primary takes a write
// every 20ms, and compares the heartbeat lag with the injected delay: the age of the
// newest of those writes the replica has applied, by the primary's clock (which, on one
// host, is the monitor's). They must agree within 100ms.
func TestHeartbeatAccuracy(t *testing.T) {
	sb := sandboxtest.Require(t)
	opts := testOptions(sb, true)
	opts.MaxLag = time.Minute // only the figure matters here
	m := startMonitor(t, sb, opts)
	keepWriting(t, sb, sb.Primary)
	r := sb.Replicas[1]
	m.waitFor(t, patience, "heartbeat lag", func(s *replication.Snapshot) bool {
		return backend(s, r.Name).LagSource == replication.LagHeartbeat
	})

	waitReplicated(t, sb) // run alone, the table and its first row may not have reached r yet
	stall(t, sb, r)
	paused := time.Now()
	db, _ := sb.RootDB(r)
	var us int64
	if err := db.QueryRow("SELECT MAX(at_us) FROM switchyard_test.writes").Scan(&us); err != nil {
		t.Fatal(err)
	}
	applied := time.UnixMicro(us)

	var worst time.Duration
	var last time.Time
	for n := 0; n < 12; {
		s, _ := m.waitFor(t, patience, "next check", func(s *replication.Snapshot) bool {
			return backend(s, r.Name).CheckedAt.After(last)
		})
		b := backend(s, r.Name)
		last = b.CheckedAt
		if !b.CheckedAt.After(paused) {
			continue
		}
		n++
		injected := b.CheckedAt.Add(b.ProbeTime).Sub(applied)
		diff := b.Lag - injected
		worst = max(worst, diff.Abs())
		if b.LagSource != replication.LagHeartbeat || diff.Abs() > 100*time.Millisecond && m.timely(t) {
			t.Errorf("injected delay %s: lag %s from %q (error %q), want within 100ms, from the heartbeat",
				injected.Round(time.Millisecond), b.Lag.Round(time.Millisecond), b.LagSource, b.LastError)
		}
	}
	t.Logf("applier stalled (last applied write %s before the stall): over 12 checks, heartbeat lag vs injected delay differed by at most %s (limit 100ms)",
		paused.Sub(applied).Round(time.Millisecond), worst.Round(time.Millisecond))
}

// TestSecondsBehindMaster runs without the heartbeat: lag comes from
// Seconds_Behind_Master, a delayed replica is excluded and readmitted, a stopped thread
// makes the replica down, and one whose I/O thread cannot reach its source has an
// unknown lag and is excluded.
func TestSecondsBehindMaster(t *testing.T) {
	sb := sandboxtest.Require(t)
	d := sb.Dialect()
	opts := testOptions(sb, false)
	opts.MaxLag = time.Second
	m := startMonitor(t, sb, opts)
	r := sb.Replicas[0]
	s := m.Snapshot()
	// MySQL 9.7 now and then says 1 for an idle replica with heartbeats every second.
	if b := backend(s, r.Name); b.LagSource != replication.LagSeconds || b.Lag > opts.MaxLag {
		t.Errorf("idle replica: lag %s from %q, want at most 1s from Seconds_Behind_Master", b.Lag, b.LagSource)
	}
	keepWriting(t, sb, sb.Primary)

	// A thread stopped without an error: replication stopped, the replica is down.
	for _, th := range []struct{ name, stop, start string }{
		{"SQL thread", d.StopSQLThread, d.StartSQLThread},
		{"I/O thread", d.StopIOThread, d.StartIOThread},
	} {
		exec(t, sb, r, th.stop)
		t.Cleanup(func() { exec(t, sb, r, th.start) }) // a running thread only warns
		s, _ = m.waitFor(t, patience, r.Name+" down with its "+th.name+" stopped", state(r.Name, replication.Down))
		if b, want := backend(s, r.Name), "replication stopped: "+th.name+" stopped"; b.LastError != want {
			t.Errorf("%s stopped: error %q, want %q", th.name, b.LastError, want)
		}
		exec(t, sb, r, th.start)
		m.waitFor(t, patience, "readmitted after the "+th.name+" restarted", state(r.Name, replication.Usable))
	}

	// Pointed at a port nobody listens on, the I/O thread keeps retrying ("Connecting")
	// while the primary takes writes. Having applied all it received, the replica lags
	// at most its last measured lag plus the time since (LagBound): it leaves rotation
	// once that passes MaxLag.
	repoint := func(port int) { exec(t, sb, r, append([]string{d.StopReplica}, sb.ChangeSource(port)...)...) }
	repoint(unusedPort(t))
	t.Cleanup(func() { repoint(sb.Primary.Port) })
	s, _ = m.waitFor(t, patience, "lagging on the lag bound", state(r.Name, replication.Lagging))
	if b := backend(s, r.Name); b.LagSource != replication.LagBound || b.Lag <= opts.MaxLag || b.IOThread != "Connecting" ||
		b.SQLThread != "Yes" || !strings.Contains(b.LastError, "above") {
		t.Errorf("source unreachable: lag %s from %q, I/O thread %q, SQL thread %q, error %q; want a bound above %s",
			b.Lag, b.LagSource, b.IOThread, b.SQLThread, b.LastError, opts.MaxLag)
	}
	repoint(sb.Primary.Port)
	m.waitFor(t, patience, "readmitted after repointing at the primary", state(r.Name, replication.Usable))

	// A replication delay makes Seconds_Behind_Master climb past the threshold.
	delay := func(seconds int) []string {
		return []string{d.StopReplica, fmt.Sprintf(d.SourceDelay, seconds), d.StartReplica}
	}
	exec(t, sb, r, delay(3)...)
	t.Cleanup(func() { exec(t, sb, r, delay(0)...) })
	s, _ = m.waitFor(t, patience, "lagging on Seconds_Behind_Master", func(s *replication.Snapshot) bool {
		b := backend(s, r.Name)
		return b.State == replication.Lagging && b.LagSource == replication.LagSeconds && b.Lag > opts.MaxLag
	})
	t.Logf("%s: excluded at Seconds_Behind_Master %s", fmt.Sprintf(d.SourceDelay, 3), backend(s, r.Name).Lag)
	exec(t, sb, r, delay(0)...)
	m.waitFor(t, patience, "readmitted after the delay is removed", state(r.Name, replication.Usable))
}

// TestKilledReplica kills a replica with SIGKILL: it must be detected at the next probe,
// re-probed with backoff while down, and used again once it is back.
func TestKilledReplica(t *testing.T) {
	sb := sandboxtest.Require(t)
	m := startMonitor(t, sb, testOptions(sb, true))
	r := sb.Replicas[1]

	killed := time.Now()
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restart(t, r) })
	s, seen := m.waitFor(t, patience, r.Name+" down", state(r.Name, replication.Down))
	b := backend(s, r.Name)
	detect := b.CheckedAt.Add(b.ProbeTime).Sub(killed)
	t.Logf("kill -9: detected by a probe ending %s after the kill, seen by the test after %s (%s)",
		detect.Round(time.Millisecond), seen.Sub(killed).Round(time.Millisecond), b.LastError)
	if !strings.Contains(b.LastError, "unreachable") {
		t.Errorf("down replica error = %q, want unreachable", b.LastError)
	}
	if detect > testInterval+schedSlack && m.timely(t) {
		t.Errorf("detected %s after the kill, want within one interval (%s)", detect, testInterval)
	}

	// While it is down, probes back off: over 2.5s at a 100ms interval a steady
	// schedule would probe 25 times; doubling to the 1s cap probes about 6 times.
	failures := b.Failures
	s, _ = m.waitFor(t, patience, "2.5s of downtime", func(s *replication.Snapshot) bool {
		return time.Since(seen) > 2500*time.Millisecond
	})
	probes := backend(s, r.Name).Failures - failures
	t.Logf("probes while down for 2.5s: %d", probes)
	if probes > 8 || probes < 3 && m.timely(t) {
		t.Errorf("%d probes in 2.5s while down, want about 6 (backoff to %s)", probes, testMaxBackoff)
	}
	if !s.Usable("replica1") || !s.Usable("primary") {
		t.Errorf("other servers affected: %s", describe(s))
	}

	restart(t, r)
	back := time.Now()
	_, seen = m.waitFor(t, patience, r.Name+" readmitted", state(r.Name, replication.Usable))
	t.Logf("restarted: readmitted %s after the server accepted connections (limit %s backoff + %d checks)",
		seen.Sub(back).Round(time.Millisecond), testMaxBackoff, testReadmit)
	if limit := testMaxBackoff + testReadmit*testInterval + testTimeout + schedSlack; seen.Sub(back) > limit && m.timely(t) {
		t.Errorf("readmitted %s after restart, want within %s", seen.Sub(back), limit)
	}
}

// TestPausedReplica freezes a replica with SIGSTOP, which keeps its connections open
// but answers nothing: only the probe deadline can catch it.
func TestPausedReplica(t *testing.T) {
	sb := sandboxtest.Require(t)
	m := startMonitor(t, sb, testOptions(sb, true))
	r := sb.Replicas[0]

	paused := time.Now()
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Resume() })
	s, seen := m.waitFor(t, patience, r.Name+" down", state(r.Name, replication.Down))
	b := backend(s, r.Name)
	detect := b.CheckedAt.Add(b.ProbeTime).Sub(paused)
	t.Logf("SIGSTOP: probe began %s after the pause and gave up after %s; detected %s after the pause, seen by the test after %s (%s)",
		b.CheckedAt.Sub(paused).Round(time.Millisecond), b.ProbeTime.Round(time.Millisecond), detect.Round(time.Millisecond),
		seen.Sub(paused).Round(time.Millisecond), b.LastError)
	if !strings.Contains(b.LastError, "no answer within") {
		t.Errorf("paused replica error = %q, want a probe deadline", b.LastError)
	}
	if limit := testInterval + testTimeout + schedSlack; detect > limit && m.timely(t) {
		t.Errorf("detected %s after the pause, want within interval + timeout (%s)", detect, testInterval+testTimeout)
	}
	// The hung server delays nobody else: the primary was probed, start to finish, while
	// the replica's probe hung.
	if p := backend(s, "primary"); !p.CheckedAt.After(b.CheckedAt) && m.timely(t) {
		t.Errorf("no probe of the primary began while replica1's probe hung (primary probe at %s, replica1's at %s)",
			p.CheckedAt.Format(time.StampMilli), b.CheckedAt.Format(time.StampMilli))
	}
	if !s.Usable("primary") || !s.Usable("replica2") {
		t.Errorf("other servers affected: %s", describe(s))
	}

	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	_, seen = m.waitFor(t, patience, r.Name+" readmitted", state(r.Name, replication.Usable))
	t.Logf("SIGCONT: readmitted after %s", seen.Sub(resumed).Round(time.Millisecond))
}

// TestLoginRefused runs a monitor with a wrong password: every backend is down, with the
// server's refusal as the reason rather than "unreachable".
func TestLoginRefused(t *testing.T) {
	sb := sandboxtest.Require(t)
	opts := testOptions(sb, false)
	opts.Password = "wrong-" + opts.Password
	m := runMonitor(t, sb, opts)
	s := m.Snapshot()
	for _, b := range s.Backends {
		if b.State != replication.Down || b.Failures == 0 || !strings.HasPrefix(b.LastError, "login refused: Error 1045") ||
			!strings.Contains(b.LastError, "Access denied for user '"+opts.User+"'") {
			t.Errorf("%s with a wrong password: %s after %d failures, error %q; want down, login refused: Access denied",
				b.Name, b.State, b.Failures, b.LastError)
		}
	}
	if s.Primary != "" {
		t.Errorf("primary %q elected though no server could be read", s.Primary)
	}
	t.Logf("%s: %s", s.Backends[0].Name, s.Backends[0].LastError)
}

// TestWritableConflict makes a replica writable while the primary still is: the
// monitor must keep the primary, flag the conflict, count it, and clear it afterwards.
func TestWritableConflict(t *testing.T) {
	sb := sandboxtest.Require(t)
	m := startMonitor(t, sb, testOptions(sb, true))
	r := sb.Replicas[0]

	d := sb.Dialect()
	exec(t, sb, r, d.SetWritable)
	t.Cleanup(func() { exec(t, sb, r, d.SetReadOnly) })
	s, seen := m.waitFor(t, patience, "conflict", func(s *replication.Snapshot) bool { return s.Conflict })
	if s.Primary != "primary" || !slices.Equal(s.Writable, []string{"primary", r.Name}) || s.Stats.Conflicts != 1 {
		t.Errorf("conflict snapshot: %s writable=%v stats=%+v", describe(s), s.Writable, s.Stats)
	}
	// Still the same primary a few checks later.
	m.waitFor(t, patience, "five checks", func(s *replication.Snapshot) bool {
		return backend(s, r.Name).CheckedAt.After(seen.Add(5 * testInterval))
	})
	if s := m.Snapshot(); s.Primary != "primary" || !s.Conflict {
		t.Errorf("conflict not held: %s", describe(s))
	}
	exec(t, sb, r, d.SetReadOnly)
	s, _ = m.waitFor(t, patience, "conflict cleared", func(s *replication.Snapshot) bool { return !s.Conflict })
	if s.Primary != "primary" || s.Stats.PrimaryChanges != 1 { // the first election only
		t.Errorf("after the conflict: %s stats=%+v", describe(s), s.Stats)
	}
}

// TestSwitchover promotes a replica and demotes the primary on a sandbox of its own:
// the monitor must follow within a second without ever naming a read-only server, then
// keep serving reads when the new primary is killed.
func TestSwitchover(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{})
	d := sb.Dialect()
	m := startMonitor(t, sb, testOptions(sb, true))
	keepWriting(t, sb, sb.Primary)
	oldp, newp, other := sb.Primary, sb.Replicas[0], sb.Replicas[1]

	// Demote first, as a careful operator does; wait until the candidate has it all.
	exec(t, sb, oldp, d.SetReadOnly)
	demoted := time.Now()
	var pos string
	db, _ := sb.RootDB(oldp)
	if err := db.QueryRow(d.ExecutedGTID).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*sandbox.Server{newp, other} {
		waitGTID(t, sb, r, pos)
	}
	s, seen := m.waitFor(t, patience, "old primary dropped", func(s *replication.Snapshot) bool { return s.Primary == "" })
	t.Logf("demotion of %s seen after %s: no primary", oldp.Name, seen.Sub(demoted).Round(time.Millisecond))

	exec(t, sb, newp, d.StopReplica, d.ResetReplica, d.SetWritable)
	promoted := time.Now()
	s, seen = m.waitFor(t, patience, "new primary", func(s *replication.Snapshot) bool { return s.Primary == newp.Name })
	t.Logf("promotion of %s followed after %s (limit 1s)", newp.Name, seen.Sub(promoted).Round(time.Millisecond))
	if seen.Sub(promoted) > time.Second && m.timely(t) {
		t.Errorf("promotion followed after %s, want within 1s", seen.Sub(promoted))
	}
	if s.Conflict || !s.Usable(newp.Name) {
		t.Errorf("after promotion: %s", describe(s))
	}

	// Point the others at the new primary; the old one, never a replica, has no
	// threads to stop and resumes after its own binlog.
	exec(t, sb, oldp, sb.ChangeSource(newp.Port)...)
	exec(t, sb, other, append([]string{d.StopReplica}, sb.ChangeSource(newp.Port)...)...)
	keepWriting(t, sb, newp)
	s, _ = m.waitFor(t, patience, "all usable on the new topology", func(s *replication.Snapshot) bool {
		for _, b := range s.Backends {
			if b.State != replication.Usable || (b.Name != newp.Name && b.LagSource != replication.LagHeartbeat) {
				return false
			}
		}
		return true
	})
	if b := backend(s, oldp.Name); b.Role != replication.RoleReplica || b.Source != newp.Addr() {
		t.Errorf("old primary after repointing: %+v", b)
	}

	// The new primary dies: it stays the primary (nobody else is writable) and the
	// replicas, which have everything it wrote, keep serving reads.
	killed := time.Now()
	if err := newp.Kill(); err != nil {
		t.Fatal(err)
	}
	s, seen = m.waitFor(t, patience, "primary down", state(newp.Name, replication.Down))
	t.Logf("kill -9 of the primary detected after %s", seen.Sub(killed).Round(time.Millisecond))
	s, _ = m.waitFor(t, patience, "a second past the kill", func(*replication.Snapshot) bool {
		return time.Since(seen) > 2*testMaxLag
	})
	if s.Primary != newp.Name || !s.Usable(oldp.Name) || !s.Usable(other.Name) {
		t.Errorf("with the primary down: %s", describe(s))
	}
	// It restarts read-only, as its my.cnf says: no primary until the operator makes
	// it writable again.
	restart(t, newp)
	m.waitFor(t, patience, "restarted primary seen read-only", func(s *replication.Snapshot) bool {
		return s.Primary == "" && backend(s, newp.Name).ReadOnly
	})
	exec(t, sb, newp, d.SetWritable)
	m.waitFor(t, patience, "primary back", func(s *replication.Snapshot) bool {
		return s.Primary == newp.Name && s.Usable(newp.Name)
	})

	// At no time did a snapshot name a server as primary that it showed read-only, nor
	// the old primary once a probe begun after its demotion had been applied.
	for _, s := range m.snapshots() {
		p, ok := s.Backend(s.Primary)
		if ok && p.ReadOnly {
			t.Errorf("snapshot %d names read-only %s as primary", s.Seq, s.Primary)
		}
		if o := backend(s, oldp.Name); s.Primary == oldp.Name && o.CheckedAt.After(demoted) {
			t.Errorf("snapshot %d names %s primary after a probe that began after its demotion", s.Seq, oldp.Name)
		}
	}
	t.Logf("primary changes: %d, conflicts: %d", m.Stats().PrimaryChanges, m.Stats().Conflicts)
}

// restart starts a killed server again if it is not running.
func restart(t *testing.T, srv *sandbox.Server) {
	t.Helper()
	if srv.Pid() != 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", srv.Name, err)
	}
}

// waitGTID waits until srv has applied pos.
func waitGTID(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server, pos string) {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	var res sql.NullInt64
	if err := db.QueryRow(sb.Dialect().WaitGTID, pos, 10).Scan(&res); err != nil || !res.Valid || res.Int64 != 0 {
		t.Fatalf("%s: %s with %q = %v, %v; want 0", srv.Name, sb.Dialect().WaitGTID, pos, res, err)
	}
}

// stall stalls the applier of replica r until the returned function is called or the
// test ends.
func stall(t *testing.T, sb *sandbox.Sandbox, r *sandbox.Server) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rel, err := sb.StallApplier(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	release = func() {
		if err := rel(); err != nil {
			t.Errorf("release %s: %v", r.Name, err)
		}
	}
	t.Cleanup(release)
	return release
}

// unusedPort returns a loopback port nothing listened on a moment ago.
func unusedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gtidOrigin returns how the primary's GTIDs begin: "0-1-" (MariaDB's domain and
// server id) or its server_uuid and a colon (MySQL).
func gtidOrigin(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	q := "SELECT CONCAT(@@GLOBAL.gtid_domain_id, '-', @@GLOBAL.server_id, '-')"
	if sb.Flavor == sandbox.FlavorMySQL {
		q = "SELECT CONCAT(@@GLOBAL.server_uuid, ':')"
	}
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	var origin string
	if err := db.QueryRow(q).Scan(&origin); err != nil {
		t.Fatal(err)
	}
	return origin
}

// checkGTIDs checks that b reports its flavour's GTID positions, holding the primary's
// transactions (origin), and the other flavour's empty. The applied position, which
// the proxy's causal reads use, is gtid_current_pos (MariaDB) or gtid_executed (MySQL).
func checkGTIDs(b replication.BackendStatus, origin string) error {
	type pos struct{ name, val string }
	have, none := []pos{{"GTIDCurrentPos", b.GTIDCurrentPos}, {"GTIDBinlogPos", b.GTIDBinlogPos}},
		[]pos{{"GTIDExecuted", b.GTIDExecuted}}
	if b.Role == replication.RoleReplica {
		have = append(have, pos{"GTIDSlavePos", b.GTIDSlavePos})
	}
	if b.Flavor == replication.FlavorMySQL {
		have, none = []pos{{"GTIDExecuted", b.GTIDExecuted}},
			[]pos{{"GTIDCurrentPos", b.GTIDCurrentPos}, {"GTIDBinlogPos", b.GTIDBinlogPos}, {"GTIDSlavePos", b.GTIDSlavePos}}
	}
	for _, p := range have {
		if !strings.HasPrefix(p.val, origin) {
			return fmt.Errorf("%s %s = %q, want the primary's GTIDs (%s...)", b.Flavor, p.name, p.val, origin)
		}
	}
	for _, p := range none {
		if p.val != "" {
			return fmt.Errorf("%s %s = %q, want it empty", b.Flavor, p.name, p.val)
		}
	}
	return nil
}
