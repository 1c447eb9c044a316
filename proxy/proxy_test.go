package proxy

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// TestRelayToPrimary checks that statements run on the primary and answer
// as they do directly.
func TestRelayToPrimary(t *testing.T) {
	p := startProxy(t, nil)
	db := p.db(t, appUser, appPass, "multiStatements=true")
	db.SetMaxOpenConns(1) // one session: read-your-writes is per session
	if got, want := queryInt(t, db, "/* switchyard:route=primary */ SELECT @@server_id"), int64(p.sb.Primary.ServerID); got != want {
		t.Fatalf("@@server_id = %d, want the primary's %d", got, want)
	}
	mustExec(t, db, "CREATE DATABASE IF NOT EXISTS relay")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS relay.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, db, "TRUNCATE relay.t")

	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO relay.t (v) VALUES (?), (?)", "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db, "/* switchyard:route=primary */ SELECT COUNT(*) FROM relay.t"); n != 0 {
		t.Fatalf("after rollback: %d rows", n)
	}
	res, err := db.Exec("INSERT INTO relay.t (v) VALUES ('x'); INSERT INTO relay.t (v) VALUES ('y')")
	if err != nil {
		t.Fatalf("multi-statement: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("RowsAffected of the last statement = %d", n)
	}
	waitReplicated(t, p.sb) // the prepared reads below may run on replicas
	stmt, err := db.Prepare("SELECT v FROM relay.t WHERE id > ? ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var got []string
	for range 3 {
		got = got[:0]
		rows, err := stmt.Query(0)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			_ = rows.Scan(&v)
			got = append(got, v)
		}
		rows.Close()
	}
	if strings.Join(got, ",") != "x,y" {
		t.Errorf("prepared select = %v", got)
	}
	// Direct comparison of the same rows.
	direct := p.primaryDB(t)
	if a, b := queryInt(t, db, "/* switchyard:route=primary */ SELECT SUM(id) FROM relay.t"), queryInt(t, direct, "SELECT SUM(id) FROM relay.t"); a != b {
		t.Errorf("through proxy %d, direct %d", a, b)
	}
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestAuthPlugins logs in with each plugin and path through authentication.
func TestAuthPlugins(t *testing.T) {
	tlsCfg := testTLS(t)
	p := startProxy(t, func(o *Options) {
		o.AuthPlugin = authCachingSha2
		o.TLS, o.TLSMode = tlsCfg, TLSOptional
	})
	clientTLS := "skip-verify"
	cases := []struct {
		name, user, pass, params string
	}{
		{"caching_sha2 fast path", appUser, appPass, ""},
		{"caching_sha2 fast path over TLS", appUser, appPass, "tls=" + clientTLS},
		{"caching_sha2 full auth over TLS", hashUser, hashPass, "tls=" + clientTLS},
		{"caching_sha2 full auth with RSA key exchange", hashUser, hashPass, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := p.db(t, c.user, c.pass, c.params)
			var user string
			if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(user, c.user+"@") {
				t.Errorf("CURRENT_USER() = %q, want %s@...", user, c.user)
			}
			if strings.Contains(c.params, "tls") {
				var cipher string
				var name string
				_ = db.QueryRow("SHOW STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
				// The backend hop is plain; TLS is terminated at the proxy. Check
				// the proxy side instead: a TLS connection works end to end.
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		db := p.db(t, appUser, "nope", "")
		err := db.Ping()
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != 1045 || string(me.SQLState[:]) != "28000" || !strings.Contains(me.Message, "'app'") {
			t.Fatalf("Ping with a wrong password: %v, want 1045 (28000) naming the user", err)
		}
	})
	t.Run("native", func(t *testing.T) {
		p2 := startProxy(t, nil)
		for _, u := range [][2]string{{appUser, appPass}, {hashUser, hashPass}} {
			db := p2.db(t, u[0], u[1], "")
			err := db.Ping()
			if u[0] == hashUser && p2.sb.Flavor == sandbox.FlavorMySQL {
				// A mysql_native_password login tells Switchyard no password,
				// and MySQL 9 accepts only caching_sha2_password, whose full
				// authentication needs it: a clear refusal naming the backend.
				var me *driver.MySQLError
				if !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "login to primary") ||
					!strings.Contains(me.Message, "only a mysql_native_password hash") {
					t.Errorf("%s with only a password hash, on MySQL: %v, want 1045 naming the backend and the cause", u[0], err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", u[0], err)
			}
			if got := queryInt(t, db, "SELECT 42"); got != 42 {
				t.Errorf("SELECT 42 = %d", got)
			}
		}
	})
	t.Run("go-mysql client caching_sha2", func(t *testing.T) {
		c, err := gomysql.Connect(p.addr, hashUser, hashPass, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r, err := c.Execute("SELECT 7")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := r.GetInt(0, 0); v != 7 {
			t.Errorf("SELECT 7 = %d", v)
		}
	})
}

// TestTLSRequired refuses clients without TLS with a clear error.
func TestTLSRequired(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.TLS, o.TLSMode = testTLS(t), TLSRequired })
	err := p.db(t, appUser, appPass, "").Ping()
	var me *driver.MySQLError
	if !errors.As(err, &me) || me.Number != codeSecureOnly || !strings.Contains(me.Message, "TLS") {
		t.Fatalf("plain client: %v, want error %d about TLS", err, codeSecureOnly)
	}
	if err := p.db(t, appUser, appPass, "tls=skip-verify").Ping(); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
}

// TestCursorFetch opens a read-only cursor and fetches it in pieces.
func TestCursorFetch(t *testing.T) {
	p := startProxy(t, nil)
	numbersTable(t, p.sb, "cursors.numbers", 10)
	for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF} {
		t.Run(fmt.Sprintf("deprecate_eof=%v", caps != 0), func(t *testing.T) {
			r := loginRaw(t, p.addr, appUser, appPass, "cursors", caps)
			eof := caps == 0
			r.command(append([]byte{mysql.COM_STMT_PREPARE}, "SELECT seq FROM numbers ORDER BY seq"...))
			ok := r.read()
			if ok[0] != 0 {
				t.Fatalf("prepare: %v", parseErr(ok))
			}
			id := binary.LittleEndian.Uint32(ok[1:])
			cols := binary.LittleEndian.Uint16(ok[5:])
			for range cols {
				r.read()
			}
			if eof {
				r.read()
			}
			exec := []byte{mysql.COM_STMT_EXECUTE, 0, 0, 0, 0, 1 /* CURSOR_TYPE_READ_ONLY */, 1, 0, 0, 0}
			binary.LittleEndian.PutUint32(exec[1:], id)
			r.command(exec)
			if n := r.read(); n[0] != 1 {
				t.Fatalf("execute: column count packet % x", n)
			}
			r.read() // column definition
			st := r.read()
			if st[0] != 0xfe {
				t.Fatalf("after columns: % x", st)
			}
			var got []int
			for {
				fetch := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_FETCH}, id)
				fetch = binary.LittleEndian.AppendUint32(fetch, 4)
				r.command(fetch)
				var last []byte
				for {
					row := r.read()
					if row[0] == 0xfe {
						last = row
						break
					}
					if row[0] == 0xff {
						t.Fatalf("fetch: %v", parseErr(row))
					}
					got = append(got, int(binary.LittleEndian.Uint64(row[2:])))
				}
				status := terminatorStatus(r.caps, last)
				if status&mysql.SERVER_STATUS_LAST_ROW_SEND != 0 {
					break
				}
				if len(got) > 10 {
					t.Fatal("cursor does not end")
				}
			}
			if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9 10]" {
				t.Errorf("fetched %v", got)
			}
			// The proxy is still in step: a query works.
			if res := r.query("SELECT 1"); len(res) < 3 {
				t.Errorf("query after cursor: %d packets", len(res))
			}
		})
	}
}

