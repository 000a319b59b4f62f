//! The real binary's terminal UI, end to end, in tmux: `runbook run FILE` (no `--headless`) in a
//! detached tmux session of a fixed size, driven with `send-keys` and read back with
//! `capture-pane`. Each test has its own tmux server (`tmux -L <unique socket>`), killed when the
//! test ends, also when it fails.
//!
//! tmux must be installed (`.ci/run` installs it); these tests fail, not skip, without it.

mod common;

use common::events;
use common::tmux::TmuxServer;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long anything on screen may take to appear (generous: CI machines are slow and busy).
const TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// One tmux server with one session running `runbook run` from a script; killed on drop.
struct Tmux {
    // Declared first, so that the server goes before the folder its session runs in.
    server: TmuxServer,
    dir: TempDir,
}

/// Options of one session.
struct Run<'a> {
    runbook: &'a str,
    width: u16,
    height: u16,
    no_color: bool,
}

impl Tmux {
    /// Writes the runbook into a fresh folder and starts `runbook run` on it in a `width`×`height`
    /// tmux session. When runbook exits, the script writes `EXIT=<status>` to `exit` and keeps the
    /// pane open, so that the screen it left behind can be read.
    fn start(run: Run) -> Tmux {
        Tmux::start_with(run, "")
    }

    /// The same, with more arguments after `run FILE` (such as `--headless`).
    fn start_with(run: Run, args: &str) -> Tmux {
        let dir = tempfile::Builder::new()
            .prefix("runbook-tmux-")
            .tempdir()
            .expect("temp dir");
        let file = dir.path().join("runbook.toml");
        std::fs::write(&file, run.runbook).expect("write runbook");
        let no_color = if run.no_color {
            "export NO_COLOR=1"
        } else {
            "unset NO_COLOR"
        };
        let script = format!(
            "cd '{dir}'\n\
             unset LC_ALL LC_CTYPE RUNBOOK_ASCII\n\
             {no_color}\n\
             export LANG=C.UTF-8 USER=alice LOGNAME=alice\n\
             '{bin}' run '{file}' --state-dir '{dir}/state' {args}\n\
             echo \"EXIT=$?\" > '{dir}/exit.tmp' && mv '{dir}/exit.tmp' '{dir}/exit'\n\
             exec sleep 600\n",
            dir = dir.path().display(),
            bin = common::runbook_bin().display(),
            file = file.display(),
        );
        let script_path = dir.path().join("run.sh");
        std::fs::write(&script_path, script).expect("write script");
        let t = Tmux {
            server: TmuxServer::new("test"),
            dir,
        };
        let (w, h) = (run.width.to_string(), run.height.to_string());
        let sh = format!("sh '{}'", script_path.display());
        t.server
            .ok(&["new-session", "-d", "-s", "main", "-x", &w, "-y", &h, &sh]);
        t
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The visible screen, as text.
    fn screen(&self) -> String {
        self.server.screen("main")
    }

    /// The visible screen with its attributes as escape sequences.
    fn screen_with_escapes(&self) -> String {
        self.server.ok(&["capture-pane", "-p", "-e", "-t", "main"])
    }

    fn keys(&self, keys: &[&str]) {
        self.server.keys("main", keys);
    }

    /// Polls the screen until `ok` holds; panics with the last screen after `TIMEOUT`.
    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.server.wait_screen("main", what, TIMEOUT, ok)
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} on screen"), |s| s.contains(text))
    }

    /// Waits for `runbook` to exit and returns its status.
    fn exit_code(&self) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(self.path("exit")) {
                let code = s.trim().strip_prefix("EXIT=").expect("EXIT=N");
                return code.parse().expect("exit status");
            }
            if start.elapsed() > TIMEOUT {
                panic!(
                    "runbook did not exit within {TIMEOUT:?}; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The journal of the one run, one JSON value per event.
    fn journal(&self) -> Vec<Value> {
        let runs = self.path("state/runs");
        let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
            .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run folder: {dirs:?}");
        let text = std::fs::read_to_string(dirs[0].join("journal.jsonl")).expect("journal");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits for a step's shell to write its pid to `name`.
    fn pid(&self, name: &str) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(self.path(name))
                && let Ok(pid) = s.trim().parse()
            {
                return pid;
            }
            if start.elapsed() > TIMEOUT {
                panic!("the step never wrote {name}; the screen:\n{}", self.screen());
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    /// Ends what the test started, also when it failed midway: SIGTERM to the pane's process group
    /// (the script and runbook: runbook ends the step in flight, as on any SIGTERM), then the
    /// tmux server. Killing the server alone would only hang up on runbook, and after a SIGHUP
    /// runbook lets the step in flight finish (SPEC §5) — up to 30 s of `sleep` here.
    fn drop(&mut self) {
        let o = self
            .server
            .run(&["list-panes", "-t", "main", "-F", "#{pane_pid}"]);
        if let Ok(pid) = String::from_utf8_lossy(&o.stdout).trim().parse::<i32>()
            && pid > 1
        {
            // SAFETY: kill(2) with a process group id we started; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGTERM);
            }
        }
        // The server goes with `self.server`.
    }
}

/// Whether the process is gone (or a zombie nobody reaped yet: it runs no more).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn wait_gone(pid: i32) {
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "process {pid} still runs after runbook exited"
        );
        std::thread::sleep(POLL);
    }
}

