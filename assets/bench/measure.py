#!/usr/bin/env python3
"""Figures for the core issue, measured on the real release binary.

  output   a step printing 2,000,000 lines, headless, stdout to /dev/null: wall time against
           `sh -c 'seq 1 2000000 | tee FILE >/dev/null'`, peak RSS, and the log file complete
  validate `runbook validate` of a generated 1,000-step runbook
  startup  from exec to the first step's command running

Usage: assets/bench/measure.py [output|validate|startup ...]   (all by default)
Run from the repository root after `cargo build --release`.
"""
import atexit, glob, json, os, shutil, statistics, subprocess, sys, tempfile, time

BIN = os.path.abspath("target/release/runbook")
LINES = 2_000_000
RUNS = 15


def run_measured(argv, **kw):
    """Runs argv to its end; returns (wall seconds, peak RSS of the process in KiB, exit status).

    Peak RSS comes from GNU time (`apt-get install time`): wait4's ru_maxrss would also count the
    pages of the forked Python before exec."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        rc = subprocess.call(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name] + argv, **kw)
        wall = time.perf_counter() - t0
        return wall, int(rss.read().strip().splitlines()[-1]), rc


def scratch():
    """A scratch folder removed when the script ends (a run of the output benchmark leaves ~230 MB)."""
    d = tempfile.mkdtemp(prefix="rb-bench-")
    atexit.register(shutil.rmtree, d, True)
    return d


def bench_output():
    d = scratch()
    rb = os.path.join(d, "output.toml")
    with open(rb, "w") as f:
        f.write(f'[runbook]\ntitle = "Output benchmark"\n\n[[phase]]\ntitle = "Print"\n\n'
                f'[[phase.step]]\ntitle = "Two million lines"\nrun = "seq 1 {LINES}"\n')
    base, ours, rss = [], [], []
    devnull = open(os.devnull, "w")
    for i in range(RUNS):
        w, _, rc = run_measured(["sh", "-c", f"seq 1 {LINES} | tee {d}/tee.out >/dev/null"])
        assert rc == 0
        base.append(w)
        state = os.path.join(d, f"state{i}")
        w, kib, rc = run_measured([BIN, "run", rb, "--headless", "--state-dir", state],
                                  stdout=devnull, stderr=subprocess.DEVNULL)
        assert rc == 0, f"runbook exited {rc}"
        ours.append(w)
        rss.append(kib)
        logs = glob.glob(f"{state}/runs/*/logs/*.log")
        assert len(logs) == 1, logs
        with open(logs[0], "rb") as a, open(f"{d}/tee.out", "rb") as b:
            complete = a.read() == b.read()
        assert complete, "log file differs from the command's output"
    b, o = statistics.median(base), statistics.median(ours)
    print(f"output: {LINES:,} lines, median of {RUNS} runs")
    print(f"  baseline  sh -c 'seq 1 {LINES} | tee FILE >/dev/null'   {b*1000:7.1f} ms")
    print(f"  runbook run --headless >/dev/null                    {o*1000:7.1f} ms   ratio {o/b:.2f}x (target <= 1.2x)")
    print(f"  peak RSS of runbook: max {max(rss)/1024:.1f} MB, median {statistics.median(rss)/1024:.1f} MB (target < 32 MB)")
    print(f"  log file identical to the command's output: yes ({LINES:,} lines)")


def bench_validate():
    d = scratch()
    rb = os.path.join(d, "big.toml")
    with open(rb, "w") as f:
        f.write('[runbook]\ntitle = "A thousand steps"\n\n[vars]\nrelease = "v1"\n\n')
        f.write('[[metric]]\nid = "error_rate"\nquery = "sum(rate(x[1m]))"\nunit = "percent"\n\n')
        f.write('[[trigger]]\ntitle = "Errors"\nmetric = "error_rate"\nabove = 0.01\nfor = "5m"\n\n')
        for p in range(50):
            f.write(f'[[phase]]\ntitle = "Phase {p}"\nsection = "Section {p // 10}"\n\n')
            for s in range(20):
                kind = [f'run = "./deploy.sh --shard {s} \\"$release\\""\ntimeout = "10m"\nretries = 2\nretry_delay = "5s"',
                        f'manual = "Check shard {s} of ${{release}} in the console"',
                        'watch = "90s"',
                        'http = { url = "https://svc.example/health", expect_status = [200, 204] }'][s % 4]
                f.write(f'[[phase.step]]\ntitle = "Step {s} of phase {p} for ${{release}}"\n{kind}\n\n')
        f.write('[rollback]\ntitle = "Back"\n[[rollback.phase]]\ntitle = "Undo"\n'
                '[[rollback.phase.step]]\ntitle = "Undo it"\nrun = "./deploy.sh --rollback"\n')
    out = subprocess.run([BIN, "validate", rb], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    times = []
    for _ in range(20):
        w, _, rc = run_measured([BIN, "validate", rb], stdout=subprocess.DEVNULL)
        assert rc == 0
        times.append(w)
    size = os.path.getsize(rb)
    print(f"validate: 1,000 steps ({size/1024:.0f} KiB), 20 runs: median {statistics.median(times)*1000:.1f} ms, "
          f"max {max(times)*1000:.1f} ms (target < 50 ms) — {out.stdout.strip()}")


def bench_startup():
    d = scratch()
    rb = os.path.join(d, "first.toml")
    stamp = os.path.join(d, "stamp")
    with open(rb, "w") as f:
        f.write('[runbook]\ntitle = "Start-up"\n[[phase]]\ntitle = "One"\n'
                f'[[phase.step]]\ntitle = "First"\nrun = "date +%s%N > {stamp}"\n')
    times = []
    for i in range(20):
        t0 = time.time_ns()
        subprocess.run([BIN, "run", rb, "--headless", "--state-dir", os.path.join(d, f"s{i}")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        with open(stamp) as f:
            times.append((int(f.read()) - t0) / 1e6)
    print(f"startup: exec to the first step's command running, 20 runs: median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms (target < 20 ms; includes the step's own `sh -c date`)")


if __name__ == "__main__":
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("needs GNU time for peak RSS: apt-get install -y time")
    which = sys.argv[1:] or ["output", "validate", "startup"]
    print(f"machine: {os.cpu_count()} cores; binary: {BIN}")
    for w in which:
        globals()[f"bench_{w}"]()
