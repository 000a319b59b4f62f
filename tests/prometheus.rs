//! Metrics from a real Prometheus (issue 3): Debian's `prometheus` on loopback scraping a small
//! exporter the test controls, and the real `runbook` binary watching it headless.
//!
//! - healthy traffic never fires, and what is sampled is what the exporter served;
//! - a rise in errors goes pending, fires after `for`, rolls back, exit 3;
//! - Prometheus going away is `unknown` and obeys `on_no_data` (warn, rollback, hold);
//! - one failed query (HTTP 503, through a proxy) while pending keeps the `for` window;
//! - a query returning several series, a syntax error, an empty result, NaN and a range vector
//!   are each reported as what they are, never as a value;
//! - `runbook plan` says where a metric comes from.
//!
//! Prometheus must be installed (`.ci/run` does it): these tests fail, never skip, without it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use common::prometheus::{Exporter, Finished, Prometheus, Run, echo_rollback, ms, sampled, ts, watching};
use common::{Fixture, events, free_port, runbook_bin};
use serde_json::Value;

const INTERVAL_MS: i64 = 1000;
const FOR_MS: i64 = 2000;

/// A runbook polling every second: `[metrics]` (with `url` when given), the metrics and triggers
/// in `body`, one `watch` step then a command, and a rollback that echoes.
fn runbook(url: Option<&str>, body: &str, watch: &str) -> String {
    let rb = watching("Prometheus test", url, body, watch);
    echo_rollback(rb.step("after", "After the watch", r#"run = "echo after the watch""#))
}

/// The gauge the triggers watch, and its trigger: above 5% for 2s.
fn error_ratio(on_no_data: &str) -> String {
    format!(
        r#"[[metric]]
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
on_no_data = "{on_no_data}"
"#
    )
}

/// The `metrics_sampled` events whose `metric` had a value.
fn valued(j: &[Value], metric: &str) -> usize {
    sampled(j, metric).iter().filter(|v| v.is_number()).count()
}

fn step_finished<'a>(f: &'a Finished, phase: &str, step: &str) -> &'a Value {
    f.events("step_finished")
        .into_iter()
        .find(|e| e["phase"] == phase && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {phase}/{step}\n{}", f.context()))
}

fn assert_rolled_back_for(f: &Finished, trigger: &str) {
    f.expect_code(3);
    let reason = format!("trigger:{trigger}");
    assert_eq!(
        f.event("rollback_started")["reason"],
        reason.as_str(),
        "{}",
        f.context()
    );
    let undo = step_finished(f, "back", "undo");
    assert_eq!(undo["rollback"], true, "{}", f.context());
    assert_eq!(undo["status"], "succeeded", "{}", f.context());
    assert_eq!(f.event("rollback_finished")["status"], "succeeded");
    let end = f.event("run_finished");
    assert_eq!(end["outcome"], "rolled_back", "{}", f.context());
    assert_eq!(end["exit_code"], 3);
    assert!(
        f.stdout.contains(&format!("ROLLBACK started ({reason})")),
        "{}",
        f.context()
    );
}

/// A thread keeping request counters going, 1 in 100 an error, until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(exporter: &Arc<Exporter>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, exporter) = (stop.clone(), exporter.clone());
            std::thread::spawn(move || {
                let mut n = 0.0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1.0;
                    exporter.set_all(&[
                        (r#"demo_requests_total{code="200"}"#, 99.0 * n),
                        (r#"demo_requests_total{code="500"}"#, n),
                    ]);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const RATE_RATIO: &str =
    r#"sum(rate(demo_requests_total{code="500"}[5s])) / sum(rate(demo_requests_total[5s]))"#;

#[test]
fn healthy_traffic_never_fires_and_what_is_sampled_is_what_prometheus_has() {
    let exporter = Arc::new(Exporter::start());
    exporter.set("demo_error_ratio", 0.01);
    exporter.set("demo_inflight", 7.0);
    let _traffic = Traffic::start(&exporter);
    let prom = Prometheus::start(&exporter.target());
    // The rate needs two scrapes in its window before it has a value.
    let mut last = None;
    assert!(
        common::wait_for(Duration::from_secs(10), || {
            last = prom.query(RATE_RATIO).ok();
            last.as_ref().and_then(common::prometheus::scalar_value).is_some()
        }),
        "the rate-based ratio has no value in Prometheus: {last:?}"
    );

    let dir = Fixture::new();
    let body = format!(
        r#"{}
[[metric]]
id = "rate_ratio"
title = "Error ratio from request counters"
query = '{RATE_RATIO}'
unit = "percent"

[[metric]]
id = "inflight"
title = "In flight"
query = "demo_inflight"
unit = "number"

[[trigger]]
id = "rate-errors"
title = "Counted error ratio above 5% for 2s"
metric = "rate_ratio"
above = 0.05
for = "2s"
"#,
        error_ratio("warn")
    );
    // The file's url is a closed port: `--prometheus` must win.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let file = dir.write("healthy.toml", &runbook(Some(&closed), &body, "8s"));
    let f = Run::start(&file, &dir.path().join("state"), &["--prometheus", &prom.url()])
        .wait(Duration::from_secs(30));

    f.expect_code(0);
    for bad in [
        "trigger_pending",
        "trigger_fired",
        "trigger_unknown",
        "rollback_started",
    ] {
        assert!(!f.has(bad), "healthy traffic gave {bad}\n{}", f.context());
    }
    assert_eq!(f.event("run_finished")["outcome"], "succeeded");
    assert_eq!(step_finished(&f, "deploy", "canary")["status"], "succeeded");

    let samples = f.events("metrics_sampled");
    assert!(
        samples.len() >= 8,
        "an 8s watch polled every 1s gave {} samples\n{}",
        samples.len(),
        f.context()
    );
    for s in &samples {
        assert!(
            s.get("errors").is_none(),
            "a healthy sample has errors: {s}\n{}",
            f.context()
        );
        assert_eq!(s["values"]["error_ratio"], 0.01, "{s}");
        assert_eq!(s["values"]["inflight"], 7.0, "{s}");
        let r = s["values"]["rate_ratio"]
            .as_f64()
            .unwrap_or_else(|| panic!("no rate_ratio in {s}"));
        assert!((r - 0.01).abs() < 1e-9, "rate_ratio {r} is not 1%: {s}");
    }
    // The first sample is taken before any step starts.
    let first_step = f
        .journal
        .iter()
        .position(|e| e["event"] == "step_started")
        .unwrap();
    let first_sample = f
        .journal
        .iter()
        .position(|e| e["event"] == "metrics_sampled")
        .unwrap();
    assert!(
        first_sample < first_step,
        "the first sample comes after a step started\n{}",
        f.context()
    );
    // One poll per interval.
    let mut gaps: Vec<i64> = samples.windows(2).map(|w| ms(ts(w[0]), ts(w[1]))).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        (INTERVAL_MS - 100..=INTERVAL_MS + 100).contains(&median),
        "polls are {median} ms apart (median), not every {INTERVAL_MS} ms: {gaps:?}"
    );
    assert!(
        f.stdout.contains("error_ratio=1.00%") && f.stdout.contains("inflight=7"),
        "the headless output does not show the values\n{}",
        f.context()
    );
    assert!(
        exporter.scrapes() >= 8,
        "the exporter was scraped {} times",
        exporter.scrapes()
    );
}

#[test]
fn a_rise_in_errors_fires_after_for_and_rolls_back() {
    let exporter = Exporter::start();
    exporter.set("demo_error_ratio", 0.01);
    let prom = Prometheus::start(&exporter.target());

    // This time the url comes from the runbook itself.
    let dir = Fixture::new();
    let file = dir.write(
        "rise.toml",
        &runbook(Some(&prom.url()), &error_ratio("warn"), "30s"),
    );
    let mut run = Run::start(&file, &dir.path().join("state"), &[]);
    run.wait_journal("two healthy samples", Duration::from_secs(10), |j| {
        valued(j, "error_ratio") >= 2
    });
    let flipped = SystemTime::now();
    exporter.set("demo_error_ratio", 0.2);
    let visible = prom.wait_value("demo_error_ratio", 0.2, Duration::from_secs(5));
    let f = run.wait(Duration::from_secs(25));

    assert_rolled_back_for(&f, "error-rate");
    let pending = f.event("trigger_pending");
    let fired = f.event("trigger_fired");
    assert_eq!(pending["trigger"], "error-rate");
    assert_eq!(pending["value"], 0.2, "{}", f.context());
    assert_eq!(fired["trigger"], "error-rate");
    assert_eq!(fired["value"], 0.2, "{}", f.context());
    assert_eq!(f.events("trigger_pending").len(), 1, "{}", f.context());
    assert_eq!(f.events("trigger_fired").len(), 1, "{}", f.context());

    // Nothing before the flip; pending at the first poll that sees it, fired `for` later.
    let (t_pending, t_fired) = (ts(pending), ts(fired));
    assert!(
        ms(flipped, t_pending) >= 0,
        "pending before the value changed\n{}",
        f.context()
    );
    assert!(
        ms(visible, t_pending) <= INTERVAL_MS + 300,
        "pending {} ms after Prometheus had the new value (poll interval {INTERVAL_MS} ms)\n{}",
        ms(visible, t_pending),
        f.context()
    );
    // The trigger measures `for` from the poll's start; the journal stamps when the answer came
    // back, so a slower first answer can make the journal gap a few ms short of `for`.
    let held = ms(t_pending, t_fired);
    assert!(
        (FOR_MS - 50..FOR_MS + INTERVAL_MS + 300).contains(&held),
        "fired {held} ms after pending; `for` is {FOR_MS} ms, polls every {INTERVAL_MS} ms\n{}",
        f.context()
    );
    // The issue's target is `for` + one interval + 100 ms; assets/bench/trigger-latency.py measures
    // it. Here only a bound that no correct run can miss: the poll that sees the value comes
    // within an interval, and `for` may end up one interval late (see the ignored test below).
    let delay = ms(visible, t_fired);
    eprintln!(
        "value visible in Prometheus → trigger_fired: {delay} ms (pending → fired {held} ms; target {} ms)",
        FOR_MS + INTERVAL_MS + 100
    );
    assert!(
        delay <= FOR_MS + 2 * INTERVAL_MS + 500,
        "trigger_fired {delay} ms after Prometheus had the value\n{}",
        f.context()
    );
    // Every sample before the breach was healthy and every one after it breached.
    for s in f.events("metrics_sampled") {
        let v = s["values"]["error_ratio"]
            .as_f64()
            .unwrap_or_else(|| panic!("a sample without a value: {s}\n{}", f.context()));
        assert!(v == 0.01 || v == 0.2, "{s}");
        if ts(s) > t_pending {
            assert_eq!(v, 0.2, "{s}");
        }
    }

    // The watch was cut short (it fails: a trigger fired during it) and nothing after it ran.
    let watch = step_finished(&f, "deploy", "canary");
    assert_eq!(watch["status"], "failed", "{}", f.context());
    assert_eq!(watch["error"], "trigger error-rate fired during the watch");
    assert!(
        !f.events("step_started")
            .iter()
            .any(|e| e["phase"] == "deploy" && e["step"] == "after"),
        "a step started after the trigger fired\n{}",
        f.context()
    );
    assert!(
        f.elapsed < Duration::from_secs(20),
        "the run took {:?}",
        f.elapsed
    );
    let order: Vec<&str> = f
        .journal
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| {
            [
                "trigger_pending",
                "trigger_fired",
                "rollback_started",
                "rollback_finished",
                "run_finished",
            ]
            .contains(e)
        })
        .collect();
    assert_eq!(
        order,
        [
            "trigger_pending",
            "trigger_fired",
            "rollback_started",
            "rollback_finished",
            "run_finished"
        ]
    );
    let log = step_finished(&f, "back", "undo")["log"]
        .as_str()
        .expect("the rollback step's log")
        .to_string();
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("state/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let text = std::fs::read_to_string(runs[0].join(&log)).unwrap_or_default();
    assert!(text.contains("rolled back"), "rollback log: {text:?}");
    assert!(
        f.stdout
            .contains("trigger error-rate pending (error_ratio = 20.00%)")
            && f.stdout
                .contains("TRIGGER FIRING: error-rate (error_ratio = 20.00%)"),
        "{}",
        f.context()
    );
}

#[test]
fn a_trigger_fires_at_the_first_poll_once_for_has_elapsed() {
    let exporter = Exporter::start();
    exporter.set("demo_error_ratio", 0.01);
    let prom = Prometheus::start(&exporter.target());
    let dir = Fixture::new();
    // Several runs at once, started at different moments: each polls on its own schedule.
    let mut runs = Vec::new();
    for i in 0..6 {
        let file = dir.write(
            &format!("rise-{i}.toml"),
            &runbook(Some(&prom.url()), &error_ratio("warn"), "30s"),
        );
        runs.push(Run::start(&file, &dir.path().join(format!("state-{i}")), &[]));
        std::thread::sleep(Duration::from_millis(170));
    }
    for run in &mut runs {
        run.wait_journal("two healthy samples", Duration::from_secs(10), |j| {
            valued(j, "error_ratio") >= 2
        });
    }
    exporter.set("demo_error_ratio", 0.2);
    let mut held = Vec::new();
    for run in runs {
        let f = run.wait(Duration::from_secs(25));
        assert_rolled_back_for(&f, "error-rate");
        held.push(ms(ts(f.event("trigger_pending")), ts(f.event("trigger_fired"))));
    }
    assert!(
        held.iter().all(|h| *h < FOR_MS + INTERVAL_MS / 2),
        "pending → fired (ms) with for = {FOR_MS} ms and polls every {INTERVAL_MS} ms: {held:?}"
    );
}

#[test]
fn prometheus_going_away_is_unknown_and_obeys_on_no_data() {
    let exporter = Exporter::start();
    exporter.set("demo_error_ratio", 0.01);
    let mut prom = Prometheus::start(&exporter.target());
    let dir = Fixture::new();
    let mut runs: Vec<(&str, Run)> = ["warn", "rollback", "hold"]
        .into_iter()
        .map(|mode| {
            let file = dir.write(&format!("{mode}.toml"), &runbook(None, &error_ratio(mode), "8s"));
            let state = dir.path().join(format!("state-{mode}"));
            (mode, Run::start(&file, &state, &["--prometheus", &prom.url()]))
        })
        .collect();
    for (mode, run) in &mut runs {
        run.wait_journal(
            &format!("two healthy samples ({mode})"),
            Duration::from_secs(10),
            |j| valued(j, "error_ratio") >= 2,
        );
    }
    let killed = SystemTime::now();
    prom.kill();
    let cannot_reach = format!("cannot reach Prometheus at {}", prom.url());

    for (mode, run) in runs {
        let f = run.wait(Duration::from_secs(20));
        let after: Vec<&Value> = f
            .events("metrics_sampled")
            .into_iter()
            .filter(|s| ts(s) > killed)
            .collect();
        assert!(
            !after.is_empty(),
            "[{mode}] no sample after Prometheus died\n{}",
            f.context()
        );
        for s in &after {
            assert!(
                s["values"]["error_ratio"].is_null(),
                "[{mode}] a value without Prometheus: {s}"
            );
            let e = s["errors"]["error_ratio"].as_str().unwrap_or_default();
            assert!(e.contains(&cannot_reach), "[{mode}] error {e:?} in {s}");
        }
        assert!(
            !f.has("trigger_cleared"),
            "[{mode}] shown healthy\n{}",
            f.context()
        );
        assert!(!f.has("trigger_pending"), "{}", f.context());
        match mode {
            "warn" => {
                f.expect_code(0);
                let u = f.event("trigger_unknown");
                assert_eq!(u["trigger"], "error-rate");
                let e = u["error"].as_str().unwrap_or_default();
                assert!(e.contains(&cannot_reach), "trigger_unknown error {e:?}");
                assert!(ts(u) > killed);
                assert_eq!(
                    f.events("trigger_unknown").len(),
                    1,
                    "unknown once, not every poll\n{}",
                    f.context()
                );
                assert!(!f.has("trigger_fired") && !f.has("rollback_started"));
                assert_eq!(f.event("run_finished")["outcome"], "succeeded");
                assert!(after.len() >= 4, "polling went on: {} samples", after.len());
                assert!(
                    f.stdout
                        .contains("trigger error-rate UNKNOWN: cannot reach Prometheus"),
                    "{}",
                    f.context()
                );
                // From the kill on, the screen never shows the metric with a value.
                let shown: Vec<&str> = f.stdout.lines().filter(|l| l.contains("metrics: ")).collect();
                let tail = &shown[shown.len() - after.len()..];
                assert!(
                    tail.iter()
                        .all(|l| l.contains("error_ratio=unknown (cannot reach")),
                    "{tail:#?}"
                );
            }
            "rollback" | "hold" => {
                assert_rolled_back_for(&f, "error-rate");
                // The first failed poll is shown unknown; a source that stays down for `for`
                // (and two polls) is as blind as an empty answer: on_no_data acts.
                let unknown = f.event("trigger_unknown");
                assert!(ts(unknown) > killed, "{}", f.context());
                let fired = f.event("trigger_fired");
                assert!(fired.get("value").is_none(), "{fired}");
                let reason = fired["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains(&cannot_reach) && reason.contains(&format!("on_no_data = \"{mode}\"")),
                    "trigger_fired reason {reason:?}"
                );
                let down = ms(ts(unknown), ts(fired));
                assert!(
                    (FOR_MS - 50..=FOR_MS + INTERVAL_MS + 300).contains(&down),
                    "[{mode}] fired {down} ms after the first failed poll; `for` is {FOR_MS} ms\n{}",
                    f.context()
                );
                let after_kill = ms(killed, ts(fired));
                assert!(
                    after_kill <= FOR_MS + 2 * INTERVAL_MS + 500,
                    "[{mode}] fired {after_kill} ms after Prometheus died\n{}",
                    f.context()
                );
                let watch = step_finished(&f, "deploy", "canary");
                assert_eq!(watch["status"], "failed", "{}", f.context());
                assert_eq!(watch["error"], "trigger error-rate fired during the watch");
            }
            _ => unreachable!(),
        }
    }
}

/// A proxy in front of Prometheus that answers `HTTP 503` to the next `fail` requests and
/// forwards the others (one request per connection).
struct FlakyProxy {
    port: u16,
    fail: Arc<std::sync::atomic::AtomicU32>,
}

impl FlakyProxy {
    fn start(prometheus_url: &str) -> FlakyProxy {
        use std::io::{Read, Write};
        let upstream: u16 = prometheus_url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("Prometheus url with a port");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let fail = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let failing = fail.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let fail_this = failing
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let (status, body) = if fail_this {
                    (503, "Service Unavailable".to_string())
                } else {
                    common::prometheus::http_get(upstream, &path).unwrap_or_else(|e| (502, e))
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FlakyProxy { port, fail }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[test]
fn a_failed_query_while_pending_keeps_the_window_and_the_trigger_fires_on_time() {
    let exporter = Exporter::start();
    exporter.set("demo_error_ratio", 0.01);
    let prom = Prometheus::start(&exporter.target());
    let proxy = FlakyProxy::start(&prom.url());
    let dir = Fixture::new();
    let file = dir.write(
        "blip.toml",
        &runbook(Some(&proxy.url()), &error_ratio("rollback"), "30s"),
    );
    let mut run = Run::start(&file, &dir.path().join("state"), &[]);
    run.wait_journal("two healthy samples", Duration::from_secs(10), |j| {
        valued(j, "error_ratio") >= 2
    });
    exporter.set("demo_error_ratio", 0.2);
    prom.wait_value("demo_error_ratio", 0.2, Duration::from_secs(5));
    run.wait_journal("the trigger pending", Duration::from_secs(5), |j| {
        !events(j, "trigger_pending").is_empty()
    });
    // The next poll, in the middle of the 2 s window, fails.
    proxy.fail.store(1, Ordering::SeqCst);
    let f = run.wait(Duration::from_secs(25));

    assert_rolled_back_for(&f, "error-rate");
    let failed: Vec<&Value> = f
        .events("metrics_sampled")
        .into_iter()
        .filter(|s| s["values"]["error_ratio"].is_null())
        .collect();
    assert_eq!(failed.len(), 1, "one failed poll\n{}", f.context());
    let e = failed[0]["errors"]["error_ratio"].as_str().unwrap_or_default();
    assert!(e.contains("HTTP 503"), "{e:?}");
    let order: Vec<&str> = f
        .journal
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| e.starts_with("trigger_"))
        .collect();
    assert_eq!(
        order,
        ["trigger_pending", "trigger_unknown", "trigger_fired"],
        "shown unknown for the failed poll; the next poll ends the window\n{}",
        f.context()
    );
    assert!(
        f.event("trigger_unknown")["error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 503")
    );
    assert!(
        !f.event("trigger_fired")["value"].is_null(),
        "fired on the breach, not on the blip (on_no_data = rollback)\n{}",
        f.context()
    );
    // Measured between journal lines: `trigger_pending`'s line can be written a little after the
    // sample it comes from (an fsync on a busy disk), so the lower bound has some room.
    let held = ms(ts(f.event("trigger_pending")), ts(f.event("trigger_fired")));
    assert!(
        (FOR_MS - 250..FOR_MS + INTERVAL_MS / 2).contains(&held),
        "fired {held} ms after the breach began; `for` is {FOR_MS} ms and a failed poll must not restart it\n{}",
        f.context()
    );
}

/// Runs the runbook with `on_no_data = MODE` against a port nobody listens on, and checks what
/// every mode shares: the first sample, before any step, is an error and the operator is told.
fn closed_port_from_the_start(mode: &str) -> Finished {
    let dir = Fixture::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    let file = dir.write(
        &format!("{mode}.toml"),
        &runbook(Some(&url), &error_ratio(mode), "2s"),
    );
    let f = Run::start(&file, &dir.path().join("state"), &[]).wait(Duration::from_secs(20));
    let first = f.event("metrics_sampled");
    assert!(first["values"]["error_ratio"].is_null(), "{first}");
    let e = first["errors"]["error_ratio"].as_str().unwrap_or_default();
    assert!(e.contains(&format!("cannot reach Prometheus at {url}")), "{e:?}");
    let first_step = f
        .journal
        .iter()
        .position(|e| e["event"] == "step_started")
        .unwrap_or(usize::MAX);
    let verdict = f
        .journal
        .iter()
        .position(|e| e["event"] == "trigger_unknown" || e["event"] == "trigger_fired")
        .unwrap_or_else(|| panic!("[{mode}] no trigger_unknown/fired\n{}", f.context()));
    assert!(
        verdict < first_step,
        "[{mode}] judged after a step started\n{}",
        f.context()
    );
    let said = format!("{}{}", f.stdout, f.stderr);
    assert!(
        said.contains("metric error_ratio: cannot reach Prometheus")
            && said.contains("shown as unknown, never as healthy"),
        "[{mode}] the operator is not told\n{}",
        f.context()
    );
    assert!(
        f.events("metrics_sampled")
            .iter()
            .all(|s| s["values"]["error_ratio"].is_null()),
        "{}",
        f.context()
    );
    f
}

#[test]
fn a_closed_port_from_the_start_with_warn_is_unknown_and_the_run_goes_on() {
    let f = closed_port_from_the_start("warn");
    f.expect_code(0);
    assert_eq!(f.event("trigger_unknown")["trigger"], "error-rate");
    assert!(
        !f.has("trigger_fired") && !f.has("trigger_cleared"),
        "{}",
        f.context()
    );
    assert_eq!(step_finished(&f, "deploy", "canary")["status"], "succeeded");
    assert_eq!(step_finished(&f, "deploy", "after")["status"], "succeeded");
}

#[test]
fn a_closed_port_from_the_start_with_rollback_or_hold_rolls_back() {
    for mode in ["rollback", "hold"] {
        let f = closed_port_from_the_start(mode);
        assert_rolled_back_for(&f, "error-rate");
        let fired = f.event("trigger_fired");
        let reason = fired["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("on_no_data = \"{mode}\"")), "{reason:?}");
        assert!(
            !f.events("step_started").iter().any(|e| e["rollback"] == false),
            "[{mode}] a forward step started with no data\n{}",
            f.context()
        );
        assert_eq!(step_finished(&f, "deploy", "canary")["status"], "cancelled");
    }
}

#[test]
fn a_prometheus_that_never_answers_is_unknown_and_polling_keeps_its_pace() {
    // Accepts connections and never answers: a hung server, not a closed port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let dir = Fixture::new();
    let file = dir.write("hung.toml", &runbook(None, &error_ratio("warn"), "4s"));
    let f =
        Run::start(&file, &dir.path().join("state"), &["--prometheus", &url]).wait(Duration::from_secs(20));
    f.expect_code(0);
    let samples = f.events("metrics_sampled");
    assert!(samples.len() >= 4, "{}", f.context());
    for s in &samples {
        assert!(s["values"]["error_ratio"].is_null(), "{s}");
        assert_eq!(
            s["errors"]["error_ratio"], "Prometheus did not answer in time",
            "{s}"
        );
    }
    assert_eq!(f.events("trigger_unknown").len(), 1, "{}", f.context());
    // A poll gives up within the interval, so rounds keep to one per interval.
    let gaps: Vec<i64> = samples.windows(2).map(|w| ms(ts(w[0]), ts(w[1]))).collect();
    assert!(
        gaps.iter()
            .all(|g| (INTERVAL_MS - 150..=INTERVAL_MS + 150).contains(g)),
        "polls are not one per {INTERVAL_MS} ms with a hung Prometheus: {gaps:?}"
    );
    assert!(
        f.elapsed < Duration::from_secs(10),
        "a 4s watch took {:?} with a hung Prometheus",
        f.elapsed
    );
}

#[test]
fn query_problems_are_reported_as_what_they_are() {
    let exporter = Exporter::start();
    exporter.set("demo_error_ratio", 0.01);
    exporter.set(r#"demo_series{shard="a"}"#, 1.0);
    exporter.set(r#"demo_series{shard="b"}"#, 2.0);
    let prom = Prometheus::start(&exporter.target());
    prom.wait_value("count(demo_series)", 2.0, Duration::from_secs(5));

    let metrics = [
        ("fine", "demo_error_ratio"),
        ("several", "demo_series"),
        ("syntax", "sum(demo_series"),
        ("absent", "absent_metric_xyz"),
        ("nan", "vector(0) / vector(0)"),
        ("range", "demo_series[1m]"),
        ("scalar", "scalar(sum(demo_series))"),
    ];
    let mut body = String::new();
    for (id, q) in metrics {
        body.push_str(&format!(
            "[[metric]]\nid = \"{id}\"\ntitle = \"{id}\"\nquery = '{q}'\n\n"
        ));
    }
    body.push_str(
        "[[trigger]]\nid = \"absent\"\ntitle = \"Absent\"\nmetric = \"absent\"\nabove = 1\non_no_data = \"warn\"\n\n\
         [[trigger]]\nid = \"several\"\ntitle = \"Several\"\nmetric = \"several\"\nabove = 1\non_no_data = \"warn\"\n",
    );
    let dir = Fixture::new();
    let file = dir.write("queries.toml", &runbook(None, &body, "2s"));
    let f = Run::start(&file, &dir.path().join("state"), &["--prometheus", &prom.url()])
        .wait(Duration::from_secs(20));
    f.expect_code(0);

    let samples = f.events("metrics_sampled");
    assert!(samples.len() >= 2, "{}", f.context());
    for s in &samples {
        let err = |id: &str| s["errors"][id].as_str().unwrap_or_default().to_string();
        assert_eq!(s["values"]["fine"], 0.01, "{s}");
        assert_eq!(s["values"]["scalar"], 3.0, "{s}");
        assert!(
            s["errors"].get("fine").is_none() && s["errors"].get("scalar").is_none(),
            "{s}"
        );
        for id in ["several", "syntax", "absent", "nan", "range"] {
            assert!(s["values"][id].is_null(), "{id} has a value: {s}");
        }
        let several = err("several");
        assert!(
            several.contains("2 series") && several.contains("aggregate"),
            "several series: {several:?}"
        );
        let syntax = err("syntax");
        assert!(
            syntax.contains("bad_data") && syntax.contains("parse error"),
            "syntax error: {syntax:?}"
        );
        assert_eq!(err("absent"), "no data", "{s}");
        assert!(err("nan").contains("NaN"), "NaN: {s}");
        assert!(err("range").contains("matrix"), "range vector: {s}");
    }
    // The triggers on them are unknown (each once), never ok and never firing.
    let unknown = f.events("trigger_unknown");
    let by = |t: &str| -> Vec<&&Value> { unknown.iter().filter(|e| e["trigger"] == t).collect() };
    assert_eq!(by("absent").len(), 1, "{}", f.context());
    assert_eq!(by("absent")[0]["error"], "no data");
    assert_eq!(by("several").len(), 1, "{}", f.context());
    assert!(
        by("several")[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("aggregate")
    );
    assert!(
        !f.has("trigger_fired") && !f.has("trigger_cleared"),
        "{}",
        f.context()
    );
    let said = format!("{}{}", f.stdout, f.stderr);
    for id in ["several", "syntax", "absent", "nan", "range"] {
        assert!(
            said.contains(&format!("metric {id}: ")),
            "the operator is not told about {id}\n{}",
            f.context()
        );
    }
    assert!(said.contains("absent=unknown (no data)"), "{}", f.context());
}

#[test]
fn plan_says_where_a_prometheus_metric_comes_from() {
    let dir = Fixture::new();
    let plan = |file: &Path| {
        let out = std::process::Command::new(runbook_bin())
            .arg("plan")
            .arg(file)
            .output()
            .expect("run runbook plan");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let with_url = dir.write(
        "url.toml",
        &runbook(Some("http://127.0.0.1:9"), &error_ratio("hold"), "2s"),
    );
    let text = plan(&with_url);
    for want in [
        "## Metrics (every 1s)",
        "error_ratio      Error ratio [percent] — prometheus http://127.0.0.1:9",
        "query: demo_error_ratio",
        "## Rollback triggers",
        "error-rate       Error ratio above 5% for 2s",
        "error_ratio above 5.00% for 2s; no data: hold",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    let without = dir.write("nourl.toml", &runbook(None, &error_ratio("warn"), "2s"));
    let text = plan(&without);
    assert!(
        text.contains("simulated around") && text.contains("(no [metrics] url)"),
        "{text}"
    );
    assert!(!text.contains("— prometheus"), "{text}");
}

#[test]
fn the_exporter_and_journal_helpers_work() {
    // The harness itself: what the exporter serves, and events read back.
    let exporter = Exporter::start();
    exporter.set("a", 1.5);
    exporter.set(r#"b{x="y"}"#, 2.0);
    exporter.add("a", 1.0);
    let (status, body) = common::prometheus::http_get(exporter.port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert_eq!(body, "a 2.5\nb{x=\"y\"} 2\n");
    assert_eq!(exporter.scrapes(), 1);
    assert_eq!(
        common::prometheus::http_get(exporter.port, "/other").unwrap().0,
        404
    );
    let j: Vec<Value> = vec![serde_json::json!({"ts": "2026-01-01T00:00:00.000Z", "event": "x"})];
    assert_eq!(events(&j, "x").len(), 1);
}
