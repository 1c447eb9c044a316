package test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestMisroute is the worst case for a read/write split: replicas that are
// not read-only, and an application user who could write on them even if
// they were (ALL PRIVILEGES, with READ ONLY ADMIN on MariaDB, CONNECTION_ADMIN
// and SUPER on MySQL). Nothing on the servers stops a write Switchyard sends
// to a replica, so each attack below changes a replica if it is routed there.
// Every write leaves a trace on the server that ran it: triggers and writing
// functions record @@server_id in mr.audit, and a replica binlogs its own
// transactions under its own server_id (MariaDB) or server_uuid (MySQL).
// Each subtest is blamed for the traces it left; the evidence subtest checks
// the whole suite again at the end, and plain reads in fresh sessions must
// keep running on replicas throughout, so that the suite cannot pass by
// sending everything to the primary. It runs on both engines; attacks whose
// syntax only one engine has skip on the other, saying so.
func TestMisroute(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{
		Replicas: 2,
		Users:    []sandbox.User{{Name: appUser.Name, Password: appUser.Password, Grant: "ALL PRIVILEGES ON *.*"}},
		// Replicas apply the primary's CREATE FUNCTION only with it. The
		// replicas are made writable once they run (makeReplicasWritable).
		ExtraConfig: []string{"log_bin_trust_function_creators=1"},
	})
	m := newMisroute(t, sb)
	t.Run("replicas_writable", m.testReplicasWritable)
	t.Run("versioned_comments", m.testVersionedComments)
	t.Run("versioned_comments_cli", m.testVersionedCommentsCLI)
	t.Run("functions", m.testFunctions)
	t.Run("read_only_tx", m.testReadOnlyTx)
	t.Run("sql_mode", m.testSQLMode)
	t.Run("charsets", m.testCharsets)
	t.Run("sequence", m.testSequence)
	t.Run("tx_read_only", m.testTxReadOnly)
	t.Run("named_locks", m.testNamedLocks)
	t.Run("set_global", m.testSetGlobal)
	t.Run("admin_api", m.testAdminAPI)
	t.Run("evidence", m.testEvidence)
}

