package proxy

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

// Routing and session-state tests against scripted backends: what
// Switchyard sends on the connections it opens, a replica's refusal, state
// following a session, and its own round trips cut off by their deadline.

// fakeAnswers is the script checkFakeAnswers expects: rows with NULLs, an
// error, several results for one command, a prepared statement.
func fakeAnswers(_ *fakeConn, cmd fakeCommand) fakeReply {
	switch {
	case cmd.cmd == mysql.COM_QUERY && cmd.text == "SELECT a, b":
		return fakeRows{columns: []string{"a", "b"}, rows: [][]any{{1, nil}, {"x", "y"}}, status: fakeIdle}
	case cmd.cmd == mysql.COM_QUERY && cmd.text == "SELECT broken":
		return fakeErr{1146, "42S02", "Table 'shop.broken' doesn't exist"}
	case cmd.cmd == mysql.COM_QUERY && cmd.text == "CALL p()":
		return fakeMulti{rowsOf("a", 1), rowsOf("b", 2, 3), fakeOK{status: fakeIdle}}
	case cmd.cmd == mysql.COM_STMT_PREPARE && cmd.text == "SELECT ?":
		return fakePrepared{params: 1, columns: 1}
	case cmd.cmd == mysql.COM_STMT_EXECUTE && cmd.text == "SELECT ?":
		return rowsOf("v", "5", nil)
	}
	return nil
}

// TestFakeServerWithDriver checks the fake server against a client library
// that owes nothing to Switchyard: login, text and binary result sets with
// NULLs, errors and several results for one command.
func TestFakeServerWithDriver(t *testing.T) {
	f := startFake(t, fakeAnswers)
	fp := &fakeProxy{addr: f.addr}
	checkFakeAnswers(t, fp)
}

