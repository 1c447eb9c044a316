package proxy

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/router"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Replica connections are read-only sessions: whatever a statement sent to
// a replica tries to change, the server refuses, and the statement runs on
// the primary. These tests use a sandbox whose replicas are writable
// (read_only off), as the worst case, with a user holding ALL PRIVILEGES.

// writableSandbox starts a private sandbox whose replicas are not read-only.
func writableSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb := sandboxtest.New(t, sandbox.Options{
		Users:       []sandbox.User{{Name: appUser, Password: appPass}},
		ExtraConfig: []string{"log_bin_trust_function_creators=1"},
	})
	for _, srv := range sb.Replicas {
		rootExec(t, sb, srv, sb.Dialect().SetWritable)
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var ro int
		if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
			t.Fatalf("%s: read_only = %d (%v), want a writable replica", srv.Name, ro, err)
		}
	}
	return sb
}

// TestReplicaRefusalRunsOnPrimary sends a write the classifier cannot see
// (a view over a function that inserts) through the proxy: the replica's
// read-only session refuses it, and it runs on the primary, once.
func TestReplicaRefusalRunsOnPrimary(t *testing.T) {
	sb := writableSandbox(t)
	rootExec(t, sb, sb.Primary,
		"CREATE DATABASE ro",
		"CREATE TABLE ro.log (id INT AUTO_INCREMENT PRIMARY KEY, server_id INT)",
		"CREATE FUNCTION ro.f_ins() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO ro.log (server_id) VALUES (@@server_id); RETURN 1; END",
		"CREATE VIEW ro.v AS SELECT ro.f_ins() AS x",
	)
	waitReplicated(t, sb)
	p := startProxyOn(t, sb, eventual)
	c := p.session(t, "")
	if got := serverID(t, c, "SELECT @@server_id"); got == sb.Primary.ServerID {
		t.Fatalf("a plain read ran on the primary: the test would prove nothing")
	}
	before := counterValue(p.m.refused)
	var x int
	if err := c.QueryRowContext(context.Background(), "SELECT x FROM ro.v").Scan(&x); err != nil || x != 1 {
		t.Fatalf("SELECT x FROM ro.v = %d, %v; want 1 (run on the primary)", x, err)
	}
	if got := counterValue(p.m.refused) - before; got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}
	waitReplicated(t, sb)
	for _, srv := range sb.Servers() {
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var n, onPrimary int
		if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(server_id = ?), 0) FROM ro.log", sb.Primary.ServerID).Scan(&n, &onPrimary); err != nil {
			t.Fatal(err)
		}
		if n != 1 || onPrimary != 1 {
			t.Errorf("%s: ro.log holds %d rows, %d from the primary; want exactly the primary's one", srv.Name, n, onPrimary)
		}
	}
	// The session goes on normally: a plain read still goes to a replica.
	if got := serverID(t, c, "SELECT @@server_id"); got == sb.Primary.ServerID {
		t.Errorf("after the refusal, a plain read ran on the primary")
	}
}

// TestReplicaSessionsStayReadOnly checks that the session's own transaction
// access mode never reaches replica connections: after SET SESSION
// TRANSACTION READ WRITE (and tx_read_only=0, transaction_read_only on
// MySQL) every replica connection is still read-only, and the primary keeps
// the session's setting.
func TestReplicaSessionsStayReadOnly(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	v := p.sb.Dialect().TxReadOnly
	readOnly := func(hint string) (int, int) {
		t.Helper()
		var id, ro int
		if err := c.QueryRowContext(context.Background(), hint+" SELECT @@server_id, @@"+v).Scan(&id, &ro); err != nil {
			t.Fatal(err)
		}
		return id, ro
	}
	for _, set := range []string{"SET SESSION TRANSACTION READ WRITE", "SET SESSION " + v + " = 0", "SET SESSION TRANSACTION READ ONLY", "SET SESSION " + v + " = OFF"} {
		exec(t, c, set)
		seen := map[int]bool{}
		for range 4 { // round robin: both replicas
			id, ro := readOnly("")
			seen[id] = true
			if id == p.sb.Primary.ServerID {
				t.Fatalf("after %s: the read ran on the primary", set)
			}
			if ro != 1 {
				t.Errorf("after %s: replica %d has %s = %d, want 1", set, id, v, ro)
			}
		}
		if len(seen) != len(p.sb.Replicas) {
			t.Errorf("after %s: reads ran on %v, want every replica", set, seen)
		}
		_, ro := readOnly("/* switchyard:route=primary */")
		want := 0
		if strings.Contains(set, "READ ONLY") {
			want = 1
		}
		if ro != want {
			t.Errorf("after %s: the primary has %s = %d, want the session's %d", set, v, ro, want)
		}
	}
}

