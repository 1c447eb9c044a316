package apps

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// routing is one routing configuration the applications run under.
type routing struct {
	Name string
	// Defaults leaves the routing section out of the config, so that the
	// documented defaults apply: causal consistency, a 1s window and
	// implicit_transactions primary (the fields below must say the same).
	Defaults      bool
	Consistency   string // eventual, session or causal
	SessionWindow time.Duration
	Implicit      string // implicit_transactions: primary or lazy
	// Stalled stops the replicas' SQL threads while the application writes,
	// so that any read of the session's own writes that reaches a replica is
	// stale: read-your-writes must hold by routing alone.
	Stalled bool
}

var routings = []routing{
	{Name: "defaults", Defaults: true, Consistency: "causal", SessionWindow: time.Second, Implicit: "primary"},
	{Name: "lazy", Consistency: "session", SessionWindow: time.Second, Implicit: "lazy"},
	// A window no pause of a loaded machine reaches, so that every read after
	// a write belongs on the primary.
	{Name: "stalled", Consistency: "session", SessionWindow: time.Minute, Implicit: "lazy", Stalled: true},
	// Causal reads with replicas that never catch up: every read of the
	// session's own writes must end up on the primary, by GTID alone.
	{Name: "causal_stalled", Consistency: "causal", SessionWindow: time.Second, Implicit: "lazy", Stalled: true},
}

// yaml renders the routing section.
func (r routing) yaml() string {
	if r.Defaults {
		return ""
	}
	return fmt.Sprintf("routing:\n  consistency: %s\n  session_window: %s\n  implicit_transactions: %s\n",
		r.Consistency, r.SessionWindow, r.Implicit)
}

// switchyard is a running switchyard process.
type switchyard struct {
	Addr string // host:port of the SQL listener
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

var listeningRE = regexp.MustCompile(`msg="switchyard listening" addr=(\S+)`)

// startSwitchyard starts switchyard in front of sb with routing r, listening
// on a port it picks itself, and stops it (SIGTERM, expecting a clean exit)
// when the test ends.
func startSwitchyard(t *testing.T, sb *sandbox.Sandbox, r routing) *switchyard {
	t.Helper()
	cfg := renderConfig(sb, r)
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &switchyard{log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(switchyardBin, "-config", file)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start switchyard: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.Now().Add(15 * time.Second)
	for s.Addr == "" {
		if m := listeningRE.FindStringSubmatch(s.log.String()); m != nil {
			s.Addr = m[1]
			break
		}
		select {
		case <-s.done:
			t.Fatalf("switchyard exited at start: %v\nconfig:\n%s\nlog:\n%s", s.err, cfg, s.log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard did not listen within 15s\nconfig:\n%s\nlog:\n%s", cfg, s.log)
		}
	}
	s.waitReplicas(sb)
	return s
}

// waitReplicas waits, up to 10s, until the monitor has found every replica
// usable: a busy machine may find them lagging at first, and reads then run
// on the primary. A test that stopped a replica goes on after the 10s.
func (s *switchyard) waitReplicas(sb *sandbox.Sandbox) {
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range sb.Replicas {
		usable := regexp.MustCompile(`backend=` + regexp.QuoteMeta(r.Name) + ` state=usable|msg="backend readmitted" component=replication backend=` + regexp.QuoteMeta(r.Name) + ` `)
		for !usable.MatchString(s.log.String()) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *switchyard) stop(t *testing.T) {
	select {
	case <-s.done:
		t.Errorf("switchyard exited before the test ended: %v\nlog:\n%s", s.err, s.log)
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("switchyard exited with %v after SIGTERM\nlog:\n%s", s.err, s.log)
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("switchyard did not exit within 15s of SIGTERM; killed\nlog:\n%s", s.log)
	}
	if t.Failed() {
		t.Logf("switchyard log:\n%s", tail(s.log.String(), 40))
	}
}

// hostPort splits Addr.
func (s *switchyard) hostPort(t *testing.T) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatalf("switchyard address %q: %v", s.Addr, err)
	}
	return host, port
}

// renderConfig writes the config: every server of sb as a backend with its
// role fixed, the app user, no admin listener.
func renderConfig(sb *sandbox.Sandbox, r routing) string {
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\n")
	fmt.Fprintf(&b, "users:\n  - name: %q\n    password: %q\n", appUser.Name, appUser.Password)
	b.WriteString("backends:\n")
	for _, srv := range sb.Servers() {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    role: %s\n", srv.Name, srv.Addr(), srv.Role)
	}
	// The monitor probes once at start and then rarely: its probes are
	// SELECTs too, and the tests count SELECTs on each server.
	fmt.Fprintf(&b, "monitor:\n  user: %q\n  password: %q\n  interval: 1h\n", sb.Opts.Monitor.Name, sb.Opts.Monitor.Password)
	b.WriteString("admin:\n  listen: \"\"\n")
	b.WriteString("timeouts:\n  drain: 3s\n")
	b.WriteString(r.yaml())
	b.WriteString("log:\n  level: info\n")
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
