package router

import (
	"testing"
	"time"
)

// TestDecide walks a session through statements and checks each decision.
func TestDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pol := Policy{Consistency: ConsistencySession, SessionWindow: time.Second}
	type step struct {
		sql       string
		at        time.Duration // since t0
		want      Target
		inTx      bool // primary status after the statement
		autocommt bool
	}
	steps := []step{
		{"SELECT 1", 0, TargetReplica, false, true},
		{"SELECT * FROM t FOR UPDATE", 0, TargetPrimary, false, true},
		{"INSERT INTO t VALUES (1)", 10 * time.Millisecond, TargetPrimary, false, true},
		{"SELECT * FROM t", 500 * time.Millisecond, TargetPrimary, false, true}, // read-your-writes window
		{"SELECT * FROM t", 1500 * time.Millisecond, TargetReplica, false, true},
		{"SELECT FOUND_ROWS()", 1500 * time.Millisecond, TargetLast, false, true},
		{"SELECT LAST_INSERT_ID()", 1500 * time.Millisecond, TargetPrimary, false, true},
		{"BEGIN", 2 * time.Second, TargetPrimary, true, true},
		{"SELECT 1", 2 * time.Second, TargetPrimary, true, true},
		{"COMMIT", 2 * time.Second, TargetPrimary, false, true},
		{"SELECT 1", 4 * time.Second, TargetReplica, false, true},
		{"SET autocommit=0", 4 * time.Second, TargetPrimary, false, false},
		{"SELECT 1", 4 * time.Second, TargetPrimary, false, false},
		{"SET autocommit=1", 4 * time.Second, TargetPrimary, false, true},
		{"SELECT 1", 6 * time.Second, TargetReplica, false, true},
		{"CREATE TEMPORARY TABLE tmp (a INT)", 6 * time.Second, TargetPrimary, false, true},
		{"SELECT 1", 8 * time.Second, TargetPrimary, false, true},
	}
	st := NewState()
	for i, s := range steps {
		c := Classify(s.sql)
		now := t0.Add(s.at)
		d := Decide(c, &st, pol, now)
		if d.Target != s.want {
			t.Fatalf("step %d: Decide(%q) = %v (%s), want %v", i, s.sql, d.Target, d.Reason, s.want)
		}
		Note(c, d.Target, true, &st, s.inTx, s.autocommt, now)
	}
	if st.Pins&PinTempTable == 0 {
		t.Errorf("temporary table did not pin: %v", st.Pins)
	}
	st.Reset()
	if d := Decide(Classify("SELECT 1"), &st, pol, t0.Add(time.Hour)); d.Target != TargetReplica {
		t.Errorf("after Reset: %v", d)
	}
}

func TestDecideLocksAndReadOnlyTx(t *testing.T) {
	pol := Policy{Consistency: ConsistencyEventual}
	now := time.Unix(1000, 0)
	st := NewState()
	run := func(sql string, want Target) {
		t.Helper()
		c := Classify(sql)
		d := Decide(c, &st, pol, now)
		if d.Target != want {
			t.Fatalf("Decide(%q) = %v (%s), want %v", sql, d.Target, d.Reason, want)
		}
		Note(c, d.Target, true, &st, false, true, now)
	}
	run("SELECT GET_LOCK('a', 1)", TargetPrimary)
	run("SELECT GET_LOCK('b', 1)", TargetPrimary)
	run("SELECT 1", TargetPrimary)
	run("SELECT RELEASE_LOCK('a')", TargetPrimary)
	run("SELECT 1", TargetPrimary)
	run("SELECT RELEASE_ALL_LOCKS()", TargetPrimary)
	run("SELECT 1", TargetReplica)
	run("LOCK TABLES t READ", TargetPrimary)
	run("SELECT 1", TargetPrimary)
	run("UNLOCK TABLES", TargetPrimary)
	run("START TRANSACTION READ ONLY", TargetReplica)
	run("SELECT 1", TargetReplica)
	run("SELECT * FROM t FOR UPDATE", TargetRefuse) // as the server refuses it in a read-only transaction
	run("COMMIT", TargetReplica)
	run("INSERT INTO t VALUES (1)", TargetPrimary)
	run("SET @v = 1", TargetPrimary)
	run("SELECT @v", TargetPrimary)
	run("/* switchyard:route=primary */ SELECT 1", TargetPrimary)
	run("/* switchyard:route=replica */ SELECT 1", TargetReplica)
	run("SELECT 1; SELECT 2", TargetPrimary)
}

