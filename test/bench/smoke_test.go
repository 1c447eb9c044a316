package main

import (
	"slices"
	"testing"
	"time"
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
	sysb, proxy, _, _ := sysbenchFixture(t, nil)
	ctx := t.Context()
	const threads = 4
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
