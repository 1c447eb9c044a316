package proxy

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/switchyard-db/switchyard/router"
)

// statementSeries gathers reg and returns the series of
// switchyard_statements_total.
func statementSeries(t *testing.T, reg *prometheus.Registry) []*dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "switchyard_statements_total" {
			return f.GetMetric()
		}
	}
	return nil
}

// TestMetricsStatementSeriesOnFirstUse checks that a backend brings no
// statement series with it: each appears with its first statement.
func TestMetricsStatementSeriesOnFirstUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := registerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	primary, replica := m.forBackend(&Backend{Name: "db1"}), m.forBackend(&Backend{Name: "replica2"})
	if got := statementSeries(t, reg); len(got) != 0 {
		t.Fatalf("switchyard_statements_total has %d series before any statement, want 0", len(got))
	}
	replica.countStatement(1, cmdQuery, router.KindRead)
	replica.countStatement(1, cmdQuery, router.KindRead)
	primary.countStatement(0, cmdExecute, router.KindWrite)
	got := statementSeries(t, reg)
	want := map[string]float64{
		"route=replica backend=replica2 command=query class=read": 2,
		"route=primary backend=db1 command=execute class=write":   1,
	}
	if len(got) != len(want) {
		t.Errorf("switchyard_statements_total has %d series after 3 statements of 2 kinds, want %d", len(got), len(want))
	}
	for _, s := range got {
		l := map[string]string{}
		for _, lp := range s.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		key := "route=" + l["route"] + " backend=" + l["backend"] + " command=" + l["command"] + " class=" + l["class"]
		if v, ok := want[key]; !ok || s.GetCounter().GetValue() != v {
			t.Errorf("switchyard_statements_total{%s} = %v, want %v (present in want: %v)", key, s.GetCounter().GetValue(), v, ok)
		}
	}
}

// TestMetricsCountStatementAllocatesNothing checks the hot path once a
// series exists.
func TestMetricsCountStatementAllocatesNothing(t *testing.T) {
	m, err := registerMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	bm := m.forBackend(&Backend{Name: "db2"})
	bm.countStatement(1, cmdExecute, router.KindRead)
	if n := testing.AllocsPerRun(100, func() { bm.countStatement(1, cmdExecute, router.KindRead) }); n != 0 {
		t.Errorf("countStatement allocates %v times per statement, want 0", n)
	}
}

// TestMetricsRegisterTwice checks that a registry already holding the
// proxy's metrics is an error, not a panic.
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	_, err := registerMetrics(reg)
	var already prometheus.AlreadyRegisteredError
	if !errors.As(err, &already) {
		t.Errorf("registerMetrics on a registry that has them = %v, want an AlreadyRegisteredError", err)
	}
}