func TestLazyImplicit(t *testing.T) {
	pol := Policy{Consistency: ConsistencyEventual, LazyImplicit: true}
	now := time.Unix(1000, 0)
	st := NewState()
	Note(Classify("SET autocommit=0"), TargetPrimary, true, &st, false, false, now)
	if d := Decide(Classify("SELECT 1"), &st, pol, now); d.Target != TargetReplica {
		t.Fatalf("lazy read before a write: %v", d)
	}
	Note(Classify("UPDATE t SET a = 1"), TargetPrimary, true, &st, true, false, now)
	if d := Decide(Classify("SELECT 1"), &st, pol, now); d.Target != TargetPrimary {
		t.Fatalf("lazy read after a write: %v", d)
	}
	pol.LazyImplicit = false
	st = NewState()
	Note(Classify("SET autocommit=0"), TargetPrimary, true, &st, false, false, now)
	if d := Decide(Classify("SELECT 1"), &st, pol, now); d.Target != TargetPrimary {
		t.Fatalf("autocommit=0 without lazy: %v", d)
	}
}

func BenchmarkDecide(b *testing.B) {
	c := Classify("SELECT c FROM sbtest1 WHERE id=?")
	st := NewState()
	pol := Policy{Consistency: ConsistencySession, SessionWindow: time.Second}
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		d := Decide(c, &st, pol, now)
		Note(c, d.Target, true, &st, false, true, now)
	}
}

func TestFoundRowsHoldsUntilNextStatement(t *testing.T) {
	now := time.Unix(1000, 0)
	st := NewState()
	note := func(sql string, ok bool) {
		t.Helper()
		Note(Classify(sql), TargetReplica, ok, &st, false, true, now)
	}
	note("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", true)
	if !st.FoundRows {
		t.Error("after SELECT SQL_CALC_FOUND_ROWS: FoundRows = false")
	}
	if d := Decide(Classify("SELECT FOUND_ROWS()"), &st, Policy{}, now); d.Target != TargetLast {
		t.Errorf("FOUND_ROWS() goes to %v (%s), want last", d.Target, d.Reason)
	}
	note("SELECT FOUND_ROWS()", true)
	if st.FoundRows {
		t.Error("after FOUND_ROWS(): FoundRows = true")
	}
	note("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", false)
	if st.FoundRows {
		t.Error("after a failed SELECT SQL_CALC_FOUND_ROWS: FoundRows = true")
	}
}

// TestDecideReadOnlyTx checks what runs where inside a read-only transaction
// on a replica: only what the transaction may do goes to its replica.
func TestDecideReadOnlyTx(t *testing.T) {
	pol := Policy{Consistency: ConsistencyEventual}
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		sql  string
		want Target
		ends bool // EndsReadOnlyTx
	}{
		{"SELECT * FROM t", TargetReplica, false},
		{"SELECT f_unknown(1)", TargetReplica, false}, // the read-only replica session refuses it if it writes
		{"SHOW WARNINGS", TargetLast, false},
		{"SELECT LAST_INSERT_ID()", TargetPrimary, false},
		{"INSERT INTO t VALUES (1)", TargetRefuse, false},
		{"UPDATE t SET a = 1", TargetRefuse, false},
		{"CALL p()", TargetRefuse, false},
		{"SELECT NEXT VALUE FOR s", TargetRefuse, false},
		{"SELECT * FROM t FOR UPDATE", TargetRefuse, false},
		{"SELECT 1 INTO @v", TargetRefuse, false},
		{"SELECT 1; SELECT 2", TargetRefuse, false},
		{"SET GLOBAL max_connections = 10", TargetPrimary, false},
		{"SELECT GET_LOCK('a', 0)", TargetPrimary, false},
		{"SET @v = 1", TargetPrimary, false},
		{"SET SESSION sql_mode = ''", TargetPrimary, false},
		{"SAVEPOINT a", TargetReplica, false},
		{"COMMIT", TargetReplica, false},
		{"ROLLBACK", TargetReplica, false},
		{"BEGIN", TargetPrimary, true},
		{"START TRANSACTION", TargetPrimary, true},
		{"START TRANSACTION READ ONLY", TargetReplica, true},
		{"CREATE TABLE t2 (a INT)", TargetPrimary, true},
		{"TRUNCATE t", TargetPrimary, true},
		{"LOCK TABLES t WRITE", TargetPrimary, true},
		{"SET autocommit = 1", TargetPrimary, true},
	} {
		st := NewState()
		st.ReadOnlyTx = true
		c := Classify(tc.sql)
		if got := EndsReadOnlyTx(c); got != tc.ends {
			t.Errorf("EndsReadOnlyTx(%q) = %v, want %v", tc.sql, got, tc.ends)
		}
		if tc.ends {
			st.ReadOnlyTx = false // what the proxy does before deciding
		}
		if d := Decide(c, &st, pol, now); d.Target != tc.want {
			t.Errorf("in a read-only transaction, Decide(%q) = %v (%s), want %v", tc.sql, d.Target, d.Reason, tc.want)
		}
	}
}
