#!/usr/bin/env python3
"""Resuming from a 10,000-event journal: time to the first frame (terminal UI in a pty) and to the
first output line (--headless --yes), on the real release binary.

The run folder is generated: a 400-step runbook (20 phases of 20 steps, every fifth manual, the rest
`run = "true"`, two simulated metrics every 5 s, a metric trigger, a rollback), and a journal of
exactly EVENTS events that a long real run would leave: run_started naming the runbook file
(absolute) with its sha256 and vars, 390 steps finished (retries, confirmations with metrics, skips),
metric samples between them, notes, pending/cleared triggers, and the 391st step started but never
finished (in flight when the run died) -- no run_finished, so the run is resumable. Every
measurement resumes a fresh copy of that folder.

  ui        `runbook resume RUN_DIR` in a 120x36 pty: spawn to the header (" RESUMED RUN ") on the
            pty, and to the end of that first frame. For reference, a fresh `runbook run` of the same
            runbook to its first frame.
  headless  `runbook resume RUN_DIR --headless --yes`, stdout and stderr on pipes: spawn to the first
            line on either (stderr: "recording this run in ..."), and to the first line on stdout.

Usage: python3 assets/bench/resume.py [--runs N] [--events N]
Run from the repository root after `cargo build --release`. Standard library only.
"""
import argparse, hashlib, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, threading, time
from datetime import datetime, timedelta, timezone

sys.dont_write_bytecode = True          # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ptyrun  # noqa: E402
from ptyrun import Pty, text_pattern, ESU  # noqa: E402

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))
TMP = tempfile.mkdtemp(prefix="rb-bench-resume-")
PHASES, STEPS = 20, 20
DONE = 390                      # steps finished before the run died; the next one was in flight
_live = []


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def spread(xs, fmt="{:.1f}"):
    return (f"median {fmt.format(statistics.median(xs))} (min {fmt.format(min(xs))}, "
            f"max {fmt.format(max(xs))}, n={len(xs)})")


def write_runbook(path):
    with open(path, "w") as f:
        f.write('[runbook]\nid = "big-rollout"\ntitle = "A long rollout: 400 steps"\n\n'
                '[vars]\nrelease = "v2.14.0"\nservice = "checkout"\n\n'
                '[metrics]\ninterval = "5s"\n\n'
                '[[metric]]\nid = "error_rate"\ntitle = "Error rate"\nquery = "x"\nunit = "percent"\n'
                'simulate = { baseline = 0.002, jitter = 0.001 }\n\n'
                '[[metric]]\nid = "p95_latency"\ntitle = "P95 latency"\nquery = "x"\nunit = "seconds"\n'
                'simulate = { baseline = 0.18, jitter = 0.04 }\n\n'
                '[[trigger]]\nid = "error-rate"\ntitle = "Error rate above 1% for 5 minutes"\n'
                'metric = "error_rate"\nabove = 0.01\nfor = "5m"\n\n')
        for p in range(1, PHASES + 1):
            f.write(f'[[phase]]\nid = "p{p}"\ntitle = "Phase {p}"\nsection = "Section {(p - 1) // 5 + 1}"\n\n')
            for s in range(1, STEPS + 1):
                kind = (f'manual = "Check shard {s} of ${{release}} in the console"' if s % 5 == 0
                        else 'run = "true"')
                f.write(f'[[phase.step]]\nid = "s{s}"\ntitle = "Step {s} of phase {p} for ${{release}}"\n{kind}\n\n')
        f.write('[rollback]\ntitle = "Back"\n\n[[rollback.phase]]\nid = "undo"\ntitle = "Undo"\n\n'
                '[[rollback.phase.step]]\nid = "undo-all"\ntitle = "Undo it"\nrun = "true"\n')


