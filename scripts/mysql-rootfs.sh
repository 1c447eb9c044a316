#!/usr/bin/env bash
# Builds the root filesystem that MySQL runs from, when it is missing.
# Debian 12 packages no MySQL server; Debian unstable (sid) has MySQL 9.7,
# which needs a newer libc than the host's, so it runs from a sid root
# filesystem through that filesystem's own loader (internal/sandbox does
# this). The result is cached outside the repository and rebuilt when absent:
#
#   $SWITCHYARD_MYSQL_ROOT   default /var/cache/switchyard/mysql-sid
#
# Prints the directory on its last line. Needs root (debootstrap, apt) the
# first time; about a minute and 400 MB.
set -euo pipefail
root="${SWITCHYARD_MYSQL_ROOT:-/var/cache/switchyard/mysql-sid}"
if [ -x "$root/usr/sbin/mysqld" ] && [ -e "$root/.switchyard-complete" ]; then
  echo "$root"
  exit 0
fi
fail() { echo "mysql-rootfs: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "MySQL is not installed in $root and building it needs root (debootstrap, apt); run as root once"
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "mysql-rootfs: installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
    fail "cannot install debootstrap with apt"
fi
# The host's own Debian mirror serves sid too.
mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*debian\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
tmp="$root.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
echo "mysql-rootfs: debootstrap sid from $mirror into $root (about 30 s)" >&2
debootstrap --variant=minbase sid "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
  { tail -20 "$tmp.log" >&2; rm -f "$tmp.log"; fail "debootstrap sid failed (log above)"; }
rm -f "$tmp.log"
# apt inside the chroot: the same mirror; sid's Release file may be past its
# Valid-Until date on a snapshot mirror, which apt refuses without the option.
cp -f /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
cp -a /etc/apt/apt.conf.d/. "$tmp/etc/apt/apt.conf.d/" 2>/dev/null || true
echo "mysql-rootfs: apt-get install mysql-server-core mysql-client-core (about 20 s)" >&2
apt=(chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0)
"${apt[@]}" update -qq >/dev/null || fail "apt-get update inside the sid root filesystem failed"
"${apt[@]}" install -y -qq --no-install-recommends mysql-server-core mysql-client-core >/dev/null ||
  fail "apt-get install mysql-server-core mysql-client-core inside the sid root filesystem failed"
"${apt[@]}" clean
[ -x "$tmp/usr/sbin/mysqld" ] || fail "no usr/sbin/mysqld after the install"
touch "$tmp/.switchyard-complete"
rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
echo "mysql-rootfs: ready: $("$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" "$root/usr/sbin/mysqld" --version 2>&1 | head -1)" >&2
echo "$root"
