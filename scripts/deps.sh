#!/usr/bin/env bash
# Installs what Switchyard needs, when it is missing: Debian packages (as
# root, via apt) and Go modules. Safe to run again.
#
#   deps.sh               everything: tests (client libraries in Python, both
#                         engines), sysbench for the benchmarks, MariaDB's test
#                         suite for the oracle, chromium for the console's
#                         browser tests
#   deps.sh demo [ENGINE] what the demo uses: the MariaDB client, and the
#                         server of ENGINE (mariadb, the default, or mysql)
#
# MySQL comes from a Debian sid root filesystem that scripts/mysql-rootfs.sh
# builds once and caches outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

mysql=no
case "${1:-all}" in
demo)
  packages=(mariadb-client)
  case "${2:-mariadb}" in
  mariadb) packages+=(mariadb-server) ;;
  mysql) mysql=yes ;;
  *)
    echo "deps.sh: unknown engine ${2}: want mariadb or mysql" >&2
    exit 2
    ;;
  esac
  ;;
all)
  packages=(mariadb-server mariadb-client sysbench python3-pymysql python3-mysqldb python3-sqlalchemy
    python3-flask python3-django mariadb-test chromium iptables)
  mysql=yes
  ;;
*)
  echo "usage: deps.sh [demo [mariadb|mysql]]" >&2
  exit 2
  ;;
esac
[ "$mysql" = no ] || [ -e "${SWITCHYARD_MYSQL_ROOT:-/var/cache/switchyard/mysql-sid}/.switchyard-complete" ] ||
  packages+=(debootstrap)
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

if [ "$mysql" = yes ]; then
  ./scripts/mysql-rootfs.sh >/dev/null
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
