package proxy

import (
	"context"
	"fmt"
	"testing"
)

// TestPoolReusesWithinMaxOpen opens and closes many more sessions, one after
// another, than the pool's max_open: reused idle connections must not use up
// slots.
func TestPoolReusesWithinMaxOpen(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.MaxOpen, o.Pool.MaxIdle = 2, 2 })
	for i := range 20 {
		db := p.db(t, appUser, appPass, "")
		c, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRowContext(context.Background(), "/* switchyard:route=primary */ SELECT 1").Scan(&n); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Close()
		db.Close()
		waitIdle(t, p.Server)
	}
	for _, b := range p.Backends() {
		if b.InUse+b.Idle > 2 {
			t.Errorf("%s: %d in use + %d idle, want at most 2", b.Name, b.InUse, b.Idle)
		}
	}
}

// waitIdle waits until no session is left.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	for range 500 {
		if s.Clients() == 0 {
			return
		}
		waitTick()
	}
	t.Fatal("sessions did not end")
}

// TestPoolDropsDeadIdleConnections kills an idle pooled connection on the
// server: the next session must get a fresh connection, not the dead one.
func TestPoolDropsDeadIdleConnections(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Pool.MaxOpen, o.Pool.MaxIdle = 1, 1 })
	threadOf := func() int64 {
		t.Helper()
		db := p.db(t, appUser, appPass, "")
		defer db.Close()
		var id int64
		if err := db.QueryRow("/* switchyard:route=primary */ SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		db.Close()
		waitIdle(t, p.Server)
		return id
	}
	first := threadOf()
	root, err := p.sb.RootDB(p.sb.Primary) // shared: not closed here
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Exec(fmt.Sprintf("KILL %d", first)); err != nil {
		t.Fatal(err)
	}
	if second := threadOf(); second == first {
		t.Fatalf("the next session ran on killed connection %d", first)
	}
}
