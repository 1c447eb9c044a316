#!/bin/sh
# Used by keepalived: the virtual IP stays only where HAProxy answers.
exec curl -fsS --max-time 2 -o /dev/null http://127.0.0.1:8404/healthz
