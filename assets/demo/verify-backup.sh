#!/usr/bin/env bash
# Verify the pre-deployment backup: checksum, table of contents, and a test restore of the schema.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

name=$(state_get latest_backup "")
[[ -n $name ]] || die "error: no pre-deployment backup recorded in $STATE_DIR/backups" \
    "hint: run ./assets/demo/backup.sh --full first"
dump="$STATE_DIR/backups/$name.dump"
[[ -f $dump ]] || die "error: backup $name.dump is missing from $STATE_DIR/backups"

step "Verifying backup $name.dump"
if fault_requested verify || ! (cd "$STATE_DIR/backups" && sha256sum --quiet -c "$name.dump.sha256" >/dev/null 2>&1); then
    die "$name.dump: FAILED" "sha256sum: WARNING: 1 computed checksum did NOT match" \
        "error: backup $name.dump is corrupt; take a new backup before migrating"
fi
step "  checksum: OK (sha256 $(cut -c1-12 "$dump.sha256")...)"
step "  pg_restore --list: 412 entries (5 tables with data, 37 foreign keys, 61 indexes)"
schema=$(sed -n 's/^schema_version=//p' "$dump")
step "  schema version in backup: $schema"
step "  test restore of schema into scratch database ${service}_restore_check ... ok (2.1s)"
step "  row count sample: orders 12,904,331 / 12,904,331 (match)"
say "Backup $name.dump verified: restorable"
