package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// workload is a sysbench test, optionally with --skip-trx=on.
type workload struct {
	Test    string `json:"test"`
	SkipTrx bool   `json:"skip_trx"`
}

// skipTrxSuffix marks a workload with --skip-trx=on in -tests and in reports.
const skipTrxSuffix = "+skip-trx"

func (w workload) String() string {
	if w.SkipTrx {
		return w.Test + skipTrxSuffix
	}
	return w.Test
}

// defaultWorkloads: oltp_read_only and oltp_read_write wrap each event in BEGIN ...
// COMMIT, which pins everything to the primary; the skip-trx variants let reads spread.
var defaultWorkloads = []workload{
	{Test: "oltp_point_select"},
	{Test: "oltp_read_only"},
	{Test: "oltp_read_only", SkipTrx: true},
	{Test: "oltp_read_write"},
	{Test: "oltp_read_write", SkipTrx: true},
}

// knownTests are the sysbench 1.0 OLTP tests that use the sbtest tables prepared here.
var knownTests = []string{
	"oltp_point_select", "oltp_read_only", "oltp_read_write", "oltp_write_only",
	"oltp_insert", "oltp_update_index", "oltp_update_non_index", "oltp_delete",
	"select_random_points", "select_random_ranges",
}

// target is where sysbench connects.
type target string

const (
	targetDirect     target = "direct"     // the primary itself
	targetRelay      target = "relay"      // a bare TCP relay to the primary
	targetSwitchyard target = "switchyard" // the proxy under test
)

var allTargets = []target{targetDirect, targetRelay, targetSwitchyard}

// benchCase is one cell of the matrix; every target runs it.
type benchCase struct {
	Workload workload `json:"workload"`
	PSMode   string   `json:"ps_mode"`
	Threads  int      `json:"threads"`
}

func (c benchCase) String() string {
	return fmt.Sprintf("%s ps=%s threads=%d", c.Workload, c.PSMode, c.Threads)
}

// step is one sysbench run of the plan.
type step struct {
	Rep    int
	Case   benchCase
	Target target
}

// plan orders the runs: repetition by repetition, case by case, and within a case every
// target in turn. The target order rotates with each case and repetition, so no target
// always runs first (on a warmer or cooler machine) or always follows a write-heavy run.
func plan(cases []benchCase, targets []target, reps int) []step {
	var steps []step
	for rep := range reps {
		for i, c := range cases {
			for j := range targets {
				t := targets[(i+rep+j)%len(targets)]
				steps = append(steps, step{Rep: rep + 1, Case: c, Target: t})
			}
		}
	}
	return steps
}

// matrix returns every combination of workload, ps-mode and thread count, workload
// outermost so related rows stay together in the table.
func matrix(ws []workload, psModes []string, threads []int) []benchCase {
	var cases []benchCase
	for _, w := range ws {
		for _, ps := range psModes {
			for _, n := range threads {
				cases = append(cases, benchCase{Workload: w, PSMode: ps, Threads: n})
			}
		}
	}
	return cases
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func parseWorkloads(s string) ([]workload, error) {
	var out []workload
	for _, f := range splitList(s) {
		w := workload{Test: strings.TrimSuffix(f, skipTrxSuffix), SkipTrx: strings.HasSuffix(f, skipTrxSuffix)}
		if !slices.Contains(knownTests, w.Test) {
			return nil, fmt.Errorf("unknown sysbench test %q (known: %s)", w.Test, strings.Join(knownTests, ", "))
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func parsePSModes(s string) ([]string, error) {
	var out []string
	for _, f := range splitList(s) {
		if f != "auto" && f != "disable" {
			return nil, fmt.Errorf("%q is not auto or disable", f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func parseTargets(s string) ([]target, error) {
	var out []target
	for _, f := range splitList(s) {
		t := target(f)
		if !slices.Contains(allTargets, t) {
			return nil, fmt.Errorf("%q is not direct, relay or switchyard", f)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func joinWorkloads(ws []workload) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, ",")
}
