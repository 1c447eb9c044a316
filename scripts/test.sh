#!/usr/bin/env bash
# Runs every test: unit tests, protocol and client tests against a real
# MariaDB replication sandbox, and (where Docker can be used, and always in
# CI) the end-to-end tests of the compose stack.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH=/usr/local/go/bin:$PATH
# Tests fail instead of skipping when the servers they need are missing.
export SWITCHYARD_REQUIRE_SANDBOX=1
if [ "${CI:-}" = true ]; then
  export SWITCHYARD_REQUIRE_DOCKER=1
fi
start=$(date +%s)
go vet ./...
go test -count=1 -timeout 30m ./... "$@"
echo "tests finished in $(( $(date +%s) - start ))s"
