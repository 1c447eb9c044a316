package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Automatic failover (Monitor.RunFailover) promotes a replica when the
// primary has been unreachable for FailoverOptions.After, and keeps one
// writable server afterwards:
//
//   - Only with the topology lock held on a majority of the backends
//     (lockMajority): of several Switchyards watching the same servers, one
//     promotes, and one cut off with a minority of them never does.
//   - Under the lock it looks again, on its own connections: the primary
//     must still not answer, no other server may be writable (another
//     Switchyard promoted it: follow), and no replica may still receive from
//     the primary (it is alive, and only this Switchyard cannot see it).
//   - Each candidate applies what it has received (its relay log) first; the
//     one that has applied the most GTIDs is promoted. With semi-synchronous
//     replication every acknowledged commit is in some replica's relay log,
//     so the winner has them all.
//   - Every connection the proxy holds to the old primary is closed
//     (CutOff): a write it was running when it froze can never be
//     acknowledged after the promotion.
//   - A server found writable beside the primary is made read-only at once
//     (the old primary coming back). A read-only server that does not
//     replicate is pointed at the primary when its GTID history is a part of
//     the primary's; otherwise it holds transactions the primary never got:
//     it is kept out and reported (Diverged).

// FailoverOptions configure RunFailover.
type FailoverOptions struct {
	Account
	// After is how long the primary must have been down before a replica
	// is promoted. Zero means 2s.
	After time.Duration
	// Timeout bounds each wait (a candidate applying its relay log, the
	// monitor seeing the new primary). Zero means 5s.
	Timeout time.Duration
	// CutOff, when set, closes every connection the proxy holds to the
	// backend named.
	CutOff func(name string)
	// OnEvent, when set, is told of every failover, fencing and rejoin, and
	// of failed attempts (once per distinct reason).
	OnEvent func(FailoverEvent)
}

// FailoverEvent is something RunFailover did or could not do.
type FailoverEvent struct {
	Kind    string // "failover", "fenced", "rejoined", "diverged"
	Backend string // the promoted, fenced, rejoined or diverged server
	From    string // failover: the old primary
	Err     error  // nil when it was done
	// Failover: Downtime runs from when the monitor found the primary down
	// to when it saw the new one; Steps are the steps taken.
	Downtime time.Duration
	Steps    []SwitchoverStep
}

// Reasons a failover does not happen (yet).
var (
	errPrimaryAnswers  = errors.New("the primary answers again")
	errAlreadyPromoted = errors.New("another server is writable already (promoted by someone else): following it")
	errReplicaSees     = errors.New("a replica still receives from the primary: it is alive, and only this Switchyard cannot reach it")
	errNoCandidate     = errors.New("no replica can be promoted")
)

// failoverState is RunFailover's memory, shared with Diverged.
type failoverState struct {
	mu       sync.Mutex
	diverged map[string]string // backend -> why it is kept out
	lastErr  string            // last reason reported for not failing over
	rejoin   map[string]string // backend -> last reason it could not rejoin
}

// Diverged returns the backends kept out of the topology because they hold
// transactions the primary does not have, with why.
func (m *Monitor) Diverged() map[string]string {
	m.fo.mu.Lock()
	defer m.fo.mu.Unlock()
	out := make(map[string]string, len(m.fo.diverged))
	for k, v := range m.fo.diverged {
		out[k] = v
	}
	return out
}

