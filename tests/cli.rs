//! The real binary, headless: exit codes (SPEC §1), the journal (SPEC §4), headless output, vars
//! and secrets. Every run uses a temporary state folder and stdin from /dev/null.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Checks what every journal must satisfy: `run_started` first, `run_finished` last, every `ts`
/// RFC 3339 UTC with milliseconds and never going back, every `step_started` finished.
fn check_journal_shape(j: &[Value]) {
    check_journal_basics(j);
    check_started_steps_finished(j);
}

fn check_journal_basics(j: &[Value]) {
    assert!(!j.is_empty(), "empty journal");
    assert_eq!(j[0]["event"], "run_started", "first event: {:#?}", j[0]);
    assert_eq!(j.last().unwrap()["event"], "run_finished", "last event: {j:#?}");
    assert_eq!(events(j, "run_finished").len(), 1);
    let mut prev: Option<&str> = None;
    for e in j {
        let ts = e["ts"].as_str().unwrap_or_else(|| panic!("no ts in {e}"));
        assert!(
            is_rfc3339_utc_millis(ts),
            "ts {ts:?} is not RFC 3339 UTC with milliseconds"
        );
        if let Some(p) = prev {
            assert!(ms_between(p, ts) >= 0, "ts goes back: {p} then {ts}");
        }
        prev = Some(ts);
    }
}

fn check_started_steps_finished(j: &[Value]) {
    for (i, e) in j.iter().enumerate() {
        if e["event"] == "step_started" {
            let done = j[i + 1..].iter().any(|f| {
                f["event"] == "step_finished"
                    && f["phase"] == e["phase"]
                    && f["step"] == e["step"]
                    && f["attempt"] == e["attempt"]
                    && f["rollback"] == e["rollback"]
            });
            assert!(done, "step_started without step_finished: {e}");
        }
    }
}

/// The line on stderr that says how to go on with a run that stopped before its end.
fn resume_hint(fx: &Fixture) -> String {
    format!("runbook resume {}", fx.run_dir().display())
}

