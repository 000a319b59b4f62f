//! Metrics, rollback triggers, holds and rehearsals, with real child processes and `command`
//! metrics (no Prometheus here): the engine driven through the library the way a front end does,
//! and the binary for the headless policy and rehearsals.
//!
//! Metric values come from `value.txt`, read by `cat` every 200 ms. It is always replaced
//! atomically (written aside, then renamed) so that a poll never reads a half-written file, which
//! would be "no data".

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as ProcCommand, Stdio};
use std::time::{Duration, Instant};

use common::*;
use runbook::engine::{Command, OnFire, Update, Wait};
use runbook::journal::{Event, Outcome, Record};
use runbook::session::Request;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Runbook pieces

const ERRORS_METRIC: &str = r#"
[metrics]
interval = "200ms"

[[metric]]
id = "errors"
title = "Errors"
command = "cat value.txt"
"#;

/// A metric trigger on `errors` firing as soon as it is above 1.
const ERRORS_ABOVE_1: &str = r#"
[[trigger]]
id = "errors-high"
title = "Errors above 1"
metric = "errors"
above = 1
"#;

const ROLLBACK: &str = r#"
[rollback]
title = "Back"

[[rollback.phase]]
id = "back"
title = "Back"

[[rollback.phase.step]]
id = "undo"
title = "Undo"
run = "echo undone > rolled-back.txt"
"#;

/// A shell snippet that sets the metric to `v` atomically.
fn sh_set(v: &str) -> String {
    format!("echo {v} > value.tmp && mv value.tmp value.txt")
}

/// Sets the metric to `v` atomically.
fn set_value(fx: &Fixture, v: &str) {
    let tmp = fx.file("value.rs.tmp");
    std::fs::write(&tmp, v).expect("write value");
    std::fs::rename(&tmp, fx.file("value.txt")).expect("rename value");
}

/// `[runbook]` followed by `parts`, written to `runbook.toml`.
fn write_rb(fx: &Fixture, parts: &[&str]) -> PathBuf {
    let mut text = String::from("[runbook]\nid = \"triggers\"\ntitle = \"Triggers\"\n");
    for p in parts {
        text.push('\n');
        text.push_str(p);
    }
    fx.write("runbook.toml", &text)
}

/// One phase `one` with `run` steps `(id, command)`.
fn phase_one(steps: &[(&str, &str)]) -> String {
    phase("one", steps)
}

fn phase(id: &str, steps: &[(&str, &str)]) -> String {
    let mut s = format!("[[phase]]\nid = \"{id}\"\ntitle = \"Phase {id}\"\n");
    for (sid, run) in steps {
        s.push_str(&format!(
            "\n[[phase.step]]\nid = \"{sid}\"\ntitle = \"Step {sid}\"\nrun = '{run}'\n"
        ));
    }
    s
}

fn held(mut req: Request) -> Request {
    req.on_fire = OnFire::Hold;
    req
}

// ---------------------------------------------------------------------------------------------
// Reading journals

/// A compact picture of a run: steps, triggers, rollback and the end, without the samples.
fn trace(j: &[Value]) -> Vec<String> {
    j.iter()
        .filter_map(|e| {
            let ev = e["event"].as_str().unwrap_or("?");
            Some(match ev {
                "metrics_sampled" => return None,
                "run_started" => format!("run_started {}", e["mode"].as_str().unwrap_or("?")),
                "step_started" => format!("start {}#{}", step_name(e), e["attempt"]),
                "step_finished" => format!(
                    "{} {}#{}",
                    e["status"].as_str().unwrap_or("?"),
                    step_name(e),
                    e["attempt"]
                ),
                "rollback_started" => format!("rollback_started {}", e["reason"].as_str().unwrap_or("?")),
                "rollback_finished" => format!("rollback_finished {}", e["status"].as_str().unwrap_or("?")),
                "run_finished" => format!("run_finished {}", e["outcome"].as_str().unwrap_or("?")),
                "fault_injected" => format!("fault_injected {}", e["by"].as_str().unwrap_or("?")),
                t if t.starts_with("trigger_") => format!("{t} {}", e["trigger"].as_str().unwrap_or("?")),
                other => other.to_string(),
            })
        })
        .collect()
}

/// Asserts that `want` appears in `j`'s trace in this order (other entries may come between).
fn assert_in_order(j: &[Value], want: &[&str]) {
    let t = trace(j);
    let mut from = 0;
    for w in want {
        match t[from..].iter().position(|x| x == w) {
            Some(i) => from += i + 1,
            None => panic!("`{w}` missing or out of order; wanted in order {want:#?}\ntrace: {t:#?}"),
        }
    }
}

