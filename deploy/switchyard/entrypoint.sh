#!/bin/bash
# Switchyard entrypoint: the proxy (its config comes from compose.yaml) and
# the process exporter.
set -euo pipefail
exec supervise \
	"switchyard -config ${SWITCHYARD_CONFIG:-/etc/switchyard/switchyard.yaml}" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address :9256"
