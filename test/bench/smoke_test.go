package main

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/test/sandbox"
)

// smokeTests are the sysbench workloads the correctness smoke test runs through
// Switchyard, each with server-side prepared statements and with plain text queries.
var smokeTests = []string{
	"oltp_point_select", "oltp_read_only", "oltp_read_write",
	"oltp_insert", "oltp_update_index", "oltp_delete",
}

// contentionErrors are the errors sysbench ignores by default: deadlock, record changed,
// lock wait timeout. The server returns them to concurrent writers whether or not a
// proxy is in between (oltp_read_write on 4,000 rows deadlocks now and then when
// connected directly), and sysbench retries the event.
var contentionErrors = []int{1213, 1020, 1205}

// TestSysbenchThroughSwitchyard is the project's correctness check "sysbench through
// Switchyard with --db-ps-mode=auto and disable: zero errors": every run must finish
// without a fatal error or a reconnect, and the only errors allowed are the server's
// own contention errors above. It never looks at speed.
func TestSysbenchThroughSwitchyard(t *testing.T) {
	bin, err := findSysbench("sysbench")
	if err != nil {
		if os.Getenv(sandbox.RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v (set %s=1 to fail instead)", err, sandbox.RequireEnv)
	}
	sb := sandbox.Require(t)
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
		servers = append(servers, backendServer{Name: srv.Name, Role: srv.Role, Addr: srv.Addr(), db: db})
	}
	if _, err := servers[0].db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+sysbenchDB); err != nil {
		t.Fatal(err)
	}
	user := sb.Opts.Users[0]
	sysb := sysbench{Bin: bin, User: user.Name, Password: user.Password, DB: sysbenchDB,
		Tables: 4, TableSize: 1000, Debug: true}
	if err := sysb.Prepare(ctx, sb.Primary.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	const threads = 4
	proxy, err := startSwitchyard(ctx, syBin, dir, switchyardSetup{
		User: user.Name, Password: user.Password, Backends: servers, MaxThreads: threads,
		MonitorUser: sb.Opts.Monitor.Name, MonitorPassword: sb.Opts.Monitor.Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()

	for _, test := range smokeTests {
		for _, ps := range []string{"auto", "disable"} {
			c := benchCase{Workload: workload{Test: test}, PSMode: ps, Threads: threads}
			t.Run(test+"/ps="+ps, func(t *testing.T) {
				logFrom := proxy.LogSize()
				res, out, err := sysb.Run(ctx, c, proxy.Addr, 2*time.Second)
				for _, l := range proxy.LogSince(logFrom, 10) {
					t.Logf("switchyard log: %s", l)
				}
				if err != nil {
					t.Fatalf("sysbench %s through Switchyard: %v\n--- sysbench output (tail) ---\n%s",
						c, err, tail(out, 20))
				}
				if res.Transactions == 0 {
					t.Errorf("sysbench %s through Switchyard: no transactions", c)
				}
				if res.Reconnects != 0 {
					t.Errorf("sysbench %s through Switchyard: %d reconnects, want 0", c, res.Reconnects)
				}
				if res.Errors > 0 && len(res.IgnoredCodes) == 0 {
					t.Errorf("sysbench %s through Switchyard: %d ignored errors of unknown codes", c, res.Errors)
				}
				for _, code := range res.IgnoredCodes {
					if !slices.Contains(contentionErrors, code) {
						t.Errorf("sysbench %s through Switchyard: error %d, want none but %v", c, code, contentionErrors)
					}
				}
				if res.Errors > 0 {
					t.Logf("%d contention errors (codes %v) retried by sysbench", res.Errors, res.IgnoredCodes)
				}
			})
		}
	}
	if exited, err := proxy.Exited(); exited {
		t.Errorf("switchyard exited during the test: %v\n%s", err, proxy.LogTail(20))
	}
}
