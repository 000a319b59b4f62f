#!/usr/bin/env python3
"""Figures for `runbook attach` (a watcher), measured on the real release binary in pseudo-terminals.

  latency  the driver runs headless; a watcher (`runbook attach`, 80x24) runs in a pty. Two kinds of
           event, each timed from the driver's side to the moment its text reaches the watcher's
           terminal: (1) 100 lines of a running step's log, each carrying the wall-clock time at
           which the step printed it; (2) 100 notes sent to the driver over its control socket,
           timed from the `ts` of the `note` event in the journal (taken just before the driver
           writes and fsyncs the line). The figure includes the watcher's frame pacing (at most 20
           frames a second).
  flood    a step printing 2,000,000 lines (`seq 2000000`): the driver's wall time (spawn to exit)
           and the step's duration_ms, without a watcher and with one attached from the start,
           alternating runs; and how far behind the watcher is at the end (the journal's
           step_finished to the last line, 2000000, on the watcher's screen: the watcher runs in a
           tmux pane of 80x24 for this one, read back with capture-pane every 20 ms).
  idle     a driver (terminal UI in a pty, waiting on a manual step, two simulated metrics every
           5 s) and a watcher attached to it, side by side: the CPU time of each process over
           --idle-seconds (60), from /proc/PID/schedstat.

Usage: python3 assets/bench/attach.py [latency|flood|idle ...] [--repeats N] [--idle-seconds S]
Run from the repository root after `cargo build --release`. Linux; standard library only. Leaves
no process behind: every program's session is killed at the end.
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptyrun import Pty, TmuxServer, text_pattern  # noqa: E402

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))
TMP = tempfile.mkdtemp(prefix="rb-bench-attach-")
_live = []


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def spread(xs, unit="ms"):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (f"median {statistics.median(xs):.1f} {unit}, p95 {p95:.1f}, max {max(xs):.1f}, "
            f"min {min(xs):.1f} (n={len(xs)})")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def state_dir(tag):
    d = os.path.join(TMP, f"state-{tag}-{time.monotonic_ns()}")
    os.makedirs(d)
    return d


def run_dir(state, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = os.path.join(state, "runs")
        if os.path.isdir(runs) and os.listdir(runs):
            return os.path.join(runs, os.listdir(runs)[0])
        time.sleep(0.005)
    raise SystemExit(f"no run folder in {state}")


def journal(state):
    out = []
    try:
        with open(os.path.join(run_dir(state), "journal.jsonl")) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def wait_event(state, ok, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in journal(state):
            if ok(e):
                return e
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for an event in {state}")


def epoch(ts):
    from datetime import datetime
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=__import__("datetime").timezone.utc).timestamp()


def driver(runbook, state, headless=True):
    args = [BIN, "run", runbook, "--state-dir", state]
    if headless:
        p = subprocess.Popen(args + ["--headless"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=TMP, start_new_session=True)
    else:
        p = Pty(args, cwd=TMP, cols=80, rows=24)
    _live.append(p)
    return p


def watcher(state):
    p = Pty([BIN, "attach", "--state-dir", state], cwd=TMP, cols=80, rows=24)
    _live.append(p)
    return p


def perf_to_wall():
    """Offset from time.perf_counter() to the wall clock (time.time())."""
    return time.time() - time.perf_counter()


def note(run, text):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(os.path.join(run, "control.sock"))
    s.sendall((json.dumps({"op": "note", "text": text}) + "\n").encode())
    answer = s.makefile().readline()
    s.close()
    if not json.loads(answer).get("ok"):
        raise SystemExit(f"note refused: {answer}")


LATENCY = """
[runbook]
title = "Attach latency"

[settings]
shell = "bash"

[[phase]]
id = "p"
title = "Latency"

[[phase.step]]
id = "lines"
title = "Lines"
run = 'while read -r tok; do printf "%s %s\\n" "$tok" "$(date +%s.%N)"; sleep 0.$(( RANDOM % 3 + 1 )); done < tokens.txt'

