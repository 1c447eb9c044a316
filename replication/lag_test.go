package replication

import (
	"testing"
	"time"
)

func TestMeasureLag(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	row := func(tsMS, readMS int) heartbeatRow { return heartbeatRow{ok: true, ts: at(tsMS), readAt: at(readMS)} }
	writing := writerState{first: at(0), last: at(5000)}
	failing := writerState{first: at(0), last: at(5000), failing: true}
	running := replicaStatus{ioRunning: "Yes", sqlRunning: "Yes", secondsBehind: 3, secondsBehindKnown: true}
	nullSBM := replicaStatus{ioRunning: "Yes", sqlRunning: "No"}
	reconnectingCaughtUp := replicaStatus{ioRunning: "Connecting", sqlRunning: "Yes",
		sourceLogFile: "bin.000002", readPos: 900, relaySourceLogFile: "bin.000002", execPos: 900}
	reconnectingBehind := reconnectingCaughtUp
	reconnectingBehind.execPos = 400
	// MySQL 9.7 may report Seconds_Behind_Source 0 while its I/O thread retries.
	reconnectingZero := reconnectingCaughtUp
	reconnectingZero.secondsBehindKnown = true
	ioStopped := replicaStatus{ioRunning: "No", sqlRunning: "Yes", secondsBehind: 0, secondsBehindKnown: true}
	const late = 600 * time.Millisecond // interval 100ms + MaxLag 1s / 2
	idle := replicaStatus{ioRunning: "Yes", sqlRunning: "Yes", secondsBehindKnown: true}

	tests := []struct {
		name string
		in   lagInput
		want lagResult
	}{
		{"heartbeat off: Seconds_Behind_Master", lagInput{repl: running}, lagResult{3 * time.Second, LagSeconds}},
		{"heartbeat off, SQL thread stopped: unknown", lagInput{repl: nullSBM}, lagResult{}},
		{"heartbeat: age of the row", lagInput{heartbeat: true, lateAfter: late, row: row(4000, 5050), writer: writing, repl: nullSBM},
			lagResult{1050 * time.Millisecond, LagHeartbeat}},
		{"heartbeat beats Seconds_Behind_Master", lagInput{heartbeat: true, lateAfter: late, row: row(4990, 5000), writer: writing, repl: running},
			lagResult{10 * time.Millisecond, LagHeartbeat}},
		{"writer a little late: still the age", lagInput{heartbeat: true, lateAfter: late, row: row(4900, 5550), writer: writing, repl: idle},
			lagResult{650 * time.Millisecond, LagHeartbeat}},
		{"writer late: its delay is not the replica's", lagInput{heartbeat: true, lateAfter: late, row: row(5000, 7000), writer: writing, repl: idle},
			lagResult{0, LagHeartbeat}},
		{"writer late, replica behind its last write", lagInput{heartbeat: true, lateAfter: late, row: row(4500, 7000), writer: writing, repl: idle},
			lagResult{500 * time.Millisecond, LagHeartbeat}},
		{"writer late, Seconds_Behind_Master says more", lagInput{heartbeat: true, lateAfter: late, row: row(4500, 7000), writer: writing, repl: running},
			lagResult{3 * time.Second, LagSeconds}},
		{"row from before this monitor: at least since the first write", lagInput{heartbeat: true, row: row(-60000, 5000), writer: writing, repl: nullSBM},
			lagResult{5 * time.Second, LagHeartbeat}},
		{"row from before this monitor: Seconds_Behind_Master if larger", lagInput{heartbeat: true, row: row(-60000, 20),
			writer: writerState{first: at(10), last: at(10)}, repl: running}, lagResult{3 * time.Second, LagSeconds}},
		{"row from before this monitor, writes failing: fall back", lagInput{heartbeat: true, row: row(-60000, 9000), writer: failing, repl: running},
			lagResult{3 * time.Second, LagSeconds}},
		{"no write yet: fall back", lagInput{heartbeat: true, row: row(10, 20), repl: running}, lagResult{3 * time.Second, LagSeconds}},
		{"row missing: fall back", lagInput{heartbeat: true, row: heartbeatRow{err: "no heartbeat row"}, writer: writing, repl: running},
			lagResult{3 * time.Second, LagSeconds}},
		{"row from a faster clock: zero", lagInput{heartbeat: true, lateAfter: late, row: row(5100, 5000), writer: writing, repl: running},
			lagResult{0, LagHeartbeat}},
		{"writes failing, primary up: Seconds_Behind_Master", lagInput{heartbeat: true, row: row(4000, 9000), writer: failing, repl: running},
			lagResult{3 * time.Second, LagSeconds}},
		{"writes failing, primary up, SBM NULL: unknown", lagInput{heartbeat: true, row: row(4000, 9000), writer: failing, repl: nullSBM},
			lagResult{}},
		{"primary down: against the last write", lagInput{heartbeat: true, row: row(4800, 9000), writer: failing, primaryDown: true, repl: reconnectingCaughtUp},
			lagResult{200 * time.Millisecond, LagHeartbeat}},
		{"primary down, row has last write: zero", lagInput{heartbeat: true, row: row(5000, 9000), writer: failing, primaryDown: true, repl: reconnectingCaughtUp},
			lagResult{0, LagHeartbeat}},
		{"primary down, no heartbeat, caught up", lagInput{primaryDown: true, repl: reconnectingCaughtUp}, lagResult{0, LagCaughtUp}},
		{"primary down, no heartbeat, relay log not applied", lagInput{primaryDown: true, repl: reconnectingBehind}, lagResult{}},
		{"primary up, reconnecting: unknown", lagInput{repl: reconnectingCaughtUp}, lagResult{}},
		{"primary not found down yet, reconnecting, caught up: the last lag plus the time since",
			lagInput{repl: reconnectingCaughtUp, known: lagResult{100 * time.Millisecond, LagSeconds},
				knownAt: time.Unix(100, 0), at: time.Unix(100, 250e6)},
			lagResult{350 * time.Millisecond, LagBound}},
		{"reconnecting, relay log not applied: no bound", lagInput{repl: reconnectingBehind, known: lagResult{0, LagSeconds},
			knownAt: time.Unix(100, 0), at: time.Unix(100, 250e6)}, lagResult{}},
		{"primary up, reconnecting, MySQL's Seconds_Behind_Source 0: unknown", lagInput{repl: reconnectingZero}, lagResult{}},
		{"primary down, reconnecting, MySQL's Seconds_Behind_Source 0: caught up", lagInput{primaryDown: true, repl: reconnectingZero},
			lagResult{0, LagCaughtUp}},
		{"I/O thread stopped: Seconds_Behind_Master ignored", lagInput{repl: ioStopped}, lagResult{}},
	}
	for _, tt := range tests {
		if got := measureLag(tt.in); got != tt.want {
			t.Errorf("%s: measureLag = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestFirstRowFresh reads back the row holding the monitor's first write, as a probe
// does (Unix microseconds): it is this monitor's, so its age is the lag.
func TestFirstRowFresh(t *testing.T) {
	wrote := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC) // the clock has nanoseconds
	first := rowTime(wrote)
	readAt := wrote.Add(30 * time.Millisecond)
	row := heartbeatRow{ok: true, ts: time.UnixMicro(first.UnixMicro()), readAt: readAt}
	got := measureLag(lagInput{heartbeat: true, lateAfter: time.Second, row: row, writer: writerState{first: first, last: first},
		repl: replicaStatus{ioRunning: "Yes", sqlRunning: "Yes", secondsBehind: 1, secondsBehindKnown: true}})
	if want := (lagResult{readAt.Sub(row.ts), LagHeartbeat}); got != want {
		t.Errorf("measureLag = %+v, want %+v", got, want)
	}
}

// TestIdleApplierLag: a replica whose applier has read all its relay log,
// its receiver connected, lags 0 whatever Seconds_Behind_Master says (MySQL
// counts from the last event applied once heartbeats move the receiver).
func TestIdleApplierLag(t *testing.T) {
	idle := replicaStatus{ioRunning: "Yes", sqlRunning: "Yes", secondsBehind: 2, secondsBehindKnown: true,
		sqlState: "Replica has read all relay log; waiting for more updates"}
	if got := measureLag(lagInput{repl: idle}); got != (lagResult{0, LagSeconds}) {
		t.Errorf("idle applier: %+v, want 0 from Seconds_Behind_Master", got)
	}
	busy := idle
	busy.sqlState = "Waiting until SOURCE_DELAY seconds after source executed event"
	if got := measureLag(lagInput{repl: busy}); got != (lagResult{2 * time.Second, LagSeconds}) {
		t.Errorf("delayed applier: %+v, want Seconds_Behind_Master's 2s", got)
	}
}
