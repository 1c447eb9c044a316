package main

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
)

// serve runs the proxy described by cfg until ctx ends, then drains. ready,
// when not nil, receives the SQL listener's address once it accepts.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready chan<- net.Addr) error {
	return serveFile(ctx, "", cfg, log, ready)
}

// serveFile is serve for cfg loaded from path: SIGHUP and POST /api/reload
// re-read that file. An empty path disables reloading.
func serveFile(ctx context.Context, path string, cfg *config.Config, log *slog.Logger, ready chan<- net.Addr) error {
	reg := newRegistry()
	var srvRef atomic.Pointer[proxy.Server]
	swm, err := newSwitchoverMetrics(reg)
	if err != nil {
		return err
	}
	w, err := startWatcher(cfg, log, abandonDown(srvRef.Load), srvRef.Load, swm.failoverEvent)
	if err != nil {
		return err
	}
	defer w.stop()
	health := func() map[string]backendHealth { return monitorHealth(w.monitor())() }
	build := func(c *config.Config) (proxy.Options, error) {
		opts, err := proxyOptions(c, log)
		opts.Registerer = reg
		w.hook(&opts, c)
		return opts, err
	}
	opts, err := build(cfg)
	if err != nil {
		return err
	}
	srv, err := proxy.New(opts)
	if err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	srvRef.Store(srv)
	rl, err := newReloader(path, cfg, build, srv.Update, reg, log)
	if err != nil {
		return err
	}
	rl.OnReload = w.reload
	if err := register(reg, newBackendCollector(srv, health), newMonitorCollector(w)); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	adm, err := startAdmin(cfg.Admin.Listen, adminOptions{Proxy: srv, Reloader: rl, Gatherer: reg, Health: health, Logger: log,
		Switchover: newSwitchover(w, srv, rl.config, swm)})
	if err != nil {
		ln.Close()
		return err
	}
	defer adm.Close()
	// Every goroutine started here has ended when serveFile returns: the
	// SIGHUP watcher (after any reload it is running), the admin server
	// (adm.Close), the monitor (w.stop) and Serve (errc).
	hctx, stopHangup := context.WithCancel(context.Background())
	hangupDone := rl.watchHangup(hctx)
	defer func() {
		stopHangup()
		<-hangupDone
	}()
	log.Info("switchyard listening", "addr", ln.Addr().String(), "backends", len(cfg.Backends))
	if ready != nil {
		ready <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	var serveErr error
	select {
	case serveErr = <-errc:
		// The listener failed: drain the sessions it started, then say why.
		log.Error("switchyard stopped accepting", "err", serveErr)
	case <-ctx.Done():
	}
	adm.setDraining()
	drain := rl.config().Timeouts.Drain.Duration()
	log.Info("switchyard draining", "timeout", drain.String(), "clients", srv.Clients())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serveErr == nil {
		serveErr = <-errc // ErrServerClosed
	}
	switch {
	case !errors.Is(serveErr, proxy.ErrServerClosed):
		return serveErr
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		return err
	}
	log.Info("switchyard stopped")
	return nil
}

// proxyOptions translates the configuration into proxy options.
func proxyOptions(cfg *config.Config, log *slog.Logger) (proxy.Options, error) {
	opts := proxy.Options{
		ServerVersion:    cfg.ServerVersion,
		AuthPlugin:       cfg.AuthPlugin,
		HandshakeTimeout: cfg.Timeouts.Handshake.Duration(),
		IdleTimeout:      cfg.Timeouts.Idle.Duration(),
		NetReadTimeout:   cfg.Timeouts.NetRead.Duration(),
		BackendTimeout:   cfg.Timeouts.Backend.Duration(),
		ReadFromPrimary:  cfg.Routing.ReadFromPrimary,
		MaxConnections:   cfg.Limits.MaxConnections,
		MaxPacketSize:    int(cfg.Limits.MaxPacketSize),
		Logger:           log,
		SlowStatement:    cfg.Log.SlowStatement.Duration(),
		Digests:          cfg.Digests.Max,
		Pool: proxy.PoolOptions{
			MaxOpen:     cfg.Pool.MaxOpen,
			MaxIdle:     noneIfZero(cfg.Pool.MaxIdle),
			IdleTimeout: neverIfZero(cfg.Pool.IdleTimeout.Duration()),
			WaitTimeout: cfg.Pool.WaitTimeout.Duration(),
			ReleaseIdle: neverIfZero(cfg.Pool.ReleaseIdle.Duration()),
			Connect:     cfg.Timeouts.Connect.Duration(),
		},
	}
	opts.Routing = router.Policy{
		Consistency:   consistency(cfg.Routing.Consistency),
		SessionWindow: cfg.Routing.SessionWindow.Duration(),
		CausalWait:    cfg.Routing.CausalWait.Duration(),
		LazyImplicit:  cfg.Routing.ImplicitTransactions == config.ImplicitTxLazy,
	}
	opts.NoReplicaError = cfg.Routing.NoReplica == config.NoReplicaError
	switch cfg.TLS.Mode {
	case config.TLSOptional, config.TLSRequired:
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return opts, fmt.Errorf("load tls certificate: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		opts.TLSMode = proxy.TLSOptional
		if cfg.TLS.Mode == config.TLSRequired {
			opts.TLSMode = proxy.TLSRequired
		}
	}
	if cfg.RSAKey != "" {
		k, err := loadRSAKey(cfg.RSAKey)
		if err != nil {
			return opts, err
		}
		opts.RSAKey = k
	}
	for _, u := range cfg.Users {
		pu := proxy.NewUser(u.Name, u.Password)
		if u.Password == "" {
			var err error
			if pu, err = proxy.NewUserFromHash(u.Name, u.PasswordHash); err != nil {
				return opts, err
			}
		}
		pu.MaxConnections = u.MaxConnections
		if u.Consistency != config.ConsistencyInherit {
			c := consistency(u.Consistency)
			pu.Consistency = &c
		}
		opts.Users = append(opts.Users, pu)
	}
	for _, b := range cfg.Backends {
		pb := &proxy.Backend{Name: b.Label(), Addr: b.Address, Role: replication.Role(b.Role), Weight: b.Weight}
		tc, err := backendTLS(cfg, b)
		if err != nil {
			return opts, err
		}
		if tc != nil {
			pb.TLS = &proxy.BackendTLS{Config: tc, Preferred: cfg.BackendTLSFor(b).Mode == config.BackendTLSPreferred}
		}
		opts.Backends = append(opts.Backends, pb)
	}
	return opts, nil
}

// The configuration holds every default (config.Default) and writes "never"
// and "none" as 0: pool.idle_timeout 0 keeps idle connections whatever their
// age, pool.max_idle 0 keeps none idle, pool.release_idle 0 never hands
// connections back for idleness. proxy.PoolOptions reads 0 as "use my
// default" and a negative value as never or none; these translate, so that
// a 0 in the file means what the file's documentation says. (Until
// proxy/pool.go honours a negative MaxIdle and IdleTimeout, issue 12, it
// still replaces them with its defaults, 16 and 5m.)

// neverIfZero maps a duration whose 0 means never to the proxy's negative.
func neverIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// noneIfZero maps a count whose 0 means none to the proxy's negative.
func noneIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// consistency maps the configured level to the router's.
func consistency(c config.Consistency) router.Consistency {
	switch c {
	case config.ConsistencyEventual:
		return router.ConsistencyEventual
	case config.ConsistencyCausal:
		return router.ConsistencyCausal
	case config.ConsistencyGlobal:
		return router.ConsistencyGlobal
	}
	return router.ConsistencySession
}

// loadRSAKey reads a PEM RSA private key (PKCS#1 or PKCS#8).
func loadRSAKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rsa key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("rsa key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("rsa key %s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("rsa key %s: not an RSA key", path)
	}
	return rk, nil
}
