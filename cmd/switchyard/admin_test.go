package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Unit tests of the admin API against a real proxy.Server whose backends do
// not answer (nothing listens on their ports): everything but readiness
// works without servers. The end-to-end tests cover a live sandbox.

// Secrets in adminConfig; none may appear in an admin API answer or a log.
const (
	testAppPassword     = "app-Pw-7c1e9"
	testMonitorPassword = "mon-Pw-3b7d2"
	testToken           = "tok-8f2a6d"
)

// adminConfig is a valid configuration; extra is appended (YAML).
func adminConfig(primary, replica, extra string) string {
	return `listen: "127.0.0.1:0"
users:
  - name: app
    password: "` + testAppPassword + `"
backends:
  - name: db1
    address: "` + primary + `"
    role: primary
  - name: db2
    address: "` + replica + `"
    role: replica
    weight: 2
monitor:
  password: "` + testMonitorPassword + `"
` + extra
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lockedBuffer collects log output from concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// adminFixture is an admin API over a proxy that is not serving.
type adminFixture struct {
	t       *testing.T
	path    string // config file
	primary string
	replica string
	srv     *proxy.Server
	rl      *reloader
	admin   *admin
	logs    *lockedBuffer
}

// newAdminFixture writes adminConfig(extra) and builds the admin API on it,
// as serveFile does. health may be nil.
func newAdminFixture(t *testing.T, extra string, health healthFunc) *adminFixture {
	t.Helper()
	f := &adminFixture{t: t, primary: closedAddr(t), replica: closedAddr(t), logs: &lockedBuffer{}}
	f.path = filepath.Join(t.TempDir(), "switchyard.yaml")
	f.write(extra)
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatalf("load %s: %v", f.path, err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := newRegistry()
	build := func(c *config.Config) (proxy.Options, error) {
		opts, err := proxyOptions(c, log)
		opts.Registerer = reg
		return opts, err
	}
	opts, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.srv, err = proxy.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.srv.Shutdown(t.Context()) })
	if f.rl, err = newReloader(f.path, cfg, build, f.srv.Update, reg, log); err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(newBackendCollector(f.srv, health))
	f.admin = newAdmin(adminOptions{Proxy: f.srv, Reloader: f.rl, Gatherer: reg, Health: health, Logger: log})
	return f
}

// write replaces the config file's content.
func (f *adminFixture) write(extra string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(adminConfig(f.primary, f.replica, extra)), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// do runs one request; token "" sends no Authorization header.
func (f *adminFixture) do(method, path, token string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	f.admin.ServeHTTP(w, r)
	return w
}

// decode parses a JSON answer into v.
func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
}

func TestAdminAuth(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n", nil)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/readyz", "", http.StatusServiceUnavailable}, // open, but the primary is down
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/metrics", "wrong", http.StatusUnauthorized},
		{"GET", "/metrics", testToken, http.StatusOK},
		{"GET", "/api/backends", "", http.StatusUnauthorized},
		{"GET", "/api/backends", testToken + "x", http.StatusUnauthorized},
		{"GET", "/api/backends", testToken, http.StatusOK},
		{"GET", "/api/config", "", http.StatusUnauthorized},
		{"GET", "/api/status", testToken, http.StatusOK},
		{"POST", "/api/backends/db2/drain", "", http.StatusUnauthorized},
		{"POST", "/api/backends/db2/undrain", "wrong", http.StatusUnauthorized},
		{"POST", "/api/reload", "", http.StatusUnauthorized},
	} {
		w := f.do(tc.method, tc.path, tc.token)
		if w.Code != tc.want {
			t.Errorf("%s %s with token %q: status %d, want %d; body %s", tc.method, tc.path, tc.token, w.Code, tc.want, w.Body)
		}
		if w.Code == http.StatusUnauthorized {
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate = %q, want a Bearer challenge", tc.method, tc.path, got)
			}
			var e struct{ Error string }
			decode(t, w, &e)
			if e.Error == "" {
				t.Errorf("%s %s: 401 without an error message", tc.method, tc.path)
			}
		}
	}
	// Only the bearer scheme is accepted.
	r := httptest.NewRequest("GET", "/api/backends", nil)
	r.SetBasicAuth("admin", testToken)
	w := httptest.NewRecorder()
	f.admin.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("basic auth with the token: status %d, want 401", w.Code)
	}
	// Draining makes readiness fail with its own status.
	f.admin.setDraining()
	w = f.do("GET", "/readyz", "")
	var st map[string]string
	decode(t, w, &st)
	if w.Code != http.StatusServiceUnavailable || st["status"] != "draining" {
		t.Errorf("readyz while draining: %d %v, want 503 draining", w.Code, st)
	}
}

