package proxy

import (
	"fmt"
	osexec "os/exec"
	"strings"
	"testing"
)

// TestErrorsReadableByLibmariadb sends Switchyard's own errors (a backend
// that cannot be reached, one lost during a statement) to the mariadb
// client, which uses libmariadb as mysqlclient (Django) does: it must show
// the code and the message. libmariadb reads a client-library code
// (2000-2999) in a server's error packet as a malformed packet.
func TestErrorsReadableByLibmariadb(t *testing.T) {
	cli, err := osexec.LookPath("mariadb")
	if err != nil {
		t.Skip("no mariadb client: ./scripts/deps.sh installs it")
	}
	fp := startFakeProxy(t, 1, nil)
	const lose = "INSERT INTO t VALUES (1)"
	fp.primary.setScript(func(c *fakeConn, cmd fakeCommand) fakeReply {
		if cmd.text == lose {
			c.nc.Close() // the backend goes away during the statement
			return fakeNoReply{}
		}
		return nil
	})
	host, port, _ := strings.Cut(fp.addr, ":")
	run := func(q string) string {
		out, _ := osexec.Command(cli, "-h"+host, "-P"+port, "-u"+appUser, "-p"+appPass, "-e", q).CombinedOutput()
		return string(out)
	}
	if out := run(lose); !strings.Contains(out, fmt.Sprintf("ERROR %d (08S01)", codeLostBackend)) || !strings.Contains(out, "Lost connection to") {
		t.Errorf("backend lost during a statement: the client printed\n%s", out)
	}
	fp.primary.close()
	if out := run("SET autocommit=1"); !strings.Contains(out, fmt.Sprintf("ERROR %d (08S01)", codeConnRefused)) || !strings.Contains(out, "cannot connect to") {
		t.Errorf("primary unreachable: the client printed\n%s", out)
	}
}
