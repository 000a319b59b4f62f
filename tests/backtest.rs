//! `runbook backtest` (SPEC §7) against a real Prometheus whose history the test wrote with
//! `promtool tsdb create-blocks-from openmetrics`: a week of one gauge at 15 s resolution with
//! known breaches, replayed at a 15 s interval (five range queries: the 11,000-points limit), and
//! every episode asserted exactly — a long breach that fires, a flap that restarts `for`, and a gap
//! in the data that ends a pending window.
//!
//! Prometheus and promtool must be installed (`.ci/run` does it): these tests fail, never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::prometheus::{Prometheus, Setup};
use serde_json::Value;
use tempfile::TempDir;

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// The gauge's value sampled at `s` seconds after the window's start, `None` in the gap.
/// Samples are 7 s past each 15 s step, so that each evaluation sees exactly one.
fn value(s: i64) -> Option<f64> {
    let at = |d: u64, h: u64, m: u64| (d * DAY + h * HOUR + m * MIN) as i64;
    let within = |from: i64, mins: u64| s >= from && s < from + (mins * MIN) as i64;
    // Day 1, 10:00: a 20-minute breach, worst in its middle: fires.
    let e1 = at(1, 10, 0);
    if within(e1, 5) {
        return Some(6.0);
    }
    if within(e1 + 5 * 60, 5) {
        return Some(9.0);
    }
    if within(e1 + 10 * 60, 10) {
        return Some(7.0);
    }
    // Day 2, 14:00: 4 minutes high, one minute back to normal, 7 minutes high: the dip restarts
    // `for`, so only the second stretch fires.
    let flap = at(2, 14, 0);
    if within(flap, 4) || within(flap + 5 * 60, 7) {
        return Some(8.0);
    }
    // Day 3, 09:00: 3 minutes high, then no data for 37 minutes, then 4 minutes high: the gap
    // ends the pending window, so nothing fires although the breach spans 44 minutes.
    let gap = at(3, 9, 0);
    if within(gap, 3) || within(gap + 40 * 60, 4) {
        return Some(8.0);
    }
    if within(gap + 3 * 60, 37) {
        return None;
    }
    Some(1.0)
}

/// The window's end: a whole hour, two hours ago (well clear of Prometheus' head block).
fn until() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    now / HOUR * HOUR - 2 * HOUR
}

