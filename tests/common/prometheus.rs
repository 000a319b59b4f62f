//! A real Prometheus on loopback for the metric tests, scraping a tiny exporter the test controls,
//! and the `runbook` binary run against it with its journal read back while it runs.
//!
//! Everything listens on 127.0.0.1 only. Prometheus is Debian's `prometheus` package (installed
//! by `.ci/run`); when it is missing the tests fail and say so, they never skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

use super::{RunbookToml, events, free_port, runbook_bin, toml_string, wait_for};

// ── The runbook ─────────────────────────────────────────────────────────────────────────────────

/// A runbook that polls every second: `[metrics]` (with `url` when given), the metrics and triggers
/// in `body`, then phase `deploy` whose step `canary` watches for `watch`. The test adds its other
/// steps, then `echo_rollback`.
pub fn watching(title: &str, url: Option<&str>, body: &str, watch: &str) -> RunbookToml {
    let url = url
        .map(|u| format!("url = {}\n", toml_string(u)))
        .unwrap_or_default();
    RunbookToml::new(title)
        .raw(&format!("[metrics]\n{url}interval = \"1s\""))
        .raw(body)
        .phase("deploy", "Deploy")
        .step(
            "canary",
            "Watch the canary",
            &format!("watch = {}", toml_string(watch)),
        )
}

/// The rollback of the metric tests' runbooks: one step that echoes.
pub fn echo_rollback(rb: RunbookToml) -> String {
    rb.rollback("Rollback")
        .phase("back", "Back")
        .step("undo", "Undo the deploy", r#"run = "echo rolled back""#)
        .build()
}

// ── The exporter ────────────────────────────────────────────────────────────────────────────────

/// Serves `GET /metrics` in the Prometheus text format: one line per series, with the values the
/// test sets. Series are kept in the order they were first set.
pub struct Exporter {
    pub port: u16,
    series: Arc<Mutex<Vec<(String, f64)>>>,
    scrapes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("exporter: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("exporter addr").port();
        let series: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
        let scrapes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (series, scrapes, stop) = (series.clone(), scrapes.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (series, scrapes) = (series.clone(), scrapes.clone());
                    std::thread::spawn(move || serve_metrics(conn, &series, &scrapes));
                }
            })
        };
        Exporter {
            port,
            series,
            scrapes,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, as a scrape target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets a series (`name` or `name{label="v"}`) to a value; adds it when new.
    pub fn set(&self, series: &str, value: f64) {
        let mut s = self.series.lock().unwrap();
        match s.iter_mut().find(|(k, _)| k == series) {
            Some(entry) => entry.1 = value,
            None => s.push((series.to_string(), value)),
        }
    }

    /// Sets several series at once: a scrape sees all of them changed or none.
    pub fn set_all(&self, values: &[(&str, f64)]) {
        let mut s = self.series.lock().unwrap();
        for (series, value) in values {
            match s.iter_mut().find(|(k, _)| k == series) {
                Some(entry) => entry.1 = *value,
                None => s.push((series.to_string(), *value)),
            }
        }
    }

    /// Adds to a series (a counter), starting from 0.
    pub fn add(&self, series: &str, by: f64) {
        let current = self.get(series).unwrap_or(0.0);
        self.set(series, current + by);
    }

    pub fn get(&self, series: &str) -> Option<f64> {
        let s = self.series.lock().unwrap();
        s.iter().find(|(k, _)| k == series).map(|(_, v)| *v)
    }

    /// How many times `/metrics` was served.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::SeqCst)
    }

    /// The body served right now.
    pub fn body(&self) -> String {
        render(&self.series.lock().unwrap())
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn render(series: &[(String, f64)]) -> String {
    let mut body = String::new();
    for (k, v) in series {
        body.push_str(&format!("{k} {v}\n"));
    }
    body
}

fn serve_metrics(mut conn: TcpStream, series: &Mutex<Vec<(String, f64)>>, scrapes: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        let body = render(&series.lock().unwrap());
        scrapes.fetch_add(1, Ordering::SeqCst);
        ("200 OK", body)
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
}

// ── Prometheus ──────────────────────────────────────────────────────────────────────────────────

/// The Prometheus binary: `$PROMETHEUS`, else `prometheus` on PATH, else Debian's
/// `/usr/bin/prometheus`. Panics with what to do when there is none: these tests never skip.
pub fn prometheus_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "$PROMETHEUS names {}, which does not exist: these tests need a real Prometheus and never skip",
            p.display()
        );
        return p;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("prometheus"))
                .find(|p| p.is_file())
        })
        .unwrap_or(None);
    if let Some(p) = on_path {
        return p;
    }
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.is_file() {
        return debian;
    }
    panic!(
        "Prometheus is not installed: these tests run a real Prometheus on 127.0.0.1 and never skip.\n\
         Install Debian's package (`apt-get install prometheus`; `.ci/run` does it on a fresh machine), \
         or point $PROMETHEUS at a prometheus binary."
    );
}