// TestReadOnlyTransactions checks what runs where inside START TRANSACTION
// READ ONLY: reads on one replica, writes refused as the server refuses
// them, and statements that commit implicitly end it as the server would.
func TestReadOnlyTransactions(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	exec(t, c, "CREATE DATABASE IF NOT EXISTS rotx")
	exec(t, c, "CREATE TABLE IF NOT EXISTS rotx.t (id INT PRIMARY KEY)")
	exec(t, c, "DELETE FROM rotx.t")
	waitReplicated(t, p.sb)

	exec(t, c, "START TRANSACTION READ ONLY")
	first := serverID(t, c, "SELECT @@server_id")
	if first == p.sb.Primary.ServerID {
		t.Fatalf("read-only transaction on the primary")
	}
	for range 3 {
		if got := serverID(t, c, "SELECT @@server_id"); got != first {
			t.Fatalf("read-only transaction moved from %d to %d", first, got)
		}
	}
	for _, q := range []string{"INSERT INTO rotx.t VALUES (1)", "UPDATE rotx.t SET id = 2", "CALL rotx.nothing()", "SELECT * FROM rotx.t FOR UPDATE"} {
		_, err := c.ExecContext(context.Background(), q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1792 || string(me.SQLState[:]) != "25006" {
			t.Errorf("%s in a read-only transaction: %v, want error 1792 (25006)", q, err)
		}
	}
	exec(t, c, "COMMIT")

	// BEGIN inside a read-only transaction commits it and opens a real one
	// on the primary: the inserts roll back together.
	exec(t, c, "START TRANSACTION READ ONLY")
	if got := serverID(t, c, "SELECT @@server_id"); got == p.sb.Primary.ServerID {
		t.Fatalf("read-only transaction on the primary")
	}
	exec(t, c, "BEGIN")
	if got := serverID(t, c, "SELECT @@server_id"); got != p.sb.Primary.ServerID {
		t.Errorf("after BEGIN, a read ran on %d, want the primary's transaction", got)
	}
	exec(t, c, "INSERT INTO rotx.t VALUES (1)")
	exec(t, c, "INSERT INTO rotx.t VALUES (2)")
	exec(t, c, "ROLLBACK")
	var n int
	if err := p.primaryDB(t).QueryRow("SELECT COUNT(*) FROM rotx.t").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after ROLLBACK: %d (%v), want 0", n, err)
	}

	// DDL commits the read-only transaction and runs on the primary.
	exec(t, c, "START TRANSACTION READ ONLY")
	if got := serverID(t, c, "SELECT @@server_id"); got == p.sb.Primary.ServerID {
		t.Fatalf("read-only transaction on the primary")
	}
	exec(t, c, "CREATE TABLE rotx.t2 (id INT)")
	exec(t, c, "INSERT INTO rotx.t2 VALUES (1)")
	if err := p.primaryDB(t).QueryRow("SELECT COUNT(*) FROM rotx.t2").Scan(&n); err != nil || n != 1 {
		t.Errorf("rotx.t2 on the primary: %d rows (%v), want 1", n, err)
	}
	exec(t, c, "DROP TABLE rotx.t2")
}

// TestLexModeOutlivesRelease checks that the session's sql_mode shapes
// classification after its connections went back to the pool: the
// statement below is a read followed by a function call under
// NO_BACKSLASH_ESCAPES, and one string otherwise.
func TestLexModeOutlivesRelease(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		eventual(o)
		o.Pool.ReleaseIdle = 5 * time.Millisecond
	})
	c := p.session(t, "")
	exec(t, c, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
	released := counterValue(p.m.released)
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(p.m.released) == released && time.Now().Before(deadline) {
		waitTick()
	}
	if counterValue(p.m.released) == released {
		t.Fatal("the session never handed its connections back")
	}
	reason := p.m.routed.WithLabelValues("unsure")
	before := counterValue(reason)
	// Under NO_BACKSLASH_ESCAPES: 'a\' then a call of an unknown function.
	var s string
	var n sql.NullInt64
	err := c.QueryRowContext(context.Background(), `SELECT 'a\', ABS(1) -- '`).Scan(&s, &n)
	if err != nil {
		t.Fatal(err)
	}
	if counterValue(reason) != before {
		t.Fatal("ABS is a built-in: the statement should have been a read")
	}
	_, err = c.ExecContext(context.Background(), `SELECT 'a\', no_such_function() -- '`)
	if counterValue(reason) != before+1 {
		t.Errorf("the statement was not classified under the session's sql_mode (err %v)", err)
	}
	if got := router.ModeForSQLMode("NO_BACKSLASH_ESCAPES"); got&router.ModeNoBackslashEscapes == 0 {
		t.Errorf("ModeForSQLMode lost NO_BACKSLASH_ESCAPES")
	}
}
