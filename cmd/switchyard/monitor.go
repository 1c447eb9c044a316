package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
)

// newMonitor builds the replication monitor for cfg. The caller runs it.
func newMonitor(cfg *config.Config, log *slog.Logger, onChange func(*replication.Snapshot)) (*replication.Monitor, error) {
	backends := make([]replication.Server, 0, len(cfg.Backends))
	for _, b := range cfg.Backends {
		tc, err := backendTLS(cfg, b)
		if err != nil {
			return nil, err
		}
		backends = append(backends, replication.Server{Name: b.Label(), Addr: b.Address, Role: replication.Role(b.Role),
			TLS: tc, TLSPreferred: cfg.BackendTLSFor(b).Mode == config.BackendTLSPreferred})
	}
	m := cfg.Monitor
	return replication.New(backends, replication.Options{
		User:         m.User,
		Password:     m.Password,
		Interval:     m.Interval.Duration(),
		Timeout:      m.Timeout.Duration(),
		MaxLag:       m.MaxReplicationLag.Duration(),
		ReadmitAfter: m.ReadmitAfter,
		Heartbeat: replication.HeartbeatOptions{
			Enabled:  m.Heartbeat.Enabled,
			Interval: m.Heartbeat.Interval.Duration(),
			Schema:   m.Heartbeat.Schema,
			Table:    m.Heartbeat.Table,
		},
		Logger:   log, // the monitor adds component=replication itself
		OnChange: onChange,
	})
}

// watcher runs the replication monitor, and automatic failover beside it
// under failover.mode auto, and replaces them when a reload changes the
// backends, the monitor or the failover settings. Its methods are safe for
// concurrent use; the proxy's hooks call them per statement.
type watcher struct {
	log      *slog.Logger
	onChange func(*replication.Snapshot)
	cur      atomic.Pointer[replication.Monitor]
	// srv is the proxy, once it exists (failover cuts its connections to
	// a former primary); onFailover counts failover events.
	srv        func() *proxy.Server
	onFailover func(replication.FailoverEvent)

	mu     sync.Mutex
	cfg    *config.Config
	tlsSum [sha256.Size]byte // backendTLSFiles(cfg)
	cancel context.CancelFunc
	done   chan struct{}
}

