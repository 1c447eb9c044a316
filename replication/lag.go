package replication

import "time"

// writerState is what the heartbeat writer has achieved; the Run goroutine owns it.
type writerState struct {
	first   time.Time // timestamp of this monitor's first successful write; zero before
	last    time.Time // timestamp of its latest successful write
	failing bool      // the latest attempt failed, or was skipped for want of a primary
}

// heartbeatRow is a replica's heartbeat row as one probe read it.
type heartbeatRow struct {
	ok     bool      // the row was read
	ts     time.Time // its timestamp
	readAt time.Time // when the read returned
	err    string    // why it was not read
}

// lagInput is everything a lag figure depends on.
type lagInput struct {
	heartbeat   bool          // heartbeat enabled
	lateAfter   time.Duration // a writer silent this long is late
	row         heartbeatRow
	writer      writerState
	primaryDown bool // no primary, or the primary is unreachable: nobody can write
	repl        replicaStatus
	// known is the last lag measured, at knownAt (zero when none); at is
	// when this observation began.
	known       lagResult
	knownAt, at time.Time
}

// lagResult is a measured lag; source is empty when the lag is unknown.
type lagResult struct {
	lag    time.Duration
	source string
}

// measureLag picks the best lag figure available; see the package documentation.
//
// The heartbeat row counts as a measurement only once the replica has applied a row this
// monitor wrote: before that it may be a leftover from an earlier run. A replica that
// has not applied this monitor's first row lags at least since that row was written,
// which is used when it says more than Seconds_Behind_Master. While the writer succeeds
// on schedule, lag is the row's age. When it runs late (a primary slow to commit, a
// starved proxy), the age would grow on every replica alike, so the lag is then the
// lower bound: how far the row trails the last write, or Seconds_Behind_Master if that
// says more. While the writer fails and the primary is down, lag is how far the row
// trails the last successful write (everything the primary could have sent). While it
// fails with the primary up, the heartbeat says nothing reliable and
// Seconds_Behind_Master is used instead.
func measureLag(in lagInput) lagResult {
	sbm := lagResult{}
	// Seconds_Behind_Master measures the applier against what the I/O thread received,
	// so it says nothing while the I/O thread is not connected. MariaDB then reports
	// NULL; MySQL 9.7 often reports 0 instead (seen with a receiver retrying a source
	// it cannot reach), which would pass a replica falling ever further behind.
	if in.repl.secondsBehindKnown && in.repl.ioRunning == "Yes" {
		sbm = lagResult{time.Duration(in.repl.secondsBehind) * time.Second, LagSeconds}
		// An applier that has read all its relay log while the receiver is
		// connected is as fresh as the stream. MySQL 9.7 still reports the
		// time since the last event it applied once a heartbeat has moved
		// the receiver's position: an idle replica would "lag" more and more.
		if in.repl.sqlRunning == "Yes" && in.repl.applierIdle() {
			sbm.lag = 0
		}
	}
	if in.heartbeat && in.row.ok && !in.writer.first.IsZero() {
		fresh := !in.row.ts.Before(in.writer.first)
		switch {
		case fresh && !in.writer.failing && in.row.readAt.Sub(in.writer.last) <= in.lateAfter:
			return lagResult{max(0, in.row.readAt.Sub(in.row.ts)), LagHeartbeat}
		case fresh && !in.writer.failing:
			return atLeast(max(0, in.writer.last.Sub(in.row.ts)), sbm)
		case fresh && in.primaryDown:
			return lagResult{max(0, in.writer.last.Sub(in.row.ts)), LagHeartbeat}
		case !fresh && !in.writer.failing:
			return atLeast(max(0, in.row.readAt.Sub(in.writer.first)), sbm)
		}
	}
	if sbm.source != "" {
		return sbm
	}
	if in.repl.sqlRunning == "Yes" && in.repl.caughtUp() {
		if in.primaryDown {
			return lagResult{0, LagCaughtUp}
		}
		// The I/O thread lost its source (a primary that just died, before
		// the monitor has found it down) but everything received is
		// applied: the replica is at most as far behind as when its lag
		// was last measured, plus the time since.
		if in.known.source != "" && !in.knownAt.IsZero() && !in.at.Before(in.knownAt) {
			return lagResult{in.known.lag + in.at.Sub(in.knownAt), LagBound}
		}
	}
	return lagResult{}
}

// atLeast returns a heartbeat lower bound, or Seconds_Behind_Master when it says more.
func atLeast(bound time.Duration, sbm lagResult) lagResult {
	if sbm.source != "" && sbm.lag > bound {
		return sbm
	}
	return lagResult{bound, LagHeartbeat}
}
