//! `runbook attach`, end to end, the way a team uses it on a bastion: the driver runs the real
//! binary's terminal UI in one tmux session as one Unix user, watchers attach from others as other
//! Unix users (created with `useradd`, run with `runuser`; the tests run as root, as CI does), all
//! at 80×24, and the screens are read back with `capture-pane`. The state dir is shared with a
//! group (`2770`), as the README sets it up for a team.
//!
//! tmux and runuser must be installed (`.ci/run` installs tmux); these tests fail, not skip,
//! without them or without root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::tmux::TmuxServer;
use common::{journal_now, wait_for};
use serde_json::Value;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(30);
const GROUP: &str = "rbwatch";
const ALICE: &str = "rbw-alice";
const BOB: &str = "rbw-bob";
const CAROL: &str = "rbw-carol";

static USERS: Mutex<bool> = Mutex::new(false);

fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The group and the three operators, created once (as root).
fn users() {
    let mut made = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if *made {
        return;
    }
    assert!(
        nix::unistd::getuid().is_root(),
        "these tests create Unix users (useradd) and run as them (runuser): run them as root, as .ci/run does"
    );
    let exists = |what: &str, name: &str| {
        Command::new("getent")
            .args([what, name])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !exists("group", GROUP) {
        let _ = Command::new("groupadd").arg(GROUP).output();
    }
    for u in [ALICE, BOB, CAROL] {
        if !exists("passwd", u) {
            // Another test binary may create it at the same moment: only its existence counts.
            let _ = Command::new("useradd")
                .args(["-M", "-N", "-g", GROUP, "-s", "/bin/sh", u])
                .output();
        }
        assert!(exists("passwd", u), "useradd {u} failed");
    }
    *made = true;
}

/// A team's folder: world-searchable, with the runbooks readable and a state dir shared with the
/// group (`install -d -m 2770 -g GROUP`), and one tmux server for every terminal in it.
struct Team {
    // Declared first, so that the server goes before the folder.
    tmux: TmuxServer,
    dir: TempDir,
}

impl Team {
    fn new() -> Team {
        users();
        let dir = tempfile::Builder::new()
            .prefix("runbook-attach-")
            .tempdir()
            .expect("temp dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        run_ok(
            Command::new("install")
                .args(["-d", "-m", "2770", "-g", GROUP])
                .arg(dir.path().join("state")),
        );
        Team {
            tmux: TmuxServer::new("attach"),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        p
    }

    /// A terminal of 80×24 named `name` in which `user` runs `runbook ARGS`. When runbook exits,
    /// `EXIT=<status>` goes to the file `<name>.exit` and the pane stays open.
    fn terminal(&self, name: &str, user: &str, args: &str) {
        let script = format!(
            "cd '{dir}'\n\
             runuser -u {user} -- env HOME='{dir}' USER={user} LOGNAME={user} LANG=C.UTF-8 TERM=tmux-256color \
             '{bin}' {args}\n\
             echo \"EXIT=$?\" > '{dir}/{name}.tmp' && mv '{dir}/{name}.tmp' '{dir}/{name}.exit'\n\
             exec sleep 600\n",
            dir = self.dir.path().display(),
            bin = env!("CARGO_BIN_EXE_runbook"),
        );
        let script_path = self.path(&format!("{name}.sh"));
        std::fs::write(&script_path, script).expect("write script");
        let sh = format!("sh '{}'", script_path.display());
        if self.tmux.run(&["has-session"]).status.success() {
            self.tmux.ok(&["new-window", "-d", "-n", name, &sh]);
        } else {
            self.tmux.ok(&[
                "new-session",
                "-d",
                "-s",
                "team",
                "-n",
                name,
                "-x",
                "80",
                "-y",
                "24",
                &sh,
            ]);
        }
        self.tmux.ok(&[
            "resize-window",
            "-t",
            &format!("team:{name}"),
            "-x",
            "80",
            "-y",
            "24",
        ]);
    }

    fn screen(&self, name: &str) -> String {
        self.tmux.screen(&format!("team:{name}"))
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        self.tmux.keys(&format!("team:{name}"), keys);
    }

    /// Waits until the screen of `name` shows `text` (and has settled); returns it.
    fn wait_for(&self, name: &str, text: &str) -> String {
        let what = format!("{text:?}");
        self.tmux
            .wait_screen(&format!("team:{name}"), &what, TIMEOUT, |s| s.contains(text))
    }

    fn exit_code(&self, name: &str) -> i32 {
        let path = self.path(&format!("{name}.exit"));
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&path) {
                return s.trim().trim_start_matches("EXIT=").parse().expect("exit status");
            }
            if start.elapsed() > TIMEOUT {
                panic!("{name} did not exit; its screen:\n{}", self.screen(name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run_dir(&self) -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.state().join("runs"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert_eq!(dirs.len(), 1, "one run: {dirs:?}");
        dirs.remove(0)
    }

    fn journal(&self) -> Vec<Value> {
        journal_now(&self.run_dir().join("journal.jsonl"))
    }

    /// Waits until the journal has an event that `ok` accepts.
    fn wait_event(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        let seen = wait_for(TIMEOUT, || {
            let dirs = std::fs::read_dir(self.state().join("runs"))
                .map(|rd| rd.count())
                .unwrap_or(0);
            if dirs != 1 {
                return false;
            }
            found = self.journal().into_iter().find(|e| ok(e));
            found.is_some()
        });
        assert!(seen, "no {what} in the journal: {:#?}", self.journal());
        found.expect("found")
    }
}

/// The pids of `runbook attach` processes whose command line mentions `needle`.
fn attach_pids(needle: &Path) -> Vec<i32> {
    let needle = needle.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmd
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| a.ends_with("/runbook"))
                && args.iter().any(|a| a == "attach")
                && args.iter().any(|a| a.contains(&needle))
        })
        .collect()
}

const TEAM_RUNBOOK: &str = r#"
[runbook]
title = "Checkout rollout"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "build"
title = "Build the release"
run = "for i in $(seq 1 10); do echo tick-$i; sleep 0.4; done"

[[phase.step]]
id = "check"
title = "Check the dashboards"
manual = "Look at the error rate"

[[phase.step]]
id = "ship"
title = "Ship it"
run = "echo shipped-it"
approval = { count = 1 }
approvers = ["rbw-bob", "rbw-carol"]
"#;

#[test]
fn a_watcher_sees_the_run_live_cannot_change_it_and_its_notes_and_approvals_are_journaled() {
    let t = Team::new();
    let rb = t.write("checkout.toml", TEAM_RUNBOOK);
    let state = t.state();
    t.terminal(
        "alice",
        ALICE,
        &format!("run '{}' --state-dir '{}'", rb.display(), state.display()),
    );
    t.wait_event("build started", |e| {
        e["event"] == "step_started" && e["step"] == "build"
    });
    t.terminal("bob", BOB, &format!("attach --state-dir '{}'", state.display()));

    // WATCHING, and who drives from where, in the header; the step's output as it comes.
    let s = t.wait_for("bob", "tick-");
    let head = s.lines().next().unwrap_or_default();
    assert!(
        head.contains("WATCHING · rbw-alice@") && head.contains("drives"),
        "header: {head:?}\n{s}"
    );
    t.wait_for("bob", "tick-10");

    // The manual step waits for the driver; the watcher's keys that would change the run say
    // who can do it, and do nothing.
    t.wait_for("bob", "waiting for rbw-alice");
    t.keys("bob", &["Enter"]);
    let s = t.wait_for("bob", "only rbw-alice (driving) can confirm");
    let run_id = t.run_dir().file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        s.contains("runbook takeover") && s.contains(&run_id),
        "the refusal says how to take over:\n{s}"
    );
    t.keys("bob", &["R"]);
    t.wait_for("bob", "only rbw-alice (driving) can roll back");
    t.keys("bob", &["s"]);
    t.wait_for("bob", "only rbw-alice (driving) can skip a step");
    std::thread::sleep(Duration::from_millis(500));
    let j = t.journal();
    assert!(
        !j.iter().any(
            |e| e["event"] == "step_finished" && e["step"] == "check" || e["event"] == "rollback_started"
        ),
        "a watcher's key changed the run: {j:#?}"
    );

    // A note: sent to the driver, journaled with the watcher's Unix user.
    t.keys("bob", &["n"]);
    t.wait_for("bob", "Note for the journal");
    t.keys("bob", &["-l", "db looks fine from here"]);
    t.keys("bob", &["Enter"]);
    let note = t.wait_event("bob's note", |e| e["event"] == "note");
    assert_eq!(note["operator"], BOB, "{note:#}");
    assert_eq!(note["text"], "db looks fine from here");
    t.wait_for("bob", "note by rbw-bob: db looks fine");
    t.wait_for("alice", "note by rbw-bob: db looks fine");

    // The driver confirms; the next step waits for an approval that the watcher gives.
    t.keys("alice", &["Enter"]);
    let s = t.wait_for("bob", "waiting for 1 approval");
    assert!(s.contains("A  approve"), "the approve key is offered:\n{s}");
    t.keys("bob", &["A"]);
    let s = t.wait_for("bob", "Approve deploy/ship?");
    assert!(s.contains("Ship it"), "the confirmation names the step:\n{s}");
    t.keys("bob", &["y"]);
    let approval = t.wait_event("bob's approval", |e| e["event"] == "approval");
    assert_eq!(approval["operator"], BOB, "{approval:#}");
    assert_eq!(approval["step"], "ship");

    // The run ends: the watcher says so, and leaves with q.
    t.wait_event("the end", |e| e["event"] == "run_finished");
    let s = t.wait_for("bob", "SUCCEEDED");
    assert!(s.contains("WATCHING · ended"), "{s}");
    t.keys("bob", &["q"]);
    assert_eq!(t.exit_code("bob"), 0);
    t.keys("alice", &["q"]);
    assert_eq!(t.exit_code("alice"), 0);
    let j = t.journal();
    let fin = j.iter().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(fin["outcome"], "succeeded");
    let check = j
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "check")
        .unwrap();
    assert_eq!(check["by"], ALICE, "only the driver confirmed: {check:#}");
}