// newMisroute creates the schema, makes sure the app user could write on
// the replicas, and starts switchyard with default routing (causal
// consistency) and the replication monitor.
func newMisroute(t *testing.T, sb *sandbox.Sandbox) *misroute {
	m := &misroute{
		sb:         sb,
		maxConns:   map[string]string{},
		nextRow:    1000,
		reported:   map[string]bool{},
		plainReads: map[int]int{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := m.root(t, sb.Primary).Conn(ctx) // one session: the setup USEs mr
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if m.mysql() {
		m.primaryUUID = m.rootValue(t, sb.Primary, "SELECT @@server_uuid")
	}
	for _, stmt := range mrSetup(sb.Flavor) {
		if _, err := runSQL(conn, stmtTimeout, stmt); err != nil {
			t.Fatalf("setup on the primary: %.80s: %v", stmt, err)
		}
	}
	m.makeReplicasWritable(t)
	if err := waitReplicated(sb, time.Minute); err != nil {
		t.Fatalf("replicas did not apply the schema: %v", err)
	}
	for _, srv := range sb.Servers() {
		m.maxConns[srv.Name] = m.rootValue(t, srv, "SELECT @@GLOBAL.max_connections")
	}
	m.sy = startRouted(t, sb, routedConfig{
		Users:   []sandbox.User{appUser},
		Routing: []string{"consistency: causal"},
		// Sessions idle for 20 ms hand their backend connections back: the
		// sql_mode and character set attacks wait longer than that.
		Pool:  []string{"release_idle: 20ms"},
		Admin: true,
	})
	m.app = clientDB(t, m.sy.Addr, appUser, mrSchema)
	m.reads = clientDB(t, m.sy.Addr, appUser, mrSchema)
	m.waitReplicaReads(t)
	return m
}

// waitReplicaReads waits until switchyard sends reads to replicas: its
// monitor checks every backend before the replicas get reads.
func (m *misroute) waitReplicaReads(t *testing.T) {
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res, err := runSQL(m.reads, stmtTimeout, "SELECT @@server_id")
		if err == nil && res.first() != strconv.Itoa(m.sb.Primary.ServerID) {
			return
		}
		last = fmt.Sprintf("server_id %s, error %v", res.first(), err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no read ran on a replica within 15 s of switchyard's start (last: %s)\nlog:\n%s", last, tail(m.sy.Log(), 30))
}

// attack runs f as the subtest name, blames on it every replica write it
// left, even when f stops early, and then checks that a plain read still
// runs on a replica.
func (m *misroute) attack(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		defer m.noReplicaWrites(t)
		f(t)
		m.plainRead(t)
	})
}

// testReplicasWritable checks the premise: every read-only setting is off
// on every replica (read_only; on MySQL super_read_only too) and the app
// user may write there. The control write goes directly to each replica
// inside a transaction that is rolled back, so it leaves no trace.
func (m *misroute) testReplicasWritable(t *testing.T) {
	d := m.sb.Dialect()
	for _, r := range m.sb.Replicas {
		for _, v := range d.ReadOnly {
			if ro := m.rootValue(t, r, "SELECT @@GLOBAL."+v); ro != "0" {
				t.Errorf("@@%s on %s = %s, want 0 (%s)", v, r.Name, ro, d.SetWritable)
			}
		}
		grants, err := runSQL(m.root(t, r), stmtTimeout, "SHOW GRANTS FOR 'app'@'%'")
		if err != nil {
			t.Fatalf("SHOW GRANTS on %s: %v", r.Name, err)
		}
		var all []string // MySQL lists static and dynamic privileges apart
		for _, row := range grants.Rows {
			all = append(all, row[0])
		}
		g := strings.Join(all, "; ")
		t.Logf("%s: %s", r.Name, g)
		if !strings.Contains(g, "ALL PRIVILEGES") && !strings.Contains(g, d.ReadOnlyBypass) {
			t.Errorf("app on %s has %s, want ALL PRIVILEGES or %s", r.Name, g, d.ReadOnlyBypass)
		}
		direct := clientDB(t, r.Addr(), appUser, mrSchema)
		ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
		c, err := direct.Conn(ctx)
		cancel()
		if err != nil {
			t.Fatalf("connect to %s as app: %v", r.Name, err)
		}
		id := m.rowID()
		for _, q := range []string{"BEGIN", fmt.Sprintf("INSERT INTO t VALUES (%d, 'control')", id), "ROLLBACK"} {
			if _, err := runSQL(c, stmtTimeout, q); err != nil {
				t.Errorf("directly on %s as app: %s: %v (the replica must take the app user's writes for this test to mean anything)", r.Name, q, err)
			}
		}
		c.Close()
	}
	m.noReplicaWrites(t)
	m.plainRead(t)
}

// versionedCase is a statement hidden in or behind a versioned comment.
// MariaDB ignores MySQL comments for 5.7 and later (/*!50700 ... */) and
// runs /*M!nnnnnn ... */ and older /*!nnnnn ... */ ones. MySQL runs
// /*!nnnnn ... */ up to its version, reads six-digit versions too (MySQL 9.7
// runs /*!090000 and skips /*!100000), and takes /*M! for a plain comment.
// Each case runs on both engines: the primary, asked directly, is the
// oracle of what the statement does there.
type versionedCase struct {
	name   string
	format string // the statement, with %d for the row id
	// existing: the row exists beforehand (the statement deletes it);
	// otherwise it may insert the row.
	existing bool
}

var versionedCases = []versionedCase{
	{"mysql57_select_then_delete", "/*!50700 SELECT */ DELETE FROM t WHERE id = %d", true},
	{"mysql57_select_comment_insert", "/*!50700 SELECT 1 -- */ INSERT INTO t VALUES (%d, 'versioned')", false},
	{"mariadb_select_comment_insert", "/*M!100000 SELECT 1 -- */ INSERT INTO t VALUES (%d, 'versioned')", false},
	{"mariadb_insert", "/*M!100000 INSERT INTO t VALUES (%d, 'versioned') */", false},
	{"executable_insert", "/*!100000 INSERT INTO t VALUES (%d, 'versioned') */", false},
	{"mysql41_delete", "/*!40101 DELETE FROM t WHERE id = %d */", true},
	{"mysql80_select_then_delete", "/*!80000 SELECT */ DELETE FROM t WHERE id = %d", true},
	{"mysql80_insert", "/*!80000 INSERT INTO t VALUES (%d, 'versioned') */", false},
	{"mysql90_insert", "/*!90000 INSERT INTO t VALUES (%d, 'versioned') */", false},
	{"mysql99_select_comment_insert", "/*!99999 SELECT 1 -- */ INSERT INTO t VALUES (%d, 'versioned')", false},
	{"six_digit_mysql9_insert", "/*!090000 INSERT INTO t VALUES (%d, 'versioned') */", false},
	{"six_digit_select_comment_insert", "/*!100000 SELECT 1 -- */ INSERT INTO t VALUES (%d, 'versioned')", false},
}

// prepareRow creates the row id on the primary when vc needs it, and
// returns how many rows with id there are before the statement.
func (m *misroute) prepareRow(t *testing.T, vc versionedCase, id int) int {
	if !vc.existing {
		return 0
	}
	if _, err := runSQL(m.root(t, m.sb.Primary), stmtTimeout, "INSERT INTO mr.t VALUES (?, 'existing')", id); err != nil {
		t.Fatal(err)
	}
	m.sync(t)
	return 1
}

// testVersionedComments sends each versioned-comment statement through
// go-sql-driver, byte for byte. The server itself is the oracle: the same
// statement runs first directly on the primary, in a transaction rolled
// back, and switchyard must answer as the primary did; a write must change
// the primary and, by replication only, the replicas.
func (m *misroute) testVersionedComments(t *testing.T) {
	direct := clientDB(t, m.sb.Primary.Addr(), appUser, mrSchema)
	for _, vc := range versionedCases {
		m.attack(t, vc.name, func(t *testing.T) {
			id := m.rowID()
			before := m.prepareRow(t, vc, id)
			q := fmt.Sprintf(vc.format, id)

			ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
			defer cancel()
			oc, err := direct.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var wantN int64
			if _, err := oc.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			res, wantErr := oc.ExecContext(ctx, q)
			if wantErr == nil {
				wantN, _ = res.RowsAffected()
			}
			if _, err := oc.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			oc.Close()
			t.Logf("%q directly on the primary: %d rows affected, error %v", q, wantN, wantErr)

			c := m.session(t)
			res, err = c.ExecContext(ctx, q)
			switch {
			case wantErr != nil && err == nil:
				t.Errorf("%q through switchyard succeeded; the primary answers error %v", q, wantErr)
			case wantErr != nil && errNumber(err) != errNumber(wantErr):
				t.Errorf("%q through switchyard: %v; the primary answers %v", q, err, wantErr)
			case wantErr == nil && err != nil:
				t.Errorf("%q through switchyard: %v; the primary runs it (%d rows affected)", q, err, wantN)
			case wantErr == nil:
				if n, _ := res.RowsAffected(); n != wantN {
					t.Errorf("%q through switchyard affected %d rows, the primary %d", q, n, wantN)
				}
			}
			want := before
			if wantErr == nil && wantN > 0 {
				want = 1 - before // inserted, or deleted
			}
			m.expectRows(t, id, want)
		})
	}
}

// cliError matches the error line of the mariadb CLI; cliAffected the line
// that -vv prints after a statement without a result set.
var (
	cliError    = regexp.MustCompile(`ERROR (\d+) \(`)
	cliAffected = regexp.MustCompile(`(?m)^Query OK, (\d+) rows? affected`)
)

// cliOutcome describes how a CLI run with -vv ended: "ok, N rows affected",
// "ok" (a result set) or "error N"; affected is N, or 0.
func cliOutcome(stdout, stderr []byte, err error) (outcome string, affected int) {
	if err == nil {
		if m := cliAffected.FindSubmatch(stdout); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			return fmt.Sprintf("ok, %d rows affected", n), n
		}
		return "ok", 0
	}
	if m := cliError.FindSubmatch(stderr); m != nil {
		return "error " + string(m[1]), 0
	}
	return fmt.Sprintf("failed: %v: %s", err, stderr), 0
}

