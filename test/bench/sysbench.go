package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysbench runs sysbench 1.0 OLTP tests against one address.
type sysbench struct {
	Bin       string
	User      string
	Password  string
	DB        string
	Tables    int
	TableSize int
	Verbose   io.Writer // receives each command line; nil for none
	// Debug runs sysbench with --verbosity=5, which names the code of every error it
	// ignores (sysbenchResult.IgnoredCodes).
	Debug bool
}

// sysbenchDB is the database sysbench's tables live in.
const sysbenchDB = "sbtest"

// findSysbench returns the sysbench path, or an error that says how to install it.
func findSysbench(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("sysbench not found (%v): install it, e.g. apt-get install sysbench", err)
	}
	return path, nil
}

// sysbenchVersion returns "sysbench 1.0.20" or the like.
func sysbenchVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func (s sysbench) connArgs(test, addr string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return []string{
		test,
		"--db-driver=mysql",
		"--mysql-host=" + host,
		"--mysql-port=" + port,
		"--mysql-user=" + s.User,
		"--mysql-password=" + s.Password,
		"--mysql-db=" + s.DB,
		"--tables=" + strconv.Itoa(s.Tables),
		"--table-size=" + strconv.Itoa(s.TableSize),
	}
}

// Prepare drops the sysbench tables on addr if they exist and creates and fills them,
// one table per thread.
func (s sysbench) Prepare(ctx context.Context, addr string) error {
	for _, cmd := range []string{"cleanup", "prepare"} {
		args := append(s.connArgs("oltp_read_write", addr), "--threads="+strconv.Itoa(min(s.Tables, 4)), cmd)
		if out, err := s.exec(ctx, args); err != nil {
			return fmt.Errorf("sysbench %s: %w\n%s", cmd, err, tail(out, 15))
		}
	}
	return nil
}

// deleteInsertTests delete a random row and insert it again in each event.
var deleteInsertTests = []string{"oltp_read_write", "oltp_write_only"}

// defaultIgnoredErrors is sysbench's default --mysql-ignore-errors: deadlock, record
// changed since last read, lock wait timeout. sysbench retries the event and counts
// these as "ignored errors"; any other error is FATAL and ends the run.
const defaultIgnoredErrors = "1213,1020,1205"

// runArgs are the arguments of one measured run.
func (s sysbench) runArgs(c benchCase, addr string, d time.Duration) []string {
	args := append(s.connArgs(c.Workload.Test, addr),
		"--threads="+strconv.Itoa(c.Threads),
		"--time="+strconv.Itoa(int(d/time.Second)),
		"--events=0",
		"--db-ps-mode="+c.PSMode,
		"--percentile=95",
		"--report-interval=0",
		"--histogram=off",
	)
	if s.Debug {
		args = append(args, "--verbosity=5")
	}
	if c.Workload.SkipTrx {
		args = append(args, "--skip-trx=on")
		if slices.Contains(deleteInsertTests, c.Workload.Test) {
			// Without a transaction two threads can delete the same id and then both
			// insert it: a duplicate key the workload causes itself, direct as well.
			args = append(args, "--mysql-ignore-errors="+defaultIgnoredErrors+",1062")
		}
	}
	return append(args, "run")
}

// Run runs one case against addr. A run whose sysbench exits non-zero or reports a
// FATAL error returns the parsed statistics (if any) and an error quoting sysbench.
func (s sysbench) Run(ctx context.Context, c benchCase, addr string, d time.Duration) (sysbenchResult, []byte, error) {
	out, err := s.exec(ctx, s.runArgs(c, addr, d))
	res, perr := parseSysbench(out)
	if err == nil && len(res.Fatal) > 0 {
		err = errors.New("sysbench reported a fatal error")
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		msg := strings.Join(res.Fatal, "\n")
		if msg == "" {
			msg = tail(out, 10)
		}
		return res, out, fmt.Errorf("%w: %s", err, msg)
	}
	return res, out, nil
}

