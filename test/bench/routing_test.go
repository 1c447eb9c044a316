package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// sysbenchFixture prepares small sysbench tables on the shared sandbox and
// starts Switchyard with the given read weights (by server name).
func sysbenchFixture(t *testing.T, weights map[string]int) (sysbench, *child, []backendServer, *sandbox.Sandbox) {
	t.Helper()
	bin, err := findSysbench("sysbench")
	if err != nil {
		if os.Getenv(sandbox.RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v (set %s=1 to fail instead)", err, sandbox.RequireEnv)
	}
	sb := sandboxtest.Require(t)
	ctx := t.Context()
	dir := t.TempDir()
	syBin, err := buildSwitchyard(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var servers []backendServer
	for _, srv := range sb.Servers() {
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, backendServer{Name: srv.Name, Role: srv.Role, Addr: srv.Addr(), Weight: weights[srv.Name], db: db})
	}
	if _, err := servers[0].db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+sysbenchDB); err != nil {
		t.Fatal(err)
	}
	user := sb.Opts.Users[0]
	sysb := sysbench{Bin: bin, User: user.Name, Password: user.Password, DB: sysbenchDB, Tables: 4, TableSize: 1000, Debug: true}
	if err := sysb.Prepare(ctx, sb.Primary.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	proxy, err := startSwitchyard(ctx, syBin, dir, switchyardSetup{
		User: user.Name, Password: user.Password, Backends: servers, MaxThreads: 8,
		MonitorUser: sb.Opts.Monitor.Name, MonitorPassword: sb.Opts.Monitor.Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	return sysb, proxy, servers, sb
}

// TestSysbenchReadsFollowWeights: with --skip-trx=on, sysbench's reads land
// on the replicas in proportion to their weights, and none on the primary.
func TestSysbenchReadsFollowWeights(t *testing.T) {
	sysb, proxy, servers, _ := sysbenchFixture(t, map[string]int{"replica1": 2, "replica2": 1})
	ctx := t.Context()
	before, err := snapshot(ctx, servers)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range []string{"auto", "disable"} {
		c := benchCase{Workload: workload{Test: "oltp_read_only", SkipTrx: true}, PSMode: ps, Threads: 4}
		res, out, err := sysb.Run(ctx, c, proxy.Addr, 2*time.Second)
		if err != nil || res.Errors > 0 || res.Reconnects > 0 {
			t.Fatalf("sysbench %s: %v, %d errors, %d reconnects\n%s", c, err, res.Errors, res.Reconnects, tail(out, 20))
		}
	}
	after, err := snapshot(ctx, servers)
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]int64{}
	for _, d := range deltas(servers, before, after) {
		reads[d.Name] = d.Reads()
	}
	t.Logf("Com_select by server: %v", reads)
	if reads["primary"] > reads["replica1"]/100 {
		t.Errorf("%d reads on the primary, want (almost) none", reads["primary"])
	}
	if r2 := reads["replica2"]; r2 == 0 {
		t.Fatalf("no reads on replica2")
	} else if ratio := float64(reads["replica1"]) / float64(r2); ratio < 1.8 || ratio > 2.2 {
		t.Errorf("replica1/replica2 reads = %.2f, want 2 (weights 2:1)", ratio)
	}
}

// TestSysbenchReplicaKilled kills a replica with SIGKILL while sysbench
// reads through Switchyard: no query fails, no client reconnects.
func TestSysbenchReplicaKilled(t *testing.T) {
	sysb, proxy, _, sb := sysbenchFixture(t, nil)
	ctx := t.Context()
	victim := sb.Replicas[0]
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(1500 * time.Millisecond) // into the run
		if err := victim.Kill(); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(1500 * time.Millisecond)
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := victim.Start(sctx); err != nil {
			t.Error(err)
		}
	}()
	for _, test := range []string{"oltp_point_select", "oltp_read_only"} {
		c := benchCase{Workload: workload{Test: test, SkipTrx: test == "oltp_read_only"}, PSMode: "auto", Threads: 4}
		res, out, err := sysb.Run(ctx, c, proxy.Addr, 3*time.Second)
		if err != nil || res.Errors > 0 || res.Reconnects > 0 {
			t.Errorf("sysbench %s while a replica was killed: %v, %d errors, %d reconnects\n%s", c, err, res.Errors, res.Reconnects, tail(out, 20))
		}
		t.Logf("sysbench %s: %d queries, %d errors", c, res.Queries, res.Errors)
	}
	<-done
}
