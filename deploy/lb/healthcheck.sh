#!/bin/bash
# Docker healthcheck of a load balancer: HAProxy answers, keepalived runs and
# is MASTER or BACKUP, and the virtual IP (held by this one or its peer)
# serves TLS, so `docker compose up --wait` returns only when the site is up.
set -eu
curl -fsS --max-time 1 -o /dev/null http://127.0.0.1:8404/healthz
pidof keepalived >/dev/null
state=$(cat /run/keepalived.state 2>/dev/null || echo UNKNOWN)
case "$state" in MASTER|BACKUP) ;; *) echo "keepalived state $state" >&2; exit 1 ;; esac
curl -fsS --max-time 2 -k -o /dev/null --resolve "www.foobar.com:443:${VIP%/*}" https://www.foobar.com/lb-health
