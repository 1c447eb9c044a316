#!/usr/bin/env bash
# Runs every test: unit tests, protocol and client tests against a real
# MariaDB replication sandbox, the engine-independent ones again against a
# real MySQL sandbox, then the end-to-end tests of the compose stack
# (test/e2e), which set up Docker themselves (deploy/scripts/docker-setup.sh).
# The steps run one after the other so that they do not compete for the
# machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH=/usr/local/go/bin:$PATH
# Tests fail instead of skipping when the servers they need are missing.
# Docker is required in CI and wherever the script runs as root (it can then
# install and start everything the stack needs).
export SWITCHYARD_REQUIRE_SANDBOX=1
if [ "${CI:-}" = true ] || [ "$(id -u)" -eq 0 ]; then
  export SWITCHYARD_REQUIRE_DOCKER="${SWITCHYARD_REQUIRE_DOCKER:-1}"
fi
start=$(date +%s)
echo "test.sh: go vet ./... (builds every package first: a minute or two on a fresh machine)"
go vet ./...
# The race detector over every test that needs no database: the pure
# packages and the proxy's tests against its scripted in-process backend
# (-short skips the tests that need MariaDB).
echo "test.sh: go test -race over the tests that need no database"
go test -short -race -count=1 ./router/... ./config/... ./proxy/... ./replication/... ./cmd/switchyard/...
packages=$(go list ./... | grep -v '/test/e2e$')
echo "test.sh: unit, sandbox and client tests, $(wc -w <<<"$packages") packages in parallel;" \
  "each prints a line when it ends, the slowest after a few minutes"
go test -count=1 -timeout 30m $packages "$@"
echo "test.sh: unit, sandbox and client tests finished in $(( $(date +%s) - start ))s"
# The same tests on MySQL 9.7: every package whose tests start a sandbox (the
# others do not depend on the engine; test/oracle replays MariaDB's own test
# suite on MariaDB). Tests of what only one engine has skip with the reason.
mysql=$(date +%s)
engine_packages=(./internal/sandbox ./replication ./proxy ./cmd/switchyard ./test ./test/apps ./test/bench)
echo "test.sh: the sandbox and client tests again on MySQL (SWITCHYARD_ENGINE=mysql): ${engine_packages[*]}"
SWITCHYARD_ENGINE=mysql go test -count=1 -timeout 30m "${engine_packages[@]}" "$@"
echo "test.sh: MySQL tests finished in $(( $(date +%s) - mysql ))s"
e2e=$(date +%s)
echo "test.sh: end-to-end tests of the compose stack (test/e2e): Docker setup, image builds, then each test as it runs"
go test -count=1 -timeout 45m -v ./test/e2e "$@"
echo "test.sh: end-to-end tests finished in $(( $(date +%s) - e2e ))s; all tests in $(( $(date +%s) - start ))s"
