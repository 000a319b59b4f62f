#!/usr/bin/env python3
"""Figures for the terminal UI issue, measured on the real release binary in a pseudo-terminal.

  idle    waiting on an operator (manual step), two simulated metrics polled every 5 s: CPU time of
          the runbook process (utime+stime, /proc/PID/stat) as % of one core and bytes written to
          the terminal per second, over --idle-seconds (60) after a 3 s warm-up. Measured twice at the
          same time: on a bare pty (120x36) and in a tmux pane (120x36) with `pipe-pane`.
  flood   a step printing 2,000,000 lines: its duration_ms (journal) in the UI against
          `--headless >/dev/null`; peak RSS of the UI (VmHWM, read once the run has finished, before
          quitting); time from `?` to the help dialog on screen during the flood. Also the same
          key probe, repeated, during a 20,000,000-line flood (long enough for several probes a run).
  frames  first frame: spawn to the header (" RUN ") on the pty, and to the end of that frame;
          frame cost: batches of 50 key presses (j/k alternately, 100 ms apart so that each one gets
          its own frame under the 20 frames/s cap) — CPU time of the process / frames drawn (frames
          counted as synchronized-update begins on the pty). An upper bound per frame: it includes
          reading and decoding the keys, the 1 s clock ticks and the metric polls of the window.
          Also `?` to the help on a quiet screen: the floor (harness + frame pacing) for the flood's
          key figure.
  hangup  not a target of the issue: the terminal goes away (pty master closed, as when tmux or an
          SSH connection dies) while a 6 s step runs; CPU of the runbook process per thread while the
          step finishes, and how the process ends.

Usage: python3 assets/bench/tui.py [idle|flood|frames|hangup ...] [--repeats N] [--idle-seconds S]
Run from the repository root after `cargo build --release`. Linux; standard library only; tmux
optional (the tmux figure is skipped without it). Leaves no process behind: each
program's whole session is killed, tmux servers on their own sockets are killed and removed.
"""
import argparse, glob, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone

sys.dont_write_bytecode = True          # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ptyrun  # noqa: E402
from ptyrun import Pty, text_pattern, count_frames, CLK_TCK, ESU  # noqa: E402

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))
TMP = tempfile.mkdtemp(prefix="rb-bench-tui-")
HEADER = text_pattern("RUN")
HELP = text_pattern("scroll this help")
_live = []          # Pty objects and tmux sockets to clean up whatever happens


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def med(xs):
    return statistics.median(xs)


def spread(xs, fmt="{:.1f}"):
    return f"median {fmt.format(med(xs))} (min {fmt.format(min(xs))}, max {fmt.format(max(xs))}, n={len(xs)})"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def verdict(ok):
    return "PASS" if ok else "FAIL"


METRICS = """
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
simulate = { baseline = 0.002, jitter = 0.001 }
"""


def write_runbooks():
    rb = {}
    rb["idle"] = os.path.join(TMP, "idle.toml")
    with open(rb["idle"], "w") as f:
        f.write('[runbook]\ntitle = "Idle benchmark"\n' + METRICS +
                '\n[[phase]]\nid = "one"\ntitle = "One"\n\n'
                '[[phase.step]]\nid = "wait"\ntitle = "Wait for the operator"\nmanual = "wait here"\n')
    rb["frames"] = os.path.join(TMP, "frames.toml")
    with open(rb["frames"], "w") as f:
        f.write('[runbook]\ntitle = "Frame benchmark"\n' + METRICS +
                '\n[[phase]]\nid = "one"\ntitle = "One"\n\n'
                '[[phase.step]]\nid = "wait"\ntitle = "Wait for the operator"\nmanual = "wait here"\n')
        for i in range(2, 9):
            f.write(f'\n[[phase.step]]\nid = "s{i}"\ntitle = "Step {i} of the phase"\nrun = "echo {i}"\n')
        f.write('\n[[phase]]\nid = "two"\ntitle = "Two"\n\n[[phase.step]]\nid = "last"\ntitle = "Last"\nrun = "true"\n')
    rb["sleep"] = os.path.join(TMP, "sleep.toml")
    with open(rb["sleep"], "w") as f:
        f.write('[runbook]\ntitle = "Hangup benchmark"\n\n[[phase]]\nid = "one"\ntitle = "One"\n\n'
                '[[phase.step]]\nid = "sleep"\ntitle = "Sleep"\nrun = "sleep 6"\n\n'
                '[[phase.step]]\nid = "after"\ntitle = "After"\nrun = "true"\n')
    for n, lines in (("flood", 2_000_000), ("flood20m", 20_000_000)):
        rb[n] = os.path.join(TMP, f"{n}.toml")
        with open(rb[n], "w") as f:
            f.write(f'[runbook]\ntitle = "Flood benchmark"\n\n[[phase]]\nid = "print"\ntitle = "Print"\n\n'
                    f'[[phase.step]]\nid = "lines"\ntitle = "{lines:,} lines"\nrun = "seq 1 {lines}"\n')
    for path in rb.values():
        subprocess.run([BIN, "validate", path], check=True, stdout=subprocess.DEVNULL)
    return rb


