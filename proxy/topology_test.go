package proxy

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// monitored starts a private sandbox, a replication monitor on it, and a
// proxy that takes health and topology from the monitor (as cmd/switchyard
// wires them).
func monitored(t *testing.T) (*sandbox.Sandbox, *replication.Monitor, *testProxy) {
	t.Helper()
	sb := sandboxtest.New(t, sandbox.Options{Users: []sandbox.User{{Name: appUser, Password: appPass}, {Name: hashUser, Password: hashPass}, {Name: otherUser, Password: otherPass}}})
	var backends []replication.Server
	for _, srv := range sb.Servers() {
		backends = append(backends, replication.Server{Name: srv.Name, Addr: srv.Addr()})
	}
	var p atomic.Pointer[testProxy]
	down := map[string]bool{}
	mon, err := replication.New(backends, replication.Options{
		User: sb.Opts.Monitor.Name, Password: sb.Opts.Monitor.Password,
		Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnChange: func(s *replication.Snapshot) {
			for _, b := range s.Backends {
				if b.State == replication.Down && !down[b.Name] {
					if tp := p.Load(); tp != nil {
						tp.Abandon(b.Name)
					}
				}
				down[b.Name] = b.State == replication.Down
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mon.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-mon.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("monitor not ready")
	}
	tp := startProxyOn(t, sb, func(o *Options) {
		for _, b := range o.Backends {
			b.Role = "" // the monitor decides
		}
		o.Routing.Consistency = router.ConsistencyEventual
		o.Health = mon.Usable
		o.Primary = mon.Primary
		o.Recheck = mon.Recheck
		o.NoPrimary = func() bool { return mon.Primary() == "" }
	})
	p.Store(tp)
	return sb, mon, tp
}

func rootExec(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server, stmts ...string) {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s on %s: %v", q, srv.Name, err)
		}
	}
}

// TestSwitchoverFollowed promotes a replica and demotes the primary while a
// client writes through the proxy: writes follow to the new primary within
// a second, and none succeeds on a read-only server.
func TestSwitchoverFollowed(t *testing.T) {
	sb, mon, p := monitored(t)
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(2)
	mustExec(t, db, "CREATE DATABASE IF NOT EXISTS sw")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS sw.t (id INT AUTO_INCREMENT PRIMARY KEY, ran_on INT, at DATETIME(6))")
	waitReplicated(t, sb)

	var ok, refused atomic.Int64
	var other atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := db.Exec("INSERT INTO sw.t (ran_on, at) VALUES (@@server_id, NOW(6))")
			var me *driver.MySQLError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &me) && me.Number == 1290: // the server refused it: read-only
				refused.Add(1)
			default:
				other.Store(err)
			}
		}
	}()
	waitFor := func(what string, d time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %s", what, d)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor("writes flowing", 10*time.Second, func() bool { return ok.Load() > 50 })

	oldP, newP := sb.Primary, sb.Replicas[0]
	d := sb.Dialect()
	rootExec(t, sb, oldP, d.SetReadOnly)
	waitReplicated(t, sb)
	rootExec(t, sb, newP, d.StopReplica, d.ResetReplica, d.SetWritable)
	promoted := time.Now()
	followed := waitFor("monitor follows the new primary", 2*time.Second, func() bool { return mon.Primary() == newP.Name })
	before := ok.Load()
	waitFor("writes on the new primary", 5*time.Second, func() bool { return ok.Load() > before+50 })
	close(stop)
	wg.Wait()
	if err, _ := other.Load().(error); err != nil {
		t.Fatalf("a write failed other than by being refused: %v", err)
	}

	// Every row that exists ran on a writable server: the old primary before
	// the switch or the new one after it.
	direct, err := sql.Open("mysql", newP.DSN(appUser, appPass, "sw"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	rows, err := direct.Query("SELECT ran_on, COUNT(*) FROM t GROUP BY ran_on")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[int]int{}
	for rows.Next() {
		var id, n int
		_ = rows.Scan(&id, &n)
		counts[id] = n
	}
	t.Logf("monitor followed in %s; writes by server_id %v; %d refused by the read-only old primary during the switch (%s)",
		followed.Round(time.Millisecond), counts, refused.Load(), time.Since(promoted).Round(time.Millisecond))
	for id := range counts {
		if id != oldP.ServerID && id != newP.ServerID {
			t.Errorf("%d writes ran on server %d, neither primary", counts[id], id)
		}
	}
	if counts[newP.ServerID] == 0 {
		t.Errorf("no write reached the new primary")
	}
	if followed > 2*time.Second { // measured 6-50ms; the bound leaves room for a stalled machine
		t.Errorf("followed the switchover in %s, want under 2s", followed)
	}
}

// TestReplicaHungDuringReads stops a replica with SIGSTOP (hung, not
// closed) while clients read: the monitor's probe deadline detects it, the
// reads stuck on it run again elsewhere, and no read fails.
func TestReplicaHungDuringReads(t *testing.T) {
	sb, mon, p := monitored(t)
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(6)
	load := startReads(t, db, 6)
	reads, failures, lastErr := &load.reads, &load.failures, &load.lastErr
	time.Sleep(300 * time.Millisecond)
	victim := sb.Replicas[1]
	if err := victim.Pause(); err != nil {
		t.Fatal(err)
	}
	// If the test fails before it resumes the replica, the cleanups that
	// run before the sandbox's own (the reads, DB.Close, the proxy's
	// Shutdown) must not wait on a frozen server.
	t.Cleanup(func() { _ = victim.Resume() })
	paused := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for mon.Usable(victim.Name) {
		if time.Now().After(deadline) {
			t.Fatal("hung replica never detected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	detected := time.Since(paused)
	start := reads.Load()
	for reads.Load() < start+200 {
		if time.Now().After(deadline) {
			t.Fatalf("reads stalled after the replica hung (%d)", reads.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := victim.Resume(); err != nil {
		t.Fatal(err)
	}
	load.stop()
	t.Logf("hung replica detected in %s; %d reads, %d failed", detected.Round(time.Millisecond), reads.Load(), failures.Load())
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d reads failed, last: %v", f, lastErr.Load())
	}
}
