package sandbox

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
)

// RequireEnv names the environment variable that, set to "1", turns "no server
// binaries" from a skip into a test failure. CI sets it.
const RequireEnv = "SWITCHYARD_REQUIRE_SANDBOX"

// shared is the sandbox Main started for this test binary.
var shared struct {
	mu  sync.Mutex
	ran bool // Main was called
	sb  *Sandbox
	err error
}

// Main starts one sandbox shared by a test package, runs the tests and tears the sandbox
// down. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(sandbox.Main(m, sandbox.Options{})) }
//
// Tests get the sandbox with Require. If it cannot start, the tests still run and
// Require skips or fails each one with the reason. A SIGINT or SIGTERM closes every
// sandbox of the process (also those from New, and those still starting) and exits
// with status 1.
func Main(m *testing.M, opts Options) int {
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
			if err := closeAll(); err != nil {
				fmt.Fprintf(os.Stderr, "sandbox: close: %v\n", err)
			}
			fmt.Fprintf(os.Stderr, "sandbox: %v: sandboxes removed, exiting\n", sig)
			os.Exit(1)
		case <-finished:
		}
	}()

	sb, err := Start(context.Background(), opts)
	shared.mu.Lock()
	shared.ran, shared.sb, shared.err = true, sb, err
	shared.mu.Unlock()
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
	case testing.Verbose():
		fmt.Fprintf(os.Stderr, "sandbox: %s %s, primary and %d replicas in %s, started in %s\n",
			sb.Flavor, sb.Version, len(sb.Replicas), sb.Dir, sb.StartupTime.Round(time.Millisecond))
	}

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

// Shared returns the sandbox Main started, or nil if Main was not called or the
// sandbox did not start (Require says why).
func Shared() *Sandbox {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.sb
}

// Require returns the shared sandbox started by Main. If it could not start, Require
// skips the test when server binaries are missing (failing instead if
// SWITCHYARD_REQUIRE_SANDBOX=1) and fails it for any other reason.
func Require(t testing.TB) *Sandbox {
	t.Helper()
	shared.mu.Lock()
	ran, sb, err := shared.ran, shared.sb, shared.err
	shared.mu.Unlock()
	if !ran {
		t.Fatal("sandbox.Require: no shared sandbox; call sandbox.Main from TestMain or use sandbox.New")
	}
	if sb == nil {
		skipOrFail(t, err)
	}
	return sb
}

// New starts a sandbox owned by one test and closes it when the test ends; for tests
// that kill, stop or reconfigure servers. Missing binaries skip or fail as in Require.
func New(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	sb, err := Start(t.Context(), opts)
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

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoServer) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("sandbox unavailable (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	t.Fatalf("sandbox: %v", err)
}
