package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/leaktest"
	"github.com/switchyard-db/switchyard/proxy"
)

// keyCheck is a slog.Handler that keeps each record's message and notes
// the records that name a key twice (its own attributes and those of
// Logger.With together).
type keyCheck struct {
	mu    *sync.Mutex
	msgs  *[]string
	dups  *[]string
	attrs []slog.Attr
}

func newKeyCheck() *keyCheck {
	return &keyCheck{mu: &sync.Mutex{}, msgs: new([]string), dups: new([]string)}
}

func (h *keyCheck) Enabled(context.Context, slog.Level) bool { return true }

func (h *keyCheck) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *keyCheck) WithGroup(string) slog.Handler { return h } // unused by our code

func (h *keyCheck) Handle(_ context.Context, r slog.Record) error {
	seen := map[string]bool{}
	var twice []string
	note := func(a slog.Attr) bool {
		if seen[a.Key] {
			twice = append(twice, a.Key)
		}
		seen[a.Key] = true
		return true
	}
	for _, a := range h.attrs {
		note(a)
	}
	r.Attrs(note)
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	if len(twice) > 0 {
		*h.dups = append(*h.dups, r.Message+": "+strings.Join(twice, ", "))
	}
	return nil
}

// count returns how many records had message msg.
func (h *keyCheck) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range *h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func (h *keyCheck) duplicates() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.dups...)
}

// TestServeStopsWhatItStarts runs serveFile in this process in front of
// backends that do not answer (the monitor finds them down), stops it, and
// checks that every goroutine it started (the SIGHUP watcher, the admin
// server, the monitor, Serve) has ended as it returned, and that no log line
// along the way named a key twice. (A goroutine that signals its end still
// has to return: the check allows it a moment.)
func TestServeStopsWhatItStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	yaml := adminConfig(closedAddr(t), closedAddr(t), "admin:\n  listen: \"127.0.0.1:0\"\n")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := newKeyCheck()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	ready := make(chan net.Addr, 1)
	go func() {
		<-ready
		// Both backends checked once: the monitor has logged.
		for deadline := time.Now().Add(10 * time.Second); logs.count("backend checked") < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		stop()
	}()
	if err := serveFile(ctx, path, cfg, slog.New(logs), ready); err != nil {
		t.Fatalf("serveFile: %v", err)
	}
	if left := leaktest.Leaked("cmd/switchyard/", time.Second); len(left) > 0 {
		t.Errorf("%d goroutines started by serveFile still run after it returned:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
	if n := logs.count("backend checked"); n < 2 {
		t.Errorf("the monitor logged %d \"backend checked\" lines, want one per backend", n)
	}
	for _, d := range logs.duplicates() {
		t.Errorf("log line names a key twice: %s", d)
	}
}

// TestWatchHangupWaits checks that the SIGHUP watcher can be waited for,
// and that waiting covers a reload in progress: serveFile must not return
// while a reload is still putting a configuration in force.
func TestWatchHangupWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(path, []byte(adminConfig("127.0.0.1:1", "127.0.0.1:2", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	applying, release := make(chan struct{}), make(chan struct{})
	build := func(*config.Config) (proxy.Options, error) { return proxy.Options{}, nil }
	apply := func(proxy.Options) error {
		close(applying)
		<-release
		return nil
	}
	rl, err := newReloader(path, cfg, build, apply, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := rl.watchHangup(ctx) // catches SIGHUP from here on: the signal below does not end the test
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-applying:
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s of SIGHUP")
	}
	stop()
	select {
	case <-done:
		t.Fatal("watchHangup reported it had stopped while its reload was still being applied")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watchHangup did not stop within 10s of its context's end")
	}
	if res := rl.lastResult(); res == nil || !res.OK || res.Trigger != "signal" {
		t.Errorf("last reload %+v, want a successful one triggered by the signal", res)
	}
}

// TestProxyOptionsPoolZeros checks that a 0 in the pool section reaches the
// proxy with the meaning the configuration documents (never, none), and
// that the defaults, which config.Default holds, pass through as they are.
func TestProxyOptionsPoolZeros(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := config.Parse([]byte(adminConfig("127.0.0.1:1", "127.0.0.1:2",
		"pool:\n  max_idle: 0\n  idle_timeout: 0s\n  release_idle: 0s\n")))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := proxyOptions(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if p := opts.Pool; p.MaxIdle >= 0 || p.IdleTimeout >= 0 || p.ReleaseIdle >= 0 {
		t.Errorf("pool max_idle, idle_timeout, release_idle 0 became MaxIdle %d, IdleTimeout %s, ReleaseIdle %s; "+
			"want negative (none, never, never: the proxy reads 0 as its own default)", p.MaxIdle, p.IdleTimeout, p.ReleaseIdle)
	}
	def := config.Default().Pool
	cfg, err = config.Parse([]byte(adminConfig("127.0.0.1:1", "127.0.0.1:2", "")))
	if err != nil {
		t.Fatal(err)
	}
	if opts, err = proxyOptions(cfg, log); err != nil {
		t.Fatal(err)
	}
	if p := opts.Pool; p.MaxOpen != def.MaxOpen || p.MaxIdle != def.MaxIdle || p.IdleTimeout != def.IdleTimeout.Duration() ||
		p.WaitTimeout != def.WaitTimeout.Duration() || p.ReleaseIdle != def.ReleaseIdle.Duration() {
		t.Errorf("default pool options %+v, want config.Default's %+v", p, def)
	}
}
