package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestMain starts the replication sandbox that TestSysbenchThroughSwitchyard uses (the
// other tests do not need it) and fails the run if goroutines outlive the tests.
func TestMain(m *testing.M) {
	code := sandboxtest.Main(m, sandbox.Options{Replicas: 2})
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSysbench(t *testing.T) {
	const (
		dupInsert = "FATAL: mysql_stmt_execute() returned error 1062 (Duplicate entry '1' for key 'PRIMARY') for query 'INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)'"
		dupThread = "FATAL: `thread_run' function failed: /usr/share/sysbench/oltp_common.lua:488: SQL error, errno = 1062, state = '23000': Duplicate entry '1' for key 'PRIMARY'"
	)
	tests := []struct {
		file    string
		want    sysbenchResult
		wantErr string
	}{
		{
			file: "deadlocks-debug.txt",
			want: sysbenchResult{
				Transactions: 714, TPS: 354.36, Queries: 19993, QPS: 9922.46,
				Reads: 14938, Writes: 3274, Other: 1781, Errors: 353, Seconds: 2.0144,
				AvgMs: 22.49, P95Ms: 51.02, MaxMs: 250.72, IgnoredCodes: []int{1213},
			},
		},
		{
			file: "point-select.txt",
			want: sysbenchResult{
				Transactions: 287093, TPS: 57386.83, Queries: 287093, QPS: 57386.83,
				Reads: 287093, Seconds: 5.0022, AvgMs: 0.14, P95Ms: 0.35, MaxMs: 28.59,
			},
		},
		{
			file: "fatal.txt",
			want: sysbenchResult{Fatal: []string{ // 8 threads failed; the first maxFatal lines are kept
				dupInsert, dupThread, dupInsert, dupThread, dupInsert,
			}},
			wantErr: "sysbench report incomplete",
		},
	}
	for _, tt := range tests {
		got, err := parseSysbench(readTestdata(t, tt.file))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseSysbench(%s) error = %v, want %q", tt.file, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseSysbench(%s) mismatch (-want +got):\n%s", tt.file, diff)
		}
	}
}