fn run_finished(j: &[Value]) -> (&str, i64) {
    let f = event(j, "run_finished");
    (f["outcome"].as_str().unwrap(), f["exit_code"].as_i64().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Exit codes

#[test]
fn exit_0_when_every_step_succeeds() {
    let fx = Fixture::new();
    let rb = fx.write(
        "ok.toml",
        r#"
[runbook]
title = "All good"

[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "a"
title = "A"
run = "echo a > a.txt"

[[phase.step]]
id = "b"
title = "B"
run = "echo b > b.txt"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    assert_eq!(fx.read("a.txt"), "a\n");
    assert_eq!(fx.read("b.txt"), "b\n");
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(run_finished(&j), ("succeeded", 0));
    assert_eq!(
        step_trace(&j),
        [
            "start one/a#1",
            "succeeded one/a#1",
            "start one/b#1",
            "succeeded one/b#1"
        ]
    );
}

#[test]
fn exit_0_when_a_step_fails_with_on_failure_continue() {
    let fx = Fixture::new();
    let rb = fx.write(
        "cont.toml",
        r#"
[runbook]
title = "Keeps going"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "flaky"
title = "Flaky"
run = "exit 3"
on_failure = "continue"

[[phase.step]]
id = "after"
title = "After"
run = "touch after.txt"
"#,
    );
    fx.run_cli(&rb, &[]).expect_code(0);
    assert!(
        fx.exists("after.txt"),
        "the step after a `continue` failure must run"
    );
    let j = fx.journal();
    check_journal_shape(&j);
    let f = last_finished(&j, "p/flaky");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["exit_code"], 3);
    assert_eq!(last_finished(&j, "p/after")["status"], "succeeded");
    assert_eq!(run_finished(&j), ("succeeded", 0));
}

#[test]
fn exit_1_when_a_step_fails_with_on_failure_ask_in_headless_mode() {
    let fx = Fixture::new();
    let rb = fx.write(
        "fail.toml",
        r#"
[runbook]
title = "Stops"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "broken"
title = "Broken"
run = "echo oops; exit 7"

[[phase.step]]
id = "never"
title = "Never"
run = "touch never.txt"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(1);
    assert!(
        !fx.exists("never.txt"),
        "nothing may run after a failed step in headless mode"
    );
    let j = fx.journal();
    check_journal_shape(&j);
    let f = last_finished(&j, "p/broken");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["exit_code"], 7);
    assert!(events(&j, "step_started").iter().all(|e| e["step"] != "never"));
    assert_eq!(run_finished(&j), ("failed", 1));
    assert!(r.stdout.contains(" == run failed (exit 1)"), "{}", r.stdout);
    assert!(r.stderr.contains(&resume_hint(&fx)), "{}", r.stderr);
}

#[test]
fn exit_1_when_a_manual_step_waits_without_yes_and_stdin_is_not_a_terminal() {
    let fx = Fixture::new();
    let rb = fx.write(
        "manual.toml",
        r#"
[runbook]
title = "Needs a human"

[[phase]]
id = "checks"
title = "Checks"

[[phase.step]]
id = "before"
title = "Before"
run = "touch before.txt"

[[phase.step]]
id = "cdn-verified"
title = "CDN verified"
manual = "Check the CDN console"

[[phase.step]]
id = "after"
title = "After"
run = "touch after.txt"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(1);
    assert!(fx.exists("before.txt"));
    assert!(
        !fx.exists("after.txt"),
        "nothing may run after the unconfirmed manual step"
    );
    assert!(
        r.stderr.contains("checks/cdn-verified"),
        "stderr must name the waiting step:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--yes"),
        "stderr must point at --yes:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains(&resume_hint(&fx)), "{}", r.stderr);
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(run_finished(&j).1, 1);
    assert!(
        finished(&j, "checks/cdn-verified")
            .iter()
            .all(|f| f["status"] != "confirmed"),
        "the manual step must not be recorded as confirmed: {j:#?}"
    );
}

#[test]
fn manual_step_stopped_while_waiting_is_finished_in_the_journal() {
    let fx = Fixture::new();
    let rb = fx.write(
        "manual.toml",
        r#"
[runbook]
title = "Needs a human"

[[phase]]
id = "checks"
title = "Checks"

[[phase.step]]
id = "cdn-verified"
title = "CDN verified"
manual = "Check the CDN console"
"#,
    );
    fx.run_cli(&rb, &[]).expect_code(1);
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(last_finished(&j, "checks/cdn-verified")["status"], "cancelled");
}

#[test]
fn exit_2_for_an_invalid_runbook_and_nothing_is_executed() {
    let fx = Fixture::new();
    let rb = fx.write(
        "invalid.toml",
        r#"
[runbook]
title = "Broken file"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "would-run"
title = "Would run"
run = "touch executed.txt"

[[phase.step]]
id = "bad"
title = "Bad"
run = "true"
tiemout = "5s"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(2);
    assert!(
        !fx.exists("executed.txt"),
        "an invalid runbook must not run anything"
    );
    assert!(
        r.stderr.contains("invalid.toml"),
        "stderr names the file:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("tiemout"),
        "stderr names the bad key:\n{}",
        r.stderr
    );
}

#[test]
fn exit_2_for_an_unknown_var_and_nothing_is_executed() {
    let fx = Fixture::new();
    let rb = fx.write(
        "vars.toml",
        r#"
[runbook]
title = "Vars"

[vars]
release = "v1"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "touch executed.txt"
"#,
    );
    let r = fx.run_cli(&rb, &["--var", "relase=v2"]);
    r.expect_code(2);
    assert!(!fx.exists("executed.txt"));
    assert!(
        r.stderr.contains("relase"),
        "stderr names the unknown var:\n{}",
        r.stderr
    );
    assert!(
        fx.run_dirs().is_empty(),
        "no run may be recorded for a usage error"
    );
}

#[test]
fn exit_2_for_a_missing_secret_and_nothing_is_executed() {
    let fx = Fixture::new();
    let rb = fx.write(
        "secret.toml",
        r#"
[runbook]
title = "Secret"

[secrets]
TOKEN = { env = "RUNBOOK_TEST_SURELY_UNSET_TOKEN" }

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "touch executed.txt"
"#,
    );
    let mut cmd = fx.cli_command(&rb, &[], &[]);
    cmd.env_remove("RUNBOOK_TEST_SURELY_UNSET_TOKEN");
    let r = CliRun::new(
        wait_output(cmd.spawn().unwrap(), Duration::from_secs(30)),
        Duration::ZERO,
    );
    r.expect_code(2);
    assert!(!fx.exists("executed.txt"));
    assert!(
        r.stderr.contains("RUNBOOK_TEST_SURELY_UNSET_TOKEN"),
        "stderr names the missing variable:\n{}",
        r.stderr
    );
}

const ROLLBACK_RUNBOOK: &str = r#"
[runbook]
title = "Rolls back"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "first"
title = "First"
run = "echo first >> order.txt"

[[phase.step]]
id = "canary"
title = "Canary"
run = "echo canary >> order.txt; exit 1"
on_failure = "rollback"

[[phase.step]]
id = "rest"
title = "Rest"
run = "echo rest >> order.txt"

[[phase]]
id = "verify"
title = "Verify"

[[phase.step]]
id = "smoke"
title = "Smoke"
run = "echo smoke >> order.txt"

[[phase.step]]
id = "sign-off"
title = "Sign-off"
manual = true

[rollback]
title = "Rollback"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "echo revert >> order.txt"

[[rollback.phase.step]]
id = "check"
title = "Check"
run = "ROLLBACK_CHECK"
"#;

#[test]
fn exit_3_when_a_failing_step_rolls_back_and_the_rollback_succeeds() {
    let fx = Fixture::new();
    let rb = fx.write(
        "rb.toml",
        &ROLLBACK_RUNBOOK.replace("ROLLBACK_CHECK", "echo check >> order.txt"),
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(3);
    assert_eq!(fx.read("order.txt"), "first\ncanary\nrevert\ncheck\n");
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(event(&j, "rollback_started")["reason"], "step:deploy/canary");
    for name in ["deploy/rest", "verify/smoke", "verify/sign-off"] {
        let f = finished(&j, name);
        assert_eq!(f.len(), 1, "{name} must be recorded once: {j:#?}");
        assert_eq!(f[0]["status"], "cancelled", "{name}");
        assert_eq!(f[0]["rollback"], false, "{name}");
    }
    for name in ["undo/revert", "undo/check"] {
        let starts: Vec<_> = events(&j, "step_started")
            .into_iter()
            .filter(|e| step_name(e) == name)
            .collect();
        assert_eq!(starts.len(), 1, "{name}");
        assert_eq!(starts[0]["rollback"], true, "{name}");
        let f = last_finished(&j, name);
        assert_eq!(f["rollback"], true, "{name}");
        assert_eq!(f["status"], "succeeded", "{name}");
    }
    let names = event_names(&j);
    let rs = names.iter().position(|n| n == "rollback_started").unwrap();
    let rf = names.iter().position(|n| n == "rollback_finished").unwrap();
    let first_rollback_step = j
        .iter()
        .position(|e| e["event"] == "step_started" && e["rollback"] == true)
        .unwrap();
    assert!(rs < first_rollback_step && first_rollback_step < rf);
    assert_eq!(event(&j, "rollback_finished")["status"], "succeeded");
    assert_eq!(run_finished(&j), ("rolled_back", 3));
    assert!(r.stdout.contains(" == run rolled back (exit 3)"), "{}", r.stdout);
    assert!(
        !r.stderr.contains("runbook resume"),
        "nothing to go on with:\n{}",
        r.stderr
    );
}

#[test]
fn exit_4_when_a_rollback_step_fails() {
    let fx = Fixture::new();
    let rb = fx.write(
        "rb.toml",
        &ROLLBACK_RUNBOOK.replace("ROLLBACK_CHECK", "echo check >> order.txt; exit 9"),
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(4);
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(event(&j, "rollback_started")["reason"], "step:deploy/canary");
    let f = last_finished(&j, "undo/check");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["exit_code"], 9);
    assert_eq!(f["rollback"], true);
    assert_eq!(event(&j, "rollback_finished")["status"], "failed");
    assert_eq!(run_finished(&j), ("rollback_failed", 4));
    assert!(
        r.stdout.contains(" == run rollback failed (exit 4)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains(&resume_hint(&fx)), "{}", r.stderr);
}

/// Starts `runbook run` on a runbook whose step `p/long` runs `step`, waits until `ready` exists
/// (written by the step), sends `sig` to runbook, and returns the run and the pids in `pids`.
fn signal_during_step(fx: &Fixture, step: &str, sig: nix::sys::signal::Signal) -> (CliRun, Vec<i32>) {
    let rb = fx.write(
        "long.toml",
        &format!(
            r#"
[runbook]
title = "Long"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "long"
title = "Long"
run = '{step}'

[[phase.step]]
id = "next"
title = "Next"
run = "touch next.txt"
"#
        ),
    );
    let started = std::time::Instant::now();
    let child = fx.cli_command(&rb, &[], &[]).spawn().unwrap();
    let pid = child.id() as i32;
    let seen = wait_for(Duration::from_secs(10), || {
        fx.run_dirs().len() == 1
            && std::fs::read_to_string(fx.run_dir().join("journal.jsonl"))
                .is_ok_and(|t| t.contains(r#""event":"step_started""#))
            && fx.exists("ready")
    });
    if !seen {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        panic!("the long step never started");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    let r = CliRun::new(wait_output(child, Duration::from_secs(15)), started.elapsed());
    let pids = read_pids(&fx.file("pids"));
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| !wait_gone(p, Duration::from_secs(2)))
        .collect();
    kill_pids(&alive);
    assert!(
        alive.is_empty(),
        "processes of the step survived {sig}: {alive:?}"
    );
    (r, pids)
}

const LONG_STEP: &str = "echo $$ >> pids; sleep 30 & echo $! >> pids; touch ready; wait";

#[test]
fn exit_130_on_sigint_interrupts_the_step_and_leaves_nothing_running() {
    let fx = Fixture::new();
    let (r, pids) = signal_during_step(&fx, LONG_STEP, nix::sys::signal::Signal::SIGINT);
    r.expect_code(130);
    assert_eq!(pids.len(), 2);
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    assert!(!fx.exists("next.txt"));
    let j = fx.journal();
    check_journal_shape(&j);
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "interrupted");
    assert!(f["log"].is_string(), "{f}");
    assert_eq!(run_finished(&j), ("interrupted", 130));
    assert!(events(&j, "step_started").iter().all(|e| e["step"] != "next"));
    assert!(r.stderr.contains(&resume_hint(&fx)), "{}", r.stderr);
}

#[test]
fn exit_130_on_sigterm() {
    let fx = Fixture::new();
    let (r, _) = signal_during_step(&fx, LONG_STEP, nix::sys::signal::Signal::SIGTERM);
    r.expect_code(130);
    assert!(!fx.exists("next.txt"));
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(last_finished(&j, "p/long")["status"], "interrupted");
    assert_eq!(run_finished(&j), ("interrupted", 130));
    assert!(r.stderr.contains(&resume_hint(&fx)), "{}", r.stderr);
}

#[test]
fn sighup_lets_the_step_finish_and_starts_nothing_more() {
    let fx = Fixture::new();
    let (r, _) = signal_during_step(
        &fx,
        "echo $$ >> pids; touch ready; sleep 0.8; echo finished",
        nix::sys::signal::Signal::SIGHUP,
    );
    r.expect_code(130);
    assert!(!fx.exists("next.txt"), "nothing starts after SIGHUP");
    let j = fx.journal();
    check_journal_shape(&j);
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "succeeded", "the step in flight finishes: {f}");
    assert_eq!(f["exit_code"], 0);
    let log = std::fs::read_to_string(fx.run_dir().join(f["log"].as_str().unwrap())).unwrap();
    assert_eq!(log, "finished\n");
    assert_eq!(run_finished(&j), ("interrupted", 130));
}

// ---------------------------------------------------------------------------------------------
// The journal

#[test]
fn journal_records_a_small_run_event_by_event() {
    let fx = Fixture::new();
    let text = r#"
[runbook]
title = "Small ${release} run"
id = "small"

[vars]
release = "v1"
region = "eu"

[[phase]]
id = "prep"
title = "Prepare"

[[phase.step]]
id = "hello"
title = "Hello"
run = "echo hello from $release; echo warn >&2"

[[phase.step]]
id = "look"
title = "Look at the dashboard"
manual = "Open the dashboard"

[[phase]]
id = "go"
title = "Go"

[[phase.step]]
id = "gated"
title = "Gated"
run = "echo gated"
confirm = true

[[phase.step]]
id = "bye"
title = "Bye"
run = "echo bye"
"#;
    let rb = fx.write("small.toml", text);
    let r = fx.run_cli(&rb, &["--yes", "--var", "release=v2"]);
    r.expect_code(0);
    let run_dir = fx.run_dir();
    assert!(
        run_dir.file_name().unwrap().to_string_lossy().ends_with("-small"),
        "run folder is <UTC time>-<runbook id>: {}",
        run_dir.display()
    );
    assert!(
        r.stderr.contains(&run_dir.display().to_string()),
        "the run folder is printed on stderr:\n{}",
        r.stderr
    );
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(
        event_names(&j),
        [
            "run_started",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "run_finished",
        ]
    );

    let s = &j[0];
    assert_eq!(s["runbook"], "small");
    assert_eq!(s["title"], "Small v2 run");
    assert_eq!(s["file"], rb.display().to_string());
    let sha = Sha256::digest(std::fs::read(&rb).unwrap());
    let sha: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(s["sha256"], sha);
    assert_eq!(s["operator"], runbook::session::operator());
    assert_eq!(s["host"], runbook::session::host());
    assert_eq!(s["mode"], "run");
    assert_eq!(s["vars"], json!({"release": "v2", "region": "eu"}));

    let expect_steps = [
        ("prep", "hello"),
        ("prep", "look"),
        ("go", "gated"),
        ("go", "bye"),
    ];
    for (i, (phase, step)) in expect_steps.iter().enumerate() {
        let st = &j[1 + 2 * i];
        let fin = &j[2 + 2 * i];
        assert_eq!(st["event"], "step_started");
        assert_eq!(st["phase"], *phase);
        assert_eq!(st["step"], *step);
        assert_eq!(st["attempt"], 1);
        assert_eq!(st["rollback"], false);
        assert_eq!(fin["phase"], *phase);
        assert_eq!(fin["step"], *step);
        assert_eq!(fin["attempt"], 1);
        assert_eq!(fin["rollback"], false);
        assert!(fin["duration_ms"].is_u64(), "duration_ms in {fin}");
    }

    // Commands: exit code and a log with the step's output (stdout and stderr).
    for (idx, want) in [(2, "hello from v2\nwarn\n"), (6, "gated\n"), (8, "bye\n")] {
        let fin = &j[idx];
        assert_eq!(fin["status"], "succeeded", "{fin}");
        assert_eq!(fin["exit_code"], 0, "{fin}");
        let log = fin["log"].as_str().expect("log path");
        assert!(
            !log.starts_with('/'),
            "log path is relative to the run folder: {log}"
        );
        let log_path = run_dir.join(log);
        assert!(log_path.is_file(), "{} exists", log_path.display());
        assert_eq!(std::fs::read_to_string(&log_path).unwrap(), want);
    }

    // The manual step, confirmed by --yes.
    let look = &j[4];
    assert_eq!(look["status"], "confirmed");
    assert_eq!(look["by"], "auto");
    assert!(
        look["metrics"].is_object(),
        "a confirmation records the metrics: {look}"
    );
    assert!(look.get("exit_code").is_none());

    // The confirm = true step ran on the automatic go-ahead.
    assert_eq!(j[6]["by"], "auto", "{}", j[6]);

    assert_eq!(run_finished(&j), ("succeeded", 0));
}

#[test]
fn one_run_folder_per_run() {
    let fx = Fixture::new();
    let twice = RunbookToml::new("Twice")
        .phase("p", "P")
        .step("s", "S", r#"run = "true""#);
    let rb = fx.write("twice.toml", &twice.build());
    fx.run_cli(&rb, &[]).expect_code(0);
    fx.run_cli(&rb, &[]).expect_code(0);
    let dirs = fx.run_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in dirs {
        assert!(d.join("journal.jsonl").is_file());
        assert!(d.join("logs").is_dir());
        let j = journal_json(&d.join("journal.jsonl"));
        check_journal_shape(&j);
        assert_eq!(events(&j, "run_started").len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Headless output

/// The `phase/step | text` lines of stdout, without the time, checking the time is there.
fn step_lines(stdout: &str, name: &str) -> Vec<String> {
    let marker = format!(" {name} | ");
    stdout
        .lines()
        .filter_map(|l| {
            let at = l.find(&marker)?;
            let time = &l[..at];
            assert!(
                time.len() == 12
                    && time.as_bytes()[2] == b':'
                    && time.as_bytes()[5] == b':'
                    && time.as_bytes()[8] == b'.'
                    && time
                        .chars()
                        .enumerate()
                        .all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit()),
                "step output line starts with HH:MM:SS.mmm: {l:?}"
            );
            Some(l[at + marker.len()..].to_string())
        })
        .collect()
}

#[test]
fn headless_stdout_shows_step_output_prefixed_and_in_order() {
    let fx = Fixture::new();
    let rb = fx.write(
        "out.toml",
        r#"
[runbook]
title = "Output"

[[phase]]
id = "build"
title = "Build"

[[phase.step]]
id = "mixed"
title = "Mixed"
run = "echo a; echo b >&2; echo c; echo d >&2; echo e"

[[phase.step]]
id = "second"
title = "Second"
run = "printf 'no newline at the end'"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    assert_eq!(
        step_lines(&r.stdout, "build/mixed"),
        ["a", "b", "c", "d", "e"],
        "{}",
        r.stdout
    );
    assert_eq!(step_lines(&r.stdout, "build/second"), ["no newline at the end"]);
    // The output of a step comes after its start and before its end.
    let pos = |needle: &str| {
        r.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{}", r.stdout))
    };
    assert!(pos("build/mixed | a") < pos("build/mixed | e"));
    assert!(pos("build/mixed | e") < pos("build/second | no newline"));
    assert!(
        !r.stderr.contains("| a"),
        "step output goes to stdout, not stderr"
    );
}

#[test]
fn headless_survives_odd_output() {
    let fx = Fixture::new();
    let rb = fx.write(
        "odd.toml",
        r#"
[runbook]
title = "Odd"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "utf8"
title = "Invalid UTF-8"
run = "printf 'bad \\377\\376 bytes\\n\\033[31mred\\033[0m\\n'"

[[phase.step]]
id = "long"
title = "Long line"
run = "head -c 1048576 /dev/zero | tr '\\0' x"

[[phase.step]]
id = "binary"
title = "Binary"
run = "head -c 100000 /dev/urandom"

[[phase.step]]
id = "after"
title = "After"
run = "echo still here"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    assert_eq!(step_lines(&r.stdout, "p/after"), ["still here"]);
    let utf8 = step_lines(&r.stdout, "p/utf8");
    assert_eq!(utf8.len(), 2, "{utf8:?}");
    assert!(
        utf8[0].starts_with("bad ") && utf8[0].ends_with(" bytes"),
        "{utf8:?}"
    );
    assert_eq!(utf8[1], "red", "terminal escapes are removed on stdout");
    let long: usize = step_lines(&r.stdout, "p/long").iter().map(|l| l.len()).sum();
    assert_eq!(long, 1048576, "every x of the long line is shown");
    let j = fx.journal();
    check_journal_shape(&j);
    for s in ["p/utf8", "p/long", "p/binary", "p/after"] {
        assert_eq!(last_finished(&j, s)["status"], "succeeded", "{s}");
    }
}

// ---------------------------------------------------------------------------------------------
// Vars

#[test]
fn var_override_reaches_commands_titles_and_durations() {
    let fx = Fixture::new();
    let rb = fx.write(
        "vars.toml",
        r#"
[runbook]
title = "Release ${release}"

[vars]
release = "v1.0.0"
bake = "10m"

[[phase]]
id = "p"
title = "Deploy ${release}"

[[phase.step]]
id = "show"
title = "Show ${release}"
run = 'echo "release=$release bake=$bake" > seen.txt; echo "release is $release"'

[[phase.step]]
id = "bake"
title = "Bake for ${bake}"
watch = "${bake}"
"#,
    );
    let r = fx.run_cli(&rb, &["--var", "release=v2.0.0", "--var", "bake=300ms"]);
    r.expect_code(0);
    assert!(
        r.elapsed < Duration::from_secs(5),
        "watch used the overridden duration: {:?}",
        r.elapsed
    );
    assert_eq!(fx.read("seen.txt"), "release=v2.0.0 bake=300ms\n");
    assert_eq!(step_lines(&r.stdout, "p/show"), ["release is v2.0.0"]);
    assert!(
        r.stdout.contains("Show v2.0.0"),
        "title substituted:\n{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Bake for 300ms"),
        "title substituted:\n{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("${"),
        "no unsubstituted reference:\n{}",
        r.stdout
    );
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(j[0]["title"], "Release v2.0.0");
    assert_eq!(j[0]["vars"], json!({"release": "v2.0.0", "bake": "300ms"}));
    let bake = last_finished(&j, "p/bake");
    assert_eq!(bake["status"], "succeeded");
    let ms = bake["duration_ms"].as_u64().unwrap();
    assert!(
        (250..3000).contains(&ms),
        "watch lasted {ms} ms, expected about 300"
    );
}

#[test]
fn var_is_not_pasted_into_the_shell_command() {
    let fx = Fixture::new();
    let rb = fx.write(
        "inject.toml",
        r#"
[runbook]
title = "Quoting"

[vars]
name = "x"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = 'printf "%s" "$name" > name.txt; echo "${name}" > braces.txt'
"#,
    );
    let hostile = "a; touch pwned.txt; $(touch pwned2.txt) `touch pwned3.txt`";
    fx.run_cli(&rb, &["--var", &format!("name={hostile}")])
        .expect_code(0);
    assert_eq!(fx.read("name.txt"), hostile);
    assert_eq!(fx.read("braces.txt"), format!("{hostile}\n"));
    for f in ["pwned.txt", "pwned2.txt", "pwned3.txt"] {
        assert!(!fx.exists(f), "{f}: a var value was executed");
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn assert_no_secret(fx: &Fixture, r: &CliRun, secret: &str) {
    let run_dir = fx.run_dir();
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    assert!(!journal.contains(secret), "secret in the journal:\n{journal}");
    for e in std::fs::read_dir(run_dir.join("logs")).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "secret in the log {}",
            p.display()
        );
    }
    assert!(!r.stdout.contains(secret), "secret on stdout:\n{}", r.stdout);
    assert!(!r.stderr.contains(secret), "secret on stderr:\n{}", r.stderr);
}

const SECRET_RUNBOOK: &str = r#"
[runbook]
title = "Secrets"

[secrets]
TOKEN = SOURCE

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "use"
title = "Use the token"
run = 'echo "token is $TOKEN"; echo "to stderr $TOKEN" >&2; printf "%s" "$TOKEN" > token-copy.txt'

[[phase.step]]
id = "fail"
title = "Fails mentioning the token"
run = 'echo "bad token $TOKEN"; exit 1'
on_failure = "continue"
"#;

fn check_secret_run(fx: &Fixture, r: &CliRun, secret: &str) {
    r.expect_code(0);
    assert_eq!(
        fx.read("token-copy.txt"),
        secret,
        "the command sees the secret's value"
    );
    assert_eq!(step_lines(&r.stdout, "p/use"), ["token is ***", "to stderr ***"]);
    let j = fx.journal();
    check_journal_shape(&j);
    let log = fx
        .run_dir()
        .join(last_finished(&j, "p/use")["log"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(log).unwrap(),
        "token is ***\nto stderr ***\n"
    );
    assert!(
        j[0]["vars"].get("TOKEN").is_none(),
        "secrets are left out of vars: {}",
        j[0]
    );
    assert_no_secret(fx, r, secret);
}

#[test]
fn secret_from_env_is_masked_everywhere() {
    let fx = Fixture::new();
    let secret = "s3cr3t-Value-4711";
    let rb = fx.write(
        "secret.toml",
        &SECRET_RUNBOOK.replace("SOURCE", r#"{ env = "TEST_TOKEN_XYZ" }"#),
    );
    let r = fx.run_cli_env(&rb, &[], &[("TEST_TOKEN_XYZ", secret)]);
    check_secret_run(&fx, &r, secret);
}

#[test]
fn secret_from_file_is_masked_everywhere() {
    let fx = Fixture::new();
    let secret = "file-Secret-0815";
    fx.write("token.txt", &format!("{secret}\n"));
    let rb = fx.write(
        "secret.toml",
        &SECRET_RUNBOOK.replace("SOURCE", r#"{ file = "token.txt" }"#),
    );
    let r = fx.run_cli(&rb, &[]);
    check_secret_run(&fx, &r, secret);
}

#[test]
fn secret_in_a_long_line_is_masked_whole() {
    let fx = Fixture::new();
    let secret = "Zq9-secret-at-a-boundary-77";
    let mut text = String::from(
        r#"
[runbook]
title = "Secrets at the edges"

[secrets]
TOKEN = { env = "TEST_TOKEN_XYZ" }

[[phase]]
id = "p"
title = "P"
"#,
    );
    // The secret lands around the 64 KiB read size, where a long line is cut into pieces.
    // (65520 used to leak: the log held the secret whole, stdout all but its first byte.)
    for (i, before) in [65_520, 65_530, 65_536, 131_060, 200_000].iter().enumerate() {
        text.push_str(&format!(
            r#"
[[phase.step]]
id = "long{i}"
title = "Long line {i}"
run = 'head -c {before} /dev/zero | tr "\0" x; printf "%s" "$TOKEN"; head -c 70000 /dev/zero | tr "\0" y; echo'
"#
        ));
    }
    let rb = fx.write("edges.toml", &text);
    let r = fx.run_cli_env(&rb, &[], &[("TEST_TOKEN_XYZ", secret)]);
    r.expect_code(0);
    let j = fx.journal();
    check_journal_shape(&j);
    for i in 0..5 {
        let f = last_finished(&j, &format!("p/long{i}"));
        assert_eq!(f["status"], "succeeded");
        let log = std::fs::read(fx.run_dir().join(f["log"].as_str().unwrap())).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(!log.contains(secret), "step {i}: the secret is in the log");
        assert!(log.contains("x***y"), "step {i}: the secret is masked whole");
    }
    assert!(
        !r.stdout.contains(&secret[1..]),
        "most of the secret is on stdout:\n{}",
        r.stdout
            .lines()
            .filter(|l| l.contains("secret"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_no_secret(&fx, &r, secret);
}

#[test]
fn secret_in_an_http_request_is_not_leaked() {
    let fx = Fixture::new();
    let secret = "Zq9-http-secret-77";
    let port = free_port();
    let srv = TestServer::start(vec![("/echo", Reply::Fixed(500, "boom"))]);
    let rb = fx.write(
        "http.toml",
        &format!(
            r#"
[runbook]
title = "Secret in requests"

[secrets]
TOKEN = {{ env = "TEST_TOKEN_XYZ" }}

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "refused"
title = "Refused request with the token"
http = {{ url = "http://127.0.0.1:{port}/x?token=${{TOKEN}}", headers = {{ Authorization = "Bearer ${{TOKEN}}" }} }}
on_failure = "continue"

[[phase.step]]
id = "answered"
title = "Answered request with the token"
http = {{ url = "{}?token=${{TOKEN}}", method = "POST", body = "token=${{TOKEN}}", headers = {{ Authorization = "Bearer ${{TOKEN}}" }} }}
on_failure = "continue"
"#,
            srv.url("/echo")
        ),
    );
    let r = fx.run_cli_env(&rb, &[], &[("TEST_TOKEN_XYZ", secret)]);
    r.expect_code(0);
    let j = fx.journal();
    check_journal_shape(&j);
    assert_eq!(last_finished(&j, "p/refused")["status"], "failed");
    assert_eq!(last_finished(&j, "p/answered")["http_status"], 500);
    assert_no_secret(&fx, &r, secret);
}

#[test]
fn multiline_secret_from_a_file_is_masked_line_by_line() {
    let fx = Fixture::new();
    fx.write(
        "key.pem",
        "-----BEGIN TEST KEY-----\nAAAAsecretlineONE\nBBBBsecretlineTWO\n-----END TEST KEY-----\n",
    );
    let rb = fx.write(
        "pem.toml",
        r#"
[runbook]
title = "PEM"

[secrets]
KEY = { file = "key.pem" }

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "show"
title = "Show"
run = 'echo "$KEY"; echo "$KEY" | tail -n 2 | head -n 1'
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    for s in ["AAAAsecretlineONE", "BBBBsecretlineTWO"] {
        assert_no_secret(&fx, &r, s);
    }
}

#[test]
fn no_process_outlives_runbook_not_even_a_daemon() {
    let fx = Fixture::new();
    let rb = fx.write(
        "daemon.toml",
        r#"
[runbook]
title = "Daemon"

[settings]
kill_grace = "500ms"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "daemon"
title = "Starts a daemon (double fork, new session)"
run = "(setsid sh -c 'sleep 300 & echo $! >> pids; echo $$ >> pids; wait' > /dev/null 2>&1 &); sleep 0.3; echo started"

[[phase.step]]
id = "after"
title = "After"
run = "echo after"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    let pids = read_pids(&fx.file("pids"));
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| !wait_gone(p, Duration::from_secs(2)))
        .collect();
    kill_pids(&alive);
    r.expect_code(0);
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(
        alive.is_empty(),
        "a daemon started by a step outlived runbook: {alive:?}"
    );
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
}

#[test]
fn each_event_is_on_disk_before_the_run_moves_on() {
    let fx = Fixture::new();
    // The second step reads the journal while it runs: what happened before it must be there.
    let rb = fx.write(
        "flush.toml",
        &format!(
            r#"
[runbook]
title = "Flushed"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "first"
title = "First"
run = "echo first"

[[phase.step]]
id = "reader"
title = "Reads the journal"
run = 'cat "{}"/runs/*/journal.jsonl > seen.jsonl'
"#,
            fx.state().display()
        ),
    );
    fx.run_cli(&rb, &[]).expect_code(0);
    let seen = journal_json(&fx.file("seen.jsonl"));
    assert_eq!(
        step_trace(&seen),
        ["start p/first#1", "succeeded p/first#1", "start p/reader#1"],
        "{seen:#?}"
    );
    assert_eq!(seen[0]["event"], "run_started");
}

#[test]
fn headless_says_a_firing_trigger_rolls_back_now_when_nobody_can_acknowledge_it() {
    let fx = Fixture::new();
    let rb = fx.write(
        "auto.toml",
        r#"
[runbook]
title = "Auto rollback headless"

[[trigger]]
id = "smoke"
title = "Smoke test failing"
check = "exit 1"
interval = "1s"
auto_rollback = "20s"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "bake"
title = "Bake"
watch = "10s"

[rollback]
title = "Back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "true"
"#,
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(3);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("nobody here can acknowledge it"))
        .unwrap_or_else(|| panic!("no line says what happens:\n{}", r.stdout));
    assert!(line.contains("the run rolls back now"), "{line}");
    assert!(line.contains("auto_rollback = \"20s\""), "{line}");
    assert!(
        r.elapsed < Duration::from_secs(10),
        "it did not wait: {:?}",
        r.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// `plan` and the command line's own messages

/// `runbook ARGS...` in `dir`, stdin null: (exit code, stdout, stderr).
fn cli(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let child = std::process::Command::new(runbook_bin())
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn runbook");
    let out = wait_output(child, Duration::from_secs(30));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ONE_STEP: &str = r#"
[runbook]
title = "One"

[[phase]]
id = "only"
title = "Only"

[[phase.step]]
id = "s"
title = "S"
run = "true"
"#;

#[test]
fn plan_counts_of_one_are_singular() {
    let fx = Fixture::new();
    let rb = fx.write("one.toml", ONE_STEP);
    let (code, out, err) = cli(fx.path(), &["plan", rb.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\n1 phase, 1 step\n"), "{out}");
}

/// Eleven phases (two-digit numbering), a watch step, a rollback phase (`R1.1`).
fn crowded_runbook() -> String {
    let mut rb = RunbookToml::new("Crowded");
    for p in 1..=11 {
        rb = rb
            .phase(&format!("p{p}"), &format!("Phase {p}"))
            .step(
                &format!("build-{p}"),
                &format!("Build {p}"),
                &format!("run = \"echo {p}\""),
            )
            .step(&format!("watch-{p}"), &format!("Watch {p}"), "watch = \"15m\"");
    }
    rb.rollback("Back")
        .phase("undo", "Undo")
        .step("undo-it", "Undo it", "run = \"echo undo\"")
        .build()
}

#[test]
fn plan_shows_step_ids_and_lines_up_its_columns() {
    let fx = Fixture::new();
    let rb = fx.write("crowded.toml", &crowded_runbook());
    let (code, out, err) = cli(fx.path(), &["plan", rb.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // Every step row: its title starts in the same column, and its id is shown.
    let mut title_columns = std::collections::BTreeSet::new();
    let mut rows = 0;
    for line in out.lines() {
        let t = line.trim_start();
        let numbered = t.split(' ').next().is_some_and(|n| {
            n.trim_start_matches('R').split('.').count() == 2
                && n.trim_start_matches('R')
                    .split('.')
                    .all(|d| d.parse::<u32>().is_ok())
        });
        if !line.starts_with("   ") || !numbered {
            continue;
        }
        rows += 1;
        for title in ["Build ", "Watch ", "Undo it"] {
            if let Some(at) = line.find(title) {
                title_columns.insert(line[..at].chars().count());
            }
        }
        let id_shown = ["build-", "watch-", "undo-it"].iter().any(|id| line.contains(id));
        assert!(id_shown, "no step id in {line:?}\n{out}");
    }
    assert_eq!(rows, 23, "{out}");
    assert_eq!(
        title_columns.len(),
        1,
        "titles start in columns {title_columns:?}:\n{out}"
    );
    // A step's detail line (its command) starts in the title's column too.
    let col = *title_columns.iter().next().unwrap();
    let detail = out
        .lines()
        .find(|l| l.trim_start().starts_with("$ echo 11"))
        .unwrap();
    assert_eq!(detail.find('$'), Some(col), "detail misaligned:\n{out}");
}

#[test]
fn plan_does_not_cut_a_derived_id_mid_word() {
    let fx = Fixture::new();
    let title = "Checkout error rate stays above the agreed thresholds for much longer than the window which is acceptable";
    let rb = fx.write(
        "long.toml",
        &format!("{ONE_STEP}\n[[trigger]]\ntitle = \"{title}\"\n",),
    );
    let (code, out, err) = cli(fx.path(), &["plan", rb.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let full = "checkout-error-rate-stays-above-the-agreed-thresholds-for-much-longer-than-the-window-which-is-acceptable";
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("checkout-error-rate"))
        .unwrap_or_else(|| panic!("no trigger row:\n{out}"));
    let id = line.split_whitespace().next().unwrap();
    assert!(id.len() <= 64, "{id}");
    assert!(full.starts_with(id), "{id}");
    assert_eq!(&full[id.len()..id.len() + 1], "-", "id {id} is cut mid-word");
}

#[test]
fn plan_with_an_unknown_var_says_runbook_first() {
    let fx = Fixture::new();
    let rb = fx.write("one.toml", ONE_STEP);
    let (code, _, err) = cli(fx.path(), &["plan", "--var", "nope=1", rb.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("runbook: --var nope"), "{err}");
    let (code, _, err) = cli(fx.path(), &["plan", "no-such.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("runbook: no-such.toml: no such file"), "{err}");
}
#[test]
fn run_of_a_missing_file_prints_the_error_alone() {
    let fx = Fixture::new();
    for cmd in ["run", "rehearse"] {
        let (code, out, err) = cli(fx.path(), &[cmd, "no-such.toml"]);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(out, "");
        assert_eq!(err, "runbook: no-such.toml: no such file\n", "{cmd}");
    }
}

#[test]
fn positional_arguments_have_help() {
    let fx = Fixture::new();
    for cmd in ["run", "rehearse", "validate", "plan"] {
        let (code, out, _) = cli(fx.path(), &[cmd, "--help"]);
        assert_eq!(code, Some(0));
        let arg = out
            .lines()
            .skip_while(|l| !l.starts_with("Arguments:"))
            .nth(1)
            .unwrap_or_else(|| panic!("no arguments in {cmd} --help:\n{out}"));
        let help = arg.trim().split_once("  ").map(|(_, h)| h.trim()).unwrap_or("");
        assert!(!help.is_empty(), "{cmd}: {arg:?} has no help:\n{out}");
    }
}
