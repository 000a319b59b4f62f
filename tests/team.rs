//! Operators as a team (SPEC §8), end to end with real Unix users: each test creates its own
//! users and group (`useradd`, `groupadd`; removed when it ends), a state dir shared with that
//! group exactly as the README says (`install -d -m 2770 -g GROUP DIR`), runs the driver as one
//! user (under tmux for the terminal UI, or headless) and `runbook approve` / `runbook takeover`
//! as others with `runuser -u`. Identity comes from the kernel (SO_PEERCRED): nothing in these
//! commands says who runs them.
//!
//! They need root (to create users), tmux and util-linux's `runuser`: `.ci/run` runs as root and
//! installs them. Without them the tests fail, they never skip.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::tmux::TmuxServer;
use common::{Fixture, events, run_dirs, run_journal, runbook, wait_for};
use serde_json::Value;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(30);

static TEAMS: AtomicUsize = AtomicUsize::new(0);

/// Users and a group made for one test, a folder they may all read, a shared state dir, and a
/// tmux server of its own. Everything goes when it is dropped.
struct Team {
    group: String,
    users: Vec<String>,
    dir: TempDir,
    bin: PathBuf,
    tmux: TmuxServer,
}

fn check(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Team {
    /// Creates one Unix user per name (their real names are unique: `rbNNNN<i><name>`), all in
    /// a new group, and the shared state dir.
    fn new(names: &[&str]) -> Team {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests create Unix users: run them as root (.ci/run does)"
        );
        let n = TEAMS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("rb{}{n}", std::process::id() % 100_000);
        let group = format!("{tag}grp");
        check(Command::new("groupadd").arg(&group));
        let mut team = Team {
            group: group.clone(),
            users: Vec::new(),
            dir: tempfile::Builder::new().prefix("runbook-team").tempdir().unwrap(),
            bin: PathBuf::new(),
            tmux: TmuxServer::new("team"),
        };
        for name in names {
            let user = format!("{tag}{name}");
            check(Command::new("useradd").args(["-M", "-N", "-s", "/bin/sh", "-G", &group, &user]));
            team.users.push(user);
        }
        let root = team.dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The binary where every user may run it, whatever the permissions of the build folder.
        team.bin = root.join("runbook");
        std::fs::copy(env!("CARGO_BIN_EXE_runbook"), &team.bin).unwrap();
        std::fs::set_permissions(&team.bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The shared state dir, made as the README says.
        check(
            Command::new("install")
                .args(["-d", "-m", "2770", "-g", &group])
                .arg(team.state()),
        );
        team
    }

    /// The real name of the user called `name` in the test.
    fn user(&self, name: &str) -> &str {
        self.users
            .iter()
            .find(|u| u.ends_with(name))
            .unwrap_or_else(|| panic!("no user {name}"))
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a runbook every user may read; `USER_<name>` in it becomes that user's real name.
    fn runbook(&self, name: &str, text: &str) -> PathBuf {
        let mut text = text.to_string();
        for short in ["alice", "bob", "carol"] {
            if let Some(u) = self.users.iter().find(|u| u.ends_with(short)) {
                text = text.replace(&format!("USER_{short}"), u);
            }
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// `runbook ARGS` as `user` (runuser: the user's own uid, HOME and USER).
    fn as_user(&self, user: &str, args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", self.user(user), "--"])
            .arg(&self.bin)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// `runbook takeover RUN --reason REASON --headless` as `user`, its output captured.
    fn spawn_takeover(&self, user: &str, run: &str, reason: &str, state: &str) -> Child {
        self.as_user(
            user,
            &[
                "takeover",
                run,
                "--reason",
                reason,
                "--headless",
                "--state-dir",
                state,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    }

    fn run_as(&self, user: &str, args: &[&str]) -> Output {
        let mut child = self
            .as_user(user, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("runbook {args:?} as {user} did not end within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// `runbook run RB --headless` in the shared state dir as `user`, its output discarded.
    fn spawn_headless(&self, user: &str, rb: &Path) -> Child {
        let state = self.state();
        let args = [
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--state-dir",
            state.to_str().unwrap(),
        ];
        self.as_user(user, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `runbook run RB --headless` in the shared state dir as `user`, to its end.
    fn run_headless(&self, user: &str, rb: &Path) -> Output {
        let state = self.state();
        self.run_as(
            user,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
    }

    /// Starts `runbook ARGS` as `user` in an 80×24 tmux session named `session`; when it exits,
    /// its status goes to the file `<session>.exit` and the pane stays for reading.
    fn tmux_as(&self, session: &str, user: &str, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let exit = self.dir.path().join(format!("{session}.exit"));
        let script = format!(
            "runuser -u {} -- {} {}; echo $? > {}; sleep 600",
            self.user(user),
            self.bin.display(),
            args.join(" "),
            exit.display()
        );
        let cd = format!("cd {} && {script}", self.dir.path().display());
        check(
            self.tmux
                .command(&["new-session", "-d", "-s", session, "-x", "80", "-y", "24", &cd])
                .env("TERM", "xterm-256color")
                .env_remove("NO_COLOR"),
        );
    }

    fn screen(&self, session: &str) -> String {
        self.tmux.screen(session)
    }

    /// Waits until the screen holds `text` (and has settled); returns it.
    fn wait_screen(&self, session: &str, text: &str) -> String {
        let what = format!("{text:?}");
        self.tmux
            .wait_screen(session, &what, TIMEOUT, |s| s.contains(text))
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        self.tmux.keys(session, keys);
    }

    /// Leaves a terminal UI whose run has ended (`q`), and returns its exit status.
    fn quit_finished(&self, session: &str) -> i32 {
        self.wait_screen(session, "q to quit");
        self.keys(session, &["q"]);
        self.exit_of(session)
    }

    /// The exit status `tmux_as` recorded, once there is one.
    fn exit_of(&self, session: &str) -> i32 {
        let path = self.dir.path().join(format!("{session}.exit"));
        let mut code = None;
        wait_for(TIMEOUT, || {
            code = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            code.is_some()
        });
        code.unwrap_or_else(|| panic!("{session} did not exit; its screen:\n{}", self.screen(session)))
    }

    /// The one run folder in the state dir.
    fn run_dir(&self) -> PathBuf {
        let mut found = Vec::new();
        wait_for(TIMEOUT, || {
            found = run_dirs(&self.state());
            !found.is_empty()
        });
        assert_eq!(found.len(), 1, "runs: {found:?}");
        found.pop().unwrap()
    }

    fn journal(&self) -> Vec<Value> {
        run_journal(&self.run_dir())
    }

    /// Waits until the journal has an event that `pred` accepts.
    fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait_for(TIMEOUT, || {
            found = self.journal().into_iter().find(|e| pred(e));
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {what} in the journal: {:#?}", self.journal()))
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        // The terminals first, so that nothing of theirs is left when the users go.
        self.tmux.kill();
        // Whatever these users still run (a driver a failed test left) goes before they do.
        for u in &self.users {
            let _ = Command::new("pkill").args(["-KILL", "-u", u]).status();
        }
        std::thread::sleep(Duration::from_millis(100));
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).stderr(Stdio::null()).status();
        }
        let _ = Command::new("groupdel")
            .arg(&self.group)
            .stderr(Stdio::null())
            .status();
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A step that needs one approval, by alice or bob; the driver is alice.
const FOUR_EYES: &str = r#"
[runbook]
title = "Four eyes"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "migrate"
title = "Migrate the database"
run = "echo migrating as $(id -un)"
approval = { count = 1 }
approvers = ["USER_alice", "USER_bob"]

[[phase.step]]
id = "after"
title = "After"
run = "echo after"
"#;

#[test]
fn an_approval_by_another_operator_lets_the_step_run_and_is_journaled_with_who() {
    let team = Team::new(&["alice", "bob", "carol"]);
    let rb = team.runbook("four-eyes.toml", FOUR_EYES);
    let state = team.state();
    let state = state.to_str().unwrap();
    team.tmux_as(
        "driver",
        "alice",
        &["run", rb.to_str().unwrap(), "--state-dir", state],
    );
    let bob = team.user("bob").to_string();
    let screen = team.wait_screen("driver", &format!("waiting for 1 approval ({bob} may approve)"));
    assert!(screen.contains("WAITING FOR 1 APPROVAL"), "{screen}");
    let run_dir = team.run_dir();
    // The socket is the group's (a shared state dir), and nobody else's.
    let meta = std::fs::metadata(run_dir.join("control.sock")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert!(
        events(&team.journal(), "step_started")
            .iter()
            .all(|e| e["step"] != "migrate")
    );

    let run = run_dir.to_str().unwrap();
    let ok = team.run_as("bob", &["approve", run, "deploy/migrate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains(&format!("{bob} approved deploy/migrate: it goes ahead")),
        "{}",
        text(&ok)
    );
    let finished = team.wait_event("run_finished", |e| e["event"] == "run_finished");
    assert_eq!(finished["outcome"], "succeeded");
    assert_eq!(team.quit_finished("driver"), 0);

    let j = team.journal();
    let approvals = events(&j, "approval");
    assert_eq!(approvals.len(), 1, "{j:#?}");
    let a = approvals[0];
    assert_eq!(a["operator"], bob.as_str());
    assert_eq!(a["step"], "migrate");
    assert_eq!(a["phase"], "deploy");
    assert!(a["from"]["pid"].as_u64().is_some(), "{a}");
    assert!(a["metrics"].is_object(), "{a}");
    // The approval comes before the step starts, and the step then ran as the driver.
    let pos = |pred: &dyn Fn(&Value) -> bool| j.iter().position(pred).unwrap();
    assert!(
        pos(&|e| e["event"] == "approval") < pos(&|e| e["event"] == "step_started" && e["step"] == "migrate")
    );
    let log = std::fs::read_to_string(run_dir.join("logs/deploy--migrate--1.log")).unwrap();
    assert!(
        log.contains(&format!("migrating as {}", team.user("alice"))),
        "{log}"
    );
    // The driver is gone: its socket with it.
    assert!(!run_dir.join("control.sock").exists());
}

#[test]
fn the_driver_cannot_approve_its_own_step_nor_can_someone_not_listed() {
    let team = Team::new(&["alice", "bob", "carol"]);
    let rb = team.runbook("four-eyes.toml", FOUR_EYES);
    let state = team.state();
    let state = state.to_str().unwrap();
    team.tmux_as(
        "driver",
        "alice",
        &["run", rb.to_str().unwrap(), "--state-dir", state],
    );
    team.wait_screen("driver", "WAITING FOR 1 APPROVAL");
    let run_dir = team.run_dir();
    let run = run_dir.to_str().unwrap();

    // The driver's own user, from another terminal.
    let own = team.run_as("alice", &["approve", run, "migrate"]);
    assert_eq!(own.status.code(), Some(1), "{}", text(&own));
    let err = String::from_utf8_lossy(&own.stderr);
    assert!(
        err.contains(&format!(
            "{} drives this run: an approval must come from another operator",
            team.user("alice")
        )),
        "{err}"
    );
    // A member of the group, but not one of the step's approvers.
    let carol = team.run_as("carol", &["approve", run, "deploy/migrate"]);
    assert_eq!(carol.status.code(), Some(1), "{}", text(&carol));
    let err = String::from_utf8_lossy(&carol.stderr);
    assert!(
        err.contains(&format!(
            "{} may not approve deploy/migrate: its approvers are {}, {}",
            team.user("carol"),
            team.user("alice"),
            team.user("bob")
        )),
        "{err}"
    );
    // A step that does not wait.
    let wrong = team.run_as("bob", &["approve", run, "after"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("after does not wait for an approval"));

    // Nothing was approved, nothing started.
    std::thread::sleep(Duration::from_millis(300));
    let j = team.journal();
    assert!(events(&j, "approval").is_empty(), "{j:#?}");
    assert!(
        events(&j, "step_started").iter().all(|e| e["step"] != "migrate"),
        "{j:#?}"
    );
    let screen = team.screen("driver");
    assert!(screen.contains("WAITING FOR 1 APPROVAL"), "{screen}");
    // Quit: the run stops (exit 1) and can be resumed.
    team.keys("driver", &["q"]);
    team.wait_screen("driver", "Quit");
    team.keys("driver", &["y"]);
    assert_eq!(team.exit_of("driver"), 1);
}

/// A step that runs a while and counts how often it was started.
const LONG_STEP: &str = r#"
[runbook]
title = "Hand-over"
lock = "checkout-production"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "rollout"
title = "Roll out"
run = "echo started; sleep 3; echo finished"

[[phase.step]]
id = "verify"
title = "Verify"
run = "echo verified"
"#;

#[test]
fn a_run_whose_driver_was_killed_is_taken_over_at_once_and_its_step_followed_not_restarted() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("handover.toml", LONG_STEP);
    let state = team.state();
    let state = state.to_str().unwrap();
    let mut driver = team.spawn_headless("alice", &rb);
    team.wait_event("the rollout's start", |e| {
        e["event"] == "step_started" && e["step"] == "rollout"
    });
    // runuser's child is the driver: kill -9 it (no chance to clean up: the socket stays), once
    // the step's command runs under its monitor.
    let run_dir = team.run_dir();
    let log = run_dir.join("logs/deploy--rollout--1.log");
    assert!(
        wait_for(TIMEOUT, || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("started"))),
        "the rollout never printed"
    );
    let pid = run_journal(&run_dir)
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["pid"].as_i64())
        .unwrap();
    check(Command::new("kill").args(["-9", &pid.to_string()]));
    let _ = driver.wait();
    assert!(
        run_dir.join("control.sock").exists(),
        "a killed driver leaves its socket"
    );

    let run = run_dir.to_str().unwrap();
    let out = team.run_as(
        "bob",
        &[
            "takeover",
            run,
            "--reason",
            "alice's laptop died",
            "--headless",
            "--state-dir",
            state,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is gone"), "{err}");

    let j = team.journal();
    let h = events(&j, "handover");
    assert_eq!(h.len(), 1, "{j:#?}");
    assert_eq!(h[0]["from"], team.user("alice"));
    assert_eq!(h[0]["to"], team.user("bob"));
    assert_eq!(h[0]["reason"], "alice's laptop died");
    assert_eq!(h[0]["consent"], false);
    let resumed: Vec<_> = events(&j, "run_started").into_iter().skip(1).collect();
    assert_eq!(resumed[0]["operator"], team.user("bob"));
    assert_eq!(resumed[0]["mode"], "resume");
    // The rollout ran once, under its monitor, to its end; the new driver followed it.
    let started: Vec<_> = events(&j, "step_started")
        .into_iter()
        .filter(|e| e["step"] == "rollout")
        .collect();
    assert_eq!(started.len(), 1, "{j:#?}");
    let log = std::fs::read_to_string(run_dir.join("logs/deploy--rollout--1.log")).unwrap();
    assert_eq!(log.matches("started").count(), 1, "{log}");
    assert!(log.contains("finished"), "{log}");
    let last = j.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"], "succeeded");
}

#[test]
fn a_live_driver_hands_over_when_its_operator_agrees() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("handover.toml", LONG_STEP.replace("sleep 3", "sleep 6").as_str());
    let state = team.state();
    let state = state.to_str().unwrap();
    team.tmux_as(
        "driver",
        "alice",
        &["run", rb.to_str().unwrap(), "--state-dir", state],
    );
    team.wait_screen("driver", "running");
    let run_dir = team.run_dir();
    let run = run_dir.to_str().unwrap().to_string();
    let taker = team.spawn_takeover("bob", &run, "end of shift", state);
    let screen = team.wait_screen("driver", "Hand this run over?");
    assert!(
        screen.contains(&format!(
            "{} asks to take over driving this run",
            team.user("bob")
        )),
        "{screen}"
    );
    assert!(screen.contains("end of shift"), "{screen}");
    team.keys("driver", &["y"]);
    // alice's screen goes on as a watcher of the run bob now drives (SPEC §8).
    let bob = team.user("bob");
    let screen = team.wait_screen("driver", "WATCHING");
    assert!(screen.contains(&format!("{bob}@")), "{screen}");
    assert!(screen.contains("rollout"), "{screen}");

    let out = taker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The watcher sees bob's run end; leaving it ends alice's command, as a hand-over does: 0.
    team.wait_screen("driver", "succeeded");
    team.keys("driver", &["q"]);
    assert_eq!(team.exit_of("driver"), 0);
    let screen = team.screen("driver");
    assert!(
        screen.contains(&format!("handed over to {bob}; watching the run from here")),
        "{screen}"
    );
    let j = team.journal();
    let h = events(&j, "handover");
    assert_eq!(h.len(), 1, "{j:#?}");
    assert_eq!(h[0]["from"], team.user("alice"));
    assert_eq!(h[0]["to"], team.user("bob"));
    assert_eq!(h[0]["consent"], true);
    let started: Vec<_> = events(&j, "step_started")
        .into_iter()
        .filter(|e| e["step"] == "rollout")
        .collect();
    assert_eq!(started.len(), 1, "the rollout was started again: {j:#?}");
    let log = std::fs::read_to_string(run_dir.join("logs/deploy--rollout--1.log")).unwrap();
    assert_eq!(log.matches("started").count(), 1, "{log}");
    assert!(log.contains("finished"), "{log}");
    assert_eq!(j.last().unwrap()["outcome"], "succeeded", "{j:#?}");
    // The deploy lock went with the run to bob, and was released at its end.
    let lock = std::fs::read_to_string(team.state().join("locks/checkout-production.lock")).unwrap();
    assert!(lock.starts_with(&format!("{}@", team.user("bob"))), "{lock}");
}

#[test]
fn a_driver_that_says_no_keeps_the_run() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("four-eyes.toml", FOUR_EYES);
    let state = team.state();
    let state = state.to_str().unwrap();
    team.tmux_as(
        "driver",
        "alice",
        &["run", rb.to_str().unwrap(), "--state-dir", state],
    );
    team.wait_screen("driver", "WAITING FOR 1 APPROVAL");
    let run = team.run_dir().to_str().unwrap().to_string();
    let taker = team.spawn_takeover("bob", &run, "let me", state);
    team.wait_screen("driver", "Hand this run over?");
    team.keys("driver", &["n"]);
    let out = taker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not agree to hand the run over"),
        "{}",
        text(&out)
    );
    assert!(events(&team.journal(), "handover").is_empty());
    // Still alice's: bob's approval lets the step run.
    let ok = team.run_as("bob", &["approve", &run, "migrate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert_eq!(team.quit_finished("driver"), 0);
}

#[test]
fn a_second_run_holding_the_same_lock_is_refused_naming_the_holder() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("handover.toml", LONG_STEP);
    let mut first = team.spawn_headless("alice", &rb);
    team.wait_event("the rollout's start", |e| e["event"] == "step_started");
    let run_dir = team.run_dir();
    let second = team.run_headless("bob", &rb);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!(
            "deploy lock `checkout-production` is held by {}@",
            team.user("alice")
        )),
        "{err}"
    );
    assert!(err.contains(run_dir.to_str().unwrap()), "{err}");
    assert_eq!(
        run_dirs(&team.state()).len(),
        1,
        "the refused run left a folder behind"
    );
    // Once the first run has ended, the lock is free.
    assert!(first.wait().unwrap().success());
    let third = team.run_headless("bob", &rb);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
}

#[test]
fn a_killed_run_releases_its_lock() {
    let team = Team::new(&["alice"]);
    let rb = team.runbook("handover.toml", LONG_STEP);
    let mut first = team.spawn_headless("alice", &rb);
    team.wait_event("the rollout's start", |e| e["event"] == "step_started");
    let pid = team
        .journal()
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["pid"].as_i64())
        .unwrap();
    check(Command::new("kill").args(["-9", &pid.to_string()]));
    let _ = first.wait();
    let again = team.run_headless("alice", &rb);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

// ── Without other users: headless, rehearsals, the runbook format ───────────────────────────────

#[test]
fn headless_without_a_terminal_stops_when_nobody_but_the_driver_may_approve() {
    let dir = Fixture::new();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let rb = dir.path().join("solo.toml");
    std::fs::write(
        &rb,
        FOUR_EYES.replace("[\"USER_alice\", \"USER_bob\"]", &format!("[\"{me}\"]")),
    )
    .unwrap();
    let state = dir.path().join("state");
    let started = Instant::now();
    // --yes gives go-aheads, never approvals.
    let out = runbook(&[
        "run",
        rb.to_str().unwrap(),
        "--headless",
        "--yes",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deploy/migrate needs 1 approval(s) from operators other than the driver"),
        "{err}"
    );
    let j = run_journal(&run_dirs(&state)[0]);
    assert!(
        events(&j, "step_started").iter().all(|e| e["step"] != "migrate"),
        "{j:#?}"
    );
    assert_eq!(j.last().unwrap()["outcome"], "aborted");
}

#[test]
fn a_rehearsal_simulates_approvals_and_says_so() {
    let dir = Fixture::new();
    let rb = dir.path().join("rehearse.toml");
    std::fs::write(
        &rb,
        FOUR_EYES
            .replace("USER_alice", "alice")
            .replace("USER_bob", "bob"),
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = runbook(&[
        "rehearse",
        rb.to_str().unwrap(),
        "--headless",
        "--speed",
        "10",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = run_journal(&run_dirs(&state)[0]);
    let a = events(&j, "approval");
    assert_eq!(a.len(), 1, "{j:#?}");
    assert_eq!(a[0]["simulated"], true);
    assert!(
        a[0]["operator"] == "alice" || a[0]["operator"] == "bob",
        "{}",
        a[0]
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("approved by"),
        "{}",
        text(&out)
    );
}

#[test]
fn approval_mistakes_are_reported_at_their_line_and_column() {
    let dir = Fixture::new();
    let cases = [
        (
            "approval = { count = 0 }",
            "7:22: `count` of `approval` in [[phase.step]] must be between 1 and 10, found 0",
        ),
        (
            "approval = { cuont = 1 }",
            "7:14: unknown key `cuont` in `approval` of [[phase.step]]; did you mean `count`?",
        ),
        (
            "approval = 1",
            "7:12: `approval` in [[phase.step]] must be a table such as { count = 1 }, found integer",
        ),
        ("approvers = []", "7:13: `approvers` is empty"),
        (
            "approvers = [\"bob\", 3]",
            "7:21: `approvers` in [[phase.step]] lists Unix user names (strings), found integer",
        ),
        (
            "approval = { count = 2 }\napprovers = [\"bob\"]",
            "7:12: [[phase.step]] needs 2 approvals but lists only 1 approver",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        let text_ = format!(
            "[runbook]\ntitle = \"t\"\n[[phase]]\ntitle = \"p\"\n[[phase.step]]\ntitle = \"s\"\n{line}\nrun = \"true\"\n"
        );
        std::fs::write(&path, text_).unwrap();
        let out = runbook(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{want}", path.display());
        assert!(err.contains(&want), "want {want}\ngot {err}");
    }
    let lock = dir.path().join("lock.toml");
    std::fs::write(&lock, "[runbook]\ntitle = \"t\"\nlock = \"Checkout Prod\"\n[[phase]]\ntitle = \"p\"\n[[phase.step]]\ntitle = \"s\"\nrun = \"true\"\n").unwrap();
    let out = runbook(&["validate", lock.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{}:3:8: lock name `Checkout Prod` must match",
            lock.display()
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn a_run_folder_too_deep_for_a_socket_address_is_still_reached() {
    let dir = Fixture::new();
    let deep = dir
        .path()
        .join("a-state-dir-nested-deep-enough".repeat(3))
        .join("x".repeat(40));
    let rb = dir.path().join("deep.toml");
    std::fs::write(
        &rb,
        FOUR_EYES.replace("approvers = [\"USER_alice\", \"USER_bob\"]\n", ""),
    )
    .unwrap();
    let mut driver = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args([
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--state-dir",
            deep.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_dir = None;
    wait_for(TIMEOUT, || {
        run_dir = run_dirs(&deep).pop();
        run_dir.as_ref().is_some_and(|d| d.join("control.sock").exists())
    });
    let run_dir = run_dir.expect("a run folder");
    let socket = run_dir.join("control.sock");
    assert!(
        socket.as_os_str().len() > 108,
        "{} is not deep enough",
        socket.display()
    );
    // Root drives: its own approval is refused, which only the driver can say.
    let mut out = None;
    wait_for(TIMEOUT, || {
        let o = runbook(&["approve", run_dir.to_str().unwrap(), "migrate"]);
        let done = String::from_utf8_lossy(&o.stderr).contains("drives this run");
        out = Some(o);
        done
    });
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("an approval must come from another operator"),
        "{}",
        text(&out)
    );
    let _ = driver.kill();
    let _ = driver.wait();
}

#[test]
fn a_resumed_run_keeps_the_approvals_already_given() {
    let team = Team::new(&["alice", "bob", "carol"]);
    let text_ = FOUR_EYES
        .replace("approval = { count = 1 }", "approval = { count = 2 }")
        .replace("approvers = [\"USER_alice\", \"USER_bob\"]\n", "");
    let rb = team.runbook("two.toml", &text_);
    let state = team.state();
    let state = state.to_str().unwrap();
    let mut first = team.spawn_headless("alice", &rb);
    let run_dir = team.run_dir();
    let run = run_dir.to_str().unwrap().to_string();
    let mut bob = None;
    wait_for(TIMEOUT, || {
        let o = team.run_as("bob", &["approve", &run, "migrate"]);
        let ok = o.status.success();
        bob = Some(o);
        ok
    });
    let bob = bob.unwrap();
    assert!(
        String::from_utf8_lossy(&bob.stdout).contains("it is still waiting for 1 approval"),
        "{}",
        text(&bob)
    );
    let pid = team
        .journal()
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["pid"].as_i64())
        .unwrap();
    check(Command::new("kill").args(["-9", &pid.to_string()]));
    let _ = first.wait();

    let resumed = team
        .as_user("alice", &["resume", &run, "--headless", "--state-dir", state])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    team.wait_event("the resumed session", |e| {
        e["event"] == "run_started" && e["mode"] == "resume"
    });
    // bob's approval still counts: a second one from bob does not, carol's completes it.
    let mut again = None;
    wait_for(TIMEOUT, || {
        let o = team.run_as("bob", &["approve", &run, "migrate"]);
        let answered = !String::from_utf8_lossy(&o.stderr).contains("driver gone");
        again = Some(o);
        answered
    });
    let again = again.unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already approved"),
        "{}",
        text(&again)
    );
    let carol = team.run_as("carol", &["approve", &run, "migrate"]);
    assert_eq!(carol.status.code(), Some(0), "{}", text(&carol));
    let out = resumed.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = team.journal();
    let who: Vec<&str> = events(&j, "approval")
        .iter()
        .map(|e| e["operator"].as_str().unwrap())
        .collect();
    assert_eq!(who, [team.user("bob"), team.user("carol")]);
    let started = events(&j, "step_started")
        .into_iter()
        .filter(|e| e["step"] == "migrate")
        .count();
    assert_eq!(started, 1, "{j:#?}");
}

#[test]
fn a_headless_driver_without_a_terminal_refuses_a_takeover_and_one_on_a_terminal_asks() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("four-eyes.toml", FOUR_EYES);
    let state = team.state();
    let state = state.to_str().unwrap();
    // Without a terminal nobody can agree: refused at once, the run goes on.
    let mut first = team.spawn_headless("alice", &rb);
    let run_dir = team.run_dir();
    let run = run_dir.to_str().unwrap().to_string();
    // A journal without its run_started yet is "nothing to take over" (exit 2): ask once it is there.
    team.wait_event("the run's start", |e| e["event"] == "run_started");
    let mut out = None;
    wait_for(TIMEOUT, || {
        let o = team.run_as(
            "bob",
            &["takeover", &run, "--reason", "mine now", "--state-dir", state],
        );
        let answered = !String::from_utf8_lossy(&o.stderr).contains("driver gone");
        out = Some(o);
        answered
    });
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("runs headless with no terminal: nobody there can agree"),
        "{}",
        text(&out)
    );
    assert!(events(&team.journal(), "handover").is_empty());
    assert!(first.try_wait().unwrap().is_none(), "the driver stopped");
    let _ = first.kill();
    let _ = first.wait();
    std::fs::remove_dir_all(&run_dir).unwrap();

    // Headless on a terminal: asked on stdin.
    team.tmux_as(
        "driver",
        "alice",
        &["run", rb.to_str().unwrap(), "--headless", "--state-dir", state],
    );
    team.wait_screen("driver", "waiting for 1 approval");
    let run = team.run_dir().to_str().unwrap().to_string();
    let taker = team.spawn_takeover("bob", &run, "end of shift", state);
    team.wait_screen("driver", &format!("hand this run over to {}?", team.user("bob")));
    team.keys("driver", &["y", "Enter"]);
    let screen = team.wait_screen("driver", "handed over to");
    assert!(screen.contains("watch with: runbook attach"), "{screen}");
    assert_eq!(team.exit_of("driver"), 0);
    // bob drives now; alice approves (she no longer drives), and bob's run ends.
    let ok = team.run_as("alice", &["approve", &run, "migrate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = taker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = team.journal();
    assert_eq!(events(&j, "handover")[0]["consent"], true);
    assert_eq!(events(&j, "approval")[0]["operator"], team.user("alice"));
}

#[test]
fn an_operator_outside_the_group_is_told_why_and_a_finished_run_says_so() {
    let team = Team::new(&["alice"]);
    let rb = team.runbook("done.toml", LONG_STEP.replace("sleep 3", "true").as_str());
    let state = team.state();
    let out = team.run_as(
        "alice",
        &[
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = team.run_dir();
    let run = run.to_str().unwrap();
    let ended = team.run_as("alice", &["approve", run, "rollout"]);
    assert_eq!(ended.status.code(), Some(1), "{}", text(&ended));
    assert!(
        String::from_utf8_lossy(&ended.stderr).contains("this run has ended (succeeded)"),
        "{}",
        text(&ended)
    );
    let outsider = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&team.bin)
        .args(["approve", run, "rollout"])
        .output()
        .unwrap();
    assert_eq!(outsider.status.code(), Some(2), "{}", text(&outsider));
    assert!(
        String::from_utf8_lossy(&outsider.stderr)
            .contains("permission denied: runs in a shared state dir are for the members of its group"),
        "{}",
        text(&outsider)
    );
}

/// One request on a run's control socket, as a watcher's program sends it.
fn ask(run_dir: &Path, line: &str) -> Value {
    use std::io::{BufRead as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(run_dir.join("control.sock")).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

#[test]
fn hello_says_who_drives_and_a_watchers_note_is_journaled_with_the_watchers_name() {
    let team = Team::new(&["alice", "bob"]);
    let rb = team.runbook("four-eyes.toml", FOUR_EYES);
    let state = team.state();
    let mut driver = team
        .as_user(
            "alice",
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = team.run_dir();
    assert!(wait_for(TIMEOUT, || run_dir.join("control.sock").exists()));
    let mut hello = Value::Null;
    wait_for(TIMEOUT, || {
        hello = ask(&run_dir, r#"{"op":"hello"}"#);
        hello["driver"]["waiting"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    });
    assert_eq!(hello["ok"], true, "{hello}");
    let d = &hello["driver"];
    assert_eq!(d["operator"], team.user("alice"));
    assert!(d["pid"].as_u64().is_some(), "{hello}");
    assert_eq!(d["waiting"][0]["step"], "deploy/migrate");
    assert_eq!(d["waiting"][0]["needed"], 1);
    assert_eq!(
        d["waiting"][0]["may_approve"],
        serde_json::json!([team.user("bob")])
    );

    // The test runs as root: root is the watcher here. Escapes in the text never reach the
    // driver's screen or the journal.
    let note = ask(
        &run_dir,
        r#"{"op":"note","text":"db looks fine \u001b]0;pwned\u0007from here"}"#,
    );
    assert_eq!(
        note,
        serde_json::json!({"ok": true, "message": "note added to the run's journal"})
    );
    let bad = ask(&run_dir, r#"{"op":"approve"}"#);
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .starts_with("not a request this driver understands"),
        "{bad}"
    );
    let j = team.journal();
    let notes = events(&j, "note");
    assert_eq!(notes.len(), 1, "{j:#?}");
    assert_eq!(notes[0]["operator"], "root");
    let text_ = notes[0]["text"].as_str().unwrap();
    assert!(
        text_.starts_with("db looks fine") && text_.ends_with("from here"),
        "{text_:?}"
    );
    assert!(!text_.contains('\u{1b}') && !text_.contains('\u{7}'), "{text_:?}");
    let _ = driver.kill();
    let _ = driver.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_go_ahead_is_not_an_approval_and_a_step_waiting_for_approvals_can_be_skipped() {
    use runbook::engine::{Command, Update, Wait};
    let fx = common::Fixture::new();
    let rb = fx.write(
        "skip.toml",
        &FOUR_EYES
            .replace("USER_alice", "alice")
            .replace("USER_bob", "bob"),
    );
    let mut waits = 0;
    let d = common::drive(common::request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::Approval(w),
            ..
        } => {
            waits += 1;
            assert_eq!(w.step, "deploy/migrate");
            vec![Command::Confirm { by: None, step: None }]
        }
        Update::Message(m) if m.contains("a go-ahead is not an approval") => vec![Command::Skip {
            reason: "approved on the phone by the service owner".into(),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(waits, 1);
    assert_eq!(d.outcome, runbook::journal::Outcome::Succeeded);
    let j = d.journal();
    assert!(events(&j, "approval").is_empty(), "{j:#?}");
    let migrate: Vec<_> = events(&j, "step_finished")
        .into_iter()
        .filter(|e| e["step"] == "migrate")
        .collect();
    assert_eq!(migrate.len(), 1, "{j:#?}");
    assert_eq!(migrate[0]["status"], "skipped");
    assert_eq!(migrate[0]["reason"], "approved on the phone by the service owner");
    assert!(
        events(&j, "step_started").iter().all(|e| e["step"] != "migrate"),
        "{j:#?}"
    );
}
