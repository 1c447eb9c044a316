package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// env is what the runs need: the servers, the targets' addresses and processes.
type env struct {
	sysbench sysbench
	servers  []backendServer  // primary first
	sb       *sandbox.Sandbox // nil with -primary
	relay    *child
	proxy    *child
	meta     meta
}

// addr returns where sysbench connects for t.
func (e *env) addr(t target) string {
	switch t {
	case targetRelay:
		return e.relay.Addr
	case targetSwitchyard:
		return e.proxy.Addr
	}
	return e.servers[0].Addr
}

// proc returns the measured process of t, or nil for direct.
func (e *env) proc(t target) *child {
	switch t {
	case targetRelay:
		return e.relay
	case targetSwitchyard:
		return e.proxy
	}
	return nil
}

// settle waits for the replicas to apply what the last run wrote, so a run does not
// start while replicas still burn CPU on the previous one (and a lagging replica does
// not change Switchyard's routing).
func (e *env) settle(ctx context.Context) error {
	if e.sb == nil || len(e.sb.Replicas) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return e.sb.WaitReplicated(ctx)
}

// runBench sets everything up, runs the plan and reports.
func runBench(ctx context.Context, o options, stdout, stderr io.Writer) (*results, error) {
	bin, err := findSysbench(o.sysbench)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchyard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	e := &env{sysbench: sysbench{Bin: bin, User: o.user, Password: o.password, DB: sysbenchDB,
		Tables: o.tables, TableSize: o.tableSize}}
	if o.verbose {
		e.sysbench.Verbose = stderr
	}
	cases := matrix(o.workloads, o.psModes, o.threads)
	maxThreads := slices.Max(o.threads)
	e.meta = newMeta(ctx, o, bin)

	if o.primary == "" {
		fmt.Fprintf(stdout, "starting the %s replication sandbox (primary and 2 replicas)...\n", o.engine)
		opts := sandbox.Options{Engine: o.engine, Replicas: 2, BufferPool: "512M",
			ExtraConfig: []string{fmt.Sprintf("max_connections=%d", max(1000, 3*maxThreads+100)),
				// sysbench prepares about 64 statements per thread: 256
				// threads reach the default limit (16382) on their own.
				"max_prepared_stmt_count=1048576"}}
		if o.verbose {
			opts.Log = stderr
		}
		sb, err := sandbox.Start(ctx, opts)
		if err != nil {
			return nil, err
		}
		defer sb.Close()
		e.sb = sb
		e.meta.Server = sb.Flavor + " " + sb.Version
		for _, srv := range sb.Servers() {
			db, err := sb.RootDB(srv)
			if err != nil {
				return nil, err
			}
			e.servers = append(e.servers, backendServer{Name: srv.Name, Role: srv.Role, Addr: srv.Addr(), db: db})
		}
	} else {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = o.rootUser, o.rootPass, "tcp", o.primary
		c.Timeout = 10 * time.Second
		db, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&e.meta.Server); err != nil {
			return nil, fmt.Errorf("connect to %s as %s: %w", o.primary, o.rootUser, err)
		}
		e.servers = []backendServer{{Name: "primary", Role: "primary", Addr: o.primary, db: db}}
	}

	if o.prepare {
		fmt.Fprintf(stdout, "preparing %d sysbench tables of %d rows...\n", o.tables, o.tableSize)
		t := time.Now()
		if _, err := e.servers[0].db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+sysbenchDB); err != nil {
			return nil, fmt.Errorf("create database %s: %w", sysbenchDB, err)
		}
		if err := e.sysbench.Prepare(ctx, e.servers[0].Addr); err != nil {
			return nil, err
		}
		if err := e.settle(ctx); err != nil {
			return nil, fmt.Errorf("wait for replicas after prepare: %w", err)
		}
		fmt.Fprintf(stdout, "prepared in %s\n", time.Since(t).Round(time.Second))
	}

	if slices.Contains(o.targets, targetRelay) {
		if e.relay, err = startRelay(ctx, e.servers[0].Addr, filepath.Join(dir, "relay.log")); err != nil {
			return nil, err
		}
		defer e.relay.Stop()
	}
	if slices.Contains(o.targets, targetSwitchyard) {
		syBin := o.switchyard
		if syBin == "" {
			fmt.Fprintf(stdout, "building switchyard...\n")
			if syBin, err = buildSwitchyard(ctx, dir); err != nil {
				return nil, err
			}
		}
		backends := e.servers
		if o.replicas >= 0 && o.replicas+1 < len(backends) {
			backends = backends[:o.replicas+1]
		}
		setup := switchyardSetup{User: o.user, Password: o.password, Backends: backends,
			MaxThreads: maxThreads, PoolMaxOpen: o.poolMaxOpen, ReleaseIdle: o.releaseIdle}
		if o.digests >= 0 {
			setup.Digests = &o.digests
		}
		if e.sb != nil {
			setup.MonitorUser, setup.MonitorPassword = e.sb.Opts.Monitor.Name, e.sb.Opts.Monitor.Password
		}
		if e.proxy, err = startSwitchyard(ctx, syBin, dir, setup); err != nil {
			return nil, err
		}
		defer e.proxy.Stop()
	}

	steps := plan(cases, o.targets, o.reps)
	est := time.Duration(len(steps)) * (o.duration + 2*time.Second)
	fmt.Fprintf(stdout, "running %d sysbench runs of %s (%d cases x %d targets x %d reps), about %s\n",
		len(steps), o.duration, len(cases), len(o.targets), o.reps, est.Round(time.Minute))
	res := &results{Meta: e.meta, Started: time.Now()}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("interrupted after %d of %d runs: %w", i, len(steps), err)
		}
		r := e.runStep(ctx, st, o.duration)
		res.Runs = append(res.Runs, r)
		fmt.Fprintf(stdout, "[%*d/%d] %s\n", len(fmt.Sprint(len(steps))), i+1, len(steps), r.line())
	}
	res.Finished = time.Now()
	res.Summary = summarize(cases, o.targets, res.Runs)
	res.Targets = checkTargets(res.Summary, o.poolMaxOpen)

	fmt.Fprintln(stdout)
	res.writeText(stdout)
	if err := res.save(o.outDir, stdout); err != nil {
		return res, err
	}
	return res, nil
}

