package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
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
	// User and Password log in to every backend to change the topology.
	User, Password string
	// ReplicationUser and ReplicationPassword are what the old primary
	// replicates from the new one with. Empty leaves it read-only and not
	// replicating (the report says so). Replicas keep their own account.
	ReplicationUser, ReplicationPassword string
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
	Steps      []SwitchoverStep
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
	wait                    string // takes GTIDs and seconds; returns 0 once applied
	stop, reset, start      string
	changeSource            string // takes host and port
	changeSourceCredentials string // appended with user and password
}

func adminStatements(si serverInfo) adminSQL {
	if si.flavor == FlavorMariaDB {
		return adminSQL{
			readOnly: "SET GLOBAL read_only = 1", writable: "SET GLOBAL read_only = 0",
			executed: "SELECT @@GLOBAL.gtid_binlog_pos",
			wait:     "SELECT MASTER_GTID_WAIT(?, ?)",
			stop:     "STOP SLAVE", reset: "RESET SLAVE ALL", start: "START SLAVE",
			// current_pos: a demoted primary resumes after its own binlog, a
			// replica after what it applied.
			changeSource:            "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USE_GTID = current_pos",
			changeSourceCredentials: ", MASTER_USER = ?, MASTER_PASSWORD = ?",
		}
	}
	a := adminSQL{
		readOnly: "SET GLOBAL super_read_only = 1", writable: "SET GLOBAL super_read_only = 0, read_only = 0",
		executed: "SELECT @@GLOBAL.gtid_executed",
		wait:     "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)",
		stop:     "STOP REPLICA", reset: "RESET REPLICA ALL", start: "START REPLICA",
		changeSource:            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1",
		changeSourceCredentials: ", SOURCE_USER = ?, SOURCE_PASSWORD = ?",
	}
	if !si.atLeast(8, 0, 23) {
		a.stop, a.reset, a.start = "STOP SLAVE", "RESET SLAVE ALL", "START SLAVE"
		a.changeSource = "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_AUTO_POSITION = 1, GET_MASTER_PUBLIC_KEY = 1"
		a.changeSourceCredentials = ", MASTER_USER = ?, MASTER_PASSWORD = ?"
	}
	return a
}

// switchover is one switchover in progress.
type switchover struct {
	m      *Monitor
	o      SwitchoverOptions
	rep    *SwitchoverReport
	sql    adminSQL
	dbs    map[string]*sql.DB
	held   time.Time
	unhold func()
}

