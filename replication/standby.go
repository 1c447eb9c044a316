package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Several Switchyards in front of the same servers: the one that runs a
// planned switchover holds its own writes, and the others hold theirs on its
// word, so that none of their transactions is open on the old primary when it
// turns read-only (its commit would be refused there).
//
// The word goes through the primary itself, so no other service is needed:
//   - Every Switchyard with a failover account keeps a stand-by connection to
//     the primary (RunStandby). It holds the lock switchyard.peer.N, the
//     first N free, and sleeps in SELECT SLEEP(1).
//   - The Switchyard switching over takes switchyard.switchover on the
//     primary, finds the other stand-by connections with IS_USED_LOCK and
//     wakes each with KILL QUERY (a connection may kill the statements of
//     another of the same account: every Switchyard uses the failover one).
//   - A woken Switchyard that finds switchyard.switchover taken holds its
//     writes, waits until its sessions are quiet, and then says so by taking
//     switchyard.held.N. It lets its writes go once its monitor sees another
//     primary, once the switchover is called off (the lock released and the
//     old primary writable again), or after a bound.
//   - The Switchyard switching over waits for every switchyard.held.N, up to
//     its timeout, before it makes the primary read-only. One that does not
//     answer in time is left behind: its transactions open on the old
//     primary are refused, as with a switchover made by any other tool.

const (
	standbySlots  = 32 // Switchyards that can stand by on one primary
	switchoverKey = "switchyard.switchover"
)

func peerKey(slot int) string { return fmt.Sprintf("switchyard.peer.%d", slot) }
func heldKey(slot int) string { return fmt.Sprintf("switchyard.held.%d", slot) }

// erKilled is the error of a statement interrupted by KILL QUERY.
const erKilled = 1317

// StandbyOptions configure RunStandby.
type StandbyOptions struct {
	// Account logs in to the primary; it must be the one every Switchyard
	// changes the topology with (failover.user).
	Account
	// Timeout bounds the wait for this Switchyard's sessions to be quiet;
	// writes are held at most three times as long. Zero means 5s.
	Timeout time.Duration
	// HoldWrites and WaitQuiet are the proxy's, as in SwitchoverOptions.
	HoldWrites func() (release func())
	WaitQuiet  func(ctx context.Context) error
}

// standbyID names this Switchyard's stand-by connection, so that its own
// switchovers do not wait for it.
type standbyID struct {
	backend string
	id      int64
}

// RunStandby keeps a stand-by connection to the primary until ctx ends and
// holds writes while another Switchyard switches over, as described above.
// Run must be running.
func (m *Monitor) RunStandby(ctx context.Context, o StandbyOptions) {
	if o.Timeout <= 0 {
		o.Timeout = defaultOpTimeout
	}
	if !m.awaitReady(ctx) {
		return
	}
	var lastErr string
	for ctx.Err() == nil {
		if p := m.Snapshot().Primary; p != "" {
			err := m.standBy(ctx, p, o)
			if err != nil && ctx.Err() == nil && err.Error() != lastErr {
				m.log.Info("stand-by connection lost; other Switchyards' switchovers will not wait for this one's writes until it is back",
					"backend", p, "err", err)
			}
			lastErr = ""
			if err != nil {
				lastErr = err.Error()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(m.opts.Interval):
		}
	}
}

// standBy stands by on the primary p until the monitor sees another one.
func (m *Monitor) standBy(ctx context.Context, p string, o StandbyOptions) error {
	opts := m.opts
	opts.User, opts.Password = o.User, o.Password
	opts.Timeout += time.Second // the sleep
	c, err := newConnector(m.backends[m.index[p]], opts, m.log.With("backend", p))
	if err != nil {
		return err
	}
	db := openSingle(c)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return err
	}
	slot := -1
	for n := range standbySlots {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", peerKey(n)).Scan(&got); err != nil {
			return err
		}
		if got.Int64 == 1 {
			slot = n
			break
		}
	}
	if slot < 0 {
		return fmt.Errorf("all %d stand-by slots are taken", standbySlots)
	}
	m.standby.Store(&standbyID{backend: p, id: id})
	defer m.standby.Store(nil)
	var ignored int64 // the last holder of the switchover lock found not to be a Switchyard
	for m.Snapshot().Primary == p {
		var woken int
		err := conn.QueryRowContext(ctx, "SELECT SLEEP(1)").Scan(&woken)
		if err != nil && !isKilled(err) {
			return err
		}
		holder, err := usedLock(ctx, conn, switchoverKey)
		if err != nil {
			return err
		}
		if holder == 0 {
			continue
		}
		if ours, err := ownAccount(ctx, conn, holder); err != nil || !ours {
			if err == nil && holder != ignored {
				m.log.Warn("a connection of another account holds "+switchoverKey+" on the primary: ignored", "backend", p, "connection", holder)
			}
			ignored = holder
			continue
		}
		if !m.changing.CompareAndSwap(false, true) {
			continue // this Switchyard is the one changing the topology
		}
		m.holdForPeer(ctx, conn, p, slot, o)
		m.changing.Store(false)
	}
	return nil
}

