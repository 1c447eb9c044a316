package proxy

import (
	"io"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"
)

// TestLoadDataLocal loads rows from the client with LOAD DATA LOCAL INFILE:
// the server's request for the file reaches the client, the file's content
// reaches the server, and the rows land on the primary.
func TestLoadDataLocal(t *testing.T) {
	p := startProxy(t, eventual)
	c := p.session(t, "")
	exec(t, c, "CREATE DATABASE IF NOT EXISTS loaddata")
	exec(t, c, "CREATE TABLE IF NOT EXISTS loaddata.t (id INT PRIMARY KEY, v VARCHAR(10))")
	exec(t, c, "DELETE FROM loaddata.t")
	const name = "switchyard-proxy-test"
	driver.RegisterReaderHandler(name, func() io.Reader { return strings.NewReader("1\tone\n2\ttwo\n3\tthree\n") })
	t.Cleanup(func() { driver.DeregisterReaderHandler(name) })
	res := exec(t, c, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE loaddata.t")
	if n, err := res.RowsAffected(); err != nil || n != 3 {
		t.Errorf("LOAD DATA LOCAL INFILE: %d rows affected (%v), want 3", n, err)
	}
	if got := serverID(t, c, "/* switchyard:route=primary */ SELECT COUNT(*) FROM loaddata.t"); got != 3 {
		t.Errorf("the primary holds %d rows, want 3", got)
	}
	// The session carries on in step.
	if got := serverID(t, c, "SELECT 42"); got != 42 {
		t.Errorf("SELECT 42 = %d after the load", got)
	}
}