[[phase.step]]
id = "wait"
title = "Notes"
watch = "10m"
"""


def token(i, sets):
    """Item i as text whose every character differs from item i-1's at the same place: the
    terminal UI redraws only cells that changed, so a text that shares a cell with the one it
    replaces would reach the terminal in pieces."""
    return "".join(sets[i % 2][int(d)] for d in f"{i:04d}")


LINE_SETS = ("ABCDEFGHIJ", "KLMNOPQRST")
NOTE_SETS = ("abcdefghij", "klmnopqrst")


def bench_latency(_repeats):
    rb = write("latency.toml", LATENCY)
    write("tokens.txt", "".join(token(i, LINE_SETS) + "\n" for i in range(1, 101)))
    state = state_dir("latency")
    d = driver(rb, state)
    wait_event(state, lambda e: e.get("event") == "step_started")
    w = watcher(state)
    off = perf_to_wall()
    attach_at = w.t_spawn + off
    wait_event(state, lambda e: e.get("event") == "step_started" and e.get("step") == "wait", timeout=60)
    time.sleep(0.5)
    run = run_dir(state)
    log = open(os.path.join(run, "logs", "p--lines--1.log")).read()
    index = {token(i, LINE_SETS): i for i in range(1, 101)}
    printed = {index[m.group(1)]: float(m.group(2)) for m in re.finditer(r"([A-T]{4}) (\d+\.\d+)", log)}
    lines = []
    for i, at in sorted(printed.items()):
        # Lines printed before the watcher was up came with its first screen: they do not count.
        if at < attach_at + 0.5:
            continue
        got = w.wait_for(text_pattern(token(i, LINE_SETS)), start=0, timeout=0.01)
        if got is None:
            raise SystemExit(f"line {i} never reached the watcher's terminal")
        lines.append((got[0] + off - at) * 1000)
    notes = []
    import random
    for i in range(1, 101):
        text = token(i, NOTE_SETS)
        start = w.size()
        note(run, text)
        got = w.wait_for(text_pattern(text), start=start, timeout=10)
        if got is None:
            raise SystemExit(f"note {text} never reached the watcher")
        ev = [e for e in journal(state) if e.get("event") == "note" and e.get("text") == text]
        notes.append((got[0] + off - epoch(ev[0]["ts"])) * 1000)
        time.sleep(random.uniform(0.05, 0.3))
    d.send_signal(signal.SIGTERM)
    d.wait(10)
    w.close()
    print(f"log line printed by the step -> on the watcher's terminal: {spread(lines)}")
    print(f"note journaled by the driver -> on the watcher's terminal:  {spread(notes)}")
    worst = max(lines + notes)
    print(f"target: within 250 ms -> {'PASS' if worst <= 250 else 'FAIL'} (worst {worst:.1f} ms)")


FLOOD = """
[runbook]
title = "Flood"

[[phase]]
id = "p"
title = "Flood"

[[phase.step]]
id = "settle"
title = "Give a watcher time to attach"
run = "sleep 1"

