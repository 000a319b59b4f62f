#!/usr/bin/env python3
"""Issue 3: the delay from a metric crossing its threshold in Prometheus to `trigger_fired`.

A real Prometheus (Debian's `prometheus`, scraping every 1s) on 127.0.0.1 scrapes a tiny exporter
this script controls (`demo_error_ratio`). The release binary runs a runbook headless that polls
every 1s, with a trigger `above = 0.05`, `for = "2s"`, during a long `watch`. Once the run has taken
two healthy samples, the exporter's value is raised to 0.2 at a random moment; the script polls
Prometheus every 20 ms to find when the new value is first returned ("visible"), and reads
`trigger_pending` / `trigger_fired` from the journal.

Target: visible -> trigger_fired <= for + one poll interval + 100 ms = 3.1 s.

Usage: assets/bench/trigger-latency.py [--runs 5] [--bin target/release/runbook]
Run from the repository root after `cargo build --release`. Needs `prometheus` (`.ci/run`
installs it; $PROMETHEUS may name another binary).
"""
import argparse, calendar, glob, http.server, json, os, platform, random, shutil, socket, statistics
import subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request

FOR_S, INTERVAL_S = 2.0, 1.0
TARGET_S = FOR_S + INTERVAL_S + 0.1
HEALTHY, BAD = 0.01, 0.2


# ── exporter ──────────────────────────────────────────────────────────────────────────────────────
class Exporter:
    def __init__(self):
        self.values = {"demo_error_ratio": HEALTHY}
        self.lock = threading.Lock()
        exp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                with exp.lock:
                    body = "".join(f"{k} {v}\n" for k, v in exp.values.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name, value):
        with self.lock:
            self.values[name] = value


# ── Prometheus ────────────────────────────────────────────────────────────────────────────────────
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_binary():
    p = os.environ.get("PROMETHEUS") or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.path.isfile(p):
        sys.exit("prometheus is not installed: apt-get install prometheus (.ci/run does it)")
    return p


class Prometheus:
    def __init__(self, target, workdir):
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                    f"scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while self.value(f'up{{instance="{target}"}}') != 1.0:
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit("Prometheus did not come up:\n" + open(self.log.name).read())
            time.sleep(0.05)

    def query(self, q):
        u = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            with urllib.request.urlopen(u, timeout=2) as r:
                return json.load(r)
        except Exception:
            return None

    def value(self, q):
        a = self.query(q)
        try:
            (one,) = a["data"]["result"]
            return float(one["value"][1])
        except Exception:
            return None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# ── the runbook ───────────────────────────────────────────────────────────────────────────────────
RUNBOOK = """[runbook]
title = "Trigger latency"

[metrics]
url = "{url}"
interval = "1s"

[[metric]]
id = "error_ratio"
title = "Error ratio"
query = "demo_error_ratio"
unit = "percent"

[[trigger]]
id = "error-rate"
title = "Error ratio above 5% for 2s"
metric = "error_ratio"
above = 0.05
for = "2s"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "canary"
title = "Watch the canary"
watch = "60s"

[rollback]
title = "Rollback"

[[rollback.phase]]
id = "back"
title = "Back"

[[rollback.phase.step]]
id = "undo"
title = "Undo"
run = "echo rolled back"
"""


def journal(state):
    files = glob.glob(f"{state}/runs/*/journal.jsonl")
    if not files:
        return []
    out = []
    with open(files[0]) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def ts(e):
    # 2026-11-26T21:20:46.911Z
    s = e["ts"]
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(s[20:23]) / 1000.0


