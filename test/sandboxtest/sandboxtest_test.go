package sandboxtest

import (
	"errors"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// fakeTB records Skip and Fatal instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

type stopped struct{}

func (f *fakeTB) Helper()                 {}
func (f *fakeTB) Skipf(string, ...any)    { f.skipped = true; panic(stopped{}) }
func (f *fakeTB) Fatalf(string, ...any)   { f.failed = true; panic(stopped{}) }
func (f *fakeTB) run(fn func(testing.TB)) { defer func() { recover() }(); fn(f) }

func TestSkipOrFail(t *testing.T) {
	noServer := errors.Join(sandbox.ErrNoServer, errors.New("no mariadbd"))
	for _, tc := range []struct {
		err                error
		require            string
		wantSkip, wantFail bool
	}{
		{noServer, "", true, false},
		{noServer, "1", false, true},
		{errors.New("port clash"), "", false, true},
	} {
		t.Setenv(RequireEnv, tc.require)
		f := &fakeTB{}
		f.run(func(tb testing.TB) { skipOrFail(tb, tc.err) })
		if f.skipped != tc.wantSkip || f.failed != tc.wantFail {
			t.Errorf("skipOrFail(%v) with %s=%q: skipped %v failed %v, want %v %v",
				tc.err, RequireEnv, tc.require, f.skipped, f.failed, tc.wantSkip, tc.wantFail)
		}
	}
}

func TestEngine(t *testing.T) {
	for env, want := range map[string]string{"": sandbox.FlavorMariaDB, "mysql": sandbox.FlavorMySQL, "mariadb": sandbox.FlavorMariaDB} {
		t.Setenv(EngineEnv, env)
		if got := Engine(); got != want {
			t.Errorf("Engine() with %s=%q = %q, want %q", EngineEnv, env, got, want)
		}
		if got := withEngine(sandbox.Options{}).Engine; got != want {
			t.Errorf("withEngine with %s=%q: Engine %q, want %q", EngineEnv, env, got, want)
		}
		if got := withEngine(sandbox.Options{Engine: "mysql"}).Engine; got != "mysql" {
			t.Errorf("withEngine kept no explicit engine: %q", got)
		}
	}
}
