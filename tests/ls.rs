//! `runbook ls`: the runs of a state dir, with their driver and where each stands, as text (80
//! columns, aligned) and as JSON — over a live run, a run whose driver was killed with SIGKILL
//! (its lock is stale), and finished runs. Real runs of the real binary.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Fixture, journal_now, wait_for};
use serde_json::Value;

const RUNBOOK: &str = r#"
[runbook]
title = "Checkout rollout"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "canary"
title = "Canary"
run = "echo $$ > canary.pid; echo started; sleep 60"

[[phase.step]]
id = "check"
title = "Check the dashboards"
manual = true
"#;

const QUICK: &str = r#"
[runbook]
title = "Quick fix"

[[phase]]
id = "fix"
title = "Fix"

[[phase.step]]
id = "apply"
title = "Apply"
run = "echo applied"
"#;

const FAILING: &str = r#"
[runbook]
title = "Failing fix"

[[phase]]
id = "fix"
title = "Fix"

[[phase.step]]
id = "apply"
title = "Apply"
run = "exit 3"
"#;

/// `runbook ls ARGS --state-dir STATE` with `COLUMNS=80` (stdout is a pipe).
fn ls(f: &Fixture, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("ls")
        .args(args)
        .arg("--state-dir")
        .arg(f.state())
        .env("COLUMNS", "80")
        .stdin(Stdio::null())
        .output()
        .expect("run runbook ls");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ls_json(f: &Fixture) -> Vec<Value> {
    let (code, out, err) = ls(f, &["--format", "json"]);
    assert_eq!(code, 0, "ls --format json failed: {err}");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
        .as_array()
        .expect("a list of runs")
        .clone()
}

/// A headless driver as `USER`, in the background; waits until its step runs.
fn drive(f: &Fixture, file: &Path, user: &str, step_started: &str) -> Child {
    let mut cmd = f.cli_command(file, &[], &[("USER", user)]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let before = f.run_dirs();
    let child = cmd.spawn().expect("spawn runbook run");
    let started = wait_for(Duration::from_secs(20), || {
        f.run_dirs().iter().filter(|d| !before.contains(d)).any(|d| {
            journal_now(&d.join("journal.jsonl"))
                .iter()
                .any(|e| e["event"] == "step_started" && e["step"] == step_started)
        })
    });
    assert!(started, "the driver never started {step_started}");
    child
}

fn run_id(j: &Value) -> String {
    j["id"].as_str().expect("id").to_string()
}

/// Kills the step a SIGKILLed driver left running under its monitor (its shell wrote its pid).
fn end_step(f: &Fixture) {
    if let Ok(pid) = f.read("canary.pid").trim().parse::<i32>() {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

#[test]
fn live_stale_and_finished_runs_are_listed_with_their_driver_and_where_they_stand() {
    let f = Fixture::new();
    let quick = f.write("quick.toml", QUICK);
    f.run_cli_env(&quick, &[], &[("USER", "carol")]).expect_code(0);
    let failing = f.write("failing.toml", FAILING);
    f.run_cli_env(&failing, &[], &[("USER", "carol")]).expect_code(1);
    let rb = f.write("checkout.toml", RUNBOOK);
    let mut stale = drive(&f, &rb, "bob", "canary");
    assert!(wait_for(Duration::from_secs(10), || !f
        .read("canary.pid")
        .trim()
        .is_empty()));
    stale.kill().expect("kill -9 the driver");
    let _ = stale.wait();
    end_step(&f);
    let _ = std::fs::remove_file(f.file("canary.pid"));
    let mut live = drive(&f, &rb, "alice", "canary");

    let runs = ls_json(&f);
    assert_eq!(runs.len(), 4, "{runs:#?}");
    let by_title = |t: &str, user: &str| -> Value {
        runs.iter()
            .find(|r| r["title"] == t && r["driver"]["operator"] == user)
            .unwrap_or_else(|| panic!("no {t} run of {user}: {runs:#?}"))
            .clone()
    };
    let l = by_title("Checkout rollout", "alice");
    assert_eq!(l["driver"]["alive"], "alive", "{l:#}");
    assert_eq!(l["driver"]["pid"], live.id());
    assert_eq!(l["stale"], false);
    assert_eq!(l["state"], "running");
    assert_eq!(l["step"]["phase"], "deploy");
    assert_eq!(l["step"]["step"], "canary");
    assert_eq!(l["text"], "running deploy/canary");
    assert!(l.get("next").is_none(), "{l:#}");

    let s = by_title("Checkout rollout", "bob");
    assert_eq!(s["driver"]["alive"], "gone", "{s:#}");
    assert_eq!(s["stale"], true);
    assert_eq!(s["state"], "running", "the journal's last word: {s:#}");
    let stale_id = run_id(&s);
    assert_eq!(
        s["next"],
        format!("runbook takeover {stale_id} --reason …"),
        "{s:#}"
    );

    let q = by_title("Quick fix", "carol");
    assert_eq!(q["state"], "finished");
    assert_eq!(q["outcome"], "succeeded");
    assert_eq!(q["exit_code"], 0);
    assert_eq!(q["stale"], false);
    assert_eq!(q["driver"]["alive"], "gone");
    let x = by_title("Failing fix", "carol");
    assert_eq!(x["outcome"], "failed");
    assert!(
        x["next"]
            .as_str()
            .is_some_and(|n| n.starts_with("runbook resume ")),
        "a stopped run says how to go on: {x:#}"
    );

    // The text: a header and a line of aligned columns per run, then the title and where it
    // stands, then what to type when nobody drives it; nothing wider than 80 columns.
    let (code, text, err) = ls(&f, &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l:?}\n{text}");
    }
    let head = lines[0];
    assert!(head.starts_with("RUN "), "{text}");
    let col = |name: &str| {
        head.find(name)
            .unwrap_or_else(|| panic!("no {name} column: {head}"))
    };
    let (started, driver, state) = (col("STARTED"), col("DRIVER"), col("STATE"));
    let row = |id: &str| -> usize {
        lines
            .iter()
            .position(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{text}"))
    };
    let live_id = run_id(&l);
    let r = row(&live_id);
    let live_row = lines[r];
    assert_eq!(&live_row[driver..driver + 6], "alice@", "{text}");
    assert_eq!(&live_row[state..], "live", "{text}");
    assert!(
        live_row[started..].starts_with(&l["started"].as_str().unwrap()[5..10]),
        "{text}"
    );
    assert_eq!(
        lines[r + 1],
        "  Checkout rollout: running deploy/canary",
        "{text}"
    );

    let r = row(&stale_id);
    assert_eq!(&lines[r][state..], "STALE", "{text}");
    assert!(
        lines[r + 1].starts_with("  Checkout rollout: driver gone (stale lock) — was running deploy/canary"),
        "{text}"
    );
    assert_eq!(
        lines[r + 2],
        format!("  take over: runbook takeover {stale_id} --reason …"),
        "{text}"
    );
    let r = row(&run_id(&q));
    assert_eq!(&lines[r][state..], "ended", "{text}");
    assert_eq!(lines[r + 1], "  Quick fix: succeeded", "{text}");

    // The live driver goes on untouched by being listed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(live.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the driver");
    let status = live.wait().expect("driver exit");
    assert_eq!(status.code(), Some(130));
    let after = ls_json(&f);
    let l = after
        .iter()
        .find(|r| r["id"] == live_id.as_str())
        .expect("the run");
    assert_eq!(l["outcome"], "interrupted", "{l:#}");
    assert_eq!(l["stale"], false);
}

#[test]
fn an_empty_state_dir_says_so_and_json_is_an_empty_list() {
    let f = Fixture::new();
    let (code, out, err) = ls(&f, &[]);
    assert_eq!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("no runs in"), "{err}");
    assert_eq!(ls_json(&f), Vec::<Value>::new());
}

#[test]
fn attach_without_a_live_run_names_the_problem() {
    let f = Fixture::new();
    let quick = f.write("quick.toml", QUICK);
    f.run_cli(&quick, &[]).expect_code(0);
    let state = f.state();
    let state = state.to_str().unwrap();
    let out = common::runbook(&["attach", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no live run in"), "{err}");
    let out = common::runbook(&["attach", "nosuchrun", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no run `nosuchrun`"), "{err}");
}

#[test]
fn a_step_waiting_for_approvals_is_listed_with_who_may_approve() {
    let f = Fixture::new();
    let rb = f.write(
        "approve.toml",
        r#"
[runbook]
title = "Four eyes"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "ship"
title = "Ship it"
run = "echo shipped"
approval = { count = 1 }
approvers = ["dana", "erin"]
"#,
    );
    let mut cmd = f.cli_command(&rb, &[], &[("USER", "alice")]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut driver = cmd.spawn().expect("spawn the driver");
    // The journal says nothing of the wait: ls asks the driver.
    let listed = wait_for(Duration::from_secs(20), || {
        let (_, text, _) = ls(&f, &[]);
        text.contains("deploy/ship is waiting for 1 approval (dana, erin may approve)")
    });
    let (_, text, _) = ls(&f, &[]);
    let waiting = ls_json(&f);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = driver.wait();
    assert!(listed, "{text}");
    assert_eq!(waiting[0]["state"], "waiting", "{waiting:#?}");
    assert_eq!(waiting[0]["waiting_for"], "approvals");
    assert_eq!(waiting[0]["step"]["step"], "ship");
    let runs = ls_json(&f);
    assert_eq!(runs[0]["state"], "finished", "{runs:#?}");
}