// RunFailover watches the monitor's snapshots until ctx ends: it fails
// over when the primary stays down, and fences and rejoins servers as
// described above. Run must be running.
func (m *Monitor) RunFailover(ctx context.Context, o FailoverOptions) {
	if o.After <= 0 {
		o.After = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultOpTimeout
	}
	if !m.awaitReady(ctx) {
		return
	}
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		s := m.Snapshot()
		if m.changing.CompareAndSwap(false, true) {
			m.guard(ctx, s, o)
			m.maybeFailover(ctx, s, o)
			m.changing.Store(false)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Monitor) event(o FailoverOptions, ev FailoverEvent) {
	if o.OnEvent != nil {
		o.OnEvent(ev)
	}
}

// maybeFailover fails over when the primary has been down for o.After.
func (m *Monitor) maybeFailover(ctx context.Context, s *Snapshot, o FailoverOptions) {
	p, ok := s.Backend(s.Primary)
	if !ok || s.Conflict || p.State != Down || p.Reachable || time.Since(p.Since) < o.After {
		m.fo.mu.Lock()
		m.fo.lastErr = ""
		m.fo.mu.Unlock()
		return
	}
	to, steps, err := m.failover(ctx, s, p, o)
	if err != nil {
		m.fo.mu.Lock()
		again := m.fo.lastErr == err.Error()
		m.fo.lastErr = err.Error()
		m.fo.mu.Unlock()
		if !again {
			m.log.Warn("no failover yet", "primary", p.Name, "down_for", time.Since(p.Since).Round(time.Millisecond).String(), "reason", err)
			m.event(o, FailoverEvent{Kind: "failover", From: p.Name, Err: err, Steps: steps})
		}
		return
	}
	down := time.Since(p.Since)
	m.log.Warn("failover done", "from", p.Name, "to", to, "primary_down_for", down.Round(time.Millisecond).String())
	m.event(o, FailoverEvent{Kind: "failover", Backend: to, From: p.Name, Downtime: down, Steps: steps})
}

// failover promotes the best replica in place of the primary p, which the
// snapshot s says is down. It returns the promoted backend.
func (m *Monitor) failover(ctx context.Context, s *Snapshot, p BackendStatus, o FailoverOptions) (string, []SwitchoverStep, error) {
	var cands []BackendStatus
	for _, b := range s.Backends {
		if b.Name != p.Name && b.Reachable && b.Hint != RoleReplica && b.Replicating && b.Flavor == p.Flavor {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return "", nil, errNoCandidate
	}
	si, err := serverInfoOf(cands[0])
	if err != nil {
		return "", nil, err
	}
	op := newOperator(m, o.Account, o.Timeout, si)
	defer op.close()
	if err := op.lockMajority(ctx); err != nil {
		return "", op.steps, err
	}
	// Look again, on our own connections, now that no other Switchyard
	// can change anything.
	if err := op.step(ctx, "check that the primary is gone", p.Name, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
		defer cancel()
		if _, err := op.db(pctx, p.Name); err == nil {
			return errPrimaryAnswers
		}
		for _, b := range s.Backends {
			if b.Name == p.Name {
				continue
			}
			st, readOnly, err := op.replicaState(ctx, b.Name)
			if err != nil {
				continue // unreachable: it has no say
			}
			if !readOnly {
				return fmt.Errorf("%w (%s)", errAlreadyPromoted, b.Name)
			}
			if st != nil && st.ioRunning == "Yes" {
				return fmt.Errorf("%w (%s)", errReplicaSees, b.Name)
			}
		}
		return nil
	}); err != nil {
		return "", op.steps, err
	}
	// Each candidate applies its relay log; the most advanced wins. One
	// that cannot may hold acknowledged transactions the others lack: then
	// nobody is promoted, unless the winner has everything it received.
	var (
		best     string
		bestGTID gtids
		stuck    = map[string]string{} // candidate -> what it received, when it could not apply it
	)
	for _, c := range cands {
		var applied, received string
		err := op.step(ctx, "apply the relay log", c.Name, func(ctx context.Context) error {
			var err error
			if received, err = op.waitRelayApplied(ctx, c.Name); err != nil {
				return err
			}
			db, err := op.db(ctx, c.Name)
			if err != nil {
				return err
			}
			return db.QueryRowContext(ctx, op.sql.applied).Scan(&applied)
		})
		if err != nil {
			m.log.Warn("failover: candidate cannot apply its relay log", "backend", c.Name, "err", err)
			stuck[c.Name] = received
			continue
		}
		g, err := parseGTIDs(c.Flavor, applied)
		if err != nil {
			continue
		}
		if best == "" {
			best, bestGTID = c.Name, g
			continue
		}
		order, same := compareGTIDs(g, bestGTID)
		if !same {
			m.log.Warn("failover: candidates hold different transactions", "backend", c.Name, "gtids", applied, "other", best)
		}
		if order > 0 {
			best, bestGTID = c.Name, g
		}
	}
	if best == "" {
		return "", op.steps, errNoCandidate
	}
	for name, received := range stuck {
		g, err := parseGTIDs(p.Flavor, received)
		if received == "" || err != nil || !bestGTID.set.Contain(g.set) {
			return "", op.steps, fmt.Errorf("%s cannot apply its relay log, and may hold transactions %s lacks (received: %q)", name, best, received)
		}
	}
	if err := op.promote(ctx, best); err != nil {
		// Leave it as it was if it lets us; the next attempt starts over.
		_ = op.exec(context.WithoutCancel(ctx), best, op.sql.readOnly, op.sql.start)
		return "", op.steps, err
	}
	if o.CutOff != nil {
		o.CutOff(p.Name)
	}

	m.Recheck(best)
	var others []string
	for _, c := range s.Backends {
		if c.Name != best && c.Name != p.Name && c.Reachable {
			others = append(others, c.Name)
		}
	}
	done, not := op.repoint(ctx, best, others, "")
	if len(not) > 0 {
		m.log.Error("failover: servers not pointed at the new primary", "primary", best, "not_repointed", fmt.Sprint(not), "repointed", done)
	}
	err = op.step(ctx, "see the new primary", best, func(ctx context.Context) error {
		return op.waitSnapshot(ctx, func(s *Snapshot) bool { return s.Primary == best && s.Usable(best) })
	})
	// Should the old primary be back already, it must not stay writable.
	fctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	_ = op.exec(fctx, p.Name, op.sql.readOnly)
	cancel()
	return best, op.steps, err
}

// replicaState reads the backend's replica status (nil when it has none)
// and whether it is read-only.
func (op *operator) replicaState(ctx context.Context, name string) (*replicaStatus, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, op.m.opts.Timeout)
	defer cancel()
	db, err := op.db(ctx, name)
	if err != nil {
		return nil, false, err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	var ro string
	if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
		return nil, false, err
	}
	st, err := readReplicaStatus(ctx, c, op.si)
	return st, parseReadOnly(ro), err
}