// checkFakeAnswers runs TestFakeServerWithDriver's script through fp.
func checkFakeAnswers(t *testing.T, fp *fakeProxy) {
	t.Helper()
	db := fp.db(t, "")
	rows, err := db.Query("SELECT a, b")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var a string
		var b *string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		if b == nil {
			got = append(got, a+":NULL")
		} else {
			got = append(got, a+":"+*b)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1:NULL", "x:y"}; !slices.Equal(got, want) {
		t.Errorf("SELECT a, b: %v, want %v", got, want)
	}

	var me *driver.MySQLError
	if _, err := db.Exec("SELECT broken"); !errors.As(err, &me) || me.Number != 1146 || string(me.SQLState[:]) != "42S02" {
		t.Errorf("SELECT broken: %v, want error 1146 (42S02)", err)
	}

	rows, err = db.Query("CALL p()")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for {
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			values = append(values, v)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(values, want) {
		t.Errorf("CALL p(): %v, want %v", values, want)
	}

	rows, err = db.Query("SELECT ?", 5) // prepared: binary rows
	if err != nil {
		t.Fatal(err)
	}
	got = scanStrings(t, rows)
	if want := []string{"5", "NULL"}; !slices.Equal(got, want) {
		t.Errorf("SELECT ?: %v, want %v", got, want)
	}
}

// TestFakeAnswersThroughProxy runs the same script through the proxy.
func TestFakeAnswersThroughProxy(t *testing.T) {
	fp := startFakeProxy(t, 0, nil)
	fp.primary.setScript(fakeAnswers)
	checkFakeAnswers(t, fp)
}

// TestReadConnectionSetup checks the statements Switchyard runs on its own:
// every new connection turns on session tracking and reads the sql_mode; a
// connection for reads is made read-only and checked for writability
// before it runs the client's read.
func TestReadConnectionSetup(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	fp.replicas[0].setScript(answer("SELECT * FROM t", rowsOf("a", "1")))
	db := fp.db(t, "")
	if got := queryString(t, db, "SELECT * FROM t"); got != "1" {
		t.Fatalf("read: %q, want 1", got)
	}
	want := []string{trackSetup, "SELECT @@SESSION.sql_mode", "SET SESSION TRANSACTION READ ONLY", writableQuery(fakeVersion), "SELECT * FROM t"}
	if got := fp.replicas[0].queries(); !slices.Equal(got, want) {
		t.Errorf("the replica received\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	want = []string{trackSetup, "SELECT @@SESSION.sql_mode"}
	if got := fp.primary.queries(); !slices.Equal(got, want) {
		t.Errorf("the primary received\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestWritableReplicaReported has the replica answer the writability check
// with 1: Backends names the user.
func TestWritableReplicaReported(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	fp.replicas[0].setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch {
		case strings.Contains(cmd.text, "@@GLOBAL.read_only"):
			return rowsOf("writable", "1")
		case cmd.text == "SELECT * FROM t":
			return rowsOf("a", "1")
		}
		return nil
	})
	queryString(t, fp.db(t, ""), "SELECT * FROM t")
	found := false
	for _, b := range fp.Backends() {
		if b.Name != "replica1" {
			continue
		}
		found = true
		if !slices.Equal(b.WritableBy, []string{appUser}) {
			t.Errorf("replica1 writable by %v, want [%s]", b.WritableBy, appUser)
		}
	}
	if !found {
		t.Errorf("no backend replica1 in %+v", fp.Backends())
	}
}

// TestRefusedReadRunsOnPrimary has the replica refuse a read with each of
// the errors of a read-only session or server: the statement runs on the
// primary, the client sees only the primary's answer, and the replica
// connection is kept (the refusal left it fine). Any other error passes
// through.
func TestRefusedReadRunsOnPrimary(t *testing.T) {
	for _, code := range []uint16{mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, mysql.ER_OPTION_PREVENTS_STATEMENT, 1836, 1874} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			fp := startFakeProxy(t, 1, nil)
			const q = "SELECT * FROM t"
			fp.replicas[0].setScript(answer(q, fakeErr{code, "HY000", "refused"}))
			fp.primary.setScript(answer(q, rowsOf("v", "primary")))
			db := fp.db(t, "")
			before := counterValue(fp.m.refused)
			if got := queryString(t, db, q); got != "primary" {
				t.Fatalf("refused read answered %q, want the primary's answer", got)
			}
			if n := counterValue(fp.m.refused) - before; n != 1 {
				t.Errorf("switchyard_replica_refusals_total went up by %v, want 1", n)
			}
			if !fp.replicas[0].receivedQuery(q) {
				t.Errorf("the replica never saw %s", q)
			}
			if n := fp.replicas[0].openConns(); n != 1 {
				t.Errorf("%d connections open on the replica, want 1: the refusing connection is kept", n)
			}
		})
	}
	t.Run("other errors pass through", func(t *testing.T) {
		fp := startFakeProxy(t, 1, nil)
		const q = "SELECT * FROM missing"
		fp.replicas[0].setScript(answer(q, fakeErr{1146, "42S02", "Table 'shop.missing' doesn't exist"}))
		_, err := fp.db(t, "").Exec(q)
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != 1146 || me.Message != "Table 'shop.missing' doesn't exist" {
			t.Fatalf("%s: %v, want the replica's error 1146", q, err)
		}
		if fp.primary.receivedQuery(q) {
			t.Errorf("the primary ran %s", q)
		}
	})
}

// TestSessionStateFollowsToReplica sets session variables on the primary
// (reported through session tracking): before the next read, the replica
// connection gets them in one SET, quoted so that the server reads the
// same values back, and only once.
func TestSessionStateFollowsToReplica(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	const set = "SET SESSION default_master_connection='it''s a\\\\b', time_zone='+01:00', max_join_size=1000"
	fp.primary.setScript(answer(set, fakeOK{status: fakeIdle, vars: []fakeVar{
		{"default_master_connection", `it's a\b`}, {"time_zone", "+01:00"}, {"max_join_size", "1000"},
	}}))
	fp.replicas[0].setScript(answer("SELECT * FROM t", rowsOf("a", "1")))
	db := fp.db(t, "")
	if _, err := db.Exec(set); err != nil {
		t.Fatal(err)
	}
	queryString(t, db, "SELECT * FROM t")
	queryString(t, db, "SELECT * FROM t")
	want := `SET SESSION default_master_connection='it''s a\\b', max_join_size=1000, time_zone='+01:00'`
	var sets []string
	for _, q := range fp.replicas[0].queries() {
		if strings.HasPrefix(q, "SET SESSION ") && q != trackSetup && !strings.Contains(q, "TRANSACTION") {
			sets = append(sets, q)
		}
	}
	if !slices.Equal(sets, []string{want}) {
		t.Errorf("the replica received %q, want once %q", sets, want)
	}
}

// TestOwnRoundTripCutOff has a backend never answer one of the statements
// Switchyard runs on its own: Options.BackendTimeout cuts the wait short,
// the connection is closed, and the client gets an answer.
func TestOwnRoundTripCutOff(t *testing.T) {
	const timeout = 200 * time.Millisecond
	withTimeout := func(o *Options) { o.BackendTimeout = timeout }
	hangOn := func(prefix string) fakeScript {
		return func(_ *fakeConn, cmd fakeCommand) fakeReply {
			if cmd.cmd == mysql.COM_QUERY && strings.HasPrefix(cmd.text, prefix) {
				return fakeHang{}
			}
			return nil
		}
	}
	t.Run("read connection setup", func(t *testing.T) {
		fp := startFakeProxy(t, 1, withTimeout)
		fp.replicas[0].setScript(hangOn("SET SESSION TRANSACTION READ ONLY"))
		fp.primary.setScript(answer("SELECT * FROM t", rowsOf("a", "primary")))
		db := fp.db(t, "")
		start := time.Now()
		if got := queryString(t, db, "SELECT * FROM t"); got != "primary" {
			t.Fatalf("read answered %q, want the primary's answer", got)
		}
		if took := time.Since(start); took > timeout+time.Second {
			t.Errorf("the read took %s with a backend timeout of %s", took, timeout)
		}
		waitFor(t, "the hung replica connection to close", func() bool { return fp.replicas[0].openConns() == 0 })
	})
	t.Run("session state sync", func(t *testing.T) {
		fp := startFakeProxy(t, 1, withTimeout)
		fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
			switch cmd.text {
			case "SET time_zone='+01:00'":
				return fakeOK{status: fakeIdle, vars: []fakeVar{{"time_zone", "+01:00"}}}
			case "SELECT * FROM t":
				return rowsOf("a", "primary")
			}
			return nil
		})
		fp.replicas[0].setScript(hangOn("SET SESSION time_zone="))
		db := fp.db(t, "")
		if _, err := db.Exec("SET time_zone='+01:00'"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if got := queryString(t, db, "SELECT * FROM t"); got != "primary" {
			t.Fatalf("read answered %q, want the primary's answer", got)
		}
		if took := time.Since(start); took > timeout+time.Second {
			t.Errorf("the read took %s with a backend timeout of %s", took, timeout)
		}
		waitFor(t, "the hung replica connection to close", func() bool { return fp.replicas[0].openConns() == 0 })
	})
	t.Run("login", func(t *testing.T) {
		fp := startFakeProxy(t, 0, withTimeout)
		fp.primary.setScript(hangOn(trackSetup))
		r := dialRaw(t, fp.addr)
		start := time.Now()
		r.send(r.handshakeResponse(appUser, appPass, ""))
		e := r.expectErr(codeConnRefused)
		if took := time.Since(start); took > timeout+time.Second {
			t.Errorf("the login failed after %s with a backend timeout of %s", took, timeout)
		}
		if !strings.Contains(e.message, "primary") {
			t.Errorf("error %q does not name the primary", e.message)
		}
	})
}

