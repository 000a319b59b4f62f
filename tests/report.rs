//! `runbook report`: hand-written journals under tests/fixtures/report/ rendered as Markdown and
//! JSON, a real journal written by `runbook run`, and the error cases.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{runbook, runbook_bin};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

/// The Markdown report of a fixture; the command must succeed and say nothing on stderr.
fn markdown(name: &str) -> String {
    let path = fixture(name);
    let out = runbook(&["report", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(name: &str) -> Value {
    let path = fixture(name);
    let out = runbook(&["report", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("{\n  \""), "pretty-printed: {text}");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// The text of one `## Section` of a Markdown report, up to the next one.
fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = md
        .find(&head)
        .unwrap_or_else(|| panic!("no {title} section in:\n{md}"))
        + head.len();
    let rest = &md[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

fn has_line(md: &str, line: &str) {
    assert!(md.lines().any(|l| l == line), "no line `{line}` in:\n{md}");
}

#[test]
fn succeeded_run_with_confirmations_and_a_note_in_markdown() {
    let md = markdown("succeeded.jsonl");
    assert!(md.starts_with("# Run report: Checkout rollout\n"), "{md}");
    has_line(&md, "- **Runbook:** Checkout rollout (`checkout-rollout`)");
    has_line(&md, "- **File:** `runbooks/checkout.toml`");
    has_line(
        &md,
        "- **SHA-256:** `1111111111111111111111111111111111111111111111111111111111111111`",
    );
    has_line(&md, "- **Variables:** `release=v2.14.0`");
    has_line(&md, "- **Operators:** alice, carol");
    has_line(&md, "- **Host:** bastion-1");
    has_line(&md, "- **Start:** 2026-11-26T20:00:00.000Z");
    has_line(&md, "- **End:** 2026-11-26T20:03:10.100Z");
    has_line(&md, "- **Duration:** 3m10s");
    has_line(&md, "- **Outcome:** **succeeded** (exit 0)");

    let steps = section(&md, "Steps");
    has_line(
        steps,
        "| Phase | Step | Status | Attempts | Start (UTC) | Duration | By | Reason | Exit | Error |",
    );
    has_line(
        steps,
        "| prep | backup | succeeded | 1 | 20:00:00 | 42s | — | — | 0 | — |",
    );
    has_line(
        steps,
        "| prep | cdn-verified | confirmed | 1 | 20:00:42 | 2m05s | alice | — | — | — |",
    );
    has_line(
        steps,
        "| prep | docs-updated | skipped | 0 | — | 0ms | — | docs ship next week | — | — |",
    );
    has_line(
        steps,
        "| deploy | health | succeeded | 1 | 20:02:52 | 850ms | — | — | HTTP 200 | — |",
    );
    has_line(
        steps,
        "| deploy | smoke-ok | confirmed | 1 | 20:02:53 | 17s | carol | — | — | — |",
    );
    // First-seen order.
    let order: Vec<usize> = ["backup", "cdn-verified", "docs-updated", "health", "smoke-ok"]
        .iter()
        .map(|s| steps.find(&format!("| {s} |")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{steps}");

    // The pipe is escaped and the line break flattened.
    let notes = section(&md, "Notes");
    has_line(
        notes,
        "| 20:02:50 | alice | CDN purge took \\| longer than usual see OPS-42 |",
    );
    assert!(!md.contains("## Triggers"), "{md}");
    let timeline = section(&md, "Timeline");
    has_line(
        timeline,
        "| 20:03:10 | confirmed | deploy/smoke-ok | — | carol | — | — |",
    );
    assert!(section(&md, "Metrics").contains("No metrics were sampled."));
    assert!(!md.contains("## Rollback"), "{md}");
    assert!(!md.contains("## Rehearsal"), "{md}");
    assert!(!md.contains("> **Note:**"), "{md}");
}

#[test]
fn succeeded_run_in_json() {
    let j = json("succeeded.jsonl");
    assert_eq!(j["runbook"]["id"], "checkout-rollout");
    assert_eq!(j["runbook"]["title"], "Checkout rollout");
    assert_eq!(j["runbook"]["file"], "runbooks/checkout.toml");
    assert_eq!(j["runbook"]["sha256"], "1".repeat(64));
    assert_eq!(j["runbook"]["vars"]["release"], "v2.14.0");
    assert_eq!(j["operators"], serde_json::json!(["alice", "carol"]));
    assert_eq!(j["hosts"], serde_json::json!(["bastion-1"]));
    assert_eq!(j["start"], "2026-11-26T20:00:00.000Z");
    assert_eq!(j["end"], "2026-11-26T20:03:10.100Z");
    assert_eq!(j["duration_ms"], 190_100);
    assert_eq!(j["outcome"]["finished"], true);
    assert_eq!(j["outcome"]["outcome"], "succeeded");
    assert_eq!(j["outcome"]["exit_code"], 0);
    assert_eq!(j["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(j["sessions"][0]["operator"], "alice");

    let steps = j["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["backup", "cdn-verified", "docs-updated", "health", "smoke-ok"]
    );
    assert_eq!(steps[0]["exit_code"], 0);
    assert_eq!(steps[0]["log"], "logs/prep--backup--1.log");
    assert_eq!(steps[1]["status"], "confirmed");
    assert_eq!(steps[1]["by"], "alice");
    assert_eq!(steps[1]["duration_ms"], 125_000);
    assert_eq!(steps[1]["start"], "2026-11-26T20:00:42.020Z");
    assert_eq!(steps[1]["metrics"]["error_rate"], 0.002);
    assert_eq!(steps[2]["status"], "skipped");
    assert_eq!(steps[2]["reason"], "docs ship next week");
    assert_eq!(steps[2]["attempts"], 0);
    assert_eq!(steps[3]["http_status"], 200);
    assert_eq!(steps[4]["by"], "carol");

    assert_eq!(j["notes"].as_array().unwrap().len(), 1);
    assert_eq!(j["notes"][0]["operator"], "alice");
    assert_eq!(j["notes"][0]["ts"], "2026-11-26T20:02:50.000Z");
    assert_eq!(
        j["notes"][0]["text"],
        "CDN purge took | longer than usual\nsee OPS-42"
    );
    assert_eq!(j["triggers"], serde_json::json!([]));
    assert_eq!(j["metrics"], serde_json::json!({}));
    assert_eq!(j["rollback"], Value::Null);
    assert_eq!(j["rehearsal"], Value::Null);
    assert_eq!(j["warnings"], serde_json::json!([]));
}

#[test]
fn failed_then_retried_step() {
    let md = markdown("retried.jsonl");
    let steps = section(&md, "Steps");
    has_line(
        steps,
        "| db | migrate | succeeded | 2 (1 failed) | 21:00:01 | 8s | — | — | 0 | — |",
    );
    has_line(
        steps,
        "| db | verify | **timed_out** | 1 | 21:00:36 | 10m | — | — | 143 | timed out after 10m |",
    );
    assert_eq!(
        steps.matches("| migrate |").count(),
        1,
        "one row per step: {steps}"
    );
    has_line(&md, "- **Outcome:** **failed** (exit 1): db/verify failed");

    let j = json("retried.jsonl");
    let migrate = &j["steps"][0];
    assert_eq!(migrate["status"], "succeeded");
    assert_eq!(migrate["attempts"], 2);
    assert_eq!(migrate["duration_ms"], 8000);
    assert_eq!(migrate["exit_code"], 0);
    assert_eq!(migrate["start"], "2026-11-26T21:00:01.000Z");
    assert_eq!(migrate["log"], "logs/db--migrate--2.log");
    assert_eq!(migrate["history"][0]["status"], "failed");
    assert_eq!(migrate["history"][0]["exit_code"], 1);
    assert_eq!(migrate["history"][1]["status"], "succeeded");
    assert_eq!(j["steps"][1]["error"], "timed out after 10m");
    assert_eq!(j["outcome"]["outcome"], "failed");
    assert_eq!(j["outcome"]["exit_code"], 1);
    assert_eq!(j["outcome"]["reason"], "db/verify failed");
}

#[test]
fn rollback_rehearsal_with_triggers_metrics_and_figures_in_markdown() {
    let md = markdown("rollback.jsonl");
    assert!(md.starts_with("# Rehearsal report: Canary drill\n"), "{md}");
    has_line(&md, "- **Outcome:** **rolled_back** (exit 3)");

    let steps = section(&md, "Steps");
    has_line(
        steps,
        "| deploy | canary | succeeded | 1 | 22:00:00 | 6s | — | — | 0 | — |",
    );
    has_line(
        steps,
        "| deploy | watch | **cancelled** | 1 | 22:00:06 | 21s | — | — | — | — |",
    );
    has_line(
        steps,
        "Cancelled by the rollback before they started (2): `deploy/full-rollout`, `verify/smoke`",
    );
    assert!(!steps.contains("| full-rollout |"), "compact, not rows: {steps}");
    assert!(
        !steps.contains("traffic-back"),
        "rollback steps have their own table: {steps}"
    );

    let rb = section(&md, "Rollback");
    has_line(rb, "- **Reason:** trigger security fired (`trigger:security`)");
    has_line(rb, "- **Started:** 2026-11-26T22:00:28.000Z");
    has_line(rb, "- **Finished:** 2026-11-26T22:00:43.000Z");
    has_line(rb, "- **Status:** **succeeded**");
    has_line(rb, "- **Duration:** 15s");
    has_line(
        rb,
        "| undo | traffic-back | succeeded | 1 | 22:00:28 | 3s | — | — | 0 | — |",
    );
    has_line(
        rb,
        "| undo | confirm-old | confirmed | 1 | 22:00:31 | 8.8s | erin | — | — | — |",
    );

    let timeline = section(&md, "Timeline");
    has_line(
        timeline,
        "| Time (UTC) | What | Of | Value | By | Details | Metrics then |",
    );
    has_line(
        timeline,
        "| 22:00:11 | fault injected | — | — | erin | — | error_rate 0.004, latency 0.31 |",
    );
    has_line(
        timeline,
        "| 22:00:15 | unknown | error-rate | — | — | no data | error_rate no data, latency 0.9, queue no data |",
    );
    has_line(
        timeline,
        "| 22:00:26 | acknowledged | error-rate | 0.0215 | erin | — | error_rate 0.003, latency 0.28, queue no data |",
    );
    has_line(
        timeline,
        "| 22:00:27 | fired | security | — | — | CVE in the new image | error_rate 0.003, latency 0.28, queue no data |",
    );
    has_line(
        timeline,
        "| 22:00:28 | rollback started | — | — | — | trigger security fired | error_rate 0.003, latency 0.28, queue no data |",
    );
    has_line(
        timeline,
        "| 22:00:40 | confirmed | undo/confirm-old | — | erin | — | error_rate 0.003 |",
    );
    let phases = section(&md, "Phases");
    has_line(phases, "| deploy | **cancelled** | 2 | 22:00:00 | 27s |");
    has_line(phases, "| Rollback: undo | succeeded | 2 | 22:00:28 | 11s |");

    let metrics = section(&md, "Metrics");
    has_line(
        metrics,
        "| Metric | Samples | No data | Min | Median | Max | Last | Last error |",
    );
    has_line(
        metrics,
        "| error_rate | 5 | 1 | 0.002 | 0.0035 | 0.021 | 0.003 | no data |",
    );
    has_line(metrics, "| latency | 5 | 0 | 0.25 | 0.3 | 0.9 | 0.28 | — |");
    has_line(metrics, "| queue | 1 | 1 | — | — | — | — | command exited 1 |");

    let drill = section(&md, "Rehearsal");
    has_line(
        drill,
        "- **From the trigger firing to the rollback decision:** 3.0s",
    );
    has_line(drill, "- **Rollback procedure:** 15s");
}

#[test]
fn rollback_rehearsal_in_json() {
    let j = json("rollback.jsonl");
    assert_eq!(j["runbook"]["mode"], "rehearse");
    let steps: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["canary", "watch"]);
    assert_eq!(
        j["cancelled_before_start"],
        serde_json::json!(["deploy/full-rollout", "verify/smoke"])
    );

    let rb = &j["rollback"];
    assert_eq!(rb["reason"], "trigger:security");
    assert_eq!(rb["status"], "succeeded");
    assert_eq!(rb["duration_ms"], 15_000);
    assert_eq!(rb["steps"][0]["step"], "traffic-back");
    assert_eq!(rb["steps"][1]["by"], "erin");
    assert_eq!(rb["steps"].as_array().unwrap().len(), 2);

    let events: Vec<&str> = j["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "fault_injected",
            "trigger_unknown",
            "trigger_pending",
            "trigger_fired",
            "trigger_acknowledged",
            "trigger_fired",
            "trigger_cleared"
        ]
    );
    assert_eq!(j["triggers"][3]["value"], 0.0215);
    assert_eq!(j["triggers"][3]["ts"], "2026-11-26T22:00:25.001Z");
    assert_eq!(j["triggers"][4]["operator"], "erin");
    assert_eq!(j["triggers"][5]["reason"], "CVE in the new image");
    assert_eq!(j["triggers"][1]["error"], "no data");

    let er = &j["metrics"]["error_rate"];
    assert_eq!(er["samples"], 5);
    assert_eq!(er["no_data"], 1);
    assert_eq!(er["min"], 0.002);
    assert_eq!(er["median"], 0.0035);
    assert_eq!(er["max"], 0.021);
    assert_eq!(er["last"], 0.003);
    let lat = &j["metrics"]["latency"];
    assert_eq!(
        [&lat["min"], &lat["median"], &lat["max"], &lat["last"]],
        [0.25, 0.3, 0.9, 0.28]
    );
    assert_eq!(j["metrics"]["queue"]["no_data"], 1);
    assert_eq!(j["metrics"]["queue"]["min"], Value::Null);

    assert_eq!(j["rehearsal"]["fired_to_decision_ms"], 2999);
    assert_eq!(j["rehearsal"]["rollback_ms"], 15_000);
    assert_eq!(j["outcome"]["outcome"], "rolled_back");
    assert_eq!(j["outcome"]["exit_code"], 3);
}

#[test]
fn resumed_run_lists_every_session_and_operator() {
    let md = markdown("resumed.jsonl");
    has_line(&md, "- **Operators:** frank, grace");
    has_line(&md, "- **Hosts:** bastion-1, bastion-2");
    has_line(
        &md,
        "- **SHA-256:** `4444444444444444444444444444444444444444444444444444444444444444`",
    );
    has_line(&md, "- **Duration:** 20m31s (across 2 sessions)");
    has_line(&md, "- **Outcome:** **succeeded** (exit 0)");
    assert!(
        md.contains("session 2 ran another version of the runbook file") && md.contains(&"5".repeat(64)),
        "{md}"
    );
    let sessions = section(&md, "Sessions");
    has_line(
        sessions,
        "| 1 | 2026-11-26T23:50:00.000Z | run | frank@bastion-1 | 2026-11-26T23:55:00.300Z | \
         interrupted (exit 130): the terminal hung up (SIGHUP) while a step waited |",
    );
    has_line(
        sessions,
        "| 2 | 2026-11-27T00:10:00.000Z | resume | grace@bastion-2 | 2026-11-27T00:10:31.100Z | succeeded (exit 0) |",
    );
    let steps = section(&md, "Steps");
    has_line(
        steps,
        "| app | check | confirmed | 2 (1 interrupted) | 23:51:00 | 4m30s | grace | — | — | — |",
    );
    // After midnight, the date is shown.
    has_line(
        section(&md, "Notes"),
        "| 2026-11-27 00:10:31 | grace | resumed after the VPN dropped |",
    );

    let j = json("resumed.jsonl");
    let s = j["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["mode"], "run");
    assert_eq!(s[0]["operator"], "frank");
    assert_eq!(s[0]["outcome"], "interrupted");
    assert_eq!(s[1]["mode"], "resume");
    assert_eq!(s[1]["operator"], "grace");
    assert_eq!(s[1]["host"], "bastion-2");
    assert_eq!(s[1]["outcome"], "succeeded");
    assert_eq!(j["runbook"]["sha256"], "4".repeat(64));
    assert_eq!(j["runbook"]["changed"][0]["session"], 2);
    assert_eq!(j["runbook"]["changed"][0]["sha256"], "5".repeat(64));
    assert_eq!(j["outcome"]["outcome"], "succeeded");
    assert_eq!(j["steps"][1]["attempts"], 2);
    assert_eq!(j["steps"][1]["duration_ms"], 270_000);
}

#[test]
fn torn_last_line_is_reported_with_a_note() {
    let md = markdown("torn.jsonl");
    assert!(
        md.contains("> **Note:** the journal's last line is incomplete")
            && md.contains("ignored a torn last line"),
        "{md}"
    );
    has_line(
        section(&md, "Steps"),
        "| build | compile | succeeded | 1 | 10:00:00 | 20s | — | — | 0 | — |",
    );

    let j = json("torn.jsonl");
    let w = j["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].as_str().unwrap().contains("torn"), "{w:?}");
    assert_eq!(j["steps"].as_array().unwrap().len(), 2);
}

#[test]
fn unfinished_run_says_so_and_shows_the_last_event() {
    let md = markdown("unfinished.jsonl");
    assert!(
        md.contains("- **Outcome:** **unfinished**") && md.contains("`runbook resume`"),
        "{md}"
    );
    has_line(
        &md,
        "- **Last event:** 2026-11-26T10:00:20.200Z (`step_started`: build/push started (attempt 1))",
    );
    assert!(!md.contains("- **End:**"), "{md}");
    has_line(&md, "- **Duration:** 20s");
    has_line(
        section(&md, "Steps"),
        "| build | push | **unfinished** | 1 | 10:00:20 | — | — | — | — | — |",
    );
    has_line(
        section(&md, "Sessions"),
        "| 1 | 2026-11-26T10:00:00.000Z | run | heidi@ops-2 | — | unfinished |",
    );

    let j = json("unfinished.jsonl");
    assert_eq!(j["outcome"]["finished"], false);
    assert_eq!(j["outcome"]["outcome"], "unfinished");
    assert_eq!(j["outcome"]["exit_code"], Value::Null);
    assert_eq!(j["outcome"]["last_event"]["event"], "step_started");
    assert_eq!(j["outcome"]["last_event"]["ts"], "2026-11-26T10:00:20.200Z");
    assert_eq!(j["steps"][1]["status"], "unfinished");
    assert_eq!(j["warnings"], serde_json::json!([]));
}

#[test]
fn run_folder_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("succeeded.jsonl"), dir.path().join("journal.jsonl")).unwrap();
    let from_dir = runbook(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(from_dir.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(from_dir.stdout).unwrap(),
        markdown("succeeded.jsonl")
    );

    let file = dir.path().join("report.md");
    let out = runbook(&[
        "report",
        dir.path().to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        markdown("succeeded.jsonl")
    );

    let file = dir.path().join("report.json");
    let out = runbook(&[
        "report",
        dir.path().join("journal.jsonl").to_str().unwrap(),
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(j["runbook"]["id"], "checkout-rollout");
}

#[test]
fn errors_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let check = |args: &[&str], says: &str| {
        let out = runbook(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    let missing = dir.path().join("nope.jsonl");
    check(&["report", missing.to_str().unwrap()], "runbook: cannot read");
    // A folder without a journal.
    check(&["report", dir.path().to_str().unwrap()], "no journal.jsonl");
    // A broken line that is not the last one is not a torn write: refuse.
    let broken = dir.path().join("broken.jsonl");
    let good = std::fs::read_to_string(fixture("unfinished.jsonl")).unwrap();
    std::fs::write(
        &broken,
        format!("{{\"ts\":\"x\",\"event\":\"nonsense\"}}\n{good}"),
    )
    .unwrap();
    check(&["report", broken.to_str().unwrap()], "runbook: ");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    check(&["report", empty.to_str().unwrap()], "holds no events");
    // An output file that cannot be written.
    let fixture_path = fixture("succeeded.jsonl");
    let bad_out = dir.path().join("no/such/dir/report.md");
    check(
        &[
            "report",
            fixture_path.to_str().unwrap(),
            "-o",
            bad_out.to_str().unwrap(),
        ],
        "runbook: cannot write",
    );
    check(
        &["report", fixture_path.to_str().unwrap(), "--format", "html"],
        "html",
    );
}

/// `report FILE` of files that are not journals: exit 2, one plain line naming the file and the
/// line, and none of serde's wording ("invalid type: sequence, expected struct Record").
#[test]
fn a_file_that_is_not_a_journal_is_called_so() {
    let dir = tempfile::tempdir().unwrap();
    let not_journal = |name: &str, content: &[u8], line: usize| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = runbook(&["report", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(
            err,
            format!(
                "runbook: {}:{line}: this is not a runbook journal (each line of a journal is an event, a JSON object with `ts` and `event`); give the journal.jsonl of a run, or its folder\n",
                path.display()
            ),
            "{name}"
        );
    };
    not_journal("array.json", b"[1, 2, 3]\n", 1);
    not_journal("object.json", b"{\"name\": \"x\"}\n", 1);
    not_journal("no-newline.txt", b"hello", 1);
    let good = std::fs::read_to_string(fixture("succeeded.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    not_journal("mixed.jsonl", format!("{first}\n[\"x\"]\n").as_bytes(), 2);

    // Not text at all.
    let path = dir.path().join("binary.bin");
    std::fs::write(&path, b"\n\xff\xfe\x00").unwrap();
    let out = runbook(&["report", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:2: this is not a runbook journal (it is not text)",
            path.display()
        )),
        "{err}"
    );
}

/// `report` of a device or a FIFO ends at once with exit 2 (it read `/dev/zero` forever, and
/// blocked on a FIFO without a writer).
#[test]
fn a_device_or_a_fifo_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("journal.jsonl");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (path, says) in [
        (
            "/dev/zero".to_string(),
            "is a character device, not a regular file",
        ),
        (
            fifo.display().to_string(),
            "is a named pipe (FIFO), not a regular file",
        ),
    ] {
        let mut child = Command::new(runbook_bin())
            .args(["report", &path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > std::time::Duration::from_secs(3) {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("report {path} did not end within 3 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains(&path) && err.contains(says), "{path}: {err}");
    }
}

#[test]
fn report_of_a_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("small.toml");
    std::fs::write(
        &rb,
        r#"[runbook]
title = "Small deploy"

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Say hi"
run = "echo hi"

[[phase.step]]
title = "Check the dashboard"
manual = true
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = runbook(&[
        "run",
        rb.to_str().unwrap(),
        "--headless",
        "--yes",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_dir = runs[0].to_str().unwrap();

    let out = runbook(&["report", run_dir]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    println!("{md}");
    assert!(md.starts_with("# Run report: Small deploy\n"), "{md}");
    has_line(&md, "- **Runbook:** Small deploy (`small`)");
    has_line(&md, &format!("- **File:** `{}`", rb.display()));
    has_line(&md, "- **Outcome:** **succeeded** (exit 0)");
    assert!(md.contains("- **SHA-256:** `"), "{md}");
    let steps = section(&md, "Steps");
    let say_hi = steps
        .lines()
        .find(|l| l.starts_with("| Deploy | Say hi (`deploy/say-hi`) | succeeded | 1 | "))
        .unwrap_or_else(|| panic!("{steps}"));
    assert!(say_hi.ends_with(" | — | — | 0 | — |"), "{say_hi}");
    let check = steps
        .lines()
        .find(|l| {
            l.starts_with("| Deploy | Check the dashboard (`deploy/check-the-dashboard`) | confirmed | 1 | ")
        })
        .unwrap_or_else(|| panic!("{steps}"));
    assert!(check.ends_with(" | auto | — | — | — |"), "{check}");

    let out = runbook(&["report", run_dir, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["runbook"]["id"], "small");
    assert_eq!(j["runbook"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(j["outcome"]["outcome"], "succeeded");
    assert_eq!(j["sessions"][0]["mode"], "run");
    assert_eq!(j["steps"][0]["exit_code"], 0);
    assert_eq!(j["steps"][0]["log"], "logs/deploy--say-hi--1.log");
    assert_eq!(j["steps"][1]["by"], "auto");
    assert_eq!(j["steps"][1]["status"], "confirmed");
    // "auto" is not an operator.
    assert!(!j["operators"].as_array().unwrap().iter().any(|o| o == "auto"));
}

/// The whole Markdown report of a run with a retry, a skip, a trigger and a rollback called by an
/// operator with their words, from a journal that carries the plan snapshot (titles, units).
#[test]
fn a_run_with_a_retry_a_skip_a_trigger_and_a_rollback_in_markdown() {
    insta::assert_snapshot!("full_markdown", markdown("full"));
}

#[test]
fn a_run_with_a_retry_a_skip_a_trigger_and_a_rollback_in_json() {
    let j = json("full");
    let backup = &j["steps"][0];
    assert_eq!(backup["title"], "Back up the checkout database");
    assert_eq!(backup["phase_title"], "Preparation");
    assert_eq!(backup["kind"], "run");
    assert_eq!(backup["history"][0]["log"], "logs/prep--backup--1.log");
    assert_eq!(
        backup["history"][0]["log_tail"],
        serde_json::json!([
            "taking a snapshot of checkout-db",
            "progress 40%",
            "error: snapshot locked by job 7731     retry later"
        ])
    );
    assert!(
        backup["history"][1].get("log_tail").is_none(),
        "only failed attempts"
    );
    assert_eq!(j["steps"][1]["by"], "alice");
    assert_eq!(j["steps"][1]["status"], "skipped");
    let rb = &j["rollback"];
    assert_eq!(rb["operator"], "alice");
    assert_eq!(rb["note"], "errors climbing on the canary, 1.85% and rising");
    assert_eq!(
        rb["reason_text"],
        "trigger error-rate (Error rate above 1% for 30s) fired"
    );
    assert_eq!(rb["title"], "Back to v2.13.2");
    // Steps the rollback cancelled before they started: their ids, and their titles as shown.
    assert_eq!(j["cancelled_before_start"], serde_json::json!(["canary/full"]));
    assert_eq!(j["cancelled_titles"]["canary/full"], "Deploy v2.14.0 everywhere");
    let phases: Vec<(&str, u64)> = j["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["duration_ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(phases, [("prep", 119_800), ("canary", 99_910), ("undo", 12_000)]);
    let fired = j["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event"] == "trigger_fired")
        .unwrap();
    assert_eq!(fired["value"], 0.0185);
    assert_eq!(fired["unit"], "percent");
    assert_eq!(fired["title"], "Error rate above 1% for 30s");
    assert_eq!(fired["metrics"]["latency"], 1.55);
    assert_eq!(j["metrics"]["latency"]["unit"], "seconds");
    assert_eq!(j["metrics"]["error_rate"]["title"], "Error rate");
}

/// A real run: a step that fails once (printing a secret) and then succeeds. The report has the
/// titles as shown after `${}`, values in their unit, and the failed attempt's last log lines,
/// with the secret masked.
#[test]
fn report_of_a_real_run_with_a_retry_shows_the_failed_attempts_masked_log() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("retry.toml");
    std::fs::write(
        &rb,
        r#"[runbook]
title = "Retry ${release}"

[vars]
release = "v9"

[secrets]
TOKEN = { env = "REPORT_TEST_TOKEN" }

[metrics]
interval = "1s"

[[metric]]
id = "errors"
title = "Error rate"
command = "echo 0.016"
unit = "percent"

[[phase]]
id = "deploy"
title = "Deploy ${release}"

[[phase.step]]
id = "push"
title = "Push ${release}"
run = 'if [ -f tried ]; then echo pushed; else touch tried; echo "using $TOKEN"; echo "error: registry busy"; exit 1; fi'
retries = 1
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", rb.to_str().unwrap(), "--headless", "--state-dir"])
        .arg(&state)
        .current_dir(dir.path())
        .env("REPORT_TEST_TOKEN", "s3cr3t-t0ken")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run_dir = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = runbook(&["report", run_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(!md.contains("s3cr3t-t0ken"), "{md}");
    let steps = section(&md, "Steps");
    assert!(
        steps.contains("| Deploy v9 | Push v9 (`deploy/push`) | succeeded | 2 (1 failed) |"),
        "{steps}"
    );
    assert!(
        steps.contains("- Push v9 (`deploy/push`), attempt 1, at "),
        "{steps}"
    );
    assert!(
        steps.contains("  - log: `logs/deploy--push--1.log`, its last lines:"),
        "{steps}"
    );
    has_line(steps, "    using ***");
    has_line(steps, "    error: registry busy");
    let metrics = section(&md, "Metrics");
    assert!(
        metrics.contains("| Error rate (`errors`) | ") && metrics.contains(" | 1.6 % | "),
        "{metrics}"
    );
    let phases = section(&md, "Phases");
    assert!(
        phases.contains("| Deploy v9 (`deploy`) | succeeded | 1 | "),
        "{phases}"
    );
}