def state_dir(tag):
    return tempfile.mkdtemp(prefix=f"{tag}-", dir=TMP)


def journal_of(state):
    j = glob.glob(os.path.join(state, "runs", "*", "journal.jsonl"))
    return j[0] if j else None


def events(state):
    j = journal_of(state)
    if not j:
        return []
    out = []
    with open(j) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def wait_event(state, name, timeout, poll=0.002):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in events(state):
            if e["event"] == name:
                return e
        time.sleep(poll)
    return None


def ts_epoch(ts):
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def spawn_ui(runbook, state):
    p = Pty([BIN, "run", runbook, "--state-dir", state])
    _live.append(p)
    return p


def quit_ui(p, timeout=5.0):
    """The run has ended: `q` until the UI leaves (a first `q` may only close a dialog)."""
    deadline = time.perf_counter() + timeout
    while p.alive() and time.perf_counter() < deadline:
        try:
            p.write(b"q")
        except OSError:
            break
        p.wait_exit(0.2)
    p.close()


# ── idle ──────────────────────────────────────────────────────────────────────────────────────
class TmuxPane(ptyrun.TmuxServer):
    """The UI in a detached tmux session on its own socket, its pane piped to a file."""

    def __init__(self, argv, out):
        super().__init__("rbbench")
        self.out = out
        cmd = "exec " + " ".join(argv)
        self.tmux("new-session", "-d", "-s", "b", "-x", str(ptyrun.COLS), "-y", str(ptyrun.ROWS),
                  "-e", "LANG=C.UTF-8", "-e", "LC_ALL=C.UTF-8", cmd, check=True)
        _live.append(self)
        self.pid = int(self.tmux("display", "-p", "-t", "b", "#{pane_pid}", check=True).strip())
        size = self.tmux("display", "-p", "-t", "b", "#{pane_width}x#{pane_height}", check=True).strip()
        assert size == f"{ptyrun.COLS}x{ptyrun.ROWS}", size
        self.tmux("pipe-pane", "-o", "-t", "b", f"cat >> {out}", check=True)

    def size(self):
        return os.path.getsize(self.out) if os.path.exists(self.out) else 0

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def close(self):
        if getattr(self, "closed", False):
            return
        self.closed = True
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        time.sleep(0.5)
        for pid in ptyrun.session_members(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        super().close()


def bench_idle(rb, repeats, seconds):
    print(f"\n[idle] waiting on a manual step, 2 simulated metrics every 5 s; 3 s warm-up, then {seconds} s; "
          f"{repeats} repeats (bare pty and tmux side by side); load {load()}")
    have_tmux = shutil.which("tmux") is not None
    pty_cpu, pty_cpu_ns, pty_bps, pty_fps, pty_bpf, pty_cpf = [], [], [], [], [], []
    tm_cpu, tm_bps = [], []
    for r in range(repeats):
        p = spawn_ui(rb["idle"], state_dir("idle"))
        tm = None
        if have_tmux:
            tm = TmuxPane([BIN, "run", rb["idle"], "--state-dir", state_dir("idle-tmux")],
                          os.path.join(TMP, f"pane-{r}.out"))
        assert p.wait_for(HEADER, timeout=10), "no first frame"
        time.sleep(3)
        b0, t0, n0, w0 = p.size(), p.cpu_ticks(), p.cpu_ns(), time.perf_counter()
        if tm:
            tb0, tt0 = tm.size(), tm.cpu_ticks()
        time.sleep(seconds)
        b1, t1, n1, w1 = p.size(), p.cpu_ticks(), p.cpu_ns(), time.perf_counter()
        if tm:
            tb1, tt1 = tm.size(), tm.cpu_ticks()
        wall = w1 - w0
        frames = count_frames(p.buf, b0, b1)
        pty_cpu.append((t1 - t0) / CLK_TCK / wall * 100)
        pty_cpu_ns.append((n1 - n0) / 1e9 / wall * 100)
        pty_bps.append((b1 - b0) / wall)
        pty_fps.append(frames / wall)
        pty_bpf.append((b1 - b0) / max(frames, 1))
        pty_cpf.append((n1 - n0) / 1e6 / max(frames, 1))
        line = (f"  run {r + 1}: pty {pty_cpu[-1]:.3f}% CPU ({t1 - t0} ticks; schedstat {pty_cpu_ns[-1]:.3f}%), "
                f"{pty_bps[-1]:.1f} B/s, {frames} frames ({pty_fps[-1]:.2f}/s, {pty_bpf[-1]:.0f} B/frame)")
        if tm:
            tm_cpu.append((tt1 - tt0) / CLK_TCK / wall * 100)
            tm_bps.append((tb1 - tb0) / wall)
            line += f"; tmux {tm_cpu[-1]:.3f}% CPU, {tm_bps[-1]:.1f} B/s"
        print(line, flush=True)
        p.close()
        if tm:
            tm.close()
    res = {
        "idle_cpu": med(pty_cpu), "idle_bps": med(pty_bps),
        "idle_cpu_tmux": med(tm_cpu) if tm_cpu else None, "idle_bps_tmux": med(tm_bps) if tm_bps else None,
    }
    print(f"  pty : CPU % of one core {spread(pty_cpu, '{:.3f}')}  (target < 0.5%)  {verdict(med(pty_cpu) < 0.5)}")
    print(f"        same from schedstat (ns) {spread(pty_cpu_ns, '{:.3f}')}")
    print(f"        bytes/s {spread(pty_bps)}  (target < 300)  {verdict(med(pty_bps) < 300)}")
    print(f"        frames/s {spread(pty_fps, '{:.2f}')}; bytes/frame {spread(pty_bpf, '{:.0f}')}; "
          f"CPU per idle frame {spread(pty_cpf, '{:.3f}')} ms")
    if tm_cpu:
        print(f"  tmux: CPU % of one core {spread(tm_cpu, '{:.3f}')}  (target < 0.5%)  {verdict(med(tm_cpu) < 0.5)}")
        print(f"        bytes/s to the pane (pipe-pane) {spread(tm_bps)}  (target < 300)  {verdict(med(tm_bps) < 300)}")
    else:
        print("  tmux: not installed, skipped")
    return res


# ── flood ─────────────────────────────────────────────────────────────────────────────────────
def step_duration(state):
    for e in events(state):
        if e["event"] == "step_finished":
            return e["duration_ms"]
    return None


def flood_headless(runbook):
    state = state_dir("flood-headless")
    with tempfile.NamedTemporaryFile("r", dir=TMP) as rss:
        subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, BIN, "run", runbook, "--headless",
                        "--state-dir", state], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kib = int(rss.read().split()[-1])
    return step_duration(state), kib