/// Index of the first entry matching `pred`.
fn find(j: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    j.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in {:#?}", trace(j)))
}

/// Index of the first entry named `name`.
fn first(j: &[Value], name: &str) -> usize {
    find(j, name, |e| e["event"] == name)
}

/// Index of `step_started` (or `step_finished`) of `phase/step`.
fn step_event(j: &[Value], event: &str, name: &str) -> usize {
    find(j, &format!("{event} {name}"), |e| {
        e["event"] == event && step_name(e) == name
    })
}

/// `trigger_*` entries, in order.
fn trigger_events(j: &[Value]) -> Vec<&Value> {
    j.iter()
        .filter(|e| e["event"].as_str().unwrap_or("").starts_with("trigger_"))
        .collect()
}

fn ts(e: &Value) -> &str {
    e["ts"].as_str().expect("ts")
}

fn waits_for_trigger(u: &Update) -> bool {
    matches!(
        u,
        Update::Waiting {
            why: Wait::Trigger { .. },
            ..
        }
    )
}

fn no_commands(_: &Update) -> Vec<Command> {
    vec![]
}

/// Answers every trigger hold with `cmd`.
fn on_trigger_wait(cmd: Command) -> impl FnMut(&Update) -> Vec<Command> {
    move |u| {
        if waits_for_trigger(u) {
            vec![cmd.clone()]
        } else {
            vec![]
        }
    }
}

/// Something to answer a wait with that leaves it waiting (the drive helper aborts a run whose
/// wait gets no answer at all).
fn note(text: &str) -> Command {
    Command::Note { text: text.into() }
}

/// `drive`, for runs with simulated metrics (see `Check::EventNames`).
async fn drive_simulated(req: Request, react: impl FnMut(&Update) -> Vec<Command>) -> Driven {
    drive_checked(req, react, Check::EventNames).await
}

fn trigger_hold(ids: &[&str]) -> Wait {
    Wait::Trigger {
        triggers: ids.iter().map(|s| s.to_string()).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics sampling

#[tokio::test(flavor = "multi_thread")]
async fn the_first_sample_is_journaled_before_the_first_step_starts() {
    let fx = Fixture::new();
    set_value(&fx, "3");
    let rb = write_rb(&fx, &[ERRORS_METRIC, &phase_one(&[("a", "true")])]);
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    let sampled = first(&j, "metrics_sampled");
    assert_eq!(
        sampled,
        1,
        "the first sample comes right after run_started: {:#?}",
        trace(&j)
    );
    assert!(sampled < first(&j, "step_started"));
    assert_eq!(j[sampled]["values"]["errors"].as_f64(), Some(3.0));
    assert!(
        j[sampled].get("errors").is_none(),
        "no errors when every metric answered"
    );
    assert!(is_rfc3339_utc_millis(ts(&j[sampled])));
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_metric_commands_are_journaled_as_null_with_the_reason() {
    let fx = Fixture::new();
    let metrics = r#"
[metrics]
interval = "200ms"

[[metric]]
id = "garbage"
title = "Garbage"
command = "echo twelve-point-five"

[[metric]]
id = "failing"
title = "Failing"
command = "echo backend unreachable >&2; exit 3"

[[metric]]
id = "empty"
title = "Empty"
command = "true"

[[metric]]
id = "good"
title = "Good"
command = "echo 1.5"
"#;
    let rb = write_rb(&fx, &[metrics, &phase_one(&[("a", "sleep 0.5")])]);
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    let samples = events(&j, "metrics_sampled");
    assert!(samples.len() >= 2, "a sample per 200 ms: {samples:#?}");
    for s in samples {
        let values = s["values"].as_object().expect("values");
        for id in ["garbage", "failing", "empty"] {
            assert!(values.contains_key(id), "{id} listed with null: {s}");
            assert!(values[id].is_null(), "{id} has no value: {s}");
        }
        assert_eq!(values["good"].as_f64(), Some(1.5));
        let errors = s["errors"].as_object().expect("errors");
        let garbage = errors["garbage"].as_str().unwrap();
        assert!(
            garbage.contains("twelve-point-five") && garbage.contains("not one number"),
            "{garbage}"
        );
        let failing = errors["failing"].as_str().unwrap();
        assert!(
            failing.contains("exited 3") && failing.contains("backend unreachable"),
            "{failing}"
        );
        assert_eq!(errors["empty"], "no data");
        assert!(!errors.contains_key("good"), "{s}");
    }
    for id in ["garbage", "failing", "empty"] {
        assert!(
            d.messages
                .iter()
                .any(|m| m.contains(&format!("metric {id}")) && m.contains("never as healthy")),
            "a message about {id}: {:?}",
            d.messages
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metric_values_read_back_from_the_journal_are_the_values_written() {
    let fx = Fixture::new();
    let written = "0.009143909395657707";
    set_value(&fx, written);
    let rb = write_rb(&fx, &[ERRORS_METRIC, &phase_one(&[("a", "true")])]);
    let d = drive_simulated(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let want: f64 = written.parse().unwrap();
    let text = std::fs::read_to_string(d.run_dir.join("journal.jsonl")).unwrap();
    assert!(
        text.contains(&format!("\"errors\":{written}")),
        "written exactly: {text}"
    );
    let (records, _) = runbook::journal::read(&d.run_dir.join("journal.jsonl")).unwrap();
    let read: Vec<Option<f64>> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::MetricsSampled { values, .. } => Some(values["errors"]),
            _ => None,
        })
        .collect();
    assert!(!read.is_empty());
    for v in read {
        assert_eq!(v, Some(want), "{v:?} read back, {want:?} written");
    }
}

// ---------------------------------------------------------------------------------------------
// Metric triggers: pending, fired, cleared

/// A trigger with a `for` window goes pending on the breach, fires once the breach has lasted the
/// window, and clears when the value is back; the step in flight is left alone (Hold policy).
async fn window_trigger(threshold: &str, normal: &str, bad: &str, window_ms: i128) {
    let fx = Fixture::new();
    set_value(&fx, normal);
    let trigger = format!(
        "[[trigger]]\nid = \"t\"\ntitle = \"T\"\nmetric = \"errors\"\n{threshold}\nfor = \"{window_ms}ms\"\n"
    );
    let step = format!(
        "sleep 0.3; {}; sleep {}; {}; sleep 0.6",
        sh_set(bad),
        (window_ms as f64 + 800.0) / 1000.0,
        sh_set(normal)
    );
    let rb = write_rb(
        &fx,
        &[ERRORS_METRIC, &trigger, &phase_one(&[("a", &step)]), ROLLBACK],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_pending t",
            "trigger_fired t",
            "trigger_cleared t",
            "succeeded one/a#1",
            "run_finished succeeded",
        ]
    );
    let bad: f64 = bad.parse().unwrap();
    let normal: f64 = normal.parse().unwrap();
    let pending = first(&j, "trigger_pending");
    let fired = first(&j, "trigger_fired");
    let cleared = first(&j, "trigger_cleared");
    assert_eq!(j[pending]["value"].as_f64(), Some(bad));
    assert_eq!(j[fired]["value"].as_f64(), Some(bad));
    assert_eq!(j[cleared]["value"].as_f64(), Some(normal));
    assert_eq!(j[pending - 1]["event"], "metrics_sampled");
    assert_eq!(j[pending - 1]["values"]["errors"].as_f64(), Some(bad));
    // The window is measured between poll times, which the journal does not show: its times carry
    // each poll's latency (tens of ms on a loaded machine), so allow for that; the polls in between,
    // 200 ms apart at least, are counted exactly.
    let waited = ms_between(ts(&j[pending]), ts(&j[fired]));
    assert!(
        waited >= window_ms - 100,
        "fired {waited} ms after going pending; the window is {window_ms} ms"
    );
    assert!(waited < window_ms + 1500, "fired {waited} ms after going pending");
    let polls_between = j[pending..fired]
        .iter()
        .filter(|e| e["event"] == "metrics_sampled")
        .count();
    assert!(
        polls_between as i128 >= window_ms / 200,
        "{polls_between} polls of 200 ms between pending and fired"
    );
    for e in &j[pending..fired] {
        if e["event"] == "metrics_sampled" {
            assert_eq!(e["values"]["errors"].as_f64(), Some(bad), "breached throughout");
        }
    }
    assert!(
        d.waits.is_empty(),
        "the step in flight was not held: {:?}",
        d.waits
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_above_trigger_goes_pending_fires_after_its_window_and_clears() {
    window_trigger("above = 1", "0", "5", 600).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_below_trigger_goes_pending_fires_after_its_window_and_clears() {
    window_trigger("below = 1", "5", "0.25", 400).await;
}

// ---------------------------------------------------------------------------------------------
// Headless policy: a firing trigger rolls back

/// A breach of a 2 s window with one poll in the middle that fails (`gap` makes the metric's
/// command fail) or answers nothing (`gap` empties it). Returns the journal.
async fn window_with_a_gap(gap: &str) -> Vec<Value> {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let trigger = "[[trigger]]\nid = \"t\"\ntitle = \"T\"\nmetric = \"errors\"\nabove = 1\nfor = \"2s\"\n";
    let step = format!(
        "sleep 0.3; {}; sleep 1.1; {gap}; sleep 0.3; {}; sleep 3; {}; sleep 0.6",
        sh_set("5"),
        sh_set("5"),
        sh_set("0")
    );
    let rb = write_rb(
        &fx,
        &[ERRORS_METRIC, trigger, &phase_one(&[("a", &step)]), ROLLBACK],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_pending t",
            "trigger_unknown t",
            "trigger_pending t",
            "trigger_fired t",
            "trigger_cleared t",
            "succeeded one/a#1",
            "run_finished succeeded",
        ]
    );
    j
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_query_while_pending_keeps_the_window() {
    // `cat` of a missing file exits 1: the source failed.
    let j = window_with_a_gap("rm value.txt").await;
    let unknown = first(&j, "trigger_unknown");
    let error = j[unknown]["error"].as_str().unwrap_or("");
    assert!(error.contains("exited 1"), "{error}");
    let pending = first(&j, "trigger_pending");
    let fired = first(&j, "trigger_fired");
    let waited = ms_between(ts(&j[pending]), ts(&j[fired]));
    assert!(
        (1900..2900).contains(&waited),
        "fired {waited} ms after the breach began; the 2 s window must go on through a failed poll"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_while_pending_restarts_the_window() {
    // `cat` of an empty file prints nothing: no data.
    let j = window_with_a_gap(": > value.tmp && mv value.tmp value.txt").await;
    let unknown = first(&j, "trigger_unknown");
    assert_eq!(j[unknown]["error"], "no data");
    let again = unknown + 1 + first(&j[unknown + 1..], "trigger_pending");
    let fired = first(&j, "trigger_fired");
    let waited = ms_between(ts(&j[again]), ts(&j[fired]));
    assert!(
        waited >= 1900,
        "fired {waited} ms after the breach was seen again: a new 2 s window"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_a_trigger_firing_during_a_watch_fails_it_and_rolls_back() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let phases = r#"
[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "soak"
title = "Soak"
watch = "4s"

[[phase.step]]
id = "after"
title = "After"
run = "echo ran > after.txt"
"#;
    let rb = write_rb(&fx, &[ERRORS_METRIC, ERRORS_ABOVE_1, phases, ROLLBACK]);
    let fx_ref = &fx;
    let d = drive(request(&rb, &fx.state(), &[], false), move |u| {
        if is_started(u, "one/soak") {
            set_value(fx_ref, "9");
        }
        vec![]
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    let j = d.journal();
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/soak#1",
            "trigger_fired errors-high",
            "failed one/soak#1",
            "rollback_started trigger:errors-high",
            "cancelled one/after#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
    assert_eq!(j[first(&j, "trigger_fired")]["value"].as_f64(), Some(9.0));
    let watch = d.last_finished("one/soak");
    let error = watch.error.as_deref().unwrap_or("");
    assert!(
        error.contains("errors-high"),
        "the watch names the trigger: {error:?}"
    );
    assert!(watch.duration_ms < 4000, "the watch ended early: {watch:?}");
    let end = &j[first(&j, "run_finished")];
    assert_eq!(end["exit_code"], 3);
    assert!(!fx.exists("after.txt"));
    assert_eq!(fx.read("rolled-back.txt"), "undone\n");
}

#[test]
fn headless_binary_rolls_back_on_a_firing_trigger_and_exits_3() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let trigger = r#"
[[trigger]]
id = "errors-high"
title = "Errors above 1"
metric = "errors"
above = 1
for = "300ms"
"#;
    let phases = format!(
        r#"
[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "break"
title = "Break it"
run = "{}"

[[phase.step]]
id = "soak"
title = "Soak"
watch = "5s"

[[phase.step]]
id = "after"
title = "After"
run = "echo ran > after.txt"
"#,
        sh_set("9")
    );
    let rb = write_rb(&fx, &[ERRORS_METRIC, trigger, &phases, ROLLBACK]);
    let out = fx.run_cli(&rb, &[]);
    out.expect_code(3);
    assert!(out.elapsed < Duration::from_secs(5), "took {:?}", out.elapsed);
    assert!(
        out.stdout.contains("TRIGGER FIRING: errors-high"),
        "{}",
        out.stdout
    );
    let j = fx.journal();
    // The poller may see the bad value before `break`'s end is recorded (its command wrote it), so
    // the trigger's own order is checked apart from the steps'.
    assert_in_order(
        &j,
        &[
            "start one/break#1",
            "trigger_pending errors-high",
            "trigger_fired errors-high",
            "rollback_started trigger:errors-high",
        ],
    );
    assert_in_order(
        &j,
        &[
            "run_started run",
            "succeeded one/break#1",
            "start one/soak#1",
            "failed one/soak#1",
            "rollback_started trigger:errors-high",
            "cancelled one/after#0",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ],
    );
    let soak = step_event(&j, "step_finished", "one/soak");
    assert!(
        j[soak]["error"].as_str().unwrap_or("").contains("errors-high"),
        "{}",
        j[soak]
    );
    assert_eq!(j[first(&j, "run_finished")]["exit_code"], 3);
    assert!(!fx.exists("after.txt"));
    assert!(fx.exists("rolled-back.txt"));
}

#[test]
fn headless_binary_a_trigger_already_firing_at_the_first_sample_rolls_back() {
    let fx = Fixture::new();
    set_value(&fx, "9");
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            ERRORS_ABOVE_1,
            &phase_one(&[("a", "echo ran > one.txt")]),
            ROLLBACK,
        ],
    );
    let out = fx.run_cli(&rb, &[]);
    let j = fx.journal();
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_fired errors-high",
            "rollback_started trigger:errors-high",
            "cancelled one/a#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
    out.expect_code(3);
    assert!(!fx.exists("one.txt"));
    assert!(fx.exists("rolled-back.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_a_trigger_firing_while_a_long_step_runs_cancels_it_and_rolls_back() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let step = format!(
        "sleep 20 & echo $! >> step.pids; echo $$ >> step.pids; sleep 0.3; {}; wait",
        sh_set("9")
    );
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            ERRORS_ABOVE_1,
            &phase_one(&[("long", &step), ("after", "echo ran > after.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let pids = read_pids(&fx.file("step.pids"));
    let gone = pids.iter().all(|&p| wait_gone(p, Duration::from_secs(3)));
    kill_pids(&pids);
    assert_eq!(d.outcome, Outcome::RolledBack);
    let j = d.journal();
    assert_in_order(
        &j,
        &[
            "start one/long#1",
            "trigger_fired errors-high",
            "rollback_started trigger:errors-high",
            "start back/undo#1",
            "run_finished rolled_back",
        ],
    );
    assert_in_order(
        &j,
        &[
            "trigger_fired errors-high",
            "cancelled one/long#1",
            "cancelled one/after#0",
            "start back/undo#1",
        ],
    );
    let long = d.last_finished("one/long");
    assert!(long.duration_ms < 5000, "{long:?}");
    assert_eq!(pids.len(), 2);
    assert!(gone, "the cancelled step's processes are gone: {pids:?}");
    assert!(!fx.exists("after.txt"));
}

// ---------------------------------------------------------------------------------------------
// Hold policy (the terminal UI): the run holds before the next step

fn hold_runbook(fx: &Fixture, trigger: &str, first_step: &str) -> PathBuf {
    write_rb(
        fx,
        &[
            ERRORS_METRIC,
            trigger,
            &phase_one(&[("a", first_step), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_the_next_step_waits_until_the_trigger_is_acknowledged() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let rb = hold_runbook(&fx, ERRORS_ABOVE_1, &format!("{}; sleep 0.8", sh_set("9")));
    let two = fx.file("two.txt");
    let mut two_existed_while_held = None;
    let d = drive(held(request(&rb, &fx.state(), &[], false)), |u| {
        if waits_for_trigger(u) {
            two_existed_while_held = Some(two.exists());
            vec![Command::Acknowledge]
        } else {
            vec![]
        }
    })
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_fired errors-high",
            "succeeded one/a#1",
            "trigger_acknowledged errors-high",
            "start one/b#1",
            "succeeded one/b#1",
            "run_finished succeeded",
        ]
    );
    assert_eq!(d.waits, [(at(0, 1), trigger_hold(&["errors-high"]))]);
    assert_eq!(
        two_existed_while_held,
        Some(false),
        "step b did not run while held"
    );
    let a = d.last_finished("one/a");
    assert_eq!(a.exit_code, Some(0));
    assert!(a.duration_ms >= 800, "step a ran to its end: {a:?}");
    let fired = &j[first(&j, "trigger_fired")];
    assert_eq!(fired["value"].as_f64(), Some(9.0));
    let ack = &j[first(&j, "trigger_acknowledged")];
    assert_eq!(ack["value"].as_f64(), Some(9.0));
    assert_eq!(ack["operator"], j[0]["operator"]);
    assert!(ack["operator"].as_str().is_some_and(|o| !o.is_empty()));
    assert_eq!(fx.read("two.txt"), "ran\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_then_roll_back_records_the_trigger_as_the_reason() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let rb = hold_runbook(&fx, ERRORS_ABOVE_1, &format!("{}; sleep 0.8", sh_set("9")));
    let d = drive(
        held(request(&rb, &fx.state(), &[], false)),
        on_trigger_wait(Command::Rollback),
    )
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    let j = d.journal();
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_fired errors-high",
            "succeeded one/a#1",
            "rollback_started trigger:errors-high",
            "cancelled one/b#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
    assert_eq!(d.waits, [(at(0, 1), trigger_hold(&["errors-high"]))]);
    assert!(!fx.exists("two.txt"));
    assert!(fx.exists("rolled-back.txt"));
}

const AUTO_ROLLBACK_TRIGGER: &str = r#"
[[trigger]]
id = "errors-high"
title = "Errors above 1"
metric = "errors"
above = 1
auto_rollback = "500ms"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_unacknowledged_trigger_rolls_back_by_itself_after_auto_rollback() {
    let fx = Fixture::new();
    // Breached from the start: the first sample fires it, before any step.
    set_value(&fx, "9");
    let rb = hold_runbook(&fx, AUTO_ROLLBACK_TRIGGER, "echo ran > one.txt");
    let d = drive(
        held(request(&rb, &fx.state(), &[], false)),
        on_trigger_wait(note("looking at the dashboard")),
    )
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    let j = d.journal();
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_fired errors-high",
            "note",
            "rollback_started trigger:errors-high",
            "cancelled one/a#0",
            "cancelled one/b#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
    assert_eq!(d.waits, [(at(0, 0), trigger_hold(&["errors-high"]))]);
    // It fired on the first sample, polled after run_started; auto_rollback counts from that poll.
    let after = ms_between(ts(&j[0]), ts(&j[first(&j, "rollback_started")]));
    assert!(
        (499..3000).contains(&after),
        "rolled back {after} ms after the start"
    );
    assert!(
        d.messages.iter().any(|m| m.contains("auto_rollback")),
        "{:?}",
        d.messages
    );
    assert!(!fx.exists("one.txt") && !fx.exists("two.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_trigger_does_not_roll_back_by_itself() {
    let fx = Fixture::new();
    set_value(&fx, "9");
    let rb = hold_runbook(&fx, AUTO_ROLLBACK_TRIGGER, "sleep 1");
    let d = drive(
        held(request(&rb, &fx.state(), &[], false)),
        on_trigger_wait(Command::Acknowledge),
    )
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_fired errors-high",
            "trigger_acknowledged errors-high",
            "start one/a#1",
            "succeeded one/a#1",
            "start one/b#1",
            "succeeded one/b#1",
            "run_finished succeeded",
        ]
    );
    // Step a outlived the auto_rollback delay by far.
    let after = ms_between(
        ts(&j[first(&j, "trigger_acknowledged")]),
        ts(&j[step_event(&j, "step_finished", "one/a")]),
    );
    assert!(after >= 900, "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_that_clears_by_itself_lifts_the_hold() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let rb = hold_runbook(&fx, ERRORS_ABOVE_1, &format!("{}; sleep 0.6", sh_set("9")));
    let fx_ref = &fx;
    let d = drive(held(request(&rb, &fx.state(), &[], false)), move |u| {
        if waits_for_trigger(u) {
            set_value(fx_ref, "0");
            vec![note("waiting for it to recover")]
        } else {
            vec![]
        }
    })
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_in_order(
        &j,
        &[
            "start one/a#1",
            "trigger_fired errors-high",
            "succeeded one/a#1",
            "trigger_cleared errors-high",
            "start one/b#1",
            "succeeded one/b#1",
            "run_finished succeeded",
        ],
    );
    assert_eq!(d.waits, [(at(0, 1), trigger_hold(&["errors-high"]))]);
    assert!(events(&j, "trigger_acknowledged").is_empty());
    assert!(events(&j, "rollback_started").is_empty());
    assert_eq!(j[first(&j, "trigger_cleared")]["value"].as_f64(), Some(0.0));
}

// ---------------------------------------------------------------------------------------------
// armed_from

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_armed_from_a_later_phase_is_not_watched_before_it() {
    let fx = Fixture::new();
    // Breached from the very start.
    set_value(&fx, "9");
    let triggers = r#"
[[trigger]]
id = "errors-high"
title = "Errors above 1"
metric = "errors"
above = 1
armed_from = "two"

[[trigger]]
id = "probe"
title = "Probe"
check = "echo ran >> checks.log"
interval = "100ms"
armed_from = "two"
"#;
    let phases = format!(
        "{}\n{}",
        phase("one", &[("a", "sleep 0.8; test ! -e checks.log")]),
        phase("two", &[("b", "sleep 20")])
    );
    let rb = write_rb(&fx, &[ERRORS_METRIC, triggers, &phases, ROLLBACK]);
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert_in_order(
        &j,
        &[
            "start one/a#1",
            "succeeded one/a#1",
            "start two/b#1",
            "trigger_fired errors-high",
            "cancelled two/b#1",
            "rollback_started trigger:errors-high",
            "run_finished rolled_back",
        ],
    );
    let b_started = step_event(&j, "step_started", "two/b");
    let first_trigger = find(&j, "a trigger event", |e| {
        e["event"].as_str().unwrap_or("").starts_with("trigger_")
    });
    assert!(first_trigger > b_started, "{:#?}", trace(&j));
    // Breached in every sample of phase one, yet nothing happened.
    let a_finished = step_event(&j, "step_finished", "one/a");
    let breached_in_one = j[..a_finished]
        .iter()
        .filter(|e| e["event"] == "metrics_sampled" && e["values"]["errors"].as_f64() == Some(9.0))
        .count();
    assert!(
        breached_in_one >= 4,
        "{breached_in_one} breached samples in phase one"
    );
    // The check ran in phase two, and not before (step a tested that its file did not exist).
    assert!(fx.read("checks.log").starts_with("ran\n"));
    assert!(
        d.messages
            .iter()
            .any(|m| m.contains("errors-high") && m.contains("armed from two")),
        "{:?}",
        d.messages
    );
}

// ---------------------------------------------------------------------------------------------
// on_no_data

fn no_data_trigger(on_no_data: &str) -> String {
    format!(
        "[[trigger]]\nid = \"errors-high\"\ntitle = \"Errors above 1\"\nmetric = \"errors\"\nabove = 1\non_no_data = \"{on_no_data}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn on_no_data_warn_shows_the_trigger_unknown_and_the_run_goes_on() {
    let fx = Fixture::new();
    set_value(&fx, "");
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            &no_data_trigger("warn"),
            &phase_one(&[("a", "sleep 0.8")]),
            ROLLBACK,
        ],
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_unknown errors-high",
            "start one/a#1",
            "succeeded one/a#1",
            "run_finished succeeded",
        ],
        "unknown once, and never cleared (healthy) while there is no data"
    );
    let unknown = &j[first(&j, "trigger_unknown")];
    assert_eq!(unknown["error"], "no data");
    let samples = events(&j, "metrics_sampled");
    assert!(samples.len() >= 4);
    for s in samples {
        assert!(s["values"]["errors"].is_null());
        assert_eq!(s["errors"]["errors"], "no data");
    }
    assert!(
        d.messages
            .iter()
            .any(|m| m.contains("metric errors: no data") && m.contains("never as healthy")),
        "{:?}",
        d.messages
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_no_data_hold_acts_as_firing() {
    let fx = Fixture::new();
    set_value(&fx, "");
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            &no_data_trigger("hold"),
            &phase_one(&[("a", "true")]),
            ROLLBACK,
        ],
    );
    let d = drive(
        held(request(&rb, &fx.state(), &[], false)),
        on_trigger_wait(Command::Acknowledge),
    )
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_fired errors-high",
            "trigger_acknowledged errors-high",
            "start one/a#1",
            "succeeded one/a#1",
            "run_finished succeeded",
        ]
    );
    assert_eq!(d.waits, [(at(0, 0), trigger_hold(&["errors-high"]))]);
    let fired = &j[first(&j, "trigger_fired")];
    assert!(fired.get("value").is_none(), "no value: {fired}");
    let reason = fired["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("no data") && reason.contains("hold"),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_no_data_rollback_rolls_back_even_under_the_hold_policy() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let step = "sleep 0.3; : > value.tmp && mv value.tmp value.txt; sleep 20";
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            &no_data_trigger("rollback"),
            &phase_one(&[("a", step), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert_in_order(
        &j,
        &[
            "start one/a#1",
            "trigger_fired errors-high",
            "cancelled one/a#1",
            "rollback_started trigger:errors-high",
            "cancelled one/b#0",
            "succeeded back/undo#1",
            "run_finished rolled_back",
        ],
    );
    let reason = j[first(&j, "trigger_fired")]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("no data") && reason.contains("rollback"),
        "{reason:?}"
    );
    assert!(d.waits.is_empty(), "nobody was asked: {:?}", d.waits);
    assert!(!fx.exists("two.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn on_no_data_rollback_on_the_first_sample_is_a_proper_rollback() {
    let fx = Fixture::new();
    // No data from the start: the sample taken before any step calls for the rollback.
    set_value(&fx, "");
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            &no_data_trigger("rollback"),
            &phase_one(&[("a", "echo ran > one.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert!(!fx.exists("one.txt"));
    assert!(fx.exists("rolled-back.txt"));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "trigger_fired errors-high",
            "rollback_started trigger:errors-high",
            "cancelled one/a#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Check triggers

#[tokio::test(flavor = "multi_thread")]
async fn a_check_trigger_fires_while_its_command_fails_and_clears_when_it_passes() {
    let fx = Fixture::new();
    let triggers = r#"
[[trigger]]
id = "plain"
title = "Plain check"
check = "test ! -f broken"
interval = "200ms"

[[trigger]]
id = "verbose"
title = "Verbose check"
check = "if [ -f broken ]; then echo starting check; echo checkout is broken >&2; exit 4; fi"
interval = "200ms"
"#;
    let step = "sleep 0.3; touch broken; sleep 0.8; rm broken; sleep 0.8";
    let rb = write_rb(&fx, &[triggers, &phase_one(&[("a", step)]), ROLLBACK]);
    let d = drive(held(request(&rb, &fx.state(), &[], false)), no_commands).await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    for id in ["plain", "verbose"] {
        assert_in_order(
            &j,
            &[
                "start one/a#1",
                &format!("trigger_fired {id}"),
                &format!("trigger_cleared {id}"),
                "succeeded one/a#1",
            ],
        );
        let of: Vec<&Value> = trigger_events(&j)
            .into_iter()
            .filter(|e| e["trigger"] == id)
            .collect();
        assert_eq!(of.len(), 2, "fired once, cleared once: {of:#?}");
        assert!(of[1].get("value").is_none(), "{}", of[1]);
    }
    let reason_of = |id: &str| {
        let i = find(&j, id, |e| e["event"] == "trigger_fired" && e["trigger"] == id);
        j[i]["reason"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(reason_of("plain"), "exit 1");
    assert_eq!(reason_of("verbose"), "exit 4: checkout is broken");
    assert!(d.waits.is_empty(), "{:?}", d.waits);
}

fn hanging_check(interval: &str) -> String {
    format!(
        r#"
[[trigger]]
id = "hang"
title = "Hanging check"
check = "echo $$ >> check.pids; sleep 30 & echo $! >> check.pids; wait"
interval = "{interval}"
timeout = "300ms"
"#
    )
}

/// Pids that are still running `limit` after the run (all of them are killed afterwards).
fn left_running(fx: &Fixture, limit: Duration) -> (Vec<i32>, Vec<i32>) {
    let pids = read_pids(&fx.file("check.pids"));
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| !wait_gone(p, limit)).collect();
    kill_pids(&pids);
    (pids, alive)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_that_hangs_past_its_timeout_fires_and_is_killed() {
    let fx = Fixture::new();
    // One check at the start, which hangs; the next would be due 2 s later.
    let rb = write_rb(
        &fx,
        &[
            &hanging_check("2s"),
            &phase_one(&[("a", "sleep 20"), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let (pids, alive) = left_running(&fx, Duration::from_secs(2));
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_fired hang",
            "cancelled one/a#1",
            "rollback_started trigger:hang",
            "cancelled one/b#0",
            "start back/undo#1",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "run_finished rolled_back",
        ]
    );
    let fired = &j[first(&j, "trigger_fired")];
    let reason = fired["reason"].as_str().unwrap_or("");
    assert!(reason.contains("no answer within 300ms"), "{reason:?}");
    let after = ms_between(ts(&j[0]), ts(fired));
    assert!((250..2000).contains(&after), "fired {after} ms after the start");
    assert_eq!(pids.len(), 2, "one check ran: {pids:?}");
    assert!(
        alive.is_empty(),
        "the hung check was killed: {alive:?} of {pids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_in_flight_when_the_rollback_starts_is_not_left_running() {
    let fx = Fixture::new();
    // interval = timeout: the next check starts as soon as the first timed out, and is in flight
    // when the rollback that the first one called for starts.
    let rb = write_rb(
        &fx,
        &[
            &hanging_check("300ms"),
            &phase_one(&[("a", "sleep 20"), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    std::thread::sleep(Duration::from_millis(100));
    let (pids, alive) = left_running(&fx, Duration::from_secs(2));
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert!(pids.len() >= 2, "{pids:?}");
    assert!(
        alive.is_empty(),
        "check processes left running after the run: {alive:?} of {pids:?}"
    );
}

#[test]
fn the_binary_leaves_no_check_process_behind() {
    let fx = Fixture::new();
    let rb = write_rb(
        &fx,
        &[
            &hanging_check("300ms"),
            &phase_one(&[("a", "sleep 20")]),
            ROLLBACK,
        ],
    );
    let out = fx.run_cli(&rb, &[]);
    out.expect_code(3);
    let (pids, alive) = left_running(&fx, Duration::from_secs(2));
    assert!(pids.len() >= 2, "{pids:?}");
    assert!(alive.is_empty(), "left running: {alive:?} of {pids:?}");
}

// ---------------------------------------------------------------------------------------------
// Manual triggers

const MANUAL_TRIGGER: &str = r#"
[[trigger]]
id = "security"
title = "Security vulnerability detected"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn raising_a_manual_trigger_holds_the_run_until_acknowledged() {
    let fx = Fixture::new();
    let rb = write_rb(
        &fx,
        &[
            MANUAL_TRIGGER,
            &phase_one(&[("a", "sleep 0.4"), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), |u| {
        if is_started(u, "one/a") {
            vec![Command::RaiseTrigger {
                trigger: "security".into(),
                reason: "CVE-2099-0001 in libfoo".into(),
            }]
        } else if waits_for_trigger(u) {
            vec![Command::Acknowledge]
        } else {
            vec![]
        }
    })
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", trace(&j));
    assert_eq!(
        trace(&j),
        [
            "run_started run",
            "start one/a#1",
            "trigger_fired security",
            "succeeded one/a#1",
            "trigger_acknowledged security",
            "start one/b#1",
            "succeeded one/b#1",
            "run_finished succeeded",
        ]
    );
    assert_eq!(d.waits, [(at(0, 1), trigger_hold(&["security"]))]);
    let fired = &j[first(&j, "trigger_fired")];
    let reason = fired["reason"].as_str().unwrap_or("");
    assert!(reason.contains("CVE-2099-0001 in libfoo"), "{reason:?}");
    let operator = j[0]["operator"].as_str().unwrap();
    assert!(
        reason.contains(operator),
        "the reason says who raised it: {reason:?}"
    );
    assert!(fired.get("value").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_raising_a_trigger_rolls_back() {
    let fx = Fixture::new();
    let rb = write_rb(
        &fx,
        &[
            MANUAL_TRIGGER,
            &phase_one(&[("a", "sleep 20"), ("b", "echo ran > two.txt")]),
            ROLLBACK,
        ],
    );
    let mut sent = false;
    let d = drive(request(&rb, &fx.state(), &[], false), |u| {
        if is_started(u, "one/a") && !sent {
            sent = true;
            vec![Command::RaiseTrigger {
                trigger: "security".into(),
                reason: "leaked key".into(),
            }]
        } else {
            vec![]
        }
    })
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert_in_order(
        &j,
        &[
            "start one/a#1",
            "trigger_fired security",
            "cancelled one/a#1",
            "rollback_started trigger:security",
            "cancelled one/b#0",
            "succeeded back/undo#1",
            "run_finished rolled_back",
        ],
    );
    assert!(d.elapsed < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn raising_an_unknown_trigger_is_a_message_and_journals_nothing() {
    let fx = Fixture::new();
    let rb = write_rb(
        &fx,
        &[MANUAL_TRIGGER, &phase_one(&[("a", "sleep 0.3")]), ROLLBACK],
    );
    let d = drive(held(request(&rb, &fx.state(), &[], false)), |u| {
        if is_started(u, "one/a") {
            vec![Command::RaiseTrigger {
                trigger: "no-such-trigger".into(),
                reason: "typo".into(),
            }]
        } else {
            vec![]
        }
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    assert_eq!(
        event_names(&j),
        ["run_started", "step_started", "step_finished", "run_finished"]
    );
    assert!(
        d.messages
            .iter()
            .any(|m| m.contains("no-such-trigger") && m.contains("no trigger")),
        "{:?}",
        d.messages
    );
    let text = std::fs::read_to_string(d.run_dir.join("journal.jsonl")).unwrap();
    assert!(!text.contains("no-such-trigger") && !text.contains("typo"));
}

// ---------------------------------------------------------------------------------------------
// Confirmations record the metrics on screen

fn manual_runbook(fx: &Fixture) -> PathBuf {
    let metrics = r#"
[[metric]]
id = "broken"
title = "Broken"
command = "echo n/a"
"#;
    let phases = r#"
[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "look"
title = "Dashboards look fine"
manual = "Check the error dashboard"
"#;
    write_rb(fx, &[ERRORS_METRIC, metrics, phases])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_records_the_latest_metric_values() {
    let fx = Fixture::new();
    set_value(&fx, "3");
    let rb = manual_runbook(&fx);
    let fx_ref = &fx;
    let mut changed = false;
    let d = drive(request(&rb, &fx.state(), &[], false), move |u| match u {
        Update::Waiting {
            why: Wait::GoAhead { .. },
            ..
        } => {
            // The value changes while the operator looks; the go-ahead comes once it is on screen.
            set_value(fx_ref, "7");
            changed = true;
            vec![note("looking")]
        }
        Update::Event(Record {
            event: Event::MetricsSampled { values, .. },
            ..
        }) if changed && values.get("errors") == Some(&Some(7.0)) => {
            changed = false;
            vec![Command::Confirm {
                by: Some("alice".into()),
                step: None,
            }]
        }
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    let fin = &j[step_event(&j, "step_finished", "one/look")];
    assert_eq!(fin["status"], "confirmed");
    assert_eq!(fin["by"], "alice");
    let metrics = fin["metrics"].as_object().expect("metrics recorded");
    assert_eq!(metrics.len(), 2, "{fin}");
    assert_eq!(metrics["errors"].as_f64(), Some(7.0), "the latest value: {fin}");
    assert!(
        metrics["broken"].is_null(),
        "a metric without a value is null: {fin}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_automatic_confirmation_records_the_metrics_too() {
    let fx = Fixture::new();
    set_value(&fx, "3");
    let rb = manual_runbook(&fx);
    let d = drive(request(&rb, &fx.state(), &[], true), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    let fin = &j[step_event(&j, "step_finished", "one/look")];
    assert_eq!(fin["status"], "confirmed");
    assert_eq!(fin["by"], "auto");
    assert_eq!(fin["metrics"]["errors"].as_f64(), Some(3.0), "{fin}");
}

// ---------------------------------------------------------------------------------------------
// Rehearsals through the binary

fn rehearse(fx: &Fixture, file: &Path, args: &[&str]) -> CliRun {
    let started = Instant::now();
    let child = ProcCommand::new(runbook_bin())
        .arg("rehearse")
        .arg(file)
        .args(["--headless", "--yes", "--state-dir"])
        .arg(fx.state())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(fx.path())
        .spawn()
        .expect("spawn runbook");
    let output = wait_output(child, Duration::from_secs(30));
    CliRun::new(output, started.elapsed())
}

/// A rehearsal runbook; `check` adds a check trigger (a rehearsal passes it without running it,
/// until a fault is injected, which would make it fire too).
fn rehearsal_runbook(fx: &Fixture, watch: &str, check: bool) -> PathBuf {
    let check = if check {
        "[[trigger]]\nid = \"smoke\"\ntitle = \"Smoke test\"\ncheck = \"touch check-ran.txt\"\ninterval = \"100ms\"\n"
    } else {
        ""
    };
    let text = format!(
        r#"
[metrics]
interval = "200ms"

[[metric]]
id = "error_rate"
title = "Error rate"
query = 'sum(rate(http_requests_total{{code=~"5.."}}[1m]))'
unit = "percent"
simulate = {{ baseline = 0.002, jitter = 0.0005 }}

[[trigger]]
id = "error-rate"
title = "Error rate above 1%"
metric = "error_rate"
above = 0.01
for = "5s"

{check}

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "canary"
title = "Canary"
run = "touch canary.txt"

[[phase.step]]
id = "health"
title = "Health"
http = {{ url = "http://127.0.0.1:{port}/healthz" }}

[[phase.step]]
id = "soak"
title = "Soak"
watch = "{watch}"

[[phase.step]]
id = "full"
title = "Full rollout"
run = "touch full.txt"

{ROLLBACK}
"#,
        port = free_port()
    );
    write_rb(fx, &[&text])
}

const NOTHING_RAN: [&str; 4] = ["canary.txt", "full.txt", "rolled-back.txt", "check-ran.txt"];

#[test]
fn a_rehearsal_with_an_injected_fault_practises_the_rollback_and_executes_nothing() {
    let fx = Fixture::new();
    let rb = rehearsal_runbook(&fx, "60s", false);
    let out = rehearse(&fx, &rb, &["--speed", "10", "--inject-fault-at", "1s"]);
    out.expect_code(3);
    assert!(out.elapsed < Duration::from_secs(8), "took {:?}", out.elapsed);
    for f in NOTHING_RAN {
        assert!(!fx.exists(f), "{f} was created: something was executed");
    }
    let j = fx.journal();
    assert_eq!(j[0]["mode"], "rehearse");
    assert_in_order(
        &j,
        &[
            "run_started rehearse",
            "succeeded deploy/canary#1",
            "succeeded deploy/health#1",
            "start deploy/soak#1",
            "fault_injected schedule",
            "trigger_pending error-rate",
            "trigger_fired error-rate",
            "failed deploy/soak#1",
            "rollback_started trigger:error-rate",
            "cancelled deploy/full#0",
            "succeeded back/undo#1",
            "rollback_finished succeeded",
            "rehearsal_figures",
            "run_finished rolled_back",
        ],
    );
    assert_eq!(
        event_names(&j).iter().rev().take(2).collect::<Vec<_>>(),
        ["run_finished", "rehearsal_figures"],
        "the figures come just before run_finished"
    );
    // The trigger's 5 s window is 0.5 s at speed 10.
    let pending = first(&j, "trigger_pending");
    let fired = first(&j, "trigger_fired");
    let window = ms_between(ts(&j[pending]), ts(&j[fired]));
    assert!(
        (400..3000).contains(&window),
        "fired {window} ms after going pending"
    );
    assert!(j[fired]["value"].as_f64().unwrap() > 0.01, "{}", j[fired]);
    // Nothing ran; the logs say so.
    let canary = &j[step_event(&j, "step_finished", "deploy/canary")];
    let log = std::fs::read_to_string(fx.run_dir().join(canary["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains("not run") && log.contains("touch canary.txt"),
        "{log:?}"
    );
    let undo = &j[step_event(&j, "step_finished", "back/undo")];
    let log = std::fs::read_to_string(fx.run_dir().join(undo["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("not run"), "{log:?}");
    let health = &j[step_event(&j, "step_finished", "deploy/health")];
    assert!(
        health.get("http_status").is_none(),
        "no request was sent: {health}"
    );
    let figures = &j[first(&j, "rehearsal_figures")];
    assert!(figures["rollback_ms"].as_u64().is_some(), "{figures}");
    assert!(figures["fired_to_decision_ms"].as_u64().is_some(), "{figures}");
    let end = &j[first(&j, "run_finished")];
    assert_eq!(end["exit_code"], 3);
    assert!(out.stdout.contains("fault injected"), "{}", out.stdout);
}

#[test]
fn a_rehearsal_without_a_fault_passes_and_executes_nothing() {
    let fx = Fixture::new();
    let rb = rehearsal_runbook(&fx, "3s", true);
    let out = rehearse(&fx, &rb, &["--speed", "10"]);
    out.expect_code(0);
    for f in NOTHING_RAN {
        assert!(!fx.exists(f), "{f} was created: something was executed");
    }
    let j = fx.journal();
    assert_eq!(
        trace(&j),
        [
            "run_started rehearse",
            "start deploy/canary#1",
            "succeeded deploy/canary#1",
            "start deploy/health#1",
            "succeeded deploy/health#1",
            "start deploy/soak#1",
            "succeeded deploy/soak#1",
            "start deploy/full#1",
            "succeeded deploy/full#1",
            "rehearsal_figures",
            "run_finished succeeded",
        ]
    );
    // The 3 s watch took 0.3 s.
    let soak = &j[step_event(&j, "step_finished", "deploy/soak")];
    let ms = soak["duration_ms"].as_u64().unwrap();
    assert!((250..2000).contains(&ms), "{soak}");
    let figures = &j[first(&j, "rehearsal_figures")];
    assert!(figures.get("rollback_ms").is_none(), "{figures}");
    for s in events(&j, "metrics_sampled") {
        let v = s["values"]["error_rate"].as_f64().expect("a simulated value");
        assert!((0.0..0.01).contains(&v), "{s}");
    }
}

#[test]
fn a_rehearsal_slower_than_real_time_is_a_usage_error() {
    let fx = Fixture::new();
    let rb = rehearsal_runbook(&fx, "3s", false);
    let out = rehearse(&fx, &rb, &["--speed", "0.5"]);
    out.expect_code(2);
    assert!(out.stderr.contains("0.5"), "{}", out.stderr);
    assert!(fx.run_dirs().is_empty(), "nothing was recorded");
}

// ---------------------------------------------------------------------------------------------
// Injecting a fault by hand

#[tokio::test(flavor = "multi_thread")]
async fn injecting_a_fault_into_simulated_metrics_drives_them_over_the_threshold() {
    let fx = Fixture::new();
    let rest = r#"
[metrics]
interval = "200ms"

[[metric]]
id = "error_rate"
title = "Error rate"
query = "errors"
simulate = { baseline = 0.002, jitter = 0.0005 }

[[trigger]]
id = "error-rate"
title = "Error rate above 1%"
metric = "error_rate"
above = 0.01

[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "soak"
title = "Soak"
watch = "8s"
"#;
    let rb = write_rb(&fx, &[rest, ROLLBACK]);
    let d = drive_simulated(request(&rb, &fx.state(), &[], false), |u| {
        if is_started(u, "one/soak") {
            vec![Command::InjectFault]
        } else {
            vec![]
        }
    })
    .await;
    let j = d.journal();
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", trace(&j));
    assert_in_order(
        &j,
        &[
            "run_started run",
            "start one/soak#1",
            "fault_injected operator",
            "trigger_fired error-rate",
            "failed one/soak#1",
            "rollback_started trigger:error-rate",
            "run_finished rolled_back",
        ],
    );
    let fault = first(&j, "fault_injected");
    let fired = first(&j, "trigger_fired");
    let took = ms_between(ts(&j[fault]), ts(&j[fired]));
    assert!(took < 5000, "the threshold was passed {took} ms after the fault");
    assert!(j[fired]["value"].as_f64().unwrap() > 0.01);
    for s in &j[..fault] {
        if s["event"] == "metrics_sampled" {
            assert!(s["values"]["error_rate"].as_f64().unwrap() < 0.01, "{s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn injecting_a_fault_without_simulated_metrics_is_only_a_message() {
    let fx = Fixture::new();
    set_value(&fx, "0");
    let rb = write_rb(
        &fx,
        &[
            ERRORS_METRIC,
            ERRORS_ABOVE_1,
            &phase_one(&[("a", "sleep 0.5")]),
            ROLLBACK,
        ],
    );
    let d = drive(request(&rb, &fx.state(), &[], false), |u| {
        if is_started(u, "one/a") {
            vec![Command::InjectFault]
        } else {
            vec![]
        }
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    assert!(events(&j, "fault_injected").is_empty(), "{:#?}", trace(&j));
    assert!(trigger_events(&j).is_empty(), "{:#?}", trace(&j));
    assert!(
        d.messages.iter().any(|m| m.contains("no metric is simulated")),
        "{:?}",
        d.messages
    );
}

// ---------------------------------------------------------------------------------------------
// What the screen makes of trigger events

#[test]
fn the_screen_keeps_a_pending_countdown_through_a_failed_poll_and_a_firing_trigger_through_lost_data() {
    use runbook::tui::state::App;
    let fx = Fixture::new();
    let file = write_rb(
        &fx,
        &[ERRORS_METRIC, ERRORS_ABOVE_1, &phase_one(&[("a", "true")])],
    );
    let rb = std::sync::Arc::new(runbook::runbook::load(&file, &[]).expect("loads"));
    let mut app = App::new(rb, runbook::engine::Mode::Run, &[], String::new());
    let apply = |app: &mut App, event: Event| {
        app.apply(Update::Event(Record {
            ts: "2026-01-01T00:00:00.000Z".into(),
            event,
        }));
    };
    let unknown = |error: &str| Event::TriggerUnknown {
        trigger: "errors-high".into(),
        error: error.into(),
    };
    let pending = Event::TriggerPending {
        trigger: "errors-high".into(),
        value: Some(5.0),
    };
    apply(&mut app, pending.clone());
    let began = app.triggers[0].since.expect("pending since");
    std::thread::sleep(Duration::from_millis(20));
    apply(&mut app, unknown("Prometheus answered HTTP 503"));
    assert_eq!(app.triggers[0].state, runbook::tui::state::TriggerState::Unknown);
    apply(&mut app, pending.clone());
    assert_eq!(
        app.triggers[0].since,
        Some(began),
        "the countdown goes on from where it was"
    );
    // An empty answer ends the window: the next breach counts down from its own start.
    apply(&mut app, unknown("no data"));
    apply(&mut app, pending);
    assert!(app.triggers[0].since.expect("since") > began);

    apply(
        &mut app,
        Event::TriggerFired {
            trigger: "errors-high".into(),
            value: Some(5.0),
            reason: None,
            labels: None,
        },
    );
    apply(&mut app, unknown("no data"));
    assert_eq!(
        app.triggers[0].state,
        runbook::tui::state::TriggerState::Firing,
        "data lost does not clear it"
    );
    assert_eq!(app.firing().len(), 1);
    assert_eq!(app.triggers[0].reason.as_deref(), Some("data lost: no data"));
    apply(
        &mut app,
        Event::MetricsSampled {
            values: [("errors".to_string(), Some(5.0))].into(),
            errors: Default::default(),
        },
    );
    assert_eq!(app.triggers[0].state, runbook::tui::state::TriggerState::Firing);
    assert_eq!(app.triggers[0].reason, None, "the data came back");
}
