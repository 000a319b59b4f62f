#!/usr/bin/env bash
# Runs a command with the demo's notification receiver listening on 127.0.0.1, then stops it and
# shows what it received:
#
#   ./assets/demo/with-receiver.sh cargo run --release -- run runbooks/production-rollout.toml ...
#
# runbooks/production-rollout.toml sends its [[notify]] targets to http://127.0.0.1:18765 (its
# `notify_url` var). Another port: DEMO_NOTIFY_PORT=18766 and --var notify_url=http://127.0.0.1:18766.
# The receiver logs each request to $DEMO_NOTIFY_LOG (default: a file in the demo's state folder)
# and never outlives this script. Nothing leaves the machine.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
port=${DEMO_NOTIFY_PORT:-18765}
log=${DEMO_NOTIFY_LOG:-${TMPDIR:-/tmp}/runbook-demo/notifications.log}
mkdir -p "$(dirname "$log")"
: >"$log"
ready=$(mktemp)
python3 "$here/notify-receiver.py" "$port" "$log" >"$ready" 2>&1 &
receiver=$!
stop() {
    kill "$receiver" 2>/dev/null
    wait "$receiver" 2>/dev/null
    rm -f "$ready"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP
for _ in $(seq 100); do
    grep -q ready "$ready" && break
    if ! kill -0 "$receiver" 2>/dev/null; then
        echo "with-receiver: the demo receiver could not listen on 127.0.0.1:$port:" >&2
        sed 's/^/  /' "$ready" >&2
        echo "  (is another demo running? set DEMO_NOTIFY_PORT and --var notify_url to another port)" >&2
        exit 2
    fi
    sleep 0.1
done
"$@"
status=$?
n=$(wc -l <"$log")
echo "with-receiver: the demo receiver on 127.0.0.1:$port got $n notification$([ "$n" = 1 ] || echo s) ($log):" >&2
width=$(tput cols 2>/dev/null || echo 100)
cut -c1-$((width > 20 ? width - 3 : 77)) "$log" | sed 's/^/  /' >&2
exit "$status"
