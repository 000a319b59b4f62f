#!/usr/bin/env bash
# `runbook report` on a generated 10,000-event journal: wall time of the release binary, several runs.
#
# Usage: assets/bench/report.sh [EVENTS] [RUNS]      (defaults: 10000 events, 20 runs)
# Run from the repository root after `cargo build --release`. Needs python3.
# The journal looks like a long real run: 2 sessions (run, then resume), 400 steps with retries,
# confirmations and skips, metrics sampled every 5s for 6 metrics, triggers, notes, a rollback with
# its cancelled steps, and rehearsal figures. Target: under 100 ms per report.
set -euo pipefail

EVENTS=${1:-10000}
RUNS=${2:-20}
BIN=${BIN:-target/release/runbook}
[ -x "$BIN" ] || { echo "report.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rb-bench-report-XXXXXX")
trap 'rm -rf "$DIR"' EXIT

python3 - "$DIR/journal.jsonl" "$EVENTS" <<'PY'
import json, random, sys
from datetime import datetime, timedelta, timezone

path, total = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
t = datetime(2026, 11, 26, 21, 0, 0, tzinfo=timezone.utc)
lines = []

def emit(event, **fields):
    global t
    t += timedelta(milliseconds=rnd.randint(5, 900))
    rec = {"ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z", "event": event}
    rec.update(fields)
    lines.append(json.dumps(rec, separators=(",", ":")))

def run_started(mode, operator):
    emit("run_started", runbook="production-rollout", title="Production rollout: checkout",
         file="runbooks/production-rollout.toml", sha256="ab" * 32, operator=operator, host="bastion-1",
         mode=mode, vars={"release": "v2.14.0", "service": "checkout"}, pid=4242)

METRICS = ["error_rate", "p99_latency", "cpu", "queue_depth", "db_connections", "success_rate"]

def sample():
    values = {m: (None if rnd.random() < 0.01 else round(rnd.uniform(0, 100), 4)) for m in METRICS}
    errors = {m: "no data" for m, v in values.items() if v is None}
    fields = {"values": values}
    if errors:
        fields["errors"] = errors
    emit("metrics_sampled", **fields)

run_started("run", "alice")
budget = total - 39          # the ending below is 39 events
phase, step = 0, 0
while len(lines) < budget * 0.45:
    if step == 0 or rnd.random() < 0.05:
        phase += 1
        step = 0
    step += 1
    p, s = f"phase-{phase}", f"step-{step}"
    attempts = 2 if rnd.random() < 0.1 else 1
    for a in range(1, attempts + 1):
        emit("step_started", phase=p, step=s, attempt=a, rollback=False)
        for _ in range(rnd.randint(1, 3)):
            sample()
        kind = rnd.random()
        if a < attempts:
            emit("step_finished", phase=p, step=s, attempt=a, rollback=False, status="failed",
                 duration_ms=rnd.randint(100, 9000), exit_code=1, log=f"logs/{p}--{s}--{a}.log")
        elif kind < 0.3:
            emit("step_finished", phase=p, step=s, attempt=a, rollback=False, status="confirmed",
                 duration_ms=rnd.randint(100, 90000), by="alice", metrics={"error_rate": 0.002})
        elif kind < 0.33:
            emit("step_finished", phase=p, step=s, attempt=a, rollback=False, status="skipped",
                 duration_ms=0, reason="done by hand | see ticket\nOPS-1")
        else:
            emit("step_finished", phase=p, step=s, attempt=a, rollback=False, status="succeeded",
                 duration_ms=rnd.randint(100, 9000), exit_code=0, log=f"logs/{p}--{s}--{a}.log")
    if rnd.random() < 0.05:
        emit("note", text=f"looks fine after {p}/{s}", operator="alice")
    if rnd.random() < 0.03:
        emit("trigger_pending", trigger="error-rate", value=0.012)
        emit("trigger_cleared", trigger="error-rate", value=0.004)
emit("run_finished", outcome="interrupted", exit_code=130, reason="the terminal hung up (SIGHUP)")
run_started("resume", "bob")
while len(lines) < budget:
    sample()
emit("trigger_pending", trigger="error-rate", value=0.013)
emit("trigger_fired", trigger="error-rate", value=0.021)
emit("rollback_started", reason="trigger:error-rate")
for i in range(1, 20):
    emit("step_finished", phase=f"phase-{phase}", step=f"later-{i}", attempt=0, rollback=False,
         status="cancelled", duration_ms=0)
for i in range(1, 8):
    emit("step_started", phase="immediate", step=f"undo-{i}", attempt=1, rollback=True)
    emit("step_finished", phase="immediate", step=f"undo-{i}", attempt=1, rollback=True,
         status="succeeded", duration_ms=rnd.randint(100, 5000), exit_code=0)
emit("rollback_finished", status="succeeded")
emit("rehearsal_figures", fired_to_decision_ms=1250, rollback_ms=48000)
emit("run_finished", outcome="rolled_back", exit_code=3)
while len(lines) > total:    # exactly `total` events: trim samples from the middle
    for i in range(len(lines) // 2, len(lines)):
        if '"metrics_sampled"' in lines[i]:
            del lines[i]
            break
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
PY

echo "journal: $(wc -l < "$DIR/journal.jsonl") events, $(du -k "$DIR/journal.jsonl" | cut -f1) KiB"
"$BIN" report "$DIR/journal.jsonl" -o "$DIR/report.md"
echo "report: $(wc -l < "$DIR/report.md") lines of Markdown"

python3 - "$BIN" "$DIR/journal.jsonl" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
bin_, journal, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for fmt in ("markdown", "json"):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([bin_, "report", journal, "--format", fmt], check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"{fmt:8} {runs} runs: min {times[0]:.1f} ms, median {statistics.median(times):.1f} ms, "
          f"max {times[-1]:.1f} ms")
PY