def write_journal(run_dir, runbook, total):
    rnd = random.Random(7)
    t = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)
    with open(runbook, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    lines = []

    def emit(event, **fields):
        nonlocal t
        t += timedelta(milliseconds=rnd.randint(5, 900))
        rec = {"ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z", "event": event}
        rec.update(fields)
        lines.append(json.dumps(rec, separators=(",", ":")))

    def sample():
        emit("metrics_sampled", values={"error_rate": round(rnd.uniform(0.001, 0.003), 6),
                                        "p95_latency": round(rnd.uniform(0.14, 0.22), 6)})

    emit("run_started", runbook="big-rollout", title="A long rollout: 400 steps", file=runbook, sha256=sha,
         operator="alice", host="bastion-1", mode="run", vars={"release": "v2.14.0", "service": "checkout"},
         pid=4242)
    steps = [(p, s) for p in range(1, PHASES + 1) for s in range(1, STEPS + 1)]
    # Fixed events: 2 per step (3 with a retry), the notes and triggers; samples fill the rest.
    retries = {i for i in range(DONE) if rnd.random() < 0.1 and steps[i][1] % 5 != 0}
    waits = {i for i in range(DONE) if rnd.random() < 0.1 and steps[i][1] % 5 == 0}
    extras = {i: rnd.random() for i in range(DONE)}
    fixed = 1 + 2 * DONE + 2 * len(retries) + len(waits) + 1
    fixed += sum(1 for v in extras.values() if v < 0.05) + 2 * sum(1 for v in extras.values() if 0.05 <= v < 0.08)
    samples = total - fixed
    assert samples > 0, "too few events for the steps"
    per_step = [samples // DONE + (1 if i < samples % DONE else 0) for i in range(DONE)]
    for i, (p, s) in enumerate(steps[:DONE]):
        ph, st = f"p{p}", f"s{s}"
        manual = s % 5 == 0
        attempts = 2 if i in retries else 1
        if i in waits:
            emit("note", text=f"waiting on the payments team before {ph}/{st}", operator="alice")
        for a in range(1, attempts + 1):
            emit("step_started", phase=ph, step=st, attempt=a, rollback=False)
            if a < attempts:
                emit("step_finished", phase=ph, step=st, attempt=a, rollback=False, status="failed",
                     duration_ms=rnd.randint(100, 9000), exit_code=1, log=f"logs/{ph}--{st}--{a}.log")
        for _ in range(per_step[i]):
            sample()
        if manual:
            emit("step_finished", phase=ph, step=st, attempt=attempts, rollback=False, status="confirmed",
                 duration_ms=rnd.randint(1000, 90000), by="alice",
                 metrics={"error_rate": 0.002, "p95_latency": 0.18})
        elif rnd.random() < 0.03:
            emit("step_finished", phase=ph, step=st, attempt=attempts, rollback=False, status="skipped",
                 duration_ms=0, reason="done by hand, see OPS-1")
        else:
            emit("step_finished", phase=ph, step=st, attempt=attempts, rollback=False, status="succeeded",
                 duration_ms=rnd.randint(5, 9000), exit_code=0, log=f"logs/{ph}--{st}--{attempts}.log")
        if extras[i] < 0.05:
            emit("note", text=f"looks fine after {ph}/{st}", operator="alice")
        elif extras[i] < 0.08:
            emit("trigger_pending", trigger="error-rate", value=0.012)
            emit("trigger_cleared", trigger="error-rate", value=0.004)
    p, s = steps[DONE]
    emit("step_started", phase=f"p{p}", step=f"s{s}", attempt=1, rollback=False)
    assert len(lines) == total, (len(lines), total)
    os.makedirs(os.path.join(run_dir, "logs"))
    with open(os.path.join(run_dir, "journal.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def fresh_copy(template, i):
    d = os.path.join(TMP, "state", "runs", f"20261126T090000Z-big-rollout-{i}")
    shutil.copytree(template, d)
    return d


def ui_first_frame(argv, header):
    p = Pty(argv)
    _live.append(p)
    try:
        got = p.wait_for(header, timeout=15)
        end = p.wait_for(ESU, start=got[1] if got else 0, timeout=15)
        assert got and end, f"no first frame; output: {bytes(p.buf)[-400:]!r}"
        return (got[0] - p.t_spawn) * 1000, (end[0] - p.t_spawn) * 1000, bytes(p.buf)
    finally:
        p.close()


def headless_first_lines(argv):
    """Spawn to the first line on stdout or stderr, and to the first line on stdout (ms)."""
    first = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    _live.append(proc)
    text = {}

    def reader(name, stream):
        line = stream.readline()
        first[name] = time.perf_counter()
        text[name] = line.decode(errors="replace").rstrip()
        stream.read()      # drain, so that the run is never held up by a full pipe

    threads = [threading.Thread(target=reader, args=(n, s), daemon=True)
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for th in threads:
        th.start()
    rc = proc.wait(timeout=60)
    for th in threads:
        th.join(5)
    either = min(first.values())
    return (either - t0) * 1000, (first["stdout"] - t0) * 1000, rc, text


def kill_session(x):
    pid = x.pid
    for m in ptyrun.session_members(pid) | {pid}:
        try:
            os.kill(m, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cleanup():
    for x in _live:
        try:
            if isinstance(x, Pty):
                x.close()
            else:
                if x.poll() is None:
                    kill_session(x)
                x.wait(5)
        except Exception:
            pass
    shutil.rmtree(TMP, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--scaling", action="store_true",
                    help="also time the UI's first frame for journals of 1,000 to 40,000 events")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    print(f"machine: {os.cpu_count()} cores (nproc); load {load()}; binary {BIN}")
    print(f"build: {ptyrun.provenance(BIN)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        runbook = os.path.join(TMP, "big.toml")
        write_runbook(runbook)
        out = subprocess.run([BIN, "validate", runbook], capture_output=True, text=True, check=True).stdout.strip()
        template = os.path.join(TMP, "template")
        lines = write_journal(template, runbook, a.events)
        size = os.path.getsize(os.path.join(template, "journal.jsonl"))
        kinds = {}
        for line in lines:
            k = json.loads(line)["event"]
            kinds[k] = kinds.get(k, 0) + 1
        print(f"runbook: {out}")
        print(f"journal: {len(lines):,} events, {size / 1024:.0f} KiB: "
              + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
        state = os.path.join(TMP, "state")
        env_state = ["--state-dir", state]

        # A check that the folder resumes as meant, and that the UI shows the in-flight step.
        d = fresh_copy(template, "check")
        p = Pty([BIN, "resume", d] + env_state)
        _live.append(p)
        shown = p.wait_for(text_pattern("INTERRUPTED STEP"), timeout=15)
        p.close()
        assert shown, f"the resumed UI does not show the step in flight: {bytes(p.buf)[-400:]!r}"

        print(f"\n[ui] `runbook resume RUN_DIR` in a {ptyrun.COLS}x{ptyrun.ROWS} pty, {a.runs} runs "
              f"(after one unmeasured); load {load()}")
        hdr, end, base_hdr, base_end = [], [], [], []
        for i in range(a.runs + 1):
            d = fresh_copy(template, f"ui{i}")
            h, e, _ = ui_first_frame([BIN, "resume", d] + env_state, text_pattern("RESUMED RUN"))
            fh, fe, _ = ui_first_frame([BIN, "run", runbook] + env_state, text_pattern("RUN"))
            if i:
                hdr.append(h), end.append(e), base_hdr.append(fh), base_end.append(fe)
        print(f"  spawn to \" RESUMED RUN \" on the pty: {spread(hdr)} ms  (target < 100 ms)  "
              f"{'PASS' if statistics.median(hdr) < 100 else 'FAIL'}")
        print(f"  spawn to the end of the first frame : {spread(end)} ms")
        print(f"  reference, a fresh `runbook run` of the same runbook to its first frame: {spread(base_hdr)} ms "
              f"(end of frame {spread(base_end)} ms)")

        print(f"\n[headless] `runbook resume RUN_DIR --headless --yes`, {a.runs} runs (after one unmeasured); "
              f"load {load()}")
        either, stdout, texts = [], [], None
        for i in range(a.runs + 1):
            d = fresh_copy(template, f"h{i}")
            e, o, rc, texts = headless_first_lines([BIN, "resume", d, "--headless", "--yes"] + env_state)
            assert rc == 0, f"resume exited {rc}: {texts}"
            if i:
                either.append(e), stdout.append(o)
        print(f"  spawn to the first output line (either stream): {spread(either)} ms  (target < 100 ms)  "
              f"{'PASS' if statistics.median(either) < 100 else 'FAIL'}")
        print(f"  spawn to the first line on stdout            : {spread(stdout)} ms")
        print(f"  (first lines: stderr {texts.get('stderr')!r}; stdout {texts.get('stdout')!r})")
        if a.scaling:
            print(f"\n[scaling] UI first frame against the journal's length, {max(5, a.runs // 3)} runs each; "
                  f"load {load()}")
            for n in (1_000, 5_000, 10_000, 20_000, 40_000):
                tpl = os.path.join(TMP, f"template-{n}")
                write_journal(tpl, runbook, n)
                xs = []
                for i in range(max(5, a.runs // 3) + 1):
                    d = fresh_copy(tpl, f"s{n}-{i}")
                    h, _, _ = ui_first_frame([BIN, "resume", d] + env_state, text_pattern("RESUMED RUN"))
                    if i:
                        xs.append(h)
                kib = os.path.getsize(os.path.join(tpl, "journal.jsonl")) / 1024
                print(f"  {n:6,} events ({kib:5.0f} KiB): {spread(xs)} ms")
        print(f"\nsummary (medians; load now {load()}):")
        print(f"  resume to first frame (UI)        {statistics.median(hdr):7.1f} ms   target < 100 ms  "
              f"{'PASS' if statistics.median(hdr) < 100 else 'FAIL'}")
        print(f"  resume to first line (headless)   {statistics.median(either):7.1f} ms   target < 100 ms  "
              f"{'PASS' if statistics.median(either) < 100 else 'FAIL'}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
