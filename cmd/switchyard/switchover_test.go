package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestSwitchover moves the primary to a replica with `switchyard
// switchover` and back with POST /api/switchover, while clients write
// (autocommit inserts and two-row transactions) and read through
// Switchyard. No client sees an error; every acknowledged id is on the
// primary afterwards, once; writes after the first switchover run on the
// new primary (by @@server_id); every server replicates from the primary
// again at the end.
func TestSwitchover(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appAccount, otherAccount}})
	const token = "switch-tok-5"
	cfg := opsConfig(sb, token, fmt.Sprintf("failover:\n  user: root\n  password: %q\n  replication_user: %q\n  replication_password: %q\n",
		sb.Opts.RootPassword, sandbox.ReplicationUser, sandbox.ReplicationPassword))
	// The monitor elects the primary from read_only: a pinned role would
	// refuse the switchover.
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "    role: primary\n", ""), "    role: replica\n", "")
	p := startProc(t, sb, token, cfg)

	// Refused: nothing changes.
	code, body := p.request("POST", "/api/switchover?target=nosuch")
	if code != http.StatusConflict || !strings.Contains(string(body), `"refused"`) || !strings.Contains(string(body), `unknown backend \"nosuch\"`) {
		t.Errorf("switchover to an unknown backend: %d %s, want 409 refused", code, body)
	}

	w := startWorkload(t, p, sb, 3)
	for _, r := range sb.Replicas {
		p.waitUsable(r.Name) // a busy machine may find them lagging at first
	}
	w.wait(100)

	// 1. From the command line, to the replica that has applied the most.
	var out []byte
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		out, err = exec.Command(binary, "switchover", "-config", p.cfgPath, "-admin", strings.TrimPrefix(p.admin, "http://")).CombinedOutput()
		if !lagRefusal(string(out)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // a busy machine: a replica lagging for a moment
	}
	if err != nil {
		t.Fatalf("switchyard switchover: %v\n%s", err, out)
	}
	t.Logf("switchyard switchover:\n%s", out)
	var to *sandbox.Server
	for _, r := range sb.Replicas {
		if strings.Contains(string(out), fmt.Sprintf("primary moved from %s to %s;", sb.Primary.Name, r.Name)) {
			to = r
		}
	}
	if to == nil {
		t.Fatalf("switchyard switchover printed no move from %s to a replica:\n%s", sb.Primary.Name, out)
	}
	w.wait(100)
	if id := writeServerID(t, p); id != to.ServerID {
		t.Errorf("a write after the switchover ran on server %d, want the new primary %s (%d)", id, to.Name, to.ServerID)
	}
	checkTopology(t, sb, to)

	// 2. Back to the first primary, through the API, once it is a usable
	// replica (readmitted after monitor.readmit_after good checks).
	p.waitUsable(sb.Primary.Name)
	code, body = switchoverTo(p, sb.Primary.Name)
	var ans switchoverAnswer
	if err := json.Unmarshal(body, &ans); code != http.StatusOK || err != nil || ans.Status != "done" || ans.Report.To != sb.Primary.Name {
		t.Fatalf("POST /api/switchover?target=%s: %d %s", sb.Primary.Name, code, body)
	}
	t.Logf("back to %s: writes held %s, steps %+v", sb.Primary.Name, ans.Report.WritesHeld, ans.Report.Steps)
	if len(ans.Report.NotRepointed) != 0 || len(ans.Report.Repointed) != 2 {
		t.Errorf("repointed %v, not repointed %v; want both others repointed", ans.Report.Repointed, ans.Report.NotRepointed)
	}
	w.wait(100)

	checkTopology(t, sb, sb.Primary)
	if err := sb.WaitReplicated(t.Context()); err != nil {
		t.Errorf("replication after two switchovers: %v", err)
	}
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	acked, wErrs, rErrs := w.checkLedger(db, sb.Primary.Name)
	if wErrs+rErrs > 0 {
		t.Errorf("clients saw %d write and %d read errors across two switchovers: %s", wErrs, rErrs, w.lastErrors())
	}
	t.Logf("%d acknowledged ids across two switchovers, all on the primary", acked)
	m := p.metrics()
	checkMetric(t, m, "switchyard_switchovers_total", []string{"result", "done"}, 2)
	checkMetric(t, m, "switchyard_switchovers_total", []string{"result", "refused"}, 1)
}