// testVersionedCommentsCLI sends the same statements with the mariadb CLI,
// which strips comments unless told --comments. The oracle is the CLI run
// directly against the primary with autocommit off, so that its change is
// rolled back when the client disconnects; -vv makes the CLI say how many
// rows a statement changed (none, on MySQL, for a statement that is all
// comment there).
func (m *misroute) testVersionedCommentsCLI(t *testing.T) {
	mariadbCLI(t)
	app := cliConn{User: appUser.Name, Password: appUser.Password, DB: mrSchema}
	direct := endpoint{Name: "direct", Host: "127.0.0.1", Port: m.sb.Primary.Port}
	for _, vc := range versionedCases {
		m.attack(t, vc.name, func(t *testing.T) {
			id := m.rowID()
			before := m.prepareRow(t, vc, id)
			q := fmt.Sprintf(vc.format, id)
			out, stderr, err := cli(t, direct, app, nil, "--comments", "-vv", "--init-command=SET autocommit=0", "-e", q)
			want, wantN := cliOutcome(out, stderr, err)
			if after := m.rowCount(t, m.sb.Primary, id); after != before {
				t.Fatalf("the oracle run of %q with autocommit off changed the primary (%d rows, had %d)", q, after, before)
			}
			out, stderr, err = cli(t, m.sy.endpoint(), app, nil, "--comments", "-vv", "-e", q)
			got, _ := cliOutcome(out, stderr, err)
			t.Logf("mariadb --comments -e %q: directly on the primary %s, through switchyard %s", q, want, got)
			if got != want {
				t.Errorf("mariadb --comments -e %q through switchyard: %s; directly on the primary: %s", q, got, want)
			}
			rows := before
			if got == want && wantN > 0 {
				rows = 1 - before // inserted, or deleted
			}
			m.expectRows(t, id, rows)
		})
	}
}

