package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
)

// Reloading: SIGHUP or POST /api/reload re-reads the configuration file and
// puts it in force without dropping client sessions. A file that does not
// load is rejected with every problem it has; the old configuration stays.

// errNoConfigFile is returned by reload when the process was started without
// a configuration file (the demo).
var errNoConfigFile = errors.New("switchyard was started without a configuration file: nothing to reload")

// reloadResult is the outcome of one reload, for the API and logs.
type reloadResult struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // "signal" or "api"
	OK      bool      `json:"ok"`
	// Errors lists the problems of a rejected file, one per line of
	// `switchyard check-config`, secrets redacted.
	Errors []string `json:"errors,omitempty"`
	// RestartRequired names changed settings that a reload cannot apply;
	// the running process keeps their old values.
	RestartRequired []string `json:"restart_required,omitempty"`
}

// reloader owns the configuration in force. Reloads are serialized; readers
// take the current snapshot without locking.
type reloader struct {
	path  string                                      // "" when started without a file
	build func(*config.Config) (proxy.Options, error) // proxyOptions, plus what serve adds
	apply func(proxy.Options) error                   // proxy.Server.Update
	log   *slog.Logger

	// OnReload, when set, is called with each configuration put in force by
	// a reload, after the proxy took it. For components outside the proxy,
	// such as the replication monitor. Set it before the first reload.
	OnReload func(*config.Config)

	mu       sync.Mutex // serializes reloads
	cur      atomic.Pointer[config.Config]
	loaded   atomic.Pointer[time.Time]
	last     atomic.Pointer[reloadResult]
	reloads  *prometheus.CounterVec
	lastOK   prometheus.Gauge
	lastOKAt prometheus.Gauge
}

// newReloader returns a reloader with cfg in force. It registers its metrics
// with reg, when not nil.
func newReloader(path string, cfg *config.Config, build func(*config.Config) (proxy.Options, error),
	apply func(proxy.Options) error, reg prometheus.Registerer, log *slog.Logger) (*reloader, error) {
	r := &reloader{
		path: path, build: build, apply: apply, log: log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_config_reloads_total",
			Help: "Configuration reloads (SIGHUP or POST /api/reload), by result (success or failure).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_config_last_reload_success",
			Help: "1 if the last configuration reload (or the initial load) succeeded, 0 if it was rejected.",
		}),
		lastOKAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_config_last_reload_success_timestamp_seconds",
			Help: "Unix time at which the configuration in force was loaded.",
		}),
	}
	r.reloads.WithLabelValues("success")
	r.reloads.WithLabelValues("failure")
	r.install(cfg, time.Now())
	r.lastOK.Set(1)
	if reg != nil {
		if err := register(reg, r.reloads, r.lastOK, r.lastOKAt); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *reloader) install(cfg *config.Config, at time.Time) {
	r.cur.Store(cfg)
	r.loaded.Store(&at)
	r.lastOKAt.Set(float64(at.UnixNano()) / 1e9)
}

// config returns the configuration in force. Callers must not modify it.
func (r *reloader) config() *config.Config { return r.cur.Load() }

// loadedAt returns when the configuration in force was loaded.
func (r *reloader) loadedAt() time.Time { return *r.loaded.Load() }

// lastResult returns the outcome of the last reload, or nil if there was
// none.
func (r *reloader) lastResult() *reloadResult { return r.last.Load() }