fn step_finished<'a>(journal: &'a [Value], phase: &str, step: &str) -> &'a Value {
    journal
        .iter()
        .find(|e| e["event"] == "step_finished" && e["phase"] == phase && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {phase}/{step} in {journal:#?}"))
}

/// The screen's line that contains `text`.
fn line_with<'a>(screen: &'a str, text: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} on\n{screen}"))
}

/// After runbook exits, the shell's screen is back: its last words, no UI frame.
fn assert_terminal_restored(t: &Tmux, outcome: &str, code: i32) {
    // The last line names the outcome in words: "rolled back", not "rolled_back".
    let said = format!("runbook: run {} (exit {code})", outcome.replace('_', " "));
    let s = t.wait_for(&said);
    for ui in ["┌", "└", "│", "Phases", "Log:", "ROLL BACK", " quit"] {
        assert!(!s.contains(ui), "the UI is still on screen ({ui:?}):\n{s}");
    }
    assert!(
        s.contains("runbook: recording this run in"),
        "the shell's screen from before the UI is back:\n{s}"
    );
}

// ---------------------------------------------------------------------------------------------

const MANUAL: &str = r#"
[runbook]
title = "Manual confirmation"

[[phase]]
id = "checks"
title = "Checks"

[[phase.step]]
id = "dashboard"
title = "Checkout dashboard is green"
manual = "Open the checkout dashboard and check that every panel is green"

[[phase.step]]
id = "after"
title = "Runs after the confirmation"
run = "echo went-on-after-confirm"
"#;