// testFunctions calls stored functions that write, under names that look
// like built-ins, directly and through a view. Each must run once, on the
// primary, unless the name is a native function on the engine: an
// unqualified call then runs the built-in, writes nothing, and may go
// anywhere. Some names are native on one engine only (ANY_VALUE on MySQL;
// JSON_DETAILED and MD5 on MariaDB: MySQL has no JSON_DETAILED, and MySQL
// 9.7 removed MD5), so the same call writes on the other. The primary,
// asked directly, must agree with the expectation.
func (m *misroute) testFunctions(t *testing.T) {
	for _, tc := range []struct {
		name, fn, sql string
		native        string // the engine (sb.Flavor) on which fn is a built-in
	}{
		{"json_log", "json_log", "SELECT json_log(1)", ""},
		{"json_log_upper", "json_log", "SELECT JSON_LOG(1)", ""},
		{"json_log_space", "json_log", "SELECT json_log (1)", ""},
		{"json_log_qualified", "json_log", "SELECT mr.json_log(1)", ""},
		{"st_log", "st_log", "SELECT st_log()", ""},
		{"column_log", "column_log", "SELECT column_log()", ""},
		{"regexp_log", "regexp_log", "SELECT regexp_log()", ""},
		{"mbrlog", "mbrlog", "SELECT mbrlog()", ""},
		{"any_value", "any_value", "SELECT any_value(1)", sandbox.FlavorMySQL},
		{"any_value_qualified", "any_value", "SELECT mr.any_value(1)", ""},
		{"json_detailed", "json_detailed", "SELECT json_detailed(1)", sandbox.FlavorMariaDB},
		{"md5", "md5", "SELECT md5(1)", sandbox.FlavorMariaDB},
		{"firstrow", "firstrow", "SELECT firstrow(1)", ""},
		{"view", "f_ins", "SELECT * FROM v_writes", ""},
		{"f_ins", "f_ins", "SELECT f_ins()", ""},
	} {
		m.attack(t, tc.name, func(t *testing.T) {
			want := 1
			if tc.native == m.sb.Flavor {
				want = 0
			}
			if n := m.oracleCalls(t, tc.fn, tc.sql); n != want {
				t.Fatalf("%q directly on the primary (%s) ran %s %d times, the test expects %d", tc.sql, m.sb.Engine(), tc.fn, n, want)
			}
			m.expectCalls(t, m.session(t), tc.fn, want, tc.sql)
		})
	}
}

// oracleCalls runs query as app directly on the primary, in a transaction
// it rolls back, and returns how many times it ran the writing function fn:
// what the server itself makes of the call.
func (m *misroute) oracleCalls(t *testing.T, fn, query string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := clientDB(t, m.sb.Primary.Addr(), appUser, mrSchema).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(q string) string {
		res, err := runSQL(c, stmtTimeout, q)
		if err != nil {
			t.Fatalf("%q directly on the primary: %v", q, err)
		}
		return res.first()
	}
	count := fmt.Sprintf("SELECT COUNT(*) FROM audit WHERE tbl = '%s'", fn)
	run("BEGIN")
	before := mustAtoi(t, run(count))
	run(query)
	n := mustAtoi(t, run(count)) - before
	run("ROLLBACK")
	return n
}

// expectCalls runs each query through c, in order, and checks that each
// returned one row and that together they ran the writing function fn n
// times on the primary.
func (m *misroute) expectCalls(t *testing.T, c *sql.Conn, fn string, n int, queries ...string) {
	t.Helper()
	before := m.calls(t, fn)
	for _, q := range queries {
		res, err := m.run(c, q)
		if err != nil {
			t.Errorf("%q through switchyard: %v", q, err)
			continue
		}
		if len(res.Rows) != 1 {
			t.Errorf("%q through switchyard returned %d rows, want 1", q, len(res.Rows))
		}
	}
	if got := m.calls(t, fn) - before; got != n {
		t.Errorf("%q ran %s %d times on the primary, want %d", queries, fn, got, n)
	}
}

