package proxy

import (
	"context"
	"crypto/sha1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
)

// Unit tests of userPool against a fakeServer: hand-off to waiters in
// arrival order, eviction, reaping and exhaustion, with no Server around.

// fakeKey is the pool key of the pool tests' connections; otherKey differs
// in its capabilities, as a client with other protocol flags would.
var (
	fakeKey  = poolKey{user: appUser, caps: mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF, collation: 33}
	otherKey = poolKey{user: appUser, caps: mysql.CLIENT_SESSION_TRACK, collation: 33}
)

// appCred is appUser's credential, as a session has it after login.
func appCred() *credential {
	stage1 := sha1.Sum([]byte(appPass))
	return &credential{user: appUser, password: appPass, stage1: stage1[:]}
}

// fakePool returns appUser's pool of connections to f, outside any Server.
// Its idle connections are closed when the test ends; the test puts back
// those it took.
func fakePool(t *testing.T, f *fakeServer, opts PoolOptions) *userPool {
	t.Helper()
	b := &Backend{Name: "fake", Addr: f.addr, Role: replication.RolePrimary, backendState: &backendState{}}
	opts = opts.withDefaults()
	opts.roundTrip = 2 * time.Second
	p := b.pool(appUser, opts)
	t.Cleanup(func() { b.reapIdle(time.Now(), true) })
	return p
}

// take acquires a connection for key in database db, failing the test on error.
func take(t *testing.T, p *userPool, key poolKey, db string) *backendConn {
	t.Helper()
	bc, err := p.acquire(context.Background(), key, appCred(), db, nil)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return bc
}

// waiters returns how many acquires wait in p's line.
func waiters(p *userPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// idleCount returns how many connections sit idle in p.
func idleCount(p *userPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		waitTick()
	}
}

// acquired is what a waiting acquire came back with.
type acquired struct {
	who int
	bc  *backendConn
	err error
}

// queue starts an acquire for key and db as waiter who, and returns once it
// waits in line.
func queue(t *testing.T, p *userPool, key poolKey, db string, who int, out chan<- acquired) {
	t.Helper()
	before := waiters(p)
	go func() {
		bc, err := p.acquire(context.Background(), key, appCred(), db, nil)
		out <- acquired{who, bc, err}
	}()
	waitFor(t, "the acquire to wait in line", func() bool { return waiters(p) == before+1 })
}

// TestPoolHandsOffInArrivalOrder has three acquires wait for a pool of one:
// each connection put back goes straight to the longest waiting, without a
// new login.
func TestPoolHandsOffInArrivalOrder(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: 10 * time.Second})
	bc := take(t, p, fakeKey, "")
	got := make(chan acquired, 3)
	for who := range 3 {
		queue(t, p, fakeKey, "", who, got)
	}
	for want := range 3 {
		p.put(bc)
		a := <-got
		if a.err != nil {
			t.Fatalf("waiter %d: %v", a.who, a.err)
		}
		if a.who != want {
			t.Fatalf("the connection went to waiter %d, want %d (first come, first served)", a.who, want)
		}
		if a.bc != bc {
			t.Fatalf("waiter %d got another connection than the one put back", a.who)
		}
	}
	p.put(bc)
	if n := f.loginCount(); n != 1 {
		t.Errorf("%d logins, want 1: hand-offs reuse the connection", n)
	}
}

// TestPoolHandOffSkipsUnsuitableWaiters puts back a connection that is in a
// database: a waiter without one cannot use it (a server cannot leave a
// database), so it goes to the next waiter, which can.
func TestPoolHandOffSkipsUnsuitableWaiters(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: 10 * time.Second})
	bc := take(t, p, fakeKey, "shop")
	got := make(chan acquired, 3)
	queue(t, p, otherKey, "shop", 0, got) // another key
	queue(t, p, fakeKey, "", 1, got)      // no database
	queue(t, p, fakeKey, "shop", 2, got)
	p.put(bc)
	a := <-got
	if a.err != nil || a.who != 2 || a.bc != bc {
		t.Fatalf("the connection went to waiter %d (err %v), want waiter 2", a.who, a.err)
	}
	if n := waiters(p); n != 2 {
		t.Errorf("%d waiters left, want 2", n)
	}
	// The others get theirs when it comes back: it goes idle, the waiter
	// of the other key closes it to make room, and a slot frees.
	p.put(bc)
	for range 2 {
		a = <-got
		if a.err != nil {
			t.Fatalf("waiter %d: %v", a.who, a.err)
		}
		p.put(a.bc)
	}
}

