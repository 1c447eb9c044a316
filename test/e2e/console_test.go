package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestConsoleAndDigests: each Switchyard of the stack serves its console at
// the admin listener's / and, after traffic through the site, query digests
// at /api/queries, behind the admin token. The admin listener is on the data
// network only, so the test asks from inside the container.
func TestConsoleAndDigests(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newSiteClient(10 * time.Second)
	for range 5 {
		for _, r := range mixedRequests {
			if _, err := siteDo(ctx, c, r.method, r.path, r.status); err != nil {
				t.Fatal(err)
			}
		}
	}
	const token = "admin-secret" // compose.yaml's default SWITCHYARD_ADMIN_TOKEN
	reads, writes := 0, 0
	for _, sy := range []string{"switchyard1", "switchyard2"} {
		page, err := composeOutput(ctx, "exec", "-T", sy, "curl", "-fsS", "--max-time", "5", "http://127.0.0.1:6034/")
		if err != nil || !strings.Contains(page, "<title>") || !strings.Contains(page, "console/app.js") {
			t.Errorf("%s: console page: %v\n%s", sy, err, truncate(page, 300))
		}
		// Without the token: refused.
		if out, err := composeOutput(ctx, "exec", "-T", sy, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", "5", "http://127.0.0.1:6034/api/queries"); err != nil || out != "401" {
			t.Errorf("%s: /api/queries without the token answered %q (%v), want 401", sy, out, err)
		}
		out, err := composeOutput(ctx, "exec", "-T", sy, "curl", "-fsS", "--max-time", "5",
			"-H", "Authorization: Bearer "+token, "http://127.0.0.1:6034/api/queries?sort=count&limit=20")
		if err != nil {
			t.Fatalf("%s: /api/queries: %v", sy, err)
		}
		var q struct {
			Digests []struct {
				Text    string         `json:"text"`
				User    string         `json:"user"`
				Count   int            `json:"count"`
				Routes  map[string]int `json:"routes"`
				Reasons map[string]int `json:"reasons"`
			} `json:"digests"`
		}
		if err := json.Unmarshal([]byte(out), &q); err != nil {
			t.Fatalf("%s: /api/queries: %v\n%s", sy, err, truncate(out, 300))
		}
		if len(q.Digests) == 0 {
			t.Errorf("%s: no digests after the site's traffic", sy)
		}
		for _, d := range q.Digests {
			if d.User != "app" || d.Count == 0 || len(d.Reasons) == 0 {
				t.Errorf("%s: digest %+v, want the app user, a count and reasons", sy, d)
			}
			reads += d.Routes["replica"]
			writes += d.Routes["primary"]
		}
		t.Logf("%s: %d digests", sy, len(q.Digests))
	}
	// The apps spread their sessions over both Switchyards.
	if reads == 0 || writes == 0 {
		t.Errorf("digests show %d executions on replicas and %d on the primary, want both after the site's reads and writes", reads, writes)
	}
}
