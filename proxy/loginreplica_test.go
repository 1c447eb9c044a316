package proxy

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/replication"
)

// TestLoginWhilePrimaryDown: with the primary unreachable (dead, or a
// failover under way), a client still logs in, on a replica, and reads; a
// write says the primary cannot be reached.
func TestLoginWhilePrimaryDown(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	const read, write = "SELECT * FROM t", "INSERT INTO t VALUES (1)"
	fp.replicas[0].setScript(answer(read, rowsOf("a", "replica")))
	fp.primary.close()
	db := fp.db(t, "")
	if got := queryString(t, db, read); got != "replica" {
		t.Errorf("read with the primary down answered %q, want the replica's", got)
	}
	_, err := db.Exec(write)
	var me *driver.MySQLError
	if !errors.As(err, &me) || me.Number != codeConnRefused {
		t.Errorf("write with the primary down: %v, want error %d", err, codeConnRefused)
	}
}

// TestWriteWaitsForFailover: under automatic failover a write that cannot
// reach the primary (nothing sent) waits for the new primary and runs
// there, instead of failing.
func TestWriteWaitsForFailover(t *testing.T) {
	fp, primary := startMovableProxy(t, func(o *Options) { o.AwaitFailover = 10 * time.Second })
	const write = "INSERT INTO t VALUES (1)"
	fp.replicas[0].setScript(answer(write, fakeOK{status: fakeIdle, affected: 1}))
	fp.primary.close()
	db := fp.db(t, "")
	if err := db.Ping(); err != nil { // logs in on the replica
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		primary.Store("replica1") // promoted
	}()
	if _, err := db.Exec(write); err != nil {
		t.Fatalf("a write during the failover: %v", err)
	}
	if !fp.replicas[0].receivedQuery(write) {
		t.Error("the new primary never received the write")
	}

}

// TestWriteFollowsDemotion: the primary refuses a write as read-only (a
// switchover, maybe another Switchyard's, demoted it): nothing ran, so the
// write waits for the new primary and runs there. Inside a transaction the
// refusal reaches the client.
func TestWriteFollowsDemotion(t *testing.T) {
	fp, primary := startMovableProxy(t, nil)
	const write = "INSERT INTO t VALUES (1)"
	readOnly := fakeErr{1290, "HY000", "The MariaDB server is running with the --read-only option so it cannot execute this statement"}
	fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case write:
			primary.Store("replica1") // the monitor sees the switchover a moment later
			return readOnly
		case "START TRANSACTION":
			return fakeOK{status: fakeIdle | mysql.SERVER_STATUS_IN_TRANS}
		}
		return nil
	})
	fp.replicas[0].setScript(answer(write, fakeOK{status: fakeIdle, affected: 1}))
	db := fp.db(t, "")
	if _, err := db.Exec(write); err != nil {
		t.Fatalf("a write refused by the demoted primary: %v", err)
	}
	if !fp.replicas[0].receivedQuery(write) {
		t.Error("the new primary never received the write")
	}

	// In a transaction: the client hears the refusal.
	primary.Store("primary")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var me *driver.MySQLError
	if _, err := tx.Exec(write); !errors.As(err, &me) || me.Number != 1290 {
		t.Errorf("a write refused by the demoted primary inside a transaction: %v, want its error 1290", err)
	}
}

// TestReadWaitsForReplicaDuringFailover: a read finds no usable replica
// while the primary, where it would fall back, is down too (a failover
// under way): it waits for a replica rather than fail on the primary.
func TestReadWaitsForReplicaDuringFailover(t *testing.T) {
	var replicaUp, primaryDown atomic.Bool
	replicaUp.Store(true)
	fp := startFakeProxy(t, 1, func(o *Options) {
		o.Health = func(name string) bool { return name != "replica1" || replicaUp.Load() }
		o.NoPrimary = primaryDown.Load
		o.AwaitFailover = 10 * time.Second
	})
	const read = "SELECT * FROM t"
	fp.replicas[0].setScript(answer(read, rowsOf("a", "replica")))
	db := fp.db(t, "")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	fp.primary.close()
	replicaUp.Store(false) // being promoted, say
	primaryDown.Store(true)
	go func() {
		time.Sleep(200 * time.Millisecond)
		replicaUp.Store(true)
	}()
	if got := queryString(t, db, read); got != "replica" {
		t.Errorf("a read during the failover answered %q, want the replica's", got)
	}
}