const SIMPLE: &str = r#"
[runbook]
title = "Cache flush"

[[phase]]
id = "flush"
title = "Flush"

[[phase.step]]
id = "work"
title = "Flush the caches"
run = "for i in $(seq 1 10); do echo flushed-$i; sleep 0.4; done"

[[phase.step]]
id = "check"
title = "Check the hit rate"
manual = true
"#;

#[test]
fn watchers_killed_or_hung_up_change_nothing_for_the_driver() {
    let t = Team::new();
    let rb = t.write("flush.toml", SIMPLE);
    let state = t.state();
    t.terminal(
        "alice",
        ALICE,
        &format!("run '{}' --state-dir '{}'", rb.display(), state.display()),
    );
    t.wait_event("work started", |e| {
        e["event"] == "step_started" && e["step"] == "work"
    });
    t.terminal("bob", BOB, &format!("attach --state-dir '{}'", state.display()));
    t.terminal(
        "carol",
        CAROL,
        &format!("attach --state-dir '{}'", state.display()),
    );
    t.wait_for("bob", "flushed-");
    t.wait_for("carol", "flushed-");
    let pids = attach_pids(&state);
    assert_eq!(pids.len(), 2, "two watchers: {pids:?}");

    // bob's watcher is killed; carol's terminal goes away (a hang-up).
    let bob_pid = *pids
        .iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("Uid:") && l.contains(&uid_of(BOB).to_string()))
        })
        .expect("bob's watcher");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bob_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 bob's watcher");
    t.tmux.ok(&["kill-window", "-t", "team:carol"]);
    assert!(
        wait_for(Duration::from_secs(10), || attach_pids(&state).is_empty()),
        "a watcher outlived its terminal: {:?}",
        attach_pids(&state)
    );

    // The driver goes on as if nobody had watched.
    t.wait_for("alice", "WAITING FOR YOU");
    t.keys("alice", &["Enter"]);
    t.wait_for("alice", "SUCCEEDED");
    t.keys("alice", &["q"]);
    assert_eq!(t.exit_code("alice"), 0);
    let j = t.journal();
    let names: Vec<&str> = j.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        !names
            .iter()
            .any(|n| matches!(*n, "note" | "approval" | "handover")),
        "{names:?}"
    );
    let work = j
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "work")
        .unwrap();
    assert_eq!(work["status"], "succeeded");
    assert_eq!(work["exit_code"], 0);
    let log = std::fs::read_to_string(t.run_dir().join(work["log"].as_str().unwrap())).unwrap();
    assert_eq!(log.lines().count(), 10, "{log}");
    // Nothing of a watcher's is left in the run folder.
    let mut files: Vec<String> = std::fs::read_dir(t.run_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["journal.jsonl", "lock", "logs"], "{files:?}");
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
        .expect("the user exists")
}

