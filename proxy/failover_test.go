package proxy

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// startProxyOn starts a proxy in front of a sandbox of the test's own.
func startProxyOn(t *testing.T, sb *sandbox.Sandbox, mod func(*Options)) *testProxy {
	t.Helper()
	return startProxy(t, func(o *Options) {
		o.Backends = nil
		for _, srv := range sb.Servers() {
			o.Backends = append(o.Backends, &Backend{Name: srv.Name, Addr: srv.Addr(), Role: replication.Role(srv.Role), Weight: 1})
		}
		if mod != nil {
			mod(o)
		}
	})
}

// TestReplicaKilledDuringReads kills a replica with SIGKILL while clients
// read through the proxy: reads that had not answered yet run again on
// another server, so no read fails; the replica is used again once back.
func TestReplicaKilledDuringReads(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Users: []sandbox.User{{Name: appUser, Password: appPass}, {Name: hashUser, Password: hashPass}, {Name: otherUser, Password: otherPass}}})
	p := startProxyOn(t, sb, func(o *Options) { o.Routing.Consistency = router.ConsistencyEventual })
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(8)

	load := startReads(t, db, 8)
	reads, failures, lastErr := &load.reads, &load.failures, &load.lastErr
	waitReads := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for start := reads.Load(); reads.Load() < start+n; {
			if time.Now().After(deadline) {
				t.Fatalf("reads stalled at %d", reads.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReads(200)
	victim := sb.Replicas[0]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	waitReads(500)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	countOn := load.on
	before := countOn(victim.ServerID)
	deadline := time.Now().Add(20 * time.Second)
	for countOn(victim.ServerID) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted replica never served reads again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.stop()
	t.Logf("%d reads, %d failed; replica back in service %s after the kill; retries=%.0f", reads.Load(), failures.Load(),
		time.Since(killedAt).Round(time.Millisecond), counterValue(p.m.retries))
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d reads failed, last: %v", f, lastErr.Load())
	}
}

// counterValue reads a counter's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// readLoad is a set of clients reading @@server_id through the proxy in a
// loop, counting reads, failures and where each read ran.
type readLoad struct {
	reads, failures atomic.Int64
	// lastErr is the message of the last failure: errors of different
	// types cannot share an atomic.Value.
	lastErr  atomic.Value
	byServer sync.Map // server id -> *atomic.Int64
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// startReads starts n clients reading through db. They stop at the latest
// when the test ends, before db closes (if db was opened first): a test
// that fails half-way must not leave them spinning on a closed pool, or
// DB.Close waiting for their queries.
func startReads(t *testing.T, db *sql.DB, n int) *readLoad {
	l := &readLoad{done: make(chan struct{})}
	t.Cleanup(l.stop)
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				var id int
				if err := db.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
					l.failures.Add(1)
					l.lastErr.Store(err.Error())
					continue
				}
				l.reads.Add(1)
				c, _ := l.byServer.LoadOrStore(id, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
		}()
	}
	return l
}

// on returns how many reads ran on server id.
func (l *readLoad) on(id int) int64 {
	c, ok := l.byServer.Load(id)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// stop ends the clients and waits for them.
func (l *readLoad) stop() {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}
