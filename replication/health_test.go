package replication

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHealthNext drives the state machine through sequences of verdicts on a fake
// clock (one check every 100ms) and checks the state, reason and Since after each.
func TestHealthNext(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ok := verdict{Usable, ""}
	lag := verdict{Lagging, "lag 2s above 1s"}
	down := verdict{Down, "unreachable: connection refused"}
	type step struct {
		v          verdict
		role       Role
		want       State
		wantReason string // substring
		wantSince  int    // index of the step at which the state last changed
	}
	r, p := RoleReplica, RolePrimary
	tests := []struct {
		name  string
		steps []step
	}{
		{"first check usable", []step{{ok, r, Usable, "", 0}, {ok, r, Usable, "", 0}}},
		{"first check lagging is direct", []step{{lag, r, Lagging, "lag 2s", 0}, {lag, r, Lagging, "lag 2s", 0}}},
		{"first check down", []step{{down, r, Down, "unreachable", 0}}},
		{"exclusion is immediate", []step{{ok, r, Usable, "", 0}, {lag, r, Lagging, "lag", 1}}},
		{"readmission after three good checks", []step{
			{ok, r, Usable, "", 0}, {lag, r, Lagging, "lag", 1},
			{ok, r, Lagging, "1 of 3", 1}, {ok, r, Lagging, "2 of 3", 1}, {ok, r, Usable, "", 4},
			{ok, r, Usable, "", 4},
		}},
		{"a bad check restarts the count", []step{
			{lag, r, Lagging, "lag", 0}, {ok, r, Lagging, "1 of 3", 0}, {ok, r, Lagging, "2 of 3", 0},
			{lag, r, Lagging, "lag", 0}, {ok, r, Lagging, "1 of 3", 0}, {ok, r, Lagging, "2 of 3", 0},
			{ok, r, Usable, "", 6},
		}},
		{"down replica readmitted like a lagging one", []step{
			{ok, r, Usable, "", 0}, {down, r, Down, "unreachable", 1}, {down, r, Down, "unreachable", 1},
			{ok, r, Down, "1 of 3", 1}, {ok, r, Down, "2 of 3", 1}, {ok, r, Usable, "", 5},
		}},
		{"down to lagging directly", []step{
			{down, r, Down, "unreachable", 0}, {lag, r, Lagging, "lag", 1}, {down, r, Down, "unreachable", 2},
		}},
		{"primary readmitted at once", []step{
			{ok, p, Usable, "", 0}, {down, p, Down, "unreachable", 1}, {ok, p, Usable, "", 2},
		}},
		{"promoted lagging replica usable at once", []step{
			{lag, r, Lagging, "lag", 0}, {ok, r, Lagging, "1 of 3", 0}, {ok, p, Usable, "", 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h health
			for i, s := range tt.steps {
				at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
				h = h.next(s.v, s.role, 3, at)
				if h.state != s.want || !strings.Contains(h.reason, s.wantReason) || (s.wantReason == "" && h.reason != "") {
					t.Fatalf("step %d: state %v reason %q, want %v reason containing %q", i, h.state, h.reason, s.want, s.wantReason)
				}
				if want := t0.Add(time.Duration(s.wantSince) * 100 * time.Millisecond); !h.since.Equal(want) {
					t.Fatalf("step %d: since = +%s, want +%s", i, h.since.Sub(t0), want.Sub(t0))
				}
			}
		})
	}
}

func TestHealthNextReadmitAfterOne(t *testing.T) {
	h := health{}.next(verdict{Lagging, "x"}, RoleReplica, 1, time.Time{})
	if h = h.next(verdict{Usable, ""}, RoleReplica, 1, time.Time{}); h.state != Usable {
		t.Errorf("with readmitAfter 1, one good check leaves state %v, want usable", h.state)
	}
}

func TestJudge(t *testing.T) {
	const maxLag = time.Second
	running := &replicaStatus{ioRunning: "Yes", sqlRunning: "Yes"}
	withRepl := func(rs replicaStatus) *observation { return &observation{repl: &rs} }
	sbm := func(d time.Duration) lagResult { return lagResult{d, LagSeconds} }
	tests := []struct {
		name   string
		obs    *observation
		role   Role
		lag    lagResult
		want   State
		reason string
	}{
		{"unreachable", &observation{err: errors.New("dial tcp: connection refused")}, RoleReplica, lagResult{}, Down, "unreachable: dial tcp"},
		{"unreachable primary", &observation{err: errors.New("i/o timeout")}, RolePrimary, lagResult{}, Down, "unreachable"},
		{"primary ignores replication", &observation{}, RolePrimary, lagResult{}, Usable, ""},
		{"not replicating", &observation{}, RoleReplica, lagResult{}, Down, "not replicating"},
		{"no privilege", &observation{replErr: "Error 1227"}, RoleReplica, lagResult{}, Down, "replica status: Error 1227"},
		{"io broken", withRepl(replicaStatus{ioRunning: "No", sqlRunning: "Yes", ioErrno: 1236, ioError: "binlog gone"}),
			RoleReplica, sbm(0), Down, "I/O thread error 1236: binlog gone"},
		{"sql broken", withRepl(replicaStatus{ioRunning: "Yes", sqlRunning: "No", sqlErrno: 1062, sqlError: "duplicate"}),
			RoleReplica, sbm(0), Down, "SQL thread error 1062"},
		{"stopped", withRepl(replicaStatus{ioRunning: "No", sqlRunning: "No"}), RoleReplica, lagResult{}, Down,
			"replication stopped: I/O and SQL threads stopped"},
		{"sql stopped, lag known", withRepl(replicaStatus{ioRunning: "Yes", sqlRunning: "No"}), RoleReplica,
			lagResult{300 * time.Millisecond, LagHeartbeat}, Down, "replication stopped: SQL thread stopped"},
		{"sql stopped, lag unknown", withRepl(replicaStatus{ioRunning: "Yes", sqlRunning: "No"}), RoleReplica, lagResult{}, Down,
			"replication stopped: SQL thread stopped"},
		{"io stopped", withRepl(replicaStatus{ioRunning: "No", sqlRunning: "Yes"}), RoleReplica,
			lagResult{0, LagHeartbeat}, Down, "replication stopped: I/O thread stopped"},
		{"io stopped, sql broken", withRepl(replicaStatus{ioRunning: "No", sqlRunning: "No", sqlErrno: 1062, sqlError: "duplicate"}),
			RoleReplica, lagResult{}, Down, "replication broken: SQL thread error 1062"},
		{"io reconnecting with error is not broken", withRepl(replicaStatus{ioRunning: "Connecting", sqlRunning: "Yes", ioErrno: 2003}),
			RoleReplica, lagResult{0, LagCaughtUp}, Usable, ""},
		{"io reconnecting, lag unknown", withRepl(replicaStatus{ioRunning: "Connecting", sqlRunning: "Yes", ioErrno: 2003}),
			RoleReplica, lagResult{}, Lagging, "lag unknown (I/O thread Connecting, SQL thread Yes)"},
		{"login refused", &observation{err: fmt.Errorf("%w: %w", errLoginRefused, errors.New("Error 1045 (28000): Access denied"))},
			RoleReplica, lagResult{}, Down, "login refused: Error 1045 (28000): Access denied"},
		{"login refused on the primary", &observation{err: fmt.Errorf("%w: %w", errLoginRefused, errors.New("Error 1045"))},
			RolePrimary, lagResult{}, Down, "login refused"},
		{"lag at threshold", &observation{repl: running}, RoleReplica, sbm(maxLag), Usable, ""},
		{"lag above threshold", &observation{repl: running}, RoleReplica, lagResult{1500 * time.Millisecond, LagHeartbeat}, Lagging, "lag 1.5s above 1s"},
	}
	for _, tt := range tests {
		v := judge(tt.obs, tt.role, tt.lag, maxLag)
		if v.state != tt.want || !strings.Contains(v.reason, tt.reason) || (tt.reason == "" && v.reason != "") {
			t.Errorf("%s: judge = %v %q, want %v %q", tt.name, v.state, v.reason, tt.want, tt.reason)
		}
	}
}

func TestProbeDelay(t *testing.T) {
	const iv = 100 * time.Millisecond
	tests := []struct {
		failures int
		max      time.Duration
		want     time.Duration
	}{
		{0, time.Second, iv},
		{1, time.Second, iv},
		{2, time.Second, 200 * time.Millisecond},
		{3, time.Second, 400 * time.Millisecond},
		{4, time.Second, 800 * time.Millisecond},
		{5, time.Second, time.Second},
		{60, time.Second, time.Second},
		{3, 50 * time.Millisecond, iv}, // a cap below the interval never shortens it
	}
	for _, tt := range tests {
		if got := probeDelay(iv, tt.max, tt.failures); got != tt.want {
			t.Errorf("probeDelay(%s, %s, %d) = %s, want %s", iv, tt.max, tt.failures, got, tt.want)
		}
	}
}