// TestReadOnPrimaryFollowsFailover: a read running on the primary (no
// replica usable) that loses it before any of the answer went out runs
// again on the primary that replaces it, and the session goes on. Inside
// a transaction, whose state died with the primary, the client hears of it.
func TestReadOnPrimaryFollowsFailover(t *testing.T) {
	fp, primary := startMovableProxy(t, func(o *Options) {
		// Only the primary is usable: reads fall back to it.
		primary := o.Primary
		o.Health = func(name string) bool { return name == primary() }
		o.AwaitFailover = 10 * time.Second
	})
	const read = "SELECT * FROM t"
	dies := func(c *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case read:
			c.nc.Close() // the primary dies; the monitor sees a new one soon
			go func() {
				time.Sleep(200 * time.Millisecond)
				primary.Store("replica1")
			}()
			return fakeOK{}
		case "START TRANSACTION":
			return fakeOK{status: fakeIdle | mysql.SERVER_STATUS_IN_TRANS}
		}
		return nil
	}
	fp.primary.setScript(dies)
	fp.replicas[0].setScript(answer(read, rowsOf("a", "new primary")))
	db := fp.db(t, "")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got string
	if err := conn.QueryRowContext(t.Context(), read).Scan(&got); err != nil || got != "new primary" {
		t.Fatalf("a read on the primary that died: %q, %v; want the new primary's answer", got, err)
	}
	if err := conn.PingContext(t.Context()); err != nil {
		t.Errorf("the session after the read: %v", err)
	}
	conn.Close() // the pool has one connection

	// In a transaction on the new primary, which dies in turn: not run
	// again.
	fp.replicas[0].setScript(dies)
	primary.Store("replica1")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var me *driver.MySQLError
	if err := tx.QueryRow(read).Scan(&got); !errors.As(err, &me) || me.Number != codeLostBackend {
		t.Errorf("a read in a transaction on the primary that died: %q, %v; want error %d", got, err, codeLostBackend)
	}
}

// startMovableProxy is startFakeProxy with one replica, both backends
// without a pinned role and the primary named by the returned value, which
// the test moves (a monitor seeing a switchover or failover).
func startMovableProxy(t *testing.T, mod func(*Options)) (*fakeProxy, *atomic.Value) {
	t.Helper()
	primary := new(atomic.Value)
	primary.Store("primary")
	fp := startFakeProxy(t, 1, func(o *Options) {
		o.Backends[0].Role, o.Backends[1].Role = replication.RoleAuto, replication.RoleAuto
		o.Primary = func() string { return primary.Load().(string) }
		if mod != nil {
			mod(o)
		}
	})
	return fp, primary
}

// TestLoginWaitsDuringFailover: a client that logs in while the primary is
// down and no replica is usable yet (the one being promoted, the others
// being repointed) waits, as a read does, and logs in on the replica that
// comes back or on the new primary, instead of failing.
func TestLoginWaitsDuringFailover(t *testing.T) {
	// loginDuring logs a client in while the primary is down and no replica
	// is usable, and reads; 200 ms later, over ends the failover.
	loginDuring := func(t *testing.T, fp *fakeProxy, primaryDown *atomic.Bool, over func(), want string) {
		t.Helper()
		const read = "SELECT * FROM t"
		fp.replicas[0].setScript(answer(read, rowsOf("a", want)))
		fp.primary.close()
		primaryDown.Store(true)
		go func() {
			time.Sleep(200 * time.Millisecond)
			over()
		}()
		db := fp.db(t, "")
		if got := queryString(t, db, read); got != want {
			t.Errorf("a read from a login during the failover answered %q, want %q", got, want)
		}
	}
	t.Run("a replica comes back", func(t *testing.T) {
		var replicaUp, primaryDown atomic.Bool
		fp := startFakeProxy(t, 1, func(o *Options) {
			o.Health = func(name string) bool { return name != "replica1" || replicaUp.Load() }
			o.NoPrimary = primaryDown.Load
			o.AwaitFailover = 10 * time.Second
		})
		loginDuring(t, fp, &primaryDown, func() { replicaUp.Store(true) }, "replica")
	})
	t.Run("the new primary takes over", func(t *testing.T) {
		var primaryDown atomic.Bool
		fp, primary := startMovableProxy(t, func(o *Options) {
			o.Health = func(name string) bool { return false } // no replica usable
			o.NoPrimary = primaryDown.Load
			o.AwaitFailover = 10 * time.Second
		})
		loginDuring(t, fp, &primaryDown, func() {
			primary.Store("replica1") // promoted
			primaryDown.Store(false)
		}, "new primary")
	})
}

// TestSetOnPrimaryFollowsFailover: a SET (Django sends one as each
// connection opens) that loses the primary before it answered runs again
// on the primary that replaces it: it changes only the session's state.
func TestSetOnPrimaryFollowsFailover(t *testing.T) {
	fp, primary := startMovableProxy(t, func(o *Options) { o.AwaitFailover = 10 * time.Second })
	const set = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
	fp.primary.setScript(func(c *fakeConn, cmd fakeCommand) fakeReply {
		if cmd.text == set {
			c.nc.Close() // the primary dies; the monitor sees a new one soon
			go func() {
				time.Sleep(200 * time.Millisecond)
				primary.Store("replica1")
			}()
			return fakeOK{}
		}
		return nil
	})
	fp.replicas[0].setScript(answer(set, fakeOK{status: fakeIdle}))
	db := fp.db(t, "")
	if _, err := db.Exec(set); err != nil {
		t.Fatalf("a SET on the primary that died: %v", err)
	}
	if !fp.replicas[0].receivedQuery(set) {
		t.Error("the new primary never received the SET")
	}
}
