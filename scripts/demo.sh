#!/usr/bin/env bash
# The demo: a local MariaDB (default) or MySQL primary with two replicas, and
# Switchyard in front of them on 127.0.0.1:6033. Ctrl-C stops and removes
# everything. Arguments go to `switchyard demo`: -engine mysql for MySQL 9.7.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=mariadb
prev=
for a in "$@"; do
  case "$a" in
  -engine=* | --engine=*) engine="${a#*=}" ;;
  esac
  if [ "$prev" = -engine ] || [ "$prev" = --engine ]; then engine="$a"; fi
  prev="$a"
done
./scripts/deps.sh demo "$engine"
export PATH=/usr/local/go/bin:$PATH
echo "demo: building and starting switchyard (go run: up to a minute the first time)"
exec go run ./cmd/switchyard demo "$@"
