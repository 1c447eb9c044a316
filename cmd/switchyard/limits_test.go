package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestLimits checks that every limit returns its documented error through
// the binary (docs/OPERATIONS.md, "Limits").
func TestLimits(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "limits-tok-9"
	// withUserLimit gives user app a max_connections of n.
	withUserLimit := func(cfg string, n int) string {
		line := fmt.Sprintf("  - name: app\n    password: %q\n", appAccount.Password)
		if !strings.Contains(cfg, line) {
			t.Fatalf("no user app in config:\n%s", cfg)
		}
		return strings.Replace(cfg, line, line+fmt.Sprintf("    max_connections: %d\n", n), 1)
	}

	t.Run("max_connections", func(t *testing.T) {
		p := startProc(t, sb, token, opsConfig(sb, token, "limits:\n  max_connections: 2\n"))
		c1 := p.conn(appAccount)
		p.conn(otherAccount)
		_, err := p.connErr(appAccount)
		if mysqlErrorCode(err) != 1040 || !strings.Contains(err.Error(), "limits.max_connections") {
			t.Errorf("third connection with limits.max_connections 2: %v, want error 1040 naming the setting", err)
		}
		m := p.metrics()
		checkMetric(t, m, "switchyard_client_connections_rejected_total", []string{"reason", "max_connections"}, 1)
		checkMetric(t, m, "switchyard_errors_total", []string{"code", "1040"}, 1)
		p.waitLogged("WARN", "connection rejected", 1)
		c1.Close()
		p.waitMetric("switchyard_client_connections", nil, "1", func(v float64) bool { return v == 1 })
		if _, err := p.connErr(appAccount); err != nil {
			t.Errorf("connect after a slot freed up: %v", err)
		}
	})

	t.Run("user_max_connections", func(t *testing.T) {
		p := startProc(t, sb, token, withUserLimit(opsConfig(sb, token, ""), 1))
		p.conn(appAccount)
		_, err := p.connErr(appAccount)
		if mysqlErrorCode(err) != 1203 || !strings.Contains(err.Error(), "max_user_connections") {
			t.Errorf("second connection of app with max_connections 1: %v, want error 1203", err)
		}
		if _, err := p.connErr(otherAccount); err != nil {
			t.Errorf("user other, without a limit: %v", err)
		}
		checkMetric(t, p.metrics(), "switchyard_client_connections_rejected_total", []string{"reason", "max_user_connections"}, 1)
	})

	t.Run("pool_wait_timeout", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		p := startProc(t, sb, token, opsConfig(sb, token, "pool:\n  max_open: 1\n  max_idle: 1\n  wait_timeout: 300ms\n"))
		primary := sb.Primary.Name
		// An open transaction holds app's one primary connection.
		c1 := p.conn(appAccount)
		execAll(t, c1, "BEGIN", "SELECT @@server_id")
		// A second app session needs the primary (at login or at BEGIN).
		start := time.Now()
		c2, err := p.connErr(appAccount)
		if err == nil {
			_, err = c2.ExecContext(context.Background(), "BEGIN")
		}
		took := time.Since(start)
		if mysqlErrorCode(err) != 1040 || !strings.Contains(err.Error(), "pool.max_open=1") {
			t.Errorf("second app session with pool.max_open 1: %v, want error 1040 naming pool.max_open", err)
		}
		if took < wait || took > wait+5*time.Second {
			t.Errorf("the pool wait took %s, want about pool.wait_timeout (%s)", took, wait)
		}
		// Pools are per user: other gets its own.
		o := p.conn(otherAccount)
		execAll(t, o, "BEGIN", "COMMIT")
		m := p.metrics()
		checkMetric(t, m, "switchyard_backend_pool_waits_total", []string{"backend", primary}, 1)
		if s := m.val("switchyard_backend_pool_wait_seconds_total", "backend", primary); s < wait.Seconds() || s > took.Seconds() {
			t.Errorf("switchyard_backend_pool_wait_seconds_total = %v, want between %v and %v", s, wait.Seconds(), took.Seconds())
		}
		// Once the holder leaves, the slot is free again.
		execAll(t, c1, "COMMIT")
		c1.Close()
		p.waitMetric("switchyard_client_connections", nil, "1 (other's session)", func(v float64) bool { return v == 1 })
		c3 := p.conn(appAccount)
		execAll(t, c3, "BEGIN", "COMMIT")
	})

	t.Run("handshake_timeout", func(t *testing.T) {
		p := startProc(t, sb, token, opsConfig(sb, token, "timeouts:\n  handshake: 300ms\n"))
		// Timed from before the dial: the proxy's clock starts when it
		// accepts, which may come before Dial returns here.
		start := time.Now()
		nc, err := net.Dial("tcp", p.sqlAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(start.Add(10 * time.Second))
		if _, err := readPacket(nc); err != nil { // the greeting
			t.Fatalf("read greeting: %v", err)
		}
		pkt, err := readPacket(nc) // say nothing: the proxy gives up
		took := time.Since(start)
		if err != nil || len(pkt) < 9 || pkt[0] != 0xff {
			t.Fatalf("after a silent handshake got %q, %v; want an ERR packet", pkt, err)
		}
		code := uint16(pkt[1]) | uint16(pkt[2])<<8
		if code != 1043 || !strings.Contains(string(pkt[9:]), "300ms") {
			t.Errorf("handshake timeout error %d %q, want 1043 naming the timeout", code, pkt[9:])
		}
		if took < 300*time.Millisecond || took > 5*time.Second {
			t.Errorf("handshake timeout after %s, want about 300ms", took)
		}
		if _, err := readPacket(nc); err != io.EOF {
			t.Errorf("after the error the connection is not closed: %v", err)
		}
		checkMetric(t, p.metrics(), "switchyard_client_connections_rejected_total", []string{"reason", "handshake"}, 1)
	})

	t.Run("idle_timeout", func(t *testing.T) {
		p := startProc(t, sb, token, opsConfig(sb, token, "timeouts:\n  idle: 300ms\n"))
		raw := p.rawConn(appAccount)
		start := time.Now()
		code, msg := readServerError(t, raw, 10*time.Second)
		if code != 4031 || !strings.Contains(msg, "timeouts.idle") {
			t.Errorf("idle client got %d %q, want 4031 naming timeouts.idle", code, msg)
		}
		if took := time.Since(start); took < 250*time.Millisecond {
			t.Errorf("idle disconnect after %s, want about 300ms", took)
		}
		p.waitMetric("switchyard_client_connections", nil, "0", func(v float64) bool { return v == 0 })
		checkMetric(t, p.metrics(), "switchyard_errors_total", []string{"code", "4031"}, 1)
		// go-sql-driver reports the error on its next statement.
		c := p.conn(appAccount)
		p.waitMetric("switchyard_client_connections", nil, "0 once the second client timed out too", func(v float64) bool { return v == 0 })
		if _, err := c.ExecContext(context.Background(), "SELECT 1"); mysqlErrorCode(err) != 4031 {
			t.Errorf("a statement on a session closed for inactivity: %v, want error 4031", err)
		}
	})

	t.Run("max_packet_size", func(t *testing.T) {
		p := startProc(t, sb, token, opsConfig(sb, token, "limits:\n  max_packet_size: 1KiB\n"))
		c := p.conn(appAccount)
		execAll(t, c, "SELECT '"+strings.Repeat("x", 900)+"'")
		_, err := c.ExecContext(context.Background(), "SELECT '"+strings.Repeat("x", 2000)+"'")
		if mysqlErrorCode(err) != 1153 || !strings.Contains(err.Error(), "limits.max_packet_size") {
			t.Errorf("a 2 KB statement with limits.max_packet_size 1KiB: %v, want error 1153", err)
		}
		checkMetric(t, p.metrics(), "switchyard_errors_total", []string{"code", "1153"}, 1)
	})
}

// readPacket reads one MySQL packet's payload from nc.
func readPacket(nc net.Conn) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(nc, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, n)
	_, err := io.ReadFull(nc, p)
	return p, err
}
