package proxy

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/router"
)

// metrics are Switchyard's Prometheus metrics. Labels are bounded: route,
// backend (from the configuration), command, class, reason and MySQL error
// code; never query text or user input. Children used per statement are
// resolved once and cached, so the hot path does no label lookups. Series
// whose labels combine a backend with a route, command and class are made on
// first use: most combinations never happen (a replica's backend on the
// primary route), and a scrape should not list them.
type metrics struct {
	statements     *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	backendTime    *prometheus.HistogramVec
	errors         *prometheus.CounterVec
	clients        prometheus.Gauge
	clientsTotal   prometheus.Counter
	rejected       *prometheus.CounterVec
	poolOpen       *prometheus.GaugeVec
	poolWaits      *prometheus.CounterVec
	poolWaitTime   *prometheus.CounterVec
	pins           *prometheus.CounterVec
	routed         *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	panics         prometheus.Counter
	retries        prometheus.Counter
	released       prometheus.Counter
	refused        prometheus.Counter
	writable       *prometheus.GaugeVec
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
	digestsEvicted prometheus.Counter
	errorChildren  sync.Map // error code -> prometheus.Counter
}

// Commands counted in switchyard_statements_total.
const (
	cmdQuery = iota
	cmdExecute
	cmdPrepare
	cmdOther
	numCmds
)

var cmdNames = [numCmds]string{"query", "execute", "prepare", "other"}

// backendMetrics caches the children of one backend.
type backendMetrics struct {
	name string
	vec  *prometheus.CounterVec // switchyard_statements_total
	// statements holds vec's children by [route][command][kind], nil
	// until first used.
	statements  [2][numCmds][router.NumKinds]atomic.Pointer[prometheus.Counter]
	backendTime prometheus.Observer
}

// routeNames are the values of the route label, by route index.
var routeNames = [2]string{"primary", "replica"}

// registerMetrics creates the proxy's metrics and registers them with reg
// when it is not nil. It fails when reg already holds one of them: two
// Servers cannot share a registry.
func registerMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_statements_total",
			Help: "Statements run, by route (primary or replica), backend, command and statement class.",
		}, []string{"route", "backend", "command", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_statement_duration_seconds",
			Help:    "Time from a client command's arrival to the end of its response, as the client sees it, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"route"}),
		backendTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_backend_statement_duration_seconds",
			Help:    "Time from sending a command to a backend to the end of its response, by backend.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"backend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_errors_total",
			Help: "Error packets sent to clients, by MySQL error code (from backends and from Switchyard).",
		}, []string{"code"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_client_connections",
			Help: "Client connections open now.",
		}),
		clientsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_client_connections_total",
			Help: "Client connections accepted.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_client_connections_rejected_total",
			Help: "Client connections refused, by reason.",
		}, []string{"reason"}),
		poolOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_backend_connections",
			Help: "Backend connections, by backend and state (idle or in_use).",
		}, []string{"backend", "state"}),
		poolWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_backend_pool_waits_total",
			Help: "Times a session waited for a free backend connection slot, by backend.",
		}, []string{"backend"}),
		poolWaitTime: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_backend_pool_wait_seconds_total",
			Help: "Time sessions spent waiting for backend connection slots, by backend.",
		}, []string{"backend"}),
		pins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_session_pins_total",
			Help: "Sessions pinned to the primary, by reason, counted when the pin starts.",
		}, []string{"reason"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_routing_decisions_total",
			Help: "Routing decisions by the rule that made them (unsure counts statements sent to the primary because the classifier could not decide).",
		}, []string{"reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_client_bytes_total",
			Help: "Bytes exchanged with clients, by direction (in: from clients, out: to clients).",
		}, []string{"direction"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_session_panics_total",
			Help: "Sessions ended by a recovered panic.",
		}),
	}
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_read_retries_total",
		Help: "Reads run again on another server because their replica failed before answering.",
	})
	m.released = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_session_releases_total",
		Help: "Times a session handed its backend connections back to the pool without a reset: idle, other sessions waiting, or ending (multiplexing).",
	})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_replica_refusals_total",
		Help: "Statements classified as reads that a replica's read-only session refused as writes; each ran on the primary instead (a classifier mistake the servers caught).",
	})
	m.writable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchyard_replica_writable",
		Help: "1 when a replica is writable by the user (read_only off, or the user's privileges bypass it), checked when Switchyard opens read connections; Switchyard's connections there stay read-only either way.",
	}, []string{"backend", "user"})
	m.digestsEvicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchyard_digests_evicted_total",
		Help: "Statement digests forgotten to make room for new ones (digests.max).",
	})
	m.bytesIn = m.bytes.WithLabelValues("in")
	m.bytesOut = m.bytes.WithLabelValues("out")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.statements, m.latency, m.backendTime, m.errors, m.clients,
		m.clientsTotal, m.rejected, m.poolOpen, m.poolWaits, m.poolWaitTime, m.pins, m.routed, m.bytes, m.panics,
		m.retries, m.released, m.refused, m.writable, m.digestsEvicted} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// forBackend resolves the children of backend b; its statement counters
