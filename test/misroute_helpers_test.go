package test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// The fixture of TestMisroute: a sandbox whose replicas would take any write
// the app user sends them, a schema that leaves a trace of every write on
// the server that ran it, and probes of each server as root. The traces are
// read in misroute_evidence_helpers_test.go.

// mrSchema is TestMisroute's database.
const mrSchema = "mr"

// stmtTimeout bounds every statement the misroute tests send.
const stmtTimeout = 30 * time.Second

// writingFuncs are the stored functions that insert a row into mr.audit,
// named like built-ins or like families of built-ins (json_, st_, column_,
// regexp_, mbr) a classifier might take for pure functions.
var writingFuncs = []struct{ name, params string }{
	{"json_log", "a INT"}, {"st_log", ""}, {"column_log", ""}, {"regexp_log", ""},
	{"mbrlog", ""}, {"any_value", "a INT"}, {"firstrow", "a INT"}, {"f_ins", ""},
	// Built-ins on MariaDB, not on MySQL 9.7 (testFunctions).
	{"json_detailed", "a INT"}, {"md5", "a INT"},
}

// mrSetup creates the schema, as root on the primary of the engine flavor.
// audit's key starts with server_id, so that a row a replica writes itself
// never collides with one replicated from the primary: a misrouted write
// leaves evidence without stopping replication, and later subtests still
// run against healthy replicas.
func mrSetup(flavor string) []string {
	stmts := []string{
		"SET GLOBAL log_bin_trust_function_creators = 1",
		"DROP DATABASE IF EXISTS " + mrSchema,
		"CREATE DATABASE " + mrSchema,
		"USE " + mrSchema,
		`CREATE TABLE audit (
		   id BIGINT NOT NULL AUTO_INCREMENT,
		   server_id INT UNSIGNED NOT NULL,
		   tbl VARCHAR(64) NOT NULL,
		   op VARCHAR(16) NOT NULL,
		   at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
		   PRIMARY KEY (server_id, id), KEY (id))`,
		"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))",
		"CREATE TABLE trunc (id INT PRIMARY KEY)",
		"INSERT INTO trunc VALUES (1), (2), (3)",
	}
	if flavor == sandbox.FlavorMariaDB { // MySQL has no sequences
		stmts = append(stmts, "CREATE SEQUENCE seq NOCACHE")
	}
	for _, tbl := range []string{"t", "trunc"} {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, fmt.Sprintf(
				"CREATE TRIGGER %s_%s AFTER %s ON %s FOR EACH ROW "+
					"INSERT INTO audit (server_id, tbl, op) VALUES (@@server_id, '%s', '%s')",
				tbl, strings.ToLower(op), op, tbl, tbl, op))
		}
	}
	for _, f := range writingFuncs {
		ret := "1"
		if f.params != "" {
			ret = "a"
		}
		stmts = append(stmts, fmt.Sprintf(
			"CREATE FUNCTION %s(%s) RETURNS INT MODIFIES SQL DATA BEGIN "+
				"INSERT INTO audit (server_id, tbl, op) VALUES (@@server_id, '%s', 'CALL'); RETURN %s; END",
			f.name, f.params, f.name, ret))
	}
	return append(stmts,
		// Named like MariaDB's built-in, which MySQL 9.7 removed (testNamedLocks).
		"CREATE FUNCTION sha1(name VARCHAR(64)) RETURNS INT NO SQL RETURN GET_LOCK(name, 0)",
		"CREATE VIEW v_writes AS SELECT f_ins() AS x",
		// p_commit ends whatever transaction is open, even a read-only one,
		// and writes: a CALL is never safe on a replica.
		"CREATE PROCEDURE p_commit(i INT) BEGIN COMMIT; SET SESSION TRANSACTION READ WRITE; "+
			"INSERT INTO t VALUES (i, 'p_commit'); END",
	)
}

// misroute holds TestMisroute's sandbox, switchyard and evidence.
type misroute struct {
	sb *sandbox.Sandbox
	sy *routedSwitchyard
	// app opens the sessions attacks run in, each its own *sql.Conn.
	app *sql.DB
	// reads opens the sessions of plain reads, which must run on replicas.
	reads *sql.DB
	// maxConns is each server's max_connections before the test, by name.
	maxConns map[string]string
	nextRow  int
	// reported holds the replica writes already reported, so that each is
	// blamed on the subtest that made it.
	reported map[string]bool
	// plainReads counts the plain reads each server answered, by server_id.
	plainReads map[int]int
	// primaryUUID is the primary's server_uuid on MySQL, whose GTIDs name it.
	primaryUUID string
}

// rowID returns a fresh id for mr.t.
func (m *misroute) rowID() int {
	m.nextRow++
	return m.nextRow
}