// TestPreparedReadOnReplica prepares a read (on the primary, as clients
// prepare) and executes it: the replica gets it prepared under its own
// statement id, runs it, and its binary rows reach the client.
func TestPreparedReadOnReplica(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	const q = "SELECT v FROM t WHERE id = ?"
	prepared := func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch {
		case cmd.cmd == mysql.COM_STMT_PREPARE && cmd.text == q:
			return fakePrepared{params: 1, columns: 1}
		case cmd.cmd == mysql.COM_STMT_EXECUTE && cmd.text == q:
			return rowsOf("v", "from replica", nil)
		}
		return nil
	}
	fp.primary.setScript(prepared)
	fp.replicas[0].setScript(prepared)
	rows, err := fp.db(t, "").Query(q, 7)
	if err != nil {
		t.Fatal(err)
	}
	got := scanStrings(t, rows)
	if want := []string{"from replica", "NULL"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	var kinds []byte
	for _, c := range fp.replicas[0].commands() {
		if c.cmd != mysql.COM_QUERY {
			kinds = append(kinds, c.cmd)
			if c.cmd == mysql.COM_STMT_EXECUTE && c.text != q {
				t.Errorf("the replica executed statement %d (%q), not its own %q", c.stmt, c.text, q)
			}
		}
	}
	if want := []byte{mysql.COM_STMT_PREPARE, mysql.COM_STMT_EXECUTE}; !slices.Equal(kinds[:min(2, len(kinds))], want) {
		t.Errorf("the replica received commands % x, want prepare then execute", kinds)
	}
	for _, c := range fp.primary.commands() {
		if c.cmd == mysql.COM_STMT_EXECUTE {
			t.Errorf("the primary executed the read")
		}
	}
}

