package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// The console (console.go, console/) is tested twice: its handler here with
// the admin fixture, and the page itself in headless chromium against a
// sandbox under load (TestConsoleBrowser).

func TestConsoleAssets(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n", nil)
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", `<script src="/console/app.js"`},
		{"/console/app.js", "text/javascript; charset=utf-8", "function poll()"},
		{"/console/style.css", "text/css; charset=utf-8", "--down:"},
	} {
		// No token: the page and its assets hold no data.
		w := f.do("GET", tc.path, "")
		body := w.Body.String()
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != tc.contentType || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d, Content-Type %q, want 200 %q with %q", tc.path, w.Code, w.Header().Get("Content-Type"), tc.contentType, tc.contains)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self' and nothing unsafe", tc.path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
		// Self-contained: nothing loaded from elsewhere (the SVG namespace
		// is a name, not a fetch).
		for _, ext := range []string{"https://", "http://", "//fonts.", "@import"} {
			if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), ext) {
				t.Errorf("GET %s: refers to %q: the console must load nothing from elsewhere", tc.path, ext)
			}
		}
		// Revalidation by ETag.
		r := w.Header().Get("ETag")
		if w2 := f.doHeader("GET", tc.path, "If-None-Match", r); r == "" || w2.Code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", tc.path, r, w2.Code)
		}
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/console/nope.js", http.StatusNotFound},
		{"GET", "/console/", http.StatusNotFound},
		{"GET", "/index.html", http.StatusNotFound},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"GET", "/api/backends", http.StatusUnauthorized}, // the data still needs the token
	} {
		if w := f.do(tc.method, tc.path, ""); w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.want)
		}
	}
}

// doHeader runs a GET without the token and with one extra header.
func (f *adminFixture) doHeader(method, path, key, value string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.Header.Set(key, value)
	w := httptest.NewRecorder()
	f.admin.ServeHTTP(w, r)
	return w
}

// chromium finds Debian's chromium for the browser tests, skipping the test
// when it is missing unless SWITCHYARD_REQUIRE_SANDBOX=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(sandboxtest.RequireEnv) == "1" {
		t.Fatalf("chromium not found on PATH: install it (scripts/deps.sh, Debian package chromium)")
	}
	t.Skipf("chromium not found on PATH (scripts/deps.sh installs it; set %s=1 to fail instead)", sandboxtest.RequireEnv)
	return ""
}

// artifactDir is where the browser tests save screenshots: a directory
// under $SWITCHYARD_ARTIFACTS when set, else a temporary one.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if root := os.Getenv("SWITCHYARD_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// consoleBackend and consoleDigest are what the page shows, read back from
// its data attributes by pageStateJS.
type consoleBackend struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Role       string `json:"role"`
	Weight     int    `json:"weight"`
	InUse      int    `json:"in_use"`
	Idle       int    `json:"idle"`
	Statements int64  `json:"statements"`
}

type consoleDigest struct {
	ID      string           `json:"id"`
	Text    string           `json:"text"`
	Count   int64            `json:"count"`
	Errors  int64            `json:"errors"`
	TotalUS int64            `json:"total_us"`
	Routes  map[string]int64 `json:"routes"`
	Reasons map[string]int64 `json:"reasons"`
}

type consolePage struct {
	Backends     []consoleBackend `json:"backends"`
	Digests      []consoleDigest  `json:"digests"`
	DigestsState string           `json:"digests_state"`
	DigestsText  string           `json:"digests_text"`
	Statements   int64            `json:"statements"`
	Errors       int64            `json:"errors"`
	Routes       map[string]int64 `json:"routes"`
	LagSamples   map[string]int   `json:"lag_samples"` // by replica, from the chart's legend
	LagLines     map[string]int   `json:"lag_lines"`   // polylines by replica
}

