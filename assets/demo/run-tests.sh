#!/usr/bin/env bash
# Pre-deployment test suites against staging for the release about to ship.
#   run-tests.sh integration | performance | security
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

suite=${1:-}
target=${TEST_TARGET:-staging}

case $suite in
integration)
    step "Running integration tests for $service $release against $target (214 tests, 8 workers)"
    step "  cart ........................................ 38 passed"
    step "  catalog ..................................... 27 passed"
    if fault_requested integration; then
        say "  payments .................................... 51 passed, 1 failed"
        die "FAILED payments::test_3ds_challenge_flow - expected status 'succeeded', got 'requires_action'" \
            "1 failed, 211 passed, 2 skipped in 41.8s"
    fi
    step "  payments .................................... 52 passed"
    step "  orders ...................................... 61 passed"
    step "  webhooks .................................... 34 passed, 2 skipped"
    warn "2 tests skipped (marked flaky): test_refund_partial_webhook, test_webhook_retry_backoff"
    say "212 passed, 2 skipped in 41.3s"
    ;;
performance)
    step "Load test 'checkout_peak' against $target ($service $release): 300 VUs, 30s ramp, 2m steady"
    step "  ramping up ... 100 VUs"
    step "  ramping up ... 300 VUs"
    step "  steady state ... 1,842 req/s"
    step "  steady state ... 1,851 req/s"
    if fault_requested performance; then
        say "  http_req_duration ......... p95=1.42s  p99=2.87s"
        die "  threshold 'p95<400ms' crossed: p95=1.42s" \
            "error: performance thresholds failed (1 of 3)"
    fi
    step "  http_req_duration ......... p95=212ms  p99=391ms   (threshold p95<400ms) ok"
    step "  http_req_failed ........... 0.03%              (threshold <0.5%) ok"
    step "  checks .................... 99.98%             (threshold >99.9%) ok"
    say "Performance tests completed: all thresholds met (baseline $previous_release: p95=205ms)"
    ;;
security)
    image="registry.example.com/$service:$release"
    step "Scanning image $image (OS packages and Go modules)"
    step "  base image debian:12.8-slim ... 97 packages"
    step "  go.sum ... 143 modules"
    if fault_requested security; then
        die "CRITICAL  golang.org/x/crypto  v0.28.0  CVE-2024-45337  fixed in v0.31.0" \
            "error: 1 CRITICAL vulnerability found in $image (policy: 0 CRITICAL, 0 HIGH)"
    fi
    step "  vulnerabilities: CRITICAL 0  HIGH 0  MEDIUM 2  LOW 7"
    warn "MEDIUM  libgnutls30  CVE-2024-12243 (no fix available in debian 12, accepted until next base image)"
    step "  secrets scan: 0 findings; SAST: 0 new findings since $previous_release"
    say "Security scans completed: policy passed (0 CRITICAL, 0 HIGH)"
    ;;
*)
    die "usage: run-tests.sh integration | performance | security"
    ;;
esac