// testReadOnlyTx runs statements that write, or end the transaction and
// then write, inside START TRANSACTION READ ONLY, which switchyard serves
// from a replica. A server runs most of them (DDL, TRUNCATE and LOCK TABLES
// commit the transaction first; SET GLOBAL, CALL and GET_LOCK are not
// refused); through switchyard each must either run on the primary or be
// refused, and never run on a replica.
func (m *misroute) testReadOnlyTx(t *testing.T) {
	// begin opens a read-only transaction and reads in it, so that it is
	// under way on a replica before the statement under test.
	begin := func(t *testing.T) *sql.Conn {
		t.Helper()
		c := m.session(t)
		m.mustRun(t, c, "START TRANSACTION READ ONLY")
		m.mustRun(t, c, "SELECT COUNT(*) FROM t")
		if id := mustAtoi(t, m.mustRun(t, c, "SELECT @@server_id").first()); id == m.sb.Primary.ServerID {
			t.Fatalf("the read-only transaction runs on the primary: the attack would prove nothing")
		}
		return c
	}
	refused := func(t *testing.T, q string, err error) {
		t.Logf("%q in a read-only transaction was refused: %v (acceptable: it did not run on a replica)", q, err)
	}

	m.attack(t, "create_table", func(t *testing.T) {
		c := begin(t)
		q := "CREATE TABLE ro_created (a INT)"
		_, err := m.run(c, q)
		onPrimary := m.tableExists(t, m.sb.Primary, "ro_created")
		switch {
		case err != nil:
			refused(t, q, err)
		case !onPrimary:
			t.Errorf("%q in a read-only transaction succeeded, but mr.ro_created is not on the primary", q)
		}
		m.sync(t)
		for _, r := range m.sb.Replicas {
			if on := m.tableExists(t, r, "ro_created"); on != onPrimary {
				t.Errorf("mr.ro_created exists on %s: %v, on the primary: %v", r.Name, on, onPrimary)
			}
		}
	})

	m.attack(t, "truncate", func(t *testing.T) {
		c := begin(t)
		q := "TRUNCATE TABLE trunc"
		_, err := m.run(c, q)
		left := m.rootValue(t, m.sb.Primary, "SELECT COUNT(*) FROM mr.trunc")
		switch {
		case err != nil:
			refused(t, q, err)
		case left != "0":
			t.Errorf("%q in a read-only transaction succeeded, but the primary's mr.trunc still holds %s rows", q, left)
		}
		m.sync(t)
		for _, r := range m.sb.Replicas {
			if n := m.rootValue(t, r, "SELECT COUNT(*) FROM mr.trunc"); n != left {
				t.Errorf("mr.trunc holds %s rows on %s, %s on the primary", n, r.Name, left)
			}
		}
	})

	m.attack(t, "set_global", func(t *testing.T) {
		t.Cleanup(func() { m.restoreMaxConns(t) })
		c := begin(t)
		q := "SET GLOBAL max_connections = 491"
		if _, err := m.run(c, q); err != nil {
			refused(t, q, err)
			m.expectMaxConns(t, mustAtoi(t, m.maxConns[m.sb.Primary.Name]))
			return
		}
		m.expectMaxConns(t, 491)
	})

	m.attack(t, "call_committing_procedure", func(t *testing.T) {
		c := begin(t)
		id := m.rowID()
		q := fmt.Sprintf("CALL p_commit(%d)", id)
		want := 1
		if _, err := m.run(c, q); err != nil {
			refused(t, q, err)
			want = 0
		}
		m.expectRows(t, id, want)
	})

	m.attack(t, "get_lock", func(t *testing.T) {
		c := begin(t)
		q := "SELECT GET_LOCK('ro_lock', 0)"
		res, err := m.run(c, q)
		if err == nil && res.first() == "1" {
			m.expectLockOnPrimary(t, "ro_lock")
			return
		}
		if err != nil {
			refused(t, q, err)
		} else {
			t.Errorf("%q in a read-only transaction returned %s, want 1", q, res.first())
		}
		for name, holder := range m.lockHolders(t, "ro_lock") {
			if name != m.sb.Primary.Name && holder != "NULL" {
				t.Errorf("IS_USED_LOCK('ro_lock') = %s on %s: the lock was taken on a replica", holder, name)
			}
		}
	})

	m.attack(t, "lock_tables", func(t *testing.T) {
		c := begin(t)
		q := "LOCK TABLES t WRITE"
		_, err := m.run(c, q)
		if err != nil {
			refused(t, q, err)
		} else if !m.tableInUse(t, m.sb.Primary, "t") {
			t.Errorf("%q in a read-only transaction succeeded, but mr.t is not locked on the primary", q)
		}
		for _, r := range m.sb.Replicas {
			if m.tableInUse(t, r, "t") {
				t.Errorf("mr.t is locked on %s: LOCK TABLES ran on a replica", r.Name)
			}
		}
		if _, err := m.run(c, "UNLOCK TABLES"); err != nil {
			t.Errorf("UNLOCK TABLES: %v", err)
		}
		c.Close() // whatever happened, no lock outlives the subtest
	})

	m.attack(t, "insert", func(t *testing.T) {
		c := begin(t)
		id := m.rowID()
		q := fmt.Sprintf("INSERT INTO t VALUES (%d, 'read-only tx')", id)
		_, err := m.run(c, q)
		if n := errNumber(err); n != 1792 {
			t.Errorf("%q in a read-only transaction: %v, want error 1792 (ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION), as a server answers", q, err)
		}
		m.mustRun(t, c, "ROLLBACK")
		m.expectRows(t, id, 0)
	})

	// BEGIN commits the read-only transaction and opens a read-write one,
	// which must be on the primary: the inserts are seen there, uncommitted,
	// and nowhere else; after ROLLBACK they are nowhere.
	m.attack(t, "begin_insert_rollback", func(t *testing.T) {
		c := begin(t)
		m.mustRun(t, c, "BEGIN")
		ids := []int{m.rowID(), m.rowID()}
		for _, id := range ids {
			m.mustRun(t, c, fmt.Sprintf("INSERT INTO t VALUES (%d, 'rolled back')", id))
		}
		for _, id := range ids {
			for _, srv := range m.sb.Servers() {
				got, want := m.dirtyRows(t, srv, id), 0
				if srv == m.sb.Primary {
					want = 1
				}
				if got != want {
					t.Errorf("before ROLLBACK, %s holds %d rows with id %d, committed or not, want %d: the transaction must be open on the primary",
						srv.Name, got, id, want)
				}
			}
		}
		m.mustRun(t, c, "ROLLBACK")
		for _, id := range ids {
			m.expectRows(t, id, 0)
		}
	})
}

