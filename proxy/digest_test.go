package proxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/router"
)

// digestServer returns a Server, made without New, with digests on.
func digestServer(t testing.TB, limit int) *Server {
	m, _ := registerMetrics(nil)
	srv := &Server{m: m, digests: newDigestStore(m.digestsEvicted)}
	srv.cur.Store(&Options{Digests: limit})
	srv.digests.setMax(limit)
	return srv
}

func recordText(srv *Server, sql, user, schema string, r digestRun) {
	var buf []byte
	dt := srv.digests.digest(sql, 0, &buf)
	r.user, r.schema = user, schema
	if r.at.IsZero() {
		r.at = time.Now()
	}
	srv.digests.record(dt, &r)
}

func TestDigestStoreCounts(t *testing.T) {
	srv := digestServer(t, 10)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 20 {
		r := digestRun{route: 1, backend: "replica1", reason: "read", took: time.Duration(100+i) * time.Microsecond,
			rowsSent: 1, at: base.Add(time.Duration(i) * time.Second)}
		if i%2 == 1 {
			r.backend = "replica2"
		}
		recordText(srv, fmt.Sprintf("SELECT c FROM t WHERE id = %d", i), "app", "shop", r)
	}
	recordText(srv, "UPDATE t SET c = 'secret' WHERE id = 1", "app", "shop",
		digestRun{route: 0, backend: "primary", reason: "write", took: 2 * time.Millisecond, rowsAffected: 1, at: base})
	recordText(srv, "UPDATE t SET c = 'other' WHERE id = 2", "app", "shop",
		digestRun{route: 0, backend: "primary", reason: "write", failed: true, took: time.Millisecond, at: base.Add(time.Minute)})
	recordText(srv, "SELECT c FROM t WHERE id = 1", "report", "shop", digestRun{route: 0, backend: "primary", reason: "in transaction"})

	rep, err := srv.Digests("count", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tracked != 3 || rep.Limit != 10 || rep.Evicted != 0 || len(rep.Digests) != 3 {
		t.Fatalf("Digests = %+v, want 3 tracked of 10", rep)
	}
	sel := rep.Digests[0]
	want := DigestStats{ID: sel.ID, Text: "SELECT c FROM t WHERE id = ?", User: "app", Schema: "shop", Count: 20,
		TotalUS: 20*100 + 190, MinUS: 100, MaxUS: 119, P95US: 119, RowsSent: 20,
		FirstSeen: base, LastSeen: base.Add(19 * time.Second),
		Routes:   map[string]uint64{"primary": 0, "replica": 20},
		Backends: map[string]uint64{"replica1": 10, "replica2": 10}, Reasons: map[string]uint64{"read": 20}}
	if got, _ := json.Marshal(sel); string(got) != string(mustJSON(t, want)) {
		t.Errorf("select digest = %s\nwant %s", got, mustJSON(t, want))
	}
	if len(sel.ID) != 16 {
		t.Errorf("id %q: want 16 hex digits", sel.ID)
	}
	upd := rep.Digests[1]
	if upd.Text != "UPDATE t SET c = ? WHERE id = ?" || upd.Count != 2 || upd.Errors != 1 || upd.RowsAffected != 1 ||
		upd.Reasons["write"] != 2 || upd.Routes["primary"] != 2 || upd.MaxUS != 2000 || upd.MinUS != 1000 {
		t.Errorf("update digest = %+v", upd)
	}
	if rep.Digests[2].User != "report" || rep.Digests[2].ID != sel.ID {
		t.Errorf("digests are not kept per user: %+v", rep.Digests[2])
	}
	raw, _ := json.Marshal(rep)
	if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), "other") {
		t.Errorf("a literal reached the report: %s", raw)
	}

	if rep, _ := srv.Digests("errors", 1); len(rep.Digests) != 1 || rep.Digests[0].Errors != 1 {
		t.Errorf("Digests(errors, 1) = %+v", rep.Digests)
	}
	if rep, _ := srv.Digests("last_seen", 0); rep.Digests[0].User != "report" || rep.Digests[1].Text != upd.Text {
		t.Errorf("Digests(last_seen) = %+v", rep.Digests)
	}
	if rep, _ := srv.Digests("", 0); rep.Digests[0].Text != upd.Text || rep.Digests[1].Text != sel.Text {
		t.Errorf("Digests(total) = %+v", rep.Digests)
	}
	if _, err := srv.Digests("text", 0); err == nil {
		t.Errorf("Digests(text): no error")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDigestStoreEvictsLeastRecentlySeen(t *testing.T) {
	srv := digestServer(t, 3)
	for _, tbl := range []string{"a", "b", "c", "a", "d", "e"} {
		recordText(srv, "SELECT * FROM "+tbl+" WHERE id = 1", "app", "", digestRun{backend: "primary"})
	}
	rep, _ := srv.Digests("last_seen", 0)
	var texts []string
	for _, d := range rep.Digests {
		texts = append(texts, d.Text)
	}
	// b and c were seen least recently when d and e came.
	if got := strings.Join(texts, "|"); strings.Contains(got, "FROM b") || strings.Contains(got, "FROM c") || len(texts) != 3 {
		t.Errorf("after eviction: %q, want a, d, e", texts)
	}
	if rep.Evicted != 2 || counterValue(srv.m.digestsEvicted) != 2 {
		t.Errorf("evicted = %d (metric %v), want 2", rep.Evicted, counterValue(srv.m.digestsEvicted))
	}
	srv.digests.setMax(1)
	if rep, _ := srv.Digests("", 0); rep.Tracked != 1 || rep.Limit != 1 {
		t.Errorf("after setMax(1): %d tracked, limit %d", rep.Tracked, rep.Limit)
	}
	srv.ResetDigests()
	if rep, _ := srv.Digests("", 0); rep.Tracked != 0 || rep.Evicted != 0 || len(rep.Digests) != 0 {
		t.Errorf("after reset: %+v", rep)
	}
	srv.digests.setMax(0)
	var buf []byte
	if dt := srv.digests.digest("SELECT 1", 0, &buf); dt != nil {
		t.Errorf("digests off: digest = %+v, want nil", dt)
	}
}

func TestDigestStoreConcurrent(t *testing.T) {
	srv := digestServer(t, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range 500 {
				dt := srv.digests.digest(fmt.Sprintf("SELECT * FROM t%d WHERE id = %d", i%80, g), router.Mode(0), &buf)
				srv.digests.record(dt, &digestRun{user: "app", backend: "primary", reason: "read", at: time.Now()})
				if i%100 == 0 {
					if _, err := srv.Digests("count", 10); err != nil {
						t.Error(err)
					}
				}
				if g == 0 && i == 250 {
					srv.ResetDigests()
				}
			}
		}()
	}
	wg.Wait()
	rep, _ := srv.Digests("count", 0)
	if rep.Tracked > 50 || len(srv.digests.entries) != rep.Tracked {
		t.Errorf("tracked %d (%d entries), want at most 50", rep.Tracked, len(srv.digests.entries))
	}
	n := 0
	for e := srv.digests.root.next; e != &srv.digests.root; e = e.next {
		n++
	}
	if n != rep.Tracked {
		t.Errorf("recency list holds %d, map %d", n, rep.Tracked)
	}
}

