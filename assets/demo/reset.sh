#!/usr/bin/env bash
# Forget the demo state (live version, backups, workers, schema), so the next demo starts from
# production running $previous_release. Only needed when the tool does not give each run its own
# RUNBOOK_RUN_DIR and the state is shared in ${TMPDIR:-/tmp}/runbook-demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

rm -rf -- "$STATE_DIR"
say "Demo state cleared: $STATE_DIR"
