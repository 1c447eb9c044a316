package proxy

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

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
	var primary atomic.Value
	primary.Store("primary")
	fp := startFakeProxy(t, 1, func(o *Options) {
		o.Backends[0].Role, o.Backends[1].Role = replication.RoleAuto, replication.RoleAuto
		o.Primary = func() string { return primary.Load().(string) }
		o.AwaitFailover = 10 * time.Second
	})
	const write = "INSERT INTO t VALUES (1)"
	fp.replicas[0].setScript(answer(write, fakeOK{status: fakeIdle, affected: 1}))
	fp.primary.close()
	db := fp.db(t, "")
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
