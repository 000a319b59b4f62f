#!/usr/bin/env bash
# The shared store's size for the shipped rollout: `runbooks/production-rollout.toml` run headless
# with --yes and simulated metrics (the demo scripts of assets/demo/ stand for the real tools;
# canary_watch=20s, monitoring_window=10s: about two minutes), with `--store` on a local PostgreSQL
# that this script starts (store-pg.sh). Reported: rows and bytes of each table
# (pg_total_relation_size: table, indexes and TOAST), against the run folder on disk.
#
# Usage: assets/bench/store-size.sh [extra runbook flags]
# Run from the repository root after `cargo build --release`, or with BIN=target/debug/runbook (the
# sizes do not depend on the build). Every table of the store's schema is listed, whatever its
# version (a table that this run leaves empty, such as `requests` or `locks`, shows 0 rows).
set -euo pipefail

BIN=$(realpath "${BIN:-target/release/runbook}")
[ -x "$BIN" ] || { echo "store-size.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }
ROOT=$(pwd)
source "$(dirname "$0")/store-pg.sh"

"$BIN" run "$ROOT/runbooks/production-rollout.toml" --headless --yes --simulate-metrics \
  --var canary_watch=20s --var monitoring_window=10s \
  --state-dir "$DIR/state" --store "$STORE" "$@" >"$DIR/out.txt" 2>&1 || {
  echo "store-size.sh: the run failed:" >&2; tail -20 "$DIR/out.txt" >&2; exit 1; }
run=$(ls "$DIR/state/runs" | sort | tail -1)
echo "run $run: $(wc -l <"$DIR/state/runs/$run/journal.jsonl") journal lines, \
$(ls "$DIR/state/runs/$run/logs" | wc -l) log files; run folder on disk: \
$(du -sb "$DIR/state/runs/$run" | cut -f1) bytes (journal $(stat -c %s "$DIR/state/runs/$run/journal.jsonl"), \
logs $(cat "$DIR/state/runs/$run"/logs/*.log | wc -c))"
echo
printf '%-15s %8s %12s %14s\n' table rows bytes "data bytes"
for t in $(sql "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY relname"); do
  case $t in
    events) data="sum(length(line))" ;;
    log_chunks) data="sum(length(data))" ;;
    *) data="NULL" ;;
  esac
  sql "SELECT '$t', count(*), pg_total_relation_size('$t'), coalesce($data::text, '-') FROM $t" |
    awk -F'|' '{ printf "%-15s %8s %12s %14s\n", $1, $2, $3, $4 }'
done
sql "SELECT 'total', '', sum(pg_total_relation_size(c.oid)), '' FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'" |
  awk -F'|' '{ printf "%-15s %8s %12s %14s\n", $1, $2, $3, $4 }'
echo
echo "events by kind:"
sql "SELECT event, count(*), sum(length(line)) FROM events GROUP BY event ORDER BY 2 DESC" |
  awk -F'|' '{ printf "  %-24s %6s rows %9s bytes\n", $1, $2, $3 }'
