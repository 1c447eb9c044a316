package oracle

import (
	"context"
	"os"
	"testing"

	"github.com/switchyard-db/switchyard/router"
)

// fuzzSchema is the fixture FuzzReadOnlyOracle's statements run against: the
// project's tables, plus a sequence and a stored function that writes, so that
// a read calling them is caught.
var fuzzSchema = []string{
	"CREATE SEQUENCE s1",
	"CREATE FUNCTION f_write() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO t1 (id) VALUES (100); RETURN 1; END",
}

// FuzzReadOnlyOracle classifies random statements; those the router would send
// to a replica run in a read-only transaction on the scratch server, which must
// neither refuse them (error 1792) nor see them end the transaction. The seeds
// (the golden table, the client workload and a sample of the mysql-test suite)
// run in every go test; to fuzz:
//
//	go test ./test/oracle -run '^$' -fuzz FuzzReadOnlyOracle -parallel 1
//
// (each fuzzing process starts a server of its own).
func FuzzReadOnlyOracle(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	o := newOracle(f)
	o.Progress = nil
	ctx := context.Background()
	res := &scriptResult{readErrors: map[uint16]int{}}
	var s *session
	open := func(t testing.TB) {
		var err error
		if s, err = o.openSession(ctx, "fuzz", dbPrefix+"fuzz", "", res); err != nil {
			t.Fatal(err)
		}
		schema, err := os.ReadFile("testdata/project_schema.sql")
		if err != nil {
			t.Fatal(err)
		}
		setup, err := ExtractSQLScript(schema)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range setup {
			if me := s.run(ctx, st.SQL); me != nil {
				t.Fatalf("fixture: %s: %v", st.SQL, me)
			}
		}
		for _, q := range fuzzSchema {
			if me := s.run(ctx, q); me != nil {
				t.Fatalf("fixture: %s: %v", q, me)
			}
		}
	}
	open(f)
	f.Cleanup(func() {
		if err := s.close(); err != nil {
			f.Error(err)
		}
	})

	f.Fuzz(func(t *testing.T, q string) {
		c := router.ClassifyMode(q, s.mode)
		if c.Kind != router.KindRead || neverRun(q) != "" {
			return
		}
		res.disagreements = res.disagreements[:0]
		if err := s.read(ctx, 1, q, c); err != nil {
			// The connection broke (a statement over the client-side deadline):
			// that says nothing about the statement. Start again.
			t.Logf("%q: %v; reconnecting", q, err)
			s.close()
			open(t)
			return
		}
		for _, d := range res.disagreements {
			t.Errorf("ClassifyMode(%q) = %v, but %s", q, c, d.Why)
		}
	})
}

// fuzzSeeds returns the statements of the golden table, the client workload and,
// when the mysql-test suite is installed, of a small fixed sample of it.
func fuzzSeeds(f *testing.F) []string {
	var out []string
	add := func(l Loader) {
		s, err := l.Load()
		if err != nil {
			f.Fatalf("%s: %v", l.Name, err)
		}
		for _, st := range s.Statements {
			out = append(out, st.SQL)
		}
	}
	add(GoldenLoader("../../router/testdata/classify.golden", "classify.golden"))
	add(SQLScriptLoader("../testdata/workload.sql", "workload.sql", ""))
	if dir, err := FindSuite(SuiteDirs); err == nil {
		files, err := SuiteFiles(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, rel := range Sample(files, 3) {
			if s, err := MysqltestLoader(dir, rel).Load(); err == nil {
				for _, st := range s.Statements[:min(len(s.Statements), 40)] {
					out = append(out, st.SQL)
				}
			}
		}
	}
	return out
}
