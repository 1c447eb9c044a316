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

// Account is what Switchyard changes the topology with: User and Password
// log in to every backend (promote, demote, repoint); ReplicationUser and
// ReplicationPassword are what a former primary replicates from its
// successor with (replicas keep the account they have).
type Account struct {
	User, Password                       string
	ReplicationUser, ReplicationPassword string
}

// operator runs the statements of a topology change on the backends, on
// connections of its own with the failover account, and records each step.
type operator struct {
	m       *Monitor
	acct    Account
	timeout time.Duration // each wait
	si      serverInfo
	sql     adminSQL
	dbs     map[string]*sql.DB
	steps   []SwitchoverStep
	locks   []*sql.Conn // held by lockMajority
}

func newOperator(m *Monitor, acct Account, timeout time.Duration, si serverInfo) *operator {
	return &operator{m: m, acct: acct, timeout: timeout, si: si, sql: adminStatements(si), dbs: map[string]*sql.DB{}}
}

// serverInfoOf returns the flavour and version the monitor read on b.
func serverInfoOf(b BackendStatus) (serverInfo, error) {
	si, err := parseServerInfo(b.Version, "")
	si.flavor = b.Flavor
	return si, err
}

// db returns the connection pool to the backend named, opening it once.
func (op *operator) db(ctx context.Context, name string) (*sql.DB, error) {
	if db := op.dbs[name]; db != nil {
		return db, nil
	}
	i, ok := op.m.index[name]
	if !ok {
		return nil, fmt.Errorf("unknown backend %q", name)
	}
	o := op.m.opts
	o.User, o.Password = op.acct.User, op.acct.Password
	o.Timeout = op.timeout + time.Second // a GTID wait runs up to timeout
	c, err := newConnector(op.m.backends[i], o, op.m.log.With("backend", name))
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	op.dbs[name] = db
	return db, nil
}

