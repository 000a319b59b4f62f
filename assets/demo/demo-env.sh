#!/usr/bin/env bash
# Shared set-up for the demo scripts: sourced by each of them, not run on its own.
#
# - release / previous_release / service come from the runbook's [vars] (the tool exports them);
#   the defaults below let a script be run by hand.
# - Demo state (live version, backups, worker count, schema version) lives in
#   ${RUNBOOK_RUN_DIR:-${TMPDIR:-/tmp}/runbook-demo}/demo-state/ so that the rollback scripts
#   really undo what the deploy scripts changed.
# - Fault switch: DEMO_FAIL is a comma-separated list of script names (basename without .sh).
#     DEMO_FAIL=deploy            deploy.sh fails where the forward run uses it
#     DEMO_FAIL=run-tests:security  only that mode of the script fails
#     DEMO_FAIL=deploy:rollback   deploy.sh fails when the rollback procedure calls it
#   A plain name never fails the rollback procedure's own use of a script, so a team can practise a
#   clean rollback (exit 3) or, with name:rollback, a rollback that itself fails (exit 4).
# - DEMO_PACE sets the pause between output lines (default 0.3 s; 0 for fast tests).
set -euo pipefail

DEMO_NAME=$(basename "$0" .sh)
release=${release:-v2.14.0}
previous_release=${previous_release:-v2.13.4}
service=${service:-checkout}
DEMO_PACE=${DEMO_PACE:-0.3}
STATE_DIR="${RUNBOOK_RUN_DIR:-${TMPDIR:-/tmp}/runbook-demo}/demo-state"
mkdir -p "$STATE_DIR"

# Production in this demo: 20 application instances, 8 background workers, schema at 0147.
INSTANCES=20
DEFAULT_WORKERS=8
BASE_SCHEMA=20241104_0147

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
pause() { sleep "${1:-$DEMO_PACE}"; }
# step LINE...: print a progress line, then pause.
step() { say "$*"; pause; }

# die MESSAGE...: print every argument as a line on stderr and exit 1.
die() {
    printf '%s\n' "$@" >&2
    exit 1
}

state_get() { # KEY DEFAULT
    if [[ -f $STATE_DIR/$1 ]]; then cat "$STATE_DIR/$1"; else printf '%s\n' "$2"; fi
}
state_set() { # KEY VALUE: written to a temporary file, then renamed, so a killed script leaves no half file
    printf '%s\n' "$2" >"$STATE_DIR/.$1.tmp"
    mv -f "$STATE_DIR/.$1.tmp" "$STATE_DIR/$1"
}
state_del() { rm -f "$STATE_DIR/$1"; }

# The release that takes production traffic (before any deploy: the previous release).
live_version() { state_get version "$previous_release"; }

# fault_requested MODE [forward|rollback]: true when DEMO_FAIL asks this script to fail here.
fault_requested() {
    local mode=${1:-} ctx=${2:-forward} entry
    local -a entries=()
    IFS=', ' read -r -a entries <<<"${DEMO_FAIL:-}"
    for entry in ${entries[@]+"${entries[@]}"}; do
        if [[ $entry == "$DEMO_NAME" && $ctx == forward ]] ||
            [[ $entry == "$DEMO_NAME:$mode" || $entry == "$DEMO_NAME:$ctx" ]]; then
            return 0
        fi
    done
    return 1
}

# human N: 12345 -> 12,345
human() { printf '%s' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
