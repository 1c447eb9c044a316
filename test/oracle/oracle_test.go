package oracle

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/router"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

var (
	fullRun   = flag.Bool("oracle.full", false, "run TestOracleFull: every .test file of the mysql-test suite (tens of minutes)")
	suiteDir  = flag.String("oracle.suite", "", "the mysql-test directory (default: the first of SuiteDirs that exists)")
	traceFile = flag.String("oracle.trace", "", "write one line per statement to this file")
	workers   = flag.Int("oracle.workers", 0, "scripts run at once (default: twice GOMAXPROCS)")
	samplePer = flag.Uint("oracle.sample", samplePerMille, "TestOracleSample's share of the mysql-test files, per mille")
)

// samplePerMille is the share of mysql-test files TestOracleSample runs: 1 in
// 20, 432 of the 8,262 files of MariaDB 10.11's suite (24,640 statements, 7,752
// of them reads), in 40 to 50 s on 2 busy cores (load average 7 to 8).
const samplePerMille = 50

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// A read the router lets through may try to write a file (SELECT ... INTO
	// OUTFILE) or read one (LOAD_FILE): the server may only touch this directory.
	files, err := os.MkdirTemp("", "switchyard-oracle-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
		return 1
	}
	defer os.RemoveAll(files)
	return sandboxtest.Main(m, sandbox.Options{
		NoReplicas: true,
		ExtraConfig: []string{
			"secure_file_priv=" + files,
			"local_infile=0",
			// A lone server needs no binary log; without it, as in most of
			// mysql-test, stored functions need no DETERMINISTIC to be created.
			"skip-log-bin",
		},
	})
}

// newOracle returns an oracle on the shared sandbox's primary.
func newOracle(t testing.TB) *Oracle {
	t.Helper()
	sb := sandboxtest.Require(t)
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	o := &Oracle{DB: db, Workers: *workers}
	if testing.Verbose() {
		o.Progress = os.Stderr
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		o.Trace = f
	}
	return o
}

// suite returns the mysql-test directory and its .test files. A missing suite
// skips the test, or fails it when SWITCHYARD_REQUIRE_SANDBOX=1.
func suite(t testing.TB) (string, []string) {
	t.Helper()
	dir := *suiteDir
	if dir == "" {
		var err error
		if dir, err = FindSuite(SuiteDirs); err != nil {
			if errors.Is(err, ErrNoSuite) && os.Getenv(sandbox.RequireEnv) != "1" {
				t.Skipf("%v (set %s=1 to fail instead)", err, sandbox.RequireEnv)
			}
			t.Fatal(err)
		}
	}
	files, err := SuiteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .test files in %s", dir)
	}
	return dir, files
}

// check logs the report and fails the test on every disagreement.
func check(t *testing.T, rep *Report) {
	t.Helper()
	t.Log(rep.Summary())
	for _, r := range rep.SkipReasons {
		t.Logf("skipped script: %s", r)
	}
	for _, r := range rep.AbortReasons {
		t.Logf("aborted script: %s", r)
	}
	for _, f := range rep.Held {
		t.Errorf("a read the oracle never sends: %v", f)
	}
	for _, f := range rep.Disagreements {
		t.Errorf("disagreement: %v", f)
	}
	for _, f := range rep.ViewWrites {
		t.Logf("a read of a view that writes (the replica's read-only session refuses it; it runs on the primary): %v", f)
	}
}

// TestOracleProject runs the project's own statements: the classifier's golden
// table and the workload of the client tests. None may be skipped or cut short.
func TestOracleProject(t *testing.T) {
	o := newOracle(t)
	rep := o.Run(t.Context(), []Loader{
		withSetup(t, "testdata/project_schema.sql",
			GoldenLoader("../../router/testdata/classify.golden", "router/testdata/classify.golden")),
		SQLScriptLoader("../testdata/workload.sql", "test/testdata/workload.sql", "@@DB@@"),
	})
	check(t, rep)
	if rep.Skipped+rep.Aborted > 0 {
		t.Errorf("%d scripts skipped and %d cut short; want none", rep.Skipped, rep.Aborted)
	}
	if rep.ReadsExecuted < 200 {
		t.Errorf("the server ran %d of the project's reads; want at least 200", rep.ReadsExecuted)
	}
}

// withSetup returns l with the statements of the SQL script at path before its
// own. They are classified and judged like the rest.
func withSetup(t *testing.T, path string, l Loader) Loader {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := ExtractSQLScript(src)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	load := l.Load
	l.Load = func() (Script, error) {
		s, err := load()
		s.Statements = append(setup[:len(setup):len(setup)], s.Statements...)
		return s, err
	}
	return l
}

// TestOracleSample runs a fixed sample of MariaDB's mysql-test suite.
func TestOracleSample(t *testing.T) {
	dir, files := suite(t)
	o := newOracle(t)
	sample := Sample(files, uint32(*samplePer))
	loaders := make([]Loader, len(sample))
	for i, f := range sample {
		loaders[i] = MysqltestLoader(dir, f)
	}
	rep := o.Run(t.Context(), loaders)
	check(t, rep)
	if rep.ReadsExecuted == 0 {
		t.Error("the server ran none of the sample's reads")
	}
}

// TestOracleFull runs every .test file of the suite; it needs -oracle.full:
//
//	go test ./test/oracle -run TestOracleFull -oracle.full -timeout 90m -v
func TestOracleFull(t *testing.T) {
	if !*fullRun {
		t.Skip("the whole mysql-test suite runs with -oracle.full (make oracle)")
	}
	dir, files := suite(t)
	o := newOracle(t)
	loaders := make([]Loader, len(files))
	for i, f := range files {
		loaders[i] = MysqltestLoader(dir, f)
	}
	check(t, o.Run(t.Context(), loaders))
}

// TestOracleCatchesWrites checks the oracle itself: given a classifier that calls
// everything a read, it must report the writes (refused, or committing the
// read-only transaction) and let the reads through.
func TestOracleCatchesWrites(t *testing.T) {
	o := newOracle(t)
	o.Classify = func(string, router.Mode) router.Class { return router.Class{Kind: router.KindRead} }
	script := Script{Name: "lying.sql", Statements: []Statement{
		{Line: 1, SQL: "CREATE TABLE t (a INT)"},         // DDL: implicit commit
		{Line: 2, SQL: "INSERT INTO t VALUES (1)"},       // refused
		{Line: 3, SQL: "SELECT * FROM t"},                // a read
		{Line: 4, SQL: "SELECT * FROM no_such_table"},    // fails, proves nothing
		{Line: 5, SQL: "SET GLOBAL max_connections = 7"}, // never sent
		{Line: 6, SQL: "DO 1"},                           // a read
	}}
	rep := o.Run(t.Context(), []Loader{{Name: script.Name, Load: func() (Script, error) { return script, nil }}})
	t.Log(rep.Summary())
	var lines []int
	for _, f := range rep.Disagreements {
		lines = append(lines, f.Line)
	}
	if fmt.Sprint(lines) != "[1 2]" {
		t.Errorf("disagreements on lines %v, want [1 2]: %v", lines, rep.Disagreements)
	}
	if rep.Reads != 6 || rep.ReadsExecuted != 2 || rep.ReadsFailed != 1 || rep.ReadsHeld != 1 {
		t.Errorf("reads %d, executed %d, failed %d, held %d; want 6, 2, 1, 1",
			rep.Reads, rep.ReadsExecuted, rep.ReadsFailed, rep.ReadsHeld)
	}
}