// digestSession is a bench session whose server keeps digests.
func digestSession(b testing.TB, backendData []byte) (*session, *backendConn) {
	s, bc := benchSession(&testing.B{}, backendData)
	s.srv.digests = newDigestStore(prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))
	s.srv.digests.setMax(1000)
	s.user.Name, s.db = "app", "shop"
	return s, bc
}

// digestStatement is what the proxy does for digests per statement: look up
// the text's digest, note the reason, count it when it ends.
func digestStatement(s *session, bc *backendConn, sql string, now time.Time) {
	s.dg.begin(s.srv.digests.digest(sql, 0, &s.dg.buf))
	s.dg.reason = "read"
	s.dg.rowsSent++
	s.noteDigest(bc, 1, 150*time.Microsecond, now)
}

// TestDigestHotPathAllocatesNothing checks that a statement whose text was
// seen before is counted without allocating.
func TestDigestHotPathAllocatesNothing(t *testing.T) {
	s, bc := digestSession(t, resultSet(1, 120))
	sql := "SELECT c FROM sbtest1 WHERE id=?"
	now := time.Now()
	digestStatement(s, bc, sql, now)
	// A point select relayed and counted, as the proxy does it.
	if n := testing.AllocsPerRun(100, func() {
		s.dg.begin(s.srv.digests.digest(sql, 0, &s.dg.buf))
		if err := s.relayResults(bc, mysql.COM_QUERY); err != nil {
			t.Fatal(err)
		}
		s.noteDigest(bc, 1, time.Millisecond, now)
	}); n != 0 {
		t.Errorf("relaying and counting a point select allocates %.1f times", n)
	}
	// One row from digestStatement, one per run of AllocsPerRun (a warm-up and 100).
	if rep, _ := s.srv.Digests("", 0); rep.Digests[0].RowsSent != 102 {
		t.Errorf("rows sent %d, want 102", rep.Digests[0].RowsSent)
	}
	if n := testing.AllocsPerRun(100, func() { digestStatement(s, bc, sql, now) }); n != 0 {
		t.Errorf("counting a known statement's digest allocates %.1f times", n)
	}
	// Literals written inline: a new text each time, of a known digest.
	texts := make([]string, 200)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT c FROM sbtest1 WHERE id=%d", i)
	}
	digestStatement(s, bc, texts[0], now)
	i := 0
	if n := testing.AllocsPerRun(100, func() { digestStatement(s, bc, texts[i%len(texts)], now); i++ }); n != 0 {
		t.Errorf("counting a new text of a known digest allocates %.1f times", n)
	}
	if len(s.srv.digests.texts) != 1 {
		t.Errorf("%d texts cached, want 1: texts with literals are not", len(s.srv.digests.texts))
	}
}

