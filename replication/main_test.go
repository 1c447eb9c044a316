package replication_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

func TestMain(m *testing.M) {
	// The tests' own root and application pools see servers killed under them; the
	// driver would print each broken connection to stderr. (The monitor's connections
	// log through Options.Logger instead.)
	mysql.SetLogger(&mysql.NopLogger{})
	os.Exit(sandboxtest.Main(m, sandbox.Options{}))
}

// Test timings: short enough to keep the package fast, and the figures the assertions
// are expressed in.
const (
	testInterval   = 100 * time.Millisecond
	testTimeout    = time.Second
	testMaxLag     = time.Second
	testMaxBackoff = time.Second
	testHeartbeat  = 50 * time.Millisecond
	testReadmit    = 3
	// schedSlack allows for timers and goroutines running late on a shared two-core
	// machine (load averages above 10 were seen while these tests ran). Bounds that
	// involve waking up at a given time add it; the figures logged are the raw ones.
	schedSlack = 250 * time.Millisecond
	// patience is how long a test waits for a condition before giving up. It is not a
	// bound under test: those are asserted on measured times.
	patience = 15 * time.Second
)

// testOptions returns monitor options for sb with the test timings.
func testOptions(sb *sandbox.Sandbox, heartbeat bool) replication.Options {
	return replication.Options{
		User:         sb.Opts.Monitor.Name,
		Password:     sb.Opts.Monitor.Password,
		Interval:     testInterval,
		Timeout:      testTimeout,
		MaxLag:       testMaxLag,
		ReadmitAfter: testReadmit,
		MaxBackoff:   testMaxBackoff,
		Heartbeat:    replication.HeartbeatOptions{Enabled: heartbeat, Interval: testHeartbeat},
	}
}

// watched is a running monitor and the snapshots its OnChange saw.
type watched struct {
	*replication.Monitor
	mu      sync.Mutex
	changes []*replication.Snapshot
	base    int // changes[:base] came before startMonitor returned
	stalls  *stallWatch
}

// startMonitor runs a monitor over every server of sb until the test ends and waits
// until it is ready and every backend is usable. With the heartbeat on it first grants
// the monitor user what the heartbeat needs.
func startMonitor(t *testing.T, sb *sandbox.Sandbox, opts replication.Options) *watched {
	t.Helper()
	if opts.Heartbeat.Enabled {
		exec(t, sb, sb.Primary, "GRANT CREATE, INSERT, UPDATE ON `switchyard`.* TO "+
			fmt.Sprintf("'%s'@'%%'", sb.Opts.Monitor.Name))
		waitReplicated(t, sb)
	}
	w := runMonitor(t, sb, opts)
	w.waitFor(t, patience, "every backend usable", func(s *replication.Snapshot) bool {
		for _, b := range s.Backends {
			if b.State != replication.Usable {
				return false
			}
		}
		return s.Primary == sb.Primary.Name
	})
	w.mu.Lock()
	w.base = len(w.changes)
	w.mu.Unlock()
	return w
}

// runMonitor runs a monitor over every server of sb until the test ends and waits until
// it is ready.
func runMonitor(t *testing.T, sb *sandbox.Sandbox, opts replication.Options) *watched {
	t.Helper()
	w := &watched{stalls: watchStalls(t)}
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.OnChange = func(s *replication.Snapshot) {
		w.mu.Lock()
		w.changes = append(w.changes, s)
		w.mu.Unlock()
	}
	var backends []replication.Server
	for _, srv := range sb.Servers() {
		backends = append(backends, replication.Server{Name: srv.Name, Addr: srv.Addr()})
	}
	m, err := replication.New(backends, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w.Monitor = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
	})
	select {
	case <-m.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("monitor not ready after 10s: %s", describe(m.Snapshot()))
	}
	return w
}

// waitFor polls the snapshot every 2ms until cond holds and returns it with the time it
// was seen; it fails the test after timeout.
func (w *watched) waitFor(t *testing.T, timeout time.Duration, what string, cond func(*replication.Snapshot) bool) (*replication.Snapshot, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := w.Snapshot()
		if cond(s) {
			return s, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, describe(s))
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a readiness wait
	}
}

