package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestAdminEndToEnd drives the admin API of the binary in front of the
// sandbox: readiness, backends, config, and drain with a session that reads.
func TestAdminEndToEnd(t *testing.T) {
	sb := sandboxtest.Require(t)
	const token = "e2e-tok-5521"
	p := startProc(t, sb, token, opsConfig(sb, token, "routing:\n  consistency: eventual\n"))
	primary, replica := sb.Primary, sb.Replicas[0]

	if code, body := p.requestAs("GET", "/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"ready"`) {
		t.Errorf("GET /readyz: %d %s, want 200 ready", code, body)
	}
	if code, _ := p.requestAs("GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz: %d, want 200", code)
	}
	for _, path := range []string{"/api/backends", "/api/config", "/api/status"} {
		if code, _ := p.requestAs("GET", path, "not-"+token); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
	}
	var st statusView
	p.getJSON("/api/status", &st)
	if st.Version != testVersion || st.ConfigFile != p.cfgPath || st.Draining || st.LastReload != nil {
		t.Errorf("GET /api/status = %+v, want version %s, file %s, not draining, no reload yet", st, testVersion, p.cfgPath)
	}
	code, body := p.request("GET", "/api/config")
	for _, secret := range []string{appAccount.Password, otherAccount.Password, sb.Opts.Monitor.Password, token} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET /api/config shows the secret %q", secret)
		}
	}
	if code != http.StatusOK || !strings.Contains(string(body), replica.Addr()) {
		t.Errorf("GET /api/config: %d %s, want 200 with the backends", code, body)
	}

	c := p.conn(appAccount)
	execAll(t, c, "SELECT 1") // the session opened a replica connection
	var bs struct{ Backends []backendView }
	p.getJSON("/api/backends", &bs)
	if len(bs.Backends) != 2 {
		t.Fatalf("GET /api/backends: %+v, want 2 backends", bs)
	}
	for _, b := range bs.Backends {
		srv := primary
		if b.Name == replica.Name {
			srv = replica
		}
		// The session's connection is in use, or idle in the pool if the
		// session handed it back while idle.
		if b.Address != srv.Addr() || string(b.Role) != srv.Role || b.State != "usable" || b.Weight != 1 || b.InUse+b.Idle < 1 {
			t.Errorf("backend %+v, want %s at %s usable, weight 1, with a pooled connection", b, srv.Role, srv.Addr())
		}
	}

	// Reads go to the replica until it is drained.
	if id := serverID(t, c); id != replica.ServerID {
		t.Fatalf("read before drain ran on server %d, want the replica (%d)", id, replica.ServerID)
	}
	// A read-only transaction open on the replica stays there until it ends.
	execAll(t, c, "START TRANSACTION READ ONLY")
	if id := serverID(t, c); id != replica.ServerID {
		t.Fatalf("read-only transaction ran on server %d, want the replica (%d)", id, replica.ServerID)
	}
	code, body = p.request("POST", "/api/backends/"+replica.Name+"/drain")
	var v backendView
	if err := json.Unmarshal(body, &v); code != http.StatusOK || err != nil || !v.Drained || v.State != "drained" {
		t.Fatalf("POST drain %s: %d %s", replica.Name, code, body)
	}
	if id := serverID(t, c); id != replica.ServerID {
		t.Errorf("read in the open read-only transaction after drain ran on server %d, want still the replica (%d)", id, replica.ServerID)
	}
	execAll(t, c, "COMMIT")
	for range 3 {
		if id := serverID(t, c); id != primary.ServerID {
			t.Errorf("read after drain ran on server %d, want the primary (%d)", id, primary.ServerID)
		}
	}
	m := p.metrics()
	checkMetric(t, m, "switchyard_backend_state", []string{"backend", replica.Name, "state", "drained"}, 1)
	checkMetric(t, m, "switchyard_backend_state", []string{"backend", replica.Name, "state", "usable"}, 0)

	// The primary cannot be drained; unknown names are 404.
	if code, body := p.request("POST", "/api/backends/"+primary.Name+"/drain"); code != http.StatusConflict {
		t.Errorf("POST drain of the primary: %d %s, want 409", code, body)
	}
	if code, _ := p.request("POST", "/api/backends/nosuch/drain"); code != http.StatusNotFound {
		t.Errorf("POST drain of an unknown backend: %d, want 404", code)
	}

	if code, body := p.request("POST", "/api/backends/"+replica.Name+"/undrain"); code != http.StatusOK {
		t.Fatalf("POST undrain %s: %d %s", replica.Name, code, body)
	}
	if id := serverID(t, c); id != replica.ServerID {
		t.Errorf("read after undrain ran on server %d, want the replica (%d)", id, replica.ServerID)
	}
	p.waitLogged("WARN", "backend drain changed", 2) // drain and undrain
}