// dirtyRows counts the rows of mr.t with id on srv, committed or not.
func (m *misroute) dirtyRows(t *testing.T, srv *sandbox.Server, id int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := m.root(t, srv).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Discard the connection rather than hand it back to the shared
		// root pool in READ UNCOMMITTED.
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		c.Close()
	}()
	if _, err := c.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM mr.t WHERE id = ?", id).Scan(&n); err != nil {
		t.Fatalf("dirty read on %s: %v", srv.Name, err)
	}
	return n
}

// idleWait is longer than the test config's pool.release_idle (20 ms):
// sleeping it makes the session hand its backend connections back, so the
// next statement runs on a connection that must be given the session's
// state again. The sleep is the point, not a readiness wait.
const idleWait = 200 * time.Millisecond

// testSQLMode hides a call in what a lexer that ignores the session's
// sql_mode reads as one string literal: with NO_BACKSLASH_ESCAPES a
// backslash ends no quote, with ANSI_QUOTES "..." is an identifier. Each
// statement runs right after the SET and again after the session went idle.
func (m *misroute) testSQLMode(t *testing.T) {
	for _, tc := range []struct{ name, mode, sql string }{
		{"no_backslash_escapes", "NO_BACKSLASH_ESCAPES", `SELECT 'a\', f_ins() -- '`},
		{"ansi_quotes", "ANSI_QUOTES", `SELECT 1 AS "x\", f_ins() -- "`},
	} {
		m.attack(t, tc.name, func(t *testing.T) {
			c := m.session(t)
			m.mustRun(t, c, "SET SESSION sql_mode = '"+tc.mode+"'")
			m.expectTwoColumnCall(t, c, tc.sql)
			time.Sleep(idleWait)
			m.expectTwoColumnCall(t, c, tc.sql)
		})
	}
}

// expectTwoColumnCall runs q, which the server reads as two columns, the
// second a call of f_ins, and checks that it called f_ins once, on the
// primary.
func (m *misroute) expectTwoColumnCall(t *testing.T, c *sql.Conn, q string) {
	t.Helper()
	before := m.calls(t, "f_ins")
	res, err := m.run(c, q)
	if err != nil {
		t.Errorf("%q through switchyard: %v", q, err)
		return
	}
	if len(res.Cols) != 2 {
		t.Errorf("%q through switchyard returned %d columns %q, want 2: the server did not read it as planned", q, len(res.Cols), res.Cols)
	}
	if got := m.calls(t, "f_ins") - before; got != 1 {
		t.Errorf("%q ran f_ins %d times on the primary, want 1", q, got)
	}
}

// testCharsets hides a call behind a multibyte character whose second byte
// is 0x5C, a backslash in ASCII: in the session's character set the quote
// after it ends the string, to a byte-wise lexer it is escaped.
func (m *misroute) testCharsets(t *testing.T) {
	for _, tc := range []struct {
		charset string
		char    string // one character, its second byte 0x5C
	}{
		{"gbk", "\xbf\x5c"},
		{"sjis", "\x95\x5c"}, // 表
		{"big5", "\xa4\x5c"}, // 功
	} {
		m.attack(t, tc.charset, func(t *testing.T) {
			c := m.session(t)
			m.mustRun(t, c, "SET NAMES "+tc.charset)
			q := "SELECT '" + tc.char + "', f_ins() -- '"
			m.expectTwoColumnCall(t, c, q)
			time.Sleep(idleWait)
			m.expectTwoColumnCall(t, c, q)
		})
	}
}