// step runs f within the operator's timeout and records how long it took.
func (op *operator) step(ctx context.Context, name, backend string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, op.timeout+time.Second)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	op.steps = append(op.steps, SwitchoverStep{Step: name, Backend: backend, Took: time.Since(start)})
	if err != nil {
		if backend != "" {
			return fmt.Errorf("%s (%s): %w", name, backend, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// exec runs statements in order on the backend named.
func (op *operator) exec(ctx context.Context, name string, stmts ...string) error {
	db, err := op.db(ctx, name)
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// promote makes the replica named a primary: replication forgotten, writable.
func (op *operator) promote(ctx context.Context, name string) error {
	return op.step(ctx, "promote", name, func(ctx context.Context) error {
		return op.exec(ctx, name, op.sql.stop, op.sql.reset, op.sql.writable)
	})
}

// waitApplied waits until the backend named has applied gtids.
func (op *operator) waitApplied(ctx context.Context, name, gtids string) error {
	db, err := op.db(ctx, name)
	if err != nil {
		return err
	}
	// Already there? MariaDB's MASTER_GTID_WAIT looks at what the server
	// applied as a replica (gtid_slave_pos): a former primary that is
	// asked for its own last transactions, nothing written since, would
	// wait in vain.
	var have string
	if err := db.QueryRowContext(ctx, op.sql.applied).Scan(&have); err != nil {
		return err
	}
	h, herr := parseGTIDs(op.si.flavor, have)
	w, werr := parseGTIDs(op.si.flavor, gtids)
	if herr == nil && werr == nil && h.set.Contain(w.set) {
		return nil
	}
	var res sql.NullInt64
	if err := db.QueryRowContext(ctx, op.sql.wait, gtids, op.timeout.Seconds()).Scan(&res); err != nil {
		return err
	}
	if !res.Valid || res.Int64 != 0 {
		return fmt.Errorf("%s had not applied %s within %s", name, gtids, op.timeout)
	}
	return nil
}

// repoint points each backend in names at the primary to, with GTID
// auto-positioning; formerPrimary names the one that needs the replication
// account (it has none of its own). It returns those repointed and why the
// others were not.
func (op *operator) repoint(ctx context.Context, to string, names []string, formerPrimary string) ([]string, map[string]string) {
	var done []string
	not := map[string]string{}
	addr := op.m.backends[op.m.index[to]].Addr
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	for _, name := range names {
		switch {
		case err != nil || perr != nil:
			not[name] = fmt.Sprintf("the new primary's address %q has no host and port", addr)
			continue
		case name == formerPrimary && op.acct.ReplicationUser == "":
			not[name] = "no replication account (failover.replication_user): left read-only, not replicating"
			continue
		}
		change, args := op.sql.changeSource, []any{host, port}
		if op.acct.ReplicationUser != "" {
			change += op.sql.changeSourceCredentials
			args = append(args, op.acct.ReplicationUser, op.acct.ReplicationPassword)
		}
		err := op.step(ctx, "replicate from the new primary", name, func(ctx context.Context) error {
			db, err := op.db(ctx, name)
			if err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, op.sql.stop); err != nil {
				return fmt.Errorf("%s: %w", op.sql.stop, err)
			}
			if _, err := db.ExecContext(ctx, change, args...); err != nil {
				return fmt.Errorf("change source: %w", err)
			}
			if _, err := db.ExecContext(ctx, op.sql.start); err != nil {
				return fmt.Errorf("%s: %w", op.sql.start, err)
			}
			return nil
		})
		if err != nil {
			not[name] = err.Error()
			op.m.log.Error("server not pointed at the new primary", "backend", name, "primary", to, "err", err)
			continue
		}
		done = append(done, name)
		op.m.Recheck(name)
	}
	return done, not
}

// lockName is the lock every Switchyard takes on a majority of the backends
// before it changes the topology.
const lockName = "switchyard.topology"

// errNoMajority: the lock is not held on a majority of the backends.
var errNoMajority = errors.New("the topology lock is not held on a majority of the backends")

// lockMajority takes the topology lock (GET_LOCK) on every backend it can
// reach (those the monitor found unreachable are skipped) and keeps it
// only if it holds it on more than half of them all:
// then no other Switchyard can hold it on a majority until unlock. It never
// waits for a lock another holds.
func (op *operator) lockMajority(ctx context.Context) error {
	held := 0
	snap := op.m.Snapshot()
	for _, b := range op.m.backends {
		if st, ok := snap.Backend(b.Name); ok && st.Checks > 0 && !st.Reachable {
			continue // the monitor cannot reach it: no need to wait for it to time out
		}
		lctx, cancel := context.WithTimeout(ctx, op.m.opts.Timeout)
		c, ok := op.tryLock(lctx, b.Name)
		cancel()
		if ok {
			op.locks = append(op.locks, c)
			held++
		}
	}
	if held*2 > len(op.m.backends) {
		return nil
	}
	op.unlock()
	return fmt.Errorf("%w (held on %d of %d)", errNoMajority, held, len(op.m.backends))
}

// tryLock takes the topology lock on one backend, on a connection of its
// own that keeps it.
func (op *operator) tryLock(ctx context.Context, name string) (*sql.Conn, bool) {
	db, err := op.db(ctx, name)
	if err != nil {
		return nil, false
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, false
	}
	var got sql.NullInt64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lockName).Scan(&got); err != nil || got.Int64 != 1 {
		c.Close()
		return nil, false
	}
	return c, true
}

// unlock releases the topology lock everywhere it is held.
func (op *operator) unlock() {
	for _, c := range op.locks {
		ctx, cancel := context.WithTimeout(context.Background(), op.m.opts.Timeout)
		_, _ = c.ExecContext(ctx, "DO RELEASE_LOCK(?)", lockName)
		cancel()
		c.Close() // the operator's close ends the connection

	}
	op.locks = nil
}

func (op *operator) close() {
	op.unlock()
	for _, db := range op.dbs {
		db.Close()
	}
}
