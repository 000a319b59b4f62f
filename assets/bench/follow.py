#!/usr/bin/env python3
"""Following a log over SSH: bytes the terminal UI writes to its terminal per second while a step
prints a steady log, against the bytes of the log lines themselves.

For each rate (20 and 200 lines a second by default) the real binary runs a one-step runbook in a
pseudo-terminal of COLSxROWS (120x36 by default), following the step's log. After a warm-up, for
--seconds, it counts the bytes written to the terminal (everything: escapes, frames, the header's
clock) and the bytes the step wrote to its log file in the same window (its lines, newlines
included). The ratio is terminal bytes / log bytes. Frames are counted as synchronized-update begins.

Usage: python3 assets/bench/follow.py [--rates 20,200] [--seconds 10] [--size 120x36] [--repeats 3]
Run from the repository root after `cargo build --release` (or BIN=target/debug/runbook: the bytes
do not depend on the build). Linux; standard library only. Leaves no process behind.
"""
import argparse, glob, os, shutil, statistics, sys, tempfile, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptyrun import Pty, count_frames, provenance, text_pattern  # noqa: E402

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))

# A steady log: one line every 1/rate seconds, paced against the clock (no drift), 60 to 100 bytes
# each, different from one line to the next as a real log is (a few kinds of message in turn).
GENERATOR = r'''
import sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
i = 0
while True:
    at = start + i / rate
    if at - start > seconds:
        break
    pause = at - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    kind = (i * 2654435761 >> 11) % 5
    if kind == 0:
        line = "%06d INFO checkout-7f9c: GET /api/cart/%d 200 in %dms" % (i, i * 7919 % 100000, 3 + i % 53)
    elif kind == 1:
        line = "%06d DEBUG pool: %d idle, %d busy connections to db-primary:5432" % (i, i % 17, i % 9)
    elif kind == 2:
        line = "%06d INFO rollout: pod checkout-%x ready (%d/40), waiting for readiness probes" % (i, i * 2654435761 % 16**6, i % 40)
    elif kind == 3:
        line = "%06d WARN cache: miss ratio %.3f above 0.2 for region eu-west-1" % (i, (i % 100) / 250)
    else:
        line = "%06d INFO http: POST /api/orders %d bytes from 10.%d.%d.%d" % (i, 200 + i % 3000, i % 256, i * 3 % 256, i * 7 % 256)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    i += 1
'''

RUNBOOK = """
[runbook]
title = "Follow a steady log"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "tail"
title = "A step printing {rate} lines a second"
run = "python3 -u gen.py {rate} {length}"
"""


def measure(rate, seconds, warmup, cols, rows, tmp):
    folder = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(folder, "gen.py"), "w") as f:
        f.write(GENERATOR)
    book = os.path.join(folder, "follow.toml")
    with open(book, "w") as f:
        f.write(RUNBOOK.format(rate=rate, length=warmup + seconds + 30))
    state = os.path.join(folder, "state")
    p = Pty([BIN, "run", book, "--state-dir", state], cwd=folder, cols=cols, rows=rows)
    try:
        if p.wait_for(text_pattern("INFO"), timeout=15) is None:
            raise SystemExit(f"the first log line never appeared on screen (rate {rate})")
        time.sleep(warmup)
        logs = glob.glob(os.path.join(state, "runs", "*", "logs", "deploy--tail--1.log"))
        if not logs:
            raise SystemExit("no log file found")
        t0, term0, log0 = time.perf_counter(), p.size(), os.path.getsize(logs[0])
        time.sleep(seconds)
        t1, term1, log1 = time.perf_counter(), p.size(), os.path.getsize(logs[0])
        frames = count_frames(p.buf, term0, term1)
    finally:
        p.close()
    span = t1 - t0
    return {
        "term_bps": (term1 - term0) / span,
        "log_bps": (log1 - log0) / span,
        "frames": frames / span,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="20,200")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--size", default="120x36")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    cols, rows = (int(x) for x in a.size.split("x"))
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} not found: cargo build --release (or set BIN)")
    print(f"binary {BIN}: {provenance(BIN)}")
    print(f"terminal {cols}x{rows}, {a.seconds:g} s windows after {a.warmup:g} s, {a.repeats} runs each")
    tmp = tempfile.mkdtemp(prefix="rb-bench-follow-")
    try:
        for rate in (float(r) for r in a.rates.split(",")):
            runs = [measure(rate, a.seconds, a.warmup, cols, rows, tmp) for _ in range(a.repeats)]
            ratio = [r["term_bps"] / r["log_bps"] for r in runs]
            k = ratio.index(statistics.median(ratio)) if len(ratio) % 2 else 0
            mid = runs[k]
            print(f"{rate:g} lines/s: terminal {mid['term_bps']:.0f} B/s, log lines {mid['log_bps']:.0f} B/s, "
                  f"{statistics.median(ratio):.2f}x the lines (runs: {', '.join(f'{x:.2f}' for x in ratio)}), "
                  f"{mid['frames']:.1f} frames/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
