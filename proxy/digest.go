package proxy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/router"
)

// Statement digests: every COM_QUERY and every execute of a prepared
// statement is counted under the digest of its text (router.Digest: literals
// out), the user and the schema, with where it ran and why. The store keeps
// at most Options.Digests of them and forgets the least recently seen.
//
// The store is shared by all sessions and guarded by its mutexes. On the
// hot path a statement whose text was seen before costs two map lookups
// under locks and no allocation: the digest of each text without literals
// is cached (texts), and a prepared statement keeps its own. A text with
// literals written inline is rarely sent twice: it is normalized each time,
// and finds its digest text by id (byID) without allocating.

// digestText is the digest of a statement text; immutable.
type digestText struct {
	id   uint64
	text string
}

type textKey struct {
	sql  string
	mode router.Mode
}

// Texts longer than maxCachedText are normalized at each statement rather
// than cached; texts and byID are emptied when they hold maxCachedTexts.
const (
	maxCachedText  = 1024
	maxCachedTexts = 4096
)

type digestKey struct {
	id           uint64
	user, schema string
}

// digestLatencyBounds are the upper bounds, in microseconds, of the
// latency buckets a digest's p95 is read from; one more bucket holds the rest.
var digestLatencyBounds = [...]uint64{50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000}

type digestEntry struct {
	key        digestKey
	text       string
	prev, next *digestEntry // the recency list, most recent first

	count, errors          uint64
	totalUS, minUS, maxUS  uint64
	hist                   [len(digestLatencyBounds) + 1]uint64
	rowsSent, rowsAffected uint64
	first, last            time.Time
	routes                 [2]uint64
	backends               counts // by backend name
	reasons                counts // by routing reason
}

// counts are counts by name, few enough for a linear search to beat a map:
// the names are the same strings each time, compared by pointer first.
type counts []namedCount

type namedCount struct {
	name string
	n    uint64
}

// inc counts one for name; it allocates only for a new name.
func (c *counts) inc(name string) {
	for i := range *c {
		if (*c)[i].name == name {
			(*c)[i].n++
			return
		}
	}
	*c = append(*c, namedCount{name, 1})
}

// m returns the counts as a map, for JSON.
func (c counts) m() map[string]uint64 {
	out := make(map[string]uint64, len(c))
	for _, nc := range c {
		out[nc.name] = nc.n
	}
	return out
}

// digestStore holds the digests.
type digestStore struct {
	max     atomic.Int64 // digests kept at most; 0: off
	evicted prometheus.Counter

	textMu sync.RWMutex
	texts  map[textKey]*digestText // by statement text
	byID   map[uint64]*digestText  // by digest id

	mu       sync.Mutex
	entries  map[digestKey]*digestEntry
	root     digestEntry // root.next is the most recently seen
	nEvicted uint64      // since the last reset
}

func newDigestStore(evicted prometheus.Counter) *digestStore {
	st := &digestStore{evicted: evicted, texts: make(map[textKey]*digestText), byID: make(map[uint64]*digestText),
		entries: make(map[digestKey]*digestEntry)}
	st.root.next, st.root.prev = &st.root, &st.root
	return st
}

