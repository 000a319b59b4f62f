#!/usr/bin/env bash
# Data integrity checks on the checkout database.
#   integrity-check.sh              after the migrations (forward run)
#   integrity-check.sh --rollback   after a rollback / restore
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

ctx=forward
[[ ${1:-} == --rollback ]] && ctx=rollback
schema=$(state_get schema_version "$BASE_SCHEMA")

step "Data integrity checks on ${service}-db (schema $schema, live release $(live_version))"
step "  foreign keys validated: 37/37"
step "  orders without order_items: 0"
if fault_requested check "$ctx"; then
    die "  payment_intents referencing missing orders: 412" \
        "error: integrity check failed: 412 payment_intents rows reference orders that do not exist" \
        "error: first offending ids: pi_3QbX91, pi_3QbX97, pi_3QbXa2 (see ${service}_integrity.report)"
fi
step "  payment_intents referencing missing orders: 0"
step "  order totals vs. ledger (last 24h): 48,211 orders, difference 0.00 EUR"
if [[ $schema > 20241121_0148 ]]; then
    step "  payment_intents.status NULL rows: 0 (backfill 0149 complete)"
fi
warn "3 carts with NULL currency (known issue CHK-2291, ignored)"
say "Data integrity: OK"
