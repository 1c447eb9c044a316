#!/bin/bash
# Database server entrypoint. On first start (empty data directory) it
# initialises the server; then it runs mariadbd, the mysqld exporter and the
# process exporter under supervise.
#   ROLE=primary  creates the schema and the users (binlogged, so they reach
#                 the replicas through replication);
#   ROLE=replica  points replication at $PRIMARY_HOST using GTIDs.
# PEERS lists the other servers' addresses (see the restart below).
set -euo pipefail
: "${ROLE:?ROLE (primary or replica) is required}"
: "${SERVER_ID:?SERVER_ID is required}"
: "${ADMIN_ADDR:?ADMIN_ADDR is required}"
for v in APP_PASSWORD REPL_PASSWORD MONITOR_PASSWORD EXPORTER_PASSWORD FAILOVER_PASSWORD; do
	if [ -z "${!v:-}" ]; then echo "db-entrypoint: $v is required" >&2; exit 1; fi
	case "${!v}" in *[\'\\]*) echo "db-entrypoint: $v must not contain quotes or backslashes" >&2; exit 1 ;; esac
done
lib=/usr/local/lib/db
datadir=/var/lib/mysql
marker="$datadir/.initialized"
cnf=/etc/mysql/mariadb.conf.d/60-switchyard.cnf

sed -e "s|@SERVER_ID@|$SERVER_ID|" "$lib/server.cnf.in" > "$cnf"
if [ "$ROLE" = replica ]; then
	cat "$lib/replica.cnf" >> "$cnf"
fi
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$datadir"

# sql_file FILE: replace the @NAME@ placeholders with the environment.
sql_file() {
	sed -e "s|@APP_USER@|${APP_USER:-app}|g" -e "s|@APP_PASSWORD@|$APP_PASSWORD|g" \
		-e "s|@REPL_PASSWORD@|$REPL_PASSWORD|g" -e "s|@MONITOR_PASSWORD@|$MONITOR_PASSWORD|g" \
		-e "s|@EXPORTER_PASSWORD@|$EXPORTER_PASSWORD|g" -e "s|@FAILOVER_PASSWORD@|$FAILOVER_PASSWORD|g" -e "s|@PRIMARY_HOST@|${PRIMARY_HOST:-db-primary}|g" "$1"
}

args="--user=mysql"
if [ -f "$marker" ] && [ -n "${PEERS:-}" ]; then
	# A restart. If another server is writable, Switchyard promoted it while
	# this one was away: start read-only, and let crash recovery drop what
	# this server logged but no replica received (never acknowledged to a
	# client, with semi-sync), so that Switchyard can rejoin it as a replica
	# of the new primary. Peers that do not answer (the whole stack starting)
	# leave the role to $ROLE.
	for peer in $PEERS; do
		ro=$(MYSQL_PWD="$MONITOR_PASSWORD" mariadb -h "$peer" -u monitor --connect-timeout=2 -N -e 'SELECT @@GLOBAL.read_only' 2>/dev/null || true)
		if [ "$ro" = 0 ]; then
			echo "db-entrypoint: $peer is the primary now: starting read-only, as a replica to be" >&2
			args="$args --read-only --init-rpl-role=SLAVE"
			break
		fi
	done
fi

if [ ! -f "$marker" ]; then
	echo "db-entrypoint: initialising $ROLE (server_id $SERVER_ID)" >&2
	find "$datadir" -mindepth 1 -delete
	mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
	# A private server (no TCP) for the set-up statements.
	mariadbd --user=mysql --skip-networking --skip-slave-start &
	pid=$!
	for _ in $(seq 1 60); do
		if mariadb-admin --silent ping >/dev/null 2>&1; then break; fi
		sleep 0.5
	done
	sql_file "$lib/$ROLE.sql" | mariadb
	mariadb-admin shutdown
	wait "$pid" || true
	touch "$marker"
	echo "db-entrypoint: $ROLE initialised" >&2
fi

export DATA_SOURCE_NAME="exporter:${EXPORTER_PASSWORD}@unix(/run/mysqld/mysqld.sock)/"
exec supervise \
	"mariadbd $args" \
	"prometheus-mysqld-exporter --web.listen-address=${ADMIN_ADDR}:9104" \
	"prometheus-process-exporter -config.path /etc/process-exporter.yml -web.listen-address ${ADMIN_ADDR}:9256"