// holdForPeer holds writes while another Switchyard switches over from p.
func (m *Monitor) holdForPeer(ctx context.Context, conn *sql.Conn, p string, slot int, o StandbyOptions) {
	start := time.Now()
	m.log.Warn("another Switchyard is switching over: writes held", "primary", p)
	release := o.HoldWrites()
	defer release()
	qctx, cancel := context.WithTimeout(ctx, o.Timeout)
	err := o.WaitQuiet(qctx)
	cancel()
	if err != nil {
		m.log.Warn("sessions not quiet: the switchover goes on without this Switchyard", "err", err)
	} else {
		var got sql.NullInt64
		err = retryKilled(func() error {
			return conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", heldKey(slot)).Scan(&got)
		})
		if err == nil && got.Int64 != 1 {
			err = fmt.Errorf("%s is taken", heldKey(slot))
		}
		if err != nil {
			m.log.Warn("could not tell the switching Switchyard that writes are held", "err", err)
		}
	}
	why := m.awaitSwitchoverEnd(ctx, conn, p, start.Add(3*o.Timeout))
	release()
	_ = retryKilled(func() error {
		_, err := conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", heldKey(slot))
		return err
	})
	m.log.Warn("writes go on", "held", time.Since(start).Round(time.Millisecond).String(), "because", why)
}

// awaitSwitchoverEnd waits until the monitor sees a primary other than p, or
// p writable again with the switchover lock released, or the deadline, and
// says which. It has the backends probed often meanwhile.
func (m *Monitor) awaitSwitchoverEnd(ctx context.Context, conn *sql.Conn, p string, deadline time.Time) string {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var markGone time.Time // when the switchover lock was first seen released
	connOK := true
	for {
		s := m.Snapshot()
		old, _ := s.Backend(p)
		switch {
		case s.Primary != "" && s.Primary != p && !s.Conflict && s.Usable(s.Primary):
			return "the monitor sees the new primary " + s.Primary
		case !markGone.IsZero() && s.Primary == p && !s.Conflict && !old.ReadOnly && old.CheckedAt.After(markGone):
			// Seen writable by a probe begun after the lock went: not a
			// stale view of it from before the switchover (which the
			// monitor keeps as the primary while it also sees the new
			// one writable).
			return "the switchover was called off"
		case time.Now().After(deadline):
			return "the bound on a hold passed"
		}
		if connOK && markGone.IsZero() {
			holder, err := usedLock(ctx, conn, switchoverKey)
			switch {
			case isKilled(err):
			case err != nil:
				connOK = false // the old primary went away: the monitor will tell
			case holder == 0:
				markGone = time.Now()
			}
		}
		for _, b := range m.backends {
			m.Recheck(b.Name)
		}
		select {
		case <-ctx.Done():
			return "Switchyard is stopping"
		case <-t.C:
		}
	}
}

// holdPeers wakes the other Switchyards standing by on the primary from and
// waits until each holds its writes, or until ctx ends. The switchover lock
// it takes stays until release.
func (sw *switchover) holdPeers(ctx context.Context, from string) error {
	db, err := sw.db(ctx, from)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", switchoverKey).Scan(&got); err != nil || got.Int64 != 1 {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("%s is held by another connection", switchoverKey)
		}
		return err
	}
	sw.mark = conn
	slots := make([]string, standbySlots)
	for n := range slots {
		slots[n] = fmt.Sprintf("IS_USED_LOCK('%s')", peerKey(n))
	}
	ids := make([]sql.NullInt64, standbySlots)
	dest := make([]any, standbySlots)
	for n := range ids {
		dest[n] = &ids[n]
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(slots, ", ")).Scan(dest...); err != nil {
		return err
	}
	own := sw.m.standby.Load()
	pending := map[int]int64{}
	for n, id := range ids {
		if !id.Valid || own != nil && own.backend == from && own.id == id.Int64 {
			continue
		}
		if ours, err := ownAccount(ctx, conn, id.Int64); err != nil {
			return err
		} else if ours {
			pending[n] = id.Int64
		}
	}
	total := len(pending)
	var woke time.Time
	for len(pending) > 0 {
		if time.Since(woke) > 100*time.Millisecond {
			// Again now and then: a KILL that lands between two of a
			// stand-by connection's statements is lost.
			for _, id := range pending {
				_, _ = conn.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
			}
			woke = time.Now()
		}
		for n, id := range pending {
			var peer, held sql.NullInt64
			if err := conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?), IS_USED_LOCK(?)", peerKey(n), heldKey(n)).Scan(&peer, &held); err != nil {
				return err
			}
			switch {
			case held.Int64 == id:
				sw.rep.PeersHeld++
				delete(pending, n)
			case peer.Int64 != id: // gone
				delete(pending, n)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d other Switchyards did not hold their writes in time: their transactions open on %s may be refused",
				len(pending), total, from)
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// ownAccount reports whether the connection id is logged in with the same
// user as conn. Any user may take a user lock of any name: only the locks
// of the failover account's connections are a Switchyard's word, so that an
// application cannot hold every Switchyard's writes with GET_LOCK. Without
// the PROCESS privilege, PROCESSLIST shows only the user's own connections,
// which is all this needs.
func ownAccount(ctx context.Context, conn *sql.Conn, id int64) (bool, error) {
	var n int
	err := retryKilled(func() error {
		return conn.QueryRowContext(ctx,
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND USER = SUBSTRING_INDEX(USER(), '@', 1)", id).Scan(&n)
	})
	return n > 0, err
}

// usedLock returns the connection holding the user lock key, 0 for none.
func usedLock(ctx context.Context, conn *sql.Conn, key string) (int64, error) {
	var holder sql.NullInt64
	err := retryKilled(func() error { return conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", key).Scan(&holder) })
	return holder.Int64, err
}

// retryKilled runs f again when a KILL QUERY meant to wake a sleep
// interrupted it instead.
func retryKilled(f func() error) error {
	err := f()
	for i := 0; i < 3 && isKilled(err); i++ {
		err = f()
	}
	return err
}

func isKilled(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == erKilled
}
