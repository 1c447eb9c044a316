package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/leaktest"
)

// Checks that the proxy let go of what a test made it take: sessions, pooled
// connections and goroutines (internal/leaktest finds the goroutines).

// holdings is what a proxy holds at one moment.
type holdings struct {
	clients    int
	inUse      []int // by backend, in Backends order
	goroutines int   // this package's: the caller's, not serverLifetime nor tests waiting for subtests
}

func (h holdings) String() string {
	return fmt.Sprintf("%d sessions, pool in_use %v, %d goroutines", h.clients, h.inUse, h.goroutines)
}

// serverLifetime marks the goroutines a Server runs from Serve to Shutdown,
// whatever its sessions do; they start a moment after startProxy returns.
var serverLifetime = []string{"proxy.(*Server).Serve(", "proxy.(*Server).wakeParkedLoop(", "proxy.(*Server).reapLoop("}

func holdingsOf(p *testProxy) holdings {
	h := holdings{clients: p.Clients(), goroutines: 1} // the caller's
	for _, g := range leaktest.Own("proxy/") {
		_, top, _ := strings.Cut(g, "\n")
		if strings.HasPrefix(top, "testing.(*T).Run(") {
			continue // a test waiting for its subtest
		}
		if !slices.ContainsFunc(serverLifetime, func(f string) bool { return strings.Contains(g, f) }) {
			h.goroutines++
		}
	}
	for _, b := range p.Backends() {
		h.inUse = append(h.inUse, b.InUse)
	}
	return h
}

// settledAt waits until p holds no more than it did at before: no more
// sessions, connections in use or goroutines. It fails the test listing
// what is left otherwise.
func settledAt(t *testing.T, p *testProxy, before holdings) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := holdingsOf(p)
		if now.clients <= before.clients && now.goroutines <= before.goroutines && !exceeds(now.inUse, before.inUse) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still holds %v; before: %v; goroutines:\n%s", now, before, strings.Join(leaktest.Own("proxy/"), "\n\n"))
		}
		waitTick()
	}
}

// exceeds reports whether any count in a is above its match in b.
func exceeds(a, b []int) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if a[i] > b[i] {
			return true
		}
	}
	return false
}
