package main

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricSet is one scrape of /metrics, by family name.
type metricSet map[string]*dto.MetricFamily

// scrape parses the Prometheus text format.
func scrape(t *testing.T, text string) metricSet {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return fams
}

// get sums the samples of family name whose labels include the given
// name/value pairs: counter and gauge values, and histogram sample counts.
// ok is false when no series matches.
func (m metricSet) get(name string, labels ...string) (v float64, ok bool) {
	fam := m[name]
	if fam == nil {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		ok = true
		switch {
		case s.Counter != nil:
			v += s.Counter.GetValue()
		case s.Gauge != nil:
			v += s.Gauge.GetValue()
		case s.Histogram != nil:
			v += float64(s.Histogram.GetSampleCount())
		case s.Untyped != nil:
			v += s.Untyped.GetValue()
		}
	}
	return v, ok
}

// val is get without ok: 0 for an absent series.
func (m metricSet) val(name string, labels ...string) float64 {
	v, _ := m.get(name, labels...)
	return v
}

// histSum sums the observed values of histogram name{labels}.
func (m metricSet) histSum(name string, labels ...string) float64 {
	var v float64
	if fam := m[name]; fam != nil {
		for _, s := range fam.GetMetric() {
			if hasLabels(s, labels) && s.Histogram != nil {
				v += s.Histogram.GetSampleSum()
			}
		}
	}
	return v
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// checkMetric fails unless name{labels} is present with value want.
func checkMetric(t *testing.T, m metricSet, name string, labels []string, want float64) {
	t.Helper()
	got, ok := m.get(name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present: %v), want %v", name, labels, got, ok, want)
	}
}
