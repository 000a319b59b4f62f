#!/usr/bin/env python3
"""How soon a watcher on another host has an event of the run, through the shared store.

A local PostgreSQL is started (initdb in a temporary folder; as root, run as the system user
runbook-pg). "bastion-a" drives a run headless with --store; "bastion-b" watches it with
`runbook attach --events --store URL` (the events as JSON lines, through the same source as the
watcher's screen: LISTEN/NOTIFY). Each host has a state dir of its own, and as root a host name of
its own too (a UTS namespace: `unshare --uts`). The run waits at a first step until the watcher
has caught up with the events so far, then goes through --steps steps of `sleep --gap` (two events
each: step_started, step_finished). For every event after that, the time from its `ts` in the
driver's journal (taken just before the driver writes and fsyncs the line) to the moment the
watcher's line reaches this script is measured: the driver's write, the copy to the store, the
commit's notification, the watcher's read.

--log: the same for the running step's log, on the watcher's screen: `runbook attach` (the terminal
UI, 80x24 in a pseudo-terminal) on bastion-b while A's step prints --lines lines 0.1-0.3 s apart,
each with the wall-clock time it was printed; from that time to the moment the line's text reaches
the watcher's terminal (the copy sends a running step's log every 100 ms; the screen draws at most
20 frames a second).

Usage: python3 assets/bench/store-watch.py [--steps N] [--gap SECONDS] [--runs R] [--log [--lines N]]
Run from the repository root after `cargo build --release` (or BIN=target/debug/runbook). Needs
Debian's postgresql package. Standard library only; leaves no process behind.
"""
import argparse, datetime, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptyrun import Pty, text_pattern  # noqa: E402

BIN = os.path.abspath(os.environ.get("BIN", "target/release/runbook"))
ROOT = os.geteuid() == 0