// testSequence takes values from a NOCACHE sequence, so each one changes
// the sequence table: in Oracle mode (seq.nextval, no parentheses) and the
// standard ways. Each value must come from the primary, and the replicas'
// copies must move only by replication.
func (m *misroute) testSequence(t *testing.T) {
	if m.mysql() {
		t.Skip("sequences are MariaDB's (CREATE SEQUENCE, NEXTVAL): MySQL has none")
	}
	for _, tc := range []struct{ name, mode, sql string }{
		{"oracle_nextval", "ORACLE", "SELECT seq.nextval FROM dual"},
		{"next_value_for", "", "SELECT NEXT VALUE FOR seq"},
		{"nextval_function", "", "SELECT NEXTVAL(seq)"},
	} {
		m.attack(t, tc.name, func(t *testing.T) {
			c := m.session(t)
			if tc.mode != "" {
				m.mustRun(t, c, "SET sql_mode = "+tc.mode)
			}
			before := m.sequenceNext(t, m.sb.Primary)
			res := m.mustRun(t, c, tc.sql)
			if got := res.first(); got != strconv.Itoa(before) {
				t.Errorf("%q through switchyard returned %s; the primary's next value was %d", tc.sql, got, before)
			}
			if after := m.sequenceNext(t, m.sb.Primary); after != before+1 {
				t.Errorf("%q: the primary's sequence moved from %d to %d, want %d", tc.sql, before, after, before+1)
			}
			m.sync(t)
			want := m.sequenceNext(t, m.sb.Primary)
			for _, r := range m.sb.Replicas {
				if got := m.sequenceNext(t, r); got != want {
					t.Errorf("mr.seq's next value on %s is %d, on the primary %d", r.Name, got, want)
				}
			}
		})
	}
}

// testTxReadOnly lifts transaction read-only mode, for one statement or the
// session, before statements that write through functions. Whatever a proxy
// does to keep replica sessions read-only, the client must not be able to
// lift it and write on a replica.
func (m *misroute) testTxReadOnly(t *testing.T) {
	for _, fn := range []struct{ name, call string }{{"f_ins", "f_ins()"}, {"json_log", "json_log(1)"}} {
		m.attack(t, "set_statement_"+fn.name, func(t *testing.T) {
			if m.mysql() {
				t.Skip("SET STATEMENT ... FOR is MariaDB's; MySQL's per-statement setting is the SET_VAR hint (set_var_*)")
			}
			m.expectCalls(t, m.session(t), fn.name, 1, "SET STATEMENT tx_read_only = 0 FOR SELECT "+fn.call)
		})
		// MySQL's optimizer hint sets a variable for one statement; it
		// refuses transaction_read_only with a warning, and the call runs
		// all the same. To MariaDB the hint is a comment.
		m.attack(t, "set_var_"+fn.name, func(t *testing.T) {
			m.expectCalls(t, m.session(t), fn.name, 1, "SELECT /*+ SET_VAR(transaction_read_only = 0) */ "+fn.call)
		})
	}
	for _, tc := range []struct{ name, set string }{
		{"session_transaction_read_write", "SET SESSION TRANSACTION READ WRITE"},
		{"session_tx_read_only_0", "SET SESSION " + m.txReadOnlyVar() + " = 0"},
	} {
		set := tc.set
		m.attack(t, tc.name, func(t *testing.T) {
			c := m.session(t)
			m.mustRun(t, c, set)
			m.mustRun(t, c, "SELECT COUNT(*) FROM t")
			m.expectCalls(t, c, "json_log", 1, "SELECT json_log(1)")
			// ANY_VALUE is MySQL's built-in: there the call writes nothing.
			anyValue := 1
			if m.mysql() {
				anyValue = 0
			}
			m.expectCalls(t, c, "any_value", anyValue, "SELECT any_value(1)")
			m.expectCalls(t, c, "f_ins", 2, "SELECT * FROM v_writes", "SELECT f_ins()")
			m.mustRun(t, c, "SELECT COUNT(*) FROM t")
		})
	}
}

// testNamedLocks takes named locks, plainly and inside expressions that
// also sleep: a lock taken on a replica protects nothing. Each must be held
// on the primary only and released there through the same session.
func (m *misroute) testNamedLocks(t *testing.T) {
	for _, tc := range []struct{ name, lock, sql string }{
		{"get_lock", "lk", "SELECT GET_LOCK('lk', 0)"},
		{"do_get_lock", "lk_do", "DO GET_LOCK('lk_do', 0)"},
		{"sleep_plus_get_lock", "lk_sleep", "SELECT SLEEP(0) + GET_LOCK('lk_sleep', 0)"},
		{"if_sleep_get_lock", "lk_if", "SELECT IF(SLEEP(0) = 0, GET_LOCK('lk_if', 0), 0)"},
	} {
		m.attack(t, tc.name, func(t *testing.T) { m.lockAndRelease(t, tc.lock, tc.sql) })
	}
	// A stored function named like a built-in of MariaDB that MySQL lacks
	// takes the lock: MySQL calls it. A read-only transaction, which stops a
	// stored function's writes on a replica, does not stop GET_LOCK.
	m.attack(t, "stored_sha1_get_lock", func(t *testing.T) {
		if !m.mysql() {
			t.Skip("SHA1 is MariaDB's built-in: an unqualified call never reaches the stored function mr.sha1")
		}
		m.lockAndRelease(t, "lk_sha1", "SELECT sha1('lk_sha1')")
	})
}

