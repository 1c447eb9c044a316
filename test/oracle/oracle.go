// Package oracle asks a real server whether the statements the router sends to
// replicas are reads. The golden table in router/testdata says what the
// classifier answers; it agrees with the classifier by construction, since it is
// regenerated from it. The oracle is a judge that did not come from us.
//
// For every script of a corpus (MariaDB's mysql-test suite, the project's own
// statements) the oracle makes a fresh database on a scratch server and runs the
// script's statements in order on one connection, as root:
//
//   - a statement router.ClassifyMode calls a read (router.KindRead: the proxy may
//     send it to a replica) runs inside START TRANSACTION READ ONLY ... ROLLBACK.
//     If the server refuses it with error 1792 (ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION)
//     it writes data; if the transaction is no longer open afterwards, the
//     statement committed it implicitly, as DDL and other non-reads do (MariaDB
//     runs DDL in a read-only transaction instead of refusing it). Either is a
//     disagreement: the classifier called a write a read.
//   - any other statement runs only if it builds the script's own data (see
//     setupAllowed), so that later reads find their tables; the rest is skipped.
//
// Each session has max_statement_time and lock wait limits, and each statement a
// client-side deadline. Statements that act on the whole server are never sent
// (see neverRun), not even when the router calls them reads: those are reported
// as held back.
package oracle

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-db/switchyard/router"
)

// Script is the statements of one file, run in order in a database of its own.
type Script struct {
	// Name identifies the file in reports, such as "main/select.test".
	Name       string
	Statements []Statement
	// LeftOut counts statements the extractor did not return (see Extracted).
	LeftOut int
	// Charset is the character set of the script's database and session (SET
	// NAMES) before its first statement. Empty means utf8mb4; mysqltest's is
	// latin1.
	Charset string
	// Placeholder, if not empty, is replaced by the script's database name in
	// every statement (workload.sql says @@DB@@).
	Placeholder string
}

// A Loader reads and splits one script. Run calls it in the worker that runs the
// script, so a corpus is never held in memory whole. An error skips the script.
type Loader struct {
	Name string
	Load func() (Script, error)
}

// Oracle runs scripts on a scratch server. The zero value of every field but DB
// is usable.
type Oracle struct {
	// DB is a root connection pool to the scratch server, without
	// multiStatements or interpolateParams. Each script takes one connection of
	// its own and closes it when done, so no session state outlives a script.
	DB *sql.DB
	// Workers is how many scripts run at once. Zero means twice
	// runtime.GOMAXPROCS(0): a script spends about half its time waiting for
	// the server's answers.
	Workers int
	// ServerTimeout is the sessions' max_statement_time and lock wait timeouts.
	// Zero means 2 s.
	ServerTimeout time.Duration
	// StatementTimeout is the client-side deadline of each statement; when it
	// passes, the connection is closed and the rest of the script skipped. Zero
	// means 10 s.
	StatementTimeout time.Duration
	// Progress, if not nil, receives a line every 250 scripts.
	Progress io.Writer
	// Classify is the classifier under test. Nil means router.ClassifyMode; tests
	// of the oracle itself give it a wrong one.
	Classify func(sql string, mode router.Mode) router.Class
	// Trace, if not nil, receives one line per statement: where it is, what the
	// oracle did with it and the server's error.
	Trace io.Writer
}

// dbPrefix starts the name of every script's database.
const dbPrefix = "oracle_"

// Finding is a statement the oracle reports.
type Finding struct {
	File  string
	Line  int
	SQL   string
	Class router.Class
	// Why says what the server did, or why the statement was not sent.
	Why string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s\n\tClassifyMode = %v: %s", f.File, f.Line, shorten(f.SQL, 600), f.Class, f.Why)
}

