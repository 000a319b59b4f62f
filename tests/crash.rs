//! Crash, hang-up, suspend and a full disk, with the real binary and real signals: a step's
//! monitor keeps its output and result when `runbook` dies, `resume` records or follows that step
//! instead of starting it twice, nothing a step started outlives the run, a stopped `runbook`
//! never turns a step that ended in time into a timeout, a hang-up never leaves a rollback half
//! done, two resumes never both drive a run, and a full disk kills nothing and starts nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).expect("signal runbook");
}

/// Waits for the one run folder to exist and for `name` to have started.
fn wait_started(fx: &Fixture, name: &str) -> PathBuf {
    let mut dir = None;
    let ok = wait_for(Duration::from_secs(20), || {
        dir = fx.run_dirs().into_iter().next();
        dir.as_ref().is_some_and(|d| {
            journal_now(&d.join("journal.jsonl"))
                .iter()
                .any(|e| e["event"] == "step_started" && step_name(e) == name)
        })
    });
    assert!(ok, "{name} did not start within 20 s");
    dir.unwrap()
}

/// Processes whose command line contains `needle` (never this test process).
fn processes_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || process_gone(pid) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(pid);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The log grows as the step writes, and survives kill -9 of runbook

const CHATTY_THEN_WAIT: &str = r#"
[runbook]
title = "Crash"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "long"
title = "Long"
run = "echo start >> long.cnt; i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; while [ ! -f go ]; do sleep 0.05; done; echo finished-line; echo end >> long.cnt"

[[phase.step]]
id = "three"
title = "Third"
run = "echo x >> three.cnt"
"#;

fn log_of_long(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("logs/p--long--1.log")).unwrap_or_default()
}

#[test]
fn the_log_grows_while_the_step_runs_and_keeps_its_lines_after_kill_9() {
    let fx = Fixture::new();
    let rb = fx.write("crash.toml", CHATTY_THEN_WAIT);
    let mut child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    // While the step still runs, a second session reading the log sees every line so far.
    assert!(
        wait_for(Duration::from_secs(10), || log_of_long(&dir)
            .contains("line 199\n")),
        "the log holds the step's output while it runs: {:?}",
        log_of_long(&dir)
    );
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();
    let log = log_of_long(&dir);
    assert!(
        log.starts_with("line 0\nline 1\n") && log.contains("line 199\n"),
        "{log:?}"
    );
    // The step goes on under its monitor, and its log with it.
    fx.write("go", "");
    assert!(
        wait_for(Duration::from_secs(10), || log_of_long(&dir)
            .contains("finished-line")),
        "the monitor kept writing the log after runbook died: {:?}",
        log_of_long(&dir)
    );
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\nend\n"));
}

#[test]
fn resume_follows_a_step_still_running_after_kill_9_and_never_starts_it_twice() {
    let fx = Fixture::new();
    let rb = fx.write("crash.toml", CHATTY_THEN_WAIT);
    let mut child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\n"));
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();

    // Even with --yes (which used to run the step in flight again), it is followed, not re-run.
    let mut resumed = fx.resume_command(&["--yes"]).spawn().expect("spawn resume");
    // The resumed run waits for the step that still runs; let it finish now.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        resumed.try_wait().unwrap().is_none(),
        "resume waits for the step still running"
    );
    fx.write("go", "");
    let r = CliRun::new(wait_output(resumed, Duration::from_secs(30)), Duration::ZERO);
    r.expect_code(0);
    assert!(
        r.stdout.contains("finished-line"),
        "resume shows the step's output: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains("still running") || r.stdout.contains("still running"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(fx.read("long.cnt"), "start\nend\n", "the step ran once");
    assert_eq!(fx.read("three.cnt"), "x\n");
    let j = journal_now(&dir.join("journal.jsonl"));
    assert_eq!(started(&j), ["p/long#1", "p/three#1"]);
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "succeeded");
    assert_eq!(f["attempt"], 1);
    assert_eq!(f["exit_code"], 0);
    assert!(
        f["duration_ms"].as_u64().unwrap() >= 500,
        "from the step's real start: {f}"
    );
}

