//! `runbook resume` with the real binary (issue 5, SPEC §1, §4, §5): a run stopped by a signal, a
//! failed step, a waiting manual step, a crash or a hung-up terminal goes on from its journal;
//! finished steps never run again (steps append to counter files to prove what ran and how
//! often); a changed runbook is refused unless `--force`; one `runbook` drives a run at a time;
//! a torn last journal line is ignored; an interrupted rollback goes on with the rollback; and
//! SIGHUP (the real terminal UI in tmux, its server killed mid-step) lets the step finish.
//!
//! Every run uses a temporary state folder (`--state-dir`) and runbooks in a temporary folder.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::tmux::TmuxServer;
use common::*;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers

/// One step, a long one that appends to `long.cnt` before it sleeps, and one after it. With a
/// `[rollback]` procedure, so that the operator can roll back from the interrupted step.
const THREE_STEPS: &str = r#"
[runbook]
title = "Resume drill"

[[phase]]
id = "prep"
title = "Preparation"

[[phase.step]]
id = "one"
title = "First"
run = "echo x >> one.cnt"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "long"
title = "Long step"
run = "echo x >> long.cnt; sleep 5; echo x >> long.done"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"

[rollback]
title = "Back out"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "echo x >> revert.cnt"
"#;

/// A runbook whose middle step fails until the file `fixed` exists (`on_failure` as given).
fn failing_runbook(title: &str, on_failure: &str) -> String {
    format!(
        r#"
[runbook]
title = "{title}"

[[phase]]
id = "prep"
title = "Preparation"

[[phase.step]]
id = "one"
title = "First"
run = "echo x >> one.cnt"

[[phase.step]]
id = "check"
title = "Check the config"
run = "echo x >> check.cnt; test -f fixed"
on_failure = "{on_failure}"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"

[rollback]
title = "Back out"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "echo x >> revert.cnt"
"#
    )
}

/// How many lines a step appended to a counter file.
fn count(fx: &Fixture, name: &str) -> usize {
    fx.read(name).lines().count()
}

fn journal_path(run_dir: &Path) -> PathBuf {
    run_dir.join("journal.jsonl")
}

/// Whether the journal has the `step_started` of `phase/step` with this attempt.
fn has_started(j: &[Value], name: &str, attempt: u64) -> bool {
    j.iter()
        .any(|e| e["event"] == "step_started" && step_name(e) == name && e["attempt"] == attempt)
}

/// Waits until a run folder holds a journal showing `name` started (attempt `attempt`) and the
/// step wrote `marker` (so that it really began); returns the run folder.
fn wait_step_running(fx: &Fixture, name: &str, attempt: u64, marker: &str) -> PathBuf {
    let mut found = None;
    let ok = wait_for(Duration::from_secs(15), || {
        found = fx
            .run_dirs()
            .into_iter()
            .find(|d| has_started(&journal_now(&journal_path(d)), name, attempt));
        // Written, not only there: `echo x >> FILE` creates the file a moment before it writes.
        found.is_some() && !fx.read(marker).is_empty()
    });
    assert!(
        ok,
        "{name} (attempt {attempt}) did not start within 15 s; run folders: {:?}",
        fx.run_dirs()
    );
    found.unwrap()
}

/// Sends `sig` to a child and waits for it to exit.
fn signal_and_wait(child: Child, sig: Signal) -> CliRun {
    let started = Instant::now();
    kill(Pid::from_raw(child.id() as i32), sig).expect("signal runbook");
    CliRun::new(wait_output(child, Duration::from_secs(30)), started.elapsed())
}

/// Starts THREE_STEPS-like runbook `file` and interrupts it with SIGINT while `deploy/long` runs.
/// Returns the run folder.
fn run_until_sigint(fx: &Fixture, file: &Path, args: &[&str]) -> PathBuf {
    let child = fx.spawn_run(file, args);
    let dir = wait_step_running(fx, "deploy/long", 1, "long.cnt");
    let r = signal_and_wait(child, Signal::SIGINT);
    r.expect_code(130);
    let j = journal_json(&journal_path(&dir));
    let f = last_finished(&j, "deploy/long");
    assert_eq!(f["status"], "interrupted", "{f}");
    assert_eq!(f["attempt"], 1);
    let fin = j.last().unwrap();
    assert_eq!(fin["event"], "run_finished");
    assert_eq!(fin["outcome"], "interrupted");
    assert_eq!(fin["exit_code"], 130);
    dir
}

/// Whether the library finds the run resumable (it did not succeed or get rolled back).
fn resumable(run_dir: &Path) -> bool {
    let (records, _) = runbook::journal::read(&journal_path(run_dir)).expect("read journal");
    let info = runbook::journal::resume::info(&records).expect("run_started");
    runbook::journal::resume::resumable(&info)
}

fn run_started(j: &[Value]) -> Vec<&Value> {
    events(j, "run_started")
}

fn outcomes(j: &[Value]) -> Vec<String> {
    events(j, "run_finished")
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Every line of the journal is a whole JSON object and the file ends with a newline.
fn assert_valid_json_lines(path: &Path) {
    let bytes = file_bytes(path);
    assert!(
        bytes.ends_with(b"\n"),
        "{} does not end with a newline",
        path.display()
    );
    let text = String::from_utf8(bytes).expect("journal is UTF-8");
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line:?}", path.display(), i + 1));
        assert!(
            v["ts"].is_string() && v["event"].is_string(),
            "line {}: {line}",
            i + 1
        );
    }
}

/// `user@host (pid N)`: how a lock holder is named.
fn holder(pid: u32) -> String {
    format!(
        "{}@{} (pid {pid})",
        runbook::session::operator(),
        runbook::session::host()
    )
}

// ---------------------------------------------------------------------------------------------
// SIGINT mid-step, then resume