#[test]
fn enter_confirms_a_manual_step() {
    let t = Tmux::start(Run {
        runbook: MANUAL,
        width: 120,
        height: 36,
        no_color: false,
    });
    let s = t.wait_for("waiting for you: Enter");
    assert!(s.contains("WAITING FOR YOU"), "{s}");
    assert!(s.contains("To do: Open the checkout dashboard"), "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("Run succeeded (exit 0)");
    let line = line_with(&s, "Checkout dashboard is green");
    assert!(line.contains("✔") && line.contains("confirmed"), "{line:?}\n{s}");
    let line = line_with(&s, "Runs after the confirmation");
    assert!(line.contains("succeeded"), "{line:?}\n{s}");
    assert!(s.contains("went-on-after-confirm"), "the last step's log:\n{s}");

    let journal = t.journal();
    let fin = step_finished(&journal, "checks", "dashboard");
    assert_eq!(fin["status"], "confirmed", "{fin}");
    assert_eq!(fin["by"], "alice", "{fin}");
    assert_eq!(fin["rollback"], false, "{fin}");

    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
    assert_terminal_restored(&t, "succeeded", 0);
}

const LIVE: &str = r#"
[runbook]
title = "Live output"

[[phase]]
id = "build"
title = "Build"

[[phase.step]]
id = "ready"
title = "Ready to start"
manual = true

[[phase.step]]
id = "loop"
title = "Print three lines"
run = "for i in 1 2 3; do echo line-$i; sleep 0.3; done"
"#;

#[test]
fn a_run_step_output_appears_live_in_the_log_pane() {
    let t = Tmux::start(Run {
        runbook: LIVE,
        width: 120,
        height: 36,
        no_color: false,
    });
    t.wait_for("waiting for you: Enter");
    t.keys(&["Enter"]);
    // Live: the first line is on screen while the step still runs and before the last line.
    let s = t.wait_until("line-1 while the step runs", |s| {
        s.contains("line-1") && !s.contains("line-3")
    });
    let step = line_with(&s, "Print three lines");
    assert!(step.contains("running"), "{step:?}\n{s}");
    assert!(s.contains("Log: build/loop"), "the log pane is the step's:\n{s}");
    let line = line_with(&s, "line-1");
    assert!(line.contains('│'), "in a pane: {line:?}");
    let s = t.wait_for("line-3");
    // In order, one line each, each with its time.
    let rows: Vec<&str> = s
        .lines()
        .filter(|l| l.contains("line-") && !l.contains("echo"))
        .collect();
    assert_eq!(rows.len(), 3, "{s}");
    for (i, row) in rows.iter().enumerate() {
        assert!(row.contains(&format!("line-{}", i + 1)), "{rows:?}");
        // `│21:28:53 line-1`: the time just before the text.
        let text = row.find("line-").expect("line-");
        let time = row[..text].rsplit('│').next().unwrap_or_default();
        let b = time.as_bytes();
        let ok = time.len() == 9 && b[2] == b':' && b[5] == b':' && b[8] == b' ';
        assert!(ok, "a line starts with its time: {row:?}");
    }
    let s = t.wait_for("Run succeeded (exit 0)");
    assert!(line_with(&s, "Print three lines").contains("succeeded"), "{s}");
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
}

const LONG_WITH_ROLLBACK: &str = r#"
[runbook]
title = "Rollback during a long step"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "long"
title = "Long migration"
run = "echo $$ > long.pid; exec sleep 30"

[[phase.step]]
id = "never"
title = "Never reached"
run = "echo never > never.txt"

[rollback]
title = "Put it back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "restore"
title = "Restore the previous version"
run = "echo rollback-step-ran"
"#;

#[test]
fn shift_r_then_y_rolls_back_during_a_long_step() {
    let t = Tmux::start(Run {
        runbook: LONG_WITH_ROLLBACK,
        width: 120,
        height: 36,
        no_color: false,
    });
    let pid = t.pid("long.pid");
    t.wait_until("the long step running", |s| {
        s.lines()
            .any(|l| l.contains("Long migration") && l.contains("running"))
    });
    t.keys(&["R"]);
    let s = t.wait_for("ROLL BACK?");
    assert!(
        s.contains("Cancels the step in flight: deploy/long"),
        "the dialog names the step it cancels:\n{s}"
    );
    assert!(
        s.contains("Restore the previous version"),
        "and what it runs:\n{s}"
    );
    assert!(s.contains("y: ROLL BACK NOW"), "{s}");
    t.keys(&["y"]);
    // The rollback step's log comes on screen with its output. (A capture can land in the middle
    // of a frame being drawn, the top half new and the log pane not yet: wait for the whole of it.)
    t.wait_until("the rollback step's log, with its output, on screen", |s| {
        s.contains("Log: undo/restore")
            && s.lines()
                .any(|l| l.contains("rollback-step-ran") && !l.contains("$ echo"))
    });
    let s = t.wait_for("Run rolled back (exit 3)");
    assert!(s.contains("ROLLED BACK"), "{s}");
    wait_gone(pid);

    let journal = t.journal();
    let started = events(&journal, "rollback_started");
    assert_eq!(started.len(), 1, "{journal:#?}");
    assert_eq!(started[0]["reason"], "operator");
    assert_eq!(step_finished(&journal, "deploy", "long")["status"], "cancelled");
    assert_eq!(step_finished(&journal, "deploy", "never")["status"], "cancelled");
    let restore = step_finished(&journal, "undo", "restore");
    assert_eq!(restore["status"], "succeeded");
    assert_eq!(restore["rollback"], true);
    assert!(!t.path("never.txt").exists());

    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 3);
    assert_terminal_restored(&t, "rolled_back", 3);
}

const LONG: &str = r#"
[runbook]
title = "Quit during a long step"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "long"
title = "Long migration"
run = "echo $$ > long.pid; exec sleep 30"
"#;

#[test]
fn q_then_y_while_a_step_runs_aborts_and_leaves_nothing_running() {
    let t = Tmux::start(Run {
        runbook: LONG,
        width: 120,
        height: 36,
        no_color: false,
    });
    let pid = t.pid("long.pid");
    t.wait_until("the long step running", |s| {
        s.lines()
            .any(|l| l.contains("Long migration") && l.contains("running"))
    });
    t.keys(&["q"]);
    let s = t.wait_for("Quit?");
    assert!(s.contains("A step is running: deploy/long"), "{s}");
    assert!(s.contains("y: quit"), "{s}");
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 1);
    wait_gone(pid);
    assert_terminal_restored(&t, "aborted", 1);

    let journal = t.journal();
    assert_eq!(step_finished(&journal, "deploy", "long")["status"], "cancelled");
    let fin = events(&journal, "run_finished");
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["outcome"], "aborted");
    assert_eq!(fin[0]["exit_code"], 1);
}