const pageStateJS = `(() => {
  const num = (e) => e ? Number(e.dataset.value) : 0;
  const q = (root, f) => root.querySelector('[data-field="' + f + '"]');
  const chips = (r, attr) => Object.fromEntries([...r.querySelectorAll('[data-' + attr + ']')]
    .map((c) => [c.dataset[attr], Number(c.dataset.value)]));
  const lines = {};
  for (const l of document.querySelectorAll('#lag-chart polyline')) lines[l.dataset.backend] = (lines[l.dataset.backend] || 0) + 1;
  const st = document.getElementById('digests-status');
  return {
    backends: [...document.querySelectorAll('#topology .backend')].map((b) => ({
      name: b.dataset.backend, state: q(b, 'state').textContent, role: b.dataset.role,
      weight: num(q(b, 'weight')), in_use: num(q(b, 'in_use')), idle: num(q(b, 'idle')),
      statements: num(q(b, 'statements')) })),
    digests: [...document.querySelectorAll('#digests tr[data-digest]')].map((r) => ({
      id: r.dataset.digest, text: q(r, 'text').textContent, count: num(q(r, 'count')),
      errors: num(q(r, 'errors')), total_us: num(q(r, 'total_us')),
      routes: chips(q(r, 'routes'), 'route'), reasons: chips(q(r, 'reasons'), 'reason') })),
    digests_state: st.dataset.state || '', digests_text: st.textContent,
    statements: num(document.querySelector('#summary [data-field="statements"]')),
    errors: num(document.querySelector('#summary [data-field="errors"]')),
    routes: Object.fromEntries([...document.querySelectorAll('#split [data-field="route"] + .barlabel [data-part]')]
      .map((e) => [e.dataset.part, Number(e.dataset.value)])),
    lag_samples: Object.fromEntries([...document.querySelectorAll('#lag-legend [data-backend]')]
      .map((e) => [e.dataset.backend, Number(e.dataset.samples)])),
    lag_lines: lines,
  };
})()`

// TestConsoleBrowser loads the console in headless chromium in front of a
// sandbox under load: the token is asked for and the data hidden without
// it; the topology, the split and the digest table show what the JSON API
// and /metrics say; the lag chart draws every replica; a stopped replica
// turns red within a probe interval and a poll; and there are screenshots
// at desktop and phone width.
func TestConsoleBrowser(t *testing.T) {
	chromium(t) // skip before starting servers
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 2, Users: []sandbox.User{appAccount, otherAccount}})
	const token = "console-tok-61d3"
	p := startProc(t, sb, token, opsConfig(sb, token, ""))
	dir := artifactDir(t)
	consoleLoad(t, p)

	ctx, bctx, problems := startBrowser(t, 40*time.Second)
	run := func(what string, a chromedp.Action[chromedp.Void]) { browserDo(t, bctx, what, a) }
	page := func() consolePage { return readPage(t, bctx) }

	// Without the token: the form, and no data.
	run("open the console", chromedp.Navigate(p.admin+"/"))
	run("wait for the token form", chromedp.WaitVisible(chromedp.ID("login-form")))
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range sb.Servers() {
		if strings.Contains(text, srv.Addr()) || strings.Contains(text, srv.Name) {
			t.Errorf("without the token the page shows %s (%s):\n%s", srv.Name, srv.Addr(), text)
		}
	}
	if pg := page(); len(pg.Backends) != 0 || len(pg.Digests) != 0 || pg.Statements != 0 {
		t.Errorf("without the token the page shows data: %+v", pg)
	}
	// A wrong token is refused and the form stays.
	run("enter a wrong token", chromedp.Steps(chromedp.SendKeys(chromedp.ID("token"), "not-"+token),
		chromedp.Click(chromedp.CSS("#login-form button"))))
	run("see the refusal", chromedp.Poll[chromedp.Void](`document.getElementById('login-error').textContent.includes('refused')`,
		chromedp.WithPollingTimeout(5*time.Second)))
	// The right one shows the data.
	run("enter the token", chromedp.Steps(chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS("#login-form button"))))
	run("wait for the topology", chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`document.querySelectorAll('#topology .backend').length === %d`, len(sb.Servers())),
		chromedp.WithPollingTimeout(5*time.Second)))
	if stored, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`sessionStorage.getItem('switchyard.admin.token') || ''`)); stored != token {
		t.Errorf("sessionStorage holds token %q, want %q", stored, token)
	}

	// The page agrees with the API once it has polled after the load.
	want := func() consolePage { return consoleWant(t, p, sb) }
	deadline := time.Now().Add(8 * time.Second)
	var got, exp consolePage
	for {
		exp = want()
		got = page()
		if diff := consoleDiff(got, exp); diff == "" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the console disagrees with the API after 8s (-page +api):\n%s", diff)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if exp.DigestsState == "unavailable" {
		t.Logf("GET /api/queries is not served: the page says %q", got.DigestsText)
	} else {
		t.Logf("the page shows %d digests, as GET /api/queries does", len(got.Digests))
		// Beyond agreeing with the API: the load's 160 point reads are
		// one row, and every one of them has its routing reason.
		var reads, reasons int64
		for _, d := range got.Digests {
			if strings.HasPrefix(d.Text, "SELECT name") {
				reads += d.Count
				for _, n := range d.Reasons {
					reasons += n
				}
			}
		}
		if reads != 160 || reasons != 160 {
			t.Errorf("the page shows %d point reads with %d routing reasons, want 160 and 160: %+v", reads, reasons, got.Digests)
		}
	}
	// The lag chart has history for every replica.
	run("wait for lag history", chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll('#lag-legend [data-backend]')].every((e) => Number(e.dataset.samples) >= 3)`,
		chromedp.WithPollingTimeout(5*time.Second)))
	got = page()
	for _, r := range sb.Replicas {
		if got.LagSamples[r.Name] < 3 || got.LagLines[r.Name] < 1 {
			t.Errorf("lag chart for %s: %d samples, %d lines; want at least 3 samples and a line", r.Name, got.LagSamples[r.Name], got.LagLines[r.Name])
		}
	}
	screenshot(t, bctx, filepath.Join(dir, "console-desktop.png"))

	// A stopped replica turns red: the monitor sees it within a probe
	// interval (the default; opsConfig sets none), and the page's next poll,
	// a second later at most, shows it. The quarter second on top is for the
	// page's fetch and rendering on shared CPUs.
	victim := sb.Replicas[0]
	root, err := sb.RootDB(victim)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, sb.Dialect().StopReplica); err != nil {
		t.Fatalf("%s on %s: %v", sb.Dialect().StopReplica, victim.Name, err)
	}
	stopped := time.Now()
	budget := config.Default().Monitor.Interval.Duration() + time.Second + 250*time.Millisecond
	sel := fmt.Sprintf(`#topology .backend[data-backend=%q]`, victim.Name)
	if err := chromedp.Do(bctx, chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`(() => { const b = document.querySelector('%s'); return b && b.dataset.state === 'down'; })()`, sel),
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(budget))); err != nil {
		var bs struct{ Backends []backendView }
		p.getJSON("/api/backends", &bs)
		t.Fatalf("%s not shown down within %v of STOP REPLICA: %v; /api/backends says %+v", victim.Name, budget, err, bs.Backends)
	}
	t.Logf("%s shown down %v after STOP REPLICA", victim.Name, time.Since(stopped).Round(time.Millisecond))
	colour, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(
		`getComputedStyle(document.querySelector('%s [data-field="state"]')).backgroundColor`, sel)))
	if err != nil || colour != "rgb(217, 45, 32)" {
		t.Errorf("%s's state badge is %q (%v), want red rgb(217, 45, 32)", victim.Name, colour, err)
	}
	screenshot(t, bctx, filepath.Join(dir, "console-replica-down.png"))

	// Phone width: nothing wider than the screen.
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	run("re-render at phone width", chromedp.Poll[chromedp.Void](`(() => {
		const svg = document.getElementById('lag-chart');
		return svg.viewBox.baseVal && svg.viewBox.baseVal.width <= 390; })()`, chromedp.WithPollingTimeout(3*time.Second)))
	width, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || width > 390 {
		t.Errorf("at 390px wide the page is %dpx wide (%v): it must not scroll sideways", width, err)
	}
	screenshot(t, bctx, filepath.Join(dir, "console-phone.png"))

	// Forgetting the token hides the data again.
	run("forget the token", chromedp.Click(chromedp.ID("forget")))
	run("wait for the token form", chromedp.WaitVisible(chromedp.ID("login-form")))
	if pg := page(); len(pg.Backends) != 0 || len(pg.Digests) != 0 || pg.Statements != 0 || len(pg.LagSamples) != 0 {
		t.Errorf("after forgetting the token the page shows data: %+v", pg)
	}
	if stored, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`sessionStorage.getItem('switchyard.admin.token') || ''`)); stored != "" {
		t.Errorf("after forgetting the token sessionStorage holds %q", stored)
	}

	for _, pr := range problems() {
		t.Errorf("browser: %s", pr)
	}
}

