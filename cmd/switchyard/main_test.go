package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/leaktest"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// The operator-side tests: admin API units (admin_test.go) and end-to-end
// tests of the built binary in front of the replication sandbox (metrics,
// reload, limits, shutdown). Run them with
//
//	go test ./cmd/switchyard/ -count=1
//
// The end-to-end tests skip when MariaDB is not installed, unless
// SWITCHYARD_REQUIRE_SANDBOX=1.

// Accounts on the sandbox; Switchyard's configs list them.
var (
	appAccount   = sandbox.User{Name: "app", Password: "app-secret-ops"}
	otherAccount = sandbox.User{Name: "other", Password: "other-secret-ops"}
)

// testVersion is stamped into the test binary; switchyard_build_info shows it.
const testVersion = "ops-test-1"

// binary is the switchyard executable TestMain builds.
var binary string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-ops-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ops tests: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binary,
		"github.com/switchyard-db/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "ops tests: build switchyard: %v\n%s", err, out)
		return 1
	}
	code := sandboxtest.Main(m, sandbox.Options{
		Replicas: 1,
		Users:    []sandbox.User{appAccount, otherAccount},
	})
	// Every proxy, monitor and admin server the tests started in this
	// process was stopped: nothing of ours may still run.
	if code == 0 {
		if left := leaktest.Leaked("", 5*time.Second); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "ops tests: %d goroutines outlived the tests:\n\n%s\n", len(left), strings.Join(left, "\n\n"))
			code = 1
		}
	}
	return code
}
