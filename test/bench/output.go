package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// table is a header and rows of cells, rendered aligned for a terminal or as Markdown.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{t.header}, t.rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

func (t *table) markdown(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---:"
		if i == 0 {
			seps[i] = "---"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// mainTable is the headline table: one row per case.
func (res *results) mainTable() *table {
	t := &table{header: []string{"workload", "ps", "thr",
		"QPS direct", "QPS relay", "QPS switchyard", "sy/direct", "sy/relay", "relay/direct",
		"p95 ms d/r/s", "errors d/r/s", "CPU us/q relay", "CPU us/q sy", "sy/relay CPU", "sy RSS MiB"}}
	for _, row := range res.Summary {
		// A target with no successful run shows "-" and its failures in the errors column.
		d, hd := row.Targets[targetDirect]
		r, hr := row.Targets[targetRelay]
		y, hy := row.Targets[targetSwitchyard]
		md, mr, my := hd && d.QPS > 0, hr && r.QPS > 0, hy && y.QPS > 0
		t.add(row.Case.Workload.String(), row.Case.PSMode, fmt.Sprint(row.Case.Threads),
			num(d.QPS, md, "%.0f"), num(r.QPS, mr, "%.0f"), num(y.QPS, my, "%.0f"),
			num(row.SwitchyardVsDirect, row.SwitchyardVsDirect > 0, "%.2f"),
			num(row.SwitchyardVsRelay, row.SwitchyardVsRelay > 0, "%.3f"),
			num(row.RelayVsDirect, row.RelayVsDirect > 0, "%.2f"),
			num(d.P95Ms, md, "%.2f")+"/"+num(r.P95Ms, mr, "%.2f")+"/"+num(y.P95Ms, my, "%.2f"),
			errs(d, hd)+"/"+errs(r, hr)+"/"+errs(y, hy),
			num(r.CPUPerQueryUs, r.CPUPerQueryUs > 0, "%.1f"),
			num(y.CPUPerQueryUs, y.CPUPerQueryUs > 0, "%.1f"),
			num(row.CPUVsRelay, row.CPUVsRelay > 0, "%.2f"),
			num(float64(y.PeakRSS)/(1<<20), y.PeakRSS > 0, "%.0f"))
	}
	return t
}

func num(v float64, ok bool, format string) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// errs shows sysbench's ignored errors, then reconnects as "+NR" and failed runs as
// "+NF".
func errs(s targetSummary, ok bool) string {
	if !ok {
		return "-"
	}
	out := fmt.Sprint(s.IgnoredErrors)
	if s.Reconnects > 0 {
		out += fmt.Sprintf("+%dR", s.Reconnects)
	}
	if s.Failed > 0 {
		out += fmt.Sprintf("+%dF", s.Failed)
	}
	return out
}

// placementTable shows where Switchyard's statements ran: each server's share of the
// Questions counted on all servers, with its SELECTs, and the primary's row writes
// (replicas count the writes they replicate, so theirs would mislead).
func (res *results) placementTable() *table {
	var servers []backendDelta
	for _, row := range res.Summary {
		for _, b := range row.Backends {
			if !slices.ContainsFunc(servers, func(s backendDelta) bool { return s.Name == b.Name }) {
				servers = append(servers, b)
			}
		}
	}
	if len(servers) == 0 {
		return nil
	}
	t := &table{header: []string{"workload", "ps", "thr"}}
	for _, b := range servers {
		t.header = append(t.header, b.Name+" share", b.Name+" questions", b.Name+" selects")
		if b.Role == "primary" {
			t.header = append(t.header, b.Name+" writes")
		}
	}
	for _, row := range res.Summary {
		var total int64
		for _, b := range row.Backends {
			total += b.Questions()
		}
		cells := []string{row.Case.Workload.String(), row.Case.PSMode, fmt.Sprint(row.Case.Threads)}
		for _, srv := range servers {
			var b backendDelta
			if i := slices.IndexFunc(row.Backends, func(x backendDelta) bool { return x.Name == srv.Name }); i >= 0 {
				b = row.Backends[i]
			}
			share := "-"
			if total > 0 {
				share = fmt.Sprintf("%.1f%%", 100*float64(b.Questions())/float64(total))
			}
			cells = append(cells, share, fmt.Sprint(b.Questions()), fmt.Sprint(b.Reads()))
			if srv.Role == "primary" {
				cells = append(cells, fmt.Sprint(b.Writes()))
			}
		}
		t.add(cells...)
	}
	return t
}

// targetLines describes the targets: a count, then every miss.
func (res *results) targetLines() []string {
	met := 0
	var misses []string
	for _, c := range res.Targets {
		if c.Met {
			met++
			continue
		}
		misses = append(misses, fmt.Sprintf("MISSED %s: %s %.3g (got %.3f)", c.Case, c.Goal, c.Limit, c.Value))
	}
	return append([]string{fmt.Sprintf("targets met: %d of %d", met, len(res.Targets))}, misses...)
}

func (res *results) header() string {
	m := res.Meta
	commit := m.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if m.Dirty {
		commit += " (dirty)"
	}
	s := fmt.Sprintf("commit %s, %s, %s, %d CPUs, %s; %d tables x %d rows; %ds runs x %d reps",
		commit, m.Server, m.Sysbench, m.CPUs, m.GoVersion, m.Tables, m.TableSize, m.Seconds, m.Reps)
	if m.Switchyard != "" {
		s += "; switchyard binary " + m.Switchyard
	}
	if m.PoolMax > 0 {
		s += fmt.Sprintf("; switchyard pool.max_open %d", m.PoolMax)
	}
	return s
}

func (res *results) writeText(w io.Writer) {
	fmt.Fprintln(w, res.header())
	fmt.Fprintln(w)
	res.mainTable().text(w)
	if t := res.placementTable(); t != nil {
		fmt.Fprintln(w, "\nWhere Switchyard's statements ran (deltas of Questions, Com_select, Com_insert+update+delete+replace):")
		t.text(w)
	}
	fmt.Fprintln(w)
	for _, l := range res.targetLines() {
		fmt.Fprintln(w, l)
	}
}

func (res *results) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "%s\n\n", res.header())
	res.mainTable().markdown(w)
	if t := res.placementTable(); t != nil {
		fmt.Fprintln(w, "\nWhere Switchyard's statements ran:")
		fmt.Fprintln(w)
		t.markdown(w)
	}
	fmt.Fprintln(w)
	for _, l := range res.targetLines() {
		fmt.Fprintf(w, "- %s\n", l)
	}
}

// save writes dir/<timestamp>.json and .md.
func (res *results) save(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	base := filepath.Join(dir, res.Started.UTC().Format("20060102T150405Z"))
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	var md strings.Builder
	res.writeMarkdown(&md)
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	fmt.Fprintf(stdout, "\nresults: %s.json and .md (%s)\n", base, res.Finished.Sub(res.Started).Round(time.Second))
	return nil
}
