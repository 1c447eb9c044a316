package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Addresses of the services on each network, fixed in compose.yaml.
const (
	lb1Public   = "172.30.0.11"
	lb1Front    = "172.30.1.11"
	web1Front   = "172.30.1.21"
	app1Front   = "172.30.1.31"
	app1Data    = "172.30.2.31"
	sy1Data     = "172.30.2.41"
	primaryData = "172.30.2.51"
	replicaData = "172.30.2.52"
	promFront   = "172.30.1.90"
)

// TestFirewalls: each layer reaches the next one and nothing beyond it. The
// probes run inside the containers: `client` stands for the internet (it is
// only on the public network), lb1 is on the public and front networks,
// web1 only on the front network, app1 on the front and data networks,
// db-primary only on the data network. Each container also has a probe that
// must connect, so a broken probe cannot pass for a firewall.
func TestFirewalls(t *testing.T) {
	requireStack(t)
	probes := []struct {
		from, addr string
		port       int
		open       bool
		what       string
	}{
		{"client", vip, 443, true, "the site, through the virtual IP"},
		{"client", lb1Public, 80, true, "a load balancer's public address"},
		{"client", lb1Front, 8404, false, "HAProxy's metrics and stats"},
		{"client", web1Front, 80, false, "a web server"},
		{"client", app1Front, 8000, false, "an application server"},
		{"client", sy1Data, 6033, false, "Switchyard"},
		{"client", primaryData, 3306, false, "the primary database"},
		{"client", replicaData, 3306, false, "a replica database"},
		{"client", promFront, 9090, false, "Prometheus"},

		{"lb1", web1Front, 80, true, "a web server"},
		{"lb1", primaryData, 3306, false, "the primary database"},
		{"lb1", replicaData, 3306, false, "a replica database"},
		{"lb1", sy1Data, 6033, false, "Switchyard"},
		{"lb1", app1Data, 8000, false, "an application server on the data network"},

		{"web1", app1Front, 8000, true, "an application server"},
		{"web1", primaryData, 3306, false, "the primary database"},
		{"web1", replicaData, 3306, false, "a replica database"},
		{"web1", sy1Data, 6033, false, "Switchyard"},

		{"app1", sy1Data, 6033, true, "Switchyard"},
		{"app1", primaryData, 3306, true, "the primary database (same network as Switchyard)"},

		{"db-primary", replicaData, 3306, true, "a replica database"},
		{"db-primary", lb1Public, 443, false, "a load balancer's public address"},
		{"db-primary", web1Front, 80, false, "a web server"},
		{"db-primary", app1Front, 8000, false, "an application server on the front network"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One exec per container, its probes in parallel.
	targets := map[string][]string{}
	for _, p := range probes {
		targets[p.from] = append(targets[p.from], fmt.Sprintf("%s:%d", p.addr, p.port))
	}
	results := map[string]map[string]bool{}
	for from, addrs := range targets {
		open, err := canConnect(ctx, from, addrs)
		if err != nil {
			t.Fatal(err)
		}
		results[from] = open
	}
	for _, p := range probes {
		addr := fmt.Sprintf("%s:%d", p.addr, p.port)
		t.Run(p.from+"->"+addr, func(t *testing.T) {
			if got := results[p.from][addr]; got != p.open {
				t.Errorf("%s reaching %s (%s): connected = %v, want %v", p.from, p.what, addr, got, p.open)
			}
		})
	}

	// The data network is internal: Docker gives it no route to the outside.
	t.Run("data network is internal", func(t *testing.T) {
		out, err := dockerOutput(ctx, "network", "inspect", "-f", "{{.Internal}}", "switchyard_data")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "true" {
			t.Errorf("switchyard_data internal = %s, want true", strings.TrimSpace(out))
		}
	})
}

// canConnect tries a TCP connection (two seconds at most) from inside the
// from service to each "address:port" at once, and reports which connected.
func canConnect(ctx context.Context, from string, addrs []string) (map[string]bool, error) {
	var script strings.Builder
	for _, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		fmt.Fprintf(&script, "(if timeout 2 bash -c '</dev/tcp/%s/%s' 2>/dev/null; then echo '%s open'; else echo '%s closed'; fi) &\n", host, port, a, a)
	}
	script.WriteString("wait\n")
	out, err := composeOutput(ctx, "exec", "-T", from, "bash", "-c", script.String())
	if err != nil {
		return nil, err
	}
	open := map[string]bool{}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		addr, state, _ := strings.Cut(line, " ")
		switch state {
		case "open":
			open[addr] = true
		case "closed":
		default:
			return nil, fmt.Errorf("probe from %s: unexpected line %q", from, line)
		}
		seen++
	}
	if seen != len(addrs) {
		return nil, fmt.Errorf("probe from %s: %d results for %d addresses:\n%s", from, seen, len(addrs), out)
	}
	return open, nil
}