// setMax bounds the digests kept; 0 (or less) turns them off and forgets them.
func (st *digestStore) setMax(n int) {
	n = max(n, 0)
	st.max.Store(int64(n))
	if n == 0 {
		st.textMu.Lock()
		clear(st.texts)
		clear(st.byID)
		st.textMu.Unlock()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for len(st.entries) > n {
		st.evictOldest()
	}
}

// digest returns the digest of sql tokenized in mode, nil when digests are
// off (or st is nil: a Server made without New, in tests). buf is the
// caller's scratch space.
func (st *digestStore) digest(sql string, mode router.Mode, buf *[]byte) *digestText {
	if st == nil || st.max.Load() == 0 {
		return nil
	}
	k := textKey{sql: sql, mode: mode}
	st.textMu.RLock()
	dt := st.texts[k]
	st.textMu.RUnlock()
	if dt != nil {
		return dt
	}
	*buf = router.AppendDigest((*buf)[:0], sql, mode)
	id := router.DigestID(*buf)
	st.textMu.RLock()
	dt = st.byID[id]
	st.textMu.RUnlock()
	// More placeholders in the digest than in the text: it had literals.
	literals := bytes.Count(*buf, []byte{'?'}) > strings.Count(sql, "?")
	cacheText := !literals && len(sql) <= maxCachedText
	if dt != nil && !cacheText {
		return dt // known, and nothing to add: no write lock
	}
	if dt == nil {
		dt = &digestText{id: id, text: string(*buf)}
	}
	st.textMu.Lock()
	defer st.textMu.Unlock()
	if len(st.byID) >= maxCachedTexts {
		clear(st.byID)
	}
	st.byID[id] = dt
	if cacheText {
		if len(st.texts) >= maxCachedTexts {
			clear(st.texts)
		}
		k.sql = strings.Clone(sql) // sql may alias a packet buffer
		st.texts[k] = dt
	}
	return dt
}

// digestRun is what one statement did, for record.
type digestRun struct {
	user, schema string
	route        int // 0 primary, 1 replica
	backend      string
	reason       string
	failed       bool
	took         time.Duration
	rowsSent     uint64
	rowsAffected uint64
	at           time.Time
}

// record counts one statement under dt. After the first statement of a
// digest, user, schema, backend and reason it does not allocate.
func (st *digestStore) record(dt *digestText, r *digestRun) {
	limit := int(st.max.Load())
	if limit == 0 {
		return
	}
	us := uint64(max(r.took.Microseconds(), 0))
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.entries[digestKey{id: dt.id, user: r.user, schema: r.schema}]
	if e == nil {
		for len(st.entries) >= limit {
			st.evictOldest()
		}
		e = &digestEntry{key: digestKey{id: dt.id, user: r.user, schema: r.schema}, text: dt.text, first: r.at, minUS: us,
			backends: make(counts, 0, 2), reasons: make(counts, 0, 2)}
		st.entries[e.key] = e
	} else {
		e.prev.next, e.next.prev = e.next, e.prev // unlink
	}
	e.next, e.prev = st.root.next, &st.root
	st.root.next.prev = e
	st.root.next = e

	e.count++
	if r.failed {
		e.errors++
	}
	e.totalUS += us
	e.minUS = min(e.minUS, us)
	e.maxUS = max(e.maxUS, us)
	b := 0
	for b < len(digestLatencyBounds) && us > digestLatencyBounds[b] {
		b++
	}
	e.hist[b]++
	e.rowsSent += r.rowsSent
	e.rowsAffected += r.rowsAffected
	e.last = r.at
	e.routes[r.route]++
	e.backends.inc(r.backend)
	if r.reason != "" {
		e.reasons.inc(r.reason)
	}
}

// evictOldest forgets the least recently seen digest; st.mu is held.
func (st *digestStore) evictOldest() {
	e := st.root.prev
	if e == &st.root {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	delete(st.entries, e.key)
	st.nEvicted++
	st.evicted.Inc()
}

// reset forgets every digest.
func (st *digestStore) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	clear(st.entries)
	st.root.next, st.root.prev = &st.root, &st.root
	st.nEvicted = 0
}

// DigestStats are the counts of one statement digest for one user and
// schema. Latencies are in microseconds, from the command's arrival to the
// end of its response.
type DigestStats struct {
	ID           string            `json:"id"` // 16 hex digits
	Text         string            `json:"text"`
	User         string            `json:"user"`
	Schema       string            `json:"schema"`
	Count        uint64            `json:"count"`
	Errors       uint64            `json:"errors"`
	TotalUS      uint64            `json:"total_us"`
	MinUS        uint64            `json:"min_us"`
	MaxUS        uint64            `json:"max_us"`
	P95US        uint64            `json:"p95_us"` // upper bound of the bucket, at most MaxUS
	RowsSent     uint64            `json:"rows_sent"`
	RowsAffected uint64            `json:"rows_affected"`
	FirstSeen    time.Time         `json:"first_seen"`
	LastSeen     time.Time         `json:"last_seen"`
	Routes       map[string]uint64 `json:"routes"`   // primary, replica
	Backends     map[string]uint64 `json:"backends"` // by backend name
	Reasons      map[string]uint64 `json:"reasons"`  // by routing decision reason
}

// DigestReport is the answer of Server.Digests.
type DigestReport struct {
	Digests []DigestStats `json:"digests"`
	Limit   int           `json:"limit"`   // Options.Digests: digests kept at most
	Tracked int           `json:"tracked"` // digests kept now
	Evicted uint64        `json:"evicted"` // digests forgotten since the last reset
}

// DigestSorts are the orders Server.Digests knows, each descending.
var DigestSorts = []string{"total", "count", "errors", "max", "last_seen"}

// ErrUnknownSort is returned by Server.Digests for an order not in DigestSorts.
var ErrUnknownSort = errors.New("unknown sort order")

// Digests returns up to limit digests (all when limit <= 0), in the order
// sortBy ("" means total).
func (s *Server) Digests(sortBy string, limit int) (DigestReport, error) {
	var less func(a, b *digestEntry) int
	switch sortBy {
	case "", "total":
		less = func(a, b *digestEntry) int { return cmp.Compare(b.totalUS, a.totalUS) }
	case "count":
		less = func(a, b *digestEntry) int { return cmp.Compare(b.count, a.count) }
	case "errors":
		less = func(a, b *digestEntry) int { return cmp.Compare(b.errors, a.errors) }
	case "max":
		less = func(a, b *digestEntry) int { return cmp.Compare(b.maxUS, a.maxUS) }
	case "last_seen":
		less = func(a, b *digestEntry) int { return b.last.Compare(a.last) }
	default:
		return DigestReport{}, fmt.Errorf("%w %q (want one of %s)", ErrUnknownSort, sortBy, strings.Join(DigestSorts, ", "))
	}
	st := s.digests
	st.mu.Lock()
	defer st.mu.Unlock()
	all := make([]*digestEntry, 0, len(st.entries))
	for _, e := range st.entries {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *digestEntry) int {
		if c := less(a, b); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.key.id, b.key.id), strings.Compare(a.key.user, b.key.user),
			strings.Compare(a.key.schema, b.key.schema))
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	r := DigestReport{Digests: make([]DigestStats, 0, len(all)), Limit: int(st.max.Load()), Tracked: len(st.entries), Evicted: st.nEvicted}
	for _, e := range all {
		r.Digests = append(r.Digests, e.stats())
	}
	return r, nil
}