// startBrowser starts headless chromium for the test, closed when it ends,
// with a deadline of d for everything the test does in it. It returns the
// deadline's context, the browser's, and what collects the page's errors.
func startBrowser(t *testing.T, d time.Duration) (ctx, bctx context.Context, problems func() []string) {
	t.Helper()
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	var out lockedBuffer
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out))...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(bctx) // closes the browser gracefully and waits for it
		bcancel()
		acancel()
		cancel()
		if t.Failed() {
			t.Logf("chromium output:\n%s", tailLines(out.String(), 30))
		}
	})
	return ctx, bctx, watchPage(t, bctx)
}

// browserDo runs a in the browser, failing the test with what on error.
func browserDo(t *testing.T, bctx context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(bctx, a); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// readPage reads back what the console shows.
func readPage(t *testing.T, bctx context.Context) consolePage {
	t.Helper()
	v, err := chromedp.Run(bctx, chromedp.Evaluate[consolePage](pageStateJS))
	if err != nil {
		t.Fatalf("browser: read the page: %v", err)
	}
	return v
}

// consoleLoad runs reads, writes and a failing statement through p with
// go-sql-driver, from a few connections at once.
func consoleLoad(t *testing.T, p *proc) {
	t.Helper()
	db := p.db(appAccount)
	db.SetMaxOpenConns(4)
	ctx := t.Context()
	for _, s := range []string{
		"CREATE DATABASE IF NOT EXISTS shop",
		"CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for i := 1; i <= 20; i++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO shop.items (id, name, qty) VALUES (?, ?, ?)", i, fmt.Sprintf("item-%d", i), i); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 40 {
				q := fmt.Sprintf("SELECT name, qty FROM shop.items WHERE id = %d", 1+(w*40+i)%20)
				var name string
				var qty int
				if err := db.QueryRowContext(ctx, q).Scan(&name, &qty); err != nil && err != sql.ErrNoRows {
					errs <- fmt.Errorf("%s: %w", q, err)
					return
				}
				if i%10 == 0 {
					if _, err := db.ExecContext(ctx, fmt.Sprintf("UPDATE shop.items SET qty = qty + 1 WHERE id = %d", 1+i%20)); err != nil {
						errs <- fmt.Errorf("update: %w", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SELECT * FROM shop.missing"); mysqlErrorCode(err) != 1146 {
		t.Fatalf("SELECT from a missing table: %v, want error 1146", err)
	}
}

// consoleWant is what the page should show, from the JSON API and /metrics.
func consoleWant(t *testing.T, p *proc, sb *sandbox.Sandbox) consolePage {
	t.Helper()
	var bs struct{ Backends []backendView }
	p.getJSON("/api/backends", &bs)
	m := p.metrics()
	var w consolePage
	// The page puts the primary first, the replicas after in the API's order.
	for _, primaryFirst := range []bool{true, false} {
		for _, b := range bs.Backends {
			if (b.Role == "primary") != primaryFirst {
				continue
			}
			w.Backends = append(w.Backends, consoleBackend{Name: b.Name, State: b.State, Role: string(b.Role), Weight: b.Weight,
				InUse: b.InUse, Idle: b.Idle, Statements: int64(m.val("switchyard_statements_total", "backend", b.Name))})
		}
	}
	if len(w.Backends) != len(sb.Servers()) {
		t.Fatalf("GET /api/backends lists %d backends, want %d", len(w.Backends), len(sb.Servers()))
	}
	w.Statements = int64(m.val("switchyard_statements_total"))
	w.Errors = int64(m.val("switchyard_errors_total"))
	w.Routes = map[string]int64{
		"primary": int64(m.val("switchyard_statements_total", "route", "primary")),
		"replica": int64(m.val("switchyard_statements_total", "route", "replica")),
	}
	code, body := p.request("GET", "/api/queries?sort=total&limit=50")
	switch code {
	case http.StatusNotFound:
		w.DigestsState = "unavailable"
	case http.StatusOK:
		var d struct{ Digests []consoleDigest }
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatalf("GET /api/queries: %v in %s", err, body)
		}
		w.DigestsState, w.Digests = "ok", d.Digests
	default:
		t.Fatalf("GET /api/queries: %d %s", code, body)
	}
	return w
}

// consoleDiff compares what the page shows with what it should, on the
// fields that do not change between two polls once the load is over.
func consoleDiff(got, want consolePage) string {
	if want.Statements == 0 || want.Errors == 0 {
		return "the load left no statements or errors in /metrics"
	}
	g, w := got, want
	g.DigestsText, w.DigestsText = "", ""
	g.LagSamples, w.LagSamples, g.LagLines, w.LagLines = nil, nil, nil, nil
	for i := range g.Digests {
		normalizeEmpty(&g.Digests[i])
	}
	for i := range w.Digests {
		normalizeEmpty(&w.Digests[i])
	}
	if got.DigestsState == "unavailable" && !strings.Contains(got.DigestsText, "digests unavailable") {
		return fmt.Sprintf("digest status %q, want it to say digests unavailable", got.DigestsText)
	}
	return cmp.Diff(g, w, cmpopts.EquateEmpty())
}

// normalizeEmpty drops zero counts: the page shows no chip for them.
func normalizeEmpty(d *consoleDigest) {
	for _, m := range []map[string]int64{d.Routes, d.Reasons} {
		for k, v := range m {
			if v == 0 {
				delete(m, k)
			}
		}
	}
	if len(d.Routes) == 0 {
		d.Routes = nil
	}
	if len(d.Reasons) == 0 {
		d.Reasons = nil
	}
}

// watchPage collects the page's uncaught exceptions and console errors
// (a Content-Security-Policy violation is one). Failed requests are
// expected (401 before the token, 404 for a missing /api/queries or
// favicon) and not collected.
func watchPage(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			out = append(out, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
				out = append(out, fmt.Sprintf("console %s error: %s", ev.Entry.Source, ev.Entry.Text))
			}
		}
	})
	if err != nil {
		t.Fatalf("browser: start: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), out...)
	}
}

// screenshot saves a full-page PNG of the tab.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
	}
}
