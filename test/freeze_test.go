package test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Settings of TestFreezeReplica's switchyard, and the longest a read may
// take: a causal read may wait causal_wait on a replica; a replica that
// stops answering is found within one monitor interval plus one check's
// timeout, and the reads it held go elsewhere.
const (
	freezeMonitorInterval = 100 * time.Millisecond
	freezeMonitorTimeout  = 500 * time.Millisecond
	freezeCausalWait      = 100 * time.Millisecond
	// freezeSlack is the least allowance for scheduling, 32 sessions on one
	// machine; when reads before the freeze were slower than that (other
	// test packages share the cores), their slowest is the allowance.
	freezeSlack = 300 * time.Millisecond
)

// Phases of the load, from its start.
const (
	freezeAt     = time.Second     // SIGSTOP one replica
	freezeFor    = 3 * time.Second // then SIGCONT it
	freezeAfter  = 2 * time.Second // load after the resume
	freezeClient = 32              // concurrent sessions
)

// freezeRead is one read of the load.
type freezeRead struct {
	at       time.Duration // when it began, from the start of the load
	latency  time.Duration
	found    bool
	serverID int
}

// TestFreezeReplica freezes a replica (SIGSTOP: its connections stay open
// and nothing answers, like a hung host) under a load of sessions that each
// write a row and read it straight back, a causal read. No client may see an
// error, miss its row, or wait longer than the monitor needs to notice the
// freeze; once the replica is resumed it must serve reads again.
func TestFreezeReplica(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appUser}})
	root, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE DATABASE fz",
		"CREATE TABLE fz.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, session INT NOT NULL, n INT NOT NULL)",
	} {
		if _, err := runSQL(root, stmtTimeout, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := waitReplicated(sb, time.Minute); err != nil {
		t.Fatal(err)
	}
	sy := startRouted(t, sb, routedConfig{
		Users:   []sandbox.User{appUser},
		Routing: []string{"consistency: causal", "causal_wait: " + freezeCausalWait.String()},
		Monitor: []string{"interval: " + freezeMonitorInterval.String(), "timeout: " + freezeMonitorTimeout.String()},
	})
	db := clientDB(t, sy.Addr, appUser, "fz")
	frozen := sb.Replicas[0]
	t.Cleanup(func() {
		// Whatever happened, the server must not stay stopped: the sandbox
		// and switchyard shut down after this.
		if err := frozen.Resume(); err != nil {
			t.Errorf("resume %s: %v", frozen.Name, err)
		}
	})

	// Both replicas serve reads before the freeze, or it proves nothing.
	if d, err := waitServes(db, []int{sb.Replicas[0].ServerID, sb.Replicas[1].ServerID}, 15*time.Second); err != nil {
		t.Fatalf("before the load: %v\nlog:\n%s", err, tail(sy.Log(), 30))
	} else {
		t.Logf("both replicas served reads %s after switchyard started", d.Round(time.Millisecond))
	}

	var (
		mu     sync.Mutex
		reads  []freezeRead
		errs   []string
		writes []time.Duration // insert latencies
	)
	start := time.Now()
	stop := start.Add(freezeAt + freezeFor + freezeAfter)
	var wg sync.WaitGroup
	for s := range freezeClient {
		wg.Go(func() {
			fail := func(format string, args ...any) {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("session %d at %s: ", s, time.Since(start).Round(time.Millisecond))+fmt.Sprintf(format, args...))
				mu.Unlock()
			}
			ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
			c, err := db.Conn(ctx)
			cancel()
			if err != nil {
				fail("connect: %v", err)
				return
			}
			defer c.Close()
			for n := 0; time.Now().Before(stop); n++ {
				r, w, err := writeAndRead(c, s, n, start)
				mu.Lock()
				writes = append(writes, w)
				if err == nil {
					reads = append(reads, r)
				}
				mu.Unlock()
				if err != nil {
					fail("%v", err)
					return // the session may be unusable; the error fails the test
				}
			}
		})
	}

	// The scenario's clock: these sleeps are the phases of the load, not
	// waits for readiness.
	// The sessions are always waited for: their loops end at stop.
	time.Sleep(freezeAt)
	if err := frozen.Pause(); err != nil {
		t.Errorf("%v; the load runs on unfrozen", err)
	}
	paused := time.Since(start)
	time.Sleep(freezeFor)
	if err := frozen.Resume(); err != nil {
		t.Errorf("%v", err)
	}
	resumed := time.Since(start)
	wg.Wait()
	t.Logf("%s frozen from %s to %s of the load; load ran %s",
		frozen.Name, paused.Round(time.Millisecond), resumed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Figures for the lead to quote, then the verdict.
	phase := func(r freezeRead) string {
		switch {
		case r.at < paused:
			return "before"
		case r.at < resumed:
			return "frozen"
		}
		return "after"
	}
	byPhase := map[string][]freezeRead{}
	for _, r := range reads {
		byPhase[phase(r)] = append(byPhase[phase(r)], r)
	}
	for _, p := range []string{"before", "frozen", "after"} {
		t.Logf("reads %-6s %s", p, summarize(byPhase[p], frozen.ServerID))
	}
	slices.Sort(writes)
	if len(writes) > 0 {
		t.Logf("inserts: %d, p50 %s, p99 %s, max %s", len(writes), pct(writes, 50), pct(writes, 99), writes[len(writes)-1])
	}

	if len(errs) > 0 {
		t.Errorf("%d client errors (want none); the first:\n  %s", len(errs), strings.Join(errs[:min(len(errs), 10)], "\n  "))
	}
	if len(reads) == 0 {
		t.Fatal("no read completed")
	}
	slack := freezeSlack
	for _, r := range byPhase["before"] {
		slack = max(slack, r.latency)
	}
	freezeMaxRead := freezeCausalWait + freezeMonitorTimeout + freezeMonitorInterval + slack
	missing, slow := 0, 0
	var worst freezeRead
	var slowest []string // the first slow reads, for the failure message
	for _, r := range reads {
		if !r.found {
			missing++
		}
		if r.latency > freezeMaxRead {
			slow++
			if len(slowest) < 10 {
				slowest = append(slowest, fmt.Sprintf("began %s, took %s, ended %s, server_id %d",
					r.at.Round(time.Millisecond), r.latency.Round(time.Millisecond), (r.at+r.latency).Round(time.Millisecond), r.serverID))
			}
		}
		if r.latency > worst.latency {
			worst = r
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d reads did not find the row their session had just written", missing, len(reads))
	}
	if slow > 0 {
		t.Errorf("%d of %d reads took longer than %s (causal_wait %s + monitor timeout %s + interval %s + slack %s, the least allowance or the slowest read before the freeze); "+
			"the slowest took %s, began at %s (%s), answered by server_id %d",
			slow, len(reads), freezeMaxRead, freezeCausalWait, freezeMonitorTimeout, freezeMonitorInterval, slack.Round(time.Millisecond),
			worst.latency.Round(time.Millisecond), worst.at.Round(time.Millisecond), phase(worst), worst.serverID)
		t.Logf("slow reads (the first %d):\n  %s", len(slowest), strings.Join(slowest, "\n  "))
	}

	// Resumed, the replica catches up and comes back into rotation.
	if d, err := waitServes(db, []int{frozen.ServerID}, 10*time.Second); err != nil {
		t.Errorf("after the resume: %v", err)
	} else {
		t.Logf("%s served reads again %s after the load ended (%s after the resume)",
			frozen.Name, d.Round(time.Millisecond), (time.Since(start) - resumed).Round(time.Millisecond))
	}
	if t.Failed() {
		t.Logf("switchyard log:\n%s", tail(sy.Log(), 40))
	}
}

// writeAndRead inserts row n of session s, autocommitted, then reads it
// back at once and times the read.
func writeAndRead(c *sql.Conn, s, n int, start time.Time) (freezeRead, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	w0 := time.Now()
	res, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO items (session, n) VALUES (%d, %d)", s, n))
	w := time.Since(w0)
	if err != nil {
		return freezeRead{}, w, fmt.Errorf("insert: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return freezeRead{}, w, fmt.Errorf("insert id: %w", err)
	}
	r := freezeRead{at: time.Since(start)}
	r0 := time.Now()
	rows, err := runSQL(c, stmtTimeout, fmt.Sprintf("SELECT n, @@server_id FROM items WHERE id = %d", id))
	r.latency = time.Since(r0)
	if err != nil {
		return r, w, fmt.Errorf("read row %d after %s: %w", id, r.latency.Round(time.Millisecond), err)
	}
	if len(rows.Rows) == 1 {
		r.found = rows.Rows[0][0] == fmt.Sprint(n)
		fmt.Sscan(rows.Rows[0][1], &r.serverID)
	} else {
		// A read that misses its row names no server: ask which one it was.
		if sid, err := runSQL(c, stmtTimeout, "SELECT @@server_id"); err == nil {
			fmt.Sscan(sid.first(), &r.serverID)
		}
	}
	return r, w, nil
}

// waitServes opens fresh sessions through db until each server in ids has
// answered a plain read, and returns how long that took.
func waitServes(db *sql.DB, ids []int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	seen := map[int]int{}
	missing := func() []int {
		var out []int
		for _, id := range ids {
			if seen[id] == 0 {
				out = append(out, id)
			}
		}
		return out
	}
	var last error
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := db.Conn(ctx)
		if err == nil {
			var id int
			err = c.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
			c.Close()
			if err == nil {
				seen[id]++
			}
		}
		cancel()
		if err != nil {
			last = err
		}
		if len(missing()) == 0 {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("server_id %v answered no read within %s (reads by server_id: %v; last error: %v)",
		missing(), timeout, seen, last)
}

// summarize describes reads: count, latency percentiles, and which servers
// answered them.
func summarize(reads []freezeRead, frozenID int) string {
	if len(reads) == 0 {
		return "none"
	}
	lat := make([]time.Duration, len(reads))
	servers := map[int]int{}
	for i, r := range reads {
		lat[i] = r.latency
		servers[r.serverID]++
	}
	slices.Sort(lat)
	over := 0
	for _, l := range lat {
		if l > freezeCausalWait {
			over++
		}
	}
	return fmt.Sprintf("%6d reads, p50 %s, p90 %s, p99 %s, max %s; %d over causal_wait; by server_id %v (frozen: %d)",
		len(reads), pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[len(lat)-1].Round(time.Microsecond), over, servers, frozenID)
}

// pct returns the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)].Round(time.Microsecond)
}