// lagRefusal reports a switchover refused because replicas lag, which a
// busy machine causes for a moment now and then.
func lagRefusal(answer string) bool {
	return strings.Contains(answer, "no usable replica") || strings.Contains(answer, "it is lagging")
}

// switchoverTo asks p for a switchover to target, again while the refusal
// is a replica lagging for a moment.
func switchoverTo(p *proc, target string) (int, []byte) {
	p.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, body := p.request("POST", "/api/switchover?target="+target)
		if code != http.StatusConflict || !lagRefusal(string(body)) || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeServerID runs a write and SELECT @@server_id in one transaction
// through p: the server that takes writes.
func writeServerID(t *testing.T, p *proc) int {
	t.Helper()
	c := p.conn(appAccount)
	defer c.Close()
	tx, err := c.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO sw.ledger VALUES (-1, -1)"); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := tx.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id // rolled back
}

// waitUsable waits until GET /api/backends shows the backend named usable.
func (p *proc) waitUsable(name string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var bs struct{ Backends []backendView }
		p.getJSON("/api/backends", &bs)
		for _, b := range bs.Backends {
			if b.Name == name && b.State == "usable" {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not usable within 15s: %+v", name, bs.Backends)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkTopology checks, as root on each server, that primary is writable
// and every other server read-only and replicating from it.
func checkTopology(t *testing.T, sb *sandbox.Sandbox, primary *sandbox.Server) {
	t.Helper()
	d := sb.Dialect()
	for _, srv := range sb.Servers() {
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var ro int
		if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
			t.Fatal(err)
		}
		status := replicaStatus(t, db, d.ReplicaStatus)
		switch {
		case srv == primary && (ro != 0 || len(status) != 0):
			t.Errorf("%s, the primary: read_only %d, replica status %v; want writable and not replicating", srv.Name, ro, status)
		case srv != primary && ro != 1:
			t.Errorf("%s: read_only %d, want 1", srv.Name, ro)
		case srv != primary && (status["Master_Port"]+status["Source_Port"] != fmt.Sprint(primary.Port) || status[d.IORunning] == "No" || status[d.SQLRunning] != "Yes"):
			t.Errorf("%s does not replicate from %s (port %d): %v", srv.Name, primary.Name, primary.Port, status)
		}
	}
}

// replicaStatus returns SHOW REPLICA STATUS's row as text, or nil.
func replicaStatus(t *testing.T, db *sql.DB, q string) map[string]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return nil
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m
}

// TestSwitchoverSeenByAnotherSwitchyard runs a switchover through one
// Switchyard while clients write through another, as the stack's two do:
// the other one's autocommit writes that reach the demoted primary are
// refused before they run, wait for the new primary and run there, so its
// clients see no error, and its writes land on the new primary. (A
// transaction open there on the old primary gets the server's read-only
// error: the other Switchyard does not hold writes.)
func TestSwitchoverSeenByAnotherSwitchyard(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appAccount, otherAccount}})
	a, b := startProc(t, sb, failoverToken, failoverConfig(sb)), startProc(t, sb, failoverToken, failoverConfig(sb))
	w := startWorkloadOf(t, b, sb, 3, false)
	for _, r := range sb.Replicas {
		a.waitUsable(r.Name)
	}
	w.wait(100)
	code, body := switchoverTo(a, sb.Replicas[0].Name)
	if code != http.StatusOK {
		t.Fatalf("POST /api/switchover: %d %s", code, body)
	}
	var ans switchoverAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Report == nil {
		t.Fatalf("switchover answer %s: %v", body, err)
	}
	// The other Switchyard held its writes too: none of its transactions
	// was open on the old primary when it turned read-only.
	if ans.Report.PeersHeld != 1 {
		t.Errorf("%d other Switchyards held their writes, want 1", ans.Report.PeersHeld)
	}
	to := sb.Replicas[0]
	w.wait(200)
	if id := writeServerID(t, b); id != to.ServerID {
		t.Errorf("a write through the other Switchyard ran on server %d, want the new primary %d", id, to.ServerID)
	}
	db, err := sb.RootDB(to)
	if err != nil {
		t.Fatal(err)
	}
	acked, wErrs, rErrs := w.checkLedger(db, to.Name)
	if wErrs+rErrs > 0 {
		t.Errorf("clients of the other Switchyard saw %d write and %d read errors: %s", wErrs, rErrs, w.lastErrors())
	}
	t.Logf("switchover through one Switchyard, %d writes (two in three in transactions) through the other, all on %s; writes held %s",
		acked, to.Name, ans.Report.WritesHeld)
}
