package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

// TestPrepareRefused prepares statements the primary refuses, a syntax
// error and one over max_prepared_stmt_count, with a raw client,
// go-sql-driver and PyMySQL: each gets the server's error at once and its
// session goes on.
func TestPrepareRefused(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.MaxOpen = 4 })
	before := holdingsOf(p)
	refuse := func(t *testing.T, sql string, code uint16) {
		t.Run("raw", func(t *testing.T) {
			r := loginRaw(t, p.addr, appUser, appPass, "", 0)
			_ = r.c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			r.command(append([]byte{mysql.COM_STMT_PREPARE}, sql...))
			r.expectErr(code)
			if res := r.query("SELECT 1"); res[0][0] == 0xff {
				t.Fatalf("SELECT 1 after the refused prepare: %v", parseErr(res[0]))
			}
			r.c.nc.Close()
			settledAt(t, p, before)
		})
		t.Run("go-sql-driver", func(t *testing.T) {
			db := p.db(t, appUser, appPass, "readTimeout=5s")
			_, err := db.Prepare(sql)
			var me *driver.MySQLError
			if !errors.As(err, &me) || me.Number != code {
				t.Fatalf("Prepare(%q): %v, want error %d", sql, err, code)
			}
			if got := queryInt(t, db, "SELECT 1"); got != 1 {
				t.Errorf("SELECT 1 = %d", got)
			}
			db.Close()
			settledAt(t, p, before)
		})
		t.Run("pymysql", func(t *testing.T) {
			out := runPyMySQL(t, prepareScript, p.addr, appUser, appPass, sql)
			if want := fmt.Sprintf("error %d\nselect 1\n", code); out != want {
				t.Fatalf("PyMySQL printed %q, want %q", out, want)
			}
			settledAt(t, p, before)
		})
	}
	t.Run("syntax error", func(t *testing.T) {
		refuse(t, "SELEC 1", mysql.ER_PARSE_ERROR)
	})
	t.Run("max_prepared_stmt_count", func(t *testing.T) {
		root, err := p.sb.RootDB(p.sb.Primary)
		if err != nil {
			t.Fatal(err)
		}
		limit := queryInt(t, root, "SELECT @@GLOBAL.max_prepared_stmt_count")
		t.Cleanup(func() {
			if _, err := root.Exec(fmt.Sprintf("SET GLOBAL max_prepared_stmt_count = %d", limit)); err != nil {
				t.Errorf("restore max_prepared_stmt_count: %v", err)
			}
		})
		rootExec(t, p.sb, p.sb.Primary, "SET GLOBAL max_prepared_stmt_count = 0")
		refuse(t, "SELECT 1", mysql.ER_MAX_PREPARED_STMT_COUNT_REACHED)
	})
	settledAt(t, p, before)
}

// TestRefusedPreparesFreeSessions runs 200 sessions that each prepare a
// statement the primary refuses and leave, some without reading the
// answer, through a pool of 4: the sessions and their connections are all
// freed, and logins still work.
func TestRefusedPreparesFreeSessions(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.MaxOpen = 4 })
	before := holdingsOf(p)
	for i := range 200 {
		r := loginRaw(t, p.addr, appUser, appPass, "", 0)
		_ = r.c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		r.command(append([]byte{mysql.COM_STMT_PREPARE}, "SELEC "+strconv.Itoa(i)...))
		switch i % 3 {
		case 0:
			r.expectErr(mysql.ER_PARSE_ERROR)
			r.command([]byte{mysql.COM_QUIT})
		case 1:
			r.expectErr(mysql.ER_PARSE_ERROR)
		}
		r.c.nc.Close()
	}
	settledAt(t, p, before)
	r := loginRaw(t, p.addr, appUser, appPass, "", 0)
	if res := r.query("SELECT 1"); res[0][0] == 0xff {
		t.Fatalf("SELECT 1 on a new login: %v", parseErr(res[0]))
	}
	if err := p.db(t, appUser, appPass, "").Ping(); err != nil {
		t.Fatalf("go-sql-driver login: %v", err)
	}
}

// prepareScript sends COM_STMT_PREPARE through PyMySQL, which has no
// server-side prepared statements of its own, and prints the error it gets,
// then runs SELECT 1 on the same connection. Arguments: host:port, user,
// password, statement.
const prepareScript = `
import sys
import pymysql
from pymysql.constants import COMMAND

addr, user, password, sql = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
c = pymysql.connect(host=host, port=int(port), user=user, password=password,
                    connect_timeout=5, read_timeout=5, write_timeout=5)
c._execute_command(COMMAND.COM_STMT_PREPARE, sql)
try:
    c._read_packet()
    print("prepared")
except pymysql.MySQLError as e:
    print("error", e.args[0])
with c.cursor() as cur:
    cur.execute("SELECT 1")
    print("select", cur.fetchone()[0])
c.close()
`

// runPyMySQL runs a Python script with PyMySQL and returns what it printed.
func runPyMySQL(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, pymysqlPython(t), append([]string{"-c", script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s%s", err, out, stderr.String())
	}
	return string(out)
}

// pymysqlPython returns a python3 that can import pymysql, or skips the
// test. Debian's python3-pymysql installs for /usr/bin/python3, which need
// not be the python3 first in PATH.
func pymysqlPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if osexec.Command(py, "-c", "import pymysql").Run() == nil {
			return py
		}
	}
	if os.Getenv(sandbox.RequireEnv) == "1" {
		t.Fatal("no python3 can import pymysql (apt-get install python3-pymysql)")
	}
	t.Skip("no python3 can import pymysql (apt-get install python3-pymysql)")
	return ""
}
