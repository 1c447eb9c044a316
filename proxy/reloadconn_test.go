package proxy

import (
	"context"
	"testing"
	"time"
)

// TestReloadKeepsReplicaConnections reloads with a changed replica weight,
// which makes new Backends for the same servers: a session keeps the
// replica connection it holds instead of opening a second one beside it,
// and when that connection dies the session forgets it once, so that the
// pool's slots add up and Shutdown closes the pool without waiting for a
// slot nobody holds.
func TestReloadKeepsReplicaConnections(t *testing.T) {
	fp := startFakeProxy(t, 1, func(o *Options) {
		o.Pool.MaxOpen = 2
		o.Pool.ReleaseIdle = -1 // sessions keep their connections
		o.Pool.WaitTimeout = 2 * time.Second
	})
	const q = "SELECT * FROM t"
	fp.replicas[0].setScript(answer(q, rowsOf("a", "1")))
	fp.primary.setScript(answer(q, rowsOf("a", "1"))) // while the replica is out
	db := fp.db(t, "")
	queryString(t, db, q)

	o := *fp.opts()
	o.Backends = nil
	for _, b := range fp.opts().Backends {
		nb := *b
		nb.backendState = nil
		if b.Name == "replica1" {
			nb.Weight = 2
		}
		o.Backends = append(o.Backends, &nb)
	}
	if err := fp.Update(o); err != nil {
		t.Fatal(err)
	}
	queryString(t, db, q)
	if n := fp.replicas[0].loginCount(); n != 1 {
		t.Errorf("%d logins on the replica after the reload, want 1: the session's connection is kept", n)
	}

	// The replica drops the connection: the read runs again on a new one.
	fp.replicas[0].mu.Lock()
	for id := range fp.replicas[0].conns {
		fp.replicas[0].conns[id].nc.Close()
	}
	fp.replicas[0].mu.Unlock()
	for range 3 {
		queryString(t, db, q)
	}
	db.Close() // the session ends and hands its connections back

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- fp.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return: a pool slot was given back twice, and closing an idle connection waits for it")
	}
	for _, b := range fp.opts().Backends {
		if inUse, idle := b.counts(); inUse != 0 || idle != 0 {
			t.Errorf("%s after Shutdown: %d in use, %d idle, want none", b.Name, inUse, idle)
		}
	}
}
