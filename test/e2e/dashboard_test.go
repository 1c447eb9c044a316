package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Where the stack's PromQL lives. compose.yaml mounts provisionedDashboards
// into Grafana; dashboards/switchyard.json is the source of the proxy
// dashboard and provisionedDashboards holds a copy of it (TestDashboardCopy).
const (
	provisionedDashboards = "deploy/grafana/dashboards"
	grafanaDatasource     = "deploy/grafana/provisioning/datasources/prometheus.yaml"
	prometheusConfig      = "deploy/monitor/prometheus.yml"
	proxyDashboard        = "dashboards/switchyard.json"
	rulesFile             = "deploy/monitor/rules.yml"
	operationsDoc         = "docs/OPERATIONS.md" // its promql blocks
)

// promCheck is one PromQL expression of a dashboard or of the rules, and
// what it must return.
type promCheck struct {
	kind   string // "panel", "variable", "record", "alert" or "doc"
	source string // file and panel, variable or rule: what a failure names
	expr   string // as written
	query  string // as sent to Prometheus, Grafana's variables substituted
	// record is the series a recording rule writes: it must exist too.
	record string
	// legend is a panel target's legendFormat: the labels it names must be
	// on every series, or the legend shows blanks.
	legend string
	// err is why query could not be made (an unknown Grafana variable).
	err error
}

// TestDashboardQueries evaluates every PromQL expression of the dashboards
// Grafana provisions, of Prometheus' rules and of the operations guide
// against the stack's Prometheus, with traffic flowing, and fails naming the panel or rule whose
// expression returns nothing: a panel that queries a series that does not
// exist is a defect.
func TestDashboardQueries(t *testing.T) {
	requireStack(t)
	checks, err := loadPromChecks()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Reads and writes through both apps while the queries run, so that
	// rates and latency quantiles have something to measure, plus what the
	// apps never cause: an error sent to a client and a refused login
	// (switchyard_errors_total and switchyard_client_connections_rejected_total
	// have no series until the first one).
	l := startLoad(2, 50*time.Millisecond, 10*time.Second, mixedRequests)
	defer l.stop()
	if err := provokeSwitchyardEvents(ctx); err != nil {
		t.Fatal(err)
	}

	// Series appear after a scrape (every 5 s), rates need two, recorded
	// series another rule evaluation: poll the failing checks until all pass
	// or the bound is reached.
	start := time.Now()
	failures := map[int]error{}
	for i := range checks {
		failures[i] = fmt.Errorf("not evaluated")
	}
	_ = eventually(90*time.Second, 2*time.Second, func() error {
		for i, err := range failures {
			if err = checks[i].run(ctx); err == nil {
				delete(failures, i)
			} else {
				failures[i] = err
			}
		}
		if len(failures) > 0 {
			return fmt.Errorf("%d failing", len(failures))
		}
		return nil
	})
	kinds := map[string]int{}
	for i, c := range checks {
		kinds[c.kind]++
		if err := failures[i]; err != nil {
			t.Errorf("%s: %s\n\tsent: %s\n\t%v", c.source, c.expr, c.query, err)
		}
	}
	t.Logf("%d expressions checked in %s (%d of dashboard panels, %d of dashboard variables, %d recording rules, %d alerts, %d documented queries); %d failed",
		len(checks), time.Since(start).Round(time.Second), kinds["panel"], kinds["variable"], kinds["record"], kinds["alert"], kinds["doc"], len(failures))
	if total, failed := l.count(); failed > 0 {
		t.Logf("site load: %d of %d requests failed", failed, total)
	}
}

// TestDashboardCopy: Grafana provisions a copy of dashboards/switchyard.json
// (compose.yaml mounts only deploy/grafana/dashboards, and a symlink would
// point out of the mount): the copy must not drift from its source.
func TestDashboardCopy(t *testing.T) {
	root := repoRoot
	if root == "" {
		t.Skip("repository root not found")
	}
	src, err := os.ReadFile(filepath.Join(root, proxyDashboard))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(provisionedDashboards, filepath.Base(proxyDashboard))
	got, err := os.ReadFile(filepath.Join(root, dst))
	if err != nil {
		t.Fatalf("%v (copy %s there)", err, proxyDashboard)
	}
	if !bytes.Equal(got, src) {
		t.Errorf("%s differs from %s: cp %s %s", dst, proxyDashboard, proxyDashboard, dst)
	}
}

