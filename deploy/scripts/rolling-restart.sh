#!/usr/bin/env bash
# rolling-restart.sh [SERVICE...] replaces the application servers one at a
# time (default: app1 app2) without failing a request:
#   1. drain it on every web server: Nginx reloads without it and waits for
#      the requests already sent to it to finish;
#   2. recreate its container (new image or configuration, same address)
#      and wait until its healthcheck passes;
#   3. put it back into rotation on every web server.
# Run from anywhere; it uses the compose.yaml at the repository root (and
# COMPOSE_FILE when set). To deploy new code, build first, then roll:
#   docker compose build app1 && deploy/scripts/rolling-restart.sh
# RESTART=restart keeps the container instead of recreating it.
set -euo pipefail
cd "$(dirname "$0")/../.."
services=("$@")
if [ "${#services[@]}" -eq 0 ]; then
	services=(app1 app2)
fi
read -r -a webs <<<"${WEB_SERVICES:-web1 web2}"
compose=(docker compose)

log() { printf 'rolling-restart: %s\n' "$*" >&2; }

undrain_all() {
	local w
	for w in "${webs[@]}"; do
		"${compose[@]}" exec -T "$w" web-upstream undrain "$1" || true
	done
}

for svc in "${services[@]}"; do
	log "draining $svc"
	trap 'undrain_all "$svc"' EXIT
	for w in "${webs[@]}"; do
		"${compose[@]}" exec -T "$w" web-upstream drain "$svc"
	done
	start=$SECONDS
	if [ "${RESTART:-recreate}" = restart ]; then
		log "restarting $svc"
		"${compose[@]}" restart "$svc"
		# `restart` does not wait for health: poll it.
		id=$("${compose[@]}" ps -q "$svc")
		until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
			if [ $((SECONDS - start)) -gt 120 ]; then log "$svc not healthy after 120 s"; exit 1; fi
			sleep 0.5
		done
	else
		log "recreating $svc"
		"${compose[@]}" up -d --no-deps --force-recreate --wait --wait-timeout 120 "$svc"
	fi
	log "$svc is healthy after $((SECONDS - start)) s; back in rotation"
	undrain_all "$svc"
	trap - EXIT
done