// TestSessionCommands covers COM_CHANGE_USER, COM_RESET_CONNECTION,
// COM_FIELD_LIST, COM_STATISTICS, COM_SET_OPTION, COM_INIT_DB and COM_PING.
func TestSessionCommands(t *testing.T) {
	p := startProxy(t, nil)
	mustExec(t, p.primaryDB(t), "CREATE DATABASE IF NOT EXISTS cmds")
	mustExec(t, p.primaryDB(t), "CREATE TABLE IF NOT EXISTS cmds.t (a INT, b VARCHAR(3))")
	waitReplicated(t, p.sb) // the session's reads, in database cmds, run on replicas

	r := loginRaw(t, p.addr, appUser, appPass, "cmds", 0)
	r.query("SET @v = 5")
	if got := r.query("SELECT @v"); string(got[len(got)-2][1:]) != "5" {
		t.Fatalf("SELECT @v before reset: % x", got[len(got)-2])
	}

	r.command([]byte{mysql.COM_RESET_CONNECTION})
	if ok := r.read(); ok[0] != 0 {
		t.Fatalf("reset: %v", parseErr(ok))
	}
	if got := r.query("SELECT @v"); got[len(got)-2][0] != 0xfb {
		t.Errorf("SELECT @v after reset is not NULL: % x", got[len(got)-2])
	}

	r.command(append([]byte{mysql.COM_FIELD_LIST}, "t\x00"...))
	fields := r.readUntilEOF()
	if len(fields) != 3 || !bytes.Contains(fields[0], []byte("\x01a")) {
		t.Errorf("field list: %d packets", len(fields))
	}

	r.command([]byte{mysql.COM_STATISTICS})
	if st := r.read(); !bytes.HasPrefix(st, []byte("Uptime:")) {
		t.Errorf("statistics: %q", st)
	}

	r.command([]byte{mysql.COM_SET_OPTION, 0, 0}) // MYSQL_OPTION_MULTI_STATEMENTS_ON
	if ok := r.read(); ok[0] != 0xfe && ok[0] != 0 {
		t.Fatalf("set option: % x", ok)
	}

	r.command(append([]byte{mysql.COM_INIT_DB}, "nosuchdb"...))
	r.expectErr(mysql.ER_BAD_DB_ERROR)
	r.command(append([]byte{mysql.COM_INIT_DB}, "mysql"...))
	if ok := r.read(); ok[0] != 0 {
		t.Fatalf("init db: %v", parseErr(ok))
	}

	r.command([]byte{mysql.COM_PING})
	if ok := r.read(); ok[0] != 0 {
		t.Fatalf("ping: % x", ok)
	}

	// COM_CHANGE_USER to another account, answered with the greeting's scramble.
	cu := []byte{mysql.COM_CHANGE_USER}
	cu = append(cu, otherUser...)
	cu = append(cu, 0)
	auth := mysql.CalcNativePassword(r.scramble, []byte(otherPass))
	cu = append(cu, byte(len(auth)))
	cu = append(cu, auth...)
	cu = append(cu, "cmds\x00"...)
	cu = append(cu, mysql.DEFAULT_COLLATION_ID, 0)
	cu = append(cu, authNative+"\x00"...)
	r.command(cu)
	if ok := r.read(); ok[0] != 0 {
		t.Fatalf("change user: %v", parseErr(ok))
	}
	got := r.query("SELECT CURRENT_USER(), DATABASE()")
	if row := got[len(got)-2]; !bytes.Contains(row, []byte(otherUser+"@")) || !bytes.Contains(row, []byte("cmds")) {
		t.Errorf("after change user: %q", row)
	}

	// A wrong password in COM_CHANGE_USER ends the session with 1045.
	cu = append([]byte{mysql.COM_CHANGE_USER}, appUser...)
	cu = append(cu, 0, 20)
	cu = append(cu, make([]byte, 20)...)
	cu = append(cu, 0, mysql.DEFAULT_COLLATION_ID, 0)
	cu = append(cu, authNative+"\x00"...)
	r.command(cu)
	r.expectErr(mysql.ER_ACCESS_DENIED_ERROR)
	r.expectClosed()
}