// TestDatabaseFollowsToReplica changes the session's database with USE (on
// the primary, reported through session tracking) and with COM_INIT_DB:
// each time the replica connection follows with COM_INIT_DB before the
// next read.
func TestDatabaseFollowsToReplica(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	fp.primary.setScript(answer("USE shop", fakeOK{status: fakeIdle, schema: "shop"}))
	fp.replicas[0].setScript(answer("SELECT * FROM t", rowsOf("a", "1")))
	r := fp.login(t, mysql.CLIENT_SESSION_TRACK)
	read := func() {
		t.Helper()
		r.command(append([]byte{mysql.COM_QUERY}, "SELECT * FROM t"...))
		if res := r.results(); res[0].err != nil {
			t.Fatal(res[0].err)
		}
	}
	read() // opens the replica connection, without a database
	r.command(append([]byte{mysql.COM_QUERY}, "USE shop"...))
	if res := r.results(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	read()
	r.command(append([]byte{mysql.COM_INIT_DB}, "archive"...))
	if p := r.read(); p[0] != 0x00 {
		t.Fatal(parseErr(p))
	}
	read()
	var got []string
	for _, c := range fp.replicas[0].commands() {
		switch {
		case c.cmd == mysql.COM_INIT_DB:
			got = append(got, "INIT_DB "+c.text)
		case c.text == "SELECT * FROM t":
			got = append(got, c.text)
		}
	}
	want := []string{"SELECT * FROM t", "INIT_DB shop", "SELECT * FROM t", "INIT_DB archive", "SELECT * FROM t"}
	if !slices.Equal(got, want) {
		t.Errorf("the replica received %q, want %q", got, want)
	}
}

// TestSyncQuotingFollowsSQLMode syncs a value with a backslash to a replica
// connection whose sql_mode has NO_BACKSLASH_ESCAPES (synced there before):
// the server reads a backslash there as itself, so doubling it would store
// two.
func TestSyncQuotingFollowsSQLMode(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case "SET sql_mode='NO_BACKSLASH_ESCAPES'":
			return fakeOK{status: fakeIdle, vars: []fakeVar{{"sql_mode", "NO_BACKSLASH_ESCAPES"}}}
		case `SET default_master_connection='a\b'`:
			return fakeOK{status: fakeIdle, vars: []fakeVar{{"default_master_connection", `a\b`}}}
		}
		return nil
	})
	fp.replicas[0].setScript(answer("SELECT * FROM t", rowsOf("a", "1")))
	db := fp.db(t, "")
	for _, q := range []string{"SET sql_mode='NO_BACKSLASH_ESCAPES'", "SELECT * FROM t", `SET default_master_connection='a\b'`, "SELECT * FROM t"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := `SET SESSION default_master_connection='a\b'`
	var got []string
	for _, q := range fp.replicas[0].queries() {
		if strings.HasPrefix(q, "SET SESSION default_master_connection") {
			got = append(got, q)
		}
	}
	if !slices.Equal(got, []string{want}) {
		t.Errorf("the replica, in NO_BACKSLASH_ESCAPES mode, received %q, want %q", got, want)
	}
}

// scanStrings reads a one-column result, NULL as "NULL".
func scanStrings(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	var got []string
	for rows.Next() {
		var v *string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			got = append(got, "NULL")
		} else {
			got = append(got, *v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}
