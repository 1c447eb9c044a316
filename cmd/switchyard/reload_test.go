package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestReloadWhileClientsRun reloads a good file through the API, a bad one
// through SIGHUP and a good one again, while clients keep running reads,
// writes and transactions on sessions that must survive all of it.
func TestReloadWhileClientsRun(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "reload-tok-77"
	primary, replica := sb.Primary, sb.Replicas[0]
	// Only app at first; eventual consistency so that reads spread.
	base := opsConfig(sb, token, "routing:\n  consistency: eventual\n")
	onlyApp := strings.Replace(base, fmt.Sprintf("  - name: other\n    password: %q\n", otherAccount.Password), "", 1)
	if onlyApp == base {
		t.Fatal("could not remove user other from the config")
	}
	p := startProc(t, sb, token, onlyApp)

	setup := p.conn(appAccount)
	execAll(t, setup, "CREATE DATABASE IF NOT EXISTS opsr", "DROP TABLE IF EXISTS opsr.t",
		"CREATE TABLE opsr.t (id INT AUTO_INCREMENT PRIMARY KEY, worker INT, n INT)")
	// The workers read on other sessions, from the replica (eventual
	// consistency): it must have the table first.
	if err := sb.WaitReplicated(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.connErr(otherAccount); mysqlErrorCode(err) != 1045 {
		t.Fatalf("connect as other before the reload: %v, want 1045", err)
	}

	// Workers: each on one session for the whole test.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		ops     atomic.Int64
		errsMu  sync.Mutex
		errs    []string
		workers = 4
	)
	for w := range workers {
		// A pinned *sql.Conn never reconnects behind the test's back: a
		// dropped session shows up as an error.
		c := p.conn(appAccount)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				errsMu.Lock()
				errs = append(errs, fmt.Sprintf("worker %d: %v", w, err))
				errsMu.Unlock()
			}
			ctx := context.Background()
			for i := 0; !stop.Load(); i++ {
				var err error
				switch i % 3 {
				case 0:
					var n int
					err = c.QueryRowContext(ctx, "SELECT COUNT(*) FROM opsr.t").Scan(&n)
				case 1:
					_, err = c.ExecContext(ctx, "INSERT INTO opsr.t (worker, n) VALUES (?, ?)", w, i)
				case 2:
					err = txn(ctx, c, w, i)
				}
				if err != nil {
					fail(err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	waitOps := func(n int64) {
		t.Helper()
		target := ops.Load() + n
		deadline := time.Now().Add(15 * time.Second)
		for ops.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("clients made no progress: %d operations", ops.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOps(50)

	// 1. A good file through the API: user other added, replica weight 0
	// (no reads), a global connection limit.
	good := strings.Replace(base, "role: replica\n", "role: replica\n    weight: 0\n", 1) + "limits:\n  max_connections: 500\n"
	p.writeConfig(good)
	code, body := p.request("POST", "/api/reload")
	if code != http.StatusOK {
		t.Fatalf("POST /api/reload with a good file: %d %s", code, body)
	}
	var res struct {
		Status   string
		Users    int
		Backends int
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Status != "reloaded" || res.Users != 2 || res.Backends != 2 {
		t.Errorf("reload answer %s, want reloaded with 2 users and 2 backends", body)
	}
	other := p.conn(otherAccount) // the new user logs in
	for range 3 {
		if id := serverID(t, other); id != primary.ServerID {
			t.Errorf("with replica weight 0, a read ran on server %d, want the primary (%d)", id, primary.ServerID)
		}
	}
	var bs struct{ Backends []backendView }
	p.getJSON("/api/backends", &bs)
	for _, b := range bs.Backends {
		if b.Name == replica.Name && b.Weight != 0 {
			t.Errorf("GET /api/backends: %s weight %d after reload, want 0", b.Name, b.Weight)
		}
	}
	waitOps(50)

	// 2. A bad file through SIGHUP: rejected, old config stays.
	bad := strings.Replace(good, "weight: 0", "weight: -3", 1) + "pool:\n  max_open: 0\n"
	p.writeConfig(bad)
	p.signal(syscall.SIGHUP)
	var st statusView
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.getJSON("/api/status", &st)
		if st.LastReload != nil && st.LastReload.Trigger == "signal" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload by signal reported within 10s: %+v", st.LastReload)
		}
		time.Sleep(20 * time.Millisecond)
	}
	problems := strings.Join(st.LastReload.Errors, "\n")
	if st.LastReload.OK || !strings.Contains(problems, "backends[1].weight") || !strings.Contains(problems, "pool.max_open") {
		t.Errorf("last reload = %+v, want a failure naming backends[1].weight and pool.max_open", st.LastReload)
	}
	var cfgView struct {
		LastReload *reloadResult `json:"last_reload"`
		Config     struct {
			Backends []struct {
				Name   string
				Weight int
			}
		}
	}
	p.getJSON("/api/config", &cfgView)
	if cfgView.LastReload == nil || cfgView.LastReload.OK {
		t.Errorf("GET /api/config last_reload = %+v, want the failure", cfgView.LastReload)
	}
	for _, b := range cfgView.Config.Backends {
		if b.Name == replica.Name && b.Weight != 0 {
			t.Errorf("running config after a rejected reload: %s weight %d, want 0 (unchanged)", b.Name, b.Weight)
		}
	}
	m := p.metrics()
	checkMetric(t, m, "switchyard_config_reloads_total", []string{"result", "success"}, 1)
	checkMetric(t, m, "switchyard_config_reloads_total", []string{"result", "failure"}, 1)
	checkMetric(t, m, "switchyard_config_last_reload_success", nil, 0)
	p.waitLogged("ERROR", "configuration reload failed; the running configuration stays in force", 1)
	if _, err := p.connErr(otherAccount); err != nil {
		t.Errorf("connect as other after the rejected reload: %v", err)
	}
	waitOps(50)

	// 3. The original file again through SIGHUP: user other is gone for new
	// logins, while its open session goes on.
	p.writeConfig(onlyApp)
	p.signal(syscall.SIGHUP)
	p.waitMetric("switchyard_config_reloads_total", []string{"result", "success"}, "2", func(v float64) bool { return v == 2 })
	checkMetric(t, p.metrics(), "switchyard_config_last_reload_success", nil, 1)
	if _, err := p.connErr(otherAccount); mysqlErrorCode(err) != 1045 {
		t.Errorf("connect as other after it was removed: %v, want 1045", err)
	}
	if id := serverID(t, other); id != primary.ServerID && id != replica.ServerID {
		t.Errorf("the session of the removed user stopped working: server %d", id)
	}
	waitOps(50)

	stop.Store(true)
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("clients saw %d errors during reloads:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	var rows int
	if err := setup.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM opsr.t").Scan(&rows); err != nil || rows == 0 {
		t.Errorf("rows written: %d, %v", rows, err)
	}
	t.Logf("%d client operations across three reloads, no errors", ops.Load())
	p.waitLogged("INFO", "configuration reloaded", 2)
}

// txn runs a small read-write transaction on c.
func txn(ctx context.Context, c *sql.Conn, w, i int) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO opsr.t (worker, n) VALUES (?, ?)", w, -i); err != nil {
		tx.Rollback()
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM opsr.t WHERE worker = ?", w).Scan(&n); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