// states returns the distinct successive states of backend name across the OnChange
// snapshots since startMonitor returned, starting with its state then.
func (w *watched) states(name string) []replication.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []replication.State
	for _, s := range w.changes[max(0, w.base-1):] {
		if b, ok := s.Backend(name); ok && (len(out) == 0 || out[len(out)-1] != b.State) {
			out = append(out, b.State)
		}
	}
	return out
}

// snapshots returns a copy of the OnChange snapshots so far.
func (w *watched) snapshots() []*replication.Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*replication.Snapshot(nil), w.changes...)
}

func backend(s *replication.Snapshot, name string) replication.BackendStatus {
	b, _ := s.Backend(name)
	return b
}

func state(name string, want replication.State) func(*replication.Snapshot) bool {
	return func(s *replication.Snapshot) bool { return backend(s, name).State == want }
}

// describe summarises a snapshot for failure messages.
func describe(s *replication.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "primary=%q conflict=%v", s.Primary, s.Conflict)
	for _, st := range s.Backends {
		fmt.Fprintf(&b, "\n  %s: %s %s ro=%v lag=%s(%s) io=%s sql=%s checks=%d failures=%d err=%q",
			st.Name, st.Role, st.State, st.ReadOnly, st.Lag, st.LagSource, st.IOThread, st.SQLThread,
			st.Checks, st.Failures, st.LastError)
	}
	return b.String()
}

// exec runs statements as root on srv.
func exec(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server, stmts ...string) {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s on %s: %v", stmt, srv.Name, err)
		}
	}
}

func waitReplicated(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatalf("wait for replicas: %v", err)
	}
}

// keepWriting inserts a row on srv every 20ms until the test ends, so that replicas
// have something to fall behind on. It writes as the application user, who cannot
// bypass read_only (root can), so a demoted server gets no errant transactions.
func keepWriting(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server) {
	t.Helper()
	exec(t, sb, srv, "CREATE DATABASE IF NOT EXISTS switchyard_test",
		"CREATE TABLE IF NOT EXISTS switchyard_test.writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, at_us BIGINT NOT NULL)")
	app := sb.Opts.Users[0]
	db, err := sql.Open("mysql", srv.DSN(app.Name, app.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	write := func() error {
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		defer wcancel()
		// The primary's clock, in Unix microseconds.
		_, err := db.ExecContext(wctx, "INSERT INTO switchyard_test.writes (at_us) "+
			"VALUES (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))")
		return err
	}
	// One write before returning: callers may wait for it to replicate.
	if err := write(); err != nil {
		cancel()
		db.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				write()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; db.Close() })
}

// testWriter sends the monitor's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// stallWatch notices when this process is starved of CPU: it runs a 10ms ticker and keeps
// the worst lateness. On the shared test machines the whole VM was seen to freeze for a
// second or more; no timing bound can hold across that.
type stallWatch struct {
	mu    sync.Mutex
	worst time.Duration
}

func watchStalls(t *testing.T) *stallWatch {
	sw := &stallWatch{}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		const tick = 10 * time.Millisecond
		tk := time.NewTicker(tick)
		defer tk.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			now := time.Now()
			sw.mu.Lock()
			sw.worst = max(sw.worst, now.Sub(last)-tick)
			sw.mu.Unlock()
			last = now
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return sw
}

// timely reports whether this test's timing bounds can be checked: false, with a log
// line, if the process stalled for longer than schedSlack so far. Logic assertions do
// not depend on it.
func (w *watched) timely(t *testing.T) bool {
	t.Helper()
	w.stalls.mu.Lock()
	worst := w.stalls.worst
	w.stalls.mu.Unlock()
	if worst > schedSlack {
		t.Logf("the test process stalled for %s (machine overloaded): timing bounds not checked", worst.Round(time.Millisecond))
		return false
	}
	return true
}
