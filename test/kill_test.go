package test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// TestKill checks KILL through Switchyard, with the connection id a client
// sees in the greeting: KILL QUERY from a second connection of the same user
// interrupts a running statement at once, another user is refused, and KILL
// CONNECTION ends the target's connection and its backend thread.
func TestKill(t *testing.T) {
	sb := requireFixtures(t)
	sy := startSwitchyard(t, sb, nil)
	e := sy.endpoint()
	appDB, ids := goDBWithIDs(t, e, goConn{User: appUser.Name, Password: appUser.Password})
	target, targetID := connWithID(t, appDB, ids)
	killer := goDB(t, e, goConn{User: appUser.Name, Password: appUser.Password})
	stranger := goDB(t, e, goConn{User: otherUser.Name, Password: otherUser.Password})

	type result struct {
		slept int // what SLEEP returned: 0 after the full time, 1 when interrupted
		err   error
		took  time.Duration
	}
	// sleep starts SELECT SLEEP(30) on the target and waits until a backend
	// (a replica or the primary, as switchyard routes it) runs it.
	sleep := func(t *testing.T, marker string) (<-chan result, backendThread) {
		ch := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			var v int
			err := target.QueryRowContext(ctx, "SELECT SLEEP(30) AS "+marker).Scan(&v)
			ch <- result{v, err, time.Since(start)}
		}()
		return ch, findThread(t, sb, marker)
	}
	wantCode := func(t *testing.T, err error, code uint16, what string) {
		t.Helper()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != code {
			t.Errorf("%s: got %v, want MySQL error %d", what, err, code)
		}
	}

	t.Run("query", func(t *testing.T) {
		res, bt := sleep(t, "kill_query_marker")
		t.Logf("SELECT SLEEP(30) runs on %s as thread %d", bt.srv.Name, bt.id)
		_, err := stranger.Exec(fmt.Sprintf("KILL QUERY %d", targetID))
		wantCode(t, err, 1095, "KILL QUERY by another user")
		_, err = stranger.Exec(fmt.Sprintf("KILL CONNECTION %d", targetID))
		wantCode(t, err, 1095, "KILL CONNECTION by another user")
		select {
		case r := <-res:
			t.Fatalf("SELECT SLEEP(30) ended after another user's KILL: %v", r.err)
		default:
		}
		start := time.Now()
		if _, err := killer.Exec(fmt.Sprintf("KILL QUERY %d", targetID)); err != nil {
			t.Fatalf("KILL QUERY %d by the same user: %v", targetID, err)
		}
		select {
		case r := <-res:
			if sb.Flavor == sandbox.FlavorMySQL {
				// MySQL ends an interrupted SLEEP that is the whole
				// query early, returning 1 and no error; MariaDB fails
				// the query with 1317 (ER_QUERY_INTERRUPTED).
				if r.err != nil || r.slept != 1 {
					t.Errorf("the killed SELECT SLEEP(30) on MySQL: got %d, %v, want 1 and no error (interrupted)", r.slept, r.err)
				}
			} else {
				wantCode(t, r.err, 1317, "the killed SELECT SLEEP(30)")
			}
			t.Logf("KILL QUERY interrupted SELECT SLEEP(30) %s after the KILL", time.Since(start).Round(time.Millisecond))
		case <-time.After(5 * time.Second):
			t.Fatalf("SELECT SLEEP(30) still running 5s after KILL QUERY")
		}
		var one int
		if err := target.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
			t.Errorf("the connection whose query was killed cannot run another: %v", err)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		_, err := killer.Exec("KILL QUERY 4000000000")
		wantCode(t, err, 1094, "KILL QUERY of an unknown id")
	})

	t.Run("connection", func(t *testing.T) {
		res, bt := sleep(t, "kill_connection_marker")
		if _, err := killer.Exec(fmt.Sprintf("KILL CONNECTION %d", targetID)); err != nil {
			t.Fatalf("KILL CONNECTION %d by the same user: %v", targetID, err)
		}
		select {
		case r := <-res:
			if r.err == nil {
				t.Errorf("SELECT SLEEP(30) on a killed connection succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("SELECT SLEEP(30) still running 5s after KILL CONNECTION")
		}
		if err := target.PingContext(t.Context()); err == nil {
			t.Errorf("the killed connection still answers a ping")
		}
		bt.waitGone(t)
	})
}

// backendThread is a connection on one sandbox server.
type backendThread struct {
	srv *sandbox.Server
	db  *sql.DB // root on srv
	id  int64
}

// findThread waits until some server runs a statement of user app
// containing marker, and returns that server's thread.
func findThread(t testing.TB, sb *sandbox.Sandbox, marker string) backendThread {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, srv := range sb.Servers() {
			db, err := sb.RootDB(srv)
			if err != nil {
				t.Fatal(err)
			}
			var id int64
			err = db.QueryRow(`SELECT ID FROM information_schema.PROCESSLIST
				WHERE USER = ? AND ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%', ?, '%')`, appUser.Name, marker).Scan(&id)
			if err == nil {
				return backendThread{srv: srv, db: db, id: id}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server runs the statement marked %s within 10s", marker)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// waitGone waits until the thread has left its server's process list.
func (bt backendThread) waitGone(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := bt.db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", bt.id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend thread %d on %s still exists 10s after KILL CONNECTION", bt.id, bt.srv.Name)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