// run evaluates the check once.
func (c promCheck) run(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	series, err := promQuery(ctx, c.query)
	if err != nil {
		return err
	}
	// Every metric the expression names must exist, even where the result
	// would not show it missing (a or b).
	if err := requireMetrics(ctx, c.query); err != nil {
		if len(series) == 0 && c.kind != "alert" {
			return fmt.Errorf("no data: %w", err)
		}
		return err
	}
	if c.kind == "alert" {
		// An alert's expression is empty while it does not fire: its
		// metrics existing (above) is what can be checked.
		return nil
	}
	if len(series) == 0 {
		return fmt.Errorf("no data (its metrics exist: check its label matchers)")
	}
	for _, m := range legendLabelRE.FindAllStringSubmatch(c.legend, -1) {
		for _, s := range series {
			if _, ok := s.Metric[m[1]]; !ok {
				return fmt.Errorf("legend %q: label %s missing from series %v", c.legend, m[1], s.Metric)
			}
		}
	}
	if c.record != "" {
		// The rule's own output: the recorded name with the labels of one
		// series its expression returns.
		sel := c.record + labelMatchers(series[0].Metric)
		rec, err := promQuery(ctx, sel)
		if err != nil {
			return err
		}
		if len(rec) == 0 {
			return fmt.Errorf("expression returns %d series but %s is not recorded", len(series), sel)
		}
	}
	return nil
}

var legendLabelRE = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// requireMetrics checks that every metric expr reads has a series.
func requireMetrics(ctx context.Context, expr string) error {
	names := metricNames(expr)
	if len(names) == 0 {
		return fmt.Errorf("no metric names found in the expression")
	}
	var missing []string
	for _, name := range names {
		series, err := promQuery(ctx, "count("+name+")")
		if err != nil {
			return err
		}
		if len(series) == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no series named %s", strings.Join(missing, ", "))
	}
	return nil
}