func (s sysbench) exec(ctx context.Context, args []string) ([]byte, error) {
	if s.Verbose != nil {
		fmt.Fprintf(s.Verbose, "+ %s %s\n", s.Bin, strings.Join(redactArgs(args), " "))
	}
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}

func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, "--mysql-password=") {
			out[i] = "--mysql-password=***"
		}
	}
	return out
}

// sysbenchResult is what one sysbench run printed.
type sysbenchResult struct {
	Transactions int64    `json:"transactions"`
	TPS          float64  `json:"tps"`
	Queries      int64    `json:"queries"`
	QPS          float64  `json:"qps"`
	Reads        int64    `json:"reads"`
	Writes       int64    `json:"writes"`
	Other        int64    `json:"other"`
	Errors       int64    `json:"ignored_errors"`
	Reconnects   int64    `json:"reconnects"`
	Seconds      float64  `json:"seconds"`
	AvgMs        float64  `json:"latency_avg_ms"`
	P95Ms        float64  `json:"latency_p95_ms"`
	MaxMs        float64  `json:"latency_max_ms"`
	Fatal        []string `json:"fatal,omitempty"` // FATAL lines, at most a few
	// IgnoredCodes are the error codes of the ignored errors, with sysbench.Debug.
	IgnoredCodes []int `json:"ignored_codes,omitempty"`
}

var (
	reCount   = regexp.MustCompile(`(?m)^\s+(read|write|other|transactions|queries|ignored errors|reconnects):\s+(\d+)(?:\s+\(([\d.]+) per sec\.\))?`)
	reTime    = regexp.MustCompile(`(?m)^\s+total time:\s+([\d.]+)s`)
	reLatency = regexp.MustCompile(`(?m)^\s+(avg|max|95th percentile):\s+([\d.]+)`)
	reIgnored = regexp.MustCompile(`(?m)^DEBUG: Ignoring error (\d+)`)
)

// maxFatal bounds the FATAL lines kept: with many threads every one of them may fail.
const maxFatal = 5

// parseSysbench reads sysbench 1.0's report. It returns an error when the report is
// missing, which is what a run that failed before measuring prints.
func parseSysbench(out []byte) (sysbenchResult, error) {
	var r sysbenchResult
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "FATAL:") && len(r.Fatal) < maxFatal {
			r.Fatal = append(r.Fatal, strings.TrimSpace(line))
		}
	}
	for _, m := range reIgnored.FindAllStringSubmatch(string(out), -1) {
		code, _ := strconv.Atoi(m[1])
		if !slices.Contains(r.IgnoredCodes, code) {
			r.IgnoredCodes = append(r.IgnoredCodes, code)
		}
	}
	slices.Sort(r.IgnoredCodes)
	found := map[string]bool{}
	for _, m := range reCount.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		rate, _ := strconv.ParseFloat(m[3], 64)
		found[m[1]] = true
		switch m[1] {
		case "read":
			r.Reads = n
		case "write":
			r.Writes = n
		case "other":
			r.Other = n
		case "transactions":
			r.Transactions, r.TPS = n, rate
		case "queries":
			r.Queries, r.QPS = n, rate
		case "ignored errors":
			r.Errors = n
		case "reconnects":
			r.Reconnects = n
		}
	}
	if m := reTime.FindStringSubmatch(string(out)); m != nil {
		r.Seconds, _ = strconv.ParseFloat(m[1], 64)
		found["total time"] = true
	}
	for _, m := range reLatency.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		found[m[1]] = true
		switch m[1] {
		case "avg":
			r.AvgMs = v
		case "max":
			r.MaxMs = v
		case "95th percentile":
			r.P95Ms = v
		}
	}
	var missing []string
	for _, k := range []string{"transactions", "queries", "ignored errors", "reconnects", "total time", "95th percentile"} {
		if !found[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("sysbench report incomplete: no %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
