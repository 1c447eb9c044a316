package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/client"
	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// proc is a switchyard process started by a test, with its config file, its
// JSON log and the addresses it listens on (both ":0" in the config, read
// back from the log).
type proc struct {
	t       *testing.T
	sb      *sandbox.Sandbox
	cfgPath string
	token   string
	cmd     *exec.Cmd
	logs    *lockedBuffer
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done
	sqlAddr string
	admin   string // admin API base URL, "http://host:port"
}

// opsConfig renders a configuration for sb with both accounts, the admin API
// on a free loopback port with token, and extra appended (top-level YAML).
func opsConfig(sb *sandbox.Sandbox, token, extra string) string {
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\nusers:\n")
	for _, u := range []sandbox.User{appAccount, otherAccount} {
		fmt.Fprintf(&b, "  - name: %s\n    password: %q\n", u.Name, u.Password)
	}
	b.WriteString("backends:\n")
	for _, srv := range sb.Servers() {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    role: %s\n", srv.Name, srv.Addr(), srv.Role)
	}
	fmt.Fprintf(&b, "monitor:\n  user: %q\n  password: %q\n", sb.Opts.Monitor.Name, sb.Opts.Monitor.Password)
	fmt.Fprintf(&b, "admin:\n  listen: \"127.0.0.1:0\"\n  token: %q\n", token)
	b.WriteString("log:\n  format: json\n  level: info\n")
	b.WriteString(extra)
	return b.String()
}

