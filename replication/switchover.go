package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A planned switchover moves the primary role to a replica without losing
// a write: writes are held (by the proxy, through SwitchoverOptions), open
// transactions finish, the primary becomes read-only, the target applies
// every GTID the primary has, the target is promoted, the monitor sees it
// as the primary, writes go on, and the old primary and the other replicas
// are pointed at the new one. Whatever fails before the promotion is undone:
// the old primary takes writes again and nothing has changed.

// SwitchoverOptions configure one switchover.
type SwitchoverOptions struct {
	// Target names the replica to promote; "" picks the usable replica that
	// has applied the most.
	Target string
	// Account changes the topology. Without a replication account the old
	// primary is left read-only and not replicating (the report says so).
	Account
	// Timeout bounds each wait: for open transactions (WaitQuiet), for the
	// target to catch up, for the monitor to see the new primary. Zero
	// means 5s.
	Timeout time.Duration
	// HoldWrites, when set, stops new writes until the function it returns
	// is called; WaitQuiet waits until no write or transaction is in flight.
	// The proxy provides both.
	HoldWrites func() (release func())
	WaitQuiet  func(ctx context.Context) error
}

// SwitchoverReport says what a switchover did.
type SwitchoverReport struct {
	From, To string
	// GTIDs is what the old primary had executed when it became read-only:
	// the new primary applied all of it before it took writes.
	GTIDs string `json:"gtids"`
	// WritesHeld is how long writes waited, from the hold to the release.
	WritesHeld time.Duration `json:"writes_held"`
	// PeersHeld counts the other Switchyards that held their writes too
	// (see RunStandby).
	PeersHeld int `json:"peers_held"`
	Steps     []SwitchoverStep
	// Repointed lists the servers now replicating from the new primary;
	// NotRepointed, those that are not, with why (to fix by hand).
	Repointed    []string
	NotRepointed map[string]string `json:"not_repointed,omitempty"`
}

// SwitchoverStep is one step of a switchover and how long it took.
type SwitchoverStep struct {
	Step    string
	Backend string        `json:"backend,omitempty"`
	Took    time.Duration `json:"took"`
}

// Switchover errors. Errors wrapping ErrSwitchoverRefused changed nothing;
// ErrSwitchoverCalledOff, nothing that was not undone. Any other error came
// after the promotion: the report says where things stand.
var (
	ErrSwitchoverRunning   = errors.New("a switchover is already running")
	ErrSwitchoverRefused   = errors.New("switchover refused")
	ErrSwitchoverCalledOff = errors.New("switchover called off; the old primary takes writes again")
)

// planSwitchover checks that a switchover can start from snapshot s and
// returns the primary and the replica to promote (target, or the usable one
// that has applied the most when target is "").
func planSwitchover(s *Snapshot, target string) (from, to string, err error) {
	refuse := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("%w: %s", ErrSwitchoverRefused, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Conflict:
		return refuse("several servers are writable (%v)", s.Writable)
	case s.Primary == "":
		return refuse("there is no primary")
	}
	p, _ := s.Backend(s.Primary)
	switch {
	case p.State != Usable:
		return refuse("the primary %s is %s (%s): a planned switchover needs it", p.Name, p.State, p.LastError)
	case p.Hint == RolePrimary:
		return refuse("%s is pinned as the primary (role: primary); set its role to auto first", p.Name)
	}
	eligible := func(b BackendStatus) string {
		switch {
		case b.Name == p.Name:
			return "it is the primary"
		case b.Hint == RoleReplica:
			return "its role is replica, which never becomes the primary"
		case b.State != Usable:
			return fmt.Sprintf("it is %s (%s)", b.State, b.LastError)
		case !b.Replicating:
			return "it does not replicate"
		case b.Flavor != p.Flavor:
			return fmt.Sprintf("it runs %s and the primary %s", b.Flavor, p.Flavor)
		}
		return ""
	}
	if target != "" {
		b, ok := s.Backend(target)
		if !ok {
			return refuse("unknown backend %q", target)
		}
		if why := eligible(b); why != "" {
			return refuse("%s cannot become the primary: %s", target, why)
		}
		return p.Name, target, nil
	}
	var best gtids
	for _, b := range s.Backends {
		if eligible(b) != "" {
			continue
		}
		g, err := parseGTIDs(b.Flavor, b.applied())
		if err != nil {
			continue
		}
		if to == "" {
			to, best = b.Name, g
		} else if order, _ := compareGTIDs(g, best); order > 0 {
			to, best = b.Name, g
		}
	}
	if to == "" {
		return refuse("no usable replica can become the primary")
	}
	return p.Name, to, nil
}

