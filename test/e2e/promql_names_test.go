package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// promqlKeywords are PromQL words that are not metric names when they are
// not followed by "(".
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "inf": true, "nan": true, "atan2": true,
}

// labelListKeywords take a parenthesized list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

var nameMatcherRE = regexp.MustCompile(`__name__\s*=\s*"([^"]+)"`)

// metricNames returns, sorted and without repeats, the metric names a PromQL
// expression selects: its identifiers that are not functions, keywords,
// label names (in braces or after by, without, on, ignoring, group_left and
// group_right) nor parts of strings, durations or numbers, plus the names of
// {__name__="..."} matchers. It is a lexer, not a parser: enough for the
// expressions of our dashboards and rules, where it names the metrics a
// panel that returns nothing is missing.
func metricNames(expr string) []string {
	seen := map[string]bool{}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	// skipTo returns the index after the bracket that closes the one at i,
	// skipping strings.
	skipTo := func(i int, open, close byte) int {
		depth := 0
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				i = skipString(expr, i) - 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '{':
			end := skipTo(i, '{', '}')
			for _, m := range nameMatcherRE.FindAllStringSubmatch(expr[i:end], -1) {
				seen[m[1]] = true
			}
			i = end
		case c == '[':
			i = skipTo(i, '[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := i
			for next < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[next])) {
				next++
			}
			call := next < len(expr) && expr[next] == '('
			// An aggregation may put its grouping first: sum by (x) (...).
			rest := strings.ToLower(expr[next:])
			for _, kw := range []string{"by", "without"} {
				if strings.HasPrefix(rest, kw) && (len(rest) == len(kw) || !isIdent(rest[len(kw)])) {
					call = true
				}
			}
			switch {
			case labelListKeywords[strings.ToLower(word)] && call:
				i = skipTo(next, '(', ')')
			case call || promqlKeywords[strings.ToLower(word)]:
				// A function or aggregation, or an operator.
			default:
				seen[word] = true
			}
		default:
			i++
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// skipString returns the index after the string literal that starts at i.
func skipString(s string, i int) int {
	quote := s[i]
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quote != '`' {
				i++
			}
		case quote:
			return i + 1
		}
	}
	return i
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (layer) (rate(haproxy_frontend_http_requests_total{proxy="www"}[1m]))`, []string{"haproxy_frontend_http_requests_total"}},
		{`sum(rate(a_total[5m])) by (job) / on(job) group_left(version) b_info`, []string{"a_total", "b_info"}},
		{`label_replace(max(x{proxy="web"}), "layer", "lb", "", "")`, []string{"x"}},
		{`histogram_quantile(0.95, sum by (le, backend) (rate(d_bucket{instance=~"$instance"}[$__rate_interval])))`, []string{"d_bucket"}},
		{`1 - avg(rate(node_cpu_seconds_total{mode="idle"}[1m])) > 0.9 and bool on() vector(1)`, []string{"node_cpu_seconds_total"}},
		{`layer:qps:rate1m offset 5m unless ignoring(layer) {__name__="other:series", a="b}"}`, []string{"layer:qps:rate1m", "other:series"}},
		{"max_over_time(lag[10m:30s]) # a comment naming not_a_metric\n  > 1e3", []string{"lag"}},
		{`count_values("version", build_info) or absent(build_info)`, []string{"build_info"}},
	} {
		if diff := cmp.Diff(tc.want, metricNames(tc.expr)); diff != "" {
			t.Errorf("metricNames(%q) (-want +got):\n%s", tc.expr, diff)
		}
	}
}

// TestPromChecksLoad needs no stack: every dashboard variable is known, and
// every expression names at least one metric for TestDashboardQueries to
// look for.
func TestPromChecksLoad(t *testing.T) {
	if repoRoot == "" {
		t.Skip("repository root not found")
	}
	checks, err := loadPromChecks()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.err != nil {
			t.Errorf("%s: %s: %v", c.source, c.expr, c.err)
		} else if len(metricNames(c.query)) == 0 {
			t.Errorf("%s: %s: no metric names found", c.source, c.query)
		}
	}
	t.Logf("%d expressions", len(checks))
}

func TestSubstitute(t *testing.T) {
	vals := map[string]string{"instance": ".*", "job": "switchyard", "__rate_interval": "20s"}
	for _, tc := range []struct{ in, want, err string }{
		{`rate(x{job="$job", instance=~"$instance"}[$__rate_interval])`, `rate(x{job="switchyard", instance=~".*"}[20s])`, ""},
		{`x{job="${job}", i=~"${instance:regex}", k="[[job]]"}`, `x{job="switchyard", i=~".*", k="switchyard"}`, ""},
		{`rate(x[$__interval])`, "", "unknown variables [$__interval]"},
	} {
		got, err := substitute(tc.in, vals)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tc.want || msg != tc.err {
			t.Errorf("substitute(%q) = %q, %q; want %q, %q", tc.in, got, msg, tc.want, tc.err)
		}
	}
}
