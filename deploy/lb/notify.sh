#!/bin/sh
# keepalived notify hook: $1 = GROUP|INSTANCE, $2 = name, $3 = state.
echo "$3" > /run/keepalived.state
echo "lb-notify: $2 is now $3" >&2
