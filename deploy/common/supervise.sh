#!/bin/bash
# supervise runs each argument as a command line in the background and keeps
# the container alive exactly as long as all of them run:
#   - when any command exits, the others are stopped and supervise exits with
#     that command's status, so Docker's restart policy and healthchecks see
#     the failure instead of a half-working container;
#   - TERM and INT (docker stop) are forwarded to every command, and supervise
#     waits for all of them, so each daemon shuts down cleanly.
# A command may be prefixed with "SIGNAL:" (for example "QUIT:nginx ...") to
# receive that signal instead of TERM on shutdown, or "SIGNAL+SECONDS:" to
# receive it that many seconds after the others (a load balancer keeps
# serving while keepalived hands the virtual IP over).
# When a command fails, the others get STOP_TIMEOUT seconds (default 25) to
# exit before they are killed, so a stuck daemon cannot keep a broken
# container alive.
set -u
# Job control: background commands keep the default SIGINT and SIGQUIT
# handling (a non-interactive shell would start them with both ignored, and
# Nginx's graceful stop is SIGQUIT).
set -m

pids=()
sigs=()
delays=()
for spec in "$@"; do
	sig=TERM
	delay=0
	if [[ "$spec" =~ ^([A-Z0-9]+)(\+([0-9.]+))?:(.*)$ ]]; then
		sig=${BASH_REMATCH[1]}
		delay=${BASH_REMATCH[3]:-0}
		spec=${BASH_REMATCH[4]}
	fi
	bash -c "exec $spec" &
	pids+=("$!")
	sigs+=("$sig")
	delays+=("$delay")
done

stopping=0
stop_all() {
	stopping=1
	local i
	for i in "${!pids[@]}"; do
		if [ "${delays[$i]}" = 0 ]; then
			kill -s "${sigs[$i]}" "${pids[$i]}" 2>/dev/null || true
		else
			(sleep "${delays[$i]}"; kill -s "${sigs[$i]}" "${pids[$i]}" 2>/dev/null || true) &
		fi
	done
}
trap stop_all TERM INT

wait -n
rc=$?
if [ "$stopping" -eq 0 ]; then
	echo "supervise: a process exited with status $rc; stopping the others" >&2
	stop_all
	(
		sleep "${STOP_TIMEOUT:-25}"
		kill -KILL "${pids[@]}" 2>/dev/null || true
	) &
fi
# wait returns early when a trapped signal arrives: loop until all are gone.
for pid in "${pids[@]}"; do
	while kill -0 "$pid" 2>/dev/null; do
		wait "$pid" || true
	done
done
if [ "$stopping" -eq 1 ] && [ "$rc" -ge 128 ]; then
	rc=0
fi
exit "$rc"