// startProc writes cfg to a file, starts the binary on it and waits until
// both listeners are up. The process gets SIGTERM when the test ends and
// must exit 0; its log must not contain any password or the token.
func startProc(t *testing.T, sb *sandbox.Sandbox, token, cfg string) *proc {
	t.Helper()
	p := &proc{t: t, sb: sb, token: token, logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cfgPath = filepath.Join(t.TempDir(), "switchyard.yaml")
	p.writeConfig(cfg)
	p.cmd = exec.Command(binary, "-config", p.cfgPath)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start switchyard: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.stop()
		}
		p.checkNoSecrets()
		if t.Failed() {
			t.Logf("switchyard log:\n%s", tailLines(p.logs.String(), 60))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for p.sqlAddr == "" || p.admin == "" {
		if p.exited() {
			t.Fatalf("switchyard exited during start: %v\n%s", p.err, p.logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard did not log its listen addresses within 20s:\n%s", p.logs)
		}
		p.sqlAddr = p.logAttr("switchyard listening", "addr")
		if a := p.logAttr("admin listening", "addr"); a != "" {
			p.admin = "http://" + a
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *proc) writeConfig(cfg string) {
	p.t.Helper()
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logLines returns the JSON log records written so far.
func (p *proc) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			p.t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		out = append(out, rec)
	}
	return out
}

// logAttr returns attribute attr of the first log record with message msg.
func (p *proc) logAttr(msg, attr string) string {
	for _, rec := range p.logLines() {
		if rec["msg"] == msg {
			s, _ := rec[attr].(string)
			return s
		}
	}
	return ""
}

// logged counts the log records with message msg at level.
func (p *proc) logged(level, msg string) int {
	n := 0
	for _, rec := range p.logLines() {
		if rec["msg"] == msg && rec["level"] == level {
			n++
		}
	}
	return n
}

// waitLogged waits up to 5s for exactly n log records with message msg at
// level, failing the test otherwise.
func (p *proc) waitLogged(level, msg string, n int) {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.logged(level, msg)
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			p.t.Errorf("%d %s log records %q, want %d", got, level, msg, n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoSecrets fails the test if the log shows a password or the token.
func (p *proc) checkNoSecrets() {
	logs := p.logs.String()
	secrets := []string{appAccount.Password, otherAccount.Password, p.sb.Opts.Monitor.Password}
	if p.token != "" {
		secrets = append(secrets, p.token)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			p.t.Errorf("switchyard log contains the secret %q", s)
		}
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
	case <-time.After(d):
		return 0, false
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	if p.err != nil {
		return -1, true
	}
	return 0, true
}

// stop sends SIGTERM and expects exit status 0 within 20s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	code, ok := p.wait(20 * time.Second)
	if !ok {
		// SIGQUIT makes the Go runtime print every goroutine's stack: what
		// the drain waits for.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		if _, ok := p.wait(5 * time.Second); !ok {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.t.Errorf("switchyard did not exit within 20s of SIGTERM; its goroutines at SIGQUIT:\n%s", goroutineDump(p.logs.String()))
		return
	}
	if code != 0 {
		p.t.Errorf("switchyard exited with status %d after SIGTERM, want 0", code)
	}
}

// goroutineDump returns what the Go runtime printed at SIGQUIT in log.
func goroutineDump(log string) string {
	if i := strings.Index(log, "SIGQUIT: quit"); i >= 0 {
		return log[i:]
	}
	return "(none printed)"
}

// request runs an admin API request with the token and returns the status
// and body.
func (p *proc) request(method, path string) (int, []byte) {
	p.t.Helper()
	return p.requestAs(method, path, p.token)
}

func (p *proc) requestAs(method, path, token string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.admin+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, body
}

// getJSON runs a GET expecting 200 and decodes the body into v.
func (p *proc) getJSON(path string, v any) {
	p.t.Helper()
	code, body := p.request("GET", path)
	if code != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		p.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// metrics scrapes /metrics.
func (p *proc) metrics() metricSet {
	p.t.Helper()
	code, body := p.request("GET", "/metrics")
	if code != http.StatusOK {
		p.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return scrape(p.t, string(body))
}

// waitMetric polls /metrics until cond holds for the value of name{labels}
// (0 when absent), failing after 10s.
func (p *proc) waitMetric(name string, labels []string, what string, cond func(float64) bool) float64 {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ := p.metrics().get(name, labels...)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s%v = %v after 10s, want %s", name, labels, v, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dsn returns a go-sql-driver DSN through the proxy.
func (p *proc) dsn(u sandbox.User, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = u.Name, u.Password, "tcp", p.sqlAddr, db
	c.Timeout = 10 * time.Second
	return c.FormatDSN()
}

// db opens a database handle through the proxy, closed when the test ends.
func (p *proc) db(u sandbox.User) *sql.DB {
	p.t.Helper()
	db, err := sql.Open("mysql", p.dsn(u, ""))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { db.Close() })
	return db
}

// conn opens one client session through the proxy, closed when the test
// ends.
func (p *proc) conn(u sandbox.User) *sql.Conn {
	p.t.Helper()
	c, err := p.connErr(u)
	if err != nil {
		p.t.Fatalf("connect as %s: %v", u.Name, err)
	}
	return c
}

func (p *proc) connErr(u sandbox.User) (*sql.Conn, error) {
	db := p.db(u)
	db.SetMaxIdleConns(0) // Close ends the session
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	p.t.Cleanup(func() { c.Close() })
	return c, nil
}

// rawConn opens a go-mysql client session, for reading packets the proxy
// sends unasked (shutdown and idle-timeout errors).
func (p *proc) rawConn(u sandbox.User) *gomysql.Conn {
	p.t.Helper()
	c, err := gomysql.Connect(p.sqlAddr, u.Name, u.Password, "")
	if err != nil {
		p.t.Fatalf("go-mysql connect as %s: %v", u.Name, err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

// readServerError reads the next packet the proxy sends on c without being
// asked, which must be an ERR packet, and returns its code and message.
func readServerError(t *testing.T, c *gomysql.Conn, within time.Duration) (uint16, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	c.Sequence = 0
	pkt, err := c.ReadPacket()
	if err != nil {
		t.Fatalf("read an unsolicited packet: %v", err)
	}
	if len(pkt) < 9 || pkt[0] != 0xff {
		t.Fatalf("unsolicited packet %q is not an ERR packet", pkt)
	}
	return uint16(pkt[1]) | uint16(pkt[2])<<8, string(pkt[9:])
}

// serverID runs SELECT @@server_id on c.
func serverID(t *testing.T, c *sql.Conn) int {
	t.Helper()
	var id int
	if err := c.QueryRowContext(context.Background(), "SELECT @@server_id").Scan(&id); err != nil {
		t.Fatalf("SELECT @@server_id: %v", err)
	}
	return id
}

// mysqlErrorCode returns the MySQL error number in err, or 0.
func mysqlErrorCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// exec runs statements on c, failing the test on the first error.
func execAll(t *testing.T, c *sql.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := c.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
