package replication

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRunning is returned by Run when the monitor has already been run.
var ErrRunning = errors.New("replication monitor already run")

// Monitor watches a fixed set of backends. New creates it and Run runs it. Snapshot,
// Primary, Usable, Stats, Ready and Recheck are safe for concurrent use from any
// goroutine, before, during and after Run; they never block and never touch a server.
type Monitor struct {
	backends   []Server
	index      map[string]int // backend name -> position; never modified after New
	opts       Options
	log        *slog.Logger
	connectors []driver.Connector
	hbSQL      heartbeatSQL
	nudges     []chan struct{}
	ready      chan struct{}
	started    atomic.Bool
	changing   atomic.Bool // a switchover or failover runs, or writes are held for another Switchyard's
	standby    atomic.Pointer[standbyID]
	fo         failoverState
	snap       atomic.Pointer[Snapshot]

	// The fields below belong to the goroutine running Run, which alone reads and
	// writes them, so they need no lock.
	st        []backendState
	unchecked int // backends without a first observation
	primary   string
	conflict  bool
	writable  []string
	writer    writerState
	hbErr     string // the last heartbeat error logged, so that only changes are logged
	stats     Stats
	seq       uint64
}

// backendState is the Run goroutine's record of one backend.
type backendState struct {
	obs    *observation // latest observation; nil before the first
	good   *observation // latest successful observation
	health health
	lag    lagResult
	// known is the last lag measured (not bounded), at knownAt: the base of
	// LagBound.
	known    lagResult
	knownAt  time.Time
	checks   uint64
	failures uint64
}

// New returns a monitor for backends; it does not connect to anything until Run.
func New(backends []Server, opts Options) (*Monitor, error) {
	opts, err := opts.withDefaults()
	if err = errors.Join(err, checkBackends(backends)); err != nil {
		return nil, fmt.Errorf("replication monitor: %w", err)
	}
	m := &Monitor{
		backends:  slices.Clone(backends),
		index:     make(map[string]int, len(backends)),
		opts:      opts,
		log:       opts.Logger.With("component", "replication"),
		hbSQL:     newHeartbeatSQL(opts.Heartbeat),
		ready:     make(chan struct{}),
		st:        make([]backendState, len(backends)),
		unchecked: len(backends),
	}
	for i, b := range m.backends {
		m.index[b.Name] = i
		c, err := newConnector(b, opts, m.log.With("backend", b.Name))
		if err != nil {
			return nil, fmt.Errorf("replication monitor: backend %s: %w", b.Name, err)
		}
		m.connectors = append(m.connectors, c)
		m.nudges = append(m.nudges, make(chan struct{}, 1))
		if b.Role == RolePrimary {
			m.primary = b.Name
		}
	}
	m.publish()
	return m, nil
}

// Run probes the backends and publishes snapshots until ctx ends, then closes every
// connection it opened and returns nil once all its goroutines have stopped. It may be
// called once; later calls return ErrRunning.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	obsc := make(chan *observation)
	for i := range m.backends {
		p := &prober{
			index:      i,
			db:         openSingle(m.connectors[i]),
			timeout:    m.opts.Timeout,
			interval:   m.opts.Interval,
			maxBackoff: m.opts.MaxBackoff,
			nudge:      m.nudges[i],
		}
		if m.opts.Heartbeat.Enabled {
			p.hbSelect = m.hbSQL.selectTS
		}
		wg.Go(func() { p.run(ctx, obsc) })
	}
	hbc := make(chan heartbeatEvent)
	if m.opts.Heartbeat.Enabled {
		w := &heartbeatWriter{m: m, sql: m.hbSQL}
		wg.Go(func() { w.run(ctx, hbc) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case obs := <-obsc:
			m.apply(obs)
		case ev := <-hbc:
			m.heartbeat(ev)
		}
	}
}

// Snapshot returns the latest snapshot. It is never nil; callers must not modify it.
func (m *Monitor) Snapshot() *Snapshot { return m.snap.Load() }

// Primary returns the name of the primary, or "" when there is none. The primary may be
// unreachable: check Usable before sending it writes.
func (m *Monitor) Primary() string { return m.snap.Load().Primary }

// Usable reports whether the named backend may get traffic now.
func (m *Monitor) Usable(name string) bool { return m.snap.Load().Usable(name) }

// Stats returns the counters as of the latest snapshot.
func (m *Monitor) Stats() Stats { return m.snap.Load().Stats }

// Ready is closed once every backend has been probed once (successfully or not) and the
// primary elected: from then on the snapshot reflects the servers. Before that, every
// backend is Down with LastError "not checked yet" and there is no primary unless one is
// pinned. The wait is at most about Options.Timeout after Run starts; if Run ends
// first, Ready never closes.
func (m *Monitor) Ready() <-chan struct{} { return m.ready }

