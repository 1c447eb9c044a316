package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestMetricsUnderWorkload runs a scripted workload through the binary and
// checks that every metric family moves as the workload says it must.
func TestMetricsUnderWorkload(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "metrics-tok-41"
	p := startProc(t, sb, token, opsConfig(sb, token, "routing:\n  consistency: session\n  session_window: 1s\n"))
	primary, replica := sb.Primary.Name, sb.Replicas[0].Name
	ctx := context.Background()

	// Runtime, process and build families are there from the start.
	m0 := p.metrics()
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes",
		"process_open_fds", "switchyard_session_panics_total", "switchyard_read_retries_total",
		"switchyard_config_last_reload_success"} {
		if _, ok := m0.get(name); !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	checkMetric(t, m0, "switchyard_build_info", []string{"version", testVersion}, 1)
	checkMetric(t, m0, "switchyard_session_panics_total", nil, 0)
	checkMetric(t, m0, "switchyard_config_reloads_total", []string{"result", "success"}, 0)
	checkMetric(t, m0, "switchyard_backend_state", []string{"backend", replica, "state", "usable"}, 1)
	checkMetric(t, m0, "switchyard_backend_primary", []string{"backend", primary}, 1)
	checkMetric(t, m0, "switchyard_client_connections", nil, 0)

	// Writes on one session: 5 statements of class write on the primary.
	w := p.conn(appAccount)
	execAll(t, w, "CREATE DATABASE IF NOT EXISTS opsm", "DROP TABLE IF EXISTS opsm.t",
		"CREATE TABLE opsm.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO opsm.t VALUES (1, 'a')", "INSERT INTO opsm.t VALUES (2, 'b')")
	// A transaction pins the session to the primary.
	execAll(t, w, "BEGIN", "INSERT INTO opsm.t VALUES (3, 'c')", "SELECT COUNT(*) FROM opsm.t", "COMMIT")
	// Reads on a fresh session go to the replica: 10 plain queries.
	r := p.conn(appAccount)
	for range 10 {
		var one int
		if err := r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
	}
	// One prepared read (the driver prepares, executes and closes).
	var got int
	if err := r.QueryRowContext(ctx, "SELECT ? + 1", 41).Scan(&got); err != nil || got != 42 {
		t.Fatalf("prepared SELECT ? + 1: %v, %d", err, got)
	}
	// A backend error is passed through and counted by code.
	if _, err := r.ExecContext(ctx, "SELECT * FROM opsm.no_such_table"); mysqlErrorCode(err) != 1146 {
		t.Fatalf("SELECT from a missing table: %v, want error 1146", err)
	}
	// A temporary table pins its session.
	tmp := p.conn(appAccount)
	execAll(t, tmp, "CREATE TEMPORARY TABLE opsm.tt (x INT)")
	// A wrong password is a rejected connection.
	if _, err := p.connErr(sandbox.User{Name: appAccount.Name, Password: "wrong-password"}); mysqlErrorCode(err) != 1045 {
		t.Fatalf("connect with a wrong password: %v, want 1045", err)
	}

	// The proxy counts some things just after the client has its answer:
	// poll until every expectation holds, then report the last scrape.
	type expect struct {
		name   string
		labels []string
		want   float64
		exact  bool // else at least
	}
	expects := []expect{
		{"switchyard_statements_total", []string{"route", "primary", "backend", primary, "command", "query", "class", "write"}, 7, true}, // with CREATE TEMPORARY TABLE
		{"switchyard_statements_total", []string{"route", "primary", "command", "query", "class", "begin"}, 1, true},
		{"switchyard_statements_total", []string{"route", "primary", "command", "query", "class", "commit"}, 1, true},
		{"switchyard_statements_total", []string{"route", "replica", "backend", replica, "command", "query", "class", "read"}, 11, true},
		// Statements are prepared on the primary; executes of reads go to replicas.
		{"switchyard_statements_total", []string{"route", "primary", "backend", primary, "command", "prepare", "class", "read"}, 1, true},
		{"switchyard_statements_total", []string{"route", "replica", "backend", replica, "command", "execute", "class", "read"}, 1, true},
		{"switchyard_errors_total", []string{"code", "1146"}, 1, true},
		{"switchyard_errors_total", []string{"code", "1045"}, 1, true},
		{"switchyard_session_pins_total", []string{"reason", "transaction"}, 1, true},
		{"switchyard_session_pins_total", []string{"reason", "temp_table"}, 1, true},
		{"switchyard_client_connections_total", nil, 4, true},
		{"switchyard_client_connections_rejected_total", []string{"reason", "handshake"}, 1, true},
		{"switchyard_client_connections", nil, 3, true},
		{"switchyard_routing_decisions_total", []string{"reason", "transaction"}, 1, true},
		{"switchyard_routing_decisions_total", []string{"reason", "pinned"}, 3, true}, // INSERT, SELECT COUNT(*) and COMMIT after BEGIN
		{"switchyard_routing_decisions_total", []string{"reason", "write"}, 6, false}, // the INSERT in the transaction was "pinned"
		{"switchyard_routing_decisions_total", []string{"reason", "read"}, 12, false},
		{"switchyard_statement_duration_seconds", []string{"route", "primary"}, 11, false},
		{"switchyard_statement_duration_seconds", []string{"route", "replica"}, 12, false},
		{"switchyard_backend_statement_duration_seconds", []string{"backend", primary}, 11, false},
		{"switchyard_backend_statement_duration_seconds", []string{"backend", replica}, 12, false},
		{"switchyard_client_bytes_total", []string{"direction", "in"}, 300, false},
		{"switchyard_client_bytes_total", []string{"direction", "out"}, 300, false},
	}
	var m metricSet
	var failures []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		m = p.metrics()
		failures = failures[:0]
		for _, e := range expects {
			got := m.val(e.name, e.labels...) - m0.val(e.name, e.labels...)
			switch {
			case e.exact && got != e.want:
				failures = append(failures, fmt.Sprintf("%s%v went up by %v, want %v", e.name, e.labels, got, e.want))
			case !e.exact && got < e.want:
				failures = append(failures, fmt.Sprintf("%s%v went up by %v, want at least %v", e.name, e.labels, got, e.want))
			}
		}
		if len(failures) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if s := m.histSum("switchyard_statement_duration_seconds") - m0.histSum("switchyard_statement_duration_seconds"); s <= 0 {
		t.Errorf("switchyard_statement_duration_seconds_sum went up by %v, want > 0", s)
	}
	// The session with a temporary table keeps its primary connection (the
	// others may have handed theirs back to the pool while idle); the
	// replica has at least the reading session's connection, in use or idle.
	if v := m.val("switchyard_backend_connections", "backend", primary, "state", "in_use"); v < 1 || v > 3 {
		t.Errorf("switchyard_backend_connections{backend=%s,state=in_use} = %v, want 1 to 3", primary, v)
	}
	if v := m.val("switchyard_backend_connections", "backend", replica); v < 1 {
		t.Errorf("switchyard_backend_connections{backend=%s} = %v, want at least 1", replica, v)
	}
	if _, ok := m.get("switchyard_session_releases_total"); !ok {
		t.Errorf("switchyard_session_releases_total missing from /metrics")
	}
	// Labels stay bounded: no label value holds statement text.
	for _, fam := range m {
		for _, s := range fam.GetMetric() {
			for _, lp := range s.GetLabel() {
				if len(lp.GetValue()) > 40 {
					t.Errorf("%s has a long label value %s=%q", fam.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	// Closing the sessions returns their connections to the pools.
	for _, c := range []*sql.Conn{w, r, tmp} {
		c.Close()
	}
	p.waitMetric("switchyard_client_connections", nil, "0 after the clients left", func(v float64) bool { return v == 0 })
	p.waitMetric("switchyard_backend_connections", []string{"backend", primary, "state", "in_use"}, "0 after the clients left",
		func(v float64) bool { return v == 0 })
	if v := p.metrics().val("switchyard_backend_connections", "backend", primary, "state", "idle"); v < 1 {
		t.Errorf("switchyard_backend_connections{backend=%s,state=idle} = %v after the clients left, want at least 1", primary, v)
	}

	// One log line per rejected connection.
	p.waitLogged("WARN", "connection rejected", 1)
	// And /metrics needs the token.
	if code, _ := p.requestAs("GET", "/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d, want 401", code)
	}
}
