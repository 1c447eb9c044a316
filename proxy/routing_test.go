package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/router"
)

// Routing tests prove where each statement ran: with @@server_id in the
// statement itself, or with the servers' own Com_* counters.

// session opens one client session (a single connection) through the proxy.
func (p *testProxy) session(t *testing.T, params string) *sql.Conn {
	t.Helper()
	db := p.db(t, appUser, appPass, params)
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serverID runs a one-row query whose first column is @@server_id.
func serverID(t *testing.T, c *sql.Conn, q string, args ...any) int {
	t.Helper()
	var id int
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return id
}

func exec(t *testing.T, c *sql.Conn, q string, args ...any) sql.Result {
	t.Helper()
	res, err := c.ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// counters reads a global status counter from every server.
func counters(t *testing.T, sb *sandbox.Sandbox, name string) map[int]int64 {
	t.Helper()
	out := make(map[int]int64)
	for _, srv := range sb.Servers() {
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var n string
		var v int64
		if err := db.QueryRow(fmt.Sprintf("SHOW GLOBAL STATUS LIKE '%s'", name)).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		out[srv.ServerID] = v
	}
	return out
}

// delta runs f and returns by how much counter name grew on each server.
func delta(t *testing.T, sb *sandbox.Sandbox, name string, f func()) map[int]int64 {
	t.Helper()
	before := counters(t, sb, name)
	f()
	after := counters(t, sb, name)
	for id := range after {
		after[id] -= before[id]
	}
	return after
}

func eventual(o *Options) { o.Routing.Consistency = router.ConsistencyEventual }

func TestReadsSpreadByWeight(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		eventual(o)
		for _, b := range o.Backends {
			if b.Name == "replica1" {
				b.Weight = 2
			}
		}
	})
	c := p.session(t, "")
	counts := map[int]int{}
	for range 300 {
		counts[serverID(t, c, "SELECT @@server_id")]++
	}
	r1, r2 := p.sb.Replicas[0].ServerID, p.sb.Replicas[1].ServerID
	if counts[r1] != 200 || counts[r2] != 100 || counts[p.sb.Primary.ServerID] != 0 {
		t.Fatalf("reads by server_id = %v, want 200 on %d, 100 on %d, none on the primary", counts, r1, r2)
	}
}

func TestWritesGoToPrimary(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "multiStatements=true")
	// DDL replicates as statements, so counters cannot tell where it ran;
	// but the test user cannot write on a read_only replica, so success
	// shows it ran on the primary.
	exec(t, c, "CREATE DATABASE IF NOT EXISTS rw")
	exec(t, c, "CREATE TABLE IF NOT EXISTS rw.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	exec(t, c, "DROP PROCEDURE IF EXISTS rw.p")
	exec(t, c, "CREATE PROCEDURE rw.p() SELECT @@server_id")
	exec(t, c, "INSERT INTO rw.t (v) VALUES (1)")
	primary := p.sb.Primary.ServerID
	t.Run("sequence", func(t *testing.T) {
		skipUnlessMariaDB(t, p.sb, "CREATE SEQUENCE")
		exec(t, c, "CREATE SEQUENCE IF NOT EXISTS rw.s")
		const q = "SELECT @@server_id + 0 * NEXT VALUE FOR rw.s"
		if got := serverID(t, c, q); got != primary {
			t.Errorf("%s ran on server %d, want the primary %d", q, got, primary)
		}
	})
	cases := []string{
		"SELECT @@server_id FROM rw.t LIMIT 1 FOR UPDATE",
		"SELECT @@server_id FROM rw.t LIMIT 1 LOCK IN SHARE MODE",
		"SELECT @@server_id + 0 * GET_LOCK('routing-test', 1)",
		"SELECT @@server_id + 0 * RELEASE_LOCK('routing-test')",
		"/* switchyard:route=primary */ SELECT @@server_id",
	}
	for _, q := range cases {
		if got := serverID(t, c, q); got != primary {
			t.Errorf("%s ran on server %d, want the primary %d", q, got, primary)
		}
	}
	var id int
	if err := c.QueryRowContext(context.Background(), "CALL rw.p()").Scan(&id); err != nil || id != primary {
		t.Errorf("CALL ran on %d (%v), want the primary", id, err)
	}
	// Writes record the server that ran them in the rows they write.
	exec(t, c, "DELETE FROM rw.t")
	exec(t, c, "INSERT INTO rw.t (id, v) VALUES (10, @@server_id)")
	exec(t, c, "INSERT INTO rw.t (id, v) VALUES (11, 0)")
	exec(t, c, "UPDATE rw.t SET v = @@server_id WHERE id = 11")
	exec(t, c, "REPLACE INTO rw.t (id, v) VALUES (12, @@server_id)")
	exec(t, c, "SELECT @@server_id INTO @where_into FROM rw.t LIMIT 1")
	if got := serverID(t, c, "/* switchyard:route=primary */ SELECT COUNT(*) FROM rw.t WHERE v = @@server_id"); got != 3 {
		t.Errorf("%d of 3 writes ran on the primary", got)
	}
	if got := serverID(t, c, "SELECT @where_into"); got != primary {
		t.Errorf("SELECT ... INTO ran on %d", got)
	}
	exec(t, c, "DELETE FROM rw.t WHERE v = @@server_id")
	if got := serverID(t, c, "/* switchyard:route=primary */ SELECT COUNT(*) FROM rw.t"); got != 0 {
		t.Errorf("DELETE left %d rows: it did not run on the primary", got)
	}
	d := delta(t, p.sb, "Com_select", func() {
		exec(t, c, "SELECT 1; SELECT 2")
	})
	if d[primary] != 2 {
		t.Errorf("multi-statement: Com_select by server = %v, want 2 on the primary", d)
	}
}