// runStep runs one sysbench run and gathers the measurements around it.
func (e *env) runStep(ctx context.Context, st step, d time.Duration) runResult {
	r := runResult{Rep: st.Rep, Case: st.Case, Target: st.Target, Started: time.Now()}
	fail := func(err error) runResult {
		r.Error = err.Error()
		return r
	}
	if err := e.settle(ctx); err != nil {
		return fail(err)
	}
	p := e.proc(st.Target)
	if p != nil {
		if exited, err := p.Exited(); exited {
			return fail(fmt.Errorf("%s is not running (%v); log:\n%s", p.Name, err, p.LogTail(10)))
		}
	}
	before, err := snapshot(ctx, e.servers)
	if err != nil {
		return fail(err)
	}
	var cpu0 time.Duration
	var logOffset int64
	if p != nil {
		r.PeakRSSWholeLife = !resetPeakRSS(p.Pid())
		if cpu0, err = cpuTime(p.Pid()); err != nil {
			return fail(err)
		}
		logOffset = p.LogSize()
	}

	sb, _, runErr := e.sysbench.Run(ctx, st.Case, e.addr(st.Target), d)
	r.Sysbench = sb

	if p != nil {
		cpu1, err := cpuTime(p.Pid())
		rss, rerr := peakRSS(p.Pid())
		if err := errors.Join(err, rerr); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("%s: %w", p.Name, err))
		} else {
			r.CPUSeconds = (cpu1 - cpu0).Seconds()
			r.PeakRSS = rss
			if sb.Queries > 0 {
				r.CPUPerQueryUs = r.CPUSeconds * 1e6 / float64(sb.Queries)
			}
		}
		r.ProxyLog = p.LogSince(logOffset, 10)
	}
	after, err := snapshot(ctx, e.servers)
	if err != nil {
		runErr = errors.Join(runErr, err)
	} else {
		r.Backends = deltas(e.servers, before, after)
	}
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return r
}
