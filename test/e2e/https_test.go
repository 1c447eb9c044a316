package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPSThroughVIP: HTTPS to www.foobar.com at the virtual IP, with the
// certificate verified, reaches the Flask and the Django app, carries HSTS,
// and is balanced round robin over both web and both application servers.
func TestHTTPSThroughVIP(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newSiteClient(10 * time.Second)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+siteName+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET https://%s/ at %s: %v", siteName, vip, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d, want 200", resp.StatusCode)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("GET /: TLS state %+v, want TLS 1.2 or later", resp.TLS)
	}
	hsts := resp.Header.Get("Strict-Transport-Security")
	if maxAge := hstsMaxAge(hsts); maxAge < 365*24*3600 {
		t.Errorf("Strict-Transport-Security = %q, want max-age of at least a year", hsts)
	}

	for _, fw := range []struct{ path, framework string }{{"/", "flask"}, {"/django/", "django"}} {
		web, app := map[string]int{}, map[string]int{}
		for i := 0; i < 8; i++ {
			r, err := siteDo(ctx, c, http.MethodGet, fw.path, http.StatusOK)
			if err != nil {
				t.Fatal(err)
			}
			if r.Framework != fw.framework {
				t.Errorf("GET %s: framework %q, want %q", fw.path, r.Framework, fw.framework)
			}
			if r.Read == nil || r.Read.Hostname == "" {
				t.Errorf("GET %s: no database server in %+v", fw.path, r)
			}
			web[r.WebServer]++
			app[r.AppServer]++
		}
		// Round robin with health checks: four requests each, give or take
		// a health check landing in between.
		for _, name := range []string{"web1", "web2"} {
			if web[name] < 2 {
				t.Errorf("GET %s x8: web servers %v, want both web1 and web2 used (round robin)", fw.path, web)
			}
		}
		for _, name := range []string{"app1", "app2"} {
			if app[name] == 0 {
				t.Errorf("GET %s x8: application servers %v, want both app1 and app2 used", fw.path, app)
			}
		}
		t.Logf("GET %s x8: web %v, app %v", fw.path, web, app)
	}
}

// TestTLSRejectsOldVersions: TLS 1.0 and 1.1 are refused.
func TestTLSRejectsOldVersions(t *testing.T) {
	requireStack(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(vip, "443"), &tls.Config{
		RootCAs: siteRoots, ServerName: siteName, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	})
	if err == nil {
		v := conn.ConnectionState().Version
		conn.Close()
		t.Fatalf("TLS handshake with at most TLS 1.1 succeeded (version %x), want it refused", v)
	}
}

// TestHTTPRedirectsToHTTPS: plain HTTP gets a permanent redirect to the same
// path and query over HTTPS.
func TestHTTPRedirectsToHTTPS(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newSiteClient(10 * time.Second)
	for _, path := range []string{"/", "/visits/1?x=1&y=two"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+siteName+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET http://%s%s: %v", siteName, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("GET http://%s%s: status %d, want 301", siteName, path, resp.StatusCode)
		}
		if got, want := resp.Header.Get("Location"), "https://"+siteName+path; got != want {
			t.Errorf("GET http://%s%s: Location %q, want %q", siteName, path, got, want)
		}
	}
}

// hstsMaxAge returns the max-age of a Strict-Transport-Security value, or -1.
func hstsMaxAge(v string) int {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "max-age") {
			n, err := strconv.Atoi(val)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
