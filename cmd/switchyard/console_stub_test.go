package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// stubDigests is a GET /api/queries answer in the shape the digest API
// serves. The second text would be markup if the page put it in as HTML.
const stubDigests = `{"digests":[
 {"id":"0f1e2d3c4b5a6978","text":"SELECT * FROM t WHERE id = ?","user":"app","schema":"shop","count":1200,"errors":0,
  "total_us":1234567,"min_us":50,"max_us":4000,"p95_us":350,"rows_sent":1200,"rows_affected":0,
  "first_seen":"2026-12-06T10:00:00Z","last_seen":"2026-12-06T10:05:00Z",
  "routes":{"primary":200,"replica":1000},"backends":{"replica1":500,"replica2":500,"primary":200},
  "reasons":{"read":1000,"causal fallback":150,"in transaction":50}},
 {"id":"a1b2c3d4e5f60718","text":"UPDATE <b>t</b> SET n = n + ? WHERE id IN (...)","user":"app","schema":"shop","count":30,"errors":2,
  "total_us":90000,"min_us":900,"max_us":9000,"p95_us":8000,"rows_sent":0,"rows_affected":28,
  "first_seen":"2026-12-06T10:00:00Z","last_seen":"2026-12-06T10:05:00Z",
  "routes":{"primary":30},"backends":{"primary":30},"reasons":{"write":30}}
],"limit":1000,"tracked":2,"evicted":0}`

// stubAdmin serves the console and canned admin API answers, without a
// token: the page's rendering of digests and of a lagging replica does not
// depend on a digest API being in the binary.
func stubAdmin(t *testing.T, queries *atomic.Value) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	registerConsole(mux)
	reply := func(path, body string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			if path == "/api/queries" {
				queries.Store(r.URL.RawQuery)
			}
			ct := "application/json"
			if path == "/metrics" {
				ct = "text/plain; version=0.0.4"
			}
			w.Header().Set("Content-Type", ct)
			fmt.Fprint(w, body)
		})
	}
	reply("/api/status", `{"version":"stub","started_at":"2026-12-06T10:00:00Z","uptime_seconds":3725,"clients":3,"draining":false}`)
	reply("/api/config", `{"config":{"monitor":{"interval":"250ms","max_replication_lag":"1s"}}}`)
	reply("/api/backends", `{"backends":[
 {"name":"primary","address":"10.0.0.1:3306","role":"primary","weight":1,"usable":true,"in_use":2,"idle":5,"state":"usable","lag_seconds":null},
 {"name":"replica1","address":"10.0.0.2:3306","role":"replica","weight":2,"usable":false,"in_use":0,"idle":3,"state":"lagging","lag_seconds":2.5,
  "health":{"state":"lagging","lag_seconds":2.5,"lag_source":"heartbeat","error":"lag 2.5s over max_replication_lag 1s"}},
 {"name":"replica2","address":"10.0.0.3:3306","role":"replica","weight":1,"usable":true,"in_use":1,"idle":4,"state":"usable","lag_seconds":0.2}]}`)
	reply("/metrics", strings.Join([]string{
		`# HELP switchyard_statements_total Statements run.`,
		`# TYPE switchyard_statements_total counter`,
		`switchyard_statements_total{backend="primary",class="write",command="query",route="primary"} 230`,
		`switchyard_statements_total{backend="replica1",class="read",command="query",route="replica"} 500`,
		`switchyard_statements_total{backend="replica2",class="read",command="execute",route="replica"} 500`,
		`switchyard_errors_total{code="1146"} 2`,
		`switchyard_routing_decisions_total{reason="read"} 1000`,
		`switchyard_routing_decisions_total{reason="write \"quoted\""} 30`,
		`switchyard_client_connections 3`,
		`switchyard_client_connections_total 17`,
	}, "\n")+"\n")
	reply("/api/queries", stubDigests)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestConsoleDigests checks the digest table, a lagging replica and the