// labelMatchers returns {k="v",...} matching labels exactly.
func labelMatchers(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(labels[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// provokeSwitchyardEvents sends, straight to each Switchyard from the
// primary's container (the data network is internal), a statement that fails
// and a login with a wrong password.
func provokeSwitchyardEvents(ctx context.Context) error {
	password := os.Getenv("APP_PASSWORD")
	if password == "" {
		password = "app-secret" // compose.yaml's default
	}
	for _, proxy := range []string{"switchyard1", "switchyard2"} {
		base := []string{"exec", "-T", "db-primary", "mariadb", "-h", proxy, "-P", "6033", "-u", "app"}
		_, err := composeOutput(ctx, append(base, "-p"+password, "app", "-e", "SELECT * FROM e2e_no_such_table")...)
		if err == nil || !strings.Contains(err.Error(), "1146") {
			return fmt.Errorf("%s: SELECT from a missing table: got %v, want error 1146", proxy, err)
		}
		_, err = composeOutput(ctx, append(base, "-pe2e-wrong-password", "app", "-e", "SELECT 1")...)
		if err == nil || !strings.Contains(err.Error(), "1045") {
			return fmt.Errorf("%s: login with a wrong password: got %v, want error 1045", proxy, err)
		}
	}
	return nil
}

// loadPromChecks reads every expression of the provisioned dashboards and of
// the rules.
func loadPromChecks() ([]promCheck, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, provisionedDashboards, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s", provisionedDashboards)
	}
	builtins, err := grafanaBuiltins()
	if err != nil {
		return nil, err
	}
	var checks []promCheck
	for _, f := range files {
		cs, err := dashboardChecks(f, builtins)
		if err != nil {
			return nil, err
		}
		checks = append(checks, cs...)
	}
	cs, err := ruleChecks(rulesFile)
	if err != nil {
		return nil, err
	}
	checks = append(checks, cs...)
	cs, err = docChecks(operationsDoc)
	if err != nil {
		return nil, err
	}
	return append(checks, cs...), nil
}

// docChecks reads the queries of a Markdown file's promql blocks, one a
// line with an optional "# comment"; a comment starting "alert:" marks an
// alert's expression, which may be empty.
func docChecks(file string) ([]promCheck, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		return nil, err
	}
	var checks []promCheck
	in := false
	for n, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in:
			in = trimmed == "```promql"
			continue
		case strings.HasPrefix(trimmed, "```"):
			in = false
			continue
		case trimmed == "":
			continue
		}
		expr, comment, _ := strings.Cut(line, "#")
		expr = strings.TrimSpace(expr)
		c := promCheck{kind: "doc", source: fmt.Sprintf("%s:%d", filepath.Base(file), n+1), expr: expr, query: expr}
		if strings.HasPrefix(strings.TrimSpace(comment), "alert:") {
			c.kind = "alert"
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// dashboard is the part of a Grafana dashboard's JSON that holds queries.
type dashboard struct {
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": ...}
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// grafanaBuiltins returns the values Grafana gives its own variables for a
// short time range: $__interval is the data source's scrape interval
// (timeInterval) and $__rate_interval four times it. That interval must be
// Prometheus' scrape_interval.
func grafanaBuiltins() (map[string]string, error) {
	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			JSONData struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	var prom struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
	}
	if err := readYAML(grafanaDatasource, &ds); err != nil {
		return nil, err
	}
	if err := readYAML(prometheusConfig, &prom); err != nil {
		return nil, err
	}
	if len(ds.Datasources) != 1 {
		return nil, fmt.Errorf("%s: %d data sources, want 1", grafanaDatasource, len(ds.Datasources))
	}
	interval := ds.Datasources[0].JSONData.TimeInterval
	if interval != prom.Global.ScrapeInterval {
		return nil, fmt.Errorf("%s: timeInterval %q, want Prometheus' scrape_interval %q (%s)",
			grafanaDatasource, interval, prom.Global.ScrapeInterval, prometheusConfig)
	}
	d, err := time.ParseDuration(interval)
	if err != nil {
		return nil, fmt.Errorf("%s: timeInterval: %w", grafanaDatasource, err)
	}
	return map[string]string{
		"__interval":      interval,
		"__rate_interval": fmt.Sprintf("%ds", int(4*d/time.Second)),
		"__range":         "1h",
	}, nil
}

func readYAML(file string, v any) error {
	data, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func dashboardChecks(file string, builtins map[string]string) ([]promCheck, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	name := filepath.Base(file)
	vals := map[string]string{}
	for k, v := range builtins {
		vals[k] = v
	}
	for _, v := range d.Templating.List {
		switch {
		case v.Type == "datasource":
			vals[v.Name] = "prometheus"
		case v.IncludeAll && (v.Current.Value == "$__all" || fmt.Sprint(v.Current.Value) == "[$__all]"):
			vals[v.Name] = ".*" // what "All" sends for a regex matcher
			if v.AllValue != "" {
				vals[v.Name] = v.AllValue
			}
		default:
			vals[v.Name] = fmt.Sprint(v.Current.Value)
		}
	}
	var checks []promCheck
	add := func(kind, source, expr, query, legend string) {
		q, err := substitute(query, vals)
		checks = append(checks, promCheck{kind: kind, source: name + ": " + source, expr: expr, query: q, legend: legend, err: err})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("%s: variable %s: query: %w", file, v.Name, err)
			}
			q = obj.Query
		}
		pq, err := variableQuery(q)
		if err != nil {
			return nil, fmt.Errorf("%s: variable %s: %w", file, v.Name, err)
		}
		add("variable", "variable $"+v.Name, q, pq, "")
	}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					add("panel", fmt.Sprintf("panel %q", p.Title), tg.Expr, tg.Expr, tg.LegendFormat)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return checks, nil
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.+),\s*(\w+)\s*\)\s*$`)

// variableQuery turns a Grafana variable query into PromQL that returns a
// series per value: label_values(SELECTOR, LABEL) lists LABEL's values.
func variableQuery(q string) (string, error) {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return "", fmt.Errorf("query %q: only label_values(selector, label) is understood", q)
	}
	return fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), nil
}

var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces Grafana's variables in q by vals; unknown ones are an
// error.
func substitute(q string, vals map[string]string) (string, error) {
	var unknown []string
	out := grafanaVarRE.ReplaceAllStringFunc(q, func(s string) string {
		m := grafanaVarRE.FindStringSubmatch(s)
		name := m[1] + m[2] + m[3]
		v, ok := vals[name]
		if !ok {
			unknown = append(unknown, s)
			return s
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v", unknown)
	}
	return out, nil
}

// rules is deploy/monitor/rules.yml.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func ruleChecks(file string) ([]promCheck, error) {
	var rs rules
	if err := readYAML(file, &rs); err != nil {
		return nil, err
	}
	var checks []promCheck
	for _, g := range rs.Groups {
		for i, r := range g.Rules {
			expr := strings.TrimSpace(r.Expr)
			c := promCheck{kind: "record", expr: expr, query: expr, record: r.Record,
				source: fmt.Sprintf("rules.yml: group %s: rule %d (record %s)", g.Name, i+1, r.Record)}
			if r.Alert != "" {
				c.kind = "alert"
				c.source = fmt.Sprintf("rules.yml: group %s: alert %s", g.Name, r.Alert)
			}
			checks = append(checks, c)
		}
	}
	return checks, nil
}
