package proxy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestDialFollowsContext dials a backend that accepts the connection but
// never greets, as a frozen server does, and cancels the dial's context (as
// the monitor's Abandon does): the login must give up then, not at the end
// of its own timeout.
func TestDialFollowsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	b := &Backend{Name: "frozen", Addr: ln.Addr().String(), backendState: &backendState{}}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	const timeout = time.Minute
	start := time.Now()
	_, err = dialBackend(ctx, b, poolKey{user: appUser}, &credential{user: appUser}, "", timeout)
	if err == nil {
		t.Fatal("dial of a server that never greets succeeded")
	}
	if took := time.Since(start); took >= timeout/2 {
		t.Errorf("dial gave up after %s, at its timeout, not when its context was cancelled", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("dial error %q does not say it was cancelled", err)
	}
}