#[test]
fn a_finished_run_is_shown_whole_with_its_outcome() {
    let t = Team::new();
    let rb = t.write(
        "flush.toml",
        &SIMPLE.replace("manual = true", "run = \"echo hit-rate-ok\""),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("run")
        .arg(&rb)
        .args(["--headless", "--state-dir"])
        .arg(t.state())
        .env("USER", ALICE)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = t.run_dir().file_name().unwrap().to_string_lossy().into_owned();
    t.terminal(
        "bob",
        BOB,
        &format!("attach {id} --state-dir '{}'", t.state().display()),
    );
    let s = t.wait_for("bob", "SUCCEEDED");
    assert!(s.contains("WATCHING · ended"), "{s}");
    assert!(s.contains("hit-rate-ok"), "the last step's output is shown:\n{s}");
    for title in ["Flush the caches", "Check the hit rate"] {
        assert!(
            s.lines().any(|l| l.contains(title) && l.contains("succeeded")),
            "{title} shown succeeded:\n{s}"
        );
    }
    // Nothing more will come: keys that would change it say so.
    t.keys("bob", &["R"]);
    t.wait_for("bob", "the run has ended: nobody can roll back now");
    t.keys("bob", &["q"]);
    assert_eq!(t.exit_code("bob"), 0);
}

#[test]
fn a_watcher_learns_at_once_that_the_driver_was_killed() {
    let t = Team::new();
    let rb = t.write(
        "flush.toml",
        &SIMPLE.replace("sleep 0.4; done", "sleep 0.4; done; sleep 30"),
    );
    let state = t.state();
    t.terminal(
        "alice",
        ALICE,
        &format!("run '{}' --state-dir '{}'", rb.display(), state.display()),
    );
    t.wait_event("work started", |e| {
        e["event"] == "step_started" && e["step"] == "work"
    });
    t.terminal("bob", BOB, &format!("attach --state-dir '{}'", state.display()));
    t.wait_for("bob", "rbw-alice@");
    t.wait_for("bob", "drives");
    let lock = std::fs::read_to_string(t.run_dir().join("lock")).unwrap();
    let pid: i32 = lock
        .rsplit("(pid ")
        .next()
        .and_then(|p| p.trim().trim_end_matches(')').parse().ok())
        .expect("the driver's pid in its lock");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the driver");
    let s = t.wait_for("bob", "is GONE");
    let id = t.run_dir().file_name().unwrap().to_string_lossy().into_owned();
    let flat = s.replace('\n', "");
    assert!(
        flat.contains(&format!("runbook takeover {id}")),
        "the watcher says how to take over:\n{s}"
    );
    // The step goes on under its monitor, and the watcher keeps showing its output.
    t.wait_for("bob", "flushed-10");
    t.keys("bob", &["Enter"]);
    t.keys("bob", &["q"]);
    assert_eq!(t.exit_code("bob"), 0);
    // The step the dead driver left running: ended here (its status file names its group).
    let status = t.run_dir().join("logs/flush--work--1.status");
    let pgid = serde_json::from_str::<Value>(&std::fs::read_to_string(status).unwrap_or_default())
        .ok()
        .and_then(|v| v["pid"].as_i64());
    if let Some(pgid) = pgid {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
