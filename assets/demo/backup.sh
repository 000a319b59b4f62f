#!/usr/bin/env bash
# Database backups for the checkout database (demo: nothing leaves this machine).
#   backup.sh --latest   check that the latest automated snapshot completed and is recent
#   backup.sh --full     take a full logical backup before the deploy (kept in the demo state)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

db="${service}-db"
mode=${1:---latest}

case $mode in
--latest)
    step "Checking automated snapshots for $db (primary: $db-prod-1, region eu-west-1)"
    step "  listing snapshots ... 14 daily, 8 weekly retained"
    if fault_requested latest; then
        say "  latest: $db-auto-nightly  status=failed  age=29h41m"
        die "error: latest automated snapshot $db-auto-nightly is in state 'failed'" \
            "error: newest completed snapshot is 29h41m old (limit 26h); refusing to continue"
    fi
    step "  latest: $db-auto-nightly  status=completed  size=41.7 GiB  age=5h12m"
    step "  point-in-time recovery: enabled, WAL archived up to 14s ago"
    say "Database backup completed: latest automated snapshot is usable for restore"
    ;;
--full)
    name="$service-pre-$release"
    dump="$STATE_DIR/backups/$name.dump"
    mkdir -p "$STATE_DIR/backups"
    schema=$(state_get schema_version "$BASE_SCHEMA")
    step "pg_dump --format=directory --jobs=4 --file=$name.dump $db (read replica $db-prod-2)"
    step "pg_dump: last built-in OID is 16383"
    step "pg_dump: reading extensions, schemas, tables ..."
    printf 'pg_dump: warning: there are circular foreign-key constraints on this table:\npg_dump: detail: order_items\n' >&2
    step "pg_dump: dumping contents of table \"public.customers\" (1,184,202 rows)"
    step "pg_dump: dumping contents of table \"public.carts\" (3,441,907 rows)"
    if fault_requested full; then
        die "pg_dump: error: Dumping the contents of table \"orders\" failed: PQgetResult() failed." \
            "pg_dump: detail: Error message from server: ERROR:  canceling statement due to conflict with recovery" \
            "pg_dump: detail: User query might have needed to see row versions that must be removed."
    fi
    step "pg_dump: dumping contents of table \"public.orders\" (12,904,331 rows)"
    step "pg_dump: dumping contents of table \"public.order_items\" (38,227,610 rows)"
    step "pg_dump: dumping contents of table \"public.payment_intents\" (12,871,044 rows)"
    {
        printf 'service=%s\nrelease_live=%s\nschema_version=%s\n' "$service" "$(live_version)" "$schema"
        printf 'tables=customers,carts,orders,order_items,payment_intents\n'
        printf 'rows=68629094\n'
    } >"$dump"
    (cd "$STATE_DIR/backups" && sha256sum "$name.dump" >"$name.dump.sha256")
    state_set latest_backup "$name"
    step "pg_dump: finished main parallel loop"
    say "backup written: $name.dump (12.4 GiB, schema $schema), checksum $(cut -c1-12 "$dump.sha256")..."
    say "location: $dump"
    ;;
*)
    die "usage: backup.sh --latest | --full"
    ;;
esac