// lockAndRelease runs q, which takes the named lock, in a new session: the
// lock must be held on the primary only, and released there through the
// same session.
func (m *misroute) lockAndRelease(t *testing.T, lock, q string) {
	c := m.session(t)
	res := m.mustRun(t, c, q)
	if len(res.Rows) > 0 && res.first() != "1" {
		t.Errorf("%q returned %s, want 1", q, res.first())
	}
	m.expectLockOnPrimary(t, lock)
	// A plain read while the lock is held, then the release.
	m.mustRun(t, c, "SELECT COUNT(*) FROM t")
	rel := fmt.Sprintf("SELECT RELEASE_LOCK('%s')", lock)
	if got := m.mustRun(t, c, rel).first(); got != "1" {
		t.Errorf("%q returned %s, want 1: the session's lock is not where the release ran", rel, got)
	}
	for name, holder := range m.lockHolders(t, lock) {
		if holder != "NULL" {
			t.Errorf("IS_USED_LOCK('%s') = %s on %s after the release", lock, holder, name)
		}
	}
}

// testSetGlobal changes a global variable, alone and mixed with session
// assignments: it must change on the primary only.
func (m *misroute) testSetGlobal(t *testing.T) {
	for i, q := range []string{
		"SET GLOBAL max_connections = %d",
		"SET @@GLOBAL.max_connections = %d",
		"SET SESSION sql_mode = DEFAULT, GLOBAL max_connections = %d",
		"SET @@session.sql_mode = DEFAULT, @@global.max_connections = %d",
	} {
		m.attack(t, fmt.Sprint("form", i+1), func(t *testing.T) {
			t.Cleanup(func() { m.restoreMaxConns(t) })
			n := 481 + i
			m.mustRun(t, m.session(t), fmt.Sprintf(q, n))
			m.expectMaxConns(t, n)
		})
	}
}

// testAdminAPI expects switchyard to say which replicas the app user could
// write on: GET /api/backends lists the users in each backend's
// writable_by, and switchyard_replica_writable{backend,user} is 1. The
// monitor finds out, so the answer is polled for.
func (m *misroute) testAdminAPI(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		problems := m.adminProblems()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range problems {
				t.Error(p)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testEvidence checks the whole suite's traces once replication has caught
// up: no replica wrote anything itself, every replica holds what the
// primary holds, replication still runs, and plain reads ran on replicas.
func (m *misroute) testEvidence(t *testing.T) {
	m.sync(t)
	if ws := m.replicaWrites(t); len(ws) > 0 {
		var msgs []string
		for _, w := range ws {
			msgs = append(msgs, w.msg)
		}
		t.Errorf("%d traces of writes that ran on replicas during the suite:\n  %s", len(ws), strings.Join(msgs, "\n  "))
	}
	primary := m.sb.Primary
	want := m.tables(t, primary)
	for _, r := range m.sb.Replicas {
		if got := m.tables(t, r); !slices.Equal(got, want) {
			t.Errorf("tables of mr on %s: %q; on the primary: %q", r.Name, got, want)
		}
		for _, tt := range want {
			name, typ, _ := strings.Cut(tt, " ")
			if typ == "VIEW" {
				continue // selecting from v_writes writes
			}
			if only, missing := lineDiff(m.dumpTable(t, r, name), m.dumpTable(t, primary, name)); only != "" || missing != "" {
				t.Errorf("mr.%s on %s differs from the primary's:\nrows only on %s:\n%srows only on the primary:\n%s", name, r.Name, r.Name, only, missing)
			}
		}
		if !m.mysql() { // MySQL has no sequences
			if got, want := m.sequenceNext(t, r), m.sequenceNext(t, primary); got != want {
				t.Errorf("mr.seq's next value on %s is %d, on the primary %d", r.Name, got, want)
			}
		}
		d := m.sb.Dialect()
		st, err := runSQL(m.root(t, r), stmtTimeout, d.ReplicaStatus)
		if err != nil || len(st.Rows) != 1 {
			t.Errorf("%s on %s: %d rows, %v", d.ReplicaStatus, r.Name, len(st.Rows), err)
			continue
		}
		status := map[string]string{}
		for i, col := range st.Cols {
			status[col] = st.Rows[0][i]
		}
		if status[d.IORunning] != "Yes" || status[d.SQLRunning] != "Yes" ||
			status["Last_SQL_Error"] != "" || status["Last_IO_Error"] != "" {
			t.Errorf("replication on %s: %s=%s %s=%s Last_SQL_Error=%q Last_IO_Error=%q",
				r.Name, d.IORunning, status[d.IORunning], d.SQLRunning, status[d.SQLRunning], status["Last_SQL_Error"], status["Last_IO_Error"])
		}
	}
	total := 0
	for _, n := range m.plainReads {
		total += n
	}
	t.Logf("plain reads by server_id: %v (%d in all; the primary is %d)", m.plainReads, total, primary.ServerID)
	if total == 0 || m.plainReads[primary.ServerID] > 0 {
		t.Errorf("plain reads: %v by server_id; want all of them on replicas", m.plainReads)
	}
}
