package proxy

import (
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestTrackedStateReplays runs statements that make the server report
// session state (MySQL reports statement_id after each one) on the primary,
// each followed by a read on a replica, with and without OK terminators:
// every read succeeds under the session's state, and no variable the
// server reports had to be learned as read-only (untracked lists them).
func TestTrackedStateReplays(t *testing.T) {
	p := startProxy(t, eventual)
	for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF} {
		t.Run(fmt.Sprintf("deprecate_eof=%v", caps != 0), func(t *testing.T) {
			r := loginRaw(t, p.addr, appUser, appPass, "", caps)
			for _, step := range []struct {
				q    string
				inTx bool // the read after it runs in the transaction, on the primary
				ddl  bool // the replicas must have it before the read (eventual consistency)
			}{
				{q: "SET NAMES utf8mb4"},
				{q: "SET time_zone = '+01:00'"},
				{q: "CREATE DATABASE IF NOT EXISTS tracked", ddl: true},
				{q: "USE tracked"},
				{q: "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)", ddl: true},
				{q: "REPLACE INTO t VALUES (1)"},
				{q: "BEGIN", inTx: true},
				{q: "REPLACE INTO t VALUES (2)", inTx: true},
				{q: "COMMIT"},
				{q: "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"},
				{q: "SET SESSION sql_mode = 'ANSI_QUOTES'"},
				{q: "SELECT 1"},
			} {
				if res := r.query(step.q); res[0][0] == 0xff {
					t.Fatalf("%s: %v", step.q, parseErr(res[0]))
				}
				if step.ddl {
					// Otherwise the replica may not know the database yet,
					// and the read rightly runs on the primary.
					if err := p.sb.WaitReplicated(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				res := r.query("SELECT @@server_id, @@time_zone")
				if res[0][0] == 0xff {
					t.Fatalf("read after %s: %v", step.q, parseErr(res[0]))
				}
				row := firstRow(t, res, caps)
				onPrimary := row[0] == fmt.Sprint(p.sb.Primary.ServerID)
				if onPrimary != step.inTx {
					t.Errorf("read after %s ran on server %s (primary: %v), want the primary %v", step.q, row[0], onPrimary, step.inTx)
				}
				if row[1] != "+01:00" && step.q != "SET NAMES utf8mb4" {
					t.Errorf("read after %s: time_zone %s, want +01:00", step.q, row[1])
				}
			}
		})
	}
	if m := p.readOnlyVars.m.Load(); m != nil {
		t.Errorf("read-only variables learned from refusals: %v; list them in untracked", *m)
	}
}

// firstRow returns the values of the first row of a text result set read
// by rawClient.query.
func firstRow(t *testing.T, res [][]byte, caps uint32) []string {
	t.Helper()
	n, _, _ := mysql.LengthEncodedInt(res[0])
	i := 1 + int(n)
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		i++ // the EOF after the column definitions
	}
	if i >= len(res)-1 {
		t.Fatalf("no row in %d packets", len(res))
	}
	var values []string
	for b := res[i]; len(b) > 0; {
		v, _, k, err := mysql.LengthEncodedString(b)
		if err != nil {
			t.Fatalf("row % x: %v", res[i], err)
		}
		values = append(values, string(v))
		b = b[k:]
	}
	return values
}
