package proxy

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"
)

// TestShutdownClosesIdleClients shuts down while clients are idle, busy and
// in a transaction: idle ones are closed without a word (an error packet
// would be read as the answer to their next command), the busy one gets
// its answer first, and the transaction goes on to its commit.
func TestShutdownClosesIdleClients(t *testing.T) {
	p := startProxy(t, nil)
	before := holdingsOf(p)
	ctx := context.Background()
	idle := loginRaw(t, p.addr, appUser, appPass, "", 0)
	db := p.db(t, appUser, appPass, "")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	tx := loginRaw(t, p.addr, appUser, appPass, "", 0)
	for _, q := range []string{"BEGIN", "SELECT 1"} {
		if res := tx.query(q); res[0][0] == 0xff {
			t.Fatalf("%s: %v", q, parseErr(res[0]))
		}
	}
	busy := loginRaw(t, p.addr, appUser, appPass, "", 0)
	busy.command(append([]byte{mysql.COM_QUERY}, "SELECT SLEEP(0.5)"...))
	waitBusy(t, p.Server, busy.connID)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	idle.expectQuietClose()
	if res := busy.readResult(); res[0][0] == 0xff {
		t.Errorf("the busy session's statement: %v", parseErr(res[0]))
	}
	busy.expectQuietClose()
	waitClients(t, p, 1) // the transaction's
	_, err = conn.ExecContext(ctx, "SELECT 1")
	if code := mysqlCode(err); code != 0 || !(errors.Is(err, driver.ErrBadConn) || errors.Is(err, gomysql.ErrInvalidConn)) {
		t.Errorf("go-sql-driver on a session closed by Shutdown: %v, want a closed connection (invalid connection), no server error", err)
	}
	for _, q := range []string{"SELECT 2", "COMMIT"} {
		if res := tx.query(q); res[0][0] == 0xff {
			t.Fatalf("%s in the transaction open at Shutdown: %v", q, parseErr(res[0]))
		}
	}
	tx.expectQuietClose()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	settledAt(t, p, before)
}

// TestShutdownDrainExpires closes a transaction still open when Shutdown's
// context ends, without a word either.
func TestShutdownDrainExpires(t *testing.T) {
	p := startProxy(t, nil)
	tx := loginRaw(t, p.addr, appUser, appPass, "", 0)
	for _, q := range []string{"BEGIN", "SELECT 1"} {
		if res := tx.query(q); res[0][0] == 0xff {
			t.Fatalf("%s: %v", q, parseErr(res[0]))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a transaction open: %v, want the context's deadline", err)
	}
	tx.expectQuietClose()
	if n := p.Clients(); n != 0 {
		t.Errorf("%d sessions after Shutdown", n)
	}
}

// TestIdleTimeoutError checks the error sent before timeouts.idle closes a
// session: ER_CLIENT_INTERACTION_TIMEOUT with sequence id 0, as MySQL 8
// sends it, which clients take for what it is when they next send a
// command: go-sql-driver reports the error, PyMySQL a lost connection.
func TestIdleTimeoutError(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	before := holdingsOf(p)
	ctx := context.Background()

	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	r.c.seq = 0
	if e := r.expectErr(codeInactivity); !strings.Contains(e.message, "inactivity") {
		t.Errorf("raw client: %v", e)
	}
	r.expectClosed()

	db := p.db(t, appUser, appPass, "")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	waitClients(t, p, before.clients)
	if _, err := conn.ExecContext(ctx, "SELECT 1"); mysqlCode(err) != codeInactivity {
		t.Errorf("go-sql-driver after the idle timeout: %v, want error %d", err, codeInactivity)
	}

	t.Run("pymysql", func(t *testing.T) {
		py := pymysqlPython(t)
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds every read below
		defer cancel()
		cmd := osexec.CommandContext(pctx, py, "-c", idleScript, p.addr, appUser, appPass)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer stdin.Close()
		out := bufio.NewReader(stdout)
		if line, err := out.ReadString('\n'); line != "connected\n" {
			t.Fatalf("python: %q %v", line, err)
		}
		waitClients(t, p, before.clients)
		io.WriteString(stdin, "go\n")
		if rest, _ := io.ReadAll(out); string(rest) != "OperationalError 2013\n" {
			t.Errorf("PyMySQL after the idle timeout printed %q, want OperationalError 2013 (lost connection)", rest)
		}
	})
	settledAt(t, p, before)
}

// idleScript connects with PyMySQL, waits for a line on stdin and runs a
// query, printing the class and code of the error it gets.
const idleScript = `
import sys
import pymysql

addr, user, password = sys.argv[1:4]
host, port = addr.rsplit(":", 1)
c = pymysql.connect(host=host, port=int(port), user=user, password=password,
                    connect_timeout=5, read_timeout=5, write_timeout=5)
print("connected", flush=True)
sys.stdin.readline()
try:
    with c.cursor() as cur:
        cur.execute("SELECT 1")
    print("no error")
except pymysql.MySQLError as e:
    print(type(e).__name__, e.args[0])
`

// expectQuietClose checks that the server closes the connection without
// sending anything first.
func (r *rawClient) expectQuietClose() {
	r.t.Helper()
	_ = r.c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := r.c.readFrameHeader()
	if err == nil {
		p := make([]byte, f.n)
		_, _ = io.ReadFull(r.c.br, p)
		if len(p) > 0 && p[0] == 0xff {
			r.t.Fatalf("got %v with sequence id %d before the close, want nothing", parseErr(p), f.seq)
		}
		r.t.Fatalf("got packet % x before the close, want nothing", p[:min(len(p), 16)])
	}
	if !isClosed(err) {
		r.t.Fatalf("read: %v, want the connection closed", err)
	}
}

// waitClients waits until p has n sessions or fewer.
func waitClients(t *testing.T, p *testProxy, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Clients() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", p.Clients(), n)
		}
		waitTick()
	}
}

// mysqlCode returns the server error number in err, or 0.
func mysqlCode(err error) uint16 {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestIdleDeadlineKeptAcrossCommands: the idle deadline, left armed across
// commands rather than moved for each, never cuts off a client that has not
// been silent for timeouts.idle, and cuts off one that has.
func TestIdleDeadlineKeptAcrossCommands(t *testing.T) {
	const idle = 300 * time.Millisecond
	fp := startFakeProxy(t, 0, func(o *Options) { o.IdleTimeout = idle })
	r := fp.login(t, 0)
	// Busy for four times the timeout, never silent for more than a third
	// of it: every ping is answered.
	var silent time.Time
	for end := time.Now().Add(4 * idle); ; time.Sleep(idle / 3) {
		r.command([]byte{mysql.COM_PING})
		if p := r.read(); p[0] != 0x00 {
			t.Fatalf("COM_PING during %s of activity: packet 0x%02x, want OK", 4*idle, p[0])
		}
		if silent = time.Now(); silent.After(end) {
			break
		}
	}
	_ = r.c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r.c.seq = 0
	r.expectErr(codeInactivity)
	if after := time.Since(silent); after < idle {
		t.Errorf("cut off after %s of silence, want at least timeouts.idle %s", after, idle)
	} else {
		t.Logf("cut off after %s of silence (timeouts.idle %s)", after.Round(time.Millisecond), idle)
	}
}
