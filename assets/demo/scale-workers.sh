#!/usr/bin/env bash
# Background workers (queue consumers) for the checkout service.
#   scale-workers.sh down       drain in-flight jobs, then scale to 0 (remembers the count)
#   scale-workers.sh up         scale back to the remembered count on the new release
#   scale-workers.sh previous   (rollback) scale back to the remembered count on the previous release
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

mode=${1:-}
deploy="$service-worker"
current=$(state_get workers "$DEFAULT_WORKERS")

case $mode in
down)
    if ((current == 0)); then
        say "$deploy already at 0 replicas"
        exit 0
    fi
    state_set workers_before "$current"
    step "Pausing queue consumers for $deploy ($current replicas, queues: ${service}-default, ${service}-low)"
    step "  waiting for in-flight jobs to finish: 11 running"
    step "  waiting for in-flight jobs to finish: 4 running"
    if fault_requested down; then
        die "error: timed out after 120s waiting for in-flight jobs to drain" \
            "error: still running: settlement_export (job 88123, 14m), reconcile_payments (job 88140, 9m)"
    fi
    step "  waiting for in-flight jobs to finish: 0 running"
    state_set workers 0
    say "Scaled $deploy from $current to 0 replicas; queues keep accepting jobs"
    ;;
up | previous)
    ctx=forward
    rel=$release
    if [[ $mode == previous ]]; then
        ctx=rollback
        rel=$previous_release
    fi
    target=$(state_get workers_before "$DEFAULT_WORKERS")
    step "Scaling $deploy to $target replicas on $rel"
    if fault_requested "$mode" "$ctx"; then
        die "error: $deploy-$(printf '%s' "$rel" | tr '.' '-')-3: CrashLoopBackOff (exit 1: cannot connect to redis: NOAUTH Authentication required)" \
            "error: 2/$target replicas ready after 90s"
    fi
    for ((n = 2; n < target; n += 3)); do step "  $n/$target ready"; done
    state_set workers "$target"
    state_set workers_version "$rel"
    step "  $target/$target ready"
    if [[ $mode == up ]]; then
        warn "queue ${service}-default backlog 1,204 jobs after the pause; expect ~3 min to catch up"
    fi
    say "$deploy running $target/$target replicas on $rel"
    ;;
*)
    die "usage: scale-workers.sh down | up | previous"
    ;;
esac
