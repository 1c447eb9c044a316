package test

import (
	"database/sql"
	"fmt"
	"testing"
)

// TestSessionStateNotInherited checks that a client never sees what an
// earlier client left in a pooled backend connection: its current database
// (changed with a USE statement rather than COM_INIT_DB), user variables,
// session variables or temporary tables.
func TestSessionStateNotInherited(t *testing.T) {
	sb := requireFixtures(t)
	sy := startSwitchyard(t, sb, nil)
	c := goConn{User: appUser.Name, Password: appUser.Password}
	ctx := t.Context()

	// probe reports which backend connection answered (server and thread)
	// and the session state it shows, once for a plain read (which may go to
	// a replica) and once inside a transaction (on the primary).
	type state struct {
		conn                 string
		db, leak             sql.NullString
		modeReset, tmpExists bool
	}
	probe := func(t *testing.T, conn *sql.Conn) []state {
		t.Helper()
		var out []state
		for _, inTx := range []bool{false, true} {
			if inTx {
				if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
			}
			var s state
			var srv, thread int64
			err := conn.QueryRowContext(ctx, "SELECT @@server_id, CONNECTION_ID(), DATABASE(), @leak, @@SESSION.sql_mode = @@GLOBAL.sql_mode").
				Scan(&srv, &thread, &s.db, &s.leak, &s.modeReset)
			if err != nil {
				t.Fatal(err)
			}
			s.conn = fmt.Sprintf("server %d thread %d", srv, thread)
			var n int
			s.tmpExists = conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM compat.leak_tmp").Scan(&n) == nil
			if inTx {
				if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, s)
		}
		return out
	}
	open := func(t *testing.T) (*sql.DB, *sql.Conn) {
		t.Helper()
		db := goDB(t, sy.endpoint(), c)
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return db, conn
	}

	// Each kind of state is left by its own first client, so that a
	// connection switchyard can clean up is not discarded for another
	// kind's sake.
	for _, leave := range []struct{ name, sql string }{
		{"database", "USE compat"},
		{"user variable", "SET @leak = 'left behind'"},
		{"session variable", "SET SESSION sql_mode = 'ANSI_QUOTES'"},
		{"temporary table", "CREATE TEMPORARY TABLE compat.leak_tmp (id INT)"},
	} {
		t.Run(leave.name, func(t *testing.T) {
			db, conn := open(t)
			used := map[string]bool{}
			for _, s := range probe(t, conn) {
				used[s.conn] = true
			}
			if _, err := conn.ExecContext(ctx, leave.sql); err != nil {
				t.Fatalf("%s: %v", leave.sql, err)
			}
			for _, s := range probe(t, conn) {
				used[s.conn] = true
			}
			conn.Close()
			db.Close()

			// The backend connections go back to the pools once switchyard
			// has seen the client quit; later clients may get them. Look
			// until they have all come back or enough tries have passed.
			reused := 0
			for attempt := 0; attempt < 20 && len(used) > 0; attempt++ {
				db, conn := open(t)
				for _, s := range probe(t, conn) {
					if !used[s.conn] {
						continue
					}
					reused++
					delete(used, s.conn)
					if s.db.Valid || s.leak.Valid || !s.modeReset || s.tmpExists {
						t.Errorf("after %q, a later client on %s inherits state: DATABASE() = %v, @leak = %v, sql_mode reset %v, temporary table visible %v",
							leave.sql, s.conn, s.db, s.leak, s.modeReset, s.tmpExists)
					}
				}
				conn.Close()
				db.Close()
			}
			if reused == 0 {
				t.Skipf("after %q switchyard handed none of the client's backend connections to a later client in 20 tries (it discards them); nothing to check", leave.sql)
			}
			t.Logf("after %q: %d backend connections reused by later clients, none with the state", leave.sql, reused)
		})
	}
}