// adminSQL holds the statements of a switchover for one server's flavour
// and version.
type adminSQL struct {
	readOnly, writable      string
	executed                string // the GTIDs the server has executed
	applied                 string // the GTIDs a replica has applied
	wait                    string // takes GTIDs and seconds; returns 0 once applied
	stop, reset, start      string
	startSQL                string // the applier only
	changeSource            string // takes host and port
	changeSourceCredentials string // appended with user and password
}

func adminStatements(si serverInfo) adminSQL {
	if si.flavor == FlavorMariaDB {
		return adminSQL{
			readOnly: "SET GLOBAL read_only = 1", writable: "SET GLOBAL read_only = 0",
			executed: "SELECT @@GLOBAL.gtid_binlog_pos", applied: "SELECT @@GLOBAL.gtid_current_pos",
			wait: "SELECT MASTER_GTID_WAIT(?, ?)",
			stop: "STOP SLAVE", reset: "RESET SLAVE ALL", start: "START SLAVE", startSQL: "START SLAVE SQL_THREAD",
			// current_pos: a demoted primary resumes after its own binlog, a
			// replica after what it applied.
			changeSource:            "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USE_GTID = current_pos",
			changeSourceCredentials: ", MASTER_USER = ?, MASTER_PASSWORD = ?",
		}
	}
	a := adminSQL{
		readOnly: "SET GLOBAL super_read_only = 1", writable: "SET GLOBAL super_read_only = 0, read_only = 0",
		executed: "SELECT @@GLOBAL.gtid_executed", applied: "SELECT @@GLOBAL.gtid_executed",
		wait: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
		stop: "STOP REPLICA", reset: "RESET REPLICA ALL", start: "START REPLICA", startSQL: "START REPLICA SQL_THREAD",
		changeSource:            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1",
		changeSourceCredentials: ", SOURCE_USER = ?, SOURCE_PASSWORD = ?",
	}
	if !si.atLeast(8, 0, 23) {
		a.stop, a.reset, a.start, a.startSQL = "STOP SLAVE", "RESET SLAVE ALL", "START SLAVE", "START SLAVE SQL_THREAD"
		a.changeSource = "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_AUTO_POSITION = 1, GET_MASTER_PUBLIC_KEY = 1"
		a.changeSourceCredentials = ", MASTER_USER = ?, MASTER_PASSWORD = ?"
	}
	return a
}

// switchover is one switchover in progress.
type switchover struct {
	*operator
	o      SwitchoverOptions
	rep    *SwitchoverReport
	held   time.Time
	unhold func()
	mark   *sql.Conn // holds switchoverKey on the old primary, for the other Switchyards
}

// Switchover moves the primary role to another backend; see
// SwitchoverOptions and the errors above. The monitor must be running and
// Ready. One topology change runs at a time in a Switchyard, and across
// Switchyards watching the same servers (a lock on a majority of them).
func (m *Monitor) Switchover(ctx context.Context, o SwitchoverOptions) (*SwitchoverReport, error) {
	if !m.changing.CompareAndSwap(false, true) {
		return nil, ErrSwitchoverRunning
	}
	defer m.changing.Store(false)
	select {
	case <-m.ready:
	default:
		return nil, fmt.Errorf("%w: the monitor has not checked every backend yet", ErrSwitchoverRefused)
	}
	if o.User == "" {
		return nil, fmt.Errorf("%w: no account to change the topology with (failover.user)", ErrSwitchoverRefused)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultOpTimeout
	}
	from, to, err := planSwitchover(m.Snapshot(), o.Target)
	if err != nil {
		return nil, err
	}
	// The statements follow the primary's flavour and version, as the
	// monitor read them; planSwitchover made sure the target's flavour is
	// the same.
	p, _ := m.Snapshot().Backend(from)
	si, err := serverInfoOf(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSwitchoverRefused, err)
	}
	sw := &switchover{operator: newOperator(m, o.Account, o.Timeout, si), o: o, rep: &SwitchoverReport{From: from, To: to}}
	defer sw.close()
	m.log.Warn("switchover starting", "from", from, "to", to)
	err = sw.run(ctx, from, to)
	sw.rep.Steps = sw.steps
	if err != nil {
		m.log.Error("switchover failed", "from", from, "to", to, "err", err)
		return sw.rep, err
	}
	m.log.Warn("switchover done", "from", from, "to", to, "writes_held", sw.rep.WritesHeld.String(),
		"not_repointed", len(sw.rep.NotRepointed))
	return sw.rep, nil
}

