package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// proxyConfig is what a test may change in a generated switchyard config.
type proxyConfig struct {
	TLSMode string // off, optional or required
	// Users are written to the users: section. By default: app and other with
	// their cleartext passwords, hashed with its password_hash.
	Users []configUser
	// RSAKey is the rsa_key file; by default the shared test key.
	RSAKey string
	// Extra is appended to the YAML document verbatim (top-level keys).
	Extra string
}

type configUser struct {
	Name, Password, PasswordHash string
}

// switchyard is a running switchyard process.
type switchyard struct {
	Addr string // host:port of the SQL listener
	Host string
	Port int
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// Pid returns the process id.
func (s *switchyard) Pid() int { return s.cmd.Process.Pid }

// Log returns what the process has written to stderr so far.
func (s *switchyard) Log() string { return s.log.String() }

// startSwitchyard writes a config for sb (primary and replicas as backends,
// admin API off), applies tweak, starts the binary and waits until it greets
// clients. The process is stopped with SIGTERM when the test ends, and must
// exit with status 0 within its drain timeout.
func startSwitchyard(t testing.TB, sb *sandbox.Sandbox, tweak func(*proxyConfig)) *switchyard {
	t.Helper()
	p := testPKI(t)
	pc := proxyConfig{
		TLSMode: "optional",
		Users: []configUser{
			{Name: appUser.Name, Password: appUser.Password},
			{Name: otherUser.Name, Password: otherUser.Password},
			{Name: hashedUser.Name, PasswordHash: nativeHash(hashedUser.Password)},
		},
		RSAKey: p.RSAKeyFile,
	}
	if tweak != nil {
		tweak(&pc)
	}
	port := freePort(t)
	return runSwitchyard(t, port, renderConfig(sb, pc, port))
}

// runSwitchyard starts the switchyard binary on port with the configuration
// cfg and waits for its greeting; it is stopped when the test ends.
func runSwitchyard(t testing.TB, port int, cfg string) *switchyard {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &switchyard{
		Host: "127.0.0.1",
		Port: port,
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		log:  &syncBuffer{},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(switchyardBin, "-config", cfgFile)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start switchyard: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	if err := s.waitGreeting(15 * time.Second); err != nil {
		t.Fatalf("switchyard did not start: %v\nconfig:\n%s\nlog:\n%s", err, cfg, s.Log())
	}
	return s
}

// waitGreeting polls until the listener sends a MySQL greeting.
func (s *switchyard) waitGreeting(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("process exited: %v", s.err)
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			// Read the whole greeting, so that closing sends a FIN rather
			// than a reset for unread data.
			hdr := make([]byte, 4)
			_, err = readFull(c, hdr)
			var payload []byte
			if err == nil {
				payload = make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
				_, err = readFull(c, payload)
			}
			c.Close()
			if err == nil && len(payload) > 0 && payload[0] == 10 {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("greeting is not protocol version 10: % x", payload[:min(len(payload), 8)])
			}
		}
		last = err
		select {
		case <-s.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no greeting on %s within %s: %v", s.Addr, timeout, last)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// stop sends SIGTERM and waits for a clean exit.
func (s *switchyard) stop(t testing.TB) {
	select {
	case <-s.done:
		t.Errorf("switchyard exited before the test ended: %v\nlog:\n%s", s.err, s.Log())
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("switchyard exited with %v after SIGTERM\nlog:\n%s", s.err, s.Log())
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("switchyard did not exit within 15s of SIGTERM; killed\nlog:\n%s", s.Log())
	}
	if t.Failed() && testing.Verbose() {
		t.Logf("switchyard log:\n%s", tail(s.Log(), 40))
	}
}

// renderConfig writes the YAML config for sb.
func renderConfig(sb *sandbox.Sandbox, pc proxyConfig, port int) string {
	var b strings.Builder
	p := pkiVal
	fmt.Fprintf(&b, "listen: %q\n", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	fmt.Fprintf(&b, "tls:\n  mode: %q\n", pc.TLSMode)
	if pc.TLSMode != "off" {
		fmt.Fprintf(&b, "  cert: %q\n  key: %q\n", p.CertFile, p.KeyFile)
	}
	fmt.Fprintf(&b, "rsa_key: %q\n", pc.RSAKey)
	b.WriteString("users:\n")
	for _, u := range pc.Users {
		fmt.Fprintf(&b, "  - name: %q\n", u.Name)
		if u.PasswordHash != "" {
			fmt.Fprintf(&b, "    password_hash: %q\n", u.PasswordHash)
		} else {
			fmt.Fprintf(&b, "    password: %q\n", u.Password)
		}
	}
	b.WriteString("backends:\n")
	for _, srv := range sb.Servers() {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    role: %s\n", srv.Name, srv.Addr(), srv.Role)
	}
	fmt.Fprintf(&b, "monitor:\n  user: %q\n  password: %q\n", sb.Opts.Monitor.Name, sb.Opts.Monitor.Password)
	// Transcripts are compared with the primary's: a long session window
	// keeps a session's reads on the primary once it has written, so that
	// they see its writes whatever the replicas' lag. Sessions that only
	// read still read from replicas.
	b.WriteString("routing:\n  consistency: session\n  session_window: 1h\n")
	b.WriteString("admin:\n  listen: \"\"\n")
	b.WriteString("timeouts:\n  drain: 3s\n")
	b.WriteString("log:\n  level: info\n")
	b.WriteString(pc.Extra)
	return b.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
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
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procStatus reads a "kB" field such as VmRSS or VmHWM from /proc/PID/status,
// in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: odd %s line %q", pid, field, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	return 0, errors.New("no " + field + " in /proc/" + strconv.Itoa(pid) + "/status")
}