// TestKill kills queries and connections by Switchyard's connection ids.
func TestKill(t *testing.T) {
	p := startProxy(t, nil)
	victim := loginRaw(t, p.addr, appUser, appPass, "", 0)
	killer := loginRaw(t, p.addr, appUser, appPass, "", 0)
	stranger := loginRaw(t, p.addr, otherUser, otherPass, "", 0)

	victim.command(append([]byte{mysql.COM_QUERY}, "SELECT SLEEP(30)"...))
	waitBusy(t, p.Server, victim.connID)
	start := time.Now()

	stranger.command(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("KILL QUERY %d", victim.connID)...))
	stranger.expectErr(mysql.ER_KILL_DENIED_ERROR)

	killer.command(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("KILL QUERY %d", victim.connID)...))
	if ok := killer.read(); ok[0] != 0 {
		t.Fatalf("KILL QUERY: %v", parseErr(ok))
	}
	// SLEEP reports an interrupted sleep as the value 1, or the server
	// answers ER_QUERY_INTERRUPTED; either way it ends now, not in 30s.
	first := victim.read()
	if first[0] != 0xff {
		victim.readUntilEOF()
		victim.readUntilEOF()
	} else if e := parseErr(first); e.code != mysql.ER_QUERY_INTERRUPTED {
		t.Fatalf("victim got %v", e)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("KILL QUERY took %s", d)
	}
	if res := victim.query("SELECT 1"); res[0][0] == 0xff {
		t.Fatalf("victim unusable after KILL QUERY: %v", parseErr(res[0]))
	}

	killer.command(append([]byte{mysql.COM_QUERY}, "KILL 999999"...))
	killer.expectErr(mysql.ER_NO_SUCH_THREAD)

	killer.command(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("KILL CONNECTION %d", victim.connID)...))
	if ok := killer.read(); ok[0] != 0 {
		t.Fatalf("KILL CONNECTION: %v", parseErr(ok))
	}
	victim.expectClosed()

	// COM_PROCESS_KILL, the old binary form, kills a connection too.
	v2 := loginRaw(t, p.addr, appUser, appPass, "", 0)
	killer.command(binary.LittleEndian.AppendUint32([]byte{mysql.COM_PROCESS_KILL}, v2.connID))
	if ok := killer.read(); ok[0] != 0 {
		t.Fatalf("COM_PROCESS_KILL: %v", parseErr(ok))
	}
	v2.expectClosed()
}

// waitBusy waits until session id runs a command.
func waitBusy(t *testing.T, s *Server, id uint32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if sess, _ := s.lookup(id); sess != nil && sess.active.Load() != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %d never became busy", id)
}

// TestConcurrentSessions runs many sessions at once over a small pool.
func TestConcurrentSessions(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.MaxOpen = 8 })
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(8)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				var v int
				if err := db.QueryRow("SELECT ? + ?", g, i).Scan(&v); err != nil {
					errs <- err
					return
				}
				if v != g+i {
					errs <- fmt.Errorf("got %d want %d", v, g+i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