#[test]
fn resume_records_a_step_that_ended_while_no_runbook_ran() {
    let fx = Fixture::new();
    let rb = fx.write("crash.toml", CHATTY_THEN_WAIT);
    let mut child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\n"));
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();
    fx.write("go", "");
    let status = dir.join("logs/p--long--1.status");
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_to_string(&status)
            .is_ok_and(|s| s.contains("\"ended\":{"))),
        "the monitor recorded the end"
    );
    // No --yes needed: nothing is decided, the result is only recorded.
    let r = fx.resume(&[]);
    r.expect_code(0);
    assert_eq!(fx.read("long.cnt"), "start\nend\n", "the step ran once");
    let j = journal_now(&dir.join("journal.jsonl"));
    assert_eq!(started(&j), ["p/long#1", "p/three#1"]);
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "succeeded");
    assert!(f["reason"].as_str().unwrap_or("").contains("not running"), "{f}");
}

#[test]
fn a_step_that_failed_while_no_runbook_ran_is_recorded_failed_and_handled_as_a_failure() {
    let fx = Fixture::new();
    let rb = fx.write(
        "crash.toml",
        &CHATTY_THEN_WAIT.replace("echo end >> long.cnt", "echo end >> long.cnt; exit 3"),
    );
    let mut child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\n"));
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();
    fx.write("go", "");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\nend\n"));
    std::thread::sleep(Duration::from_millis(300));
    // on_failure = "ask" without a terminal: the run stops on the failed step (exit 1).
    let r = fx.resume(&[]);
    r.expect_code(1);
    let j = journal_now(&dir.join("journal.jsonl"));
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "failed");
    assert_eq!(f["exit_code"], 3);
    assert!(fx.read("three.cnt").is_empty());
}

#[test]
fn when_the_monitor_died_too_the_operator_decides_as_before() {
    let fx = Fixture::new();
    let rb = fx.write("crash.toml", CHATTY_THEN_WAIT);
    let mut child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\n"));
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();
    // A reboot: the monitor and the step die without a word.
    let status = monitor_status(&dir.join("logs/p--long--1.status"));
    let monitor = status["monitor_pid"].as_i64().unwrap() as i32;
    let shell = status["pid"].as_i64().unwrap() as i32;
    let _ = kill(Pid::from_raw(monitor), Signal::SIGKILL);
    let _ = nix::sys::signal::killpg(Pid::from_raw(shell), Signal::SIGKILL);
    assert!(wait_gone(monitor, Duration::from_secs(5)));
    let r = fx.resume(&[]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("p/long") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    fx.write("go", "");
    let r = fx.resume(&["--yes"]);
    r.expect_code(0);
    assert_eq!(
        started(&journal_now(&dir.join("journal.jsonl"))),
        ["p/long#1", "p/long#2", "p/three#1"]
    );
}

/// A step's status file, once its monitor has written it.
fn monitor_status(path: &Path) -> Value {
    let mut status = Value::Null;
    assert!(
        wait_for(Duration::from_secs(10), || {
            status = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            !status.is_null()
        }),
        "{} was not written",
        path.display()
    );
    status
}

// ---------------------------------------------------------------------------------------------
// Nothing a step started outlives the run

/// A step that leaves processes outside its process group but in its session, three ways; with
/// `wait_for_them` it waits for them (so it runs until stopped), else it ends at once.
fn escaping_runbook(tag: u32, wait_for_them: bool, extra: &str) -> String {
    format!(
        r#"
[runbook]
title = "Escape"

[settings]
kill_grace = "1s"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "escape"
title = "Escape"
run = "bash -c 'set -m; sleep {a} & exit'; timeout {b} sleep {b} & timeout 600 sleep {c} & {end}"
{step_extra}

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
        a = 3009 + tag * 10,
        b = 3008 + tag * 10,
        c = 3020 + tag * 10,
        end = if wait_for_them { "wait" } else { "true" },
        step_extra = extra,
    )
}

fn assert_none_left(tag: u32) {
    let needles = [3009 + tag * 10, 3008 + tag * 10, 3020 + tag * 10].map(|n| format!("sleep {n}"));
    let ok = wait_for(Duration::from_secs(5), || {
        needles.iter().all(|n| processes_with(n).is_empty())
    });
    let left: Vec<_> = needles.iter().flat_map(|n| processes_with(n)).collect();
    kill_pids(&left);
    assert!(ok, "processes outlived the run: {left:?}");
}

#[test]
fn nothing_outlives_a_step_that_times_out() {
    let fx = Fixture::new();
    let rb = fx.write(
        "e.toml",
        &escaping_runbook(1, true, "timeout = \"1s\"\non_failure = \"continue\""),
    );
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    let j = fx.journal();
    assert_eq!(last_finished(&j, "p/escape")["status"], "timed_out");
    assert_none_left(1);
}

#[test]
fn nothing_outlives_a_step_that_succeeds() {
    let fx = Fixture::new();
    // The step itself ends at once; what it started in the background does not.
    let rb = fx.write("e.toml", &escaping_runbook(2, false, ""));
    let r = fx.run_cli(&rb, &[]);
    r.expect_code(0);
    assert_none_left(2);
}

#[test]
fn nothing_outlives_a_step_cancelled_by_a_rollback_or_a_signal() {
    for (tag, sig, code) in [(3, Signal::SIGINT, 130), (4, Signal::SIGTERM, 130)] {
        let fx = Fixture::new();
        let rb = fx.write("e.toml", &escaping_runbook(tag, true, ""));
        let child = fx.spawn_run(&rb, &[]);
        wait_started(&fx, "p/escape");
        let needle = format!("sleep {}", 3020 + tag * 10);
        assert!(wait_for(Duration::from_secs(10), || !processes_with(&needle).is_empty()));
        signal(&child, sig);
        let out = wait_output(child, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(code), "{sig:?}");
        assert_none_left(tag);
    }
    // A hang-up lets the step finish: here it is ended by its timeout, and nothing is left.
    let fx = Fixture::new();
    let rb = fx.write(
        "e.toml",
        &escaping_runbook(5, true, "timeout = \"2s\"\non_failure = \"rollback\""),
    );
    let child = fx.spawn_run(&rb, &[]);
    wait_started(&fx, "p/escape");
    signal(&child, Signal::SIGHUP);
    let out = wait_output(child, Duration::from_secs(30));
    // The step timed out, its on_failure decided a rollback, which a hang-up does not leave
    // half done: it ran to its end (exit 3).
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_none_left(5);
}

// ---------------------------------------------------------------------------------------------
// SIGSTOP / SIGCONT

#[test]
fn a_step_that_ended_in_time_while_runbook_was_stopped_succeeded() {
    let fx = Fixture::new();
    let rb = fx.write(
        "stop.toml",
        r#"
[runbook]
title = "Stop"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "deploy"
title = "Deploy"
run = "sleep 1; echo deployed"
timeout = "3s"
on_failure = "rollback"

[rollback]
title = "Back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "echo x >> revert.cnt"
"#,
    );
    let child = fx.spawn_run(&rb, &[]);
    wait_started(&fx, "p/deploy");
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(4));
    signal(&child, Signal::SIGCONT);
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let j = fx.journal();
    let f = last_finished(&j, "p/deploy");
    assert_eq!(f["status"], "succeeded");
    assert_eq!(f["exit_code"], 0);
    assert!(fx.read("revert.cnt").is_empty());
}