// TestPlanRotates checks that every target runs every case once per repetition and
// that no target always goes first.
func TestPlanRotates(t *testing.T) {
	cases := matrix(defaultWorkloads, []string{"auto", "disable"}, []int{8, 64})
	steps := plan(cases, allTargets, 3)
	if want := len(cases) * len(allTargets) * 3; len(steps) != want {
		t.Fatalf("plan: %d steps, want %d", len(steps), want)
	}
	first := map[target]int{}
	seen := map[step]int{}
	for i, st := range steps {
		seen[st]++
		if i%len(allTargets) == 0 {
			first[st.Target]++
		}
		if want := cases[(i/len(allTargets))%len(cases)]; st.Case != want {
			t.Fatalf("step %d runs %s, want %s: targets of a case must run back to back", i, st.Case, want)
		}
	}
	for st, n := range seen {
		if n != 1 {
			t.Errorf("plan runs %+v %d times", st, n)
		}
	}
	for _, tg := range allTargets {
		if n := first[tg]; n < len(cases) {
			t.Errorf("%s goes first %d times of %d, want about a third", tg, n, len(cases)*3)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != quickDuration || !slices.Equal(o.threads, quickThreads) || o.reps != quickReps || len(o.workloads) != 5 {
		t.Errorf("defaults: time %s threads %v reps %d workloads %v", o.duration, o.threads, o.reps, o.workloads)
	}
	o, err = parseFlags([]string{"-full", "-reps", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != fullDuration || !slices.Equal(o.threads, fullThreads) || o.reps != 2 {
		t.Errorf("-full -reps 2: time %s threads %v reps %d", o.duration, o.threads, o.reps)
	}
	o, err = parseFlags([]string{"-tests", "oltp_read_only+skip-trx,oltp_insert"}, io.Discard)
	want := []workload{{Test: "oltp_read_only", SkipTrx: true}, {Test: "oltp_insert"}}
	if err != nil || !slices.Equal(o.workloads, want) {
		t.Errorf("-tests: %v, %v; want %v", o.workloads, err, want)
	}
	for _, bad := range [][]string{
		{"-tests", "oltp_nope"}, {"-threads", "0"}, {"-ps-modes", "on"}, {"-time", "1500ms"},
		{"-targets", "proxysql"}, {"-reps", "0"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestDelta(t *testing.T) {
	before := statusCounters{"Questions": 100, "Com_select": 50, "Com_show_status": 7, "Com_insert": 3}
	after := statusCounters{"Questions": 161, "Com_select": 110, "Com_show_status": 8, "Com_insert": 3, "Com_begin": 2}
	want := statusCounters{"Questions": 60, "Com_select": 60, "Com_begin": 2}
	if diff := cmp.Diff(want, delta(before, after)); diff != "" {
		t.Errorf("delta mismatch (-want +got):\n%s", diff)
	}
}

func TestCheckTargets(t *testing.T) {
	// relayCPU is the relay's CPU per query in us; cpu Switchyard's over it.
	row := func(test string, ps string, threads int, syRelay, relayCPU, cpu float64, reconnects int64) summaryRow {
		w := workload{Test: strings.TrimSuffix(test, skipTrxSuffix), SkipTrx: strings.HasSuffix(test, skipTrxSuffix)}
		return summaryRow{
			Case: benchCase{Workload: w, PSMode: ps, Threads: threads},
			Targets: map[target]targetSummary{
				targetRelay:      {Runs: 1, QPS: 1000, CPUPerQueryUs: relayCPU},
				targetSwitchyard: {Runs: 1, QPS: 1000 * syRelay, Reconnects: reconnects, CPUPerQueryUs: relayCPU * cpu},
			},
			SwitchyardVsRelay: syRelay, CPUVsRelay: cpu,
		}
	}
	checks := checkTargets([]summaryRow{
		row("oltp_point_select", "auto", 8, 0.96, 40, 1.05, 0),        // QPS missed
		row("oltp_read_only+skip-trx", "auto", 64, 0.98, 40, 1.06, 0), // met: CPU within 1.07x
		row("oltp_read_only+skip-trx", "auto", 8, 1.0, 20, 1.09, 0),   // met: CPU within the relay's + 2 us (1.1x)
		row("oltp_read_write", "auto", 64, 1.01, 40, 1.08, 0),         // CPU missed: above 1.07x and + 2 us
		row("oltp_read_write", "auto", 256, 0.99, 40, 1.5, 1),         // QPS (pool 16 < 256) and errors missed; no CPU target at 256
		row("oltp_read_write", "auto", 16, 0.5, 40, 1.5, 0),           // no target at 16 threads
		row("oltp_read_only", "auto", 64, 0.5, 40, 1.5, 0),            // no target for read_only in transactions
		row("oltp_read_write", "disable", 8, 0.5, 40, 1.5, 0),         // no target without prepared statements
		row("oltp_update_index", "auto", 64, 0.5, 40, 1.5, 0),         // no target for this test
	}, 16)
	type key struct {
		Test, Goal string
		Threads    int
	}
	var missed []key
	qps := 0
	for _, c := range checks {
		if c.Goal == goalQPS {
			qps++
		}
		if !c.Met {
			missed = append(missed, key{c.Case.Workload.Test, c.Goal, c.Case.Threads})
		}
	}
	want := []key{
		{"oltp_point_select", goalQPS, 8},
		{"oltp_read_write", goalCPU, 64},
		{"oltp_read_write", goalQPS, 256},
		{"oltp_read_write", goalErrors, 256},
	}
	if diff := cmp.Diff(want, missed); diff != "" {
		t.Errorf("missed targets (-want +got):\n%s", diff)
	}
	if qps != 5 {
		t.Errorf("%d QPS checks, want 5", qps)
	}
	// With a pool as large as the thread count, 256 threads have no target
	// but errors.
	for _, c := range checkTargets([]summaryRow{row("oltp_read_write", "auto", 256, 0.5, 40, 1.5, 0)}, 0) {
		if c.Goal != goalErrors {
			t.Errorf("256 threads with a pool of one connection per thread: a %q target", c.Goal)
		}
	}
}

// TestSwitchyardConfigLoads checks that the generated configuration is one Switchyard
// accepts, with the passwords intact despite ${...} expansion.
func TestSwitchyardConfigLoads(t *testing.T) {
	s := switchyardSetup{
		Listen: "127.0.0.1:6033", User: "app", Password: "pa$word${X}", MonitorUser: "monitor", MonitorPassword: "m$",
		Backends: []backendServer{
			{Name: "primary", Role: "primary", Addr: "127.0.0.1:3306"},
			{Name: "replica1", Role: "replica", Addr: "127.0.0.1:3307"},
		},
		MaxThreads: 256,
	}
	b, err := s.yaml()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load of the generated file: %v\n%s", err, b)
	}
	if len(cfg.Users) != 1 || cfg.Users[0].Password != s.Password || cfg.Monitor.Password != s.MonitorPassword {
		t.Errorf("passwords: users %+v monitor %q", cfg.Users, cfg.Monitor.Password)
	}
	if len(cfg.Backends) != 2 || cfg.Backends[1].Role != config.Role("replica") || cfg.Pool.MaxOpen < 256 {
		t.Errorf("backends %+v, pool %+v", cfg.Backends, cfg.Pool)
	}
	if cfg.Admin.Listen != "" {
		t.Errorf("admin.listen = %q, want disabled", cfg.Admin.Listen)
	}
}

// TestRelay runs the bare relay in-process in front of an echo server and checks that
// bytes flow both ways and that a half-close reaches the other side.
func TestRelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()

	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan int)
	go func() { done <- relayMain([]string{"-target", echo.Addr().String()}, stdinR, stdoutW, io.Discard) }()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("relay printed %q", line)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := strings.Repeat("switchyard ", 10000) // more than one TCP segment
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c) // ends only if the half-close went through and back
	c.Close()
	if err != nil || string(got) != msg {
		t.Errorf("through the relay: read %d bytes, err %v; want the %d bytes sent", len(got), err, len(msg))
	}

	stdinW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("relayMain returned %d after stdin closed, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relayMain did not return after stdin closed")
	}
}

// TestProcStats checks cpuTime against getrusage, which reports the same clock for
// this process, and peakRSS for plausibility.
func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	for x := 0; selfCPU(t) < 50*time.Millisecond; x++ { // give the clocks something to count
		_ = x * x
	}
	low := selfCPU(t)
	got, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	high := selfCPU(t)
	// /proc counts in ticks of 10ms; getrusage is finer.
	if got < low-20*time.Millisecond || got > high+20*time.Millisecond {
		t.Errorf("cpuTime = %s, want between %s and %s (getrusage)", got, low, high)
	}
	rss, err := peakRSS(pid)
	if err != nil || rss < 1<<20 {
		t.Errorf("peakRSS = %d, %v; want at least 1 MiB", rss, err)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("cpuTime(-1) succeeded")
	}
}

func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
