#!/usr/bin/env bash
# Smoke test of the critical business flows; exits 0 when they all work. Fast, so it can run every 30 s.
#   smoke-test.sh [--verbose]
# With DEMO_FAIL=smoke-test it fails while the new release takes traffic (so a rollback makes it pass again).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"
DEMO_PACE=${DEMO_PACE_SMOKE:-0.1}

new=$(state_get new_count 0)
live=$(live_version)
[[ ${1:-} == --verbose ]] && say "Smoke test of $service critical flows (live $live, $new/$INSTANCES instances on $release)"
step "  login ............ ok"
step "  add to cart ...... ok"
if fault_requested && ((new > 0)); then
    die "  checkout ......... FAIL: POST /api/checkout -> 500 (3/3 attempts, only on $release instances)" \
        "error: critical flow 'checkout' failing"
fi
step "  checkout ......... ok"
step "  payment .......... ok"
say "critical flows ok"
