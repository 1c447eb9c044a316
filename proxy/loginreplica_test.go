package proxy

import (
	"errors"
	"testing"

	driver "github.com/go-sql-driver/mysql"
)

// TestLoginWhilePrimaryDown: with the primary unreachable (dead, or a
// failover under way), a client still logs in, on a replica, and reads; a
// write says the primary cannot be reached.
func TestLoginWhilePrimaryDown(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	const read, write = "SELECT * FROM t", "INSERT INTO t VALUES (1)"
	fp.replicas[0].setScript(answer(read, rowsOf("a", "replica")))
	fp.primary.close()
	db := fp.db(t, "")
	if got := queryString(t, db, read); got != "replica" {
		t.Errorf("read with the primary down answered %q, want the replica's", got)
	}
	_, err := db.Exec(write)
	var me *driver.MySQLError
	if !errors.As(err, &me) || me.Number != codeConnRefused {
		t.Errorf("write with the primary down: %v, want error %d", err, codeConnRefused)
	}
}
