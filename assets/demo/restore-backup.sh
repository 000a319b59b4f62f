#!/usr/bin/env bash
# Restore the checkout database from the pre-deployment backup, if the schema changed since it was taken.
#   restore-backup.sh [--force]   (--force restores even when the schema is unchanged)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

name=$(state_get latest_backup "")
if [[ -z $name && ! -f $STATE_DIR/schema_version ]]; then
    say "No pre-deployment backup was taken and no migration was applied: restore not needed"
    exit 0
fi
[[ -n $name && -f $STATE_DIR/backups/$name.dump ]] ||
    die "error: the schema was migrated but no pre-deployment backup is in $STATE_DIR/backups; restore by hand from the latest automated snapshot"
dump="$STATE_DIR/backups/$name.dump"
backup_schema=$(sed -n 's/^schema_version=//p' "$dump")
current=$(state_get schema_version "$BASE_SCHEMA")

step "Pre-deployment backup: $name.dump (schema $backup_schema); production schema: $current"
if [[ $current == "$backup_schema" && ${1:-} != --force ]]; then
    say "Schema unchanged since the backup: restore not needed"
    exit 0
fi
(cd "$STATE_DIR/backups" && sha256sum --quiet -c "$name.dump.sha256") ||
    die "error: backup $name.dump failed its checksum; not restoring"
warn "restoring discards writes made after the backup; orders since then are re-imported from the outbox afterwards"
step "  setting ${service}-db read-only, terminating 42 connections"
step "  pg_restore --clean --if-exists --jobs=8 --dbname=${service}-db $name.dump"
if fault_requested; then
    die "pg_restore: error: could not execute query: ERROR:  out of shared memory" \
        "HINT:  You might need to increase max_locks_per_transaction." \
        "pg_restore: warning: errors ignored on restore: 1; database left read-only"
fi
step "  restoring data: customers, carts, orders ..."
step "  restoring data: order_items, payment_intents ..."
step "  rebuilding 61 indexes, validating 37 foreign keys ..."
state_set schema_version "$backup_schema"
step "  re-importing 1,318 orders from the outbox ... done; ${service}-db read-write"
say "Restored ${service}-db from $name.dump: schema $current -> $backup_schema"
