package sandboxtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// RequireEnv names the environment variable that, set to "1", turns "no server
// binaries" from a skip into a test failure. CI sets it.
const RequireEnv = sandbox.RequireEnv

// EngineEnv names the environment variable choosing the engine of every sandbox
// whose Options leave Engine empty: "mariadb" (the default) or "mysql". The test
// script runs the engine-independent tests once per engine with it.
const EngineEnv = "SWITCHYARD_ENGINE"

// Engine returns the engine EngineEnv chooses: sandbox.FlavorMariaDB when it is unset.
// Tests that start sandboxes without this package's help, or that check what the
// sandbox runs, ask it.
func Engine() string {
	if e := os.Getenv(EngineEnv); e != "" {
		return e
	}
	return sandbox.FlavorMariaDB
}

// withEngine fills in Engine from EngineEnv.
func withEngine(opts sandbox.Options) sandbox.Options {
	if opts.Engine == "" {
		opts.Engine = Engine()
	}
	return opts
}

// shared is the sandbox Main provides for this test binary. The first Require
// starts it.
var shared struct {
	mu      sync.Mutex
	ran     bool            // Main was called
	opts    sandbox.Options // Main's options, for the start
	started bool            // the first Require tried to start it
	sb      *sandbox.Sandbox
	err     error
}

// Main provides one sandbox shared by a test package, runs the tests and tears the
// sandbox down. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(sandbox.Main(m, sandbox.Options{})) }
//
// Tests get the sandbox with Require. Main starts nothing itself: the first Require
// starts the sandbox, so a run of tests that never call it (unit tests, fuzzing,
// benchmarks) starts no server. If it cannot start, Require skips or fails each
// test that needs it with the reason. A SIGINT or SIGTERM closes every sandbox of
// the process (also those from New, and those still starting) and exits with
// status 1.
func Main(m *testing.M, opts sandbox.Options) int {
	flag.Parse() // for testing.Verbose; m.Run would parse them anyway
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case sig := <-sigs:
			// Every sandbox of the process goes: the shared one, the tests' own, and
			// any still starting.
			if err := sandbox.CloseAll(); err != nil {
				fmt.Fprintf(os.Stderr, "sandbox: close: %v\n", err)
			}
			fmt.Fprintf(os.Stderr, "sandbox: %v: sandboxes removed, exiting\n", sig)
			os.Exit(1)
		case <-finished:
		}
	}()

	shared.mu.Lock()
	shared.ran, shared.opts = true, withEngine(opts)
	shared.mu.Unlock()

	code := m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: close: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func closeShared() error {
	shared.mu.Lock()
	sb := shared.sb
	shared.mu.Unlock()
	if sb == nil {
		return nil
	}
	return sb.Close()
}

// Shared returns the sandbox of Main once a Require has started it, or nil: before
// that, if Main was not called, or if the sandbox did not start (Require says why).
func Shared() *sandbox.Sandbox {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.sb
}

// Require returns the sandbox shared by the tests of a package, which Main
// provides; the first call starts it, and calls made meanwhile wait for it. If it
// could not start, Require skips the test when server binaries are missing (failing
// instead if SWITCHYARD_REQUIRE_SANDBOX=1) and fails it for any other reason. With
// -short it skips the test and starts nothing.
func Require(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	skipShort(t)
	sb, err := startShared()
	if err != nil {
		skipOrFail(t, err)
	}
	return sb
}

// errNoMain fails Require in a package whose TestMain does not call Main.
var errNoMain = errors.New("sandbox.Require: no shared sandbox; call sandbox.Main from TestMain or use sandbox.New")

// startShared starts the shared sandbox on first use and returns it, or why it
// is not there. The sandbox outlives the test that started it: Main closes it.
func startShared() (*sandbox.Sandbox, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.ran {
		return nil, errNoMain
	}
	if shared.started {
		return shared.sb, shared.err
	}
	shared.started = true
	shared.sb, shared.err = sandbox.Start(context.Background(), shared.opts)
	switch sb, err := shared.sb, shared.err; {
	case err != nil:
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
	case testing.Verbose():
		fmt.Fprintf(os.Stderr, "sandbox: %s %s, primary and %d replicas in %s, started in %s\n",
			sb.Flavor, sb.Version, len(sb.Replicas), sb.Dir, sb.StartupTime.Round(time.Millisecond))
	}
	return shared.sb, shared.err
}

// New starts a sandbox owned by one test and closes it when the test ends; for tests
// that kill, stop or reconfigure servers. Missing binaries and -short skip or fail as
// in Require.
func New(t testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	skipShort(t)
	sb, err := sandbox.Start(t.Context(), withEngine(opts))
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close sandbox: %v", err)
		}
	})
	t.Logf("sandbox started in %s", sb.StartupTime.Round(time.Millisecond))
	return sb
}

// skipShort skips a test that needs servers when tests run with -short: that
// selects the tests that need no database (unit tests, scripted backends).
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("sandbox: needs database servers; -short runs only the tests that do not")
	}
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, sandbox.ErrNoServer) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("sandbox unavailable (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	t.Fatalf("sandbox: %v", err)
}
