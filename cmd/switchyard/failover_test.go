package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Automatic failover against real servers: the primary killed, frozen,
// killed with a transaction only it has, killed with a replica gone too (no
// majority), and two Switchyards deciding together. Each test starts its own
// sandbox (two replicas, semi-synchronous replication) and Switchyard with
// failover.mode auto and failover.after 1s.

const failoverToken = "failover-tok-3"

// failoverConfig is opsConfig with roles left to the monitor and automatic
// failover on.
func failoverConfig(sb *sandbox.Sandbox) string {
	cfg := opsConfig(sb, failoverToken, fmt.Sprintf("failover:\n  mode: auto\n  after: 1s\n  user: root\n  password: %q\n"+
		"  replication_user: %q\n  replication_password: %q\n", sb.Opts.RootPassword, sandbox.ReplicationUser, sandbox.ReplicationPassword))
	return strings.ReplaceAll(strings.ReplaceAll(cfg, "    role: primary\n", ""), "    role: replica\n", "")
}

func startFailover(t *testing.T) (*sandbox.Sandbox, *proc) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appAccount, otherAccount}})
	return sb, startProc(t, sb, failoverToken, failoverConfig(sb))
}

// waitNewPrimary waits until Switchyard routes writes to a usable backend
// other than old, and returns it.
func (p *proc) waitNewPrimary(sb *sandbox.Sandbox, old string, within time.Duration) *sandbox.Server {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var bs struct{ Backends []backendView }
		p.getJSON("/api/backends", &bs)
		for _, b := range bs.Backends {
			if b.Role == "primary" && b.Name != old && b.State == "usable" {
				return serverNamed(p.t, sb, b.Name)
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no new primary within %s: %+v", within, bs.Backends)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backendState returns the backend's state and diverged reason in GET /api/backends.
func (p *proc) backendState(name string) (state, diverged string) {
	p.t.Helper()
	var bs struct{ Backends []backendView }
	p.getJSON("/api/backends", &bs)
	for _, b := range bs.Backends {
		if b.Name == name {
			if b.Health != nil {
				diverged = b.Health.Diverged
			}
			return b.State, diverged
		}
	}
	p.t.Fatalf("no backend %s in /api/backends", name)
	return "", ""
}

func serverNamed(t *testing.T, sb *sandbox.Sandbox, name string) *sandbox.Server {
	t.Helper()
	for _, s := range sb.Servers() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no server %s", name)
	return nil
}

// readOnly reads @@read_only on srv as root.
func readOnly(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server) int {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var ro int
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
		t.Fatalf("%s: @@read_only: %v", srv.Name, err)
	}
	return ro
}

// writableSampler counts, as root on every server every few milliseconds,
// the samples in which two servers were writable at once.
type writableSampler struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	double int
	first  time.Time // when two were first seen writable
	last   time.Time
}

func sampleWritable(t *testing.T, sb *sandbox.Sandbox) *writableSampler {
	w := &writableSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := 0
			for _, srv := range sb.Servers() {
				db, err := sb.RootDB(srv)
				if err != nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				var ro int
				if db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro) == nil && ro == 0 {
					n++
				}
				cancel()
			}
			if n > 1 {
				w.mu.Lock()
				if w.double == 0 {
					w.first = time.Now()
				}
				w.double++
				w.last = time.Now()
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *writableSampler) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// result returns the samples with two writable servers and the time from
// the first to the last of them.
func (w *writableSampler) result() (int, time.Duration) {
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.double, w.last.Sub(w.first)
}

// restartOld restarts the old primary (its my.cnf makes it writable) and
// waits until Switchyard has made it read-only and then rejoined it or kept
// it out; it returns "rejoined" or "diverged".
func restartOld(t *testing.T, sb *sandbox.Sandbox, p *proc, old, primary *sandbox.Server) string {
	t.Helper()
	if err := old.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		state, diverged := p.backendState(old.Name)
		switch {
		case diverged != "":
			if readOnly(t, sb, old) != 1 {
				t.Errorf("%s is kept out but writable", old.Name)
			}
			t.Logf("%s kept out: %s", old.Name, diverged)
			return "diverged"
		case state == "usable":
			checkTopology(t, sb, primary)
			return "rejoined"
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s neither rejoined nor kept out within 20s: state %s", old.Name, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailoverKill kills the primary with -9 under writes: a replica is
// promoted, writes resume there, every acknowledged write is on it, reads
// never fail, and the old primary comes back as a replica (or is kept out,
// if the kill left it a transaction no replica received).
func TestFailoverKill(t *testing.T) {
	sb, p := startFailover(t)
	w := startWorkload(t, p, sb, 3)
	waitReplicasUsable(p, sb) // else reads run on the primary, and share its fate
	sampler := sampleWritable(t, sb)
	w.wait(200)
	old := sb.Primary
	killed := time.Now()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	primary := p.waitNewPrimary(sb, old.Name, 20*time.Second)
	promoted := time.Since(killed)
	w.wait(200)
	gap := w.longestGap(killed)
	if id := writeServerID(t, p); id != primary.ServerID {
		t.Errorf("a write after the failover ran on server %d, want %s (%d)", id, primary.Name, primary.ServerID)
	}
	acked, wErrs := checkFailoverLedger(t, w, sb, primary)
	t.Logf("kill -9: %s promoted %s after the kill, writes stopped for %s; %d acknowledged ids all on %s; %d writes failed (in flight)",
		primary.Name, promoted.Round(time.Millisecond), gap.Round(time.Millisecond), acked, primary.Name, wErrs)
	outcome := restartOld(t, sb, p, old, primary)
	double, window := sampler.result()
	t.Logf("old primary %s after its restart: %s; samples with two writable servers: %d over %s", old.Name, outcome, double, window.Round(time.Millisecond))
	checkMetric(t, p.metrics(), "switchyard_failover_events_total", []string{"kind", "failover", "result", "done"}, 1)
}

// TestFailoverFreeze freezes the primary (SIGSTOP): once the replicas have
// lost it too, a replica is promoted and the writes that were waiting on the
// frozen server fail rather than be acknowledged later; when it thaws it is
// made read-only at once.
func TestFailoverFreeze(t *testing.T) {
	sb, p := startFailover(t)
	w := startWorkload(t, p, sb, 3)
	w.wait(200)
	waitReplicasUsable(p, sb) // else reads run on the primary, and share its fate
	old := sb.Primary
	frozen := time.Now()
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Resume() })
	primary := p.waitNewPrimary(sb, old.Name, 30*time.Second)
	promoted := time.Since(frozen)
	w.wait(200)
	gap := w.longestGap(frozen)
	sampler := sampleWritable(t, sb)
	thawed := time.Now()
	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for readOnly(t, sb, old) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still writable 10s after it thawed", old.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fenced := time.Since(thawed)
	w.wait(100)
	acked, wErrs := checkFailoverLedger(t, w, sb, primary)
	double, window := sampler.result()
	t.Logf("SIGSTOP: %s promoted %s after the freeze, writes stopped for %s; %d acknowledged ids all on %s; %d writes failed; old primary read-only %s after it thawed (two writable: %d samples over %s)",
		primary.Name, promoted.Round(time.Millisecond), gap.Round(time.Millisecond), acked, primary.Name, wErrs,
		fenced.Round(time.Millisecond), double, window.Round(time.Millisecond))
}

// TestFailoverDiverged kills a primary that holds a transaction no replica
// received (their I/O threads were stopped, so semi-sync gave up waiting):
// after the failover, the old primary comes back, is made read-only and is
// kept out, reported in /api/backends and the metrics.
func TestFailoverDiverged(t *testing.T) {
	sb, p := startFailover(t)
	d := sb.Dialect()
	setup := p.conn(appAccount)
	execAll(t, setup, "CREATE DATABASE IF NOT EXISTS sw", "CREATE TABLE IF NOT EXISTS sw.only (id INT PRIMARY KEY)")
	if err := sb.WaitReplicated(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, r := range sb.Replicas {
		execRoot(t, sb, r, d.StopIOThread)
	}
	execRoot(t, sb, sb.Primary, "INSERT INTO sw.only VALUES (1)") // waits out the semi-sync timeout
	old := sb.Primary
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, r := range sb.Replicas {
		execRoot(t, sb, r, d.StartIOThread)
	}
	primary := p.waitNewPrimary(sb, old.Name, 20*time.Second)
	if outcome := restartOld(t, sb, p, old, primary); outcome != "diverged" {
		t.Fatalf("the old primary holds a transaction the new one never got, yet it %s", outcome)
	}
	if state, _ := p.backendState(old.Name); state == "usable" {
		t.Errorf("the diverged %s is usable for reads", old.Name)
	}
	m := p.metrics()
	checkMetric(t, m, "switchyard_backend_diverged", []string{"backend", old.Name}, 1)
	checkMetric(t, m, "switchyard_failover_events_total", []string{"kind", "diverged", "result", "done"}, 1)
	p.waitLogged("ERROR", "server kept out: it holds transactions the primary never got", 1)
}

// TestFailoverNeedsMajority kills the primary and freezes a replica: this
// Switchyard reaches one server of three and must not promote it. When the
// frozen replica thaws, it has a majority and fails over.
func TestFailoverNeedsMajority(t *testing.T) {
	sb, p := startFailover(t)
	old, lone, other := sb.Primary, sb.Replicas[0], sb.Replicas[1]
	if err := other.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Resume() })
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	// Well past failover.after (1s) and the probes' timeout (1s).
	p.waitMetric("switchyard_failover_events_total", []string{"kind", "failover", "result", "error"}, "at least 1", func(v float64) bool { return v >= 1 })
	time.Sleep(3 * time.Second)
	if readOnly(t, sb, lone) != 1 {
		t.Fatalf("%s was promoted with only one server of three reachable", lone.Name)
	}
	if !strings.Contains(p.logs.String(), "not held on a majority") {
		t.Errorf("no log line says the lock was not held on a majority")
	}
	if err := other.Resume(); err != nil {
		t.Fatal(err)
	}
	primary := p.waitNewPrimary(sb, old.Name, 30*time.Second)
	t.Logf("with a majority back, %s was promoted", primary.Name)
}

