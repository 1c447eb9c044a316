#!/bin/bash
# Web server entrypoint: Nginx (stopped gracefully with QUIT) and its exporter.
set -euo pipefail
: "${ADMIN_ADDR:?ADMIN_ADDR is required}"
rm -f /run/nginx/drained
web-upstream render
nginx -t -q
exec supervise \
	"QUIT:nginx -g 'daemon off;'" \
	"prometheus-nginx-exporter -nginx.retries 60 -nginx.retry-interval 500ms -nginx.scrape-uri http://127.0.0.1/nginx-status -web.listen-address ${ADMIN_ADDR}:9113" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address ${ADMIN_ADDR}:9256"
