#!/usr/bin/env python3
"""A receiver that answers after 30 s delays no step: the same 20-step runbook (`run = "true"`),
headless, with no [[notify]] target, and with one that is sent step_started, step_finished,
run_started and run_finished (42 notifications) by a receiver on 127.0.0.1 that waits 30 s before it
answers. Measured from the journal: run_started to run_finished (the run itself), and the wall time
of the whole process (which adds the 5 s given to pending notifications at the end, when some are
pending).

Usage: python3 assets/bench/notify-slow.py [--runs N]
Run from the repository root after `cargo build --release` (or BIN=target/debug/runbook).
Standard library only; the receiver stops with the script.
"""
import argparse, glob, http.server, json, os, shutil, statistics, subprocess, tempfile, threading, time
from datetime import datetime

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))


class Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(30)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def runbook(port):
    steps = "".join(f'[[phase.step]]\ntitle = "Step {i}"\nrun = "true"\n\n' for i in range(1, 21))
    target = "" if port is None else (
        f'[[notify]]\nid = "slow"\nurl = "http://127.0.0.1:{port}/"\n'
        'on = ["run_started", "step_started", "step_finished", "run_finished"]\n\n'
    )
    return f'[runbook]\ntitle = "Bench"\n\n{target}[[phase]]\ntitle = "P"\n\n{steps}'


def once(tmp, text):
    rb = os.path.join(tmp, "rb.toml")
    state = os.path.join(tmp, "state")
    shutil.rmtree(state, ignore_errors=True)
    with open(rb, "w") as f:
        f.write(text)
    t0 = time.monotonic()
    subprocess.run([BIN, "run", rb, "--headless", "--state-dir", state],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - t0
    journal = [json.loads(l) for l in open(glob.glob(os.path.join(state, "runs/*/journal.jsonl"))[0])]
    ts = {r["event"]: datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in journal
          if r["event"] in ("run_started", "run_finished")}
    unsent = sum(1 for r in journal if r["event"] == "notify_failed")
    return (ts["run_finished"] - ts["run_started"]).total_seconds() * 1000, wall * 1000, unsent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        raise SystemExit(f"notify-slow.py: {BIN} is missing; run cargo build --release first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    tmp = tempfile.mkdtemp(prefix="rb-bench-notify-")
    try:
        for name, p in (("no target", None), ("30 s-slow receiver", port)):
            runs = [once(tmp, runbook(p)) for _ in range(args.runs)]
            run_ms = statistics.median(r[0] for r in runs)
            wall_ms = statistics.median(r[1] for r in runs)
            print(f"{name:>20}: run {run_ms:.0f} ms (median of {args.runs}; "
                  f"{min(r[0] for r in runs):.0f}-{max(r[0] for r in runs):.0f}), "
                  f"process {wall_ms:.0f} ms, not sent {runs[0][2]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        server.shutdown()


if __name__ == "__main__":
    main()
