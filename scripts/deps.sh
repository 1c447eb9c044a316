#!/usr/bin/env bash
# Installs what Switchyard needs, when it is missing: Debian packages (as
# root, via apt) and Go modules. Safe to run again.
#
#   deps.sh        everything: tests (client libraries in Python), sysbench
#                  for the benchmarks, MariaDB's test suite for the oracle
#   deps.sh demo   what the demo uses: the MariaDB server and client
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-all}" in
demo) packages=(mariadb-server mariadb-client) ;;
all)
  packages=(mariadb-server mariadb-client sysbench python3-pymysql python3-mysqldb python3-sqlalchemy
    python3-flask python3-django mariadb-test)
  ;;
*)
  echo "usage: deps.sh [demo]" >&2
  exit 2
  ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]} (apt-get update and install: a minute or more)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packaged MariaDB service from starting: the sandbox
  # runs its own servers.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps: installed"
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    echo "deps: Go 1.26 or newer is required (https://go.dev/dl/); it is not on PATH" >&2
    exit 1
  fi
fi
# Quiet when the module cache has them all; otherwise say so and fetch.
if ! GOPROXY=off go mod download >/dev/null 2>&1; then
  echo "deps: downloading Go modules (go mod download)"
  go mod download
fi