// TestAdminPprof serves Go's profiler behind the token when admin.pprof is
// on, and nothing when it is off (the default).
func TestAdminPprof(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n  pprof: true\n", nil)
	for _, tc := range []struct {
		path, token string
		want        int
		body        string // in the answer
	}{
		{"/debug/pprof/", "", http.StatusUnauthorized, "admin.token"},
		{"/debug/pprof/", testToken, http.StatusOK, "goroutine"},
		{"/debug/pprof/goroutine?debug=1", testToken, http.StatusOK, "goroutine profile"},
		{"/debug/pprof/profile?seconds=1", "", http.StatusUnauthorized, "admin.token"},
		{"/debug/pprof/profile?seconds=1", testToken, http.StatusOK, ""},
	} {
		w := f.do("GET", tc.path, tc.token)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s with token %q: status %d, want %d with %q in the body; body starts %.200q", tc.path, tc.token, w.Code, tc.want, tc.body, w.Body)
		}
		if w.Code == http.StatusOK && w.Body.Len() == 0 {
			t.Errorf("GET %s: empty profile", tc.path)
		}
	}

	off := newAdminFixture(t, "", nil)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace"} {
		w := off.do("GET", p, "")
		var e struct{ Error string }
		decode(t, w, &e)
		if w.Code != http.StatusNotFound || !strings.Contains(e.Error, "admin.pprof") {
			t.Errorf("GET %s with admin.pprof off: %d %q, want 404 naming admin.pprof", p, w.Code, e.Error)
		}
	}
}

func TestAdminNoToken(t *testing.T) {
	f := newAdminFixture(t, "", nil)
	for _, p := range []string{"/metrics", "/api/backends", "/api/config", "/api/status"} {
		if w := f.do("GET", p, ""); w.Code != http.StatusOK {
			t.Errorf("GET %s without a configured token: status %d, want 200", p, w.Code)
		}
	}
}

func TestAdminReadyzNotReady(t *testing.T) {
	f := newAdminFixture(t, "", nil)
	w := f.do("GET", "/readyz", "")
	var st map[string]string
	decode(t, w, &st)
	if w.Code != http.StatusServiceUnavailable || st["status"] != "not ready" || !strings.Contains(st["error"], f.primary) {
		t.Errorf("readyz with the primary down: %d %v, want 503 naming %s", w.Code, st, f.primary)
	}
}

func TestAdminRoutingErrors(t *testing.T) {
	f := newAdminFixture(t, "", nil)
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/nope", http.StatusNotFound, ""},
		{"GET", "/api/reload", http.StatusMethodNotAllowed, "POST"},
		{"POST", "/api/backends", http.StatusMethodNotAllowed, "GET"},
		{"DELETE", "/api/config", http.StatusMethodNotAllowed, "GET"},
		{"GET", "/api/backends/db2/drain", http.StatusMethodNotAllowed, "POST"},
	} {
		w := f.do(tc.method, tc.path, "")
		var e struct{ Error string }
		decode(t, w, &e)
		if w.Code != tc.want || e.Error == "" || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: status %d, Allow %q, body %s; want %d, Allow %q and a JSON error",
				tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body, tc.want, tc.allow)
		}
	}
}

