package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/router"
)

// TestMultiplexing runs many more sessions than backend connections; each
// sets session state, inserts, goes idle (its connections go back to the
// pool) and then checks that its state and LAST_INSERT_ID() followed it.
func TestMultiplexing(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Pool.MaxOpen, o.Pool.MaxIdle = 4, 4
		o.Pool.ReleaseIdle = 10 * time.Millisecond
		o.Pool.WaitTimeout = 30 * time.Second
	})
	rootExec(t, p.sb, p.sb.Primary, "CREATE DATABASE IF NOT EXISTS mux",
		"CREATE TABLE IF NOT EXISTS mux.t (id INT AUTO_INCREMENT PRIMARY KEY, who INT)")
	waitReplicated(t, p.sb)

	const sessions = 60
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(sessions)
	eachSession(t, db, sessions, func(ctx context.Context, c *sql.Conn, i int) error {
		zone := fmt.Sprintf("+%02d:00", i%12)
		if _, err := c.ExecContext(ctx, "SET time_zone = '"+zone+"'"); err != nil {
			return err
		}
		res, err := c.ExecContext(ctx, "INSERT INTO mux.t (who) VALUES (?)", i)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		time.Sleep(30 * time.Millisecond) // idle: the session lets go of its connections
		var got int64
		var tz string
		if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID(), @@time_zone").Scan(&got, &tz); err != nil {
			return err
		}
		if got != id || tz != zone {
			return fmt.Errorf("session %d: LAST_INSERT_ID()=%d time_zone=%s, want %d and %s", i, got, tz, id, zone)
		}
		time.Sleep(30 * time.Millisecond)
		if err := c.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&tz); err != nil || tz != zone {
			return fmt.Errorf("session %d: replica read time_zone=%s (%v), want %s", i, tz, err, zone)
		}
		return nil
	})
	released := counterValue(p.m.released)
	t.Logf("%d sessions over pools of 4 connections per backend; %.0f releases", sessions, released)
	if released < sessions {
		t.Errorf("%.0f releases, want at least one per session", released)
	}
	for _, b := range p.Backends() {
		if b.InUse+b.Idle > 4 {
			t.Errorf("%s: %d connections open, want at most 4", b.Name, b.InUse+b.Idle)
		}
	}
}

// TestFoundRowsSurvivesMultiplexing: a session keeps the connection of its
// SELECT SQL_CALC_FOUND_ROWS while it is idle, with other sessions waiting,
// so that the FOUND_ROWS() after it counts its own rows, on the same server.
func TestFoundRowsSurvivesMultiplexing(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Pool.MaxOpen, o.Pool.MaxIdle = 2, 2
		o.Pool.ReleaseIdle = 5 * time.Millisecond
		o.Pool.WaitTimeout = 30 * time.Second
	})
	numbersTable(t, p.sb, "mux.numbers", 30)
	const sessions = 12
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(0) // a session ends when its goroutine is done with it
	eachSession(t, db, sessions, func(ctx context.Context, c *sql.Conn, i int) error {
		want := 10 + i
		var ranOn, found, foundOn int
		q := fmt.Sprintf("SELECT SQL_CALC_FOUND_ROWS @@server_id FROM mux.numbers WHERE seq <= %d LIMIT 1", want)
		if err := c.QueryRowContext(ctx, q).Scan(&ranOn); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // idle, while others wait
		if err := c.QueryRowContext(ctx, "SELECT FOUND_ROWS(), @@server_id").Scan(&found, &foundOn); err != nil {
			return err
		}
		if found != want || foundOn != ranOn {
			return fmt.Errorf("session %d: FOUND_ROWS() = %d on server %d, want %d on %d", i, found, foundOn, want, ranOn)
		}
		time.Sleep(20 * time.Millisecond) // now it lets go (on MariaDB, see below)
		return nil
	})
	released := counterValue(p.m.released)
	if p.sb.Flavor != sandbox.FlavorMariaDB {
		// MySQL warns that SQL_CALC_FOUND_ROWS and FOUND_ROWS() are
		// deprecated (1287): a session keeps its connections for a SHOW
		// WARNINGS until its next statement, here until it ends.
		t.Logf("%s: %.0f releases; none is due after FOUND_ROWS(), which warns", p.sb.Engine(), released)
		return
	}
	if released < sessions {
		t.Errorf("%.0f releases, want at least one per session (after its FOUND_ROWS())", released)
	}
}