#[test]
fn q_then_n_stays_and_the_step_goes_on() {
    let t = Tmux::start(Run {
        runbook: LONG,
        width: 120,
        height: 36,
        no_color: false,
    });
    let pid = t.pid("long.pid");
    t.wait_until("the long step running", |s| {
        s.lines()
            .any(|l| l.contains("Long migration") && l.contains("running"))
    });
    t.keys(&["q"]);
    t.wait_for("Quit?");
    t.keys(&["n"]);
    t.wait_until("the quit dialog gone", |s| !s.contains("Quit?"));
    assert!(!gone(pid), "the step still runs");
    assert!(!t.path("exit").exists(), "runbook still runs");
    // Then quit for real, so that nothing is left behind.
    t.keys(&["q"]);
    t.wait_for("Quit?");
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 1);
    wait_gone(pid);
}

const SMALL: &str = r#"
[runbook]
title = "Payments API rollout"

[vars]
release = "v3.2.1"

[[metric]]
id = "error_rate"
title = "Error rate"
query = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
unit = "percent"
simulate = { baseline = 0.002, jitter = 0.001 }

[[metric]]
id = "p95_latency"
title = "P95 latency"
query = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))'
unit = "seconds"
simulate = { baseline = 0.18, jitter = 0.04 }

[[trigger]]
id = "errors"
title = "Error rate above 1%"
metric = "error_rate"
above = 0.01
for = "1m"

[metrics]
interval = "1s"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "announce"
title = "Deploy announced in #payments-deploys"
manual = "Post the release notes link in #payments-deploys"

[[phase.step]]
id = "canary"
title = "Deploy to the canary pool"
run = "echo deploying"
"#;

#[test]
fn at_80x24_without_colour_nothing_important_is_cut() {
    let t = Tmux::start(Run {
        runbook: SMALL,
        width: 80,
        height: 24,
        no_color: true,
    });
    t.wait_for("waiting for you: Enter");
    // The metrics strip: one line per metric with its value and source, then the triggers.
    let s = t.wait_until("metric values in the strip", |s| {
        s.lines().any(|l| l.starts_with("Error rate") && l.contains('%'))
    });
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 24, "{s}");
    let err = line_with(&s, "Error rate");
    assert!(err.contains(">1.00%") && err.contains("simulated"), "{err:?}");
    let p95 = line_with(&s, "P95 latency");
    assert!(p95.contains("ms") && p95.contains("simulated"), "{p95:?}");
    assert!(line_with(&s, "Triggers:").contains("errors ok"), "{s}");
    // Step titles in full.
    for title in [
        "Deploy announced in #payments-deploys",
        "Deploy to the canary pool",
    ] {
        assert!(s.contains(title), "{title:?} is cut:\n{s}");
    }
    assert!(
        s.contains("To do: Post the release notes link in #payments-deploys"),
        "{s}"
    );
    // The key hints, whole, on the last line.
    let hints = lines[23];
    for hint in [
        "Enter  confirm",
        "s  skip",
        "R  ROLL BACK",
        "n  note",
        "?  keys",
        "q  quit",
    ] {
        assert!(
            hints.contains(hint),
            "{hint:?} missing from the hints line {hints:?}"
        );
    }
    assert!(lines[0].contains("WAITING FOR YOU"), "{:?}", lines[0]);
    // NO_COLOR: no colour in what is drawn (bold and reverse carry the state).
    let esc = t.screen_with_escapes();
    let coloured = esc.split('\x1b').skip(1).any(|seq| {
        let Some(params) = seq.strip_prefix('[').and_then(|p| p.split_once('m')) else {
            return false;
        };
        params.0.split(';').any(|p| {
            matches!(
                p.parse::<u32>(),
                Ok(30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107)
            )
        })
    });
    assert!(!coloured, "colours drawn despite NO_COLOR:\n{esc:?}");

    // Quitting while a step waits: asked first, exit 1.
    t.keys(&["q"]);
    let s = t.wait_for("Quit?");
    assert!(s.contains("y: quit"), "the dialog's keys fit at 80x24:\n{s}");
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 1);
    assert_terminal_restored(&t, "aborted", 1);
}

/// The Drop guard ends runbook, its step and the tmux server (what a failing test relies on).
#[test]
fn the_harness_cleans_up_its_tmux_server() {
    let socket;
    {
        let t = Tmux::start(Run {
            runbook: LONG,
            width: 80,
            height: 24,
            no_color: false,
        });
        socket = t.server.socket().to_string();
        let pid = t.pid("long.pid");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        // Dropped here, as a failing test would: the server, runbook and its step go.
        drop(t);
        wait_gone(pid);
    }
    let o = Command::new("tmux")
        .args(["-L", &socket, "has-session", "-t", "main"])
        .output()
        .expect("tmux");
    assert!(!o.status.success(), "the tmux server is gone");
}