// waitRelayApplied waits until the replica named has applied everything
// its I/O thread received, starting its applier if it was stopped without
// an error (a failover's own attempt cut short, say). It returns the GTIDs
// received, known even when it fails.
func (op *operator) waitRelayApplied(ctx context.Context, name string) (string, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	received, started := "", false
	for {
		st, _, err := op.replicaState(ctx, name)
		if st != nil {
			received = st.received
		}
		switch {
		case err != nil:
			return received, err
		case st == nil:
			return received, errors.New("it does not replicate")
		case st.sqlRunning != "Yes" && st.sqlErrno == 0 && !started:
			if err := op.exec(ctx, name, op.sql.startSQL); err != nil {
				return received, err
			}
			started = true
		case st.sqlRunning != "Yes" && st.sqlErrno != 0:
			return received, fmt.Errorf("its SQL thread stopped: %s", threadError(st.sqlErrno, st.sqlError))
		case st.sqlRunning == "Yes" && st.caughtUp():
			return received, nil
		}
		select {
		case <-ctx.Done():
			return received, fmt.Errorf("relay log not applied within %s", op.timeout)
		case <-t.C:
		}
	}
}

// guard keeps one writable server: beside a reachable, writable primary,
// any other writable server is made read-only, and a read-only server that
// does not replicate is pointed at the primary if its history allows. The
// snapshot only says where to look: what is done is decided on the
// servers' current state, read under the topology lock (another
// Switchyard's switchover, half-way, must not look like a second primary).
func (m *Monitor) guard(ctx context.Context, s *Snapshot, o FailoverOptions) {
	p, ok := s.Backend(s.Primary)
	if !ok || !p.Reachable || p.ReadOnly || p.State != Usable {
		return
	}
	var suspects []BackendStatus
	for _, b := range s.Backends {
		if b.Name == p.Name || !b.Reachable || b.Hint == RolePrimary {
			continue
		}
		m.fo.mu.Lock()
		_, diverged := m.fo.diverged[b.Name]
		if diverged && b.Replicating && b.IOThread == "Yes" {
			delete(m.fo.diverged, b.Name) // repaired by hand
			diverged = false
		}
		m.fo.mu.Unlock()
		if !b.ReadOnly || !b.Replicating && !diverged {
			suspects = append(suspects, b)
		}
	}
	if len(suspects) == 0 {
		return
	}
	si, err := serverInfoOf(p)
	if err != nil {
		return
	}
	op := newOperator(m, o.Account, o.Timeout, si)
	defer op.close()
	if op.lockMajority(ctx) != nil {
		return // another Switchyard is changing the topology: look again later
	}
	if _, ro, err := op.replicaState(ctx, p.Name); err != nil || ro {
		return // the snapshot is behind
	}
	for _, b := range suspects {
		st, ro, err := op.replicaState(ctx, b.Name)
		switch {
		case err != nil:
		case !ro:
			err := op.exec(ctx, b.Name, op.sql.readOnly)
			if err == nil {
				m.log.Error("a second writable server was made read-only", "backend", b.Name, "primary", p.Name)
			} else {
				m.log.Error("a second server is writable and could not be made read-only", "backend", b.Name, "primary", p.Name, "err", err)
			}
			m.Recheck(b.Name)
			m.event(o, FailoverEvent{Kind: "fenced", Backend: b.Name, Err: err})
		case st == nil:
			m.rejoin(ctx, op, p, b, o)
		}
	}
}