def one_run(i, args, prom, exporter, workdir):
    exporter.set("demo_error_ratio", HEALTHY)
    deadline = time.time() + 10
    while prom.value("demo_error_ratio") != HEALTHY:
        assert time.time() < deadline, "Prometheus does not show the healthy value"
        time.sleep(0.05)
    rb = os.path.join(workdir, f"latency-{i}.toml")
    with open(rb, "w") as f:
        f.write(RUNBOOK.format(url=prom.url))
    state = os.path.join(workdir, f"state-{i}")
    cmd = [args.bin, "run", rb, "--headless", "--state-dir", state]
    if i == 0:
        print("command:", " ".join(cmd))
    out = open(os.path.join(workdir, f"latency-{i}.out"), "w")
    # Start at a random moment: the run polls on its own 1s schedule from its start, so this
    # gives its polls a random phase against Prometheus' scrapes.
    time.sleep(random.uniform(0, 1))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 15
        while sum(1 for e in journal(state) if e["event"] == "metrics_sampled"
                  and e["values"].get("error_ratio") == HEALTHY) < 2:
            assert proc.poll() is None and time.time() < deadline, "the run took no healthy samples"
            time.sleep(0.02)
        time.sleep(random.uniform(0, 1))  # the flip at any moment of the scrape schedule
        flipped = time.time()
        exporter.set("demo_error_ratio", BAD)
        while True:
            sent = time.time()
            if prom.value("demo_error_ratio") == BAD:
                visible = sent
                break
            assert sent - flipped < 5, "Prometheus never showed the new value"
            time.sleep(max(0, 0.02 - (time.time() - sent)))
        scraped = prom.value("timestamp(demo_error_ratio)")
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    j = journal(state)
    ev = lambda name: next((e for e in j if e["event"] == name), None)
    pending, fired, rb_started = ev("trigger_pending"), ev("trigger_fired"), ev("rollback_started")
    assert rc == 3 and fired and pending and rb_started["reason"] == "trigger:error-rate", \
        f"run {i}: exit {rc}, journal:\n" + "\n".join(map(json.dumps, j))
    return {
        "flip->visible": visible - flipped,
        "scrape ts->visible": visible - scraped,
        "visible->pending": ts(pending) - visible,
        "pending->fired": ts(fired) - ts(pending),
        "visible->fired": ts(fired) - visible,
        "scrape ts->fired": ts(fired) - scraped,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=os.path.abspath("target/release/runbook"))
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} not found: cargo build --release first")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs (nproc), {platform.platform()}")
    workdir = tempfile.mkdtemp(prefix="rb-trigger-latency-")
    exporter = Exporter()
    prom = Prometheus(f"127.0.0.1:{exporter.port}", workdir)
    ver = subprocess.run([prometheus_binary(), "--version"], capture_output=True, text=True)
    print("prometheus:", (ver.stdout or ver.stderr).splitlines()[0])
    print(f"runbook: interval = 1s, trigger above 0.05 for = 2s; exporter flips {HEALTHY} -> {BAD}; "
          f"Prometheus scrapes every 1s; 'visible' = first 20 ms poll of /api/v1/query returning {BAD}")
    results = []
    try:
        for i in range(args.runs):
            r = one_run(i, args, prom, exporter, workdir)
            results.append(r)
            ok = "ok" if r["visible->fired"] <= TARGET_S else "MISSED"
            print(f"run {i+1}: visible->fired {r['visible->fired']*1000:6.0f} ms  "
                  f"(flip->visible {r['flip->visible']*1000:4.0f}, visible->pending "
                  f"{r['visible->pending']*1000:4.0f}, pending->fired {r['pending->fired']*1000:4.0f}; "
                  f"from the sample's scrape timestamp {r['scrape ts->fired']*1000:5.0f}) "
                  f"target <= {TARGET_S*1000:.0f} ms: {ok}")
    finally:
        prom.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    d = [r["visible->fired"] * 1000 for r in results]
    within = sum(1 for x in d if x <= TARGET_S * 1000)
    print(f"visible->trigger_fired over {len(d)} runs: min {min(d):.0f} ms, median "
          f"{statistics.median(d):.0f} ms, max {max(d):.0f} ms; target for + interval + 100 ms = "
          f"{TARGET_S*1000:.0f} ms: {within}/{len(d)} within")
    pf = [r["pending->fired"] * 1000 for r in results]
    print(f"pending->fired (for = {FOR_S*1000:.0f} ms): {', '.join(f'{x:.0f}' for x in pf)} ms")


if __name__ == "__main__":
    main()