func TestTransactionsPinPrimary(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	primary := p.sb.Primary.ServerID
	exec(t, c, "CREATE DATABASE IF NOT EXISTS tx")
	exec(t, c, "CREATE TABLE IF NOT EXISTS tx.t (id INT PRIMARY KEY)")
	exec(t, c, "DELETE FROM tx.t")

	exec(t, c, "BEGIN")
	if got := serverID(t, c, "SELECT @@server_id"); got != primary {
		t.Errorf("read in transaction ran on %d", got)
	}
	exec(t, c, "INSERT INTO tx.t VALUES (1)")
	exec(t, c, "SAVEPOINT a")
	exec(t, c, "INSERT INTO tx.t VALUES (2)")
	exec(t, c, "ROLLBACK TO SAVEPOINT a")
	var n int
	if err := c.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM tx.t").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in transaction after ROLLBACK TO = %d (%v), want 1", n, err)
	}
	exec(t, c, "COMMIT")
	if got := serverID(t, c, "SELECT @@server_id"); got == primary {
		t.Errorf("read after COMMIT ran on the primary")
	}

	// SET autocommit=0, as Django's atomic() and SQLAlchemy do.
	exec(t, c, "SET autocommit=0")
	if got := serverID(t, c, "SELECT @@server_id"); got != primary {
		t.Errorf("read with autocommit=0 ran on %d, want the primary", got)
	}
	exec(t, c, "COMMIT")
	exec(t, c, "SET autocommit=1")
	if got := serverID(t, c, "SELECT @@server_id"); got == primary {
		t.Errorf("read after autocommit=1 ran on the primary")
	}

	// START TRANSACTION READ ONLY pins one replica.
	exec(t, c, "START TRANSACTION READ ONLY")
	first := serverID(t, c, "SELECT @@server_id")
	if first == primary {
		t.Fatalf("read-only transaction ran on the primary")
	}
	for range 5 {
		if got := serverID(t, c, "SELECT @@server_id"); got != first {
			t.Fatalf("read-only transaction moved from %d to %d", first, got)
		}
	}
	exec(t, c, "COMMIT")
	seen := map[int]bool{}
	for range 4 {
		seen[serverID(t, c, "SELECT @@server_id")] = true
	}
	if len(seen) != 2 {
		t.Errorf("after the read-only transaction reads went to %v, want both replicas", seen)
	}
}