// rejoin points the read-only, non-replicating server b at the primary p
// when everything b has executed is in p's history; otherwise it marks b
// diverged.
func (m *Monitor) rejoin(ctx context.Context, op *operator, p, b BackendStatus, o FailoverOptions) {
	why, err := op.divergence(ctx, p.Name, b.Name)
	if err != nil {
		return // try again at the next look
	}
	if why != "" {
		m.fo.mu.Lock()
		if m.fo.diverged == nil {
			m.fo.diverged = map[string]string{}
		}
		m.fo.diverged[b.Name] = why
		m.fo.mu.Unlock()
		m.log.Error("server kept out: it holds transactions the primary never got", "backend", b.Name, "primary", p.Name, "detail", why)
		m.event(o, FailoverEvent{Kind: "diverged", Backend: b.Name, Err: errors.New(why)})
		return
	}
	done, not := op.repoint(ctx, p.Name, []string{b.Name}, b.Name)
	m.fo.mu.Lock()
	if m.fo.rejoin == nil {
		m.fo.rejoin = map[string]string{}
	}
	again := m.fo.rejoin[b.Name] == not[b.Name]
	m.fo.rejoin[b.Name] = not[b.Name]
	m.fo.mu.Unlock()
	switch {
	case len(done) == 1:
		m.log.Warn("server rejoined as a replica", "backend", b.Name, "primary", p.Name)
		m.event(o, FailoverEvent{Kind: "rejoined", Backend: b.Name})
	case !again:
		m.log.Error("server could not rejoin as a replica", "backend", b.Name, "primary", p.Name, "err", not[b.Name])
		m.event(o, FailoverEvent{Kind: "rejoined", Backend: b.Name, Err: errors.New(not[b.Name])})
	}
}

// divergence says what the server named has executed that the primary
// never got, or "" when its history is a part of the primary's.
func (op *operator) divergence(ctx context.Context, primary, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, op.m.opts.Timeout)
	defer cancel()
	pdb, err := op.db(ctx, primary)
	if err != nil {
		return "", err
	}
	db, err := op.db(ctx, name)
	if err != nil {
		return "", err
	}
	if op.si.flavor == FlavorMariaDB {
		// The last GTID of each domain in the server's binlog must be in
		// the primary's binlog: its state keeps the last GTID of every
		// (domain, server) pair it holds.
		var pos, state string
		if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
			return "", err
		}
		if err := pdb.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_state").Scan(&state); err != nil {
			return "", err
		}
		return mariaDBDivergence(pos, state)
	}
	var own, all string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&own); err != nil {
		return "", err
	}
	if err := pdb.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&all); err != nil {
		return "", err
	}
	return mySQLDivergence(own, all)
}

// mariaDBDivergence compares a server's gtid_binlog_pos with the primary's
// gtid_binlog_state: each GTID of pos must be in state, or be older than the
// state's GTID of the same domain and server.
func mariaDBDivergence(pos, state string) (string, error) {
	have := map[[2]uint32]uint64{}
	for _, e := range splitGTIDs(state) {
		g, err := mysql.ParseMariadbGTID(e)
		if err != nil {
			return "", err
		}
		have[[2]uint32{g.DomainID, g.ServerID}] = max(have[[2]uint32{g.DomainID, g.ServerID}], g.SequenceNumber)
	}
	var missing []string
	for _, e := range splitGTIDs(pos) {
		g, err := mysql.ParseMariadbGTID(e)
		if err != nil {
			return "", err
		}
		if have[[2]uint32{g.DomainID, g.ServerID}] < g.SequenceNumber {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return fmt.Sprintf("its binlog ends at %s, which the primary's binlog (%s) does not hold", strings.Join(missing, ","), state), nil
}

// mySQLDivergence compares a server's gtid_executed with the primary's.
func mySQLDivergence(own, all string) (string, error) {
	o, err := mysql.ParseMysqlGTIDSet(own)
	if err != nil {
		return "", err
	}
	a, err := mysql.ParseMysqlGTIDSet(all)
	if err != nil {
		return "", err
	}
	if a.Contain(o) {
		return "", nil
	}
	return fmt.Sprintf("it has executed %s; the primary has %s", own, all), nil
}

func splitGTIDs(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return slices.Clip(out)
}