const QUICK: &str = r#"
[runbook]
title = "Quick"

[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "hi"
title = "Say hi"
run = "echo hi"
"#;

/// A finished run waits for `q`; when the terminal goes away instead (the SSH session dropped,
/// tmux killed), runbook must leave — not wait forever, and not spin on a terminal at end-of-file.
#[test]
fn a_finished_run_whose_terminal_goes_away_exits() {
    let t = Tmux::start(Run {
        runbook: QUICK,
        width: 100,
        height: 30,
        no_color: false,
    });
    t.wait_for("Run succeeded (exit 0)");
    let journal = t.journal();
    let pid = events(&journal, "run_started")[0]["pid"]
        .as_i64()
        .expect("run_started has the pid") as i32;
    assert!(!gone(pid), "runbook waits for q while its terminal is there");
    t.server.ok(&["kill-server"]);
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "runbook (pid {pid}) is still running 5 s after its terminal went away"
        );
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// Keys act on what the operator sees (SPEC §5)

const ON_SCREEN: &str = r#"
[runbook]
title = "Keys on screen"

[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "look"
title = "Look at the dashboard"
manual = "Open the dashboard"

[[phase]]
id = "two"
title = "Two"

[[phase.step]]
id = "approve"
title = "Change approved"
manual = "Check that change CHG-42 is approved"

[[phase.step]]
id = "migrate"
title = "Migrate the schema"
run = "touch migrated"
irreversible = true
"#;

#[test]
fn enter_shows_a_waiting_step_of_another_phase_first_and_an_irreversible_step_needs_y() {
    let t = Tmux::start(Run {
        runbook: ON_SCREEN,
        width: 80,
        height: 24,
        no_color: true,
    });
    t.wait_for("To do: Open the dashboard");
    t.keys(&["Enter"]);
    t.wait_for("To do: Check that change CHG-42");
    // The operator looks back at phase 1; the phase-2 step waits, its instruction off screen.
    t.keys(&["Left"]);
    t.wait_for("Phase 1/2: One");
    t.keys(&["Enter"]);
    let s = t.wait_for("two/approve is on screen now");
    assert!(s.contains("To do: Check that change CHG-42"), "{s}");
    let journal = t.journal();
    assert!(
        !journal
            .iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == "approve"),
        "the first Enter confirmed nothing: {journal:#?}"
    );
    // Enter, and Enter again at once: the second press must not start the irreversible step.
    t.keys(&["Enter", "Enter"]);
    let s = t.wait_for("IRREVERSIBLE: Enter, then y");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.path("migrated").exists(), "an Enter typed ahead ran it:\n{s}");
    if !t.screen().contains("Run an IRREVERSIBLE step?") {
        t.keys(&["Enter"]);
    }
    let s = t.wait_for("Run an IRREVERSIBLE step?");
    assert!(s.contains("two/migrate: Migrate the schema"), "{s}");
    assert!(s.contains("the rollback procedure cannot undo it"), "{s}");
    assert!(!t.path("migrated").exists());
    t.keys(&["y"]);
    t.wait_for("Run succeeded (exit 0)");
    assert!(t.path("migrated").exists());
    let journal = t.journal();
    assert_eq!(step_finished(&journal, "two", "approve")["by"], "alice");
    assert_eq!(step_finished(&journal, "two", "migrate")["by"], "alice");
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
}

const COUNTDOWNS: &str = r#"
[runbook]
title = "Countdowns"

[[trigger]]
id = "security"
title = "Security issue"
auto_rollback = "5m"

[[phase]]
id = "p"
title = "Deploy"

[[phase.step]]
id = "deploy"
title = "Deploy the canary"
run = "touch deployed"
confirm = true

[[phase.step]]
id = "bake"
title = "Bake the canary"
watch = "5m"

[rollback]
title = "Back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "rm -f deployed"
"#;

