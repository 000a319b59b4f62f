#!/usr/bin/env bash
# What the shared store costs a chatty step: a run whose one step is `seq 2000000` (2M lines, about
# 15 MB of log), without a store and with `--store` on a local PostgreSQL that this script starts
# (store-pg.sh). Reported, over RUNS runs of each (interleaved):
#   step      the step itself: its journaled duration_ms (step_started → step_finished)
#   to last   from the exec of runbook to the last step's step_finished (start-up included)
#   wall      the whole command, exit included (the exit waits, at most 15 s, for the copy to end)
# then hyperfine's figure for the whole command, and whether the store has every byte of the log.
#
# Usage: assets/bench/store-flood.sh [RUNS]      (default: 10 runs of each)
# Run from the repository root after `cargo build --release`. Needs hyperfine and Debian's
# postgresql package.
set -euo pipefail

RUNS=${1:-10}
BIN=$(realpath "${BIN:-target/release/runbook}")
[ -x "$BIN" ] || { echo "store-flood.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "store-flood.sh: needs hyperfine" >&2; exit 2; }
source "$(dirname "$0")/store-pg.sh"

cat >"$DIR/flood.toml" <<'TOML'
[runbook]
title = "Flood"
[[phase]]
title = "Flood"
[[phase.step]]
title = "Two million lines"
run = "seq 2000000"
TOML

cd "$DIR"
BIN="$BIN" STORE="$STORE" RUNS="$RUNS" python3 - <<'PY'
import datetime, glob, json, os, statistics, subprocess, time

BIN, STORE, RUNS = os.environ["BIN"], os.environ["STORE"], int(os.environ["RUNS"])

def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def one(state, store):
    argv = [BIN, "run", "flood.toml", "--headless", "--state-dir", state] + (["--store", STORE] if store else [])
    t0 = time.time()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.time() - t0
    run = sorted(glob.glob(f"{state}/runs/*"))[-1]
    events = [json.loads(l) for l in open(f"{run}/journal.jsonl")]
    fin = [e for e in events if e["event"] == "step_finished"][-1]
    return fin["duration_ms"], (ts(fin["ts"]) - t0) * 1000, wall * 1000

one("warm-local", False); one("warm-store", True)
figures = {False: [], True: []}
for _ in range(RUNS):
    for store in (False, True):
        figures[store].append(one("state-store" if store else "state-local", store))

def show(xs):
    return f"median {statistics.median(xs):7.0f} ms  (mean {statistics.mean(xs):7.0f} ± {statistics.pstdev(xs):4.0f})"

for store in (False, True):
    rows = figures[store]
    print(("with store (local PostgreSQL)" if store else "no store"), f"— {RUNS} runs")
    for i, name in enumerate(["step", "to last", "wall"]):
        print(f"  {name:8} {show([r[i] for r in rows])}")
PY

hyperfine --warmup 1 --runs "$RUNS" \
  -n "no store" "$BIN run flood.toml --headless --state-dir $DIR/state-local >/dev/null 2>&1" \
  -n "with store (local PostgreSQL)" "$BIN run flood.toml --headless --state-dir $DIR/state-store --store '$STORE' >/dev/null 2>&1"

# Everything of the last run is in the store.
last=$(ls "$DIR/state-store/runs" | sort | tail -1)
echo "store has $(sql "SELECT sum(length(data)) FROM log_chunks WHERE run_id = '$last'") log bytes of $last"
echo "local log: $(stat -c %s "$DIR/state-store/runs/$last"/logs/*.log) bytes"
