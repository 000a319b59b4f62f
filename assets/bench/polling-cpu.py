#!/usr/bin/env python3
"""Issue 3: the CPU used by polling 20 metrics every second.

A real Prometheus (Debian's `prometheus`, scraping every 1s) on 127.0.0.1 scrapes a tiny exporter
with 20 gauges. The release binary runs headless a runbook with 20 `[[metric]]`s (20 different
queries against that Prometheus, each with a trigger that never fires), `interval = "1s"`, during
a `watch = "60s"` step. The runbook process's CPU time (utime + stime of all its threads, from
/proc/PID/stat) is read when the watch starts and again just before it ends, and reported as a
percentage of one core. Target: under 1%.

Usage: assets/bench/polling-cpu.py [--watch 60] [--metrics 20] [--bin target/release/runbook]
Run from the repository root after `cargo build --release`. Needs `prometheus` (`.ci/run`
installs it; $PROMETHEUS may name another binary).
"""
import argparse, calendar, glob, http.server, json, os, platform, shutil, socket, subprocess, sys, tempfile
import threading, time, urllib.parse, urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_binary():
    p = os.environ.get("PROMETHEUS") or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.path.isfile(p):
        sys.exit("prometheus is not installed: apt-get install prometheus (.ci/run does it)")
    return p


def start_exporter(n):
    """20 gauges, two series each (so that aggregations have something to do)."""
    body = "".join(f'demo_metric_{i}{{shard="{s}"}} {0.001 * (i + 1) * (k + 1)}\n'
                   for i in range(n) for k, s in enumerate("ab")).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def query(url, q):
    u = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(u, timeout=2) as r:
            return json.load(r)
    except Exception:
        return None


def start_prometheus(target, workdir):
    d = os.path.join(workdir, "prometheus")
    os.makedirs(d)
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                f"scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(d, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [prometheus_binary(), f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.time() + 30
    while True:
        a = query(url, f'up{{instance="{target}"}}')
        if a and a["data"]["result"] and a["data"]["result"][0]["value"][1] == "1":
            # a few more scrapes, so that range queries ([5s]) have data
            time.sleep(3)
            return proc, url
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            sys.exit("Prometheus did not come up:\n" + open(log.name).read())
        time.sleep(0.05)


# Twenty different queries: plain selectors, aggregations, functions over ranges, arithmetic.
def queries(n):
    shapes = [
        'sum(demo_metric_{i})',
        'max(demo_metric_{i})',
        'avg(demo_metric_{i})',
        'demo_metric_{i}{{shard="a"}}',
        'sum(avg_over_time(demo_metric_{i}[5s]))',
        'max(max_over_time(demo_metric_{i}[10s]))',
        'sum(demo_metric_{i}) / count(demo_metric_{i})',
        'quantile(0.9, demo_metric_{i})',
        'sum(rate(demo_metric_{i}[5s])) + sum(demo_metric_{i})',
        'scalar(sum(demo_metric_{i}))',
    ]
    return [shapes[i % len(shapes)].format(i=i) for i in range(n)]


def runbook(url, qs, watch):
    out = [f'[runbook]\ntitle = "Polling CPU"\n\n[metrics]\nurl = "{url}"\ninterval = "1s"\n']
    for i, q in enumerate(qs):
        out.append(f"[[metric]]\nid = \"m{i:02}\"\ntitle = \"Metric {i}\"\nquery = '{q}'\nunit = \"number\"\n")
        out.append(f"[[trigger]]\nid = \"t{i:02}\"\ntitle = \"Metric {i} too high\"\nmetric = \"m{i:02}\"\n"
                   f"above = 1000\nfor = \"30s\"\n")
    out.append(f'[[phase]]\nid = "deploy"\ntitle = "Deploy"\n\n[[phase.step]]\nid = "watch"\n'
               f'title = "Watch"\nwatch = "{watch}s"\n\n[rollback]\ntitle = "Rollback"\n\n'
               '[[rollback.phase]]\nid = "back"\ntitle = "Back"\n\n[[rollback.phase.step]]\n'
               'id = "undo"\ntitle = "Undo"\nrun = "echo rolled back"\n')
    return "\n".join(out)


def journal(state):
    files = glob.glob(f"{state}/runs/*/journal.jsonl")
    if not files:
        return []
    with open(files[0]) as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--watch", type=int, default=60)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--bin", default=os.path.abspath("target/release/runbook"))
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin} not found: cargo build --release first")
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} CPUs (nproc), {model}, {platform.platform()}")
    workdir = tempfile.mkdtemp(prefix="rb-polling-cpu-")
    port = start_exporter(args.metrics)
    prom, url = start_prometheus(f"127.0.0.1:{port}", workdir)
    try:
        qs = queries(args.metrics)
        for q in qs:
            a = query(url, q)
            assert a and a["status"] == "success", f"{q}: {a}"
        rb = os.path.join(workdir, "polling.toml")
        with open(rb, "w") as f:
            f.write(runbook(url, qs, args.watch))
        state = os.path.join(workdir, "state")
        cmd = [args.bin, "run", rb, "--headless", "--state-dir", state]
        print("command:", " ".join(cmd), f"> {workdir}/polling.out")
        out = open(os.path.join(workdir, "polling.out"), "w")
        t_start = time.time()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        while not any(e["event"] == "step_started" for e in journal(state)):
            assert proc.poll() is None and time.time() - t_start < 20, "the watch never started"
            time.sleep(0.01)
        t0, c0 = time.time(), cpu_ticks(proc.pid)
        startup = c0
        time.sleep(args.watch - 2)
        t1, c1 = time.time(), cpu_ticks(proc.pid)
        _, status, ru = os.wait4(proc.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        proc.returncode = rc
        total_wall = time.time() - t_start
    finally:
        prom.kill()
        prom.wait()
    j = journal(state)
    samples = [e for e in j if e["event"] == "metrics_sampled"]
    in_window = [e for e in samples if t0 <= ts(e) <= t1]
    errors = [e for e in samples if e.get("errors")]
    valued = all(all(v is not None for v in e["values"].values()) and len(e["values"]) == args.metrics
                 for e in samples)
    fired = [e for e in j if e["event"] in ("trigger_fired", "trigger_pending", "trigger_unknown")]
    assert rc == 0, f"exit {rc}"
    assert not errors and valued and not fired, "samples with errors or triggers moved: " + json.dumps(errors[:2] + fired[:2])
    cpu_s = (c1 - c0) / CLK_TCK
    wall = t1 - t0
    pct = 100 * cpu_s / wall
    total_cpu = ru.ru_utime + ru.ru_stime
    print(f"{args.metrics} metrics, {args.metrics} triggers, polled every 1s: {len(in_window)} polls "
          f"({len(in_window) * args.metrics} queries) in the {wall:.1f} s measured, every one with a value")
    print(f"CPU of the runbook process during the watch: {cpu_s*1000:.0f} ms in {wall:.1f} s = "
          f"{pct:.2f}% of one core (target < 1%)  [{'ok' if pct < 1 else 'MISSED'}]")
    print(f"whole run (of which {startup*1000//CLK_TCK} ms before the watch): {total_cpu*1000:.0f} ms CPU "
          f"(user {ru.ru_utime*1000:.0f}, sys {ru.ru_stime*1000:.0f}) in {total_wall:.1f} s = "
          f"{100*total_cpu/total_wall:.2f}%; peak RSS {ru.ru_maxrss/1024:.1f} MB")
    shutil.rmtree(workdir, ignore_errors=True)


def ts(e):
    s = e["ts"]
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000.0


if __name__ == "__main__":
    main()