// root returns a root pool on srv.
func (m *misroute) root(t testing.TB, srv *sandbox.Server) *sql.DB {
	t.Helper()
	db, err := m.sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// rootValue runs query as root on srv and returns its first value.
func (m *misroute) rootValue(t testing.TB, srv *sandbox.Server, query string, args ...any) string {
	t.Helper()
	res, err := runSQL(m.root(t, srv), stmtTimeout, query, args...)
	if err != nil {
		t.Fatalf("%s on %s as root: %v", query, srv.Name, err)
	}
	return res.first()
}

// session opens a client session through switchyard for one subtest.
func (m *misroute) session(t testing.TB) *sql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := m.app.Conn(ctx)
	if err != nil {
		t.Fatalf("connect through switchyard: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs query through the session c.
func (m *misroute) run(c *sql.Conn, query string) (stmtResult, error) {
	return runSQL(c, stmtTimeout, query)
}

// mustRun runs query through c and fails the test if it fails.
func (m *misroute) mustRun(t testing.TB, c *sql.Conn, query string) stmtResult {
	t.Helper()
	res, err := m.run(c, query)
	if err != nil {
		t.Fatalf("%q through switchyard: %v", query, err)
	}
	return res
}

// calls returns how often the writing function (or table) name ran on the
// primary: audit rows with the primary's server_id.
func (m *misroute) calls(t testing.TB, name string) int {
	t.Helper()
	return mustAtoi(t, m.rootValue(t, m.sb.Primary,
		"SELECT COUNT(*) FROM mr.audit WHERE tbl = ? AND server_id = ?", name, m.sb.Primary.ServerID))
}

// rowCount returns how many committed rows of mr.t with id the server srv
// holds.
func (m *misroute) rowCount(t testing.TB, srv *sandbox.Server, id int) int {
	t.Helper()
	return mustAtoi(t, m.rootValue(t, srv, "SELECT COUNT(*) FROM mr.t WHERE id = ?", id))
}

// expectRows checks that the primary holds want rows with id, and, once
// replication has caught up, so does every replica.
func (m *misroute) expectRows(t testing.TB, id, want int) {
	t.Helper()
	if got := m.rowCount(t, m.sb.Primary, id); got != want {
		t.Errorf("mr.t holds %d rows with id %d on the primary, want %d", got, id, want)
	}
	m.sync(t)
	for _, r := range m.sb.Replicas {
		if got := m.rowCount(t, r, id); got != want {
			t.Errorf("mr.t holds %d rows with id %d on %s, want %d as on the primary", got, id, r.Name, want)
		}
	}
}

// sync waits until the replicas have applied everything the primary has
// binlogged, and fails the test if they do not within 15 s.
func (m *misroute) sync(t testing.TB) {
	t.Helper()
	if err := waitReplicated(m.sb, 15*time.Second); err != nil {
		t.Errorf("replicas did not catch up: %v", err)
	}
}

// lockHolders returns IS_USED_LOCK(name) on every server, by server name.
func (m *misroute) lockHolders(t testing.TB, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, srv := range m.sb.Servers() {
		out[srv.Name] = m.rootValue(t, srv, "SELECT IS_USED_LOCK(?)", name)
	}
	return out
}

// expectLockOnPrimary checks that the named lock is held on the primary and
// on no replica.
func (m *misroute) expectLockOnPrimary(t testing.TB, name string) {
	t.Helper()
	h := m.lockHolders(t, name)
	if h[m.sb.Primary.Name] == "NULL" {
		t.Errorf("IS_USED_LOCK('%s') is NULL on the primary: the lock was not taken there", name)
	}
	for _, r := range m.sb.Replicas {
		if h[r.Name] != "NULL" {
			t.Errorf("IS_USED_LOCK('%s') = %s on %s: the lock was taken on a replica", name, h[r.Name], r.Name)
		}
	}
}

// globalOn returns the global value of variable on every server, by name.
func (m *misroute) globalOn(t testing.TB, variable string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, srv := range m.sb.Servers() {
		out[srv.Name] = m.rootValue(t, srv, "SELECT @@GLOBAL."+variable)
	}
	return out
}

// expectMaxConns checks that max_connections is want on the primary and
// unchanged on every replica.
func (m *misroute) expectMaxConns(t testing.TB, want int) {
	t.Helper()
	got := m.globalOn(t, "max_connections")
	if got[m.sb.Primary.Name] != strconv.Itoa(want) {
		t.Errorf("max_connections on the primary = %s, want %d", got[m.sb.Primary.Name], want)
	}
	for _, r := range m.sb.Replicas {
		if got[r.Name] != m.maxConns[r.Name] {
			t.Errorf("max_connections on %s = %s, want %s as before: SET GLOBAL ran on a replica", r.Name, got[r.Name], m.maxConns[r.Name])
		}
	}
}

// restoreMaxConns puts every server's max_connections back.
func (m *misroute) restoreMaxConns(t testing.TB) {
	for _, srv := range m.sb.Servers() {
		if _, err := runSQL(m.root(t, srv), stmtTimeout, "SET GLOBAL max_connections = "+m.maxConns[srv.Name]); err != nil {
			t.Errorf("restore max_connections on %s: %v", srv.Name, err)
		}
	}
}

// tableInUse reports whether mr.tbl is locked or in use on srv.
func (m *misroute) tableInUse(t testing.TB, srv *sandbox.Server, tbl string) bool {
	t.Helper()
	res, err := runSQL(m.root(t, srv), stmtTimeout, "SHOW OPEN TABLES FROM mr LIKE '"+tbl+"'")
	if err != nil {
		t.Fatalf("SHOW OPEN TABLES on %s: %v", srv.Name, err)
	}
	for _, row := range res.Rows {
		if len(row) > 2 && row[2] != "0" {
			return true
		}
	}
	return false
}

// tableExists reports whether mr.tbl exists on srv.
func (m *misroute) tableExists(t testing.TB, srv *sandbox.Server, tbl string) bool {
	t.Helper()
	return m.rootValue(t, srv, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'mr' AND table_name = ?", tbl) != "0"
}

// sequenceNext returns mr.seq's next value on srv without taking it.
func (m *misroute) sequenceNext(t testing.TB, srv *sandbox.Server) int {
	t.Helper()
	return mustAtoi(t, m.rootValue(t, srv, "SELECT next_not_cached_value FROM mr.seq"))
}

// mustAtoi parses a number the server returned.
func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