// eachSession runs f on n sessions at once, each on its own connection from
// db, and fails the test with every error they return.
func eachSession(t *testing.T, db *sql.DB, n int, f func(ctx context.Context, c *sql.Conn, i int) error) {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- func() error {
				ctx := context.Background()
				c, err := db.Conn(ctx)
				if err != nil {
					return err
				}
				defer c.Close()
				return f(ctx, c, i)
			}()
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestMultiplexingUnderContention runs busy sessions over far fewer
// connections than sessions, with an idle release so long that only the
// contention rule can hand connections back: after each statement while
// others wait, or at once when a waiting session wakes a holder whose client
// is quiet. Prepared statements stay on the connections: each replica
// connection prepares the statement once, however many sessions run it.
func TestMultiplexingUnderContention(t *testing.T) {
	const maxOpen = 2
	p := startProxy(t, func(o *Options) {
		o.Pool.MaxOpen, o.Pool.MaxIdle = maxOpen, maxOpen
		o.Pool.ReleaseIdle = time.Hour
		o.Pool.WaitTimeout = 20 * time.Second
		o.Routing.Consistency = router.ConsistencyEventual
	})
	rootExec(t, p.sb, p.sb.Primary, "CREATE DATABASE IF NOT EXISTS mux",
		"CREATE TABLE IF NOT EXISTS mux.c (id INT AUTO_INCREMENT PRIMARY KEY, who INT)")
	waitReplicated(t, p.sb)

	const sessions, rounds = 10, 20
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(sessions)
	// A quiet session holding a connection: only a wake-up from a waiting
	// session makes it let go (pool.release_idle is an hour).
	quiet, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	exec(t, quiet, "SET time_zone = '+11:00'")

	var executes, reprepares map[int]int64
	prepares := delta(t, p.sb, "Com_stmt_prepare", func() {
		reprepares = delta(t, p.sb, "Com_stmt_reprepare", func() {
			executes = delta(t, p.sb, "Com_stmt_execute", func() {
				eachSession(t, db, sessions, func(ctx context.Context, c *sql.Conn, i int) error {
					zone := fmt.Sprintf("+%02d:00", i)
					if _, err := c.ExecContext(ctx, "SET time_zone = '"+zone+"'"); err != nil {
						return err
					}
					for r := range rounds {
						var tz string
						var n int
						// Binary protocol: go-sql-driver prepares, executes and closes.
						if err := c.QueryRowContext(ctx, "SELECT @@time_zone, ?", r).Scan(&tz, &n); err != nil {
							return fmt.Errorf("session %d round %d: %w", i, r, err)
						}
						if tz != zone || n != r {
							return fmt.Errorf("session %d round %d: time_zone %s, %d; want %s, %d", i, r, tz, n, zone, r)
						}
						if r%5 == 0 {
							res, err := c.ExecContext(ctx, "INSERT INTO mux.c (who) VALUES (?)", i)
							if err != nil {
								return err
							}
							id, _ := res.LastInsertId()
							var got int64
							if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&got); err != nil || got != id {
								return fmt.Errorf("session %d: LAST_INSERT_ID() = %d (%v), want %d", i, got, err, id)
							}
						}
					}
					return nil
				})
			})
		})
	})
	// MySQL prepares a statement again on its own, counting it in both,
	// when the first execution's parameter types differ from those it
	// assumed (an integer for "?" here).
	for id, n := range reprepares {
		prepares[id] -= n
	}
	var tz string
	if err := quiet.QueryRowContext(context.Background(), "SELECT @@time_zone").Scan(&tz); err != nil || tz != "+11:00" {
		t.Errorf("quiet session: time_zone %q (%v), want +11:00", tz, err)
	}
	for _, b := range p.Backends() {
		if b.InUse+b.Idle > maxOpen {
			t.Errorf("%s: %d connections open, want at most %d", b.Name, b.InUse+b.Idle, maxOpen)
		}
	}
	// Per session and round the driver prepares twice (the SELECT and, every
	// fifth round, the INSERT): Switchyard answers those on the primary. The
	// SELECTs execute on the replicas, which only prepare for connections
	// that have not seen the text: at least once each, at most once per
	// connection.
	var replicaExecutes int64
	for _, r := range p.sb.Replicas {
		if got := prepares[r.ServerID]; got < 1 || got > maxOpen {
			t.Errorf("%s prepared %d statements, want 1 to %d (one per connection)", r.Name, got, maxOpen)
		}
		replicaExecutes += executes[r.ServerID]
	}
	if replicaExecutes != sessions*rounds {
		t.Errorf("replicas executed %d statements, want all %d SELECTs (executes by server_id: %v)", replicaExecutes, sessions*rounds, executes)
	}
	t.Logf("prepares by server_id: %v; executes: %v; %.0f releases", prepares, executes, counterValue(p.m.released))
}

// TestSlowStatementLog logs a slow statement with its route and backend,
// and not its text.
func TestSlowStatementLog(t *testing.T) {
	var buf syncBuf
	p := startProxy(t, func(o *Options) {
		o.SlowStatement = 500 * time.Millisecond // far above a SELECT 1 on a loaded machine
		o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		o.Routing.Consistency = router.ConsistencyEventual
	})
	c := p.session(t, "")
	exec(t, c, "SELECT SLEEP(0.6), 'secret-text'") // SLEEP runs on the primary: it can serve as a lock
	exec(t, c, "SELECT 1")
	log := buf.String()
	if !strings.Contains(log, `msg="slow statement"`) || !strings.Contains(log, "route=primary") || !strings.Contains(log, "backend=primary") {
		t.Fatalf("no slow statement line with route and backend:\n%s", log)
	}
	if strings.Count(log, "slow statement") != 1 || strings.Contains(log, "secret-text") {
		t.Fatalf("want exactly one slow line and no statement text:\n%s", log)
	}
}

// syncBuf is a bytes.Buffer safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
