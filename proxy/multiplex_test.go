package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
	setup := p.session(t, "")
	exec(t, setup, "CREATE DATABASE IF NOT EXISTS mux")
	exec(t, setup, "CREATE TABLE IF NOT EXISTS mux.t (id INT AUTO_INCREMENT PRIMARY KEY, who INT)")
	setup.Close()
	waitReplicated(t, p.sb)

	const sessions = 60
	db := p.db(t, appUser, appPass, "")
	db.SetMaxOpenConns(sessions)
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			c, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			zone := fmt.Sprintf("+%02d:00", i%12)
			if _, err := c.ExecContext(ctx, "SET time_zone = '"+zone+"'"); err != nil {
				errs <- err
				return
			}
			res, err := c.ExecContext(ctx, "INSERT INTO mux.t (who) VALUES (?)", i)
			if err != nil {
				errs <- err
				return
			}
			id, _ := res.LastInsertId()
			time.Sleep(30 * time.Millisecond) // idle: the session lets go of its connections
			var got int64
			var tz string
			if err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID(), @@time_zone").Scan(&got, &tz); err != nil {
				errs <- err
				return
			}
			if got != id || tz != zone {
				errs <- fmt.Errorf("session %d: LAST_INSERT_ID()=%d time_zone=%s, want %d and %s", i, got, tz, id, zone)
			}
			time.Sleep(30 * time.Millisecond)
			if err := c.QueryRowContext(ctx, "SELECT @@time_zone").Scan(&tz); err != nil || tz != zone {
				errs <- fmt.Errorf("session %d: replica read time_zone=%s (%v), want %s", i, tz, err, zone)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
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

// TestSlowStatementLog logs a slow statement with its route and backend,
// and not its text.
func TestSlowStatementLog(t *testing.T) {
	var buf syncBuf
	p := startProxy(t, func(o *Options) {
		o.SlowStatement = 100 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		o.Routing.Consistency = router.ConsistencyEventual
	})
	c := p.session(t, "")
	exec(t, c, "SELECT SLEEP(0.2), 'secret-text'")
	exec(t, c, "SELECT 1")
	log := buf.String()
	if !strings.Contains(log, `msg="slow statement"`) || !strings.Contains(log, "route=replica") || !strings.Contains(log, "backend=replica") {
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