// startWatcher starts a monitor for cfg.
func startWatcher(cfg *config.Config, log *slog.Logger, onChange func(*replication.Snapshot),
	srv func() *proxy.Server, onFailover func(replication.FailoverEvent)) (*watcher, error) {
	w := &watcher{log: log, onChange: onChange, srv: srv, onFailover: onFailover}
	if err := w.start(cfg); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watcher) start(cfg *config.Config) error {
	tlsSum := backendTLSFiles(cfg)
	mon, err := newMonitor(cfg, w.log, w.onChange)
	if err != nil {
		return fmt.Errorf("replication monitor: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = mon.Run(ctx) })
	if cfg.Failover.Mode == config.FailoverAuto {
		wg.Go(func() { mon.RunFailover(ctx, w.failoverOptions(cfg)) })
	}
	if cfg.Failover.Mode != config.FailoverOff && cfg.Failover.User != "" && w.srv != nil {
		wg.Go(func() { mon.RunStandby(ctx, w.standbyOptions(cfg)) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	if w.cur.Load() != nil {
		// A restart: the old monitor keeps answering until the new one has
		// checked every backend once.
		select {
		case <-mon.Ready():
		case <-time.After(cfg.Monitor.Timeout.Duration() + cfg.Monitor.Interval.Duration()):
		}
	}
	w.mu.Lock()
	oldCancel, oldDone := w.cancel, w.done
	w.cfg, w.tlsSum, w.cancel, w.done = cfg, tlsSum, cancel, done
	w.cur.Store(mon)
	w.mu.Unlock()
	if oldCancel != nil {
		oldCancel()
		<-oldDone
	}
	return nil
}

// reload restarts the monitor when what it watches, or how it connects,
// changed: backends, monitor settings, backend TLS settings or the contents
// of their files (renewed certificates keep their names).
func (w *watcher) reload(cfg *config.Config) {
	w.mu.Lock()
	same := reflect.DeepEqual(w.cfg.Backends, cfg.Backends) && reflect.DeepEqual(w.cfg.Monitor, cfg.Monitor) &&
		reflect.DeepEqual(w.cfg.Failover, cfg.Failover) && w.tlsSum == backendTLSFiles(cfg)
	w.mu.Unlock()
	if same {
		return
	}
	if err := w.start(cfg); err != nil {
		w.log.Error("replication monitor not restarted; the old one keeps running", "err", err)
	}
}

// failoverOptions are the automatic failover settings of cfg.
func (w *watcher) failoverOptions(cfg *config.Config) replication.FailoverOptions {
	f := cfg.Failover
	return replication.FailoverOptions{
		Account: failoverAccount(f),
		After:   f.After.Duration(),
		Timeout: f.Timeout.Duration(),
		CutOff: func(name string) {
			if w.srv != nil {
				if p := w.srv(); p != nil {
					p.CutOff(name)
				}
			}
		},
		OnEvent: w.onFailover,
	}
}

// standbyOptions has the proxy hold its writes while another Switchyard
// switches over. The proxy exists once the monitor runs.
func (w *watcher) standbyOptions(cfg *config.Config) replication.StandbyOptions {
	return replication.StandbyOptions{
		Account: failoverAccount(cfg.Failover),
		Timeout: cfg.Failover.Timeout.Duration(),
		HoldWrites: func() func() {
			if p := w.srv(); p != nil {
				return p.HoldWrites()
			}
			return func() {}
		},
		WaitQuiet: func(ctx context.Context) error {
			if p := w.srv(); p != nil {
				return p.WaitQuiet(ctx)
			}
			return nil
		},
	}
}

// stop ends the monitor.
func (w *watcher) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	cancel()
	<-done
}

func (w *watcher) monitor() *replication.Monitor { return w.cur.Load() }

// hook points the proxy's health, topology and GTID hooks at the monitor.
// Under failover.mode auto, writes wait (a few seconds) while the primary is
// down, for the replica about to be promoted, rather than fail at once.
func (w *watcher) hook(opts *proxy.Options, cfg *config.Config) {
	auto := cfg.Failover.Mode == config.FailoverAuto
	if auto {
		// Long enough for the monitor to find the primary down (a probe
		// times out), failover.after, and the promotion.
		opts.AwaitFailover = cfg.Failover.After.Duration() + 2*cfg.Monitor.Timeout.Duration() + 3*time.Second
	}
	opts.Health = func(name string) bool { return w.monitor().Usable(name) }
	opts.Primary = func() string { return w.monitor().Primary() }
	opts.Recheck = func(name string) { w.monitor().Recheck(name) }
	opts.NoPrimary = func() bool {
		m := w.monitor()
		select {
		case <-m.Ready():
			p := m.Primary()
			return p == "" || auto && !m.Usable(p)
		default:
			return false // not checked yet: the configured primary serves
		}
	}
	opts.AppliedGTID = func(name string) string {
		b, ok := w.monitor().Snapshot().Backend(name)
		if !ok {
			return ""
		}
		if b.GTIDCurrentPos != "" {
			return b.GTIDCurrentPos
		}
		return b.GTIDExecuted
	}
}

// abandonDown returns an OnChange hook that abandons statements running on
// backends the monitor just found down (hung or dead), so that they fail
// over instead of waiting for a server that does not answer. During a
// reload the old and the new monitor both call it, from their own
// goroutines.
func abandonDown(srv func() *proxy.Server) func(*replication.Snapshot) {
	var mu sync.Mutex
	down := map[string]bool{}
	return func(s *replication.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range s.Backends {
			// Checks == 0: not probed yet (a monitor starting), not a failure.
			isDown := b.State == replication.Down && b.Checks > 0
			if isDown && !down[b.Name] {
				if p := srv(); p != nil {
					p.Abandon(b.Name)
				}
			}
			down[b.Name] = isDown
		}
	}
}

// monitorCollector exports the monitor's lag, topology and probe counters
// (backend states come from the backend collector in admin.go).
type monitorCollector struct {
	w                            *watcher
	lag, conflict                *prometheus.Desc
	primaryChanges, exclusions   *prometheus.Desc
	readmissions, checks, failed *prometheus.Desc
	diverged                     *prometheus.Desc
}

func newMonitorCollector(w *watcher) *monitorCollector {
	return &monitorCollector{
		w: w,
		lag: prometheus.NewDesc("switchyard_backend_replication_lag_seconds",
			"Replication lag of a replica as the monitor last measured it (heartbeat or Seconds_Behind_Master).",
			[]string{"backend", "source"}, nil),
		conflict: prometheus.NewDesc("switchyard_topology_conflict",
			"1 while more than one backend is writable: Switchyard keeps the last known primary.", nil, nil),
		primaryChanges: prometheus.NewDesc("switchyard_primary_changes_total",
			"Times the primary changed (switchover or failover followed).", nil, nil),
		exclusions: prometheus.NewDesc("switchyard_backend_exclusions_total",
			"Times a replica left read rotation (lagging or down).", nil, nil),
		readmissions: prometheus.NewDesc("switchyard_backend_readmissions_total",
			"Times a replica came back into read rotation.", nil, nil),
		checks: prometheus.NewDesc("switchyard_monitor_checks_total",
			"Health probes completed, by backend.", []string{"backend"}, nil),
		failed: prometheus.NewDesc("switchyard_monitor_check_failures_total",
			"Health probes that could not reach the backend, by backend.", []string{"backend"}, nil),
		diverged: prometheus.NewDesc("switchyard_backend_diverged",
			"1 for a backend automatic failover keeps out: it holds transactions the primary never got (GET /api/backends says which).",
			[]string{"backend"}, nil),
	}
}

func (c *monitorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.conflict, c.primaryChanges, c.exclusions, c.readmissions, c.checks, c.failed, c.diverged} {
		ch <- d
	}
}

func (c *monitorCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.monitor().Snapshot()
	if s == nil {
		return
	}
	diverged := c.w.monitor().Diverged()
	for _, b := range s.Backends {
		v := 0.0
		if _, ok := diverged[b.Name]; ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.diverged, prometheus.GaugeValue, v, b.Name)
		if b.LagSource != "" {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, b.Lag.Seconds(), b.Name, b.LagSource)
		}
		ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(b.Checks), b.Name)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(b.Failures), b.Name)
	}
	conflict := 0.0
	if s.Conflict {
		conflict = 1
	}
	ch <- prometheus.MustNewConstMetric(c.conflict, prometheus.GaugeValue, conflict)
	ch <- prometheus.MustNewConstMetric(c.primaryChanges, prometheus.CounterValue, float64(s.Stats.PrimaryChanges))
	ch <- prometheus.MustNewConstMetric(c.exclusions, prometheus.CounterValue, float64(s.Stats.Exclusions))
	ch <- prometheus.MustNewConstMetric(c.readmissions, prometheus.CounterValue, float64(s.Stats.Readmissions))
}