/// How to start a Prometheus: what it scrapes, its rules, where it sends alerts, its storage.
#[derive(Default)]
pub struct Setup {
    /// A scrape target, `127.0.0.1:PORT`, scraped every second; `start_with` waits for its first
    /// scrape.
    pub target: Option<String>,
    /// An alerting rules file's text (YAML), evaluated every second.
    pub rules: Option<String>,
    /// The port of an Alertmanager on 127.0.0.1 to send alerts to.
    pub alertmanager: Option<u16>,
    /// A storage folder to use (history written beforehand); else a new one in a temp folder.
    pub data: Option<PathBuf>,
    /// More command-line flags.
    pub args: Vec<String>,
}

/// A Prometheus child process on `127.0.0.1:<port>`, scraping one exporter every second, with its
/// storage in a temporary folder. Killed (and waited for) on drop, also when the test panics.
pub struct Prometheus {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`127.0.0.1:PORT`) and returns once it is ready and
    /// the first scrape of the target has landed (`up` is 1).
    pub fn start(target: &str) -> Prometheus {
        Prometheus::start_with(&Setup {
            target: Some(target.to_string()),
            ..Setup::default()
        })
    }

    /// Starts Prometheus as `setup` says: its scrape target (waited for as `start` does), alerting
    /// rules and the Alertmanager it sends alerts to, or a storage folder already holding history.
    pub fn start_with(setup: &Setup) -> Prometheus {
        let bin = prometheus_binary();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("runbook-prometheus-")
                .tempdir()
                .expect("temp dir for Prometheus");
            let config = dir.path().join("prometheus.yml");
            let mut yml = String::from(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n",
            );
            if let Some(rules) = &setup.rules {
                let file = dir.path().join("rules.yml");
                std::fs::write(&file, rules).expect("write rules.yml");
                yml.push_str(&format!("rule_files:\n  - '{}'\n", file.display()));
            }
            if let Some(am) = setup.alertmanager {
                yml.push_str(&format!(
                    "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n"
                ));
            }
            if let Some(target) = &setup.target {
                yml.push_str(&format!(
                    "scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n"
                ));
            }
            std::fs::write(&config, yml).expect("write prometheus.yml");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("prometheus.log");
            let data = setup.data.clone().unwrap_or_else(|| dir.path().join("data"));
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Alerts go to Alertmanager at every evaluation, not once a minute.
                .arg("--rules.alert.resend-delay=1s")
                .arg("--log.level=warn")
                .args(&setup.args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut p = Prometheus {
                port,
                child: Some(child),
                dir,
            };
            match p.wait_ready(setup.target.as_deref()) {
                Ok(()) => return p,
                Err(why) => {
                    last_log = format!("{why}\n--- prometheus.log ---\n{}", p.log());
                    if !last_log.contains("address already in use") {
                        break;
                    }
                    // Someone took the port between our probe and Prometheus' bind: try another.
                }
            }
        }
        panic!("Prometheus did not come up: {last_log}");
    }

    fn wait_ready(&mut self, target: Option<&str>) -> Result<(), String> {
        // Prometheus only starts scraping after its target discovery's first update, ~5 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ready = false;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("Prometheus exited with {status}"));
            }
            if !ready {
                ready = matches!(http_get(self.port, "/-/ready"), Ok((200, _)));
            }
            let Some(target) = target else {
                if ready {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "Prometheus on 127.0.0.1:{} was not ready within 30s",
                        self.port
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            if ready {
                let q = format!("up{{instance=\"{target}\"}}");
                if let Ok(v) = self.query(&q)
                    && scalar_value(&v) == Some(1.0)
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Prometheus on 127.0.0.1:{} was not ready with a first scrape of {target} within 30s \
                     (ready: {ready})",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prometheus' own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query; the whole JSON answer (also for errors Prometheus reports as JSON).
    pub fn query(&self, query: &str) -> Result<Value, String> {
        let path = format!("/api/v1/query?query={}", url_encode(query));
        let (status, body) = http_get(self.port, &path)?;
        serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))
    }

    /// Waits until `query` returns one sample equal to `value`; returns when it was first seen.
    pub fn wait_value(&self, query: &str, value: f64, limit: Duration) -> SystemTime {
        let mut last = None;
        let seen = wait_for(limit, || {
            last = self.query(query).ok();
            last.as_ref().and_then(scalar_value) == Some(value)
        });
        assert!(
            seen,
            "Prometheus did not return {value} for `{query}` within {limit:?}; last answer: {last:?}"
        );
        SystemTime::now()
    }

    /// Kills Prometheus now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The one value of an instant query's answer (a single-series vector or a scalar).
pub fn scalar_value(answer: &Value) -> Option<f64> {
    let data = &answer["data"];
    let v = match data["resultType"].as_str()? {
        "scalar" => &data["result"][1],
        "vector" => match data["result"].as_array()?.as_slice() {
            [one] => &one["value"][1],
            _ => return None,
        },
        _ => return None,
    };
    v.as_str()?.parse().ok()
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A plain HTTP/1.1 GET on 127.0.0.1; (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ── The runbook binary ──────────────────────────────────────────────────────────────────────────

/// `runbook run FILE --headless --state-dir STATE ARGS...` running in the background, its output
/// going to files; killed on drop if it is still running.
pub struct Run {
    pub state: PathBuf,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    pub started: Instant,
}

/// How a run ended.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub journal: Vec<Value>,
    pub elapsed: Duration,
}

impl Run {
    /// Starts the binary; `state` is the run's own state folder (created), output goes next to it.
    pub fn start(file: &Path, state: &Path, args: &[&str]) -> Run {
        std::fs::create_dir_all(state).expect("state dir");
        let out = state.with_extension("stdout");
        let err = state.with_extension("stderr");
        let child = Command::new(runbook_bin())
            .arg("run")
            .arg(file)
            .arg("--headless")
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .current_dir(file.parent().expect("runbook folder"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn runbook");
        Run {
            state: state.to_path_buf(),
            child: Some(child),
            out,
            err,
            started: Instant::now(),
        }
    }

    /// The journal so far (complete lines only); empty before the run folder exists.
    pub fn journal(&self) -> Vec<Value> {
        read_journal(&self.state, true)
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until the journal satisfies `cond`; panics with the run's output otherwise.
    pub fn wait_journal(&mut self, what: &str, limit: Duration, mut cond: impl FnMut(&[Value]) -> bool) {
        let ok = wait_for(limit, || {
            let j = self.journal();
            cond(&j)
                || self
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        let j = self.journal();
        assert!(
            ok && cond(&j),
            "waited {limit:?} for {what}\n--- journal ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            show(&j),
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits for the run to end (killing it after `limit`) and reads everything back.
    pub fn wait(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("a running child");
        let deadline = self.started + limit;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let f = Finished {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout(),
            stderr: self.stderr(),
            journal: read_journal(&self.state, false),
            elapsed: self.started.elapsed(),
        };
        assert!(
            status.is_some(),
            "runbook did not exit within {limit:?}\n{}",
            f.context()
        );
        f
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Finished {
    /// The run's output and journal, for assertion messages.
    pub fn context(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- journal ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed,
            show(&self.journal),
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit status, and that nothing panicked.
    pub fn expect_code(&self, code: i32) -> &Finished {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n{}",
            self.context()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "runbook panicked\n{}",
            self.context()
        );
        self
    }

    pub fn events(&self, name: &str) -> Vec<&Value> {
        events(&self.journal, name)
    }

    pub fn event(&self, name: &str) -> &Value {
        self.events(name)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {name} event\n{}", self.context()))
    }

    pub fn has(&self, name: &str) -> bool {
        !self.events(name).is_empty()
    }
}

/// The journal, one line per event, for messages.
pub fn show(j: &[Value]) -> String {
    j.iter().map(|e| format!("{e}\n")).collect()
}

/// The journal of the one run under `state/runs`; `partial` tolerates a run still writing.
pub fn read_journal(state: &Path, partial: bool) -> Vec<Value> {
    let runs = state.join("runs");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    if partial && dirs.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        dirs.len(),
        1,
        "expected one run folder under {}: {dirs:?}",
        runs.display()
    );
    let text = std::fs::read_to_string(dirs[0].join("journal.jsonl")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            assert!(partial, "torn journal line after the run ended: {line}");
            break;
        }
        let v: Value = serde_json::from_str(line.trim_end())
            .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {line}"));
        out.push(v);
    }
    out
}

/// An event's `ts` as a time.
pub fn ts(e: &Value) -> SystemTime {
    let s = e["ts"].as_str().unwrap_or_else(|| panic!("no ts in {e}"));
    humantime::parse_rfc3339(s).unwrap_or_else(|err| panic!("ts {s:?} is not RFC 3339: {err}"))
}

/// Milliseconds from `a` to `b` (negative when `b` is earlier).
pub fn ms(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The `metrics_sampled` events' values of one metric, in order.
pub fn sampled(j: &[Value], metric: &str) -> Vec<Value> {
    events(j, "metrics_sampled")
        .into_iter()
        .map(|e| e["values"][metric].clone())
        .collect()
}

// ── Alertmanager ────────────────────────────────────────────────────────────────────────────────

/// Debian's Alertmanager: `$ALERTMANAGER`, else `/usr/bin/prometheus-alertmanager`. Panics with
/// what to do when there is none: these tests never skip.
pub fn alertmanager_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ALERTMANAGER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
    assert!(
        debian.is_file(),
        "Alertmanager is not installed: these tests run a real Alertmanager on 127.0.0.1 and never skip.\n\
         Install Debian's package (`apt-get install prometheus-alertmanager`; `.ci/run` does it), or point \
         $ALERTMANAGER at an alertmanager binary."
    );
    debian
}

/// An Alertmanager child process on `127.0.0.1:<port>`, clustering off, its state in a temporary
/// folder, routing every alert to a receiver that sends nothing. Killed on drop.
pub struct Alertmanager {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager and returns once it answers `/-/ready`.
    pub fn start() -> Alertmanager {
        let dir = tempfile::Builder::new()
            .prefix("runbook-alertmanager-")
            .tempdir()
            .expect("temp dir for Alertmanager");
        std::fs::write(
            dir.path().join("alertmanager.yml"),
            "route:\n  receiver: nobody\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: nobody\n",
        )
        .expect("write alertmanager.yml");
        let mut am = Alertmanager {
            port: 0,
            child: None,
            dir,
        };
        am.spawn(free_port());
        am
    }

    /// Starts it (again) on `port`, and waits until it is ready.
    pub fn spawn(&mut self, port: u16) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("alertmanager.log")).expect("log");
        let child = Command::new(alertmanager_binary())
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start Alertmanager");
        self.port = port;
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(20), || {
            matches!(http_get(port, "/-/ready"), Ok((200, _)))
        });
        assert!(
            ready,
            "Alertmanager on 127.0.0.1:{port} was not ready within 20s\n{}",
            std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Active alerts named `name`, as Alertmanager lists them (silenced ones too).
    pub fn alerts(&self, name: &str) -> Vec<Value> {
        let path = format!(
            "/api/v2/alerts?filter={}",
            url_encode(&format!("alertname=\"{name}\""))
        );
        http_get(self.port, &path)
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Creates a silence for `alertname = name` (and `matchers`) through the API; its id.
    pub fn silence(&self, name: &str, matchers: &[(&str, &str)]) -> String {
        let now = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60));
        let end = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
        let mut m =
            vec![serde_json::json!({"name": "alertname", "value": name, "isRegex": false, "isEqual": true})];
        for (k, v) in matchers {
            m.push(serde_json::json!({"name": k, "value": v, "isRegex": false, "isEqual": true}));
        }
        let body = serde_json::json!({
            "matchers": m,
            "startsAt": now.to_string(),
            "endsAt": end.to_string(),
            "createdBy": "runbook tests",
            "comment": "the deploy is known to trip this",
        });
        let (status, answer) = http_post_json(self.port, "/api/v2/silences", &body.to_string())
            .unwrap_or_else(|e| panic!("POST /api/v2/silences: {e}"));
        assert_eq!(status, 200, "creating the silence: {answer}");
        let v: Value = serde_json::from_str(&answer).expect("silence answer is JSON");
        v["silenceID"].as_str().expect("silenceID").to_string()
    }

    /// Kills Alertmanager now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.1 POST of a JSON body on 127.0.0.1; (status, body).
pub fn http_post_json(port: u16, path: &str, body: &str) -> Result<(u16, String), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}