def pg_bin():
    base = "/usr/lib/postgresql"
    versions = sorted(os.listdir(base), key=lambda v: [int(x) for x in v.split(".") if x.isdigit()])
    return os.path.join(base, versions[-1], "bin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self, tmp):
        self.bin = pg_bin()
        self.home = os.path.join(tmp, "pg")
        os.makedirs(self.home)
        os.chmod(tmp, 0o711)
        with open(os.path.join(self.home, "pw"), "w") as f:
            f.write("bench-pw")
        self.as_ = []
        if ROOT:
            if subprocess.run(["id", "runbook-pg"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                "runbook-pg"], check=True)
            subprocess.run(["chown", "-R", "runbook-pg", self.home], check=True)
            self.as_ = ["runuser", "-u", "runbook-pg", "--"]
        self.data = os.path.join(self.home, "data")
        self.port = free_port()
        self.service([f"{self.bin}/initdb", "-D", self.data, "-A", "scram-sha-256", "-U", "rb",
                      f"--pwfile={self.home}/pw", "--no-sync"])
        self.service([f"{self.bin}/pg_ctl", "-D", self.data, "-l", f"{self.home}/log", "-w", "-o",
                      f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start"])
        subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "rb", "-d",
                        "postgres", "-qc", "CREATE DATABASE runbook"],
                       env=dict(os.environ, PGPASSWORD="bench-pw"), check=True)
        self.url = f"postgres://rb:bench-pw@127.0.0.1:{self.port}/runbook?sslmode=disable"

    def service(self, argv):
        subprocess.run(self.as_ + argv, cwd=self.home, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def stop(self):
        subprocess.run(self.as_ + [f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"],
                       cwd=self.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def on_host(name, argv):
    """argv run with host name `name` (as root; otherwise as it is)."""
    if not ROOT:
        return argv
    return ["unshare", "--uts", "sh", "-c", 'printf %s "$1" > /proc/sys/kernel/hostname && shift && exec "$@"',
            "sh", name] + argv


def ts_seconds(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def one_run(tmp, pg, steps, gap, n):
    go = os.path.join(tmp, f"go-{n}")
    lines = ["[runbook]", f'title = "Watched {n}"', "[[phase]]", 'id = "deploy"', 'title = "Deploy"',
             "[[phase.step]]", 'id = "gate"', 'title = "Gate"',
             f'run = "while [ ! -e {go} ]; do sleep 0.02; done"']
    for i in range(steps):
        lines += ["[[phase.step]]", f'id = "s{i}"', f'title = "Step {i}"', f'run = "sleep {gap}"']
    rb = os.path.join(tmp, f"watched-{n}.toml")
    with open(rb, "w") as f:
        f.write("\n".join(lines) + "\n")
    state_a = os.path.join(tmp, f"state-a-{n}")
    state_b = os.path.join(tmp, f"state-b-{n}")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "no-config"))
    env.pop("RUNBOOK_STORE", None)
    driver = subprocess.Popen(on_host("bastion-a", [BIN, "run", rb, "--headless", "--state-dir", state_a,
                                                    "--store", pg.url]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    watcher = None
    try:
        # The run is in the store once its folder's first line is.
        deadline = time.time() + 30
        while not (os.path.isdir(os.path.join(state_a, "runs")) and os.listdir(os.path.join(state_a, "runs"))):
            if time.time() > deadline:
                sys.exit("the driver did not start")
            time.sleep(0.02)
        run_id = os.listdir(os.path.join(state_a, "runs"))[0]
        time.sleep(0.5)
        watcher = subprocess.Popen(on_host("bastion-b", [BIN, "attach", run_id, "--events", "--state-dir",
                                                         state_b, "--store", pg.url]),
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)
        out = watcher.stdout
        buf = b""
        live = False
        latencies = []
        while True:
            chunk = os.read(out.fileno(), 65536)
            now = time.time()
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                e = json.loads(line)
                if live:
                    latencies.append((now - ts_seconds(e["ts"])) * 1000)
                elif e["event"] == "step_started" and e.get("step") == "gate":
                    # The events so far are in: from now on, each arrives as it happens.
                    live = True
                    open(go, "w").close()
        driver.wait(timeout=60)
        watcher.wait(timeout=30)
        return latencies
    finally:
        for p in (watcher, driver):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        open(go, "w").close()


def token(i):
    """Line i as text whose every character differs from line i-1's at the same place (the screen
    redraws only cells that changed: a text sharing a cell with the one before would arrive in
    pieces)."""
    sets = ("ABCDEFGHIJ", "KLMNOPQRST")
    return "".join(sets[i % 2][int(d)] for d in f"{i:04d}")


def log_run(tmp, pg, lines):
    """Latencies (ms) of the running step's log lines, from their printing on A to B's screen."""
    tokens = os.path.join(tmp, "tokens.txt")
    with open(tokens, "w") as f:
        f.write("".join(token(i) + "\n" for i in range(1, lines + 1)))
    go = os.path.join(tmp, "go-log")
    rb = os.path.join(tmp, "log.toml")
    with open(rb, "w") as f:
        f.write(f"""[runbook]
title = "Watched log"
[settings]
shell = "bash"
[[phase]]
id = "p"
title = "Log"
[[phase.step]]
id = "gate"
title = "Gate"
run = "while [ ! -e {go} ]; do sleep 0.02; done"
[[phase.step]]
id = "lines"
title = "Lines"
run = 'while read -r tok; do printf "%s %s\\n" "$tok" "$(date +%s.%N)"; sleep 0.$(( RANDOM % 3 + 1 )); done < {tokens}'
""")
    state_a = os.path.join(tmp, "state-a-log")
    state_b = os.path.join(tmp, "state-b-log")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "no-config"))
    env.pop("RUNBOOK_STORE", None)
    driver = subprocess.Popen(on_host("bastion-a", [BIN, "run", rb, "--headless", "--state-dir", state_a,
                                                    "--store", pg.url]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    w = None
    try:
        deadline = time.time() + 30
        while not (os.path.isdir(os.path.join(state_a, "runs")) and os.listdir(os.path.join(state_a, "runs"))):
            if time.time() > deadline:
                sys.exit("the driver did not start")
            time.sleep(0.02)
        run_id = os.listdir(os.path.join(state_a, "runs"))[0]
        time.sleep(0.5)
        w = Pty(on_host("bastion-b", [BIN, "attach", run_id, "--state-dir", state_b, "--store", pg.url]),
                env=env, cols=80, rows=24)
        if w.wait_for(text_pattern("WATCHING via store"), timeout=30) is None:
            sys.exit("the watcher did not show the run")
        # perf_counter -> wall clock, for the pty's arrival times.
        off = time.time() - time.perf_counter()
        open(go, "w").close()
        driver.wait(timeout=600)
        time.sleep(1)
        log = open(os.path.join(state_a, "runs", run_id, "logs", "p--lines--1.log")).read()
        printed = {m.group(1): float(m.group(2)) for m in re.finditer(r"([A-T]{4}) (\d+\.\d+)", log)}
        out = []
        for i in range(1, lines + 1):
            t = token(i)
            got = w.wait_for(text_pattern(t), start=0, timeout=0.01)
            if got is None:
                sys.exit(f"line {i} never reached the watcher's terminal")
            out.append((got[0] + off - printed[t]) * 1000)
        return out
    finally:
        if w is not None:
            w.close()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        open(go, "w").close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps after the gate (2 events each)")
    ap.add_argument("--gap", type=float, default=0.1, help="each step's sleep, in seconds")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--log", action="store_true", help="the running step's log on the watcher's screen")
    ap.add_argument("--lines", type=int, default=60, help="with --log: lines the step prints")
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} is missing: cargo build --release first (or BIN=target/debug/runbook)")
    tmp = tempfile.mkdtemp(prefix="rb-bench-store-watch-")
    pg = Postgres(tmp)
    try:
        if args.log:
            xs = sorted(log_run(tmp, pg, args.lines))
            p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
            print(f"log line printed on bastion-a -> on the screen of `attach` on bastion-b (80x24): median "
                  f"{statistics.median(xs):.1f} ms, p95 {p95:.1f}, max {max(xs):.1f}, min {min(xs):.1f} "
                  f"(n={len(xs)}; {BIN}; load average {open('/proc/loadavg').read().split()[0]})")
            return
        all_ms = []
        for n in range(args.runs):
            ms = one_run(tmp, pg, args.steps, args.gap, n)
            all_ms += ms
            print(f"run {n + 1}: {len(ms)} events, median {statistics.median(ms):.1f} ms")
        xs = sorted(all_ms)
        p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"event ts on bastion-a -> line of `attach --events` on bastion-b: median "
              f"{statistics.median(xs):.1f} ms, p95 {p95:.1f}, max {max(xs):.1f}, min {min(xs):.1f} "
              f"(n={len(xs)}; {BIN}; load average {load}; host names of their own: {ROOT})")
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
