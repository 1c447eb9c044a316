package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
)

// The admin HTTP API: liveness, readiness, Prometheus metrics, backend
// status and drain, the running configuration and reload. It has its own
// listener (loopback by default) so that it never shares a port with SQL
// clients. docs/OPERATIONS.md documents every endpoint.

// backendHealth is what a health monitor knows about one backend. The
// replication monitor supplies it through adminOptions.Health (see
// monitorHealth); it is merged into GET /api/backends, and its state into
// switchyard_backend_state.
type backendHealth struct {
	State      string    `json:"state"`                 // "usable", "lagging" or "down"
	LagSeconds *float64  `json:"lag_seconds,omitempty"` // nil when unknown, and for the primary
	LagSource  string    `json:"lag_source,omitempty"`  // how the lag was measured
	Since      time.Time `json:"since,omitzero"`        // when State last changed
	Error      string    `json:"error,omitempty"`       // why the backend is not usable
	// Diverged says why automatic failover keeps the backend out: it holds
	// transactions the primary never got.
	Diverged string `json:"diverged,omitempty"`
}

// healthFunc returns the monitor's view of every backend it watches, by
// backend name. It is called once per request or scrape and must be cheap.
type healthFunc func() map[string]backendHealth

// monitorHealth adapts the replication monitor to healthFunc.
func monitorHealth(mon *replication.Monitor) healthFunc {
	return func() map[string]backendHealth {
		snap, diverged := mon.Snapshot(), mon.Diverged()
		out := make(map[string]backendHealth, len(snap.Backends))
		for _, b := range snap.Backends {
			h := backendHealth{State: b.State.String(), LagSource: b.LagSource, Since: b.Since, Error: b.LastError,
				Diverged: diverged[b.Name]}
			if b.LagSource != "" {
				lag := b.Lag.Seconds()
				h.LagSeconds = &lag
			}
			out[b.Name] = h
		}
		return out
	}
}

// adminOptions configure the admin API.
type adminOptions struct {
	Proxy    *proxy.Server
	Reloader *reloader // also the source of the running config and its admin token
	Gatherer prometheus.Gatherer
	// Health, when set, adds the monitor's view to GET /api/backends;
	// nil means the proxy's own view (usable, drained, down) only.
	Health healthFunc
	// Switchover, when set, serves POST /api/switchover.
	Switchover switchoverFunc
	// Logger receives the admin API's logs; nil means slog.Default().
	Logger *slog.Logger
}

// admin serves the admin API. Its zero value is not usable: build it with
// newAdmin.
type admin struct {
	opts     adminOptions
	log      *slog.Logger
	mux      *http.ServeMux
	started  time.Time
	draining atomic.Bool
	hs       *http.Server  // nil until Serve
	served   chan struct{} // closed when hs.Serve has returned
}

// newAdmin returns the admin API handler for opts.
func newAdmin(opts adminOptions) *admin {
	a := &admin{opts: opts, log: opts.Logger, mux: http.NewServeMux(), started: time.Now()}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "admin")
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelError),
	})
	// Liveness and readiness stay open so that orchestrators can probe them
	// without the token; they reveal nothing but up or down.
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", a.auth(metrics))
	a.mux.Handle("GET /api/status", a.auth(http.HandlerFunc(a.status)))
	a.mux.Handle("GET /api/backends", a.auth(http.HandlerFunc(a.backends)))
	a.mux.Handle("GET /api/config", a.auth(http.HandlerFunc(a.config)))
	a.mux.Handle("GET /api/sessions", a.auth(http.HandlerFunc(a.sessions)))
	a.mux.Handle("POST /api/backends/{name}/drain", a.auth(http.HandlerFunc(a.drain)))
	a.mux.Handle("POST /api/backends/{name}/undrain", a.auth(http.HandlerFunc(a.drain)))
	a.mux.Handle("POST /api/reload", a.auth(http.HandlerFunc(a.reload)))
	a.mux.Handle("POST /api/switchover", a.auth(http.HandlerFunc(a.switchover)))
	a.mux.Handle("GET /api/queries", a.auth(http.HandlerFunc(a.queries)))
	a.mux.Handle("POST /api/queries/reset", a.auth(http.HandlerFunc(a.resetQueries)))
	// Go's profiler, for measuring the proxy under load (admin.pprof).
	a.mux.Handle("GET /debug/pprof/", a.auth(a.pprof(http.HandlerFunc(pprof.Index))))
	a.mux.Handle("GET /debug/pprof/profile", a.auth(a.pprof(http.HandlerFunc(pprof.Profile))))
	a.mux.Handle("GET /debug/pprof/trace", a.auth(a.pprof(http.HandlerFunc(pprof.Trace))))
	registerConsole(a.mux) // GET / and GET /console/{file}, without the token (console.go)
	return a
}