// ---------------------------------------------------------------------------------------------
// SIGHUP during a decided rollback

#[test]
fn a_hang_up_runs_a_decided_rollback_on_and_stops_at_the_first_step_that_needs_an_operator() {
    let fx = Fixture::new();
    let rb = fx.write(
        "hup.toml",
        r#"
[runbook]
title = "Hup"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "deploy"
title = "Deploy"
run = "sleep 2; exit 1"
on_failure = "rollback"

[[phase.step]]
id = "after"
title = "After"
run = "echo x >> after.cnt"

[rollback]
title = "Back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "one"
title = "One"
run = "echo x >> one.cnt"

[[rollback.phase.step]]
id = "two"
title = "Two"
run = "echo x >> two.cnt"

[[rollback.phase.step]]
id = "check"
title = "Check by hand"
manual = "Look at the dashboard"

[[rollback.phase.step]]
id = "four"
title = "Four"
run = "echo x >> four.cnt"
"#,
    );
    let child = fx.spawn_run(&rb, &[]);
    wait_started(&fx, "p/deploy");
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, Signal::SIGHUP);
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        (
            fx.read("one.cnt"),
            fx.read("two.cnt"),
            fx.read("four.cnt"),
            fx.read("after.cnt")
        ),
        ("x\n".to_string(), "x\n".to_string(), String::new(), String::new())
    );
    let j = fx.journal();
    assert_eq!(last_finished(&j, "p/deploy")["status"], "failed");
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "interrupted");
    assert!(
        fin["reason"].as_str().unwrap_or("").contains("undo/check"),
        "{fin}"
    );
}

// ---------------------------------------------------------------------------------------------
// Two resumes

const QUICK_AFTER_FAILURE: &str = r#"
[runbook]
title = "Race"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "gate"
title = "Gate"
run = "[ -f open ]"