// TestFailoverTwoSwitchyards runs two Switchyards over the same servers, as
// the stack runs one per application server: when the primary dies exactly
// one promotes, and both send writes to the same new primary.
func TestFailoverTwoSwitchyards(t *testing.T) {
	sb, a := startFailover(t)
	b := startProc(t, sb, failoverToken, failoverConfig(sb))
	old := sb.Primary
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	pa := a.waitNewPrimary(sb, old.Name, 20*time.Second)
	pb := b.waitNewPrimary(sb, old.Name, 20*time.Second)
	if pa != pb {
		t.Fatalf("the two Switchyards follow different primaries: %s and %s", pa.Name, pb.Name)
	}
	time.Sleep(2 * time.Second) // a second promotion would come now
	done := 0
	for _, p := range []*proc{a, b} {
		done += strings.Count(p.logs.String(), `"msg":"failover done"`)
	}
	if done != 1 {
		t.Errorf("%d failovers done across two Switchyards, want exactly 1", done)
	}
	writable := 0
	for _, s := range sb.Servers() {
		if s != old && readOnly(t, sb, s) == 0 {
			writable++
		}
	}
	if writable != 1 {
		t.Errorf("%d writable servers after the failover, want 1", writable)
	}
	for _, p := range []*proc{a, b} {
		if code, body := p.request("GET", "/api/backends"); code != http.StatusOK {
			t.Fatalf("GET /api/backends: %d %s", code, body)
		}
	}
}