// Switchover moves the primary role to another backend; see
// SwitchoverOptions and the errors above. The monitor must be running and
// Ready. One switchover runs at a time.
func (m *Monitor) Switchover(ctx context.Context, o SwitchoverOptions) (*SwitchoverReport, error) {
	if !m.switching.CompareAndSwap(false, true) {
		return nil, ErrSwitchoverRunning
	}
	defer m.switching.Store(false)
	select {
	case <-m.ready:
	default:
		return nil, fmt.Errorf("%w: the monitor has not checked every backend yet", ErrSwitchoverRefused)
	}
	if o.User == "" {
		return nil, fmt.Errorf("%w: no account to change the topology with (failover.user)", ErrSwitchoverRefused)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	from, to, err := planSwitchover(m.Snapshot(), o.Target)
	if err != nil {
		return nil, err
	}
	sw := &switchover{m: m, o: o, rep: &SwitchoverReport{From: from, To: to}, dbs: map[string]*sql.DB{}}
	defer sw.close()
	// The statements follow the primary's flavour and version, as the
	// monitor read them; planSwitchover made sure the target's flavour is
	// the same.
	p, _ := m.Snapshot().Backend(from)
	si, err := parseServerInfo(p.Version, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSwitchoverRefused, err)
	}
	si.flavor = p.Flavor
	sw.sql = adminStatements(si)
	m.log.Warn("switchover starting", "from", from, "to", to)
	err = sw.run(ctx, from, to)
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
	// Log in everywhere first: a server that refuses the account stops the
	// switchover before it has changed anything.
	for _, b := range sw.m.backends {
		if _, err := sw.db(ctx, b.Name); err != nil {
			if b.Name == from || b.Name == to {
				return fmt.Errorf("%w: %s: %v", ErrSwitchoverRefused, b.Name, err)
			}
		}
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
	old, _ := sw.db(ctx, from)
	if err := sw.step(ctx, "make the primary read-only", from, func(ctx context.Context) error {
		_, err := old.ExecContext(ctx, sw.sql.readOnly)
		return err
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
	tdb, _ := sw.db(ctx, to)
	if err := sw.step(ctx, "wait until the new primary has applied them", to, func(ctx context.Context) error {
		var res sql.NullInt64
		if err := tdb.QueryRowContext(ctx, sw.sql.wait, pos, o.Timeout.Seconds()).Scan(&res); err != nil {
			return err
		}
		if !res.Valid || res.Int64 != 0 {
			return fmt.Errorf("%s had not applied %s within %s", to, pos, o.Timeout)
		}
		return nil
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
	if err := sw.step(ctx, "promote", to, func(ctx context.Context) error {
		for _, q := range []string{sw.sql.stop, sw.sql.reset, sw.sql.writable} {
			if _, err := tdb.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}); err != nil {
		// Put the target back as it was, if it lets us, and the old
		// primary back in charge.
		_, _ = tdb.ExecContext(context.WithoutCancel(ctx), sw.sql.readOnly)
		_, _ = tdb.ExecContext(context.WithoutCancel(ctx), sw.sql.start)
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
	sw.repoint(ctx, from, to)
	return nil
}

// repoint points the old primary and every other replica at the new one.
func (sw *switchover) repoint(ctx context.Context, from, to string) {
	sw.rep.NotRepointed = map[string]string{}
	var addr string
	for _, b := range sw.m.backends {
		if b.Name == to {
			addr = b.Addr
		}
	}
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	for _, b := range sw.m.backends {
		if b.Name == to {
			continue
		}
		switch {
		case err != nil || perr != nil:
			sw.rep.NotRepointed[b.Name] = fmt.Sprintf("the new primary's address %q has no host and port", addr)
			continue
		case b.Name == from && sw.o.ReplicationUser == "":
			sw.rep.NotRepointed[b.Name] = "no replication account (failover.replication_user): left read-only, not replicating"
			continue
		}
		change, args := sw.sql.changeSource, []any{host, port}
		if sw.o.ReplicationUser != "" {
			change += sw.sql.changeSourceCredentials
			args = append(args, sw.o.ReplicationUser, sw.o.ReplicationPassword)
		}
		err := sw.step(ctx, "replicate from the new primary", b.Name, func(ctx context.Context) error {
			db, err := sw.db(ctx, b.Name)
			if err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, sw.sql.stop); err != nil {
				return fmt.Errorf("%s: %w", sw.sql.stop, err)
			}
			if _, err := db.ExecContext(ctx, change, args...); err != nil {
				return fmt.Errorf("change source: %w", err)
			}
			if _, err := db.ExecContext(ctx, sw.sql.start); err != nil {
				return fmt.Errorf("%s: %w", sw.sql.start, err)
			}
			return nil
		})
		if err != nil {
			sw.rep.NotRepointed[b.Name] = err.Error()
			sw.m.log.Error("switchover: server not pointed at the new primary", "backend", b.Name, "primary", to, "err", err)
			continue
		}
		sw.rep.Repointed = append(sw.rep.Repointed, b.Name)
		sw.m.Recheck(b.Name)
	}
}

// callOff undoes the demotion after a failure before the promotion.
func (sw *switchover) callOff(from string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), sw.o.Timeout)
	defer cancel()
	db, err := sw.db(ctx, from)
	if err == nil {
		_, err = db.ExecContext(ctx, sw.sql.writable)
	}
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

// step runs f under the switchover's timeout and records how long it took.
func (sw *switchover) step(ctx context.Context, name, backend string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, sw.o.Timeout+time.Second)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	sw.rep.Steps = append(sw.rep.Steps, SwitchoverStep{Step: name, Backend: backend, Took: time.Since(start)})
	if err != nil {
		if backend != "" {
			return fmt.Errorf("%s (%s): %w", name, backend, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// waitSnapshot waits until the monitor publishes a snapshot for which ok holds.
func (sw *switchover) waitSnapshot(ctx context.Context, ok func(*Snapshot) bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !ok(sw.m.Snapshot()) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the monitor did not see it within %s", sw.o.Timeout)
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
}

// db returns the admin connection to the backend named, opening it once.
func (sw *switchover) db(ctx context.Context, name string) (*sql.DB, error) {
	if db := sw.dbs[name]; db != nil {
		return db, nil
	}
	o := sw.m.opts
	o.User, o.Password = sw.o.User, sw.o.Password
	o.Timeout = sw.o.Timeout + time.Second // the catch-up wait runs up to Timeout
	c, err := newConnector(sw.m.backends[sw.m.index[name]], o, sw.m.log.With("backend", name))
	if err != nil {
		return nil, err
	}
	db := openSingle(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	sw.dbs[name] = db
	return db, nil
}

func (sw *switchover) close() {
	sw.release()
	for _, db := range sw.dbs {
		db.Close()
	}
}
