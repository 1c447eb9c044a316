#!/bin/bash
# Healthy: initialised and answering; and, for a read-only server (a
# replica, whichever container it is since the last failover), both
# replication threads running and the replicated schema present. The
# writable server is the primary.
set -eu
[ -f /var/lib/mysql/.initialized ]
ro=$(mariadb -N -e 'SELECT @@GLOBAL.read_only')
if [ "$ro" = 0 ]; then
	exit 0
fi
status=$(mariadb -e 'SHOW REPLICA STATUS\G')
grep -q 'Slave_IO_Running: Yes' <<<"$status"
grep -q 'Slave_SQL_Running: Yes' <<<"$status"
found=$(mariadb -N -e "SELECT (SELECT COUNT(*) FROM information_schema.tables
	WHERE table_schema = 'app' AND table_name = 'visits') + (SELECT COUNT(*) FROM mysql.user WHERE user = '${APP_USER:-app}')")
[ "$found" = 2 ]
