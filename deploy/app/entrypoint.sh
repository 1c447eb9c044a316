#!/bin/bash
# Application server entrypoint: Gunicorn (graceful stop on TERM: it stops
# accepting, finishes requests in flight, then exits) and the process exporter.
set -euo pipefail
: "${ADMIN_ADDR:?ADMIN_ADDR is required}"
# APP_LISTEN: the addresses Gunicorn listens on (the front network and
# loopback for the healthcheck; not the data network).
binds=""
for addr in ${APP_LISTEN:-0.0.0.0:8000}; do
	binds="$binds --bind $addr"
done
exec supervise \
	"gunicorn --chdir /srv/app$binds --worker-class gthread --workers ${GUNICORN_WORKERS:-2} --threads ${GUNICORN_THREADS:-4} --graceful-timeout 20 --error-logfile - wsgi:application" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address ${ADMIN_ADDR}:9256"