/// Writes the series from an hour before `start` to `end` as OpenMetrics and turns it into TSDB
/// blocks with promtool; returns the storage folder.
fn history(dir: &Path, start: u64, end: u64) -> PathBuf {
    let mut text = String::from("# HELP demo_value A gauge the test controls.\n# TYPE demo_value gauge\n");
    let mut t = start as i64 - HOUR as i64 + 7;
    while t < end as i64 {
        if let Some(v) = value(t - start as i64) {
            text.push_str(&format!("demo_value {v} {t}\n"));
        }
        t += 15;
    }
    text.push_str("# EOF\n");
    let om = dir.join("history.om");
    std::fs::write(&om, text).expect("write openmetrics");
    let data = dir.join("data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect("promtool is installed (.ci/run installs Debian's prometheus package)");
    assert!(
        out.status.success(),
        "promtool failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

fn runbook(dir: &Path, url: Option<&str>) -> PathBuf {
    let url = url.map(|u| format!("url = \"{u}\"\n")).unwrap_or_default();
    let text = format!(
        r#"[runbook]
title = "Backtest test"

[metrics]
{url}interval = "15s"

[[metric]]
id = "demo"
title = "Demo gauge"
query = "max_over_time(demo_value[15s])"

[[trigger]]
id = "demo-high"
title = "Demo above 5 for 5 minutes"
metric = "demo"
above = 5
for = "5m"
armed_from = "deploy"

[[trigger]]
id = "smoke"
title = "Smoke test"
check = "true"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
title = "Deploy"
run = "true"
"#
    );
    let p = dir.join("backtest.toml");
    std::fs::write(&p, text).expect("write runbook");
    p
}

fn backtest(args: &[&str]) -> (Option<i32>, String, String) {
    let out = common::runbook(&[&["backtest"], args].concat());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("runbook-backtest-test-")
        .tempdir()
        .expect("temp dir")
}

#[test]
fn a_week_of_history_gives_exactly_the_known_episodes() {
    let dir = tempdir();
    let end = until();
    let start = end - 7 * DAY;
    let data = history(dir.path(), start, end);
    let prom = Prometheus::start_with(&Setup {
        data: Some(data),
        ..Setup::default()
    });
    let file = runbook(dir.path(), Some(&prom.url()));
    let until_arg = rfc3339(end);
    let (code, stdout, stderr) = backtest(&[
        file.to_str().unwrap(),
        "--since",
        "7d",
        "--until",
        &until_arg,
        "--format",
        "json",
    ]);
    assert_eq!(
        code,
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\n{}",
        prom.log()
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["start"], rfc3339(start));
    assert_eq!(report["end"], rfc3339(end));
    assert_eq!(report["step_seconds"], 15.0);
    let t = &report["triggers"][0];
    assert_eq!(t["trigger"], "demo-high");
    assert_eq!(report["triggers"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(
        t["evaluations"],
        7 * 24 * 240 + 1,
        "every 15 s of the week, both ends"
    );
    assert_eq!(t["no_data"], 148, "the 37-minute gap, evaluation by evaluation");
    assert_eq!(t["failed"], 0);

    let at = |d: u64, h: u64, m: u64, s: u64| rfc3339(start + d * DAY + h * HOUR + m * MIN + s);
    let episode = |from: String, to: String, peak: f64, fired: Option<String>| {
        serde_json::json!({
            "start": from,
            "end": to,
            "peak": peak,
            "fired": fired.is_some(),
            "fired_at": fired,
        })
    };
    let expected = serde_json::json!([
        // Pending at the first high evaluation, fired 5 minutes later, ok at the first low one.
        episode(at(1, 10, 0, 15), at(1, 10, 20, 15), 9.0, Some(at(1, 10, 5, 15))),
        // The flap: 4 minutes pending, then the dip clears it...
        episode(at(2, 14, 0, 15), at(2, 14, 4, 15), 8.0, None),
        // ...and `for` starts again: fired 5 minutes into the second stretch, not at once.
        episode(at(2, 14, 5, 15), at(2, 14, 12, 15), 8.0, Some(at(2, 14, 10, 15))),
        // The gap ends the pending window at its first empty evaluation...
        episode(at(3, 9, 0, 15), at(3, 9, 3, 15), 8.0, None),
        // ...and the breach after it starts a new one, too short to fire.
        episode(at(3, 9, 40, 15), at(3, 9, 44, 15), 8.0, None),
    ]);
    assert_eq!(t["episodes"], expected, "{:#}", t["episodes"]);
    assert_eq!(t["fires"], 2);

    let fired_days = [
        at(1, 10, 5, 15)[..10].to_string(),
        at(2, 14, 10, 15)[..10].to_string(),
    ];
    let days = t["fires_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 8, "every UTC day the window touches: {days:?}");
    assert_eq!(days[0]["day"], rfc3339(start)[..10]);
    for d in days {
        let want = if fired_days.contains(&d["day"].as_str().unwrap().to_string()) {
            1
        } else {
            0
        };
        assert_eq!(d["fires"], want, "{days:?}");
    }
    assert_eq!(t["sparkline"].as_array().unwrap().len(), 72);
    assert_eq!(report["not_backtested"][0]["trigger"], "smoke");

    // The same, as people read it.
    let (code, text, stderr) = backtest(&[file.to_str().unwrap(), "--since", "7d", "--until", &until_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    let fired_at = |t: String| format!("at {}", &t[11..19]);
    let row = |from: String, to: String, lasted: &str, peak: &str, fired: &str| {
        format!(
            "  {:<19}  {:<19}  {lasted:>7}  {peak:>8}  {fired}",
            from.replace('T', " ").trim_end_matches('Z'),
            to.replace('T', " ").trim_end_matches('Z')
        )
    };
    for line in [
        "demo-high: Demo above 5 for 5 minutes".to_string(),
        "  demo above 5 for 5m — 40321 evaluations, 148 without data, 0 failed".to_string(),
        "  5 episodes, 2 would have fired".to_string(),
        row(
            at(1, 10, 0, 15),
            at(1, 10, 20, 15),
            "20m",
            "9",
            &fired_at(at(1, 10, 5, 15)),
        ),
        row(at(2, 14, 0, 15), at(2, 14, 4, 15), "4m", "8", "no"),
        row(
            at(2, 14, 5, 15),
            at(2, 14, 12, 15),
            "7m",
            "8",
            &fired_at(at(2, 14, 10, 15)),
        ),
        row(at(3, 9, 0, 15), at(3, 9, 3, 15), "3m", "8", "no"),
        row(at(3, 9, 40, 15), at(3, 9, 44, 15), "4m", "8", "no"),
        "  fires per day (0.3 a day on average):".to_string(),
        "  smoke: a check trigger runs a command, which keeps no history".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    for l in text.lines().filter(|l| !l.contains(file.to_str().unwrap())) {
        assert!(
            unicode_width(l) <= 80,
            "a line wider than 80 columns: {l:?}\n{text}"
        );
    }
}

fn unicode_width(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn metrics_without_prometheus_are_refused() {
    let dir = tempdir();
    let file = runbook(dir.path(), None);
    let (code, stdout, stderr) = backtest(&[file.to_str().unwrap(), "--since", "7d"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "runbook: {}: its metrics have no Prometheus ([metrics] url), and backtest replays Prometheus history: give --prometheus URL\n",
            file.display()
        )
    );
    // A Prometheus that is not there stops it too, saying where.
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let (code, stdout, stderr) =
        backtest(&[file.to_str().unwrap(), "--since", "1h", "--prometheus", &closed]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.starts_with("runbook: backtest stopped: metric `demo`, ")
            && stderr.contains(&format!("cannot reach Prometheus at {closed}")),
        "{stderr}"
    );
    let (code, _, stderr) = backtest(&[file.to_str().unwrap(), "--since", "40d"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "runbook: --since: duration \"40d\" is longer than 30 days, the longest a runbook may use\n"
    );
    let (code, _, stderr) = backtest(&[file.to_str().unwrap(), "--since", "last week"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("runbook: --since: `last week` is not a time"),
        "{stderr}"
    );
}
