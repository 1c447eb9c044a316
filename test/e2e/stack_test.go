package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Addresses fixed in compose.yaml.
const (
	vip           = "172.30.0.100"
	siteName      = "www.foobar.com"
	prometheusURL = "http://172.30.1.90:9090"
)

var (
	// siteRoots holds the stack's self-signed certificate for www.foobar.com.
	siteRoots *x509.CertPool
	// serverIDs maps each database service to its @@server_id.
	serverIDs = map[string]int{}
)

var dbServices = []string{"db-primary", "db-replica1", "db-replica2"}

// loadStackFacts reads what the tests compare against: the certificate the
// load balancers generated and each database server's server_id.
func loadStackFacts() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pem, err := composeOutput(ctx, "exec", "-T", "lb1", "cat", "/etc/haproxy/certs/"+siteName+".crt")
	if err != nil {
		return fmt.Errorf("read the site certificate: %w", err)
	}
	siteRoots = x509.NewCertPool()
	if !siteRoots.AppendCertsFromPEM([]byte(pem)) {
		return fmt.Errorf("no certificate in lb1:/etc/haproxy/certs/%s.crt", siteName)
	}
	for _, svc := range dbServices {
		out, err := dbQuery(ctx, svc, "SELECT @@server_id")
		if err != nil {
			return err
		}
		id, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			return fmt.Errorf("%s: @@server_id %q: %w", svc, out, err)
		}
		serverIDs[svc] = id
	}
	return nil
}

// dbQuery runs SQL as root on a database container and returns the rows as
// tab-separated text without headers.
func dbQuery(ctx context.Context, service, sql string) (string, error) {
	return composeOutput(ctx, "exec", "-T", service, "mariadb", "-N", "-B", "-e", sql)
}

// newSiteClient returns an HTTP client that reaches www.foobar.com at the
// virtual IP and verifies its certificate. Every request opens a new
// connection, so a request after a failover reaches whichever load balancer
// holds the address then.
func newSiteClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort(vip, port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: siteRoots, ServerName: siteName, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// server is a database server as the app reports it.
type server struct {
	ServerID int    `json:"server_id"`
	Hostname string `json:"hostname"`
}

// appResponse is the JSON both apps (Flask and Django) answer with.
type appResponse struct {
	AppServer string  `json:"app_server"`
	Framework string  `json:"framework"`
	Read      *server `json:"read"`
	Write     *server `json:"write"`
	ID        int64   `json:"id"`
	Found     bool    `json:"found"`
	Visits    int64   `json:"visits"`
	Error     string  `json:"error"`

	// From the response headers.
	LoadBalancer string `json:"-"`
	WebServer    string `json:"-"`
}

// siteDo sends one request to https://www.foobar.com/PATH and decodes the
// app's JSON answer. Statuses other than wantStatus are errors.
func siteDo(ctx context.Context, c *http.Client, method, path string, wantStatus int) (*appResponse, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"note":"e2e"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+siteName+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != wantStatus {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, truncate(string(data), 200))
	}
	var r appResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s %s: decode %q: %w", method, path, truncate(string(data), 200), err)
	}
	r.LoadBalancer = resp.Header.Get("X-Load-Balancer")
	r.WebServer = resp.Header.Get("X-Web-Server")
	return &r, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// serviceHealth returns the Docker health status of a compose service's
// container ("healthy", "starting", "unhealthy") or its state when it is not
// running.
func serviceHealth(ctx context.Context, service string) (string, error) {
	id, err := composeOutput(ctx, "ps", "-a", "-q", service)
	if err != nil {
		return "", err
	}
	id = strings.TrimSpace(id)
	if id == "" {
		return "missing", nil
	}
	out, err := dockerOutput(ctx, "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", id)
	if err != nil {
		return "", err
	}
	state, health, _ := strings.Cut(strings.TrimSpace(out), " ")
	if state != "running" || health == "" {
		return state, nil
	}
	return health, nil
}

// waitHealthy polls until every service is healthy or the deadline passes.
func waitHealthy(t *testing.T, timeout time.Duration, services ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, svc := range services {
		var last string
		for {
			status, err := serviceHealth(ctx, svc)
			if err == nil && status == "healthy" {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = status
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s not healthy after %s: %s", svc, timeout, last)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// eventually polls check every interval until it returns nil or timeout
// passes, and returns the last error.
func eventually(timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// vipHolder returns which load balancer answers at the virtual IP.
func vipHolder(ctx context.Context) (string, error) { return vipHolderWithin(ctx, 2*time.Second) }

// vipHolderWithin is vipHolder on a fresh connection with a timeout.
func vipHolderWithin(ctx context.Context, timeout time.Duration) (string, error) {
	c := newSiteClient(timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+siteName+"/lb-health", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /lb-health: status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Load-Balancer"), nil
}

// ensureRunning starts a service that a test may have left stopped and waits
// until it is healthy, so the next test finds the whole stack up.
func ensureRunning(t *testing.T, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := compose(ctx, "start", service); err != nil {
		t.Errorf("docker compose start %s: %v\n%s", service, err, out)
		return
	}
	waitHealthy(t, 2*time.Minute, service)
}
