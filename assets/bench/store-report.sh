#!/usr/bin/env bash
# `runbook report RUN` read from the shared store, against the same report read from the run folder:
# the shipped rollout (`runbooks/production-rollout.toml`, headless, --yes, simulated metrics,
# canary_watch=20s, monitoring_window=10s: about two minutes) run with `--store` on a local
# PostgreSQL that this script starts (store-pg.sh). The two Markdown reports are compared first
# (they must be the same bytes), then timed with hyperfine: the run folder by its path, and the run
# by its id from a state dir that does not have it (so from the store: open it, find the run, read
# its journal lines and the ends of the failed attempts' logs).
#
# Usage: assets/bench/store-report.sh [runs]   (default 20)
# Run from the repository root after `cargo build --release` (or BIN=target/debug/runbook).
set -euo pipefail

BIN=$(realpath "${BIN:-target/release/runbook}")
[ -x "$BIN" ] || { echo "store-report.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }
RUNS=${1:-20}
ROOT=$(pwd)
source "$(dirname "$0")/store-pg.sh"

"$BIN" run "$ROOT/runbooks/production-rollout.toml" --headless --yes --simulate-metrics \
  --var canary_watch=20s --var monitoring_window=10s \
  --state-dir "$DIR/state" --store "$STORE" >"$DIR/out.txt" 2>&1 || {
  echo "store-report.sh: the run failed:" >&2; tail -20 "$DIR/out.txt" >&2; exit 1; }
run=$(ls "$DIR/state/runs" | sort | tail -1)
echo "run $run: $(wc -l <"$DIR/state/runs/$run/journal.jsonl") journal lines, $(sql "SELECT count(*) FROM events WHERE run_id = '$run'") in the store"
"$BIN" report "$DIR/state/runs/$run" >"$DIR/local.md"
"$BIN" report "$run" --state-dir "$DIR/elsewhere" --store "$STORE" >"$DIR/store.md"
cmp "$DIR/local.md" "$DIR/store.md"
echo "the two reports are the same $(wc -c <"$DIR/local.md") bytes"
hyperfine --warmup 2 --runs "$RUNS" -N \
  -n "report RUN_DIR (the run folder)" "$BIN report $DIR/state/runs/$run" \
  -n "report RUN_ID (the store's copy)" "$BIN report $run --state-dir $DIR/elsewhere --store $STORE"
