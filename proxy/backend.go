package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/replication"
)

// Backend is one configured MySQL/MariaDB server behind Switchyard. Its
// connections are backendConns, pooled per user (userPool).
type Backend struct {
	Name   string           // label for logs and metrics
	Addr   string           // host:port
	Role   replication.Role // replication.RoleAuto: decided by the topology (Options.Primary), else the first backend
	Weight int              // share of reads; 0 takes none
	TLS    *BackendTLS      // nil: plain TCP

	// The fields above are fixed once the Backend is in use; Server.Update
	// makes new Backends that share the state below with the old ones.
	*backendState
}

// is reports whether b and o are the same server. Server.Update makes new
// Backends for the servers it keeps, sharing their state with the old ones,
// and connections keep the Backend they were opened under: compare them
// with is, never with ==.
func (b *Backend) is(o *Backend) bool {
	return o != nil && b.backendState == o.backendState
}

// roleName names b's role in messages: "backend" when the topology decides.
func (b *Backend) roleName() string {
	if b.Role == replication.RoleAuto {
		return "backend"
	}
	return string(b.Role)
}

// backendState is what a backend keeps across reloads: its pools and health.
type backendState struct {
	failedUntil atomic.Int64 // unix nanos: out of read rotation until then
	drained     atomic.Bool  // taken out of service by an operator
	// defaultSQLMode is the server's sql_mode as a new connection sees it,
	// read on each new connection.
	defaultSQLMode atomic.Pointer[string]
	sqlModeAt      atomic.Int64 // unix nanos when defaultSQLMode was read
	// applied is the GTID position the monitor last reported applied
	// here, parsed (see appliedGTID).
	applied atomic.Pointer[gtidSet]
	// tls is the TLS of the Backend installed last. Pools keep the Backend
	// they were opened with, and the connections they open after a reload
	// must follow the reloaded TLS.
	tls atomic.Pointer[BackendTLS]
	// cut is closed by Abandon: connection attempts in progress give up.
	cut atomic.Pointer[chan struct{}]
	// down reports whether the monitor has excluded the backend (see
	// Server.excluded); set when the backend is installed.
	down func() bool

	mu    sync.Mutex
	pools map[string]*userPool // by user name

	metrics               *backendMetrics
	inUse, idle           prometheus.Gauge
	poolWaits, poolWaited prometheus.Counter
}

// attachMetrics resolves the backend's metric children.
func (b *Backend) attachMetrics(m *metrics) {
	b.metrics = m.forBackend(b)
	b.inUse = m.poolOpen.WithLabelValues(b.Name, "in_use")
	b.idle = m.poolOpen.WithLabelValues(b.Name, "idle")
	b.poolWaits = m.poolWaits.WithLabelValues(b.Name)
	b.poolWaited = m.poolWaitTime.WithLabelValues(b.Name)
}

// tlsInForce returns the TLS new connections to the backend use; nil means
// plain TCP.
func (b *backendState) tlsInForce() *BackendTLS { return b.tls.Load() }

// learnSQLMode reads the sql_mode a new connection starts with, which
// sessions use to tokenize their statements until they set their own. A
// server's default rarely changes: it is read on the first connection and
// then at most once every sqlModeRecheck, not on every dial.
func (b *backendState) learnSQLMode(bc *backendConn) error {
	now := time.Now().UnixNano()
	if at := b.sqlModeAt.Load(); at != 0 && now-at < int64(sqlModeRecheck) {
		return nil
	}
	v, err := bc.queryValue("SELECT @@SESSION.sql_mode")
	if err != nil {
		return err
	}
	if old := b.defaultSQLMode.Load(); old == nil || *old != v {
		b.defaultSQLMode.Store(&v)
	}
	b.sqlModeAt.Store(now)
	return nil
}

// sqlModeRecheck is how often learnSQLMode reads a server's default again.
const sqlModeRecheck = time.Minute

// sqlMode returns the server's default sql_mode, "" until a connection read it.
func (b *backendState) sqlMode() string {
	if v := b.defaultSQLMode.Load(); v != nil {
		return *v
	}
	return ""
}

// dialContext returns a context for connecting to the backend, derived from
// parent, that Abandon cancels; the caller calls cancel when done with it.
func (b *backendState) dialContext(parent context.Context) (context.Context, context.CancelFunc) {
	cut := b.cut.Load()
	if cut == nil {
		ch := make(chan struct{})
		if !b.cut.CompareAndSwap(nil, &ch) {
			cut = b.cut.Load()
		} else {
			cut = &ch
		}
	}
	ctx, cancel := context.WithCancel(parent)
	if b.down != nil && b.down() {
		// Excluded before cut was loaded: Abandon is done already.
		cancel()
		return ctx, cancel
	}
	go func(ch chan struct{}) {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}(*cut)
	return ctx, cancel
}

// abandonDials makes connection attempts in progress give up.
func (b *backendState) abandonDials() {
	ch := make(chan struct{})
	if old := b.cut.Swap(&ch); old != nil {
		close(*old)
	}
}

// gauge moves the backend's connection gauges.
func (b *backendState) gauge(inUse, idle float64) {
	if b.inUse == nil {
		return
	}
	if inUse != 0 {
		b.inUse.Add(inUse)
	}
	if idle != 0 {
		b.idle.Add(idle)
	}
}

func (b *backendState) countWait() {
	if b.poolWaits != nil {
		b.poolWaits.Inc()
	}
}

func (b *backendState) waited(d time.Duration) {
	if b.poolWaited != nil {
		b.poolWaited.Add(d.Seconds())
	}
}