// phone layout in headless chromium against canned answers.
func TestConsoleDigests(t *testing.T) {
	var queries atomic.Value
	srv := stubAdmin(t, &queries)
	_, bctx, problems := startBrowser(t, 20*time.Second)
	dir := artifactDir(t)

	browserDo(t, bctx, "open the console", chromedp.Navigate(srv.URL+"/"))
	browserDo(t, bctx, "wait for the digests", chromedp.Poll[chromedp.Void](
		`document.querySelectorAll('#digests tr[data-digest]').length === 2`, chromedp.WithPollingTimeout(5*time.Second)))
	if q, _ := queries.Load().(string); q != "sort=total&limit=50" {
		t.Errorf("the page asked for /api/queries?%s, want sort=total&limit=50", q)
	}
	got := readPage(t, bctx)
	want := []consoleDigest{
		{ID: "0f1e2d3c4b5a6978", Text: "SELECT * FROM t WHERE id = ?", Count: 1200, TotalUS: 1234567,
			Routes: map[string]int64{"primary": 200, "replica": 1000}, Reasons: map[string]int64{"read": 1000, "causal fallback": 150, "in transaction": 50}},
		{ID: "a1b2c3d4e5f60718", Text: "UPDATE <b>t</b> SET n = n + ? WHERE id IN (...)", Count: 30, Errors: 2, TotalUS: 90000,
			Routes: map[string]int64{"primary": 30}, Reasons: map[string]int64{"write": 30}},
	}
	if diff := cmp.Diff(got.Digests, want, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("digest rows (-page +api):\n%s", diff)
	}
	checks := map[string]string{
		"digest text is text, not markup": `document.querySelector('#digests b') === null`,
		"routing reasons shown":           `document.querySelector('#digests [data-reason="causal fallback"]').textContent === 'causal fallback 150'`,
		"counts formatted":                `document.querySelector('#digests tr[data-digest="0f1e2d3c4b5a6978"] [data-field="count"]').textContent === '1,200'`,
		"lagging replica amber":           `getComputedStyle(document.querySelector('[data-backend="replica1"] [data-field="state"]')).backgroundColor === 'rgb(217, 138, 0)'`,
		"lag shown":                       `document.querySelector('[data-backend="replica1"] [data-field="lag"]').textContent === '2.50 s'`,
		"health error shown":              `document.querySelector('[data-backend="replica1"] [data-field="error"]').textContent.includes('over max_replication_lag')`,
		"escaped label parsed":            `[...document.querySelectorAll('#reasons tr')].some((r) => r.dataset.reason === 'write "quoted"')`,
		"split from /metrics":             `document.querySelector('#summary [data-field="statements"]').dataset.value === '1230'`,
		"no token form without a token":   `document.getElementById('login').hidden`,
	}
	for what, js := range checks {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
		if err != nil || !ok {
			t.Errorf("%s: %s is %v (%v)", what, js, ok, err)
		}
	}
	screenshot(t, bctx, filepath.Join(dir, "console-digests-desktop.png"))

	browserDo(t, bctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	browserDo(t, bctx, "re-render at phone width", chromedp.Poll[chromedp.Void](
		`document.getElementById('lag-chart').viewBox.baseVal.width <= 390`, chromedp.WithPollingTimeout(3*time.Second)))
	for what, js := range map[string]string{
		"no sideways scrolling":  `document.documentElement.scrollWidth <= 390`,
		"digests as cards":       `getComputedStyle(document.querySelector('#digests thead')).display === 'none'`,
		"digest card fits":       `document.querySelector('#digests tr[data-digest]').getBoundingClientRect().right <= 390`,
		"per-backend table fits": `document.getElementById('per-backend').getBoundingClientRect().right <= 390`,
	} {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
		if err != nil || !ok {
			t.Errorf("at 390px: %s: %s is %v (%v)", what, js, ok, err)
		}
	}
	screenshot(t, bctx, filepath.Join(dir, "console-digests-phone.png"))
	for _, pr := range problems() {
		t.Errorf("browser: %s", pr)
	}

	// The Content-Security-Policy is in force, and the watcher that found
	// no problem above sees a violation: an inline script is refused.
	browserDo(t, bctx, "inject an inline script", chromedp.Evaluate[chromedp.Void](
		`document.head.append(Object.assign(document.createElement('script'), {textContent: 'window.injected = 1'}))`))
	browserDo(t, bctx, "see the violation", chromedp.Poll[chromedp.Void](`window.injected === undefined`,
		chromedp.WithPollingTimeout(time.Second)))
	deadline := time.Now().Add(2 * time.Second)
	for len(problems()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("an inline script against the CSP was reported as no problem: the watcher sees nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pr := problems(); !strings.Contains(strings.Join(pr, "\n"), "Content Security Policy") {
		t.Errorf("after an inline script the page reports %q, want a Content Security Policy violation", pr)
	}
}
