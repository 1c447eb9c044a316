#!/usr/bin/env bash
# docker-setup.sh makes `docker compose up` possible on a Debian machine that
# may have no Docker engine, no way to pull images and no Compose v2 plugin.
# Every step is skipped when what it makes is already there, so running it
# again is cheap:
#   1. docker.io (the engine) and debootstrap from apt, when missing;
#   2. one dockerd, when `docker version` cannot reach a daemon;
#   3. debian:bookworm-slim, built with debootstrap from the machine's own
#      Debian mirror and `docker import`, when the image is missing and cannot
#      be pulled;
#   4. the Compose v2 CLI plugin, built from the Go module proxy into
#      ~/.docker/cli-plugins, when `docker compose version` fails.
# A machine with internet access and Docker Desktop or docker-ce skips all of it.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
BASE_IMAGE="debian:bookworm-slim"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/switchyard-dockerd.log}"

log() { printf 'docker-setup: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
	if [ "$apt_updated" -eq 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wait_for CMD... polls CMD once a second for up to 60 s.
wait_for() {
	local i
	for i in $(seq 1 60); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 1
	done
	return 1
}

ensure_engine() {
	if docker version >/dev/null 2>&1; then
		return 0
	fi
	if ! command -v dockerd >/dev/null 2>&1; then
		log "installing docker.io from apt"
		apt_install docker.io
	fi
	if ! command -v docker >/dev/null 2>&1; then
		apt_install docker-cli || apt_install docker.io
	fi
	# A second dockerd fights the first over docker0 and iptables: start one
	# only when no dockerd process exists, otherwise wait for the running one.
	if ! pgrep -x dockerd >/dev/null 2>&1; then
		log "starting dockerd (log: $DOCKERD_LOG)"
		as_root sh -c "nohup dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
	fi
	if ! wait_for docker version; then
		log "dockerd did not answer within 60 s; last log lines:"
		tail -n 20 "$DOCKERD_LOG" >&2 || true
		return 1
	fi
	log "dockerd is up"
}

# debian_mirror prints the Debian archive URI that this machine's apt uses.
debian_mirror() {
	local uri=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
			/etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

ensure_base_image() {
	if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
		return 0
	fi
	log "trying to pull $BASE_IMAGE (up to 2 minutes; without a registry it is built instead)"
	if timeout 120 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
		log "pulled $BASE_IMAGE"
		return 0
	fi
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap from apt"
		apt_install debootstrap
	fi
	local mirror dir
	mirror=$(debian_mirror)
	dir=$(mktemp -d /tmp/switchyard-rootfs.XXXXXX)
	# shellcheck disable=SC2064 # expand $dir now: it is local.
	trap "as_root rm -rf '$dir'" RETURN
	log "debootstrap bookworm from $mirror (about a minute)"
	as_root debootstrap --variant=minbase bookworm "$dir" "$mirror" >/dev/null
	# apt inside the image must use the same mirror and settings as the host.
	if [ -d /etc/apt/sources.list.d ]; then
		as_root cp -a /etc/apt/sources.list.d/. "$dir/etc/apt/sources.list.d/"
		as_root find "$dir/etc/apt/sources.list.d" -type f ! -name '*.sources' ! -name '*.list' -delete
		if ls "$dir"/etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
			as_root rm -f "$dir/etc/apt/sources.list"
		fi
	fi
	if [ -f /etc/apt/sources.list ]; then
		as_root cp /etc/apt/sources.list "$dir/etc/apt/sources.list"
	fi
	if [ -d /etc/apt/apt.conf.d ]; then
		as_root cp -a /etc/apt/apt.conf.d/. "$dir/etc/apt/apt.conf.d/"
	fi
	as_root rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
	log "importing $BASE_IMAGE"
	as_root tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
}

ensure_compose() {
	if docker compose version >/dev/null 2>&1; then
		return 0
	fi
	if ! command -v go >/dev/null 2>&1; then
		log "docker compose is missing and Go is not installed to build it"
		return 1
	fi
	local moddir work plugins
	log "building Compose $COMPOSE_VERSION from the Go module proxy (about 3 minutes)"
	# `go install` refuses the module because its go.mod has exclude directives,
	# so build it from a writable copy of the downloaded module.
	moddir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$moddir" ] || [ ! -d "$moddir" ]; then
		log "go mod download of compose $COMPOSE_VERSION failed"
		return 1
	fi
	work=$(mktemp -d /tmp/switchyard-compose.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	cp -a "$moddir/." "$work/"
	chmod -R u+w "$work"
	plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
	mkdir -p "$plugins"
	(cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
		-o "$plugins/docker-compose" ./cmd)
	docker compose version >&2
}

ensure_engine
ensure_base_image
ensure_compose
log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short)"
