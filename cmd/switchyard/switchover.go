package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
)

// Planned switchovers: POST /api/switchover and `switchyard switchover`,
// which calls it. The replication monitor runs the sequence
// (replication.Monitor.Switchover); the proxy holds writes meanwhile.

// switchoverFunc runs one switchover to target ("" for the best replica).
type switchoverFunc func(ctx context.Context, target string) (*replication.SwitchoverReport, error)

// errSwitchoverOff refuses switchovers when failover.mode is off.
var errSwitchoverOff = fmt.Errorf("%w: failover.mode is off", replication.ErrSwitchoverRefused)

// switchoverMetrics count switchovers and how long the last one held
// writes, and the events of automatic failover.
type switchoverMetrics struct {
	total    *prometheus.CounterVec
	held     prometheus.Gauge
	events   *prometheus.CounterVec
	downtime prometheus.Gauge
}

func newSwitchoverMetrics(reg prometheus.Registerer) (*switchoverMetrics, error) {
	m := &switchoverMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_switchovers_total",
			Help: "Planned switchovers by result: done, refused (nothing changed), called_off (undone) or failed (after the promotion).",
		}, []string{"result"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_switchover_writes_held_seconds",
			Help: "How long the last switchover held writes.",
		}),
	}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_failover_events_total",
		Help: "Automatic failover events by kind (failover, fenced, rejoined, diverged: a server kept out) and result (error: a failover not made yet, a server that could not be fenced or rejoined).",
	}, []string{"kind", "result"})
	m.downtime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchyard_failover_primary_down_seconds",
		Help: "How long the primary was down before the last automatic failover made a new one.",
	})
	for _, r := range []string{"done", "refused", "called_off", "failed"} {
		m.total.WithLabelValues(r)
	}
	for _, k := range []string{"failover", "fenced", "rejoined", "diverged"} {
		for _, r := range []string{"done", "error"} {
			m.events.WithLabelValues(k, r)
		}
	}
	return m, register(reg, m.total, m.held, m.events, m.downtime)
}

// failoverEvent counts one automatic failover event.
func (m *switchoverMetrics) failoverEvent(ev replication.FailoverEvent) {
	result := "done"
	if ev.Err != nil && ev.Kind != "diverged" { // a divergence found is the event
		result = "error"
	}
	m.events.WithLabelValues(ev.Kind, result).Inc()
	if ev.Kind == "failover" && ev.Err == nil {
		m.downtime.Set(ev.Downtime.Seconds())
	}
}

// newSwitchover returns the switchoverFunc of a running proxy: the current
// monitor runs it with the failover settings in force, and srv holds writes.
func newSwitchover(w *watcher, srv *proxy.Server, cfg func() *config.Config, m *switchoverMetrics) switchoverFunc {
	return func(ctx context.Context, target string) (*replication.SwitchoverReport, error) {
		f := cfg().Failover
		var rep *replication.SwitchoverReport
		err := errSwitchoverOff
		if f.Mode != config.FailoverOff {
			rep, err = w.monitor().Switchover(ctx, replication.SwitchoverOptions{
				Target: target, Account: failoverAccount(f),
				Timeout:    f.Timeout.Duration(),
				HoldWrites: srv.HoldWrites, WaitQuiet: srv.WaitQuiet,
			})
		}
		m.total.WithLabelValues(switchoverResult(err)).Inc()
		if rep != nil && rep.WritesHeld > 0 {
			m.held.Set(rep.WritesHeld.Seconds())
		}
		return rep, err
	}
}

// failoverAccount is the account of the failover settings.
func failoverAccount(f config.Failover) replication.Account {
	return replication.Account{User: f.User, Password: f.Password,
		ReplicationUser: f.ReplicationUser, ReplicationPassword: f.ReplicationPassword}
}

func switchoverResult(err error) string {
	switch {
	case err == nil:
		return "done"
	case errors.Is(err, replication.ErrSwitchoverRefused), errors.Is(err, replication.ErrSwitchoverRunning):
		return "refused"
	case errors.Is(err, replication.ErrSwitchoverCalledOff):
		return "called_off"
	}
	return "failed"
}

// switchoverAnswer is the body of POST /api/switchover.
type switchoverAnswer struct {
	Status string                        `json:"status"` // done, refused, called_off, failed
	Error  string                        `json:"error,omitempty"`
	Report *replication.SwitchoverReport `json:"report,omitempty"`
}

