// Command bench measures Switchyard with sysbench against two baselines taken in the
// same run: sysbench straight to the primary ("direct") and through a bare TCP relay
// ("relay", the cost of one extra hop and nothing else). It starts a MariaDB replication
// sandbox (or uses -primary), prepares the sysbench tables, builds Switchyard and runs it
// as a subprocess, then runs every case of the matrix against the three targets in
// turn, rotating the order so drift on a shared machine hits all three alike.
//
// For each case it reports QPS, p95 latency, the ratios to direct and to the relay, the
// CPU time Switchyard and the relay spent per query (from /proc/PID/stat), Switchyard's
// peak RSS, sysbench's errors and reconnects, and where the statements ran (deltas of
// SHOW GLOBAL STATUS on every server). Results go to bench-results/<timestamp>.json and a
// Markdown copy of the table to <timestamp>.md beside it.
//
//	go run ./test/bench                  quick matrix, a few minutes
//	go run ./test/bench -full            1, 8, 64 and 256 threads, longer runs, 3 repetitions
//	go run ./test/bench -tests oltp_point_select -threads 8 -time 30s
//
// sysbench must be installed (apt-get install sysbench); bench installs nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

func main() {
	// The bare relay runs as a subprocess of this same binary so that its CPU time
	// can be read from /proc exactly as Switchyard's is.
	if len(os.Args) > 1 && os.Args[1] == relayCommand {
		os.Exit(relayMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings after defaults and -full are applied.
type options struct {
	full        bool
	duration    time.Duration
	threads     []int
	workloads   []workload
	psModes     []string
	targets     []target
	reps        int
	tables      int
	tableSize   int
	prepare     bool
	engine      string // sandbox engine: mariadb or mysql
	primary     string // existing server; empty starts a sandbox
	user        string
	password    string
	rootUser    string
	rootPass    string
	switchyard  string // prebuilt binary; empty builds ./cmd/switchyard
	poolMaxOpen int    // Switchyard's pool.max_open; 0: the largest thread count + 16
	releaseIdle string // Switchyard's pool.release_idle; "": its default
	digests     int    // Switchyard's digests.max; -1: its default
	replicas    int    // how many of the sandbox's replicas Switchyard gets; -1: all
	outDir      string
	sysbench    string
	verbose     bool
}

// Defaults of the quick and the full matrix.
var (
	quickThreads = []int{8, 64}
	fullThreads  = []int{1, 8, 64, 256}
)

const (
	quickDuration = 5 * time.Second
	fullDuration  = 10 * time.Second
	quickReps     = 1
	fullReps      = 3
)

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./test/bench [flags]\n\n"+
			"Runs sysbench directly against the primary, through a bare TCP relay and through\n"+
			"Switchyard, alternately, and prints QPS, latency, ratios, CPU per query and where\n"+
			"statements ran. Results are written to -out as JSON and Markdown.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var o options
	fs.BoolVar(&o.full, "full", false, "whole matrix: threads 1,8,64,256, 10s runs, 3 repetitions (explicit flags still win)")
	fs.DurationVar(&o.duration, "time", quickDuration, "length of one sysbench run (whole seconds)")
	threads := fs.String("threads", joinInts(quickThreads), "comma-separated sysbench thread counts")
	tests := fs.String("tests", joinWorkloads(defaultWorkloads), "comma-separated workloads: a sysbench test, with +skip-trx for --skip-trx=on")
	ps := fs.String("ps-modes", "auto,disable", "comma-separated --db-ps-mode values")
	targets := fs.String("targets", "direct,relay,switchyard", "comma-separated targets, in the order of the first repetition")
	fs.IntVar(&o.reps, "reps", quickReps, "repetitions of the whole matrix (the target order rotates each time)")
	fs.IntVar(&o.tables, "tables", 4, "sysbench --tables")
	fs.IntVar(&o.tableSize, "table-size", 100000, "sysbench --table-size (1000 for a smoke run)")
	fs.BoolVar(&o.prepare, "prepare", true, "drop and create the sysbench tables first (false: reuse existing ones)")
	fs.StringVar(&o.engine, "engine", sandbox.FlavorMariaDB, "sandbox engine: mariadb or mysql (ignored with -primary)")
	fs.StringVar(&o.primary, "primary", "", "host:port of an existing primary to use instead of starting a sandbox")
	fs.StringVar(&o.user, "user", "app", "account sysbench logs in with (also configured in Switchyard)")
	fs.StringVar(&o.password, "password", "app-secret", "password of -user")
	fs.StringVar(&o.rootUser, "root-user", "root", "account that creates the database and reads status counters (with -primary)")
	fs.StringVar(&o.rootPass, "root-password", "sandbox", "password of -root-user (with -primary)")
	fs.StringVar(&o.switchyard, "switchyard", "", "prebuilt switchyard binary (default: go build ./cmd/switchyard)")
	fs.IntVar(&o.poolMaxOpen, "pool-max-open", 0, "Switchyard's pool.max_open (default: the largest -threads + 16)")
	fs.IntVar(&o.digests, "digests", -1, "Switchyard's digests.max, e.g. 0 to turn query digests off (default: Switchyard's)")
	fs.StringVar(&o.releaseIdle, "release-idle", "", "Switchyard's pool.release_idle, e.g. 0s to never release idle sessions' connections (default: Switchyard's)")
	fs.IntVar(&o.replicas, "replicas", -1, "how many replicas Switchyard routes reads to (-1: all; 0: the primary alone, the baselines' path)")
	fs.StringVar(&o.outDir, "out", "bench-results", "directory for the JSON and Markdown results")
	fs.StringVar(&o.sysbench, "sysbench", "sysbench", "sysbench executable")
	fs.BoolVar(&o.verbose, "v", false, "print sandbox progress, server logs and every sysbench command")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.full {
		if !set["threads"] {
			*threads = joinInts(fullThreads)
		}
		if !set["time"] {
			o.duration = fullDuration
		}
		if !set["reps"] {
			o.reps = fullReps
		}
	}

	var errs []error
	var err error
	if o.threads, err = parseInts(*threads); err != nil {
		errs = append(errs, fmt.Errorf("-threads: %w", err))
	}
	if o.workloads, err = parseWorkloads(*tests); err != nil {
		errs = append(errs, fmt.Errorf("-tests: %w", err))
	}
	if o.psModes, err = parsePSModes(*ps); err != nil {
		errs = append(errs, fmt.Errorf("-ps-modes: %w", err))
	}
	if o.targets, err = parseTargets(*targets); err != nil {
		errs = append(errs, fmt.Errorf("-targets: %w", err))
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("-time: %s is not a whole number of seconds >= 1s", o.duration))
	}
	if o.reps < 1 {
		errs = append(errs, fmt.Errorf("-reps: %d is less than 1", o.reps))
	}
	if o.poolMaxOpen < 0 {
		errs = append(errs, fmt.Errorf("-pool-max-open: %d is negative", o.poolMaxOpen))
	}
	if o.tables < 1 || o.tableSize < 1 {
		errs = append(errs, errors.New("-tables and -table-size must be at least 1"))
	}
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	res, err := runBench(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if n := res.failedRuns(); n > 0 {
		fmt.Fprintf(stderr, "bench: %d run(s) had sysbench errors or failed; see above\n", n)
		return 1
	}
	return 0
}