def flood_headless_cpu(runbook):
    """CPU time of the headless runbook process's own threads (not the step's), in ms: its
    /proc/PID/stat polled every 5 ms, the last reading before it exits."""
    state = state_dir("flood-headless-cpu")
    proc = subprocess.Popen([BIN, "run", runbook, "--headless", "--state-dir", state],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                last = int(fields[11]) + int(fields[12])
        except OSError:
            pass
        time.sleep(0.005)
    return last * 1000 / CLK_TCK


def flood_ui(runbook, probe=None):
    """One UI run of a flood. probe(p, state) may send keys while it runs. Returns
    (duration_ms, VmHWM KiB, bytes written, frames drawn, probe's result)."""
    state = state_dir("flood-ui")
    p = spawn_ui(runbook, state)
    try:
        assert p.wait_for(HEADER, timeout=10), "no first frame"
        got = probe(p, state) if probe else None
        # Polled slowly: the harness should not take CPU from the step it times.
        assert wait_event(state, "run_finished", 120, poll=0.05), "the run did not finish"
        if got is not None:
            got = during_step(state, got)
        time.sleep(0.1)      # the last frame
        hwm = p.status_kib("VmHWM")
        flood_ui.cpu_ms = p.cpu_ticks() * 1000 / CLK_TCK
        return step_duration(state), hwm, p.size(), count_frames(p.buf), got
    finally:
        quit_ui(p)


def probe_help(p, state, every=None):
    """Sends `?` once the step has started (and, with `every`, again every `every` s until the step
    ends, closing the help in between with another key); returns [(latency ms, arrival wall time)]."""
    assert wait_event(state, "step_started", 10)
    shown = []
    while True:
        start = p.size()
        t_key, wall_key = time.perf_counter(), time.time()
        p.write(b"?")
        got = p.wait_for(HELP, start=start, timeout=5)
        if not got:
            shown.append((None, None))
            break
        latency = got[0] - t_key
        shown.append((latency * 1000, wall_key + latency))
        if not every or any(e["event"] == "step_finished" for e in events(state)):
            break
        p.write(b"x")            # any key closes the help
        time.sleep(every)
    return shown


def during_step(state, shown):
    """The probes whose answer arrived before the step finished (journal time, ms resolution)."""
    fin = next((e for e in events(state) if e["event"] == "step_finished"), None)
    end = ts_epoch(fin["ts"]) if fin else float("inf")
    return [(ms, at is not None and at < end) for ms, at in shown]


def bench_flood(rb, repeats):
    runs = max(repeats, 7)
    print(f"\n[flood] a step printing 2,000,000 lines; {runs} runs each, UI and headless interleaved; load {load()}")
    ui, head, hwm, hrss, frames, nbytes, ui_cpu = [], [], [], [], [], [], []
    for i in range(runs):
        d, kib = flood_headless(rb["flood"])
        head.append(d)
        hrss.append(kib)
        d, h, b, fr, _ = flood_ui(rb["flood"])
        ui_cpu.append(flood_ui.cpu_ms)
        ui.append(d)
        hwm.append(h)
        frames.append(fr)
        nbytes.append(b)
        print(f"  run {i + 1}: headless {head[-1]} ms, UI {ui[-1]} ms (ratio {ui[-1] / head[-1]:.2f}), "
              f"UI VmHWM {h / 1024:.1f} MB, UI process CPU {ui_cpu[-1]:.0f} ms, {fr} frames, {b} bytes to the terminal",
              flush=True)
    head_cpu = [flood_headless_cpu(rb["flood"]) for _ in range(3)]
    ratio = med(ui) / med(head)
    print(f"  step duration headless >/dev/null: {spread(head, '{:.0f}')} ms")
    print(f"  step duration in the UI          : {spread(ui, '{:.0f}')} ms")
    print(f"  ratio of medians UI/headless {ratio:.2f}x  (target <= 1.5x)  {verdict(ratio <= 1.5)}; "
          f"per-run ratios {spread([u / h for u, h in zip(ui, head)], '{:.2f}')}")
    print(f"  CPU of the runbook process itself (not the step's): UI {spread(ui_cpu, '{:.0f}')} ms, "
          f"headless {spread(head_cpu, '{:.0f}')} ms (10 ms ticks)")
    print(f"  UI peak RSS (VmHWM) {spread([k / 1024 for k in hwm])} MB  (target < 48 MB)  "
          f"{verdict(max(hwm) / 1024 < 48)}; headless peak RSS (GNU time) median {med(hrss) / 1024:.1f} MB")

    probes = max(repeats * 5, 15)
    print(f"  keys: `?` sent once the 2M-line step has started, {probes} runs ...", flush=True)
    lat, lat_in, dur_k = [], [], []
    for i in range(probes):
        d, h, _, _, got = flood_ui(rb["flood"], probe_help)
        hwm.append(h)
        dur_k.append(d)
        for ms, during in got:
            if ms is not None:
                lat.append(ms)
                if during:
                    lat_in.append(ms)
    print(f"  `?` to help on screen, all probes: {spread(lat)} ms")
    if lat_in:
        print(f"  ... answered while the step still printed: {spread(lat_in)} ms, p90 {pct(lat_in, 0.9):.1f} ms  "
              f"(target < 50 ms)  {verdict(med(lat_in) < 50)}")
    else:
        print("  ... no probe was answered while the step still printed (the step is too short)")
    print(f"  (step duration in these probed runs {spread(dur_k, '{:.0f}')} ms)")

    long_runs = max(repeats, 3)
    print(f"  keys during a 20,000,000-line flood: `?` every ~300 ms, {long_runs} runs ...", flush=True)
    lat20, dur20, hwm20 = [], [], []
    for i in range(long_runs):
        d, h, _, _, got = flood_ui(rb["flood20m"], lambda p, s: probe_help(p, s, every=0.3))
        dur20.append(d)
        hwm20.append(h)
        lat20 += [ms for ms, during in got if ms is not None and during]
    head20 = [flood_headless(rb["flood20m"])[0] for _ in range(long_runs)]
    if lat20:
        print(f"  `?` to help during the 20M flood: {spread(lat20)} ms, p90 {pct(lat20, 0.9):.1f} ms  "
              f"(target < 50 ms)  {verdict(med(lat20) < 50)}")
    print(f"  20M step: UI (with the probes) {spread(dur20, '{:.0f}')} ms, headless {spread(head20, '{:.0f}')} ms, "
          f"ratio {med(dur20) / med(head20):.2f}x; UI VmHWM max {max(hwm20) / 1024:.1f} MB")
    return {"flood_ratio": ratio, "flood_hwm": max(hwm) / 1024,
            "key_ms": med(lat_in) if lat_in else None, "key20_ms": med(lat20) if lat20 else None}


# ── frames ────────────────────────────────────────────────────────────────────────────────────
def bench_frames(rb, repeats):
    n = max(20, repeats * 5)
    print(f"\n[frames] first frame: {n} starts (after one unmeasured); load {load()}")
    first, first_end, first_bytes = [], [], []
    for i in range(n + 1):
        p = spawn_ui(rb["frames"], state_dir("first"))
        got = p.wait_for(HEADER, timeout=10)
        end = p.wait_for(ESU, timeout=10)
        if i:
            first.append((got[0] - p.t_spawn) * 1000)
            first_end.append((end[0] - p.t_spawn) * 1000)
            first_bytes.append(end[1])
        p.close()
    print(f"  spawn to header text on the pty: {spread(first)} ms  (target < 50 ms)  {verdict(med(first) < 50)}")
    print(f"  spawn to the end of the first frame: {spread(first_end)} ms; first frame {med(first_bytes):.0f} bytes")

    batches = max(5, repeats)
    print(f"  frame cost: {batches} batches of 50 keys (j/k alternately, 100 ms apart) ...", flush=True)
    p = spawn_ui(rb["frames"], state_dir("keys"))
    per_frame, per_frame_ticks, fpb, bpf = [], [], [], []
    try:
        assert p.wait_for(HEADER, timeout=10)
        time.sleep(1.0)
        idle_keys = []
        for k in range(10):      # the floor for the flood's key figure: `?` on a quiet screen
            start, t_key = p.size(), time.perf_counter()
            p.write(b"?")
            got = p.wait_for(HELP, start=start, timeout=5)
            idle_keys.append((got[0] - t_key) * 1000)
            p.write(b"x")
            time.sleep(0.2)
        print(f"  `?` to help on a quiet screen (no flood): {spread(idle_keys)} ms", flush=True)
        time.sleep(0.5)
        for b in range(batches):
            b0, t0, n0 = p.size(), p.cpu_ticks(), p.cpu_ns()
            for k in range(50):
                p.write(b"j" if k % 2 == 0 else b"k")
                time.sleep(0.1)
            time.sleep(0.1)
            b1, t1, n1 = p.size(), p.cpu_ticks(), p.cpu_ns()
            frames = count_frames(p.buf, b0, b1)
            per_frame.append((n1 - n0) / 1e6 / frames)
            per_frame_ticks.append((t1 - t0) * 1000 / CLK_TCK / frames)
            fpb.append(frames)
            bpf.append((b1 - b0) / frames)
            print(f"    batch {b + 1}: {frames} frames, {(n1 - n0) / 1e6:.2f} ms CPU (schedstat), "
                  f"{t1 - t0} ticks, {per_frame[-1]:.3f} ms/frame, {bpf[-1]:.0f} B/frame", flush=True)
    finally:
        p.close()
    print(f"  CPU per frame at 120x36 (upper bound: whole process / frames): {spread(per_frame, '{:.3f}')} ms "
          f"(target < 1 ms)  {verdict(med(per_frame) < 1)}")
    print(f"    same from utime+stime ticks (10 ms resolution): {spread(per_frame_ticks, '{:.3f}')} ms; "
          f"frames per 50 keys {spread(fpb, '{:.0f}')}; bytes per frame {spread(bpf, '{:.0f}')}")
    return {"first_ms": med(first), "frame_ms": med(per_frame), "key_idle_ms": med(idle_keys)}


# ── hangup ────────────────────────────────────────────────────────────────────────────────────
def bench_hangup(rb, repeats):
    runs = max(2, repeats)
    print(f"\n[hangup] the terminal goes away while a 6 s step runs; {runs} runs; load {load()}")
    spin, ends = [], []
    # A `tput` first on PATH that counts its calls: crossterm falls back to `tput cols`/`tput lines`
    # when the terminal's size cannot be read.
    shim = os.path.join(TMP, "shim")
    os.makedirs(shim, exist_ok=True)
    calls = os.path.join(TMP, "tput-calls")
    real = shutil.which("tput") or "false"
    with open(os.path.join(shim, "tput"), "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    os.chmod(os.path.join(shim, "tput"), 0o755)
    env = {"PATH": shim + os.pathsep + os.environ.get("PATH", "")}
    for r in range(runs):
        if os.path.exists(calls):
            os.unlink(calls)
        p = Pty([BIN, "run", rb["sleep"], "--state-dir", state_dir("hangup")], env=env)
        _live.append(p)
        try:
            assert p.wait_for(HEADER, timeout=10)
            time.sleep(0.5)
            c0 = p.cpu_ticks()
            time.sleep(1.0)
            before = (p.cpu_ticks() - c0) / CLK_TCK * 100
            p.hangup()
            time.sleep(0.3)
            t0 = p.cpu_ticks()
            threads0 = thread_ticks(p.pid)
            time.sleep(3.0)
            alive = p.alive()
            after = (p.cpu_ticks() - t0) / CLK_TCK / 3.0 * 100 if alive else None
            threads1 = thread_ticks(p.pid) if alive else {}
            busiest = max(((threads1[t] - threads0.get(t, 0)) / CLK_TCK / 3.0 * 100, t) for t in threads1) \
                if threads1 else None
            st = p.wait_exit(10)
            tputs = sum(1 for _ in open(calls)) if os.path.exists(calls) else 0
            how = ("still running" if st is None else
                   f"killed by signal {os.WTERMSIG(st)}" if os.WIFSIGNALED(st) else f"exit {os.WEXITSTATUS(st)}")
            ends.append(how)
            if after is not None:
                spin.append(after)
            print(f"  run {r + 1}: CPU before the hangup {before:.1f}% of a core; in the 3 s after it "
                  f"{'(exited)' if after is None else f'{after:.0f}%'}"
                  f"{'' if not busiest else f' (busiest thread {busiest[1]}: {busiest[0]:.0f}%)'}; "
                  f"`tput` run {tputs} times after the hangup; the process ended: {how}", flush=True)
        finally:
            p.close()
    if spin:
        print(f"  CPU while the step in flight finishes after the hangup: {spread(spin, '{:.0f}')}% of one core "
              f"(a quiet UI uses ~0.1%)")
    return {"hangup_cpu": med(spin) if spin else None}


def thread_ticks(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[t] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return out


def cleanup():
    for x in _live:
        try:
            x.close()
        except Exception:
            pass
    shutil.rmtree(TMP, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("which", nargs="*", default=["idle", "flood", "frames", "hangup"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=60)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("needs GNU time for the headless peak RSS: apt-get install -y time")
    print(f"machine: {os.cpu_count()} cores (nproc); load {load()}; binary {BIN}; terminal "
          f"{ptyrun.COLS}x{ptyrun.ROWS} TERM=xterm-256color")
    print(f"build: {ptyrun.provenance(BIN)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = {}
    rb = write_runbooks()
    try:
        for w in a.which:
            if w == "idle":
                res.update(bench_idle(rb, a.repeats, a.idle_seconds))
            elif w == "flood":
                res.update(bench_flood(rb, a.repeats))
            elif w == "frames":
                res.update(bench_frames(rb, a.repeats))
            elif w == "hangup":
                res.update(bench_hangup(rb, a.repeats))
            else:
                sys.exit(f"unknown benchmark {w}")
    finally:
        cleanup()
    print(f"\nsummary (medians; load now {load()}):")
    rows = [
        ("idle CPU, bare pty", "idle_cpu", "{:.3f}%", "< 0.5%", lambda v: v < 0.5),
        ("idle bytes/s, bare pty", "idle_bps", "{:.1f} B/s", "< 300 B/s", lambda v: v < 300),
        ("idle CPU, tmux", "idle_cpu_tmux", "{:.3f}%", "< 0.5%", lambda v: v < 0.5),
        ("idle bytes/s, tmux pipe-pane", "idle_bps_tmux", "{:.1f} B/s", "< 300 B/s", lambda v: v < 300),
        ("2M-line step, UI / headless", "flood_ratio", "{:.2f}x", "<= 1.5x", lambda v: v <= 1.5),
        ("`?` to help during 2M flood", "key_ms", "{:.1f} ms", "< 50 ms", lambda v: v < 50),
        ("`?` to help during 20M flood", "key20_ms", "{:.1f} ms", "< 50 ms", lambda v: v < 50),
        ("peak RSS of the UI (max)", "flood_hwm", "{:.1f} MB", "< 48 MB", lambda v: v < 48),
        ("`?` to help, quiet screen", "key_idle_ms", "{:.1f} ms", "none", None),
        ("first frame", "first_ms", "{:.1f} ms", "< 50 ms", lambda v: v < 50),
        ("CPU per 120x36 frame (bound)", "frame_ms", "{:.3f} ms", "< 1 ms", lambda v: v < 1),
        ("CPU after a hangup, step running", "hangup_cpu", "{:.0f}%", "none", None),
    ]
    for name, key, fmt, target, ok in rows:
        if res.get(key) is not None:
            judged = verdict(ok(res[key])) if ok else "(observation)"
            print(f"  {name:32} {fmt.format(res[key]):>12}   target {target:10} {judged}")


if __name__ == "__main__":
    main()