[[phase.step]]
id = "b"
title = "B"
run = "echo x >> b.cnt; sleep 0.2"

[[phase.step]]
id = "c"
title = "C"
run = "echo x >> c.cnt"
"#;

/// The race runbook with a long rollback procedure that never runs: loading it takes a while,
/// which is when a second `resume` that read the journal before taking the lock was exposed.
fn slow_to_load() -> String {
    let mut text = QUICK_AFTER_FAILURE.to_string();
    text.push_str("\n[rollback]\ntitle = \"Back\"\n\n[[rollback.phase]]\nid = \"undo\"\ntitle = \"Undo\"\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "\n[[rollback.phase.step]]\nid = \"u{i}\"\ntitle = \"Undo {i}\"\nrun = \"true\"\n"
        ));
    }
    text
}

#[test]
fn a_second_resume_never_runs_finished_steps_again() {
    // The second starts at every moment of the first's short life, so that it reads the journal
    // just before the first finishes in one round or another.
    for round in 0..25 {
        let fx = Fixture::new();
        let rb = fx.write("race.toml", &slow_to_load());
        fx.run_cli(&rb, &[]).expect_code(1);
        fx.write("open", "");
        let first = fx.resume_command(&["--yes"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(round * 20));
        let second = fx.resume_command(&["--yes"]).spawn().unwrap();
        let a = wait_output(first, Duration::from_secs(30));
        let b = wait_output(second, Duration::from_secs(30));
        assert_eq!(
            (fx.read("b.cnt"), fx.read("c.cnt")),
            ("x\n".to_string(), "x\n".to_string()),
            "round {round}: finished steps ran again\nfirst: {}\nsecond: {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        let (winner, loser) = match (a.status.code(), b.status.code()) {
            (Some(0), Some(2)) => (a, b),
            (Some(2), Some(0)) => (b, a),
            other => panic!("round {round}: one resume drives the run, the other is refused: {other:?}"),
        };
        assert!(!winner.stdout.is_empty());
        let err = String::from_utf8_lossy(&loser.stderr);
        // Refused: the first holds the run (named), or it has ended by the time the second took the
        // lock and read the journal, or had ended before the second looked for an unfinished run.
        assert!(
            err.contains("being driven by") || err.contains("has ended") || err.contains("no unfinished run"),
            "round {round}: {err}"
        );
        assert!(!err.contains("another runbook process"), "{err}");
    }
}

#[test]
fn two_resumes_at_once_the_loser_names_the_holder() {
    for _ in 0..5 {
        let fx = Fixture::new();
        let rb = fx.write("race.toml", &QUICK_AFTER_FAILURE.replace("sleep 0.2", "sleep 1"));
        fx.run_cli(&rb, &[]).expect_code(1);
        fx.write("open", "");
        let first = fx.resume_command(&["--yes"]).spawn().unwrap();
        let second = fx.resume_command(&["--yes"]).spawn().unwrap();
        let (pa, pb) = (first.id(), second.id());
        let a = wait_output(first, Duration::from_secs(30));
        let b = wait_output(second, Duration::from_secs(30));
        let (winner_pid, loser) = match (a.status.code(), b.status.code()) {
            (Some(0), Some(2)) => (pa, b),
            (Some(2), Some(0)) => (pb, a),
            other => panic!("one resume must win, the other be refused: {other:?}"),
        };
        let err = String::from_utf8_lossy(&loser.stderr);
        assert!(
            err.contains(&format!("(pid {winner_pid})")),
            "the loser names the holder: {err}"
        );
        assert_eq!(fx.read("b.cnt"), "x\n");
    }
}

// ---------------------------------------------------------------------------------------------
// A full disk (a real tmpfs)

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount(8) runs");
        assert!(ok.success(), "mounting a tmpfs needs root (CI runs as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_kills_no_step_is_journaled_and_starts_nothing_new() {
    let fx = Fixture::new();
    let state = fx.file("state");
    let _fs = Tmpfs::mount(&state, "2m");
    let rb = fx.write(
        "full.toml",
        &format!(
            r#"
[runbook]
title = "Full"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "chatty"
title = "Chatty"
run = "head -c 3000000 /dev/zero > {filler} 2>/dev/null; i=0; while [ $i -lt 3000 ]; do echo chatty line $i; i=$((i+1)); done; echo still-alive > {outside}; rm -f {filler}; sleep 0.2"

[[phase.step]]
id = "next"
title = "Next"
run = "echo x >> next.cnt"
"#,
            filler = state.join("filler").display(),
            outside = fx.file("alive").display(),
        ),
    );
    let r = fx.run_cli(&rb, &[]);
    // The step was not killed (no SIGPIPE): it ran to its end and succeeded.
    assert_eq!(fx.read("alive"), "still-alive\n");
    let j = fx.journal();
    let f = last_finished(&j, "p/chatty");
    assert_eq!(f["status"], "succeeded", "{f}");
    assert_eq!(f["exit_code"], 0);
    // Told, journaled once space came back, and nothing new started.
    assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
    let failed = events(&j, "write_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["file"], "logs/p--chatty--1.log");
    assert!(fx.read("next.cnt").is_empty(), "no new step started");
    r.expect_code(1);
    assert_eq!(event(&j, "run_finished")["outcome"], "failed");
}

#[test]
fn a_quiet_step_on_a_full_disk_is_not_a_silent_success() {
    let fx = Fixture::new();
    let state = fx.file("state");
    let _fs = Tmpfs::mount(&state, "1m");
    let rb = fx.write(
        "quiet.toml",
        &format!(
            r#"
[runbook]
title = "Quiet"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "quiet"
title = "Quiet"
run = "head -c 2000000 /dev/zero > {filler} 2>/dev/null; echo one quiet line; sleep 0.2"

[[phase.step]]
id = "next"
title = "Next"
run = "echo x >> next.cnt"
"#,
            filler = state.join("filler").display(),
        ),
    );
    let r = fx.run_cli(&rb, &[]);
    assert_ne!(
        r.code,
        Some(0),
        "a run whose log and journal could not be written does not pass as a success"
    );
    assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
    assert!(fx.read("next.cnt").is_empty(), "no new step started");
}

#[test]
fn a_monitor_killed_under_a_running_runbook_takes_its_step_with_it_and_says_so() {
    let fx = Fixture::new();
    let rb = fx.write(
        "m.toml",
        r#"
[runbook]
title = "Monitor killed"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "long"
title = "Long"
run = "echo start >> long.cnt; sleep 3107"
on_failure = "continue"
"#,
    );
    let child = fx.spawn_run(&rb, &[]);
    let dir = wait_started(&fx, "p/long");
    assert!(wait_for(Duration::from_secs(10), || fx.read("long.cnt") == "start\n"));
    let status = monitor_status(&dir.join("logs/p--long--1.status"));
    let monitor = status["monitor_pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(monitor), Signal::SIGKILL).unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let j = fx.journal();
    let f = last_finished(&j, "p/long");
    assert_eq!(f["status"], "failed");
    assert!(f["error"].as_str().unwrap_or("").contains("monitor"), "{f}");
    let left = processes_with("sleep 3107");
    kill_pids(&left);
    assert!(left.is_empty(), "the step outlived its monitor: {left:?}");
}

#[test]
fn a_journal_that_cannot_be_written_during_a_step_lets_the_step_finish_and_starts_nothing_new() {
    let fx = Fixture::new();
    let state = fx.file("state");
    let _fs = Tmpfs::mount(&state, "1m");
    let rb = fx.write(
        "journal-full.toml",
        &format!(
            r#"
[runbook]
title = "Journal full"

[metrics]
interval = "1s"

# A metric whose every failed reading is a 3 KB line in the journal: a full disk shows at once.
[[metric]]
id = "error_rate"
title = "Error rate"
command = "printf '%03000d' 0 >&2; exit 1"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "deploy"
title = "Deploy"
run = "head -c 2000000 /dev/zero > {filler} 2>/dev/null; sleep 3; echo done > {outside}"

[[phase.step]]
id = "next"
title = "Next"
run = "echo x >> next.cnt"
"#,
            filler = state.join("filler").display(),
            outside = fx.file("deployed").display(),
        ),
    );
    let r = fx.run_cli(&rb, &[]);
    // Samples could not be journaled while the step ran: it was not killed, it ran to its end.
    assert_eq!(fx.read("deployed"), "done\n", "{}", r.stdout);
    assert!(r.stdout.contains("cannot write the journal"), "{}", r.stdout);
    assert!(r.stdout.contains("goes on to its end"), "{}", r.stdout);
    assert!(fx.read("next.cnt").is_empty(), "no new step started");
    assert_eq!(r.code, Some(1), "{}", r.stdout);
}