#[test]
fn a_firing_trigger_shows_its_auto_rollback_countdown_and_keeps_no_go_ahead() {
    let t = Tmux::start(Run {
        runbook: COUNTDOWNS,
        width: 80,
        height: 24,
        no_color: true,
    });
    t.wait_for("waiting for go-ahead: Enter");
    // Raise the trigger by hand: t, Enter (the only trigger), a reason, Enter.
    t.keys(&["t"]);
    t.wait_for("Raise which trigger?");
    t.keys(&["Enter"]);
    t.wait_for("Raise trigger security");
    t.keys(&["-l", "drill"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("ROLLS BACK BY ITSELF IN 4:");
    assert!(s.contains("a: acknowledge (stops it)"), "{s}");
    assert!(s.contains("AUTO ROLLBACK IN 4:"), "{s}");
    // Enter while it fires starts nothing and says why; the acknowledgement starts nothing either.
    t.keys(&["Enter"]);
    t.wait_for("trigger firing: a (acknowledge) or R first");
    t.keys(&["a"]);
    let s = t.wait_until("the countdown gone", |s| {
        s.contains("security acknowledged") && !s.contains("BY ITSELF")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !t.path("deployed").exists(),
        "a go-ahead was kept and carried out:\n{s}"
    );
    assert!(events(&t.journal(), "step_started").is_empty());
    // Only a go-ahead given now counts; then the watch says when it passes by itself.
    t.keys(&["Enter"]);
    let s = t.wait_for("WATCH passes by itself in 4:");
    assert!(s.contains("Enter, y: pass it now"), "{s}");
    assert!(t.path("deployed").exists());
    t.keys(&["Enter"]);
    t.wait_for("End the watch early?");
    t.keys(&["y"]);
    t.wait_for("Run succeeded (exit 0)");
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
}

#[test]
fn headless_on_a_terminal_warns_before_an_irreversible_step_and_takes_only_y() {
    let t = Tmux::start_with(
        Run {
            runbook: ON_SCREEN,
            width: 80,
            height: 24,
            no_color: true,
        },
        "--headless",
    );
    t.wait_for("[Enter] confirm");
    t.keys(&["Enter"]);
    t.wait_for("CHG-42");
    t.keys(&["Enter"]);
    let s = t.wait_for("IRREVERSIBLE: two/migrate cannot be undone by the rollback procedure");
    assert!(s.contains("[y] run it"), "{s}");
    // A bare Enter does not start it, and says why.
    t.keys(&["Enter"]);
    t.wait_for("this step cannot be undone: y runs it");
    assert!(!t.path("migrated").exists());
    // One key: no Enter after it.
    t.keys(&["y"]);
    assert_eq!(t.exit_code(), 0);
    assert!(t.path("migrated").exists());
    assert_eq!(step_finished(&t.journal(), "two", "migrate")["by"], "alice");
}

/// Reading a run at 80×24 (issue 9): a chatty step fails; its log pages a screenful at a time and
/// moves again after Home; a search finds and counts; `r` retries and `[` brings back the first
/// attempt's output; `z` gives the log the whole screen with its file's full path.
#[test]
fn at_80x24_the_log_pages_searches_and_shows_an_earlier_attempt_zoomed() {
    let runbook = r#"
[runbook]
title = "Reading a run"

[[phase]]
id = "p"
title = "Build"

[[phase.step]]
id = "chatty"
title = "A chatty step"
run = 'if [ -f tried ]; then echo second try; else touch tried; for i in $(seq 10 89); do printf "line %s\tok\n" $i; done; echo "error: transient network blip"; printf "progress 10%%\rprogress 100%%\n"; exit 1; fi'
"#;
    let t = Tmux::start(Run {
        runbook,
        width: 80,
        height: 24,
        no_color: true,
    });
    let done = |s: &str| {
        s.contains("failed: r retry")
            && s.lines()
                .any(|l| l.contains("progress 100%") && !l.contains("printf"))
    };
    let s = t.wait_until("the failed step and its whole log", done);
    // Tabs expanded, the progress line in its last state.
    assert!(s.contains("line 89 ok"), "{s}");
    let progress = s
        .lines()
        .find(|l| l.contains("progress 100%") && !l.contains("printf"));
    assert!(progress.is_some_and(|l| !l.contains("progress 10%")), "{s}");
    // Home, then PgDn: it moves (a screenful), and ↓ in the log moves a line.
    t.keys(&["Home"]);
    let home = t.wait_for("line 10 ok");
    t.keys(&["PageDown"]);
    let page = t.wait_until("a page further", |s| !s.contains("line 10 ok") && s != home);
    let rows = home.lines().filter(|l| l.contains(" ok ")).count();
    let first_after = page.lines().find(|l| l.contains(" ok ")).expect("a log line");
    let last_before = home.lines().rfind(|l| l.contains(" ok ")).expect("a log line");
    let n = |l: &str| -> u32 { l.split("line ").nth(1).unwrap()[..2].parse().unwrap() };
    assert_eq!(
        n(first_after),
        n(last_before) + 1,
        "a page is a screenful ({rows} lines)"
    );
    // Search: found, counted.
    t.keys(&["/", "blip", "Enter"]);
    t.wait_for("/blip: 1/1");
    // Retry; then the first attempt's output is one key away.
    t.keys(&["r"]);
    t.wait_for("2 attempts");
    t.keys(&["["]);
    let s = t.wait_for("attempt 1/2");
    assert!(s.contains("error: transient network blip"), "{s}");
    // Zoom the log: the whole screen, its file's full path at the bottom.
    t.keys(&["Tab", "z"]);
    let s = t.wait_for("unzoom");
    assert!(s.contains("logs/p--chatty--1.log"), "{s}");
    assert!(!s.contains("$ if [ -f tried ]"), "the steps pane gave way: {s}");
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 0);
}

/// Following a log, frames move it by scrolling the terminal (a scrolling region spans whole
/// rows) and repair what moved beside it: on a real terminal every row keeps the overview's and
/// the sidebar's columns as they were, and the log shows its lines in order, none lost or doubled.
#[test]
fn a_followed_log_scrolls_and_leaves_the_panes_beside_it_intact() {
    let runbook = r#"
[runbook]
title = "Following a log"

[[metric]]
id = "errors"
title = "Error rate"
query = "x"
unit = "percent"
simulate = { baseline = 0.002, jitter = 0.0 }

[[trigger]]
id = "errors"
title = "Error rate above 5%"
metric = "errors"
above = 0.05

[[phase]]
id = "p"
title = "Build"

[[phase.step]]
id = "flood"
title = "A step that prints steadily"
run = 'echo start; sleep 1; i=100; while [ $i -lt 400 ]; do echo "n=$i $(printf %0${i}d 0 | cut -c1-$((i % 40)))"; i=$((i+1)); sleep 0.01; done; echo done; sleep 30'
"#;
    for (width, height) in [(120u16, 36u16), (80, 24)] {
        let t = Tmux::start(Run {
            runbook,
            width,
            height,
            no_color: false,
        });
        let before = t.wait_until("the step's first line", |s| {
            s.lines().any(|l| l.contains(" start") && !l.contains("echo"))
        });
        let after = t.wait_until("the step's last line", |s| {
            s.lines()
                .any(|l| l.ends_with("│") && l.contains(" done") && !l.contains("echo"))
        });
        let chars = |s: &str| {
            s.lines()
                .map(|l| l.chars().collect::<Vec<char>>())
                .collect::<Vec<_>>()
        };
        let (b, a) = (chars(&before), chars(&after));
        let title = a
            .iter()
            .position(|r| r.iter().collect::<String>().contains("Log: p/flood"))
            .expect("the log pane's title");
        let left = a[title]
            .iter()
            .position(|&c| c == '┌' || c == '┐')
            .expect("a corner");
        let left = if a[title][left] == '┐' { left + 1 } else { left };
        let right = a[title].iter().rposition(|&c| c == '┐').expect("its corner");
        let mut numbers = Vec::new();
        for (y, row) in a.iter().enumerate().skip(title + 1) {
            let text: String = row.iter().collect();
            let Some(n) = text.split("n=").nth(1) else {
                continue;
            };
            numbers.push(n[..3].parse::<u32>().expect("a number"));
            assert_eq!(
                row[..=left],
                b[y][..=left],
                "{width}x{height} row {y}: the columns left of the log changed\n{before}\n{after}"
            );
            assert_eq!(
                row[right..],
                b[y][right..],
                "{width}x{height} row {y}: the columns right of the log changed\n{before}\n{after}"
            );
        }
        assert!(numbers.len() > 5, "{after}");
        assert_eq!(numbers.last(), Some(&399), "{after}");
        for w in numbers.windows(2) {
            assert_eq!(w[1], w[0] + 1, "lines in order, none lost or doubled:\n{after}");
        }
    }
}

/// A headless run on a terminal, with a metric sampled every second.
const HEADLESS_PROMPT: &str = r#"
[runbook]
title = "Prompt drill"

[metrics]
interval = "1s"

[[metric]]
id = "errors"
title = "Error rate"
command = "echo 0.004"
unit = "percent"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "check"
title = "Check the dashboard"
manual = "Look at the dashboard"

[[phase.step]]
id = "fail"
title = "A failing step"
run = "echo boom; exit 1"

[rollback]
title = "Back out"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "echo reverted"
"#;

impl Tmux {
    /// The pane's terminal settings, as `stty -a` prints them.
    fn stty(&self) -> String {
        let tty = self
            .server
            .ok(&["display-message", "-p", "-t", "main", "#{pane_tty}"]);
        let o = Command::new("stty")
            .args(["-a", "-F", tty.trim()])
            .output()
            .expect("run stty");
        assert!(o.status.success(), "stty: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// Whether `stty -a` shows the terminal line-buffered with echo, as a shell leaves it.
fn cooked(stty: &str) -> bool {
    let flags: Vec<&str> = stty.split_whitespace().collect();
    flags.contains(&"icanon") && flags.contains(&"echo")
}

fn last_line(screen: &str) -> &str {
    screen.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("")
}

/// The headless question on a terminal (issue 9): one key answers it, a wrong key is answered
/// with the choices, metric lines printed while it waits go above it and never into it, a
/// reason is typed on a line of its own, and the terminal is line-buffered with echo again after.
#[test]
fn headless_question_takes_one_key_and_metric_lines_never_land_in_it() {
    let t = Tmux::start_with(
        Run {
            runbook: HEADLESS_PROMPT,
            width: 80,
            height: 24,
            no_color: true,
        },
        "--headless",
    );
    let question = "deploy/check: [Enter] confirm, [s] skip, [R] roll back, [q] stop the run: ";
    // Two metric lines after the question appeared: both above it, the question still last.
    let s = t.wait_until("two metric lines printed while the question is open", |s| {
        s.rsplit("Look at the dashboard")
            .next()
            .is_some_and(|after| after.matches("metrics: errors=0.40%").count() >= 2)
    });
    assert_eq!(last_line(&s), question.trim_end(), "{s}");
    assert!(
        !s.lines().any(|l| l.contains("metrics:") && l.contains("[Enter]")),
        "a metric line ran into the question:\n{s}"
    );
    assert!(!cooked(&t.stty()), "no line buffering while asking");

    // A key that is not a choice: said, with the choices; the question comes back.
    t.keys(&["x"]);
    let s = t.wait_for("`x` is not one of the choices: Enter, s, R, q");
    assert_eq!(last_line(&s), question.trim_end(), "{s}");

    // `s` alone (no Enter) chooses; the reason is typed on its own line, Backspace works, and a
    // metric line while typing keeps what was typed.
    t.keys(&["s"]);
    t.wait_for("reason for skipping:");
    t.keys(&["-l", "not neededx"]);
    t.keys(&["BSpace"]);
    let s = t.wait_until("a metric line after the typed reason", |s| {
        s.split(&format!("{question}skip")).nth(1).is_some_and(|after| {
            after.contains("metrics:") && last_line(s) == "reason for skipping: not needed"
        })
    });
    assert!(!s.contains("not neededx"), "{s}");
    t.keys(&["Enter"]);
    let s = t.wait_for("deploy/fail failed. [r] retry");
    assert!(s.contains("deploy/check skipped"), "{s}");

    // After a failure: `R`, with the operator's words for why.
    t.keys(&["R"]);
    t.wait_for("why roll back? (Enter: no reason)");
    t.keys(&["-l", "boom in the canary"]);
    t.keys(&["Enter"]);
    assert_eq!(t.exit_code(), 3);
    assert!(cooked(&t.stty()), "the terminal is given back:\n{}", t.stty());

    let j = t.journal();
    let skipped = step_finished(&j, "deploy", "check");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["reason"], "not needed");
    assert_eq!(skipped["by"], "alice");
    let rb = events(&j, "rollback_started");
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0]["reason"], "step:deploy/fail");
    assert_eq!(rb[0]["operator"], "alice");
    assert_eq!(rb[0]["note"], "boom in the canary");
}

/// Ctrl-C while the headless question is open interrupts the run (exit 130), and the terminal
/// is line-buffered with echo again.
#[test]
fn headless_question_gives_the_terminal_back_when_interrupted() {
    let t = Tmux::start_with(
        Run {
            runbook: HEADLESS_PROMPT,
            width: 80,
            height: 24,
            no_color: true,
        },
        "--headless",
    );
    t.wait_for("deploy/check: [Enter] confirm");
    assert!(!cooked(&t.stty()));
    // SIGINT to runbook alone, as Ctrl-C in an interactive shell sends it to the job (here the
    // script around it shares its process group).
    let pane = t.server.ok(&["list-panes", "-t", "main", "-F", "#{pane_pid}"]);
    let pane = pane.trim();
    let children = std::fs::read_to_string(format!("/proc/{pane}/task/{pane}/children")).expect("children");
    let pid: i32 = children
        .split_whitespace()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "runbook"))
        .expect("runbook runs in the pane")
        .parse()
        .expect("a pid");
    // SAFETY: kill(2) of a process this test started; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    assert_eq!(t.exit_code(), 130);
    assert!(cooked(&t.stty()), "the terminal is given back:\n{}", t.stty());
}