// reload re-reads the file and puts it in force. trigger says who asked
// ("signal" or "api"). On failure the old configuration stays and the error
// (also in the result's Errors) says why.
func (r *reloader) reload(trigger string) (reloadResult, error) {
	if r.path == "" {
		r.log.Warn("configuration reload refused", "trigger", trigger, "err", errNoConfigFile)
		return reloadResult{Time: time.Now(), Trigger: trigger}, errNoConfigFile
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := reloadResult{Time: time.Now(), Trigger: trigger}
	cfg, err := r.load()
	if err != nil {
		res.Errors = configProblems(err)
		r.reloads.WithLabelValues("failure").Inc()
		r.lastOK.Set(0)
		r.last.Store(&res)
		r.log.Error("configuration reload failed; the running configuration stays in force",
			"trigger", trigger, "file", r.path, "problems", res.Errors)
		return res, err
	}
	old := r.config()
	res.OK = true
	res.RestartRequired = needsRestart(old, cfg)
	r.install(cfg, res.Time)
	r.reloads.WithLabelValues("success").Inc()
	r.lastOK.Set(1)
	r.last.Store(&res)
	if r.OnReload != nil {
		r.OnReload(cfg)
	}
	r.log.Info("configuration reloaded", "trigger", trigger, "file", r.path,
		"backends", len(cfg.Backends), "users", len(cfg.Users))
	if len(res.RestartRequired) > 0 {
		r.log.Warn("configuration changes that take effect only after a restart", "settings", res.RestartRequired)
	}
	return res, nil
}

// load reads the file and hands the proxy its options.
func (r *reloader) load() (*config.Config, error) {
	cfg, err := config.Load(r.path)
	if err != nil {
		return nil, err
	}
	opts, err := r.build(cfg)
	if err != nil {
		return nil, err
	}
	if err := r.apply(opts); err != nil {
		return nil, err
	}
	return cfg, nil
}

// restartOnly lists the settings a reload cannot change, with how to read
// each from a Config. (The replication monitor restarts with new backends
// or monitor settings through OnReload.) backend_tls and backends[].tls are
// not among them: a reload re-reads their files, and every backend
// connection opened after it, pooled or the monitor's, uses them; open
// connections keep the transport they were opened with.
var restartOnly = []struct {
	name string
	get  func(*config.Config) any
}{
	{"listen", func(c *config.Config) any { return c.Listen }},
	{"admin.listen", func(c *config.Config) any { return c.Admin.Listen }},
	{"tls", func(c *config.Config) any { return c.TLS }},
	{"rsa_key", func(c *config.Config) any { return c.RSAKey }},
	// A backend pool keeps the sizes and timeouts it was opened with;
	// only pools opened after the reload (new backends, new users) take
	// the new ones. pool.release_idle is not among them: the proxy reads
	// it afresh for every idle sweep.
	{"pool.max_open", func(c *config.Config) any { return c.Pool.MaxOpen }},
	{"pool.max_idle", func(c *config.Config) any { return c.Pool.MaxIdle }},
	{"pool.idle_timeout", func(c *config.Config) any { return c.Pool.IdleTimeout }},
	{"pool.wait_timeout", func(c *config.Config) any { return c.Pool.WaitTimeout }},
	{"timeouts.connect", func(c *config.Config) any { return c.Timeouts.Connect }},
	{"timeouts.backend", func(c *config.Config) any { return c.Timeouts.Backend }},
	{"log.level", func(c *config.Config) any { return c.Log.Level }},
	{"log.format", func(c *config.Config) any { return c.Log.Format }},
}

// needsRestart names the restart-only settings that differ between old and
// next.
func needsRestart(old, next *config.Config) []string {
	var out []string
	for _, s := range restartOnly {
		if !reflect.DeepEqual(s.get(old), s.get(next)) {
			out = append(out, s.name)
		}
	}
	return out
}

// secretPath matches the configuration fields that hold secrets.
var secretPath = regexp.MustCompile(`(^|\.)(password|password_hash|token)$`)

// quoted matches a double-quoted Go string in an error message.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// configProblems lists the problems in err, one string each. Messages about
// secret fields may quote the value (an unterminated ${ in a password, say):
// those quotes are redacted, so that the problems can be logged and shown.
func configProblems(err error) []string {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return []string{err.Error()}
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		if secretPath.MatchString(e.Path) {
			e.Msg = quoted.ReplaceAllString(e.Msg, `"<redacted>"`)
		}
		out[i] = e.Error()
	}
	return out
}

// watchHangup reloads on every SIGHUP until ctx ends. The channel it
// returns is closed once it has stopped: after a reload in progress, and
// after SIGHUP is no longer caught.
func (r *reloader) watchHangup(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = r.reload("signal")
			}
		}
	}()
	return done
}