[[phase.step]]
id = "flood"
title = "Two million lines"
run = "seq 2000000"
"""


class TmuxWatcher(TmuxServer):
    """A watcher in a tmux pane of 80x24, its screen read back as text (capture-pane): tmux is a
    real terminal, so the last line counts only once it is on the screen."""

    def __init__(self, state):
        super().__init__("rb-bench-attach")
        _live.append(self)
        self.tmux("new-session", "-d", "-x", "80", "-y", "24", f"exec '{BIN}' attach --state-dir '{state}'")

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen():
                return time.time()
            time.sleep(0.02)
        return None


def flood_once(rb, with_watcher):
    state = state_dir("flood")
    t0 = time.perf_counter()
    d = driver(rb, state)
    w = None
    if with_watcher:
        wait_event(state, lambda e: e.get("event") == "step_started")
        w = TmuxWatcher(state)
        if w.wait_for("WATCHING", timeout=10) is None:
            raise SystemExit("the watcher never showed its screen")
    code = d.wait(120)
    wall = time.perf_counter() - t0
    fin = wait_event(state, lambda e: e.get("event") == "step_finished" and e.get("step") == "flood")
    lag = None
    if w is not None:
        seen = w.wait_for("2000000", timeout=60)
        if seen is None:
            raise SystemExit("the watcher never showed the last line")
        lag = (seen - epoch(fin["ts"])) * 1000
        w.close()
    return code, wall * 1000, fin["duration_ms"], lag


def bench_flood(repeats):
    rb = write("flood.toml", FLOOD)
    alone, watched, lags = [], [], []
    for _ in range(repeats):
        for with_w in (False, True):
            code, wall, step, lag = flood_once(rb, with_w)
            if code != 0:
                raise SystemExit(f"the driver exited {code}")
            (watched if with_w else alone).append((wall, step))
            if lag is not None:
                lags.append(lag)
    print(f"driver wall time, alone:        {spread([a[0] for a in alone])}")
    print(f"driver wall time, watched:      {spread([a[0] for a in watched])}")
    print(f"flood step duration_ms, alone:   {spread([a[1] for a in alone])}")
    print(f"flood step duration_ms, watched: {spread([a[1] for a in watched])}")
    ratio = statistics.median([a[1] for a in watched]) / statistics.median([a[1] for a in alone])
    print(f"step duration watched/alone (medians): {ratio:.2f}x")
    print(f"step_finished -> last line on the watcher's screen (tmux, polled every 20 ms): {spread(lags)}")


IDLE = """
[runbook]
title = "Idle"

[metrics]
interval = "5s"

[[metric]]
id = "error_rate"
title = "Error rate"
query = "x"
unit = "percent"
simulate = { baseline = 0.002, jitter = 0.001 }

[[metric]]
id = "latency"
title = "Latency"
query = "x"
simulate = { baseline = 0.2, jitter = 0.01 }

[[phase]]
id = "p"
title = "Idle"

[[phase.step]]
id = "wait"
title = "Wait for the operator"
manual = "Nothing to do: this is a benchmark"
"""


def cpu_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def bench_idle(repeats, seconds):
    rb = write("idle.toml", IDLE)
    for _ in range(repeats):
        state = state_dir("idle")
        d = driver(rb, state, headless=False)
        wait_event(state, lambda e: e.get("event") == "step_started")
        w = watcher(state)
        if w.wait_for(text_pattern("WATCHING"), timeout=10) is None:
            raise SystemExit("the watcher never showed its screen")
        time.sleep(3)
        d0, w0, t0 = cpu_ns(d.pid), cpu_ns(w.pid), time.perf_counter()
        time.sleep(seconds)
        d1, w1, t1 = cpu_ns(d.pid), cpu_ns(w.pid), time.perf_counter()
        span = t1 - t0
        dcpu, wcpu = (d1 - d0) / 1e6, (w1 - w0) / 1e6
        print(f"over {span:.0f} s: driver {dcpu:.0f} ms CPU ({dcpu / span / 10:.3f}% of a core), "
              f"watcher {wcpu:.0f} ms CPU ({wcpu / span / 10:.3f}% of a core) -> "
              f"{'PASS' if wcpu <= dcpu else 'FAIL'} (watcher <= driver)")
        w.close()
        d.close()


def cleanup():
    for p in _live:
        try:
            if isinstance(p, (Pty, TmuxWatcher)):
                p.close()
            elif p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        except Exception:
            pass
    subprocess.run(["rm", "-rf", TMP])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["latency", "flood", "idle"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--idle-seconds", type=int, default=60)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} not found: cargo build --release first")
    print(f"binary {BIN}; load {load()}; {os.cpu_count()} cores")
    try:
        for what in a.what:
            print(f"== {what}")
            if what == "latency":
                bench_latency(a.repeats)
            elif what == "flood":
                bench_flood(a.repeats)
            elif what == "idle":
                bench_idle(1, a.idle_seconds)
            else:
                raise SystemExit(f"unknown benchmark {what}")
            print(f"load {load()}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