// ServeHTTP routes r, answering unknown paths and methods with JSON errors.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r) // sets the path values
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := a.mux.Handler(r2); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
}

// startAdmin listens on addr and serves the admin API until Close. It
// returns nil, nil when addr is empty (the admin listener is disabled).
func startAdmin(addr string, opts adminOptions) (*admin, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a := newAdmin(opts)
	a.hs = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.log.Info("admin listening", "addr", ln.Addr().String(), "auth", opts.Reloader.config().Admin.Token != "")
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		if err := a.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "err", err)
		}
	}()
	return a, nil
}

// setDraining makes /readyz fail: the proxy is shutting down. Safe on nil.
func (a *admin) setDraining() {
	if a != nil {
		a.draining.Store(true)
	}
}

// Close stops the admin listener, letting requests in flight finish for a
// few seconds, and returns once the serving goroutine has. Safe on nil.
func (a *admin) Close() error {
	if a == nil || a.hs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := a.hs.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, a.hs.Close()) // cut off what did not finish
	}
	<-a.served
	return err
}

// auth requires the admin token, when one is configured, as a bearer token.
// The token is read from the running configuration, so a reload changes it.
func (a *admin) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := a.opts.Reloader.config().Admin.Token
		if token == "" {
			h.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Comparing digests keeps the comparison constant-time whatever the
		// lengths.
		want, have := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (admin.token)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pprof serves h only while admin.pprof is on in the running
// configuration: profiles show the program's inner workings (and a CPU
// profile costs a little while it runs), so they are off by default.
func (a *admin) pprof(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.opts.Reloader.config().Admin.Pprof {
			writeError(w, http.StatusNotFound, "profiling is off: set admin.pprof to true to serve "+r.URL.Path)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *admin) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the proxy can serve: a configuration is in force,
// it is not shutting down, and the primary answers.
func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if err := a.opts.Proxy.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// statusView is the body of GET /api/status.
type statusView struct {
	Version        string        `json:"version"`
	StartedAt      time.Time     `json:"started_at"`
	UptimeSeconds  float64       `json:"uptime_seconds"`
	Clients        int           `json:"clients"`
	Draining       bool          `json:"draining"`
	ConfigFile     string        `json:"config_file,omitempty"`
	ConfigLoadedAt time.Time     `json:"config_loaded_at"`
	LastReload     *reloadResult `json:"last_reload"` // null until the first reload
}

func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	rl := a.opts.Reloader
	writeJSON(w, http.StatusOK, statusView{
		Version:        version,
		StartedAt:      a.started,
		UptimeSeconds:  time.Since(a.started).Seconds(),
		Clients:        a.opts.Proxy.Clients(),
		Draining:       a.draining.Load(),
		ConfigFile:     rl.path,
		ConfigLoadedAt: rl.loadedAt(),
		LastReload:     rl.lastResult(),
	})
}

// backendView is one element of GET /api/backends.
type backendView struct {
	proxy.BackendStatus
	// State sums up the backend: "drained" when an operator drained it,
	// else the monitor's state when it watches the backend, else "usable"
	// or "down" as the proxy sees it.
	State      string         `json:"state"`
	LagSeconds *float64       `json:"lag_seconds"` // null when unknown
	Health     *backendHealth `json:"health,omitempty"`
}

// backendViews describes every backend of srv, with health's view merged
// in when health is not nil.
func backendViews(srv *proxy.Server, health healthFunc) []backendView {
	var hs map[string]backendHealth
	if health != nil {
		hs = health()
	}
	var out []backendView
	for _, b := range srv.Backends() {
		v := backendView{BackendStatus: b, State: "down"}
		if b.Usable {
			v.State = "usable"
		}
		if h, ok := hs[b.Name]; ok {
			v.Health = &h
			v.State, v.LagSeconds = h.State, h.LagSeconds
		}
		if b.Drained {
			v.State = "drained"
		}
		out = append(out, v)
	}
	return out
}

func (a *admin) views() []backendView { return backendViews(a.opts.Proxy, a.opts.Health) }

func (a *admin) backends(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"backends": a.views()})
}