// awaitReady waits until the monitor is Ready; false when ctx ends first.
func (m *Monitor) awaitReady(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-m.ready:
		return true
	}
}

// defaultOpTimeout bounds each wait of a topology change (failover.timeout
// when unset).
const defaultOpTimeout = 5 * time.Second

// Recheck asks for a probe of the named backend now rather than at its next turn, for
// instance after a write failed on it with a read-only error. It never blocks; unknown
// names are ignored.
func (m *Monitor) Recheck(name string) {
	if i, ok := m.index[name]; ok {
		select {
		case m.nudges[i] <- struct{}{}:
		default: // a probe is already due
		}
	}
}

// apply folds one observation into the monitor's state and publishes a snapshot.
func (m *Monitor) apply(obs *observation) {
	bs, b := &m.st[obs.index], m.backends[obs.index]
	first, prevGood := bs.obs == nil, bs.good
	bs.obs = obs
	bs.checks++
	if obs.err != nil {
		bs.failures++
	} else {
		bs.good = obs
	}
	if first {
		m.unchecked--
	}
	switch {
	case m.unchecked > 0:
		// Before every backend has answered once, a writable server might not be the
		// only one: hold the election, and the verdicts that depend on roles, rather
		// than guess.
	case first:
		// The last backend answered: elect, then judge everyone under their roles.
		m.elect()
		for i := range m.backends {
			m.judge(i)
		}
	default:
		prevPrimary := m.primary
		m.elect()
		m.judge(obs.index)
		// A backend whose role just changed is judged again on its latest observation
		// under its new role, so that a newly elected primary is not left marked as a
		// replica that does not replicate until its next probe.
		for _, name := range []string{prevPrimary, m.primary} {
			if i, ok := m.index[name]; ok && prevPrimary != m.primary && i != obs.index {
				m.judge(i)
			}
		}
	}
	m.warnWritable(b, prevGood, obs)
	m.publish()
	if first && m.unchecked == 0 {
		close(m.ready)
	}
}

// judge applies backend i's latest observation to its health, under its current role.
func (m *Monitor) judge(i int) {
	bs, b, obs := &m.st[i], m.backends[i], m.st[i].obs
	role := RoleReplica
	if b.Name == m.primary {
		role = RolePrimary
	}
	bs.lag = lagResult{}
	if role == RoleReplica && obs.err == nil && obs.repl != nil {
		bs.lag = measureLag(lagInput{
			heartbeat:   m.opts.Heartbeat.Enabled,
			lateAfter:   m.opts.Heartbeat.Interval + m.opts.MaxLag/2,
			row:         obs.row,
			writer:      m.writer,
			primaryDown: m.primaryDown(),
			repl:        *obs.repl,
			known:       bs.known,
			knownAt:     bs.knownAt,
			at:          obs.start,
		})
		if bs.lag.source != "" && bs.lag.source != LagBound {
			bs.known, bs.knownAt = bs.lag, obs.start
		}
	}
	prev := bs.health
	bs.health = prev.next(judge(obs, role, bs.lag, m.opts.MaxLag), role, m.opts.ReadmitAfter, obs.start)
	m.logTransition(b, prev, bs.health)
}

// primaryDown reports whether nobody can write: no primary, or an unreachable one.
func (m *Monitor) primaryDown() bool {
	i, ok := m.index[m.primary]
	return !ok || m.st[i].health.state == Down
}

// elect reruns the election on the latest observations and logs what changed.
func (m *Monitor) elect() {
	cs := make([]candidate, len(m.backends))
	for i, b := range m.backends {
		o := m.st[i].obs
		cs[i] = candidate{name: b.Name, hint: b.Role, known: o != nil && o.err == nil, readOnly: o != nil && o.readOnly}
	}
	e := elect(m.primary, m.conflict, cs)
	if e.conflict && !m.conflict {
		m.stats.Conflicts++
		m.log.Error("several writable servers: refusing to choose a primary",
			"writable", e.writable, "kept_primary", e.primary)
	} else if !e.conflict && m.conflict {
		m.log.Info("writable servers conflict resolved", "writable", e.writable)
	}
	if e.primary != m.primary {
		m.stats.PrimaryChanges++
		switch {
		case e.primary == "":
			m.log.Warn("no primary: no server is writable", "previous", m.primary)
		default:
			m.log.Warn("primary changed", "previous", m.primary, "primary", e.primary)
		}
	}
	m.primary, m.conflict, m.writable = e.primary, e.conflict, e.writable
}

// warnWritable logs a server that has just become writable without being elected
// primary: a RoleReplica backend, or one beside a pinned or conflicting primary.
func (m *Monitor) warnWritable(b Server, prev, obs *observation) {
	if obs.err != nil || obs.readOnly || prev == nil || !prev.readOnly || b.Name == m.primary {
		return
	}
	m.log.Warn("server became writable but is not the primary", "backend", b.Name, "primary", m.primary)
}

