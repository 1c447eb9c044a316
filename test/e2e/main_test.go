// Package e2e tests the production stack in compose.yaml end to end: HTTPS
// through the load balancers' virtual IP, reads and writes through Switchyard
// to the MariaDB primary and replicas, the firewalls between the layers,
// load-balancer failover, replica loss, a rolling restart of the application
// servers under load, Prometheus' series, and every query of the Grafana
// dashboards and recording rules (dashboard_test.go).
//
// TestMain prepares Docker (deploy/scripts/docker-setup.sh), builds the
// switchyard binary into deploy/build, runs `docker compose up -d --wait
// --build`, runs the tests and always ends with `docker compose down -v`.
// The tests skip, saying why, when Docker cannot be used, unless
// SWITCHYARD_REQUIRE_DOCKER=1 (set in CI), which turns the skip into a
// failure. Other knobs:
//
//	SWITCHYARD_E2E_KEEP=1    leave the stack running after the tests
//	SWITCHYARD_E2E_SETUP=0   do not run docker-setup.sh
//
// The stack uses fixed private subnets (172.30.0.0/24 public, 172.30.1.0/24
// front, 172.30.2.0/24 data), so it cannot run twice on one machine, and the
// tests bring down a stack started by hand from the same compose.yaml.
// Test traffic goes only to the stack's own containers.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	// repoRoot is the directory that holds go.mod and compose.yaml.
	repoRoot string
	// skipReason is set when Docker cannot be used: every test skips with it.
	skipReason string
	// setupErr is set when the stack could not be brought up: every test fails with it.
	setupErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	repoRoot, err = findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if testing.Short() {
		skipReason = "end-to-end tests do not run with -short"
		return m.Run()
	}
	if reason := prepareDocker(); reason != "" {
		if os.Getenv("SWITCHYARD_REQUIRE_DOCKER") == "1" {
			setupErr = fmt.Errorf("docker is required (SWITCHYARD_REQUIRE_DOCKER=1) but cannot be used: %s", reason)
		} else {
			skipReason = "docker cannot be used (set SWITCHYARD_REQUIRE_DOCKER=1 to fail instead): " + reason
		}
		return m.Run()
	}
	if os.Getenv("SWITCHYARD_E2E_KEEP") != "1" {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if out, err := compose(ctx, "down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: docker compose down: %v\n%s\n", err, out)
			}
		}()
	}
	setupErr = startStack()
	if setupErr == nil {
		setupErr = loadStackFacts()
	}
	return m.Run()
}

// findRepoRoot walks up from the working directory to the module root.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("compose.yaml and go.mod not found above the working directory")
		}
		dir = parent
	}
}

// prepareDocker runs the idempotent bootstrap script and returns why Docker
// cannot be used, or "" when `docker compose` is ready.
func prepareDocker() string {
	if os.Getenv("SWITCHYARD_E2E_SETUP") != "0" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		start := time.Now()
		fmt.Println("e2e: preparing Docker (deploy/scripts/docker-setup.sh: seconds when Docker is set up, minutes when not)")
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "deploy/scripts/docker-setup.sh"))
		cmd.Dir = repoRoot
		// Its steps print as they start (installs, dockerd, debootstrap,
		// image import, the Compose build), so show them as they come.
		var out bytes.Buffer
		cmd.Stdout = io.MultiWriter(&out, os.Stdout)
		cmd.Stderr = cmd.Stdout
		if err := cmd.Run(); err != nil {
			return fmt.Sprintf("deploy/scripts/docker-setup.sh: %v\n%s", err, tail(out.String(), 30))
		}
		fmt.Printf("e2e: docker-setup.sh took %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version").CombinedOutput(); err != nil {
		return fmt.Sprintf("docker version: %v\n%s", err, tail(string(out), 10))
	}
	if out, err := compose(ctx, "version"); err != nil {
		return fmt.Sprintf("docker compose version: %v\n%s", err, tail(out, 10))
	}
	return ""
}

// startStack builds Switchyard and brings the whole stack up.
func startStack() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	fmt.Println("e2e: building switchyard into deploy/build")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", "deploy/build/switchyard", "./cmd/switchyard")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build switchyard: %v\n%s", err, out)
	}
	// Leftovers of an interrupted run (same fixed subnets) would make up fail.
	if out, err := compose(ctx, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
		return fmt.Errorf("docker compose down (cleanup): %v\n%s", err, out)
	}
	start := time.Now()
	fmt.Println("e2e: docker compose up -d --wait --build (under a minute with the images cached, a few minutes when they are built)")
	out, err := compose(ctx, "up", "-d", "--wait", "--wait-timeout", "600", "--build")
	if err != nil {
		ps, _ := compose(ctx, "ps", "-a")
		logs, _ := compose(ctx, "logs", "--tail", "30")
		return fmt.Errorf("docker compose up -d --wait --build: %v\n%s\n%s\n%s", err, tail(out, 40), ps, tail(logs, 200))
	}
	fmt.Printf("e2e: docker compose up -d --wait --build took %s\n", time.Since(start).Round(100*time.Millisecond))
	// Rebuilt images leave their predecessors dangling: drop the stack's own.
	if out, err := exec.CommandContext(ctx, "docker", "image", "prune", "-f", "--filter", "label=org.switchyard.stack=1").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: docker image prune: %v\n%s\n", err, out)
	}
	return nil
}

// compose runs `docker compose ARGS...` in the repository root and returns
// its combined output.
func compose(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"compose"}, args...)...)
	cmd.Dir = repoRoot
	// The daemon's BuildKit builds the images; Bake would need buildx.
	cmd.Env = append(os.Environ(), "COMPOSE_BAKE=false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// composeOutput runs `docker compose ARGS...` and returns its standard output
// alone, with standard error in the error.
func composeOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"compose"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "COMPOSE_BAKE=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("docker compose %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// requireStack skips or fails t when the stack is not usable.
func requireStack(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