// ResetDigests forgets every digest.
func (s *Server) ResetDigests() { s.digests.reset() }

// stats copies e out; the store's mutex is held.
func (e *digestEntry) stats() DigestStats {
	return DigestStats{
		ID: fmt.Sprintf("%016x", e.key.id), Text: e.text, User: e.key.user, Schema: e.key.schema,
		Count: e.count, Errors: e.errors, TotalUS: e.totalUS, MinUS: e.minUS, MaxUS: e.maxUS, P95US: e.p95(),
		RowsSent: e.rowsSent, RowsAffected: e.rowsAffected,
		FirstSeen: e.first.UTC().Truncate(time.Millisecond), LastSeen: e.last.UTC().Truncate(time.Millisecond),
		Routes:   map[string]uint64{routeNames[0]: e.routes[0], routeNames[1]: e.routes[1]},
		Backends: e.backends.m(), Reasons: e.reasons.m(),
	}
}

// p95 returns the upper bound of the latency bucket that holds the 95th
// percentile, within [minUS, maxUS].
func (e *digestEntry) p95() uint64 {
	rank := (e.count*95 + 99) / 100
	var seen uint64
	for i, n := range e.hist {
		seen += n
		if seen >= rank && n > 0 {
			if i == len(digestLatencyBounds) {
				return e.maxUS
			}
			return min(max(digestLatencyBounds[i], e.minUS), e.maxUS)
		}
	}
	return e.maxUS
}

// digestState is a session's part in digests; the session goroutine owns it.
type digestState struct {
	text   *digestText // digest of the running statement; nil: none, or digests are off
	reason string      // why the running statement went where it did
	// rowsSent and rowsAffected count the running statement's rows.
	rowsSent, rowsAffected uint64
	buf                    []byte // scratch for router.AppendDigest
	run                    digestRun
}

// begin starts a statement of digest dt (nil: none).
func (ds *digestState) begin(dt *digestText) {
	ds.text, ds.reason, ds.rowsSent, ds.rowsAffected = dt, "", 0, 0
}

// noteDigest records the statement that just ran on bc, when it has a
// digest.
func (s *session) noteDigest(bc *backendConn, route int, took time.Duration, now time.Time) {
	ds := &s.dg
	dt := ds.text
	ds.text = nil
	if dt == nil {
		return
	}
	reason := ds.reason
	if route == 0 {
		// A read the router sent to a replica that ran on the primary: no
		// replica had applied what it must see within the wait (or, with
		// routing.read_from_primary, the rotation chose the primary).
		switch reason {
		case "causal":
			reason = "causal_fallback"
		case "global":
			reason = "global_fallback"
		}
	}
	ds.run = digestRun{user: s.user.Name, schema: s.db, route: route, backend: bc.backend.Name,
		reason: reason, failed: s.failed, took: took, rowsSent: ds.rowsSent, rowsAffected: ds.rowsAffected, at: now}
	s.srv.digests.record(dt, &ds.run)
}
