#!/bin/bash
# Monitoring entrypoint: Prometheus, the node exporter (the Docker host's CPU
# and memory: containers share its kernel) and the process exporter.
set -euo pipefail
promtool check config /etc/prometheus/prometheus.yml >/dev/null
exec supervise \
	"prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus --storage.tsdb.retention.time=${PROMETHEUS_RETENTION:-7d} --web.listen-address=:9090 --web.enable-lifecycle" \
	"prometheus-node-exporter --web.listen-address=:9100 --collector.disable-defaults --collector.cpu --collector.meminfo --collector.loadavg --collector.netdev --collector.diskstats --collector.filesystem --collector.stat --collector.pressure --collector.uname" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address :9256"