#[test]
fn sigint_mid_step_then_resume_yes_runs_it_again_and_nothing_twice() {
    let fx = Fixture::new();
    let rb = fx.write("drill.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);
    assert_eq!((count(&fx, "one.cnt"), count(&fx, "long.cnt")), (1, 1));
    assert!(!fx.exists("three.cnt") && !fx.exists("long.done"));
    assert!(resumable(&dir));

    // Headless without --yes: nobody is there to decide about the interrupted step.
    let r = fx.resume(&[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("deploy/long") && r.stderr.contains("--yes"),
        "stderr must name the step and --yes:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&dir.display().to_string()),
        "resume names the run it picked:\n{}",
        r.stderr
    );
    assert_eq!(count(&fx, "long.cnt"), 1, "nothing ran");
    assert!(!fx.exists("three.cnt"));
    assert!(resumable(&dir), "the run is still resumable");
    let j = journal_json(&journal_path(&dir));
    assert_eq!(outcomes(&j), ["interrupted", "aborted"]);
    assert_eq!(started(&j), ["prep/one#1", "deploy/long#1"], "no step started");

    // --yes: the interrupted step runs again as attempt 2, the rest goes on.
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("deploy/long") && r.stdout.contains("(attempt 2)"),
        "{}",
        r.stdout
    );
    assert_eq!(count(&fx, "one.cnt"), 1, "a finished step ran again");
    assert_eq!(count(&fx, "long.cnt"), 2, "the interrupted step runs once more");
    assert_eq!(count(&fx, "long.done"), 1);
    assert_eq!(count(&fx, "three.cnt"), 1);

    let j = journal_json(&journal_path(&dir));
    assert_eq!(
        fx.run_dirs(),
        std::slice::from_ref(&dir),
        "resuming appends to the same run folder"
    );
    assert_eq!(
        started(&j),
        ["prep/one#1", "deploy/long#1", "deploy/long#2", "deploy/three#1"]
    );
    let again = finished(&j, "deploy/long");
    assert_eq!(again.len(), 2);
    assert_eq!(again[1]["status"], "succeeded");
    assert_eq!(again[1]["attempt"], 2);
    assert_eq!(again[1]["by"], "auto", "--yes decided it: {}", again[1]);
    assert_eq!(last_finished(&j, "deploy/three")["status"], "succeeded");
    assert_eq!(outcomes(&j), ["interrupted", "aborted", "succeeded"]);
    let last = j.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["exit_code"].as_i64()),
        (Some("run_finished"), Some(0))
    );

    // Each session began with run_started: the first "run", then "resume", same runbook and file.
    let s = run_started(&j);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0]["mode"], "run");
    for later in &s[1..] {
        assert_eq!(later["mode"], "resume", "{later}");
        for key in ["runbook", "title", "file", "sha256"] {
            assert_eq!(later[key], s[0][key], "{key} differs: {later}");
        }
    }
    assert_eq!(s[0]["runbook"], "drill");
    assert_eq!(s[0]["sha256"].as_str().map(str::len), Some(64));
    assert!(!resumable(&dir));

    // Nothing is left to resume.
    let r = fx.resume(&[]);
    r.expect_code(2);
    assert!(r.stderr.contains("no unfinished run"), "{}", r.stderr);
    let named = fx.resume(&[dir.to_str().unwrap()]);
    named.expect_code(2);
    assert!(named.stderr.contains("nothing to resume"), "{}", named.stderr);
    assert_eq!(
        journal_json(&journal_path(&dir)).len(),
        j.len(),
        "nothing appended"
    );
    assert_eq!(count(&fx, "three.cnt"), 1);
}

// ---------------------------------------------------------------------------------------------
// Which run

