package test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// idleClients is how many client connections TestManyIdleClients opens
// (SWITCHYARD_IDLE_CLIENTS overrides it).
func idleClients() int {
	if n, err := strconv.Atoi(os.Getenv("SWITCHYARD_IDLE_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// TestManyIdleClients opens thousands of client connections through a
// switchyard process whose pools allow 20 backend connections per server:
// every client logs in and runs a read, then most stay idle while some keep
// working. Idle sessions give their backend connections back, so the
// servers see no more than the pools allow; the switchyard process's memory
// per idle client is measured.
func TestManyIdleClients(t *testing.T) {
	sb := requireFixtures(t)
	n := idleClients()
	sy := startSwitchyard(t, sb, func(c *proxyConfig) {
		c.Extra = "pool:\n  max_open: 20\n  max_idle: 20\n  wait_timeout: 60s\nlimits:\n  max_connections: 20000\n"
	})
	rssBefore, err := procStatus(sy.Pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = appUser.Name, appUser.Password, "tcp", sy.Addr
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)

	ctx := context.Background()
	conns := make([]*sql.Conn, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := db.Conn(ctx)
			if err == nil {
				var one int
				err = c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d clients failed; first: %v", f, n, firstErr.Load())
	}
	loggedIn := time.Since(start)

	// Some keep working while the rest stay idle.
	var busyQueries atomic.Int64
	stop := make(chan struct{})
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			for {
				select {
				case <-stop:
					return
				default:
				}
				var v int
				if err := c.QueryRowContext(ctx, "SELECT ?", i).Scan(&v); err != nil || v != i {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("busy client %d: %v (got %d)", i, err, v))
					return
				}
				busyQueries.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	threads := map[string]int{}
	for _, srv := range sb.Servers() {
		root, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var c int
		if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", appUser.Name).Scan(&c); err != nil {
			t.Fatal(err)
		}
		threads[srv.Name] = c
	}
	rssAfter, err := procStatus(sy.Pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("busy clients failed: %v", firstErr.Load())
	}
	perClient := float64(rssAfter-rssBefore) / 1024 / float64(n) // procStatus reports bytes
	t.Logf("%d clients logged in in %s; %d queries from 32 busy clients meanwhile; backend threads of %s by server: %v; switchyard RSS %d -> %d MiB: %.1f KiB per idle client",
		n, loggedIn.Round(time.Millisecond), busyQueries.Load(), appUser.Name, threads, rssBefore>>20, rssAfter>>20, perClient)
	for name, c := range threads {
		if c > 20 {
			t.Errorf("%s has %d connections of %s, more than the pool's 20", name, c, appUser.Name)
		}
	}
	if perClient > 100 {
		t.Errorf("%.1f KiB per idle client connection; memory must stay bounded", perClient)
	}
}
