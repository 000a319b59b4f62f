#!/usr/bin/env bash
# Application rollout for the checkout service: 20 instances behind the load balancer.
#   deploy.sh --canary PERCENT RELEASE    move PERCENT% of the instances to RELEASE and weight traffic to them
#   deploy.sh --all RELEASE               roll the remaining instances to RELEASE (batches of 4)
# Used by the rollback procedure:
#   deploy.sh --halt                      stop a rollout that is still in progress
#   deploy.sh --scale-previous PREVIOUS   bring the PREVIOUS release's instances back to full size
#   deploy.sh --rollback PREVIOUS         send all traffic back to PREVIOUS
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

mode=${1:-}
arg=${2:-}
image() { printf 'registry.example.com/%s:%s' "$service" "$1"; }
slug() { printf '%s' "$1" | tr '.' '-'; }
# Instance counts per release are kept as new_count (instances on the new release) and old_count.
new_count() { state_get new_count 0; }
old_count() { state_get old_count "$INSTANCES"; }
weights() { say "  load balancer weights: $previous_release=$((100 - $1)) $release=$1"; }

case $mode in
--canary)
    percent=$arg
    rel=${3:-$release}
    [[ $percent =~ ^[0-9]+$ ]] && ((percent > 0 && percent <= 100)) || die "usage: deploy.sh --canary PERCENT RELEASE"
    n=$(((INSTANCES * percent + 99) / 100))
    state_set rollout_in_progress "canary $rel"
    step "Rolling out $service $rel to $percent% of instances ($n/$INSTANCES)"
    step "  image $(image "$rel") digest sha256:7c1e04b9a3f2 (signed, provenance verified)"
    for ((i = 1; i <= n; i++)); do
        inst="$service-$(slug "$rel")-$i"
        step "  $inst: starting"
        if ((i == n)) && fault_requested canary; then
            die "  $inst: readiness probe failed: GET /healthz -> 503 (upstream payments-api: connection refused)" \
                "error: canary instance $inst not ready after 120s; rollout halted at $((i - 1))/$n" \
                "error: $((i - 1)) canary instance(s) are live on $rel and take traffic"
        fi
        state_set new_count "$i"
        state_set old_count "$((INSTANCES - i))"
        step "  $inst: ready (readiness 6.${i}s), registered with load balancer"
    done
    warn "instance $service-$(slug "$rel")-1 took 9.8s to pass readiness (slow start, JIT warm-up)"
    state_set canary "$rel $percent"
    weights "$percent"
    state_del rollout_in_progress
    say "Canary live: $n/$INSTANCES instances on $rel, $((INSTANCES - n)) on $previous_release"
    ;;
--all)
    rel=${arg:-$release}
    if [[ -z $(state_get canary "") ]]; then
        warn "no canary of $rel found; rolling out to every instance without one"
    fi
    state_set rollout_in_progress "all $rel"
    start=$(new_count)
    step "Rolling out $service $rel to the remaining $((INSTANCES - start)) instances (batches of 4, max unavailable 0)"
    batch=0
    for ((done_n = start; done_n < INSTANCES; )); do
        batch=$((batch + 1))
        size=$((INSTANCES - done_n < 4 ? INSTANCES - done_n : 4))
        step "  batch $batch: starting $size instances on $rel"
        if ((batch == 3)) && fault_requested all; then
            die "  batch $batch: instance $service-$(slug "$rel")-$((done_n + 2)): CrashLoopBackOff (exit 2: config key 'payments.timeout' invalid)" \
                "error: rollout halted at batch $batch; $done_n/$INSTANCES instances on $rel, $((INSTANCES - done_n)) on $previous_release"
        fi
        done_n=$((done_n + size))
        state_set new_count "$done_n"
        state_set old_count "$((INSTANCES - done_n))"
        step "  batch $batch: $size/$size ready; draining $size instances of $previous_release ... done"
    done
    state_set version "$rel"
    state_del canary
    state_del rollout_in_progress
    weights 100
    say "Rollout complete: $INSTANCES/$INSTANCES instances on $rel; $previous_release pool kept at 0 replicas for rollback"
    ;;
--halt)
    if fault_requested halt rollback; then
        die "error: could not pause the rollout: deploy API returned 409 (rollout lock held by another operator)"
    fi
    in_progress=$(state_get rollout_in_progress "")
    if [[ -n $in_progress ]]; then
        step "Rollout in progress ($in_progress): pausing"
        step "  rollout paused at $(new_count)/$INSTANCES instances on the new release"
        state_del rollout_in_progress
        say "Deployment stopped"
    else
        step "Checking for a rollout in progress for $service ..."
        say "No rollout in progress (new release on $(new_count)/$INSTANCES instances); nothing to stop"
    fi
    ;;
--scale-previous)
    prev=${arg:-$previous_release}
    have=$(old_count)
    step "Scaling $service $prev from $have to $INSTANCES instances"
    if fault_requested scale-previous rollback; then
        die "error: insufficient capacity: 0/$((INSTANCES - have)) new instances scheduled (quota 'instances' exhausted in eu-west-1b)"
    fi
    for ((n = have; n < INSTANCES; )); do
        n=$((n + 5 > INSTANCES ? INSTANCES : n + 5))
        step "  $prev: $n/$INSTANCES ready"
    done
    state_set old_count "$INSTANCES"
    say "$prev running at full size ($INSTANCES/$INSTANCES instances ready)"
    ;;
--rollback)
    prev=${arg:-$previous_release}
    ready=$(old_count)
    step "Directing traffic for $service to $prev"
    if fault_requested rollback rollback; then
        die "error: load balancer update rejected: target group for $prev has 0 healthy targets"
    fi
    if ((ready < INSTANCES)); then
        warn "$prev has only $ready/$INSTANCES instances ready; shifting traffic anyway"
    fi
    step "  load balancer weights: $prev=100 $release=0"
    step "  draining connections on $(new_count) instances of $release (max 30s) ... done"
    state_set version "$prev"
    state_set new_count 0
    state_del canary
    state_del rollout_in_progress
    say "All traffic on $prev"
    ;;
*)
    die "usage: deploy.sh --canary PERCENT RELEASE | --all RELEASE | --halt | --scale-previous PREVIOUS | --rollback PREVIOUS"
    ;;
esac