// are made on first use (countStatement).
func (m *metrics) forBackend(b *Backend) *backendMetrics {
	return &backendMetrics{name: b.Name, vec: m.statements, backendTime: m.backendTime.WithLabelValues(b.Name)}
}

// countStatement counts one statement. After the first statement of a
// route, command and class it neither allocates nor looks up labels.
func (bm *backendMetrics) countStatement(route, cmd int, kind router.Kind) {
	slot := &bm.statements[route][cmd][kind]
	if c := slot.Load(); c != nil {
		(*c).Inc()
		return
	}
	// Two sessions may get here at once: both get the same child from the
	// vector, so storing it twice is harmless.
	c := bm.vec.WithLabelValues(routeNames[route], bm.name, cmdNames[cmd], kind.String())
	slot.Store(&c)
	c.Inc()
}

// countReason counts a routing decision by its rule. The session keeps
// the counter of its last rule: most sessions repeat theirs.
func (s *session) countReason(reason string) {
	if s.reasonCount == nil || reason != s.reason {
		s.reason, s.reasonCount = reason, s.srv.reasonCounter(reason)
	}
	s.reasonCount.Inc()
}

// reasonCounter returns the counter of routing decisions made by reason.
func (s *Server) reasonCounter(reason string) prometheus.Counter {
	c, ok := s.reasons.Load(reason)
	if !ok {
		c, _ = s.reasons.LoadOrStore(reason, s.m.routed.WithLabelValues(reason))
	}
	return c.(prometheus.Counter)
}

// countError counts an error packet with code.
func (m *metrics) countError(code uint16) {
	c, ok := m.errorChildren.Load(code)
	if !ok {
		c, _ = m.errorChildren.LoadOrStore(code, m.errors.WithLabelValues(strconv.Itoa(int(code))))
	}
	c.(prometheus.Counter).Inc()
}

// observe records one statement that ran on bc and ended at now.
func (s *session) observe(bc *backendConn, cmd int, kind router.Kind, now time.Time) {
	started, sent := s.started, s.sent
	route := 0
	if bc != s.primary {
		route = 1
	}
	bm := bc.backend.metrics
	if bm == nil {
		return
	}
	bm.countStatement(route, cmd, kind)
	bm.backendTime.Observe(now.Sub(sent).Seconds())
	d := now.Sub(started)
	s.srv.routeLatency[route].Observe(d.Seconds())
	if s.dg.text != nil && cmd != cmdPrepare {
		s.noteDigest(bc, route, d, now)
	}
	if slow := s.srv.opts().SlowStatement; slow > 0 && d >= slow {
		s.log.Warn("slow statement", "duration", d, "route", routeNames[route],
			"backend", bc.backend.Name, "command", cmdNames[cmd], "class", kind.String())
	}
}
