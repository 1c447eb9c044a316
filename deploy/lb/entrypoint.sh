#!/bin/bash
# Load balancer entrypoint: makes the TLS certificate on first start, writes
# keepalived's configuration for this node, then runs HAProxy, keepalived and
# the process exporter under supervise.
set -euo pipefail
: "${VIP:?VIP (address/prefix) is required}"
: "${VRRP_SELF:?VRRP_SELF (this node's address on the VIP subnet) is required}"
: "${VRRP_PEER:?VRRP_PEER (the other node's address) is required}"
: "${VRRP_PRIORITY:?VRRP_PRIORITY is required}"
: "${ADMIN_ADDR:?ADMIN_ADDR is required}"
VRRP_ROUTER_ID=${VRRP_ROUTER_ID:-51}
SERVER_NAME=${SERVER_NAME:-www.foobar.com}

certs=/etc/haproxy/certs
pem="$certs/$SERVER_NAME.pem"
mkdir -p "$certs" /run/haproxy
# Both load balancers share the certificate volume: the lock makes the first
# one generate it and the second reuse it. A real certificate (for example
# from Let's Encrypt) placed at $pem is used as is.
(
	flock 9
	if [ ! -s "$pem" ]; then
		echo "lb-entrypoint: generating a self-signed certificate for $SERVER_NAME" >&2
		tmp=$(mktemp -d)
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
			-subj "/CN=$SERVER_NAME" -addext "subjectAltName=DNS:$SERVER_NAME" \
			-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
		cat "$tmp/cert.pem" "$tmp/key.pem" > "$pem.tmp"
		chmod 600 "$pem.tmp"
		mv "$pem.tmp" "$pem"
		cp "$tmp/cert.pem" "$certs/$SERVER_NAME.crt"
		rm -rf "$tmp"
	fi
) 9>"$certs/.lock"

iface=$(ip -o -4 addr show | awk -v a="$VRRP_SELF" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
if [ -z "$iface" ]; then
	echo "lb-entrypoint: no interface has address $VRRP_SELF" >&2
	exit 1
fi
sed -e "s|@ROUTER_ID@|$(hostname)|" -e "s|@IFACE@|$iface|g" -e "s|@VRID@|$VRRP_ROUTER_ID|" \
	-e "s|@PRIORITY@|$VRRP_PRIORITY|" -e "s|@SELF@|$VRRP_SELF|" -e "s|@PEER@|$VRRP_PEER|" \
	-e "s|@VIP@|$VIP|" /etc/keepalived/keepalived.conf.in > /etc/keepalived/keepalived.conf

# A restarted container keeps /run: stale pid files make keepalived refuse to
# start, and a stale state file would make the healthcheck lie.
rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid /run/keepalived.state /run/haproxy.pid
haproxy -c -q -f /etc/haproxy/haproxy.cfg

exec supervise \
	"USR1+2:haproxy -W -db -p /run/haproxy.pid -f /etc/haproxy/haproxy.cfg" \
	"keepalived --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address ${ADMIN_ADDR}:9256"
