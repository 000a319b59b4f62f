#!/usr/bin/env bash
# Background job health for the checkout workers.
#   jobs-check.sh                queue depth falling, workers consuming, no failures
#   jobs-check.sh --completion   scheduled jobs since the deploy completed
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

workers=$(state_get workers "$DEFAULT_WORKERS")
wver=$(state_get workers_version "$(live_version)")
mode=processing
[[ ${1:-} == --completion ]] && mode=completion

if ((workers == 0)); then
    die "error: $service-worker has 0 replicas: nothing is consuming ${service}-default (depth 1,204 and growing)"
fi
if fault_requested "$mode"; then
    die "error: queue ${service}-default backlog growing: 1,942 jobs, oldest 6m12s" \
        "error: 0 jobs completed in the last 60s by $workers workers on $wver (all blocked on 'settlement_export')"
fi
case $mode in
processing)
    step "Background jobs for $service ($workers workers on $wver)"
    step "  queue ${service}-default: depth 1,204 -> 312 -> 41 (draining)"
    step "  queue ${service}-low: depth 88 -> 20"
    step "  last 60s: 1,284 jobs processed, 0 failed, 3 retried"
    warn "queue ${service}-low has 1 job in the dead-letter queue (email_receipt, attempts=5)"
    say "Background jobs processing"
    ;;
completion)
    step "Scheduled jobs since the deploy ($workers workers on $wver)"
    step "  settlement_export ........ 4/4 runs completed (last: 2m41s)"
    step "  reconcile_payments ....... 12/12 runs completed"
    step "  abandoned_cart_reminder .. 24/24 runs completed"
    step "  dead-letter queues: 1 job (unchanged since before the deploy)"
    say "Background job completion verified"
    ;;
esac
