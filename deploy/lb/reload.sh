#!/bin/sh
# lb-reload: check the configuration, then make HAProxy's master load it (and
# a new certificate) with a seamless reload: existing connections finish on
# the old workers.
set -e
haproxy -c -q -f /etc/haproxy/haproxy.cfg
kill -USR2 "$(cat /run/haproxy.pid)"
