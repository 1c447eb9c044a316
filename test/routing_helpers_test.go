package test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// Helpers for the tests of routing safety (misroute_test.go) and of replica
// failures (freeze_test.go). Those tests need settings that renderConfig
// fixes for the compatibility tests (routing, monitor, pool, the admin
// listener), so they render their own config; the process itself is the
// same switchyard type, started and stopped the same way.

// routedConfig says how a routing test's switchyard is configured. Every
// list holds YAML lines, such as "consistency: causal", placed under its key.
type routedConfig struct {
	// Users log in with their cleartext passwords. The backends are the
	// sandbox's servers with their roles pinned.
	Users []sandbox.User
	// Routing, Monitor (besides user and password, taken from the sandbox)
	// and Pool are the lines of those sections; empty means the defaults.
	Routing, Monitor, Pool []string
	// Admin turns the admin API on, on a free loopback port.
	Admin bool
}

// routedSwitchyard is a switchyard started by startRouted.
type routedSwitchyard struct {
	*switchyard
	AdminURL string // "http://127.0.0.1:port", or "" without the admin API
	Config   string // the YAML it runs with, for failure messages
}

// render returns the YAML document for sb with the SQL listener on port and
// the admin API on adminPort (0: off).
func (rc routedConfig) render(sb *sandbox.Sandbox, port, adminPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	b.WriteString("tls:\n  mode: \"off\"\n")
	b.WriteString("users:\n")
	for _, u := range rc.Users {
		fmt.Fprintf(&b, "  - name: %q\n    password: %q\n", u.Name, u.Password)
	}
	b.WriteString("backends:\n")
	for _, srv := range sb.Servers() {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    role: %s\n", srv.Name, srv.Addr(), srv.Role)
	}
	fmt.Fprintf(&b, "monitor:\n  user: %q\n  password: %q\n", sb.Opts.Monitor.Name, sb.Opts.Monitor.Password)
	section := func(lines []string) {
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	section(rc.Monitor)
	if len(rc.Routing) > 0 {
		b.WriteString("routing:\n")
		section(rc.Routing)
	}
	if len(rc.Pool) > 0 {
		b.WriteString("pool:\n")
		section(rc.Pool)
	}
	admin := `""`
	if adminPort != 0 {
		admin = strconv.Quote(net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)))
	}
	fmt.Fprintf(&b, "admin:\n  listen: %s\n", admin)
	b.WriteString("timeouts:\n  drain: 3s\n")
	b.WriteString("log:\n  level: info\n")
	return b.String()
}

// startRouted starts switchyard in front of sb with rc and waits until it
// greets clients. It is stopped with SIGTERM when the test ends and must
// then exit cleanly, as with startSwitchyard.
func startRouted(t testing.TB, sb *sandbox.Sandbox, rc routedConfig) *routedSwitchyard {
	t.Helper()
	port, adminPort := freePort(t), 0
	if rc.Admin {
		adminPort = freePort(t)
	}
	cfg := rc.render(sb, port, adminPort)
	s := runSwitchyard(t, port, cfg)
	rs := &routedSwitchyard{switchyard: s, Config: cfg}
	if adminPort != 0 {
		rs.AdminURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort))
	}
	return rs
}

// adminGet fetches path from the admin API and returns the body of a 200
// answer.
func (s *routedSwitchyard) adminGet(path string) ([]byte, error) {
	if s.AdminURL == "" {
		return nil, errors.New("the admin API is off")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.AdminURL + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	return body, nil
}

// clientDB opens a go-sql-driver pool for user at addr, closed when the test
// ends: one statement per query (no multi-statements), no client-side
// interpolation, so that a query without arguments goes out as exactly the
// bytes given, and 10 s connect, read and write timeouts, so that a hang
// shows up as an error rather than a stuck test. Connections are not kept
// idle: each *sql.Conn closed is a session ended.
func clientDB(t testing.TB, addr string, u sandbox.User, dbName string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = u.Name, u.Password, dbName
	cfg.Net, cfg.Addr = "tcp", addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return db
}

// sqlQuerier is what *sql.DB and *sql.Conn have in common for queries.
type sqlQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stmtResult is what a statement returned, every value as text and NULL as
// "NULL".
type stmtResult struct {
	Cols []string
	Rows [][]string
}

// first returns the first value of the first row, or "" when there is none.
func (r stmtResult) first() string {
	if len(r.Rows) == 0 || len(r.Rows[0]) == 0 {
		return ""
	}
	return r.Rows[0][0]
}

// runSQL runs one statement on q within timeout and reads all of its rows.
func runSQL(q sqlQuerier, timeout time.Duration, query string, args ...any) (stmtResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return stmtResult{}, err
	}
	defer rows.Close()
	var res stmtResult
	if res.Cols, err = rows.Columns(); err != nil {
		return res, err
	}
	for rows.Next() {
		vals := make([]sql.RawBytes, len(res.Cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = string(v)
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, rows.Err()
}

// errNumber returns the MySQL error number of err, or 0.
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// waitReplicated waits, up to timeout, until every replica of sb has
// applied what the primary has binlogged.
func waitReplicated(sb *sandbox.Sandbox, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return sb.WaitReplicated(ctx)
}