/// Waits until the UTC second changes, so that the next run folder sorts after the previous one.
fn next_second() {
    let secs = || {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let s = secs();
    while secs() == s {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A run that stops on its failing step (exit 1): resumable.
fn failed_run(fx: &Fixture, file: &Path) -> PathBuf {
    let before = fx.run_dirs();
    fx.run_cli(file, &[]).expect_code(1);
    let dirs: Vec<PathBuf> = fx
        .run_dirs()
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert_eq!(dirs.len(), 1, "one new run folder: {dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[test]
fn resume_by_journal_file_or_by_run_folder() {
    let fx = Fixture::new();
    let a = fx.write("alpha.toml", &failing_runbook("Alpha", "ask"));
    let b = fx.write("beta.toml", &failing_runbook("Beta", "ask"));
    let dir_a = failed_run(&fx, &a);
    next_second();
    let dir_b = failed_run(&fx, &b);
    assert_eq!(count(&fx, "check.cnt"), 2);
    fx.write("fixed", "");

    // Naming the older run's journal file resumes that run, not the latest one.
    let journal_a = journal_path(&dir_a);
    let r = fx.resume(&[journal_a.to_str().unwrap(), "--yes"]);
    r.expect_code(0);
    let ja = journal_json(&journal_a);
    assert_eq!(outcomes(&ja), ["failed", "succeeded"]);
    assert_eq!(run_started(&ja)[1]["title"], "Alpha");
    assert_eq!(run_started(&ja)[1]["mode"], "resume");
    assert!(resumable(&dir_b), "the other run is untouched");
    assert_eq!(outcomes(&journal_json(&journal_path(&dir_b))), ["failed"]);
    assert_eq!((count(&fx, "check.cnt"), count(&fx, "three.cnt")), (3, 1));

    // Naming the run folder.
    let r = fx.resume(&[dir_b.to_str().unwrap(), "--yes"]);
    r.expect_code(0);
    let jb = journal_json(&journal_path(&dir_b));
    assert_eq!(outcomes(&jb), ["failed", "succeeded"]);
    assert_eq!(run_started(&jb)[1]["title"], "Beta");
    assert_eq!((count(&fx, "check.cnt"), count(&fx, "three.cnt")), (4, 2));
    assert_eq!(count(&fx, "one.cnt"), 2, "each run's first step ran once");

    // A name that is neither.
    let r = fx.resume(&["no/such/journal.jsonl"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no/such/journal.jsonl"), "{}", r.stderr);
}

#[test]
fn resume_by_a_relative_journal_name_from_inside_the_run_folder() {
    let fx = Fixture::new();
    let rb = fx.write("rel.toml", &failing_runbook("Relative", "ask"));
    let dir = failed_run(&fx, &rb);
    fx.write("fixed", "");
    let mut cmd = fx.resume_command(&["journal.jsonl", "--yes"]);
    cmd.current_dir(&dir);
    let r = CliRun::new(
        wait_output(cmd.spawn().expect("spawn"), Duration::from_secs(30)),
        Duration::ZERO,
    );
    r.expect_code(0);
    assert_eq!(
        outcomes(&journal_json(&journal_path(&dir))),
        ["failed", "succeeded"]
    );
    assert_eq!(count(&fx, "three.cnt"), 1);
}

#[test]
fn resume_without_a_name_picks_the_latest_unfinished_run() {
    let fx = Fixture::new();
    let a = fx.write("alpha.toml", &failing_runbook("Alpha", "ask"));
    let b = fx.write("beta.toml", &failing_runbook("Beta", "ask"));
    let ok = fx.write(
        "done.toml",
        "[runbook]\ntitle = \"Done\"\n\n[[phase]]\nid = \"p\"\ntitle = \"P\"\n\n[[phase.step]]\nid = \"s\"\ntitle = \"S\"\nrun = \"true\"\n",
    );
    let dir_a = failed_run(&fx, &a);
    next_second();
    let dir_b = failed_run(&fx, &b);
    next_second();
    // The newest run succeeded: it is not a candidate.
    fx.run_cli(&ok, &[]).expect_code(0);
    assert_eq!(fx.run_dirs().len(), 3);
    fx.write("fixed", "");

    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains(&format!(
            "resuming the latest unfinished run: {}",
            dir_b.display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        outcomes(&journal_json(&journal_path(&dir_b))),
        ["failed", "succeeded"]
    );
    assert_eq!(outcomes(&journal_json(&journal_path(&dir_a))), ["failed"]);

    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert!(r.stderr.contains(&dir_a.display().to_string()), "{}", r.stderr);
    assert_eq!(
        outcomes(&journal_json(&journal_path(&dir_a))),
        ["failed", "succeeded"]
    );

    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no unfinished run"), "{}", r.stderr);
    assert_eq!(count(&fx, "three.cnt"), 2);
}

#[test]
fn resume_with_an_empty_state_dir_says_there_is_no_unfinished_run() {
    let fx = Fixture::new();
    let r = fx.resume(&[]);
    r.expect_code(2);
    assert!(r.stderr.contains("no unfinished run"), "{}", r.stderr);
    assert!(fx.run_dirs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// A manual step, a failed step

const MANUAL: &str = r#"
[runbook]
title = "Manual gate"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "one"
title = "First"
run = "echo x >> one.cnt"

[[phase.step]]
id = "gate"
title = "Dashboards look healthy"
manual = "Check the dashboards"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"
"#;

/// Headless without --yes stops at the manual step (exit 1), saying why.
fn stopped_at_manual(fx: &Fixture) -> PathBuf {
    let rb = fx.write("manual.toml", MANUAL);
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("p/gate") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    assert_eq!(count(fx, "one.cnt"), 1);
    assert!(!fx.exists("three.cnt"));
    fx.run_dir()
}

#[test]
fn a_run_stopped_at_a_manual_step_is_resumable_and_resume_without_yes_stops_there_again() {
    let fx = Fixture::new();
    let dir = stopped_at_manual(&fx);
    assert!(resumable(&dir));
    let r = fx.resume(&[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("p/gate") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&fx, "one.cnt"), 1, "the finished step did not run again");
    assert!(!fx.exists("three.cnt"));
    assert!(resumable(&dir));
}

#[test]
fn resume_yes_confirms_the_manual_step_the_run_stopped_at() {
    let fx = Fixture::new();
    let dir = stopped_at_manual(&fx);
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    let j = journal_json(&journal_path(&dir));
    let gate = last_finished(&j, "p/gate");
    assert_eq!(gate["status"], "confirmed", "{gate}");
    assert_eq!(gate["by"], "auto");
    assert_eq!((count(&fx, "one.cnt"), count(&fx, "three.cnt")), (1, 1));
    assert_eq!(outcomes(&j), ["aborted", "succeeded"]);
}

/// MANUAL run headless with a terminal on stdin, so that it waits at p/gate; returns it waiting.
fn waiting_at_manual(fx: &Fixture) -> (Interactive, PathBuf) {
    let rb = fx.write("manual.toml", MANUAL);
    let mut ui = Interactive::spawn(fx.cli_command(&rb, &[], &[]));
    ui.expect("[Enter] confirm", 1);
    let dir = fx.run_dir();
    assert!(has_started(&journal_json(&journal_path(&dir)), "p/gate", 1));
    assert_eq!(count(fx, "one.cnt"), 1);
    (ui, dir)
}

#[test]
fn a_manual_step_waiting_when_runbook_was_killed_is_confirmed_by_resume_yes() {
    let fx = Fixture::new();
    let (ui, dir) = waiting_at_manual(&fx);
    kill(Pid::from_raw(ui.child.id() as i32), Signal::SIGKILL).unwrap();
    let (code, _, _) = ui.finish();
    assert_eq!(code, None);
    let j = journal_json(&journal_path(&dir));
    assert!(finished(&j, "p/gate").is_empty() && events(&j, "run_finished").is_empty());

    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    let j = journal_json(&journal_path(&dir));
    let gate = last_finished(&j, "p/gate");
    assert_eq!(
        (gate["status"].as_str(), gate["by"].as_str()),
        (Some("confirmed"), Some("auto")),
        "{gate}"
    );
    assert_eq!((count(&fx, "one.cnt"), count(&fx, "three.cnt")), (1, 1));
    assert_eq!(outcomes(&j).last().map(String::as_str), Some("succeeded"));
}

#[test]
fn a_manual_step_waiting_at_sigint_is_confirmed_by_resume_yes() {
    let fx = Fixture::new();
    let (ui, dir) = waiting_at_manual(&fx);
    kill(Pid::from_raw(ui.child.id() as i32), Signal::SIGINT).unwrap();
    let (code, _, err) = ui.finish();
    assert_eq!(code, Some(130), "{err}");
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    let j = journal_json(&journal_path(&dir));
    let gate = last_finished(&j, "p/gate");
    assert_eq!(
        (gate["status"].as_str(), gate["by"].as_str()),
        (Some("confirmed"), Some("auto")),
        "{gate}"
    );
    assert_eq!((count(&fx, "one.cnt"), count(&fx, "three.cnt")), (1, 1));
}

#[test]
fn a_run_stopped_on_a_failed_step_goes_on_once_the_cause_is_fixed() {
    let fx = Fixture::new();
    let rb = fx.write("failing.toml", &failing_runbook("Failing", "ask"));
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(1);
    let dir = fx.run_dir();
    let j = journal_json(&journal_path(&dir));
    assert_eq!(last_finished(&j, "prep/check")["status"], "failed");
    assert_eq!(outcomes(&j), ["failed"]);
    assert!(resumable(&dir));

    // Still broken: without --yes, headless says why and stops.
    let r = fx.resume(&[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("prep/check") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&fx, "check.cnt"), 1);

    // Fix the cause, then resume: the failed step runs again and the run succeeds.
    fx.write("fixed", "");
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert_eq!(count(&fx, "one.cnt"), 1, "a finished step ran again");
    assert_eq!(count(&fx, "check.cnt"), 2);
    assert_eq!(count(&fx, "three.cnt"), 1);
    let j = journal_json(&journal_path(&dir));
    let checks = finished(&j, "prep/check");
    assert_eq!(checks.len(), 2);
    assert_eq!(
        (checks[1]["status"].as_str(), checks[1]["attempt"].as_u64()),
        (Some("succeeded"), Some(2))
    );
    assert_eq!(outcomes(&j), ["failed", "aborted", "succeeded"]);
    assert!(!resumable(&dir));
}

// ---------------------------------------------------------------------------------------------
// The runbook changed

#[test]
fn a_changed_runbook_is_refused_unless_force() {
    let fx = Fixture::new();
    let text = failing_runbook("Changing", "ask");
    let rb = fx.write("changing.toml", &text);
    fx.run_cli(&rb, &[]).expect_code(1);
    let dir = fx.run_dir();
    let journal = journal_path(&dir);
    let before = file_bytes(&journal);
    fx.write("fixed", "");

    // A title edited.
    fx.write(
        "changing.toml",
        &text.replace("title = \"Third\"", "title = \"Third, renamed\""),
    );
    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    for needle in [
        "changed since the run started",
        "changing.toml",
        "step prep/three edited: title \"Third\" → \"Third, renamed\"",
        "--force",
    ] {
        assert!(
            r.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            r.stderr
        );
    }
    assert_eq!(file_bytes(&journal), before, "a refused resume appends nothing");
    assert_eq!((count(&fx, "check.cnt"), count(&fx, "three.cnt")), (1, 0));

    // A step added (a phase before [rollback]).
    let added = {
        let (head, tail) = text.split_at(text.find("[rollback]").unwrap());
        format!(
            "{head}[[phase]]\nid = \"extra\"\ntitle = \"Extra\"\n\n[[phase.step]]\nid = \"four\"\n\
             title = \"Fourth\"\nrun = \"echo x >> four.cnt\"\n\n{tail}"
        )
    };
    fx.write("changing.toml", &added);
    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("changed since the run started")
            && r.stderr.contains("  - step extra/four added (\"Fourth\")\n")
            && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("sha256"),
        "what changed, not two hashes:\n{}",
        r.stderr
    );
    assert_eq!(file_bytes(&journal), before);

    // --force goes on with the file as it is now, saying so.
    let r = fx.resume(&["--yes", "--force"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("--force") && r.stderr.contains("changing.toml"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&fx, "one.cnt"), 1);
    assert_eq!(count(&fx, "check.cnt"), 2);
    assert_eq!(count(&fx, "three.cnt"), 1);
    assert_eq!(count(&fx, "four.cnt"), 1, "the added step ran");
    let j = journal_json(&journal);
    let s = run_started(&j);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1]["mode"], "resume");
    assert_ne!(
        s[1]["sha256"], s[0]["sha256"],
        "the resumed session records the file as it is now"
    );
    assert_eq!(outcomes(&j), ["failed", "succeeded"]);
}

#[test]
fn a_step_the_journal_knows_that_was_deleted_from_the_runbook_is_named() {
    let fx = Fixture::new();
    let text = failing_runbook("Shrinking", "ask");
    let rb = fx.write("shrinking.toml", &text);
    fx.run_cli(&rb, &[]).expect_code(1);
    let dir = fx.run_dir();
    fx.write("fixed", "");
    // Delete prep/one, which ran.
    let one = "[[phase.step]]\nid = \"one\"\ntitle = \"First\"\nrun = \"echo x >> one.cnt\"\n";
    assert!(text.contains(one));
    fx.write("shrinking.toml", &text.replace(one, ""));

    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("  - step prep/one removed (\"First\")\n"),
        "the deleted step is named:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(outcomes(&journal_json(&journal_path(&dir))), ["failed"]);

    let r = fx.resume(&["--yes", "--force"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("prep/one"),
        "the forced resume repeats what changed:\n{}",
        r.stderr
    );
    assert_eq!(
        (
            count(&fx, "one.cnt"),
            count(&fx, "check.cnt"),
            count(&fx, "three.cnt")
        ),
        (1, 2, 1)
    );
}

#[test]
fn a_runbook_file_that_is_gone_is_named() {
    let fx = Fixture::new();
    let rb = fx.write("vanishing.toml", &failing_runbook("Vanishing", "ask"));
    fx.run_cli(&rb, &[]).expect_code(1);
    let dir = fx.run_dir();
    let before = file_bytes(&journal_path(&dir));
    std::fs::remove_file(&rb).unwrap();
    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    assert!(r.stderr.contains("vanishing.toml"), "{}", r.stderr);
    assert_eq!(file_bytes(&journal_path(&dir)), before);
}

// ---------------------------------------------------------------------------------------------
// Runs that ended

#[test]
fn a_run_that_succeeded_has_nothing_to_resume_and_force_runs_nothing_again() {
    let fx = Fixture::new();
    let rb = fx.write("fine.toml", &failing_runbook("Fine", "ask"));
    fx.write("fixed", "");
    fx.run_cli(&rb, &[]).expect_code(0);
    let dir = fx.run_dir();

    let r = fx.resume(&[dir.to_str().unwrap()]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("succeeded")
            && r.stderr.contains("nothing to resume")
            && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    let r = fx.resume(&[]);
    r.expect_code(2);
    assert!(r.stderr.contains("no unfinished run"), "{}", r.stderr);
    assert_eq!(outcomes(&journal_json(&journal_path(&dir))), ["succeeded"]);

    // --force: a resumed session that finds every step done and runs none of them again.
    let r = fx.resume(&[dir.to_str().unwrap(), "--force", "--yes"]);
    r.expect_code(0);
    assert_eq!(
        (
            count(&fx, "one.cnt"),
            count(&fx, "check.cnt"),
            count(&fx, "three.cnt")
        ),
        (1, 1, 1)
    );
    let j = journal_json(&journal_path(&dir));
    assert_eq!(outcomes(&j), ["succeeded", "succeeded"]);
    assert_eq!(run_started(&j)[1]["mode"], "resume");
    assert_eq!(started(&j).len(), 3, "no step started in the forced session");
}

#[test]
fn a_run_that_was_rolled_back_has_nothing_to_resume() {
    let fx = Fixture::new();
    let rb = fx.write("back.toml", &failing_runbook("Back", "rollback"));
    fx.run_cli(&rb, &[]).expect_code(3);
    let dir = fx.run_dir();
    assert_eq!(count(&fx, "revert.cnt"), 1);
    let r = fx.resume(&[dir.to_str().unwrap(), "--yes"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("rolled_back") && r.stderr.contains("nothing to resume"),
        "{}",
        r.stderr
    );
    let r = fx.resume(&["--yes"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no unfinished run"), "{}", r.stderr);
    assert_eq!(outcomes(&journal_json(&journal_path(&dir))), ["rolled_back"]);
    assert_eq!(
        (
            count(&fx, "check.cnt"),
            count(&fx, "three.cnt"),
            count(&fx, "revert.cnt")
        ),
        (1, 0, 1)
    );
}

#[test]
fn force_on_a_rolled_back_run_runs_the_steps_the_rollback_cancelled() {
    let fx = Fixture::new();
    let rb = fx.write("back.toml", &failing_runbook("Back", "rollback"));
    fx.run_cli(&rb, &[]).expect_code(3);
    let dir = fx.run_dir();
    fx.write("fixed", "");
    let r = fx.resume(&[dir.to_str().unwrap(), "--yes", "--force"]);
    let j = journal_json(&journal_path(&dir));
    if r.code == Some(0) {
        assert_eq!(
            count(&fx, "three.cnt"),
            1,
            "the run says it succeeded, but prep/three (cancelled by the rollback) never ran:\n{:#?}",
            step_trace(&j)
        );
    }
    r.expect_code(0);
}

// ---------------------------------------------------------------------------------------------
// One runbook drives a run at a time

const HOLD: &str = r#"
[runbook]
title = "Holding"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "hold"
title = "Hold the run"
run = "echo x >> hold.cnt; sleep 3"

[[phase.step]]
id = "after"
title = "After"
run = "echo x >> after.cnt"
"#;

#[test]
fn a_second_runbook_on_a_run_in_progress_is_refused_naming_the_holder() {
    let fx = Fixture::new();
    let rb = fx.write("hold.toml", HOLD);
    let child = fx.spawn_run(&rb, &[]);
    let run_pid = child.id();
    let dir = wait_step_running(&fx, "p/hold", 1, "hold.cnt");
    let journal = journal_path(&dir);
    let before = file_bytes(&journal);

    // Named, and picked as the latest unfinished run: both refused, naming who drives it.
    for args in [vec![dir.to_str().unwrap(), "--yes"], vec!["--yes"]] {
        let r = fx.resume(&args);
        r.expect_code(2);
        assert!(
            r.stderr.contains(&holder(run_pid)),
            "stderr must name {}:\n{}",
            holder(run_pid),
            r.stderr
        );
        assert!(r.stderr.contains("only one runbook drives a run"), "{}", r.stderr);
    }
    assert_eq!(file_bytes(&journal), before, "the refused resume wrote nothing");
    assert_eq!(count(&fx, "hold.cnt"), 1);

    // The holder goes on undisturbed; interrupt it.
    let r = signal_and_wait(child, Signal::SIGINT);
    r.expect_code(130);
    assert_valid_json_lines(&journal);

    // A resume holds the run now; a second resume is refused naming it.
    let holder_child = fx.resume_command(&["--yes"]).spawn().expect("spawn resume");
    let resume_pid = holder_child.id();
    wait_step_running(&fx, "p/hold", 2, "hold.cnt");
    let r = fx.resume(&[dir.to_str().unwrap(), "--yes"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains(&holder(resume_pid)),
        "stderr must name {}:\n{}",
        holder(resume_pid),
        r.stderr
    );
    let held = CliRun::new(wait_output(holder_child, Duration::from_secs(30)), Duration::ZERO);
    held.expect_code(0);
    assert_eq!((count(&fx, "hold.cnt"), count(&fx, "after.cnt")), (2, 1));

    assert_valid_json_lines(&journal);
    let j = journal_json(&journal);
    assert_eq!(
        run_started(&j).len(),
        2,
        "only the two sessions that drove the run"
    );
    assert_eq!(outcomes(&j), ["interrupted", "succeeded"]);
    assert_eq!(started(&j), ["p/hold#1", "p/hold#2", "p/after#1"]);
}

#[test]
fn a_run_whose_runbook_was_killed_resumes_the_step_it_had_in_flight() {
    let fx = Fixture::new();
    let rb = fx.write(
        "crash.toml",
        r#"
[runbook]
title = "Crash"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "one"
title = "First"
run = "echo x >> one.cnt"

[[phase.step]]
id = "long"
title = "Long"
run = "echo $$ > long.pid; echo x >> long.cnt; [ -f quick ] || sleep 30"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"
"#,
    );
    let child = fx.spawn_run(&rb, &[]);
    let dir = wait_step_running(&fx, "p/long", 1, "long.cnt");
    // A crash: SIGKILL, no chance to journal anything more.
    let r = signal_and_wait(child, Signal::SIGKILL);
    assert_eq!(r.code, None, "killed by a signal");
    // The step's monitor outlived it (and would have followed it to its end, see tests/crash.rs);
    // end the monitor and the step the way a reboot would.
    let path = dir.join("logs/p--long--1.status");
    assert!(wait_for(Duration::from_secs(10), || std::fs::read_to_string(
        &path
    )
    .is_ok_and(|t| serde_json::from_str::<Value>(&t).is_ok())));
    let status: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = kill(
        Pid::from_raw(status["monitor_pid"].as_i64().unwrap() as i32),
        Signal::SIGKILL,
    );
    let pgid: i32 = fx.read("long.pid").trim().parse().expect("long.pid");
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);

    let journal = journal_path(&dir);
    let j = journal_json(&journal);
    assert!(events(&j, "run_finished").is_empty());
    assert!(finished(&j, "p/long").is_empty());
    assert!(resumable(&dir));

    // The dead holder's lock is free again; the step in flight is the operator's decision.
    let r = fx.resume(&[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("p/long") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    fx.write("quick", "");
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert_eq!(
        (
            count(&fx, "one.cnt"),
            count(&fx, "long.cnt"),
            count(&fx, "three.cnt")
        ),
        (1, 2, 1)
    );
    let j = journal_json(&journal);
    assert_eq!(started(&j), ["p/one#1", "p/long#1", "p/long#2", "p/three#1"]);
    assert_eq!(outcomes(&j), ["aborted", "succeeded"]);
}

// ---------------------------------------------------------------------------------------------
// A torn or corrupted journal

#[test]
fn a_torn_last_journal_line_is_ignored_said_and_cut_off() {
    let fx = Fixture::new();
    let rb = fx.write("torn.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);
    let journal = journal_path(&dir);

    // Power loss: no run_finished, and the last line half written.
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        serde_json::from_str::<Value>(lines.pop().unwrap()).unwrap()["event"],
        "run_finished"
    );
    let last = lines.pop().unwrap();
    assert!(last.contains("\"step_finished\""), "{last}");
    let half = &last[..last.len() / 2];
    let mut torn = lines.join("\n");
    torn.push('\n');
    torn.push_str(half);
    std::fs::write(&journal, &torn).unwrap();
    let whole_lines = lines.len();

    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert!(r.stderr.contains("ignored a torn last line"), "{}", r.stderr);
    assert!(r.stderr.contains("journal.jsonl"), "{}", r.stderr);
    assert_eq!(
        (
            count(&fx, "one.cnt"),
            count(&fx, "long.cnt"),
            count(&fx, "three.cnt")
        ),
        (1, 2, 1)
    );

    assert_valid_json_lines(&journal);
    let after = std::fs::read_to_string(&journal).unwrap();
    assert!(!after.contains(half), "the torn fragment was cut off");
    let j = journal_json(&journal);
    assert!(j.len() > whole_lines);
    assert_eq!(j[whole_lines]["event"], "run_started");
    assert_eq!(j[whole_lines]["mode"], "resume");
    assert_eq!(
        started(&j),
        ["prep/one#1", "deploy/long#1", "deploy/long#2", "deploy/three#1"]
    );
    assert_eq!(outcomes(&j), ["succeeded"]);
}

#[test]
fn a_journal_corrupted_before_its_last_line_is_refused_with_the_line() {
    let fx = Fixture::new();
    let rb = fx.write("bad.toml", &failing_runbook("Corrupt", "ask"));
    fx.run_cli(&rb, &[]).expect_code(1);
    let dir = fx.run_dir();
    let journal = journal_path(&dir);
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = "{\"ts\": garbage".into();
    let corrupted = lines.join("\n") + "\n";
    std::fs::write(&journal, &corrupted).unwrap();
    fx.write("fixed", "");
    let r = fx.resume(&[dir.to_str().unwrap(), "--yes"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("journal.jsonl:3"),
        "names the line:\n{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        corrupted,
        "left as it was"
    );
    assert_eq!(count(&fx, "three.cnt"), 0);
}

// ---------------------------------------------------------------------------------------------
// An interrupted rollback

const SLOW_ROLLBACK: &str = r#"
[runbook]
title = "Slow rollback"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "one"
title = "First"
run = "echo x >> one.cnt"

[[phase.step]]
id = "bad"
title = "Fails"
run = "echo x >> bad.cnt; false"
on_failure = "rollback"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"

[rollback]
title = "Back out"

[[rollback.phase]]
id = "rb"
title = "Rollback"

[[rollback.phase.step]]
id = "slow"
title = "Slow revert"
run = "echo x >> slow.cnt; sleep 5"

[[rollback.phase.step]]
id = "after"
title = "After the revert"
run = "echo x >> after.cnt"
"#;

#[test]
fn a_rollback_interrupted_midway_goes_on_with_the_rollback() {
    let fx = Fixture::new();
    let rb = fx.write("slowback.toml", SLOW_ROLLBACK);
    let child = fx.spawn_run(&rb, &[]);
    let dir = wait_step_running(&fx, "rb/slow", 1, "slow.cnt");
    signal_and_wait(child, Signal::SIGINT).expect_code(130);
    let journal = journal_path(&dir);
    let j = journal_json(&journal);
    assert_eq!(events(&j, "rollback_started").len(), 1);
    assert!(events(&j, "rollback_finished").is_empty());
    assert_eq!(last_finished(&j, "rb/slow")["status"], "interrupted");
    assert_eq!(last_finished(&j, "p/three")["status"], "cancelled");
    assert!(resumable(&dir));

    // Headless without --yes: stops, naming the rollback step; the rollback stays resumable.
    let r = fx.resume(&[]);
    assert!(
        r.stderr.contains("rb/slow") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    // SPEC §1: 4 = "the rollback procedure failed or was aborted".
    r.expect_code(4);
    assert!(resumable(&dir));
    assert_eq!(count(&fx, "slow.cnt"), 1);

    // --yes: the rollback goes on where it was (not the forward steps).
    let r = fx.resume(&["--yes"]);
    r.expect_code(3);
    assert_eq!(count(&fx, "one.cnt"), 1);
    assert_eq!(
        count(&fx, "bad.cnt"),
        1,
        "the forward step that failed is not run again"
    );
    assert_eq!(
        count(&fx, "three.cnt"),
        0,
        "cancelled forward steps stay cancelled"
    );
    assert_eq!(count(&fx, "slow.cnt"), 2);
    assert_eq!(count(&fx, "after.cnt"), 1);
    let j = journal_json(&journal);
    let slow = finished(&j, "rb/slow");
    let last = slow.last().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["rollback"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    assert_eq!(last["attempt"], 2);
    assert_eq!(last_finished(&j, "rb/after")["status"], "succeeded");
    assert_eq!(
        events(&j, "rollback_finished").last().unwrap()["status"],
        "succeeded"
    );
    assert_eq!(outcomes(&j).last().map(String::as_str), Some("rolled_back"));
    let resumed_steps: Vec<String> = {
        let i = j.iter().rposition(|e| e["event"] == "run_started").unwrap();
        started(&j[i..])
    };
    assert_eq!(resumed_steps, ["rb/slow#2", "rb/after#1"]);
    assert!(!resumable(&dir));
}

// ---------------------------------------------------------------------------------------------
// Vars

#[test]
fn the_runs_vars_carry_over_to_the_resume() {
    let fx = Fixture::new();
    let rb = fx.write(
        "vars.toml",
        r#"
[runbook]
title = "Vars"

[vars]
release = "v1"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "long"
title = "Deploy ${release}"
run = "echo \"$release\" >> long.cnt; sleep 5"

[[phase.step]]
id = "three"
title = "Third"
run = "echo \"$release\" >> three.cnt"
"#,
    );
    let dir = run_until_sigint(&fx, &rb, &["--var", "release=v2"]);
    fx.resume(&["--yes"]).expect_code(0);
    assert_eq!(fx.read("long.cnt"), "v2\nv2\n");
    assert_eq!(fx.read("three.cnt"), "v2\n");
    let j = journal_json(&journal_path(&dir));
    for s in run_started(&j) {
        assert_eq!(s["vars"]["release"], "v2", "{s}");
    }
}

// ---------------------------------------------------------------------------------------------
// Headless, with a terminal on stdin: the operator decides about the interrupted step

/// A pseudo-terminal: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two file descriptors into the given ints; the other arguments are null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// `runbook resume --headless` with a terminal on stdin, answered line by line.
struct Interactive {
    child: Child,
    master: File,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(mut r: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

impl Interactive {
    fn start(fx: &Fixture, args: &[&str]) -> Interactive {
        Interactive::spawn(fx.resume_command(args))
    }

    fn spawn(mut cmd: Command) -> Interactive {
        let (master, slave) = openpty();
        cmd.stdin(Stdio::from(slave));
        let mut child = cmd.spawn().expect("spawn runbook resume");
        drop(cmd);
        let master = File::from(master);
        // What the terminal echoes is read and dropped, so that it never fills up.
        let echo = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut { echo }, &mut std::io::sink());
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Interactive {
            child,
            master,
            stdout,
            stderr,
            readers,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `needle` appeared on stderr `times` times.
    fn expect(&mut self, needle: &str, times: usize) {
        let ok = wait_for(Duration::from_secs(15), || {
            self.stderr().matches(needle).count() >= times
        });
        if !ok {
            let _ = self.child.kill();
            panic!(
                "no {needle:?} (x{times}) on stderr within 15 s:\n{}\n--- stdout ---\n{}",
                self.stderr(),
                self.stdout.lock().unwrap()
            );
        }
    }

    /// One key: the question takes it without Enter.
    fn key(&mut self, key: &str) {
        self.master.write_all(key.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// A line of text and Enter (a reason).
    fn answer(&mut self, line: &str) {
        self.master.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for the exit (15 s at most): (code, stdout, stderr).
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "runbook resume did not exit within 15 s\n--- stderr ---\n{}\n--- stdout ---\n{}",
                    self.stderr(),
                    self.stdout.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        (status.code(), out, self.stderr())
    }
}

const INTERRUPTED_PROMPT: &str = "[r] run it again";

#[test]
fn interactive_resume_q_stops_and_r_runs_the_step_again() {
    let fx = Fixture::new();
    let rb = fx.write("ask.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);

    let mut ui = Interactive::start(&fx, &[]);
    ui.expect(INTERRUPTED_PROMPT, 1);
    assert!(
        ui.stderr()
            .contains("deploy/long did not finish when the run stopped"),
        "{}",
        ui.stderr()
    );
    ui.key("q");
    let (code, _, err) = ui.finish();
    assert_eq!(code, Some(1), "{err}");
    assert!(resumable(&dir));
    assert_eq!(count(&fx, "long.cnt"), 1);

    let mut ui = Interactive::start(&fx, &[]);
    ui.expect(INTERRUPTED_PROMPT, 1);
    ui.key("r");
    let (code, out, err) = ui.finish();
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert_eq!(
        (
            count(&fx, "one.cnt"),
            count(&fx, "long.cnt"),
            count(&fx, "three.cnt")
        ),
        (1, 2, 1)
    );
    let j = journal_json(&journal_path(&dir));
    let f = last_finished(&j, "deploy/long");
    assert_eq!(
        (f["status"].as_str(), f["attempt"].as_u64()),
        (Some("succeeded"), Some(2))
    );
    assert_eq!(
        f["by"].as_str(),
        Some(runbook::session::operator().as_str()),
        "{f}"
    );
    assert_eq!(outcomes(&j), ["interrupted", "aborted", "succeeded"]);
}

#[test]
fn interactive_resume_s_skips_the_step_with_a_reason() {
    let fx = Fixture::new();
    let rb = fx.write("ask.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);
    let mut ui = Interactive::start(&fx, &[]);
    ui.expect(INTERRUPTED_PROMPT, 1);
    ui.key("s");
    ui.expect("reason for skipping", 1);
    ui.answer("deployed by hand meanwhile");
    let (code, out, err) = ui.finish();
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert_eq!((count(&fx, "long.cnt"), count(&fx, "three.cnt")), (1, 1));
    let j = journal_json(&journal_path(&dir));
    let f = last_finished(&j, "deploy/long");
    assert_eq!(f["status"], "skipped", "{f}");
    assert_eq!(f["reason"], "deployed by hand meanwhile");
    assert_eq!(started(&j), ["prep/one#1", "deploy/long#1", "deploy/three#1"]);
}

#[test]
fn interactive_resume_capital_r_rolls_back() {
    let fx = Fixture::new();
    let rb = fx.write("ask.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);
    let mut ui = Interactive::start(&fx, &[]);
    ui.expect(INTERRUPTED_PROMPT, 1);
    ui.key("R");
    ui.expect("why roll back? (Enter: no reason)", 1);
    ui.answer("the canary looked wrong");
    let (code, out, err) = ui.finish();
    assert_eq!(code, Some(3), "{err}\n{out}");
    assert_eq!(
        (
            count(&fx, "long.cnt"),
            count(&fx, "three.cnt"),
            count(&fx, "revert.cnt")
        ),
        (1, 0, 1)
    );
    let j = journal_json(&journal_path(&dir));
    assert_eq!(event(&j, "rollback_started")["reason"], "step:deploy/long");
    assert_eq!(event(&j, "rollback_started")["note"], "the canary looked wrong");
    assert_eq!(last_finished(&j, "deploy/three")["status"], "cancelled");
    assert_eq!(outcomes(&j), ["interrupted", "rolled_back"]);
}

#[test]
fn interactive_resume_d_marks_the_step_done_with_a_reason() {
    let fx = Fixture::new();
    let rb = fx.write("ask.toml", THREE_STEPS);
    let dir = run_until_sigint(&fx, &rb, &[]);
    let mut ui = Interactive::start(&fx, &[]);
    ui.expect(INTERRUPTED_PROMPT, 1);
    ui.key("d");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ui.stderr().matches(INTERRUPTED_PROMPT).count(),
        1,
        "`d` was not taken: the same question was asked again:\n{}",
        ui.stderr()
    );
    ui.answer("it finished, checked the deploy log");
    let (code, out, err) = ui.finish();
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert_eq!((count(&fx, "long.cnt"), count(&fx, "three.cnt")), (1, 1));
    let j = journal_json(&journal_path(&dir));
    let f = last_finished(&j, "deploy/long");
    assert_eq!(f["status"], "confirmed", "{f}");
    assert!(
        f["reason"]
            .as_str()
            .unwrap_or("")
            .contains("checked the deploy log"),
        "{f}"
    );
}

// ---------------------------------------------------------------------------------------------
// SIGHUP: the terminal UI in tmux, the tmux server killed mid-step

const HUP: &str = r#"
[runbook]
title = "Hang-up drill"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "long"
title = "Long step"
run = "echo x >> long.cnt; echo start; sleep 3; echo end; date > long.txt"

[[phase.step]]
id = "next"
title = "Next step"
run = "touch next.txt"
"#;

/// A tmux server of our own with a detached 100×30 session running `shell_command` in `dir`.
fn start_tmux(dir: &Path, shell_command: &str) -> TmuxServer {
    let t = TmuxServer::new("resume");
    let dir = dir.to_str().expect("a UTF-8 path");
    t.ok(&[
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        dir,
        shell_command,
    ]);
    t
}

/// What a hang-up left behind.
struct HungUp {
    fx: Fixture,
    run_dir: PathBuf,
    pid: i32,
    stderr: String,
}

/// Runs HUP in the terminal UI (no --headless) in tmux and kills the tmux server while
/// `p/long` runs. Returns once the run finished and its process is gone (6 s at most).
fn hang_up_in_tmux() -> HungUp {
    let fx = Fixture::new();
    let rb = fx.write("hup.toml", HUP);
    let err = fx.file("ui-stderr.txt");
    let shell = format!(
        "exec '{}' run '{}' --state-dir '{}' 2>'{}'",
        runbook_bin().display(),
        rb.display(),
        fx.state().display(),
        err.display()
    );
    let tmux = start_tmux(fx.path(), &shell);
    let run_dir = wait_step_running(&fx, "p/long", 1, "long.cnt");
    let journal = journal_path(&run_dir);
    let pid = run_started(&journal_now(&journal))[0]["pid"]
        .as_i64()
        .expect("pid") as i32;
    assert!(
        !fx.exists("long.txt"),
        "the step had not finished when the terminal went away"
    );

    let killed = Instant::now();
    tmux.kill();
    let ended = wait_for(Duration::from_secs(6), || {
        let j = journal_now(&journal);
        !events(&j, "run_finished").is_empty() && process_gone(pid)
    });
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    if !ended {
        kill_pids(&[pid]);
    }
    assert!(
        ended,
        "within 6 s of the hang-up the run must have finished its step and exited \
         (waited {:?}); journal:\n{:#?}\nstderr:\n{stderr}",
        killed.elapsed(),
        step_trace(&journal_now(&journal))
    );
    HungUp {
        fx,
        run_dir,
        pid,
        stderr,
    }
}

#[test]
fn sighup_in_tmux_lets_the_step_finish_starts_nothing_more_and_resume_goes_on() {
    let HungUp {
        fx,
        run_dir,
        pid,
        stderr,
    } = hang_up_in_tmux();
    assert!(
        fx.exists("long.txt"),
        "the step in flight ran to its end\n{stderr}"
    );
    // Nothing further started, not even a moment later.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !fx.exists("next.txt"),
        "the next step must not start after SIGHUP"
    );
    assert!(process_gone(pid), "no runbook process left");

    let journal = journal_path(&run_dir);
    assert_valid_json_lines(&journal);
    let j = journal_json(&journal);
    let long = last_finished(&j, "p/long");
    assert_eq!(long["status"], "succeeded", "{long}");
    assert_eq!(long["exit_code"], 0);
    assert_eq!(started(&j), ["p/long#1"]);
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "interrupted", "{fin}");
    assert_eq!(fin["exit_code"], 130);
    assert!(fin["reason"].as_str().unwrap_or("").contains("SIGHUP"), "{fin}");
    // Its output, the part after the hang-up too, went to its log.
    let log = std::fs::read_to_string(run_dir.join(long["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("start") && log.contains("end"), "log: {log:?}");
    assert!(resumable(&run_dir));

    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert!(fx.exists("next.txt"));
    assert_eq!(count(&fx, "long.cnt"), 1, "the finished step did not run again");
    let j = journal_json(&journal);
    assert_eq!(started(&j), ["p/long#1", "p/next#1"]);
    assert_eq!(outcomes(&j), ["interrupted", "succeeded"]);
    assert_eq!(run_started(&j)[1]["mode"], "resume");
}

#[test]
fn sighup_in_tmux_ends_without_a_panic() {
    let hung = hang_up_in_tmux();
    assert!(
        !hung.stderr.contains("panicked") && !hung.stderr.contains("internal error"),
        "stderr after the hang-up:\n{}",
        hung.stderr
    );
}

#[test]
fn resume_of_a_file_that_is_not_a_journal_names_it_once_with_its_line() {
    let fx = Fixture::new();
    let dir = fx.state().join("runs").join("20260101T000000Z-x");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("journal.jsonl"), "[1, 2]\n").unwrap();
    let r = fx.resume(&[dir.to_str().unwrap()]);
    r.expect_code(2);
    let shown = dir.join("journal.jsonl").display().to_string();
    assert_eq!(r.stderr.matches(&shown).count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{shown}:1: this is not a runbook journal")),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Triggers after a resume

/// A command metric read from `value.txt` and a trigger on it with a long `for`: a breach makes it
/// pending for the whole test. The step runs until the test interrupts it (or `go` exists).
const PENDING_TRIGGER: &str = r#"
[runbook]
title = "Pending drill"

[metrics]
interval = "200ms"

[[metric]]
id = "errors"
title = "Errors"
command = "cat value.txt"

[[trigger]]
id = "errors-high"
title = "Errors above 1 for 5 minutes"
metric = "errors"
above = 1
for = "5m"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "long"
title = "Long step"
run = "echo x >> long.cnt; [ -e go ] || sleep 30"

[[phase.step]]
id = "after"
title = "After"
run = "echo x >> after.cnt"
"#;

/// The trigger rows of the screen rebuilt from a journal, as the TUI rebuilds it on `resume`.
fn trigger_on_screen(file: &Path, records: &[runbook::journal::Record]) -> (String, Option<f64>) {
    let rb = Arc::new(runbook::runbook::load(file, &[]).expect("the runbook loads"));
    let mut app = runbook::tui::state::App::new(
        rb,
        runbook::engine::Mode::Resume,
        &[runbook::metrics::SourceKind::Command],
        String::new(),
    );
    for r in records {
        app.apply(runbook::engine::Update::Event(r.clone()));
    }
    let t = &app.triggers[0];
    (t.state.label().to_string(), t.value)
}

#[test]
fn a_trigger_pending_when_the_run_stopped_is_watched_afresh_on_resume() {
    let fx = Fixture::new();
    fx.write("value.txt", "5\n");
    let file = fx.write("runbook.toml", PENDING_TRIGGER);
    let child = fx.spawn_run(&file, &[]);
    let dir = wait_step_running(&fx, "deploy/long", 1, "long.cnt");
    assert!(
        wait_for(Duration::from_secs(10), || journal_now(&journal_path(&dir))
            .iter()
            .any(|e| e["event"] == "trigger_pending")),
        "the breach makes the trigger pending"
    );
    signal_and_wait(child, Signal::SIGINT).expect_code(130);
    let (before, _) = runbook::journal::read(&journal_path(&dir)).expect("read journal");
    assert_eq!(trigger_on_screen(&file, &before).0, "pending");

    // The metric is healthy again when the run is resumed.
    fx.write("value.txt", "0\n");
    fx.write("go", "");
    fx.resume(&["--yes"]).expect_code(0);
    let j = journal_json(&journal_path(&dir));
    let resumed_at = j
        .iter()
        .rposition(|e| e["event"] == "run_started" && e["mode"] == "resume")
        .expect("a run_started of the resume");
    let after: Vec<&Value> = j[resumed_at..]
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("trigger_")))
        .collect();
    assert!(
        !after.is_empty() && after[0]["event"] == "trigger_cleared" && after[0]["trigger"] == "errors-high",
        "the resumed run journals the trigger's fresh state: {after:?}"
    );
    assert_eq!(after[0]["value"], 0.0);
    assert!(after.iter().all(|e| e["event"] != "trigger_fired"), "{after:?}");

    // The screen rebuilt from the journal: not yet sampled right after the resume began, then ok.
    let (records, _) = runbook::journal::read(&journal_path(&dir)).expect("read journal");
    let resume_record = records
        .iter()
        .rposition(
            |r| matches!(&r.event, runbook::journal::Event::RunStarted { mode, .. } if mode == "resume"),
        )
        .expect("run_started of the resume");
    let (state, value) = trigger_on_screen(&file, &records[..=resume_record]);
    assert_eq!(
        state, "not yet sampled",
        "the old pending state is not carried over"
    );
    assert_eq!(value, None);
    assert_eq!(trigger_on_screen(&file, &records), ("ok".to_string(), Some(0.0)));
}