// switchover serves POST /api/switchover[?target=NAME]: 200 when done, 409
// when refused or called off (nothing changed), 500 when it failed after
// the promotion (the report says where things stand).
func (a *admin) switchover(w http.ResponseWriter, r *http.Request) {
	if a.opts.Switchover == nil {
		writeError(w, http.StatusNotImplemented, "switchovers need the replication monitor")
		return
	}
	target := r.URL.Query().Get("target")
	a.log.Warn("switchover requested through the admin API", "target", target, "remote", r.RemoteAddr)
	// A client that goes away does not stop a switchover half-way.
	rep, err := a.opts.Switchover(context.WithoutCancel(r.Context()), target)
	ans := switchoverAnswer{Status: switchoverResult(err), Report: rep}
	code := http.StatusOK
	if err != nil {
		ans.Error = err.Error()
		code = http.StatusConflict
		if ans.Status == "failed" {
			code = http.StatusInternalServerError
		}
	}
	writeJSON(w, code, ans)
}

// runSwitchover is `switchyard switchover`: it asks the running Switchyard
// configured by -config for a switchover through its admin API.
func runSwitchover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard switchover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "switchyard.yaml", "configuration file of the running switchyard (admin address and token)")
	target := fs.String("to", "", "backend to promote (default: the usable replica that has applied the most)")
	admin := fs.String("admin", "", "admin API address; with it, -config is read only when given (for admin.token)")
	wait := fs.Duration("timeout", time.Minute, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: switchyard switchover [-config FILE] [-admin HOST:PORT] [-to BACKEND]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	cfg := config.Default()
	cfg.Admin.Listen = ""
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if *admin == "" || explicit {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			for _, p := range configProblems(err) {
				fmt.Fprintf(stderr, "switchyard switchover: %s: %s\n", *cfgPath, p)
			}
			return 1
		}
	}
	if *admin == "" {
		*admin = cfg.Admin.Listen
	}
	if *admin == "" {
		fmt.Fprintf(stderr, "switchyard switchover: %s has no admin.listen: the admin API is off\n", *cfgPath)
		return 1
	}
	u := url.URL{Scheme: "http", Host: dialable(*admin), Path: "/api/switchover"}
	if *target != "" {
		u.RawQuery = url.Values{"target": {*target}}.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard switchover: %v\n", err)
		return 1
	}
	if cfg.Admin.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Admin.Token)
	}
	resp, err := (&http.Client{Timeout: *wait}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard switchover: %v (is switchyard running with %s?)\n", err, *cfgPath)
		return 1
	}
	defer resp.Body.Close()
	var ans switchoverAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Status == "" {
		fmt.Fprintf(stderr, "switchyard switchover: %s answered %s, not a switchover report\n", u.Host, resp.Status)
		return 1
	}
	printSwitchover(stdout, ans)
	if ans.Status != "done" {
		fmt.Fprintf(stderr, "switchyard switchover: %s: %s\n", ans.Status, ans.Error)
		return 1
	}
	return 0
}

// printSwitchover writes a report for people.
func printSwitchover(w io.Writer, ans switchoverAnswer) {
	rep := ans.Report
	if rep == nil {
		return
	}
	if ans.Status == "done" {
		fmt.Fprintf(w, "primary moved from %s to %s; writes held %s, here and in %d other Switchyards\n",
			rep.From, rep.To, rep.WritesHeld.Round(time.Millisecond), rep.PeersHeld)
	} else {
		fmt.Fprintf(w, "switchover from %s to %s: %s\n", rep.From, rep.To, ans.Status)
	}
	for _, s := range rep.Steps {
		on := ""
		if s.Backend != "" {
			on = " (" + s.Backend + ")"
		}
		fmt.Fprintf(w, "  %-50s %8s\n", s.Step+on, s.Took.Round(100*time.Microsecond))
	}
	if len(rep.Repointed) > 0 {
		fmt.Fprintf(w, "replicating from %s: %s\n", rep.To, strings.Join(rep.Repointed, ", "))
	}
	for name, why := range rep.NotRepointed {
		fmt.Fprintf(w, "NOT replicating from %s: %s: %s\n", rep.To, name, why)
	}
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":6034", "0.0.0.0:6034") means this machine.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