// sessions lists the logged-in clients with their connection attributes.
func (a *admin) sessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sessions": a.opts.Proxy.Sessions()})
}

// config answers with the running configuration, secrets redacted, and the
// outcome of the last reload.
func (a *admin) config(w http.ResponseWriter, r *http.Request) {
	rl := a.opts.Reloader
	writeJSON(w, http.StatusOK, map[string]any{
		"file":        rl.path,
		"loaded_at":   rl.loadedAt(),
		"last_reload": rl.lastResult(),
		"config":      rl.config().Redacted(),
	})
}

// drain serves both POST .../drain and POST .../undrain.
func (a *admin) drain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	drained := strings.HasSuffix(r.URL.Path, "/drain")
	found := false
	for _, b := range a.opts.Proxy.Backends() {
		found = found || b.Name == name
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown backend %q", name))
		return
	}
	if err := a.opts.Proxy.Drain(name, drained); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	a.log.Info("backend drain set through the admin API", "backend", name, "drained", drained, "remote", r.RemoteAddr)
	for _, v := range a.views() {
		if v.Name == name {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	// Removed by a reload in the meantime.
	writeError(w, http.StatusNotFound, fmt.Sprintf("unknown backend %q", name))
}

// reload re-reads the configuration file: 200 with a summary when it is in
// force, 422 with every problem when it was rejected.
func (a *admin) reload(w http.ResponseWriter, r *http.Request) {
	res, err := a.opts.Reloader.reload("api")
	switch {
	case errors.Is(err, errNoConfigFile):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":  "configuration rejected; the running configuration stays in force",
			"errors": res.Errors,
		})
	default:
		cfg := a.opts.Reloader.config()
		writeJSON(w, http.StatusOK, map[string]any{
			"status":           "reloaded",
			"backends":         len(cfg.Backends),
			"users":            len(cfg.Users),
			"restart_required": res.RestartRequired,
		})
	}
}

// writeJSON answers v as indented JSON. Nothing is HTML-escaped: the
// answers are for operators and scripts, never embedded in a page, and
// "<redacted>" should read as such.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// newRegistry returns the registry behind /metrics with the Go runtime and
// process collectors and switchyard_build_info. The proxy, the reloader and
// the replication monitor register their own metrics on it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchyard_build_info",
		Help:        "Always 1; the labels give Switchyard's version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return reg
}

// register registers cs with reg, stopping at the first that fails.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// backendCollector exports the backends' state as the admin API shows it,
// at scrape time, so that a backend removed by a reload disappears from it.
// Lag and the monitor's own counters come from the monitor's collector.
type backendCollector struct {
	srv    *proxy.Server
	health healthFunc
}

// backendStates are the values of switchyard_backend_state's state label.
var backendStates = []string{"usable", "lagging", "down", "drained"}

var (
	descBackendState = prometheus.NewDesc("switchyard_backend_state",
		"Backend state, one series per state with value 1 for the current one: usable, lagging (too far behind; no new reads), down, or drained (by an operator).",
		[]string{"backend", "state"}, nil)
	descBackendPrimary = prometheus.NewDesc("switchyard_backend_primary",
		"1 for the backend that takes writes, 0 for the others.", []string{"backend"}, nil)
	descBackendWeight = prometheus.NewDesc("switchyard_backend_weight",
		"Configured share of reads (0: no reads).", []string{"backend"}, nil)
)

func newBackendCollector(srv *proxy.Server, health healthFunc) *backendCollector {
	return &backendCollector{srv: srv, health: health}
}

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBackendState
	ch <- descBackendPrimary
	ch <- descBackendWeight
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range backendViews(c.srv, c.health) {
		for _, s := range backendStates {
			ch <- prometheus.MustNewConstMetric(descBackendState, prometheus.GaugeValue, boolValue(v.State == s), v.Name, s)
		}
		ch <- prometheus.MustNewConstMetric(descBackendPrimary, prometheus.GaugeValue, boolValue(v.Role == "primary"), v.Name)
		ch <- prometheus.MustNewConstMetric(descBackendWeight, prometheus.GaugeValue, float64(v.Weight), v.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
