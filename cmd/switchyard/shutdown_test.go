package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/client"
	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// readServerClose checks that the proxy closes c within the time given
// without sending anything first.
func readServerClose(t *testing.T, c *gomysql.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	c.Sequence = 0
	pkt, err := c.ReadPacket()
	switch {
	case err == nil:
		t.Fatalf("got packet %q, want the connection closed without one", pkt)
	case strings.Contains(err.Error(), "timeout"):
		t.Fatalf("connection still open after %s: %v", within, err)
	}
}

// countRows counts rows of opss.t with id in ids, on the primary directly.
func countRows(t *testing.T, sb *sandbox.Sandbox, ids string) int {
	t.Helper()
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM opss.t WHERE id IN (" + ids + ")").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShutdownWaitsForTransaction sends SIGTERM while one client has a
// transaction open and others are idle: the idle ones are closed at once,
// without an error packet (the client would read it as the answer to its
// next command), new connections are refused, the transaction may go on
// and commit, and the process then exits 0 well within the drain timeout.
func TestShutdownWaitsForTransaction(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "shutdown-tok-3"
	p := startProc(t, sb, token, opsConfig(sb, token, "timeouts:\n  drain: 20s\n"))
	ctx := context.Background()

	tx := p.conn(appAccount)
	execAll(t, tx, "CREATE DATABASE IF NOT EXISTS opss", "CREATE TABLE IF NOT EXISTS opss.t (id INT PRIMARY KEY)",
		"DELETE FROM opss.t WHERE id IN (1, 2, 10)", "BEGIN", "INSERT INTO opss.t VALUES (1)")
	idle := p.conn(otherAccount)
	execAll(t, idle, "SELECT 1")
	raw := p.rawConn(appAccount)

	sigterm := time.Now()
	p.signal(syscall.SIGTERM)
	readServerClose(t, raw, 5*time.Second)
	if c, body := p.requestAs("GET", "/readyz", ""); c != http.StatusServiceUnavailable || !strings.Contains(string(body), "draining") {
		t.Errorf("GET /readyz while draining: %d %s, want 503 draining", c, body)
	}
	p.waitMetric("switchyard_client_connections", nil, "1 (the open transaction)", func(v float64) bool { return v == 1 })
	if _, err := idle.ExecContext(ctx, "SELECT 1"); mysqlErrorCode(err) != 0 || !(errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn)) {
		t.Errorf("idle go-sql-driver session after SIGTERM: %v, want a closed connection (invalid connection)", err)
	}
	if nc, err := net.DialTimeout("tcp", p.sqlAddr, 2*time.Second); err == nil {
		nc.Close()
		t.Errorf("a new connection was accepted while draining")
	}
	if p.exited() {
		t.Fatalf("switchyard exited with a transaction open")
	}

	// The transaction goes on and commits.
	execAll(t, tx, "INSERT INTO opss.t VALUES (2)", "COMMIT")
	exit, ok := p.wait(10 * time.Second)
	took := time.Since(sigterm)
	if !ok {
		t.Fatalf("switchyard still running 10s after the last transaction committed")
	}
	if exit != 0 {
		t.Errorf("exit status %d, want 0", exit)
	}
	if took > 15*time.Second {
		t.Errorf("exit %s after SIGTERM; the drain timeout is 20s and nothing was left to wait for", took)
	}
	if n := countRows(t, sb, "1, 2"); n != 2 {
		t.Errorf("%d of the 2 rows committed while draining are on the primary", n)
	}
	if n := p.logged("INFO", "switchyard draining") + p.logged("INFO", "switchyard stopped"); n != 2 {
		t.Errorf("lifecycle log lines: %d of draining and stopped, want both", n)
	}
}

// TestShutdownDrainTimeout sends SIGTERM while a transaction stays open: the
// process waits for the drain timeout, then closes the session without an
// error packet (the transaction rolls back) and exits 0.
func TestShutdownDrainTimeout(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "shutdown-tok-4"
	const drain = time.Second
	p := startProc(t, sb, token, opsConfig(sb, token, "timeouts:\n  drain: 1s\n"))

	setup := p.conn(appAccount)
	execAll(t, setup, "CREATE DATABASE IF NOT EXISTS opss", "CREATE TABLE IF NOT EXISTS opss.t (id INT PRIMARY KEY)",
		"DELETE FROM opss.t WHERE id = 10")
	setup.Close()
	raw := p.rawConn(appAccount)
	for _, q := range []string{"BEGIN", "INSERT INTO opss.t VALUES (10)"} {
		if _, err := raw.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	sigterm := time.Now()
	p.signal(syscall.SIGTERM)
	exit, ok := p.wait(drain + 10*time.Second)
	took := time.Since(sigterm)
	if !ok {
		t.Fatalf("switchyard still running %s after SIGTERM with a drain timeout of %s", took, drain)
	}
	if exit != 0 {
		t.Errorf("exit status %d, want 0", exit)
	}
	if took < drain {
		t.Errorf("exit %s after SIGTERM, before the drain timeout (%s) with a transaction open", took, drain)
	}
	readServerClose(t, raw, 5*time.Second)
	if n := countRows(t, sb, "10"); n != 0 {
		t.Errorf("the unfinished transaction's row is on the primary")
	}
}