func TestLazyImplicitTransactions(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		eventual(o)
		o.Routing.LazyImplicit = true
	})
	c := p.session(t, "")
	primary := p.sb.Primary.ServerID
	exec(t, c, "CREATE DATABASE IF NOT EXISTS lazy")
	exec(t, c, "CREATE TABLE IF NOT EXISTS lazy.t (id INT PRIMARY KEY)")
	exec(t, c, "SET autocommit=0")
	if got := serverID(t, c, "SELECT @@server_id"); got == primary {
		t.Errorf("read before the first write ran on the primary")
	}
	exec(t, c, "REPLACE INTO lazy.t VALUES (1)")
	if got := serverID(t, c, "SELECT @@server_id"); got != primary {
		t.Errorf("read after the first write ran on %d, want the primary", got)
	}
	exec(t, c, "COMMIT")
	if got := serverID(t, c, "SELECT @@server_id"); got == primary {
		t.Errorf("read after COMMIT ran on the primary")
	}
	var ac int
	if err := c.QueryRowContext(context.Background(), "/* switchyard:route=primary */ SELECT @@autocommit").Scan(&ac); err != nil || ac != 0 {
		t.Errorf("@@autocommit = %d (%v), want 0", ac, err)
	}
}

func TestSessionStateFollows(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	primary := p.sb.Primary.ServerID
	exec(t, c, "CREATE DATABASE IF NOT EXISTS state")
	exec(t, c, "SET NAMES latin1")
	exec(t, c, "SET time_zone = '+05:30', sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION', foreign_key_checks = 0")
	exec(t, c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
	exec(t, c, "USE state")
	waitReplicated(t, p.sb)
	for range 4 { // both replicas
		var id int
		var tz, mode, cs, db, iso string
		var fk int
		err := c.QueryRowContext(context.Background(),
			"SELECT @@server_id, @@time_zone, @@sql_mode, @@character_set_client, DATABASE(), @@foreign_key_checks, @@"+p.sb.Dialect().TxIsolation).
			Scan(&id, &tz, &mode, &cs, &db, &fk, &iso)
		if err != nil {
			t.Fatal(err)
		}
		if id == primary {
			t.Errorf("read ran on the primary")
		}
		if tz != "+05:30" || mode != "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION" || cs != "latin1" || db != "state" || fk != 0 || iso != "READ-COMMITTED" {
			t.Errorf("server %d: time_zone=%s sql_mode=%s charset=%s db=%s fk=%d isolation=%s", id, tz, mode, cs, db, fk, iso)
		}
	}
	// With ANSI_QUOTES on, "x" is an identifier: the classifier must know.
	if got := serverID(t, c, `SELECT "@@server_id" FROM (SELECT @@server_id AS "@@server_id") AS d`); got == primary {
		t.Errorf("ANSI_QUOTES read ran on the primary")
	}
}

func TestPreviousStatementFunctions(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	exec(t, c, "CREATE DATABASE IF NOT EXISTS prev")
	exec(t, c, "CREATE TABLE IF NOT EXISTS prev.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	numbersTable(t, p.sb, "prev.numbers", 50) // read on a replica below
	res := exec(t, c, "INSERT INTO prev.t (v) VALUES (1), (2), (3)")
	want, _ := res.LastInsertId()
	var got int64
	if err := c.QueryRowContext(context.Background(), "SELECT LAST_INSERT_ID()").Scan(&got); err != nil || got != want {
		t.Errorf("LAST_INSERT_ID() = %d (%v), want %d", got, err, want)
	}
	exec(t, c, "SET @v = 42")
	var v int
	if err := c.QueryRowContext(context.Background(), "SELECT @v").Scan(&v); err != nil || v != 42 {
		t.Errorf("SELECT @v = %d (%v), want 42", v, err)
	}
	// FOUND_ROWS() answers about the read before it, wherever that ran.
	rows, err := c.QueryContext(context.Background(), "SELECT SQL_CALC_FOUND_ROWS @@server_id FROM prev.numbers LIMIT 2")
	if err != nil {
		t.Fatal(err)
	}
	var ranOn int
	for rows.Next() {
		_ = rows.Scan(&ranOn)
	}
	rows.Close()
	var found, foundOn int
	if err := c.QueryRowContext(context.Background(), "SELECT FOUND_ROWS(), @@server_id").Scan(&found, &foundOn); err != nil || found != 50 || foundOn != ranOn {
		t.Errorf("FOUND_ROWS() = %d on %d (%v), want 50 on %d", found, foundOn, err, ranOn)
	}
	// SHOW WARNINGS answers about the statement before it.
	exec(t, c, "SELECT CAST('x' AS SIGNED)")
	var level, msg string
	var code int
	if err := c.QueryRowContext(context.Background(), "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != 1292 {
		t.Errorf("SHOW WARNINGS = %d %q (%v), want the 1292 of the read before", code, msg, err)
	}
}

func TestServerSideStatePins(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	primary := p.sb.Primary.ServerID
	exec(t, c, "CREATE DATABASE IF NOT EXISTS pins")
	exec(t, c, "CREATE TABLE IF NOT EXISTS pins.t (id INT)")
	replicaRead := func(what string) {
		t.Helper()
		if got := serverID(t, c, "SELECT @@server_id"); got == primary {
			t.Errorf("%s: read ran on the primary", what)
		}
	}
	primaryRead := func(what string) {
		t.Helper()
		if got := serverID(t, c, "SELECT @@server_id"); got != primary {
			t.Errorf("%s: read ran on %d, want the primary", what, got)
		}
	}
	replicaRead("start")
	exec(t, c, "LOCK TABLES pins.t READ")
	primaryRead("LOCK TABLES")
	exec(t, c, "UNLOCK TABLES")
	replicaRead("UNLOCK TABLES")
	var ok int
	_ = c.QueryRowContext(context.Background(), "SELECT GET_LOCK('pin-test', 5)").Scan(&ok)
	primaryRead("GET_LOCK")
	_ = c.QueryRowContext(context.Background(), "SELECT RELEASE_LOCK('pin-test')").Scan(&ok)
	replicaRead("RELEASE_LOCK")
	exec(t, c, "CREATE TEMPORARY TABLE pins.tmp (a INT)")
	exec(t, c, "INSERT INTO pins.tmp VALUES (7)")
	var a, id int
	if err := c.QueryRowContext(context.Background(), "SELECT a, @@server_id FROM pins.tmp").Scan(&a, &id); err != nil || a != 7 || id != primary {
		t.Errorf("temporary table read: a=%d on %d (%v), want 7 on the primary", a, id, err)
	}
	primaryRead("temporary table")
}

func TestReadYourWrites(t *testing.T) {
	// The window must outlast any pause between a write and the read after
	// it on a loaded machine, and the test then waits it out.
	p := startProxy(t, func(o *Options) { o.Routing.SessionWindow = 2 * time.Second })
	c := p.session(t, "")
	primary := p.sb.Primary.ServerID
	exec(t, c, "CREATE DATABASE IF NOT EXISTS ryw")
	exec(t, c, "CREATE TABLE IF NOT EXISTS ryw.t (id INT PRIMARY KEY, v INT)")
	exec(t, c, "REPLACE INTO ryw.t VALUES (1, 1)")
	for i := range 50 {
		exec(t, c, "UPDATE ryw.t SET v = ? WHERE id = 1", i)
		var v, id int
		if err := c.QueryRowContext(context.Background(), "SELECT v, @@server_id FROM ryw.t WHERE id = 1").Scan(&v, &id); err != nil || v != i || id != primary {
			t.Fatalf("read after write: v=%d on %d (%v), want %d on the primary", v, id, err, i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for serverID(t, c, "SELECT @@server_id") == primary {
		if time.Now().After(deadline) {
			t.Fatal("reads never left the primary after the window")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPreparedStatementRouting(t *testing.T) {
	p := startProxy(t, eventual)
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(1)
	primary := p.sb.Primary.ServerID
	mustExec(t, db, "CREATE DATABASE IF NOT EXISTS ps")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS ps.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	read, err := db.Prepare("SELECT @@server_id + ? - ?")
	if err != nil {
		t.Fatal(err)
	}
	write, err := db.Prepare("INSERT INTO ps.t (v) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i := range 10 {
		var id int
		if err := read.QueryRow(i, i).Scan(&id); err != nil {
			t.Fatal(err)
		}
		seen[id]++
		if _, err := write.Exec(i); err != nil {
			t.Fatal(err)
		}
	}
	if seen[primary] != 0 || len(seen) != 2 {
		t.Errorf("prepared reads ran on %v, want both replicas and not the primary", seen)
	}
	// The connections keep the statements for the next session that runs
	// the same text: a second client's executes reuse them on the replicas,
	// and its own prepare on the primary is closed when it closes it.
	before := counters(t, p.sb, "Prepared_stmt_count")
	read.Close()
	write.Close()
	db.Close()
	// The first session's connections back in the pool first: a busy
	// machine could otherwise give the second client a fresh primary
	// connection, whose prepare it would keep for the next session.
	waitIdlePools(t, p)
	db2 := p.db(t, appUser, appPass, "")
	db2.SetMaxOpenConns(1)
	read2, err := db2.Prepare("SELECT @@server_id + ? - ?")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		var id int
		if err := read2.QueryRow(i, i).Scan(&id); err != nil || id == primary {
			t.Fatalf("second client: read on %d (%v), want a replica", id, err)
		}
	}
	read2.Close()
	db2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := counters(t, p.sb, "Prepared_stmt_count")
		leaked := false
		for id, n := range after {
			leaked = leaked || n > before[id]
		}
		if !leaked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prepared_stmt_count %v -> %v: statements leaked on the servers", before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPreparedStatementKeepsItsDatabase prepares a statement, changes
// databases and executes it on replicas, where it is prepared lazily: its
// table must be the one of the database it was prepared in, as on a single
// server.
func TestPreparedStatementKeepsItsDatabase(t *testing.T) {
	p := startProxy(t, eventual)
	ctx := context.Background()
	c := p.session(t, "")
	for i, db := range []string{"psdb1", "psdb2"} {
		exec(t, c, "CREATE DATABASE IF NOT EXISTS "+db)
		exec(t, c, "CREATE TABLE IF NOT EXISTS "+db+".t (v INT)")
		exec(t, c, "DELETE FROM "+db+".t")
		exec(t, c, fmt.Sprintf("INSERT INTO %s.t VALUES (%d)", db, i+1))
	}
	waitReplicated(t, p.sb)
	exec(t, c, "USE psdb1")
	st, err := c.PrepareContext(ctx, "SELECT v, @@server_id FROM t WHERE v > ?")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	exec(t, c, "USE psdb2")
	servers := map[int]bool{}
	for range 6 {
		var v, id int
		if err := st.QueryRowContext(ctx, 0).Scan(&v, &id); err != nil {
			t.Fatal(err)
		}
		if v != 1 {
			t.Fatalf("statement prepared in psdb1 read %d on server %d, want psdb1's 1", v, id)
		}
		servers[id] = true
	}
	if servers[p.sb.Primary.ServerID] || len(servers) != 2 {
		t.Errorf("executes ran on %v, want both replicas", servers)
	}
	var db string
	if err := c.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil || db != "psdb2" {
		t.Errorf("DATABASE() = %q (%v) after the executes, want psdb2", db, err)
	}
}

func TestStatusBitsAreTheSession(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		eventual(o)
		o.Routing.LazyImplicit = true
	})
	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	r.query("SET autocommit=0")
	res := r.query("SELECT @@server_id")
	st := terminatorStatus(r.caps, res[len(res)-1])
	if st&0x0002 != 0 {
		t.Errorf("status after a replica read says autocommit is on (0x%04x)", st)
	}
	if got := string(res[len(res)-2][1:]); got == fmt.Sprint(p.sb.Primary.ServerID) {
		t.Errorf("read ran on the primary")
	}
}

// waitReplicated waits until every replica applied the primary's writes.
func waitReplicated(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
}
