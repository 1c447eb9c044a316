package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// TestSQLValue checks how tracked session variable values are written back
// into SET statements: numbers bare, everything else a quoted string that
// the server reads back as the same value.
func TestSQLValue(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"max_join_size", "42", "42"},
		{"long_query_time", "10.000000", "10.000000"},
		{"div_precision_increment", "-1", "-1"},
		{"x", ".5", ".5"},
		{"time_zone", "+01:00", "'+01:00'"},
		{"time_zone", "SYSTEM", "'SYSTEM'"},
		{"x", "+5", "'+5'"},   // a leading plus is not a number's spelling the server reports
		{"x", "1e5", "'1e5'"}, // a string that looks like a float stays a string
		{"x", "1E5", "'1E5'"},
		{"x", "inf", "'inf'"}, // ParseFloat takes these; SQL does not
		{"x", "Infinity", "'Infinity'"},
		{"x", "NaN", "'NaN'"},
		{"sql_mode", "STRICT_TRANS_TABLES,ANSI_QUOTES", "'STRICT_TRANS_TABLES,ANSI_QUOTES'"},
		{"x", "it's", "'it''s'"},
		{"x", `a\b`, `'a\\b'`},
		{"x", `\'`, `'\\'''`},
		{"x", `''`, `''''''`},
		{"character_set_results", "", "NULL"},
		{"sql_path", "", "NULL"},
		{"time_zone", "", "''"},
		{"x", "utf8mb4", "'utf8mb4'"},
		{"x", "0x1p4", "'0x1p4'"}, // ParseFloat reads hexadecimal floats; the server reads 0x1 and a name
		{"x", "1_000", "'1_000'"}, // ParseFloat allows Go's digit separators; the server reads a name
		{"x", "1.2.3", "'1.2.3'"},
		{"x", "-", "'-'"},
		{"x", ".", "'.'"},
	} {
		if got := sqlValue(tc.name, tc.value, false); got != tc.want {
			t.Errorf("sqlValue(%q, %q) = %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}

// TestReadOnlyVarLearned has the primary report a variable that no server
// lets a client set (as MySQL reports statement_id) and that untracked does
// not know: the replica refuses the SET that copies it with error 1238. The
// read still runs there, and the variable is never copied again, by this
// session or another.
func TestReadOnlyVarLearned(t *testing.T) {
	// Eventual: reads after the write go to the replica at once.
	fp := startFakeProxy(t, 1, func(o *Options) { o.Routing.Consistency = router.ConsistencyEventual })
	const write = "UPDATE t SET v = 1"
	n := 0
	fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		if cmd.text != write {
			return nil
		}
		n++
		return fakeOK{affected: 1, status: fakeIdle, vars: []fakeVar{{"fake_counter", fmt.Sprint(n)}, {"time_zone", "+01:00"}}}
	})
	fp.replicas[0].setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch {
		case cmd.text == "SELECT * FROM t":
			return rowsOf("a", "replica")
		case strings.HasPrefix(cmd.text, "SET SESSION ") && strings.Contains(cmd.text, "fake_counter"):
			return fakeErr{codeReadOnlyVar, "HY000", "Variable 'fake_counter' is a read only variable"}
		}
		return nil
	})
	for i := range 2 { // a second session must not stumble on it either
		db := fp.db(t, "")
		for range 2 {
			if _, err := db.Exec(write); err != nil {
				t.Fatal(err)
			}
			if got := queryString(t, db, "SELECT * FROM t"); got != "replica" {
				t.Fatalf("session %d: the read answered %q, want the replica's answer", i, got)
			}
		}
		db.Close()
	}
	// The second session may get a replica connection of its own, which
	// it brings to its time zone.
	var sets []string
	for _, q := range fp.replicas[0].queries() {
		if strings.HasPrefix(q, "SET SESSION ") && !strings.Contains(q, "TRANSACTION") && q != trackSetup {
			sets = append(sets, q)
		}
	}
	want := []string{"SET SESSION fake_counter=1, time_zone='+01:00'", "SET SESSION time_zone='+01:00'"}
	if len(sets) < 2 || !slices.Equal(sets[:2], want) || slices.ContainsFunc(sets[2:], func(q string) bool { return q != want[1] }) {
		t.Errorf("the replica received\n\t%s\nwant\n\t%s\nand at most the second again", strings.Join(sets, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestReadOnlyVarIn reads the variable name out of the servers' refusals.
func TestReadOnlyVarIn(t *testing.T) {
	for _, tc := range []struct {
		err  error
		name string
		ok   bool
	}{
		{newSQLError(codeReadOnlyVar, "Variable 'statement_id' is a read only variable"), "statement_id", true},
		{newSQLError(codeReadOnlyVar, "Variable 'sql_log_bin' is a SESSION variable and can't be used with SET GLOBAL"), "", false},
		{newSQLError(mysql.ER_UNKNOWN_ERROR, "Variable 'x' is a read only variable"), "", false},
		{newSQLError(codeReadOnlyVar, "Variable 'x is a read only variable"), "", false},
		{errors.New("Variable 'x' is a read only variable"), "", false},
		{nil, "", false},
	} {
		name, ok := readOnlyVarIn(tc.err)
		if name != tc.name || ok != tc.ok {
			t.Errorf("readOnlyVarIn(%v) = %q, %v, want %q, %v", tc.err, name, ok, tc.name, tc.ok)
		}
	}
}

// TestLearnStateMySQL feeds an OK packet as MySQL 9.7 sent it after a
// CREATE DATABASE, with session_track_gtids=OWN_GTID: the GTID becomes the
// session's last, and statement_id is not session state.
func TestLearnStateMySQL(t *testing.T) {
	ok := []byte("\x00\x01\x00\x02@\x00\x00\x00=\x00\x10\fstatement_id\x0222\x03)\x00'c1d77ffd-f17b-11f1-9daa-02fc00000001:15")
	s, bc := benchSession(nil, nil)
	l := parseOKLayout(ok)
	s.learnState(bc, ok[l.rest+1:]) // after the empty message
	if want := "c1d77ffd-f17b-11f1-9daa-02fc00000001:15"; s.lastGTID != want {
		t.Errorf("last GTID %q, want %q", s.lastGTID, want)
	}
	if len(s.vars) != 0 || s.varsGen != 0 {
		t.Errorf("session variables %v (generation %d), want none", s.vars, s.varsGen)
	}
}
