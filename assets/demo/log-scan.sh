#!/usr/bin/env bash
# Scan the service's logs since the rollout started for error signatures not seen before the deploy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

live=$(live_version)
step "Scanning logs for service=$service version=$live since the rollout started (~2.1M lines)"
step "  level=error: 23 lines, 2 signatures"
step "    known: 'context canceled' (client disconnect) x 19, ignored"
step "    known: 'payments-api 429, retrying' x 4, ignored"
if fault_requested; then
    die "    NEW: 'panic: runtime error: invalid memory address or nil pointer dereference' (order_service.go:212) x 37" \
        "error: 1 new error signature since $previous_release"
fi
step "  level=warn: 141 lines (rate limiter, slow queries < 500 ms)"
warn "log shipping lag on 1 instance: 40s behind (fluent-bit buffer), results may miss its last lines"
say "No unexpected errors in logs"