// TestPoolWaiterWithoutDatabaseGetsRoom has a waiter without a database in
// line for a full pool whose only connection is in one. When that
// connection comes back idle, nothing else needs it: the waiter should get
// a connection (the idle one closed to make room), not wait until
// pool.wait_timeout and fail with 1040.
func TestPoolWaiterWithoutDatabaseGetsRoom(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: time.Second})
	bc := take(t, p, fakeKey, "shop")
	got := make(chan acquired, 1)
	queue(t, p, fakeKey, "", 0, got)
	p.put(bc)
	a := <-got
	if a.err != nil {
		t.Fatalf("the waiter without a database: %v; the pool's only connection sat idle", a.err)
	}
	p.put(a.bc)
}

// TestPoolEvictsIdleOfAnotherKey fills a pool of one with an idle
// connection of one key: an acquire for another key closes it to make room.
func TestPoolEvictsIdleOfAnotherKey(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1})
	first := take(t, p, fakeKey, "")
	p.put(first)
	second := take(t, p, otherKey, "")
	if second == first || second.key != otherKey {
		t.Fatalf("got connection with key %+v, want a new one with %+v", second.key, otherKey)
	}
	waitFor(t, "the evicted connection to close", func() bool { return f.openConns() == 1 })
	if n := f.loginCount(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	if n := len(p.slots); n != 1 {
		t.Errorf("%d slots taken, want 1", n)
	}
	p.put(second)
}

// TestPoolWaiterEvictsReturnedOfAnotherKey has an acquire for one key wait
// while the pool's only connection, of another key, is in use: when it
// comes back idle, the waiter closes it and opens its own.
func TestPoolWaiterEvictsReturnedOfAnotherKey(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: 10 * time.Second})
	bc := take(t, p, fakeKey, "")
	got := make(chan acquired, 1)
	queue(t, p, otherKey, "", 0, got)
	p.put(bc)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.bc == bc || a.bc.key != otherKey {
		t.Fatalf("the waiter got a connection with key %+v, want a new one with %+v", a.bc.key, otherKey)
	}
	if n := idleCount(p); n != 0 {
		t.Errorf("%d idle connections, want 0: the returned one was evicted", n)
	}
	p.put(a.bc)
}

// TestPoolReapsIdle checks that idle connections older than the idle
// timeout are closed and give back their slots, and that connections put
// back beyond max_idle are closed at once.
func TestPoolReapsIdle(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 4, MaxIdle: 2, IdleTimeout: time.Minute})
	var conns []*backendConn
	for range 3 {
		conns = append(conns, take(t, p, fakeKey, ""))
	}
	for _, bc := range conns {
		p.put(bc)
	}
	if n := idleCount(p); n != 2 {
		t.Fatalf("%d idle after putting back 3 with max_idle 2, want 2", n)
	}
	waitFor(t, "the connection beyond max_idle to close", func() bool { return f.openConns() == 2 })

	p.reap(time.Now(), false)
	if n := idleCount(p); n != 2 {
		t.Fatalf("%d idle after reaping fresh connections, want 2", n)
	}
	p.reap(time.Now().Add(2*time.Minute), false)
	if n := idleCount(p); n != 0 {
		t.Fatalf("%d idle after reaping past the idle timeout, want 0", n)
	}
	if n := len(p.slots); n != 0 {
		t.Errorf("%d slots still taken, want 0", n)
	}
	waitFor(t, "the reaped connections to close", func() bool { return f.openConns() == 0 })
}

