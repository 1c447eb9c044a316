package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/proxy"
)

// recorder is a Registerer that remembers the metric names of what it
// registers, vectors without children included.
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// exportedNames returns every metric family name Switchyard exports: the
// registry, the proxy, the reloader, and the backend and monitor collectors.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := newRegistry()
	rec := &recorder{Registerer: reg, names: map[string]bool{}}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		rec.names[f.GetName()] = true
	}
	cfg, err := config.Parse([]byte(adminConfig("127.0.0.1:1", "127.0.0.1:2", "")))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts, err := proxyOptions(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	opts.Registerer = rec
	srv, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	if _, err := newReloader("", cfg, nil, srv.Update, rec, log); err != nil {
		t.Fatal(err)
	}
	rec.MustRegister(newBackendCollector(srv, nil))
	// The monitor's collector describes itself without a monitor.
	rec.MustRegister(newMonitorCollector(nil))
	if _, err := newSwitchoverMetrics(rec); err != nil {
		t.Fatal(err)
	}
	return rec.names
}

// TestDashboard checks the Grafana dashboard: valid JSON, every query names
// only metrics Switchyard exports, and every Switchyard metric is plotted.
func TestDashboard(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in ../../dashboards: %v", err)
	}
	exported := exportedNames(t)
	used := map[string]bool{}
	metricRef := regexp.MustCompile(`\b(?:switchyard|go|process)_[a-zA-Z0-9_]+`)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			UID    string
			Title  string
			Panels []struct {
				ID      int
				Type    string
				Title   string
				Targets []struct{ Expr string }
			}
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if dash.UID == "" || dash.Title == "" {
			t.Errorf("%s: no uid or title", file)
		}
		ids := map[int]bool{}
		for _, p := range dash.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", file, p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
					t.Errorf("%s: panel %q: unbalanced parentheses in %s", file, p.Title, tg.Expr)
				}
				for _, name := range metricRef.FindAllString(tg.Expr, -1) {
					base := name
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
							base = b
						}
					}
					if !exported[base] {
						t.Errorf("%s: panel %q queries %s, which Switchyard does not export", file, p.Title, name)
					}
					used[base] = true
				}
			}
		}
	}
	var unplotted []string
	for name := range exported {
		if strings.HasPrefix(name, "switchyard_") && !used[name] {
			unplotted = append(unplotted, name)
		}
	}
	sort.Strings(unplotted)
	if len(unplotted) > 0 {
		t.Errorf("metrics not on any dashboard: %s", strings.Join(unplotted, ", "))
	}
}
