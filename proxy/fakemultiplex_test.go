package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Multiplexing tests against a scripted primary: sessions handing one
// backend connection to each other, with their state, and a login that
// finds the pool full.

// oneConnection makes the primary's pool hold a single connection that
// sessions hand back only when another waits for it.
func oneConnection(o *Options) {
	o.Pool.MaxOpen = 1
	o.Pool.ReleaseIdle = -1
}

// TestSessionsShareOneConnection has three sessions take turns on a pool of
// one: each login and each query waits for the connection another session
// holds while idle, which hands it over without a new login or a reset.
func TestSessionsShareOneConnection(t *testing.T) {
	fp := startFakeProxy(t, 0, oneConnection)
	fp.primary.setScript(func(c *fakeConn, cmd fakeCommand) fakeReply {
		if who, ok := strings.CutPrefix(cmd.text, "SELECT 'hello from "); ok {
			return rowsOf("v", strings.TrimSuffix(who, "'"))
		}
		return nil
	})
	var clients []*rawClient
	for range 3 {
		clients = append(clients, fp.login(t, 0))
	}
	for round := range 2 {
		for i, r := range clients {
			q := fmt.Sprintf("SELECT 'hello from %d'", i)
			r.command(append([]byte{mysql.COM_QUERY}, q...))
			res := r.results()
			if len(res) != 1 || res[0].err != nil || len(res[0].rows) != 1 {
				t.Fatalf("round %d, session %d: %+v", round, i, res)
			}
			if got, want := string(res[0].rows[0][1:]), fmt.Sprint(i); got != want {
				t.Fatalf("round %d, session %d got %q, want %q", round, i, got, want)
			}
		}
	}
	if n := fp.primary.loginCount(); n != 1 {
		t.Errorf("%d logins on the primary, want 1", n)
	}
	for _, c := range fp.primary.commands() {
		if c.cmd == mysql.COM_RESET_CONNECTION {
			t.Errorf("a hand-off reset the connection: the next session syncs its own state instead")
			break
		}
	}
}

// TestHandOffSyncsState has a session that set a variable hand its
// connection to one that did not: the variable goes back to its default
// for the second, and comes back for the first when it has the connection
// again.
func TestHandOffSyncsState(t *testing.T) {
	fp := startFakeProxy(t, 0, oneConnection)
	const set = "SET time_zone='+01:00'"
	fp.primary.setScript(func(c *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case set:
			return fakeOK{status: fakeIdle, vars: []fakeVar{{"time_zone", "+01:00"}}}
		case "SELECT * FROM t":
			return rowsOf("v", "1")
		}
		return nil
	})
	a := fp.login(t, mysql.CLIENT_SESSION_TRACK)
	a.command(append([]byte{mysql.COM_QUERY}, set...))
	if res := a.results(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	b := fp.login(t, mysql.CLIENT_SESSION_TRACK)
	b.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM t"...))
	if res := b.results(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	a.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM t"...))
	if res := a.results(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	var got []string
	for _, q := range fp.primary.queries() {
		if q != trackSetup && q != "SELECT @@SESSION.sql_mode" {
			got = append(got, q)
		}
	}
	want := []string{set, "SET SESSION time_zone=DEFAULT", "SELECT * FROM t", "SET SESSION time_zone='+01:00'", "SELECT * FROM t"}
	if !slices.Equal(got, want) {
		t.Errorf("the primary received\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestLoginFailsWhilePoolStaysFull has a session hold the only connection in
// a transaction: a second login waits pool.wait_timeout, then gets 1040.
// Once the transaction ends, a login gets the connection.
func TestLoginFailsWhilePoolStaysFull(t *testing.T) {
	fp := startFakeProxy(t, 0, func(o *Options) {
		oneConnection(o)
		o.Pool.WaitTimeout = 200 * time.Millisecond
	})
	fp.primary.setScript(func(c *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case "BEGIN":
			return fakeOK{status: fakeIdle | mysql.SERVER_STATUS_IN_TRANS}
		case "COMMIT":
			return fakeOK{status: fakeIdle}
		}
		return nil
	})
	a := fp.login(t, 0)
	a.command(append([]byte{mysql.COM_QUERY}, "BEGIN"...))
	if res := a.results(); res[0].err != nil || res[0].status&mysql.SERVER_STATUS_IN_TRANS == 0 {
		t.Fatalf("BEGIN: %+v", res[0])
	}
	r := dialRaw(t, fp.addr)
	r.send(r.handshakeResponse(appUser, appPass, ""))
	if e := r.expectErr(mysql.ER_CON_COUNT_ERROR); !strings.Contains(e.message, "pool.max_open=1") {
		t.Errorf("error %q does not name pool.max_open", e.message)
	}
	a.command(append([]byte{mysql.COM_QUERY}, "COMMIT"...))
	if res := a.results(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	fp.login(t, 0)
}
