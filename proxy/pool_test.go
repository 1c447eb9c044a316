package proxy

import (
	"context"
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
