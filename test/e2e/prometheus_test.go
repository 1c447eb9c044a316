package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrometheusSeries: Prometheus scrapes every exporter and records the four
// signals of each layer (see deploy/monitor/rules.yml): QPS, CPU, memory and
// response time.
func TestPrometheusSeries(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Some traffic of our own, so that request rates cannot be zero.
	c := newSiteClient(10 * time.Second)
	for i := 0; i < 10; i++ {
		for _, r := range mixedRequests {
			if _, err := siteDo(ctx, c, r.method, r.path, r.status); err != nil {
				t.Fatal(err)
			}
		}
	}

	checks := []struct {
		name, query string
		labels      []string // values of `layer` that must have a series
		positive    bool     // every series must be > 0
	}{
		{"QPS", "layer:qps:rate1m", []string{"lb", "web", "db"}, true},
		{"QPS of Switchyard", `layer:qps:rate1m{layer="proxy"}`, []string{"proxy"}, true},
		{"CPU", "layer:cpu_seconds:rate1m", []string{"lb", "web", "app", "proxy", "db", "monitor"}, false},
		{"memory", "layer:memory_resident_bytes", []string{"lb", "web", "app", "proxy", "db", "monitor"}, true},
		{"response time", "layer:response_time_seconds", []string{"lb", "web", "proxy", "db"}, false},
		{"host CPU", "host:cpu_busy:ratio", nil, false},
		{"host memory", "host:memory_available_bytes", nil, true},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			// Rates need two scrapes (5 s apart) after the traffic above.
			err := eventually(60*time.Second, time.Second, func() error {
				series, err := promQuery(ctx, ch.query)
				if err != nil {
					return err
				}
				if len(series) == 0 {
					return fmt.Errorf("%s: no series", ch.query)
				}
				have := map[string]float64{}
				for _, s := range series {
					have[s.Metric["layer"]] = s.value
					if ch.positive && !(s.value > 0) {
						return fmt.Errorf("%s%v = %v, want > 0", ch.query, s.Metric, s.value)
					}
				}
				for _, layer := range ch.labels {
					if _, ok := have[layer]; !ok {
						return fmt.Errorf("%s: no series for layer %q (have %v)", ch.query, layer, have)
					}
				}
				t.Logf("%s: %v", ch.query, have)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}

	t.Run("every target up", func(t *testing.T) {
		// Count, per target, the polls in which it was down: a target down
		// in every poll is broken; one down in some was only slow (the
		// machine may be busy).
		downIn := map[string]int{}
		polls := 0
		err := eventually(30*time.Second, time.Second, func() error {
			series, err := promQuery(ctx, "up")
			if err != nil {
				return err
			}
			polls++
			var down []string
			jobs := map[string]bool{}
			for _, s := range series {
				jobs[s.Metric["job"]] = true
				if s.value != 1 {
					target := s.Metric["job"] + "/" + s.Metric["instance"]
					down = append(down, target)
					downIn[target]++
				}
			}
			for _, job := range []string{"haproxy", "nginx", "switchyard", "mysqld", "process", "node", "prometheus"} {
				if !jobs[job] {
					return fmt.Errorf("no target for job %s", job)
				}
			}
			if len(down) > 0 {
				return fmt.Errorf("targets down: %s", strings.Join(down, ", "))
			}
			return nil
		})
		if err != nil {
			var always, sometimes []string
			for target, n := range downIn {
				if n == polls {
					always = append(always, target)
				} else {
					sometimes = append(sometimes, fmt.Sprintf("%s (%d of %d polls)", target, n, polls))
				}
			}
			sort.Strings(always)
			sort.Strings(sometimes)
			t.Errorf("%v; down in every poll: %v; down in some: %v", err, always, sometimes)
		}
	})
}

// promSeries is one instant-vector element of a Prometheus query result.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	value  float64
}

// promQuery runs an instant query against the stack's Prometheus.
func promQuery(ctx context.Context, query string) ([]promSeries, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, prometheusURL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: decode: %w", query, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, body.Error)
	}
	for i := range body.Data.Result {
		s, _ := body.Data.Result[i].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %q: %w", query, s, err)
		}
		body.Data.Result[i].value = v
	}
	return body.Data.Result, nil
}
