#!/usr/bin/env bash
# Health checks across every instance of the checkout service (demo: answers come from the demo state).
#   health-check.sh              after the deploy: every instance healthy and on $release
#   health-check.sh --rollback   after a rollback: every instance healthy and on $previous_release
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

ctx=forward
want=$release
if [[ ${1:-} == --rollback ]]; then
    ctx=rollback
    want=$previous_release
fi
live=$(live_version)
new=$(state_get new_count 0)

step "GET /healthz on $INSTANCES instances of $service (expecting $want)"
if fault_requested check "$ctx"; then
    printf '%s\n' "$service-$(printf '%s' "$live" | tr '.' '-')-7: 503 {\"status\":\"degraded\",\"redis\":\"timeout after 250ms\"}" \
        "$service-$(printf '%s' "$live" | tr '.' '-')-12: 503 {\"status\":\"degraded\",\"redis\":\"timeout after 250ms\"}" \
        "$service-$(printf '%s' "$live" | tr '.' '-')-18: 503 {\"status\":\"degraded\",\"redis\":\"timeout after 250ms\"}" >&2
    die "error: 3/$INSTANCES instances unhealthy"
fi
if [[ $live != "$want" ]]; then
    if [[ $ctx == forward ]]; then on_want=$new; else on_want=$((INSTANCES - new)); fi
    die "error: version mismatch: $on_want/$INSTANCES instances report $want, live release is $live"
fi
step "  $INSTANCES/$INSTANCES healthy, all report version $want"
step "  dependencies: postgres ok (3ms), redis ok (1ms), payments-api ok (41ms), queue ok (2ms)"
if [[ $ctx == forward ]]; then
    warn "payments-api p99 latency 780ms on 2 instances (below the 1s budget)"
fi
say "Health checks passing"
