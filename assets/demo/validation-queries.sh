#!/usr/bin/env bash
# Validation queries after a rollback: the data the previous release relies on is there and consistent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

schema=$(state_get schema_version "$BASE_SCHEMA")
step "Running validation queries on ${service}-db for $previous_release"
step "  SELECT max(version) FROM schema_migrations                          -> $schema"
step "  SELECT count(*) FROM orders WHERE created_at > now() - '1 hour'     -> 1,204 (expected > 0)"
step "  SELECT count(*) FROM payment_intents WHERE order_id IS NULL           -> 0"
if fault_requested; then
    die "  SELECT sum(total) FROM orders vs. ledger_entries (last 24h)           -> mismatch 1,842.17 EUR" \
        "error: validation query 'orders_vs_ledger' failed"
fi
step "  SELECT sum(total) FROM orders vs. ledger_entries (last 24h)           -> match"
if [[ $schema > $BASE_SCHEMA ]]; then
    warn "schema is at $schema, ahead of $previous_release's $BASE_SCHEMA; the staging dry run showed $previous_release runs on it"
fi
if [[ $schema > 20241125_0149 ]]; then
    warn "carts.legacy_cart_token is gone (migration 0150); $previous_release falls back to session tokens for guest carts"
fi
say "Validation queries passed"