// TestPoolExhausted waits for a pool whose only connection is in use: after
// pool.wait_timeout the acquire fails with 1040 (ER_CON_COUNT_ERROR) and
// leaves the line.
func TestPoolExhausted(t *testing.T) {
	f := startFake(t, nil)
	const wait = 100 * time.Millisecond
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: wait})
	bc := take(t, p, fakeKey, "")
	defer p.put(bc)
	start := time.Now()
	_, err := p.acquire(context.Background(), fakeKey, appCred(), "", nil)
	took := time.Since(start)
	var se *sqlError
	if !errors.As(err, &se) || se.code != mysql.ER_CON_COUNT_ERROR {
		t.Fatalf("acquire from a full pool: %v, want error 1040", err)
	}
	if !strings.Contains(se.message, "pool.max_open=1") {
		t.Errorf("message %q does not name pool.max_open", se.message)
	}
	if took < wait || took > wait+2*time.Second {
		t.Errorf("gave up after %s, want about %s", took, wait)
	}
	if n, w := waiters(p), p.waiting.Load(); n != 0 || w != 0 {
		t.Errorf("%d in line, %d counted waiting after the timeout, want 0", n, w)
	}
}

// TestPoolAcquireCancelled cancels a waiting acquire: it returns the
// context's error and leaves the line.
func TestPoolAcquireCancelled(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1, WaitTimeout: 10 * time.Second})
	bc := take(t, p, fakeKey, "")
	defer p.put(bc)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.acquire(ctx, fakeKey, appCred(), "", nil)
		errc <- err
	}()
	waitFor(t, "the acquire to wait", func() bool { return waiters(p) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v, want context.Canceled", err)
	}
	if n := waiters(p); n != 0 {
		t.Errorf("%d in line after the cancel, want 0", n)
	}
}

// TestPoolReplacesDeadIdle closes an idle connection on the server's side:
// the next acquire notices without a round trip and logs in anew.
func TestPoolReplacesDeadIdle(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{MaxOpen: 1})
	bc := take(t, p, fakeKey, "")
	thread := bc.threadID
	p.put(bc)
	f.disconnect(thread)
	waitFor(t, "the server to close it", func() bool { return f.openConns() == 0 })
	next := take(t, p, fakeKey, "")
	defer p.put(next)
	if next.threadID == thread {
		t.Fatalf("got the dead connection (thread %d) back", thread)
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

// TestPoolFailedLoginGivesSlotBack has the server refuse the login: the
// acquire returns the server's error and the slot is free again.
func TestPoolFailedLoginGivesSlotBack(t *testing.T) {
	f := startFake(t, nil)
	f.setPassword(appUser, "another password")
	p := fakePool(t, f, PoolOptions{MaxOpen: 1})
	_, err := p.acquire(context.Background(), fakeKey, appCred(), "", nil)
	var se *sqlError
	if !errors.As(err, &se) || se.code != mysql.ER_ACCESS_DENIED_ERROR {
		t.Fatalf("acquire with a refused login: %v, want error 1045", err)
	}
	if n := len(p.slots); n != 0 {
		t.Errorf("%d slots taken after the failed login, want 0", n)
	}
}

// TestPoolNewConnectionSetup checks what a new connection runs before it
// is handed out: session tracking on, then the server's sql_mode.
func TestPoolNewConnectionSetup(t *testing.T) {
	f := startFake(t, nil)
	p := fakePool(t, f, PoolOptions{})
	bc := take(t, p, fakeKey, "")
	p.put(bc)
	want := []string{trackSetup, "SELECT @@SESSION.sql_mode"}
	if got := f.queries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("a new connection ran %q, want %q", got, want)
	}
	if got := p.backend.sqlMode(); !strings.HasPrefix(got, "STRICT_TRANS_TABLES") {
		t.Errorf("learned sql_mode %q, want the server's", got)
	}
}