// backendsByName fetches GET /api/backends.
func (f *adminFixture) backendsByName() map[string]backendView {
	f.t.Helper()
	w := f.do("GET", "/api/backends", "")
	if w.Code != http.StatusOK {
		f.t.Fatalf("GET /api/backends: %d %s", w.Code, w.Body)
	}
	var body struct{ Backends []backendView }
	decode(f.t, w, &body)
	m := make(map[string]backendView)
	for _, b := range body.Backends {
		m[b.Name] = b
	}
	return m
}

func TestAdminBackendsAndDrain(t *testing.T) {
	f := newAdminFixture(t, "", nil)
	bs := f.backendsByName()
	if len(bs) != 2 {
		t.Fatalf("GET /api/backends: %d backends, want 2: %v", len(bs), bs)
	}
	db1, db2 := bs["db1"], bs["db2"]
	if db1.Address != f.primary || db1.Role != "primary" || db2.Address != f.replica || db2.Role != "replica" || db2.Weight != 2 {
		t.Errorf("backends = %+v, want db1 primary at %s and db2 replica of weight 2 at %s", bs, f.primary, f.replica)
	}
	if db2.State != "usable" || db2.LagSeconds != nil || db2.InUse != 0 || db2.Idle != 0 {
		t.Errorf("db2 = %+v, want usable, no lag, empty pool", db2)
	}

	w := f.do("POST", "/api/backends/db2/drain", "")
	var v backendView
	decode(t, w, &v)
	if w.Code != http.StatusOK || v.Name != "db2" || !v.Drained || v.State != "drained" {
		t.Errorf("drain db2: %d %s, want 200 and db2 drained", w.Code, w.Body)
	}
	if b := f.backendsByName()["db2"]; !b.Drained || b.Usable || b.State != "drained" {
		t.Errorf("after drain, db2 = %+v, want drained and not usable", b)
	}
	// Draining survives a reload that keeps the backend.
	if _, err := f.rl.reload("api"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if b := f.backendsByName()["db2"]; !b.Drained {
		t.Errorf("after a reload, db2 = %+v, want still drained", b)
	}
	w = f.do("POST", "/api/backends/db2/undrain", "")
	decode(t, w, &v)
	if w.Code != http.StatusOK || v.Drained || v.State != "usable" {
		t.Errorf("undrain db2: %d %s, want 200 and db2 usable", w.Code, w.Body)
	}

	var e struct{ Error string }
	w = f.do("POST", "/api/backends/db1/drain", "")
	decode(t, w, &e)
	if w.Code != http.StatusConflict || !strings.Contains(e.Error, "primary") {
		t.Errorf("drain the primary: %d %s, want 409 explaining that it is the primary", w.Code, w.Body)
	}
	w = f.do("POST", "/api/backends/nosuch/drain", "")
	decode(t, w, &e)
	if w.Code != http.StatusNotFound || !strings.Contains(e.Error, "nosuch") {
		t.Errorf("drain an unknown backend: %d %s, want 404", w.Code, w.Body)
	}
	if !strings.Contains(f.logs.String(), "backend drain changed") {
		t.Errorf("no log line for the drain:\n%s", f.logs)
	}
}

func TestAdminHealthHook(t *testing.T) {
	lag := 2.5
	health := func() map[string]backendHealth {
		return map[string]backendHealth{
			"db1": {State: "usable"},
			"db2": {State: "lagging", LagSeconds: &lag, LagSource: "heartbeat", Error: "lag 2.5s over 1s"},
		}
	}
	f := newAdminFixture(t, "", health)
	db2 := f.backendsByName()["db2"]
	if db2.State != "lagging" || db2.LagSeconds == nil || *db2.LagSeconds != lag || db2.Health == nil || db2.Health.LagSource != "heartbeat" {
		t.Errorf("db2 = %+v, want the monitor's state lagging and lag 2.5s", db2)
	}
	m := scrape(t, f.do("GET", "/metrics", "").Body.String())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"switchyard_backend_state", []string{"backend", "db2", "state", "lagging"}, 1},
		{"switchyard_backend_state", []string{"backend", "db2", "state", "usable"}, 0},
		{"switchyard_backend_state", []string{"backend", "db1", "state", "usable"}, 1},
		{"switchyard_backend_primary", []string{"backend", "db1"}, 1},
		{"switchyard_backend_primary", []string{"backend", "db2"}, 0},
		{"switchyard_backend_weight", []string{"backend", "db2"}, 2},
	} {
		if got, ok := m.get(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

func TestAdminConfigRedacted(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n", nil)
	w := f.do("GET", "/api/config", testToken)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/config: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, secret := range []string{testAppPassword, testMonitorPassword, testToken} {
		if strings.Contains(body, secret) {
			t.Errorf("GET /api/config shows the secret %q:\n%s", secret, body)
		}
	}
	var got struct {
		File   string
		Config config.Config
	}
	decode(t, w, &got)
	if got.File != f.path || len(got.Config.Backends) != 2 || got.Config.Users[0].Name != "app" ||
		got.Config.Users[0].Password != "<redacted>" || got.Config.Admin.Token != "<redacted>" {
		t.Errorf("GET /api/config = %+v, want the running config from %s with secrets redacted", got, f.path)
	}
}

// TestAdminJSONNotHTMLEscaped checks that admin answers show <, > and & as
// they are: "<redacted>" in /api/config, a path in an error.
func TestAdminJSONNotHTMLEscaped(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n", nil)
	for _, c := range []struct{ path, want string }{
		{"/api/config", `"password": "<redacted>"`},
		{"/api/%3Cno%3E&such", `"error": "no such endpoint: /api/<no>&such"`},
	} {
		w := f.do("GET", c.path, testToken)
		body := w.Body.String()
		if !strings.Contains(body, c.want) || strings.Contains(body, `\u00`) {
			t.Errorf("GET %s: %d %s\nwant it to contain %s, with no \\u00 escape", c.path, w.Code, body, c.want)
		}
	}
}

func TestAdminReload(t *testing.T) {
	f := newAdminFixture(t, "", nil)

	// A good file: a new weight, a new user, a new limit.
	good := strings.Replace(adminConfig(f.primary, f.replica, "limits:\n  max_connections: 7\n"), "weight: 2", "weight: 5", 1)
	good = strings.Replace(good, "users:\n", "users:\n  - name: report\n    password: \"rep-Pw-9\"\n", 1)
	if err := os.WriteFile(f.path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	w := f.do("POST", "/api/reload", "")
	var ok struct {
		Status          string
		Backends, Users int
	}
	decode(t, w, &ok)
	if w.Code != http.StatusOK || ok.Status != "reloaded" || ok.Backends != 2 || ok.Users != 2 {
		t.Fatalf("reload a good file: %d %s, want 200 reloaded with 2 backends and 2 users", w.Code, w.Body)
	}
	if b := f.backendsByName()["db2"]; b.Weight != 5 {
		t.Errorf("after reload db2 weight = %d, want 5", b.Weight)
	}
	if c := f.rl.config(); c.Limits.MaxConnections != 7 || len(c.Users) != 2 {
		t.Errorf("config in force after reload: limits %+v, %d users; want max_connections 7 and 2 users", c.Limits, len(c.Users))
	}

	// A bad file: rejected with every problem, the old config stays.
	bad := strings.Replace(good, "weight: 5", "weight: -1", 1)
	bad = strings.Replace(bad, `password: "rep-Pw-9"`, `password: "rep-${Pw"`, 1)
	bad += "pool:\n  max_open: 0\n"
	if err := os.WriteFile(f.path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	w = f.do("POST", "/api/reload", "")
	var rej struct {
		Error  string
		Errors []string
	}
	decode(t, w, &rej)
	if w.Code != http.StatusUnprocessableEntity || rej.Error == "" || len(rej.Errors) == 0 {
		t.Fatalf("reload a bad file: %d %s, want 422 with the problems", w.Code, w.Body)
	}
	// Env expansion fails first, so only that problem is reported; the
	// password must not be quoted back.
	if !strings.HasPrefix(rej.Errors[0], "users[0].password: ") || strings.Contains(w.Body.String(), "rep-") {
		t.Errorf("reload errors = %q, want users[0].password with the value redacted", rej.Errors)
	}
	if b := f.backendsByName()["db2"]; b.Weight != 5 {
		t.Errorf("after a rejected reload db2 weight = %d, want 5 (unchanged)", b.Weight)
	}
	if c := f.rl.config(); c.Limits.MaxConnections != 7 {
		t.Errorf("after a rejected reload max_connections = %d, want 7", c.Limits.MaxConnections)
	}

	// Validation problems are all listed.
	bad = strings.Replace(bad, `password: "rep-${Pw"`, `password: "rep-Pw-9"`, 1)
	if err := os.WriteFile(f.path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	w = f.do("POST", "/api/reload", "")
	decode(t, w, &rej)
	joined := strings.Join(rej.Errors, "\n")
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(joined, "backends[1].weight") || !strings.Contains(joined, "pool.max_open") {
		t.Errorf("reload with two invalid fields: %d, errors %q; want 422 naming backends[1].weight and pool.max_open", w.Code, rej.Errors)
	}

	// The failure shows in the API, the metrics and the log.
	var st statusView
	decode(t, f.do("GET", "/api/status", ""), &st)
	if st.LastReload == nil || st.LastReload.OK || st.LastReload.Trigger != "api" || len(st.LastReload.Errors) == 0 {
		t.Errorf("status last_reload = %+v, want a failed api reload with its errors", st.LastReload)
	}
	m := scrape(t, f.do("GET", "/metrics", "").Body.String())
	checkMetric(t, m, "switchyard_config_reloads_total", []string{"result", "success"}, 1)
	checkMetric(t, m, "switchyard_config_reloads_total", []string{"result", "failure"}, 2)
	checkMetric(t, m, "switchyard_config_last_reload_success", nil, 0)
	logs := f.logs.String()
	if !strings.Contains(logs, "configuration reload failed") || !strings.Contains(logs, "pool.max_open") {
		t.Errorf("log does not report the failed reload and its problems:\n%s", logs)
	}
	for _, secret := range []string{testAppPassword, testMonitorPassword, "rep-Pw-9", "rep-"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains the secret %q:\n%s", secret, logs)
		}
	}

	// Fixed again: the gauge goes back to 1, and a setting a reload cannot
	// apply is named.
	fixed := strings.Replace(good, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, 1)
	if err := os.WriteFile(f.path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	w = f.do("POST", "/api/reload", "")
	var again struct {
		RestartRequired []string `json:"restart_required"`
	}
	decode(t, w, &again)
	if w.Code != http.StatusOK || len(again.RestartRequired) != 1 || again.RestartRequired[0] != "listen" {
		t.Errorf("reload with a new listen address: %d %s, want 200 with restart_required [listen]", w.Code, w.Body)
	}
	m = scrape(t, f.do("GET", "/metrics", "").Body.String())
	checkMetric(t, m, "switchyard_config_last_reload_success", nil, 1)
	checkMetric(t, m, "switchyard_config_reloads_total", []string{"result", "success"}, 2)

	// A file that disappeared is a failure too.
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	w = f.do("POST", "/api/reload", "")
	decode(t, w, &rej)
	if w.Code != http.StatusUnprocessableEntity || len(rej.Errors) != 1 || !strings.Contains(rej.Errors[0], "no such file") {
		t.Errorf("reload a missing file: %d %s, want 422 saying the file is missing", w.Code, w.Body)
	}
}

func TestReloadWithoutFile(t *testing.T) {
	f := newAdminFixture(t, "", nil)
	f.rl.path = ""
	w := f.do("POST", "/api/reload", "")
	if w.Code != http.StatusConflict {
		t.Errorf("reload without a config file: %d %s, want 409", w.Code, w.Body)
	}
}

func TestConfigProblemsRedactSecrets(t *testing.T) {
	const secret = "Zq9-secret"
	yaml := `users:
  - name: a
    password: "` + secret + `${"
  - name: b
    password_hash: "*` + secret + `${"
backends:
  - address: 127.0.0.1:3306
monitor:
  password: "` + secret + `${"
admin:
  token: "` + secret + `${"
`
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil {
		t.Fatal("config.Load accepted unterminated ${ references")
	}
	problems := configProblems(err)
	if len(problems) != 4 {
		t.Errorf("configProblems = %q, want 4 problems", problems)
	}
	for _, p := range problems {
		if strings.Contains(p, secret) {
			t.Errorf("problem %q shows the secret", p)
		}
	}
}

func TestNeedsRestart(t *testing.T) {
	a := config.Default()
	b := config.Default()
	b.Backends = []config.Backend{{Address: "127.0.0.1:1"}}
	b.Limits.MaxConnections = 3
	b.Admin.Token = "new"
	if got := needsRestart(a, b); len(got) != 0 {
		t.Errorf("needsRestart for backends, limits and the token = %q, want none", got)
	}
	// The proxy reads pool.release_idle afresh: no restart.
	b.Pool.ReleaseIdle = config.Duration(time.Second)
	if got := needsRestart(a, b); len(got) != 0 {
		t.Errorf("needsRestart for pool.release_idle = %q, want none", got)
	}
	b.TLS.Mode = config.TLSRequired
	b.Admin.Listen = "127.0.0.1:1"
	b.Log.Level = "debug"
	b.Pool.MaxOpen = 3
	b.Timeouts.Connect = config.Duration(time.Second)
	got := strings.Join(needsRestart(a, b), ",")
	if want := "admin.listen,tls,pool.max_open,timeouts.connect,log.level"; got != want {
		t.Errorf("needsRestart = %s, want %s", got, want)
	}
}

// TestMonitorHealth runs the replication monitor against the sandbox and
// checks what monitorHealth makes of its snapshots.
func TestMonitorHealth(t *testing.T) {
	sb := sandboxtest.Require(t)
	var backends []replication.Server
	for _, srv := range sb.Servers() {
		backends = append(backends, replication.Server{Name: srv.Name, Addr: srv.Addr(), Role: replication.Role(srv.Role)})
	}
	mon, err := replication.New(backends, replication.Options{
		User:     sb.Opts.Monitor.Name,
		Password: sb.Opts.Monitor.Password,
		Interval: 100 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	health := monitorHealth(mon)
	// Before the first check every backend is down.
	for _, srv := range sb.Servers() {
		if h, ok := health()[srv.Name]; !ok || h.State != "down" {
			t.Errorf("before any check, %s: %+v (present %v), want down", srv.Name, h, ok)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("monitor: %v", err)
		}
	}()
	replica := sb.Replicas[0].Name
	deadline := time.Now().Add(15 * time.Second)
	for {
		hs := health()
		p, r := hs[sb.Primary.Name], hs[replica]
		if p.State == "usable" && r.State == "usable" {
			if p.LagSeconds != nil {
				t.Errorf("primary has a lag: %+v", p)
			}
			if r.LagSeconds == nil || *r.LagSeconds < 0 || r.LagSource == "" || r.Since.IsZero() || r.Error != "" {
				t.Errorf("usable replica %+v, want a known lag, its source and when it became usable", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor did not find both servers usable within 15s: %+v", hs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