// BenchmarkDigestStatement measures digests' cost per statement once the
// text is known (the case of prepared statements and repeated texts).
func BenchmarkDigestStatement(b *testing.B) {
	s, bc := digestSession(b, nil)
	sql := "SELECT c FROM sbtest1 WHERE id=?"
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		digestStatement(s, bc, sql, now)
	}
}

// BenchmarkDigestNewText measures a statement whose text is not cached
// (literals written inline): normalized again at each statement.
func BenchmarkDigestNewText(b *testing.B) {
	s, bc := digestSession(b, nil)
	sqls := make([]string, 8192)
	for i := range sqls {
		sqls[i] = fmt.Sprintf("SELECT c FROM sbtest1 WHERE id=%d", i)
	}
	now := time.Now()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		digestStatement(s, bc, sqls[i%len(sqls)], now)
		i++
	}
}

// TestDigestCausalFallback: a causal read that ends on the primary is told
// apart from one a replica served.
func TestDigestCausalFallback(t *testing.T) {
	for _, tc := range []struct {
		route  int
		reason string
		want   string
	}{{1, "causal", "causal"}, {0, "causal", "causal_fallback"}, {0, "global", "global_fallback"}, {0, "write", "write"}, {1, "read", "read"}} {
		s, bc := digestSession(t, resultSet(1, 10))
		s.dg.begin(s.srv.digests.digest("SELECT a FROM t WHERE id = 1", 0, &s.dg.buf))
		s.dg.reason = tc.reason
		s.noteDigest(bc, tc.route, time.Millisecond, time.Now())
		rep, err := s.srv.Digests("total", 0)
		if err != nil || len(rep.Digests) != 1 || rep.Digests[0].Reasons[tc.want] != 1 {
			t.Errorf("route %d reason %s: %+v, %v; want reason %s counted", tc.route, tc.reason, rep.Digests, err, tc.want)
		}
	}
}