// TestFailoverAsync kills the primary under writes with semi-synchronous
// replication off: the failover works the same, and the ledger says how
// many acknowledged writes the replicas never received (the README's
// figure for what asynchronous replication risks).
func TestFailoverAsync(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appAccount, otherAccount}, Async: true})
	p := startProc(t, sb, failoverToken, failoverConfig(sb))
	w := startWorkload(t, p, sb, 3)
	w.wait(200)
	waitReplicasUsable(p, sb) // else reads run on the primary, and share its fate
	old := sb.Primary
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	primary := p.waitNewPrimary(sb, old.Name, 20*time.Second)
	w.wait(100)
	db, err := sb.RootDB(primary)
	if err != nil {
		t.Fatal(err)
	}
	missing, acked := w.missing(db)
	t.Logf("asynchronous replication, kill -9 under 3 writers: %d of %d acknowledged ids missing on %s", missing, acked, primary.Name)
}

// TestFailoverDuringSwitchover kills the primary while a switchover waits
// for a transaction to finish on it: the switchover fails without
// promoting anything, then automatic failover promotes a replica, and no
// acknowledged write is lost.
func TestFailoverDuringSwitchover(t *testing.T) {
	sb, p := startFailover(t)
	w := startWorkload(t, p, sb, 2)
	waitReplicasUsable(p, sb)
	w.wait(100)
	// An open transaction holds the switchover in its first step.
	c := p.conn(appAccount)
	tx, err := c.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO sw.ledger VALUES (-2, -2)"); err != nil {
		t.Fatal(err)
	}
	answer := make(chan switchoverAnswer, 1)
	go func() {
		// A busy machine may find both replicas lagging for a moment: a
		// refusal for that is asked again.
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := p.requestAs("POST", "/api/switchover", p.token)
			var ans switchoverAnswer
			if err := json.Unmarshal(body, &ans); err != nil {
				ans.Error = fmt.Sprintf("%d %s", code, body)
			}
			if ans.Status != "refused" || !strings.Contains(ans.Error, "no usable replica") || time.Now().After(deadline) {
				answer <- ans
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for deadline := time.Now().Add(25 * time.Second); !strings.Contains(p.logs.String(), `"msg":"switchover starting"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no switchover started: %+v", <-answer)
		}
		time.Sleep(10 * time.Millisecond)
	}
	old := sb.Primary
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Error("a transaction on the killed primary committed")
	}
	ans := <-answer
	if ans.Status == "done" {
		t.Fatalf("the switchover says done with its primary killed: %+v", ans)
	}
	t.Logf("switchover with the primary killed half-way: %s: %s", ans.Status, ans.Error)
	primary := p.waitNewPrimary(sb, old.Name, 30*time.Second)
	w.wait(100)
	// The failover waits for the switchover to give up first: longer than
	// a statement for the primary waits for a new one, so reads on the
	// primary may fail here as writes may.
	w.primaryReadsMayFail = true
	acked, wErrs := checkFailoverLedger(t, w, sb, primary)
	t.Logf("then failover to %s: %d acknowledged ids all there, %d writes and %d reads on the primary failed", primary.Name, acked, wErrs, len(w.pErrs))
}

// TestFailoverNetworkCut cuts the primary off the network (iptables drops
// every packet to and from its port: Switchyard and the replicas lose it,
// the server runs on): a replica is promoted; when the network heals the
// old primary, still writable, is made read-only at once.
func TestFailoverNetworkCut(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables: ./scripts/deps.sh installs it")
	}
	sb, p := startFailover(t)
	w := startWorkload(t, p, sb, 3)
	w.wait(200)
	waitReplicasUsable(p, sb) // else reads run on the primary, and share its fate
	old := sb.Primary
	port := fmt.Sprint(old.Port)
	rules := [][]string{
		{"INPUT", "-i", "lo", "-p", "tcp", "--dport", port, "-j", "DROP"},
		{"OUTPUT", "-o", "lo", "-p", "tcp", "--sport", port, "-j", "DROP"},
	}
	heal := func() {
		for _, r := range rules {
			_ = exec.Command("iptables", append([]string{"-w", "-D"}, r...)...).Run()
		}
	}
	t.Cleanup(heal)
	cut := time.Now()
	for _, r := range rules {
		if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, r...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables -I %v: %v\n%s", r, err, out)
		}
	}
	primary := p.waitNewPrimary(sb, old.Name, 30*time.Second)
	promoted := time.Since(cut)
	w.wait(200)
	gap := w.longestGap(cut)
	healed := time.Now()
	heal()
	deadline := time.Now().Add(15 * time.Second)
	for readOnly(t, sb, old) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still writable 15s after the network healed", old.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fenced := time.Since(healed)
	acked, wErrs := checkFailoverLedger(t, w, sb, primary)
	t.Logf("network cut: %s promoted %s after the cut, writes stopped for %s; %d acknowledged ids all on %s; %d writes failed; old primary read-only %s after the network healed",
		primary.Name, promoted.Round(time.Millisecond), gap.Round(time.Millisecond), acked, primary.Name, wErrs, fenced.Round(time.Millisecond))
}

// checkFailoverLedger checks the ledger on the new primary (every
// acknowledged id there) and that no read failed; it returns the
// acknowledged ids and the failed writes for the log.
func checkFailoverLedger(t *testing.T, w *workload, sb *sandbox.Sandbox, primary *sandbox.Server) (acked, writeErrors int) {
	t.Helper()
	db, err := sb.RootDB(primary)
	if err != nil {
		t.Fatal(err)
	}
	acked, writeErrors, readErrors := w.checkLedger(db, primary.Name)
	if readErrors > 0 {
		t.Errorf("%d reads failed during the failover: %s", readErrors, w.readErrors())
	}
	return acked, writeErrors
}

// waitReplicasUsable waits until Switchyard reads from every replica: a busy
// machine may find them lagging at first.
func waitReplicasUsable(p *proc, sb *sandbox.Sandbox) {
	p.t.Helper()
	for _, r := range sb.Replicas {
		p.waitUsable(r.Name)
	}
}

// execRoot runs q as root on srv.
func execRoot(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server, q string) {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %s: %v", srv.Name, q, err)
	}
}