// shorten quotes s, cut to about n bytes.
func shorten(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%q...(%d bytes)", s[:n], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Report counts what a run did.
type Report struct {
	Scripts int // scripts given to Run
	// Skipped are scripts whose Load failed, with the reasons in SkipReasons.
	Skipped     int
	SkipReasons []string
	// Aborted are scripts stopped before their end because the connection broke
	// (a client-side timeout, a statement that ended the session); Statements of
	// theirs not reached are counted in NotReached.
	Aborted       int
	AbortReasons  []string
	Statements    int // statements of the scripts that loaded
	LeftOut       int // statements the extractors left out
	NotReached    int
	Reads         int // statements classified as reads
	ReadsExecuted int // reads the server ran in a read-only transaction
	ReadsFailed   int // reads the server refused for other reasons (missing tables, syntax, ...)
	ReadsHeld     int // reads the oracle never sends (see Held)
	SetupRun      int // other statements run to build the scripts' data
	SetupFailed   int // ... of which failed
	SetupSkipped  int // other statements not run
	// ReadErrors counts ReadsFailed by server error number (0: not a server error).
	ReadErrors    map[uint16]int
	Disagreements []Finding
	Held          []Finding
	// ViewWrites are reads the server refused because a view they read
	// writes: the statement's text cannot show it, and the proxy's
	// read-only replica sessions catch it at run time. They are reported,
	// not failed.
	ViewWrites []Finding
	Elapsed    time.Duration
}

// Summary is the report in one line.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oracle: %d scripts (%d skipped, %d aborted), %d statements (%d left out by the extractor, %d not reached); ",
		r.Scripts, r.Skipped, r.Aborted, r.Statements, r.LeftOut, r.NotReached)
	fmt.Fprintf(&b, "%d classified as reads: %d executed by the server in a read-only transaction, %d failed for other reasons%s, %d held back; ",
		r.Reads, r.ReadsExecuted, r.ReadsFailed, r.topErrors(6), r.ReadsHeld)
	fmt.Fprintf(&b, "setup: %d run (%d failed), %d skipped; %d disagreements; %d reads of writing views (caught at run time); %s",
		r.SetupRun, r.SetupFailed, r.SetupSkipped, len(r.Disagreements), len(r.ViewWrites), r.Elapsed.Round(time.Second))
	return b.String()
}

// topErrors lists the n most frequent read errors: " (1146×120 1064×33 ...)".
func (r *Report) topErrors(n int) string {
	if len(r.ReadErrors) == 0 {
		return ""
	}
	type ec struct {
		num   uint16
		count int
	}
	var all []ec
	for k, v := range r.ReadErrors {
		all = append(all, ec{k, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].count != all[j].count {
			return all[i].count > all[j].count
		}
		return all[i].num < all[j].num
	})
	var parts []string
	for i, e := range all {
		if i == n {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%d×%d", e.num, e.count))
	}
	return " (errors " + strings.Join(parts, " ") + ")"
}

func (r *Report) add(s *scriptResult) {
	r.Statements += s.statements
	r.LeftOut += s.leftOut
	r.NotReached += s.notReached
	r.Reads += s.reads
	r.ReadsExecuted += s.readsExecuted
	r.ReadsFailed += s.readsFailed
	r.ReadsHeld += len(s.held)
	r.SetupRun += s.setupRun
	r.SetupFailed += s.setupFailed
	r.SetupSkipped += s.setupSkipped
	for k, v := range s.readErrors {
		r.ReadErrors[k] += v
	}
	r.Disagreements = append(r.Disagreements, s.disagreements...)
	r.Held = append(r.Held, s.held...)
	r.ViewWrites = append(r.ViewWrites, s.viewWrites...)
	if s.skip != "" {
		r.Skipped++
		r.SkipReasons = append(r.SkipReasons, s.skip)
	}
	if s.abort != "" {
		r.Aborted++
		r.AbortReasons = append(r.AbortReasons, s.abort)
	}
}

// Run runs every script and returns what happened. It stops early, with a
// partial report, when ctx ends.
func (o *Oracle) Run(ctx context.Context, scripts []Loader) *Report {
	began := time.Now()
	rep := &Report{Scripts: len(scripts), ReadErrors: map[uint16]int{}}
	workers := o.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	jobs := make(chan int)
	var mu sync.Mutex // guards rep and done
	done := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				res := o.runScript(ctx, i, scripts[i])
				mu.Lock()
				rep.add(res)
				done++
				if o.Progress != nil && done%250 == 0 {
					fmt.Fprintf(o.Progress, "oracle: %d/%d scripts, %s, %d reads, %d disagreements\n",
						done, len(scripts), time.Since(began).Round(time.Second), rep.Reads, len(rep.Disagreements))
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range scripts {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	byPlace := func(f []Finding) func(i, j int) bool {
		return func(i, j int) bool {
			if f[i].File != f[j].File {
				return f[i].File < f[j].File
			}
			return f[i].Line < f[j].Line
		}
	}
	sort.Slice(rep.Disagreements, byPlace(rep.Disagreements))
	sort.Slice(rep.Held, byPlace(rep.Held))
	sort.Strings(rep.SkipReasons)
	sort.Strings(rep.AbortReasons)
	rep.Elapsed = time.Since(began)
	return rep
}

func (o *Oracle) classify(sql string, mode router.Mode) router.Class {
	if o.Classify != nil {
		return o.Classify(sql, mode)
	}
	return router.ClassifyMode(sql, mode)
}

func (o *Oracle) serverTimeout() time.Duration {
	if o.ServerTimeout <= 0 {
		return 2 * time.Second
	}
	return o.ServerTimeout
}

func (o *Oracle) statementTimeout() time.Duration {
	if o.StatementTimeout <= 0 {
		return 10 * time.Second
	}
	return o.StatementTimeout
}