func (sw *switchover) run(ctx context.Context, from, to string) error {
	o := sw.o
	// Log in to both first: a server that refuses the account stops the
	// switchover before anything changed.
	for _, name := range []string{from, to} {
		if _, err := sw.db(ctx, name); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrSwitchoverRefused, name, err)
		}
	}
	if err := sw.lockMajority(ctx); err != nil {
		return fmt.Errorf("%w: %v (another Switchyard is changing the topology, or too few servers answer)", ErrSwitchoverRefused, err)
	}
	sw.hold()
	if o.WaitQuiet != nil {
		if err := sw.step(ctx, "wait for open transactions", "", func(ctx context.Context) error {
			return o.WaitQuiet(ctx)
		}); err != nil {
			sw.release()
			return fmt.Errorf("%w: %v", ErrSwitchoverCalledOff, err)
		}
	}
	if err := sw.step(ctx, "hold writes in the other Switchyards", from, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		return sw.holdPeers(ctx, from)
	}); err != nil {
		sw.m.log.Warn("switchover goes on", "err", err)
	}
	old, _ := sw.db(ctx, from)
	if err := sw.step(ctx, "make the primary read-only", from, func(ctx context.Context) error {
		return sw.exec(ctx, from, sw.sql.readOnly)
	}); err != nil {
		return sw.callOff(from, err)
	}
	sw.m.Recheck(from)
	var pos string
	if err := sw.step(ctx, "read the primary's GTIDs", from, func(ctx context.Context) error {
		return old.QueryRowContext(ctx, sw.sql.executed).Scan(&pos)
	}); err != nil {
		return sw.callOff(from, err)
	}
	sw.rep.GTIDs = pos
	if err := sw.step(ctx, "wait until the new primary has applied them", to, func(ctx context.Context) error {
		return sw.waitApplied(ctx, to, pos)
	}); err != nil {
		return sw.callOff(from, err)
	}
	if err := sw.step(ctx, "see the old primary read-only", from, func(ctx context.Context) error {
		return sw.waitSnapshot(ctx, func(s *Snapshot) bool {
			b, _ := s.Backend(from)
			return b.ReadOnly && s.Primary != from
		})
	}); err != nil {
		return sw.callOff(from, err)
	}
	if err := sw.promote(ctx, to); err != nil {
		// Put the target back as it was, if it lets us, and the old
		// primary back in charge.
		_ = sw.exec(context.WithoutCancel(ctx), to, sw.sql.readOnly, sw.sql.start)
		return sw.callOff(from, err)
	}
	sw.m.Recheck(to)
	err := sw.step(ctx, "see the new primary", to, func(ctx context.Context) error {
		return sw.waitSnapshot(ctx, func(s *Snapshot) bool { return s.Primary == to && s.Usable(to) })
	})
	sw.release()
	if err != nil {
		return fmt.Errorf("%s was promoted but the monitor does not see it as the primary: %w", to, err)
	}
	var others []string
	for _, b := range sw.m.backends {
		if b.Name != to {
			others = append(others, b.Name)
		}
	}
	sw.rep.Repointed, sw.rep.NotRepointed = sw.repoint(ctx, to, others, from)
	return nil
}

// callOff undoes the demotion after a failure before the promotion.
func (sw *switchover) callOff(from string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), sw.o.Timeout)
	defer cancel()
	err := sw.exec(ctx, from, sw.sql.writable)
	sw.m.Recheck(from)
	if err == nil {
		err = sw.waitSnapshot(ctx, func(s *Snapshot) bool { return s.Primary == from })
	}
	sw.release()
	if err != nil {
		return fmt.Errorf("%v, and %s could not be made writable again: %v (make it writable by hand)", cause, from, err)
	}
	return fmt.Errorf("%w: %v", ErrSwitchoverCalledOff, cause)
}

// waitSnapshot waits until the monitor publishes a snapshot for which ok holds.
func (op *operator) waitSnapshot(ctx context.Context, ok func(*Snapshot) bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !ok(op.m.Snapshot()) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the monitor did not see it within %s", op.timeout)
		case <-t.C:
		}
	}
	return nil
}

func (sw *switchover) hold() {
	sw.held = time.Now()
	sw.unhold = func() {}
	if sw.o.HoldWrites != nil {
		sw.unhold = sw.o.HoldWrites()
	}
}

// release lets writes go on; only the first call counts.
func (sw *switchover) release() {
	if sw.unhold == nil {
		return
	}
	sw.unhold()
	sw.unhold = nil
	sw.rep.WritesHeld = time.Since(sw.held)
	if sw.mark != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sw.m.opts.Timeout)
		_, _ = sw.mark.ExecContext(ctx, "DO RELEASE_LOCK(?)", switchoverKey)
		cancel()
		sw.mark.Close()
		sw.mark = nil
	}
}

func (sw *switchover) close() {
	sw.release()
	sw.operator.close()
}
