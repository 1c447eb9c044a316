#!/bin/bash
# Healthy primary: initialised and answering. Healthy replica: also both
# replication threads running and the replicated schema present.
set -eu
[ -f /var/lib/mysql/.initialized ]
if [ "$ROLE" = primary ]; then
	mariadb -N -e 'SELECT 1' >/dev/null
	exit 0
fi
status=$(mariadb -e 'SHOW REPLICA STATUS\G')
grep -q 'Slave_IO_Running: Yes' <<<"$status"
grep -q 'Slave_SQL_Running: Yes' <<<"$status"
found=$(mariadb -N -e "SELECT (SELECT COUNT(*) FROM information_schema.tables
	WHERE table_schema = 'app' AND table_name = 'visits') + (SELECT COUNT(*) FROM mysql.user WHERE user = '${APP_USER:-app}')")
[ "$found" = 2 ]
