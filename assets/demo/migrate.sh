#!/usr/bin/env bash
# Schema migrations for the checkout database.
#   migrate.sh --dry-run [--env staging]   apply the pending migrations to a staging clone, then roll back
#   migrate.sh --apply                     apply the pending migrations to production (irreversible: 0150 drops a column)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

mode=${1:-}
env_name=production
[[ ${2:-} == --env ]] && env_name=${3:-staging}

migrations=(
    "20241118_0148_add_orders_idempotency_key"
    "20241121_0149_backfill_payment_intent_status"
    "20241125_0150_drop_carts_legacy_cart_token"
)
current=$(state_get schema_version "$BASE_SCHEMA")
pending=()
for m in "${migrations[@]}"; do
    [[ ${m:0:13} > $current ]] && pending+=("$m")
done

case $mode in
--dry-run)
    [[ $env_name == production ]] && env_name=staging
    step "Migration dry run on $env_name for $service $release"
    step "  cloning $env_name database from latest snapshot ... ${service}_migrate_check ready"
    step "  schema version: $BASE_SCHEMA, ${#migrations[@]} pending"
    for m in "${migrations[@]}"; do
        if [[ $m == *0149* ]] && fault_requested dry-run; then
            die "  $m: ERROR:  column \"status\" of relation \"payment_intents\" contains null values" \
                "  CONTEXT:  SQL statement \"ALTER TABLE payment_intents ALTER COLUMN status SET NOT NULL\"" \
                "error: dry run failed at $m; nothing was changed on $env_name"
        fi
        case $m in
        *0148*) step "  $m ... ok (0.4s, lock on orders held 38ms)" ;;
        *0149*) step "  $m ... ok (1.9s, 12,871,044 rows updated in batches of 10,000)" ;;
        *0150*) step "  $m ... ok (0.1s)  IRREVERSIBLE: drops carts.legacy_cart_token" ;;
        esac
    done
    step "  $release boots against the migrated schema: ok; $previous_release boots against it: ok"
    say "Dry run passed on $env_name; clone dropped"
    ;;
--apply)
    if [[ -z $(state_get latest_backup "") ]]; then
        warn "no pre-deployment backup recorded for this run (expected after 'Take full database backup')"
    fi
    step "Applying schema migrations to ${service}-db (production), lock_timeout=5s statement_timeout=15min"
    step "  schema version: $current, ${#pending[@]} pending"
    if ((${#pending[@]} == 0)); then
        say "Nothing to migrate: schema already at $current"
        exit 0
    fi
    for m in "${pending[@]}"; do
        if [[ $m == *0149* ]] && fault_requested apply; then
            die "  $m: ERROR:  canceling statement due to lock timeout" \
                "  CONTEXT:  while updating tuple (88231,4) in relation \"payment_intents\"" \
                "error: migration $m rolled back; schema left at $(state_get schema_version "$BASE_SCHEMA")"
        fi
        case $m in
        *0148*)
            step "  $m ..."
            printf 'psql:%s.sql:9: NOTICE:  index "orders_idempotency_key_idx" does not exist, skipping\n' "$m" >&2
            step "  $m ... ok (0.6s)"
            ;;
        *0149*)
            step "  $m ... 4,000,000 / 12,871,044 rows"
            step "  $m ... 12,871,044 / 12,871,044 rows"
            step "  $m ... ok (2.3s)"
            ;;
        *0150*)
            step "  $m ... ok (0.1s)"
            ;;
        esac
        state_set schema_version "${m:0:13}"
    done
    say "Schema migrations applied: $current -> $(state_get schema_version "$BASE_SCHEMA")"
    ;;
*)
    die "usage: migrate.sh --dry-run [--env staging] | --apply"
    ;;
esac
