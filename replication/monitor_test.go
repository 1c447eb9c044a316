package replication

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// fakeRun is a monitor whose Run goroutine is the test itself: it feeds synthetic
// observations to apply on a fake clock and records every OnChange snapshot.
type fakeRun struct {
	t       *testing.T
	m       *Monitor
	now     time.Time
	changes []*Snapshot
}

func newFakeRun(t *testing.T, opts Options, names ...string) *fakeRun {
	f := &fakeRun{t: t, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	var bs []Server
	for i, n := range names {
		bs = append(bs, Server{Name: n, Addr: "127.0.0.1:" + string(rune('1'+i))})
	}
	opts.User = "monitor"
	opts.OnChange = func(s *Snapshot) { f.changes = append(f.changes, s) }
	m, err := New(bs, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

type obsOpt func(*observation)

func writable(o *observation) { o.readOnly = false }
func replicating(sbm int64) obsOpt {
	return func(o *observation) {
		o.repl = &replicaStatus{ioRunning: "Yes", sqlRunning: "Yes", secondsBehind: sbm, secondsBehindKnown: true}
	}
}
func unreachable(o *observation) { o.err = errors.New("dial tcp: connection refused") }
func hbRow(ts, readAt time.Time) obsOpt {
	return func(o *observation) { o.row = heartbeatRow{ok: true, ts: ts, readAt: readAt} }
}

// see applies one observation of backend name, 100ms after the previous one, and checks
// that the snapshot never names a server last seen read-only as the primary.
func (f *fakeRun) see(name string, opts ...obsOpt) *Snapshot {
	f.t.Helper()
	f.now = f.now.Add(100 * time.Millisecond)
	o := &observation{index: f.m.index[name], start: f.now, readOnly: true,
		server: serverInfo{flavor: FlavorMariaDB, version: "10.11.19"}}
	for _, opt := range opts {
		opt(o)
	}
	f.m.apply(o)
	s := f.m.Snapshot()
	if p, ok := s.Backend(s.Primary); ok && p.ReadOnly && p.Hint != RolePrimary {
		f.t.Fatalf("after %s: primary %s is read-only", name, s.Primary)
	}
	return s
}

func (f *fakeRun) wantState(name string, want State) {
	f.t.Helper()
	if b, _ := f.m.Snapshot().Backend(name); b.State != want {
		f.t.Fatalf("%s: state %v (%s), want %v", name, b.State, b.LastError, want)
	}
}

func TestApplySwitchover(t *testing.T) {
	f := newFakeRun(t, Options{ReadmitAfter: 2}, "a", "b", "c")
	if s := f.see("a", writable); s.Primary != "" {
		t.Fatalf("primary %q elected before every backend answered", s.Primary)
	}
	f.see("b", replicating(0))
	select {
	case <-f.m.Ready():
		t.Fatal("Ready before every backend answered")
	default:
	}
	if len(f.changes) != 0 {
		t.Fatalf("OnChange called %d times before Ready: its states are placeholders", len(f.changes))
	}
	if s := f.see("c", replicating(0)); s.Primary != "a" || s.Conflict {
		t.Fatalf("primary = %q conflict %v, want a", s.Primary, s.Conflict)
	}
	<-f.m.Ready()
	f.wantState("a", Usable)
	f.wantState("b", Usable)
	if got := f.m.Snapshot().Readable(); len(got) != 2 {
		t.Errorf("Readable() = %v, want b and c", got)
	}

	// The operator demotes a first: no primary until b is promoted.
	if s := f.see("a"); s.Primary != "" {
		t.Fatalf("primary = %q after a was demoted, want none", s.Primary)
	}
	f.wantState("a", Down) // a replica that does not replicate
	if s := f.see("b", writable); s.Primary != "b" {
		t.Fatalf("primary = %q after b was promoted, want b", s.Primary)
	}
	f.wantState("b", Usable)
	// a is repointed at b: readmitted after two good checks.
	f.see("a", replicating(0))
	f.wantState("a", Down)
	f.see("a", replicating(0))
	f.wantState("a", Usable)

	st := f.m.Stats()
	if st.PrimaryChanges != 3 || st.Conflicts != 0 || st.Exclusions != 1 || st.Readmissions != 1 {
		t.Errorf("stats = %+v, want 3 primary changes (none->a->none->b), 1 exclusion, 1 readmission", st)
	}
	var prims []string
	for _, s := range f.changes {
		if len(prims) == 0 || prims[len(prims)-1] != s.Primary {
			prims = append(prims, s.Primary)
		}
	}
	if want := []string{"a", "", "b"}; !slices.Equal(prims, want) {
		t.Errorf("OnChange saw primaries %q, want %q", prims, want)
	}
}

func TestApplyConflict(t *testing.T) {
	f := newFakeRun(t, Options{}, "a", "b")
	f.see("a", writable)
	f.see("b", replicating(0))
	// b is made writable before a is demoted: refuse to guess, keep a.
	s := f.see("b", writable, replicating(0))
	if s.Primary != "a" || !s.Conflict || len(s.Writable) != 2 || s.Stats.Conflicts != 1 {
		t.Fatalf("snapshot = primary %q conflict %v writable %v stats %+v, want a kept with a conflict",
			s.Primary, s.Conflict, s.Writable, s.Stats)
	}
	s = f.see("b", writable, replicating(0)) // still in conflict: counted once
	if s.Stats.Conflicts != 1 {
		t.Errorf("conflicts = %d after a second check, want 1", s.Stats.Conflicts)
	}
	// The primary misses a probe during the conflict: that settles nothing, since it
	// may still be writable.
	if s = f.see("a", unreachable); s.Primary != "a" || !s.Conflict {
		t.Fatalf("primary unreachable during the conflict: primary %q conflict %v, want a kept in conflict", s.Primary, s.Conflict)
	}
	f.see("a", writable)
	if s = f.see("a"); s.Primary != "b" || s.Conflict {
		t.Fatalf("after a was demoted: primary %q conflict %v, want b", s.Primary, s.Conflict)
	}
}

func TestApplyPrimaryDown(t *testing.T) {
	f := newFakeRun(t, Options{Heartbeat: HeartbeatOptions{Enabled: true}, MaxLag: time.Second}, "a", "b")
	f.see("a", writable)
	f.see("b", replicating(0))
	first := f.now
	f.m.heartbeat(heartbeatEvent{ts: first, target: "a"})
	last := f.now.Add(2 * time.Second)
	f.m.heartbeat(heartbeatEvent{ts: last, target: "a"})

	f.now = last.Add(50 * time.Millisecond)
	f.see("b", replicating(0), hbRow(last, f.now.Add(100*time.Millisecond)))
	if b, _ := f.m.Snapshot().Backend("b"); b.LagSource != LagHeartbeat || b.Lag != 150*time.Millisecond {
		t.Fatalf("b lag = %s from %q, want 150ms from the heartbeat", b.Lag, b.LagSource)
	}
	// The writer stalls for 2s (a primary slow to commit): b, which has the last row, is
	// not held responsible.
	f.now = last.Add(2 * time.Second)
	f.see("b", replicating(0), hbRow(last, f.now.Add(100*time.Millisecond)))
	if b, _ := f.m.Snapshot().Backend("b"); b.State != Usable || b.Lag != 0 {
		t.Fatalf("writer stalled: b %v with lag %s, want usable with lag 0", b.State, b.Lag)
	}

	// The primary dies. Its heartbeat stops; b has everything and stays usable for
	// reads long after the row went stale.
	if s := f.see("a", unreachable); s.Primary != "a" {
		t.Fatalf("primary = %q after it became unreachable, want a kept", s.Primary)
	}
	f.wantState("a", Down)
	f.m.heartbeat(heartbeatEvent{skipped: true})
	f.now = f.now.Add(10 * time.Second)
	f.see("b", func(o *observation) {
		o.repl = &replicaStatus{ioRunning: "Connecting", sqlRunning: "Yes", ioErrno: 2003}
		o.row = heartbeatRow{ok: true, ts: last, readAt: f.now}
	})
	f.wantState("b", Usable)
	if b, _ := f.m.Snapshot().Backend("b"); b.Lag != 0 {
		t.Errorf("b lag = %s while the primary is down, want 0 (it has the last heartbeat)", b.Lag)
	}
	// Primary back: first good probe readmits it.
	f.see("a", writable)
	f.wantState("a", Usable)
}

// TestApplyHysteresis feeds a replica whose lag crosses the threshold back and forth:
// excluded at the first check above, readmitted only after ReadmitAfter checks below.
func TestApplyHysteresis(t *testing.T) {
	f := newFakeRun(t, Options{ReadmitAfter: 3, MaxLag: time.Second}, "a", "b")
	f.see("a", writable)
	lags := []int64{0, 1, 2, 1, 0, 2, 0, 0, 0, 0}
	want := []State{Usable, Usable, Lagging, Lagging, Lagging, Lagging, Lagging, Lagging, Usable, Usable}
	for i, l := range lags {
		f.see("b", replicating(l))
		if b, _ := f.m.Snapshot().Backend("b"); b.State != want[i] {
			t.Fatalf("check %d (lag %ds): state %v, want %v", i, l, b.State, want[i])
		}
	}
	if st := f.m.Stats(); st.Exclusions != 1 || st.Readmissions != 1 {
		t.Errorf("stats = %+v, want one exclusion and one readmission", st)
	}
}