// logTransition logs and counts a change of health.
func (m *Monitor) logTransition(b Server, prev, next health) {
	log := m.log.With("backend", b.Name)
	switch {
	case !prev.checked:
		log.Info("backend checked", "state", next.state, "reason", next.reason)
	case prev.state == next.state:
	case next.state == Usable:
		m.stats.Readmissions++
		log.Info("backend readmitted", "previous", prev.state)
	case prev.state == Usable:
		m.stats.Exclusions++
		log.Warn("backend excluded", "state", next.state, "reason", next.reason)
	default:
		log.Warn("backend state changed", "previous", prev.state, "state", next.state, "reason", next.reason)
	}
}

// heartbeat records one heartbeat attempt.
func (m *Monitor) heartbeat(ev heartbeatEvent) {
	w := &m.writer
	switch {
	case ev.skipped:
		w.failing = true
	case ev.err != nil:
		w.failing = true
		m.stats.HeartbeatErrors++
		if msg := ev.err.Error(); msg != m.hbErr {
			m.hbErr = msg
			m.log.Warn("heartbeat write failed; lag falls back to Seconds_Behind_Master", "err", ev.err)
		}
	default:
		if w.first.IsZero() {
			m.log.Info("heartbeat started", "primary", ev.target)
		} else if m.hbErr != "" {
			m.log.Info("heartbeat write recovered", "primary", ev.target)
		}
		if w.first.IsZero() {
			w.first = ev.ts
		}
		m.hbErr = ""
		w.last, w.failing = ev.ts, false
		m.stats.HeartbeatWrites++
	}
}

// publish stores a new snapshot and calls OnChange if something that matters changed.
func (m *Monitor) publish() {
	m.seq++
	s := &Snapshot{
		Primary:  m.primary,
		Conflict: m.conflict,
		Writable: slices.Clone(m.writable),
		Backends: make([]BackendStatus, len(m.backends)),
		Stats:    m.stats,
		Seq:      m.seq,
		index:    m.index,
	}
	for i := range m.backends {
		s.Backends[i] = m.status(i)
	}
	old := m.snap.Swap(s)
	// Before Ready the states are placeholders (every backend Down, not
	// judged yet): a caller acting on a Down would act on nothing.
	if m.opts.OnChange != nil && old != nil && m.unchecked == 0 && changed(old, s) {
		m.opts.OnChange(s)
	}
}

// status builds backend i's public status.
func (m *Monitor) status(i int) BackendStatus {
	b, bs := m.backends[i], &m.st[i]
	st := BackendStatus{
		Name:      b.Name,
		Addr:      b.Addr,
		Hint:      b.Role,
		Role:      RoleReplica,
		State:     bs.health.state,
		Since:     bs.health.since,
		LastError: bs.health.reason,
		Lag:       bs.lag.lag,
		LagSource: bs.lag.source,
		Checks:    bs.checks,
		Failures:  bs.failures,
	}
	if b.Name == m.primary {
		st.Role = RolePrimary
	}
	if !bs.health.checked {
		// Not judged until every backend has answered once (see apply).
		st.LastError = "not checked yet"
	}
	if bs.obs == nil {
		return st
	}
	st.CheckedAt, st.ProbeTime = bs.obs.start, bs.obs.took
	st.Reachable = bs.obs.err == nil
	if st.LastError == "" {
		switch o := bs.obs; {
		case o.err != nil:
			st.LastError = o.err.Error()
		case o.replErr != "" && st.Role == RoleReplica:
			st.LastError = "replica status: " + o.replErr
		case o.row.err != "" && st.Role == RoleReplica && m.opts.Heartbeat.Enabled:
			st.LastError = "heartbeat: " + o.row.err
		}
	}
	if g := bs.good; g != nil {
		st.ReadOnly = g.readOnly
		st.Flavor, st.Version = g.server.flavor, g.server.version
		st.GTIDBinlogPos, st.GTIDCurrentPos = g.gtid.binlogPos, g.gtid.currentPos
		st.GTIDSlavePos, st.GTIDExecuted = g.gtid.slavePos, g.gtid.executed
		if rs := g.repl; rs != nil {
			st.Replicating, st.Source = true, rs.source
			st.IOThread, st.SQLThread = rs.ioRunning, rs.sqlRunning
			st.IOError = threadError(rs.ioErrno, rs.ioError)
			st.SQLError = threadError(rs.sqlErrno, rs.sqlError)
		}
	}
	return st
}

// changed reports whether b differs from a in anything OnChange is for.
func changed(a, b *Snapshot) bool {
	if a.Primary != b.Primary || a.Conflict != b.Conflict {
		return true
	}
	for i := range a.Backends {
		x, y := &a.Backends[i], &b.Backends[i]
		if x.State != y.State || x.Role != y.Role || x.ReadOnly != y.ReadOnly {
			return true
		}
	}
	return false
}
