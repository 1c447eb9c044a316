#!/usr/bin/env bash
# The demo: a local MariaDB primary with two replicas, and Switchyard in front
# of them on 127.0.0.1:6033. Ctrl-C stops and removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh demo
export PATH=/usr/local/go/bin:$PATH
echo "demo: building and starting switchyard (go run: up to a minute the first time)"
exec go run ./cmd/switchyard demo "$@"
