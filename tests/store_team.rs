//! Operators as a team across bastion hosts, through the shared store (SPEC §8, §9), against a
//! real PostgreSQL (`common::postgres`). Each "host" (`common::hosts`) runs `runbook` with a host
//! name of its own (a UTS namespace) and a state dir of its own; the approver is a real Unix user.
//! Approvals and notes from host B reach the driver on host A through the store; host B takes a
//! live run over from A (A's operator says `y` on its screen, in tmux) or, after A was killed and
//! its state dir lost, at once once A's lease has expired; a deploy lock held on A refuses a run
//! on B.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{Host, Site, User};
use common::postgres::Postgres;
use common::tmux::TmuxServer;
use common::{CliRun, wait_output};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn finish(child: Child, limit: Duration) -> CliRun {
    let started = Instant::now();
    CliRun::new(wait_output(child, limit), started.elapsed())
}

/// A `runbook` started by the test, killed if the test ends (or fails) before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `cmd` with its stdout and stderr going to files (read while it runs).
fn spawn_logged(mut cmd: Command, out: &Path) -> Running {
    let file = std::fs::File::create(out).unwrap();
    Running(
        cmd.stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap(),
    )
}

/// Waits for a process started by `spawn_logged` to end; its exit status (it is killed after
/// `LIMIT`).
fn wait_exit(mut running: Running) -> Option<i32> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the file holds `text`; returns what it holds.
fn wait_text(path: &Path, text: &str) -> String {
    let mut got = String::new();
    let ok = common::wait_for(LIMIT, || {
        std::thread::sleep(Duration::from_millis(50));
        got = std::fs::read_to_string(path).unwrap_or_default();
        got.contains(text)
    });
    assert!(ok, "{} never said {text:?}; it says:\n{got}", path.display());
    got
}

fn the_run(state: &Path) -> PathBuf {
    let mut dirs = Vec::new();
    common::wait_for(LIMIT, || {
        dirs = common::run_dirs(state);
        !dirs.is_empty()
    });
    assert_eq!(dirs.len(), 1, "one run folder in {}: {dirs:?}", state.display());
    dirs.pop().unwrap()
}

fn run_id(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn journal(dir: &Path) -> Vec<Value> {
    common::journal_json(&dir.join("journal.jsonl"))
}

/// A step that needs one approval by an operator other than the driver, with a metric on screen.
const FOUR_EYES: &str = r#"
[runbook]
title = "Four eyes across hosts"

[[metric]]
id = "error_rate"
title = "Error rate"
unit = "percent"
command = "echo 0.002"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "migrate"
title = "Migrate the database"
run = "echo migrating"
approval = { count = 1 }

[[phase.step]]
id = "after"
title = "After"
run = "echo after"
"#;

#[test]
fn an_approval_and_a_note_from_host_b_reach_the_driver_on_host_a_through_the_store() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let rb = site.write("four-eyes.toml", FOUR_EYES);
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let bob = User::new("bob");
    let out_a = site.path().join("a.out");
    let driver = spawn_logged(
        a.command(
            None,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                &a.state_arg(),
            ],
        ),
        &out_a,
    );
    wait_text(&out_a, "waiting for 1 approval");
    let id = run_id(&the_run(&a.state));

    // The driver's own user, from another host, is still the driver: four eyes.
    let own = finish(
        b.command(
            None,
            &["approve", &id, "deploy/migrate", "--state-dir", &b.state_arg()],
        )
        .spawn()
        .unwrap(),
        LIMIT,
    );
    own.expect_code(1);
    assert!(
        own.stderr.contains("an approval must come from another operator"),
        "{}",
        own.stderr
    );

    let note = finish(
        b.command(
            Some(&bob),
            &[
                "note",
                &id,
                "db replicas look fine from here",
                "--state-dir",
                &b.state_arg(),
            ],
        )
        .spawn()
        .unwrap(),
        LIMIT,
    );
    note.expect_code(0);
    assert!(note.stdout.contains("note added"), "{}", note.stdout);

    // Bastion B logs into the store as a role of its own, which may use the tables, not make
    // them: the approval carries that role, the one thing the store vouches for.
    pg.psql(
        "runbook",
        "CREATE ROLE bastion_b LOGIN PASSWORD 'b-pw'; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bastion_b; \
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bastion_b",
    );
    let as_b = pg.url().replace(
        &format!("{}:{}@", common::postgres::USER, common::postgres::PASSWORD),
        "bastion_b:b-pw@",
    );
    let approve = finish(
        b.command(
            Some(&bob),
            &[
                "approve",
                &id,
                "deploy/migrate",
                "--state-dir",
                &b.state_arg(),
                "--store",
                &as_b,
            ],
        )
        .spawn()
        .unwrap(),
        LIMIT,
    );
    approve.expect_code(0);
    assert!(
        approve
            .stdout
            .contains(&format!("{} approved deploy/migrate", bob.name)),
        "{}",
        approve.stdout
    );

    let code = wait_exit(driver);
    let said = std::fs::read_to_string(&out_a).unwrap();
    assert_eq!(code, Some(0), "{said}");
    let j = journal(&the_run(&a.state));
    let approval = common::event(&j, "approval");
    assert_eq!(approval["operator"], bob.name.as_str(), "{approval}");
    assert_eq!(approval["step"], "migrate");
    assert_eq!(approval["from"]["host"], "bastion-b", "{approval}");
    assert_eq!(approval["from"]["store_role"], "bastion_b", "{approval}");
    assert!(
        approval["metrics"]["error_rate"].is_number(),
        "the metric values at that moment: {approval}"
    );
    let note = common::event(&j, "note");
    assert_eq!(note["operator"], bob.name.as_str());
    assert_eq!(note["text"], "db replicas look fine from here");
    assert_eq!(
        common::started(&j),
        vec!["deploy/migrate#1".to_string(), "deploy/after#1".to_string()],
        "the step ran after the approval"
    );
    // Every request is recorded in the store with who asked, and its answer.
    let rows = pg.psql(
        "runbook",
        "SELECT kind, role, unix_user, host, answer->>'ok' FROM requests ORDER BY id",
    );
    assert_eq!(
        rows.trim(),
        format!(
            "approve|rb|root|bastion-b|false\nnote|rb|{0}|bastion-b|true\napprove|bastion_b|{0}|bastion-b|true",
            bob.name
        )
    );
    // Nothing waits for A any more: a request now is answered at once as nobody driving.
    let late = finish(
        b.command(
            Some(&bob),
            &["note", &id, "too late", "--state-dir", &b.state_arg()],
        )
        .spawn()
        .unwrap(),
        LIMIT,
    );
    late.expect_code(1);
    assert!(
        late.stderr.contains("this run has ended (succeeded)"),
        "{}",
        late.stderr
    );
}

/// A runbook whose second step waits (a watch of `${w}`), so that a driver can be caught in it;
/// the third step writes which run folder ran it.
const WAITING: &str = r#"
[runbook]
title = "Hand-over across hosts"
[vars]
w = "5m"
[[phase]]
title = "Deploy"
[[phase.step]]
title = "First"
run = "echo first"
[[phase.step]]
title = "Soak"
watch = "${w}"
[[phase.step]]
title = "Third"
run = "echo $RUNBOOK_RUN_DIR >> third-ran-in; echo third"
"#;

/// Waits until the driver on A is in its soak (the store has its `step_started`).
fn wait_for_soak(pg: &Postgres) {
    pg.wait_for(
        "SELECT count(*) FROM events WHERE event = 'step_started' AND line LIKE '%\"step\":\"soak\"%'",
        "1",
        LIMIT,
    );
}

/// A tmux server of the test's own (`common::tmux`): one 80×24 session per host's `runbook`,
/// whose exit status goes to `<session>.exit` in `dir`.
struct Tmux {
    server: TmuxServer,
    dir: PathBuf,
}

impl Tmux {
    fn new(dir: &Path) -> Tmux {
        Tmux {
            server: TmuxServer::new("store-team"),
            dir: dir.to_path_buf(),
        }
    }

    /// Runs `line` in a new session.
    fn start(&self, session: &str, line: &str) {
        let exit = self.dir.join(format!("{session}.exit"));
        let script = format!("{line}; echo $? > {}; sleep 600", exit.display());
        let out = self
            .server
            .command(&[
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "80",
                "-y",
                "24",
                &script,
            ])
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn screen(&self, session: &str) -> String {
        self.server.screen(session)
    }

    fn wait_screen(&self, session: &str, text: &str) -> String {
        self.server
            .wait_screen(session, text, LIMIT, |s| s.contains(text))
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        self.server.keys(session, keys);
    }

    fn exit_of(&self, session: &str) -> i32 {
        let path = self.dir.join(format!("{session}.exit"));
        let mut code = None;
        common::wait_for(LIMIT, || {
            std::thread::sleep(Duration::from_millis(50));
            code = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            code.is_some()
        });
        code.unwrap_or_else(|| panic!("{session} did not exit:\n{}", self.screen(session)))
    }
}

/// A live hand-over under way: A drives `WAITING` on its terminal UI in tmux (session `a`), into
/// its soak, and `taker` (B, or A's other terminal) has asked to take it over, headless.
struct AskedTakeover {
    tmux: Tmux,
    /// A's run folder, and the run's id.
    dir: PathBuf,
    id: String,
    taker: Running,
    /// What the taker says.
    out: PathBuf,
}

fn ask_takeover(pg: &Postgres, site: &Site, a: &Host, taker: &Host, reason: &str) -> AskedTakeover {
    let rb = site.write("rb.toml", WAITING);
    let tmux = Tmux::new(site.path());
    tmux.start(
        "a",
        &a.shell_line(
            None,
            &["run", rb.to_str().unwrap(), "--state-dir", &a.state_arg()],
        ),
    );
    wait_for_soak(pg);
    let dir = the_run(&a.state);
    let id = run_id(&dir);
    let out = site.path().join("taker.out");
    let taker = spawn_logged(
        taker.command(
            None,
            &[
                "takeover",
                &id,
                "--reason",
                reason,
                "--headless",
                "--yes",
                "--var",
                "w=1s",
                "--state-dir",
                &taker.state_arg(),
            ],
        ),
        &out,
    );
    AskedTakeover {
        tmux,
        dir,
        id,
        taker,
        out,
    }
}

/// After `y`, A's screen watches the run it handed over (`watching` is what its header says of
/// where it reads it and who drives); once the new driver has ended the run, `q` leaves it, and
/// A's command exits 0 having said it handed over.
fn a_watches_then_leaves(tmux: &Tmux, watching: &str) {
    let screen = tmux.wait_screen("a", "WATCHING");
    assert!(screen.contains(watching), "{screen}");
    tmux.wait_screen("a", "SUCCEEDED");
    tmux.keys("a", &["q"]);
    assert_eq!(tmux.exit_of("a"), 0, "{}", tmux.screen("a"));
    let screen = tmux.screen("a");
    assert!(
        screen.contains("handed over to root; watching the run from here"),
        "{screen}"
    );
}

#[test]
fn a_live_driver_on_host_a_hands_over_to_host_b_when_its_operator_says_yes() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let AskedTakeover {
        tmux,
        dir: dir_a,
        id,
        taker,
        out: out_b,
    } = ask_takeover(&pg, &site, &a, &b, "end of shift on A");
    let screen = tmux.wait_screen("a", "asks to take over");
    assert!(
        screen.contains("bastion-b"),
        "the dialog says from where:\n{screen}"
    );
    assert!(screen.contains("end of shift on A"), "{screen}");
    tmux.keys("a", &["y"]);
    // A's screen goes on watching the run, through the store, as B drives it (SPEC §8).
    let code = wait_exit(taker);
    let said = std::fs::read_to_string(&out_b).unwrap();
    assert_eq!(code, Some(0), "B took over and finished the run:\n{said}");
    assert!(said.contains("handed the run over to root"), "{said}");
    a_watches_then_leaves(&tmux, "WATCHING via store");

    // A journaled the hand-over and started nothing after it.
    let ja = journal(&dir_a);
    let handover = common::event(&ja, "handover");
    assert_eq!(handover["consent"], true);
    assert_eq!(handover["to"], "root");
    assert_eq!(handover["reason"], "end of shift on A");
    assert_eq!(handover["at"]["host"], "bastion-b", "{handover}");
    assert_eq!(handover["at"]["store_role"], common::postgres::USER, "{handover}");
    let after: Vec<&Value> = ja
        .iter()
        .skip_while(|e| e["event"] != "handover")
        .filter(|e| e["event"] == "step_started")
        .collect();
    assert!(
        after.is_empty(),
        "A started nothing after handing over: {after:?}"
    );
    // B rebuilt the run from the store, went on, and ran the third step: once, on B.
    let dir_b = b.state.join("runs").join(&id);
    let jb = journal(&dir_b);
    assert_eq!(
        common::events(&jb, "handover").len(),
        1,
        "B's journal has A's hand-over"
    );
    assert_eq!(
        common::events(&jb, "run_started").last().unwrap()["mode"],
        "resume"
    );
    assert_eq!(
        common::events(&jb, "run_started").last().unwrap()["host"],
        "bastion-b"
    );
    let ran = std::fs::read_to_string(site.path().join("third-ran-in")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert!(ran.contains("state-bastion-b"), "{ran}");
    let epochs = pg.psql(
        "runbook",
        &format!("SELECT DISTINCT epoch FROM events WHERE run_id = '{id}' ORDER BY epoch"),
    );
    assert_eq!(epochs.trim(), "1\n2", "A wrote under epoch 1, B under 2");
}

#[test]
fn host_b_takes_over_at_once_when_the_lease_of_a_killed_driver_on_host_a_expires() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "3s");
    let rb = site.write("rb.toml", WAITING);
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let out_a = site.path().join("a.out");
    let mut driver = spawn_logged(
        a.command(
            None,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                &a.state_arg(),
            ],
        ),
        &out_a,
    );
    wait_for_soak(&pg);
    let id = run_id(&the_run(&a.state));
    // Host A dies: its runbook killed outright (with the namespace's shell it runs under), its disk gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = driver.0.wait();
    std::fs::remove_dir_all(&a.state).unwrap();

    let taker = finish(
        b.command(
            None,
            &[
                "takeover",
                &id,
                "--reason",
                "bastion-a is down",
                "--headless",
                "--yes",
                "--var",
                "w=1s",
                "--state-dir",
                &b.state_arg(),
            ],
        )
        .spawn()
        .unwrap(),
        LIMIT,
    );
    taker.expect_code(0);
    assert!(taker.stderr.contains("rebuilt"), "{}", taker.stderr);
    assert!(
        taker.stderr.contains("takes the run over at once"),
        "{}",
        taker.stderr
    );
    let dir_b = b.state.join("runs").join(&id);
    let j = journal(&dir_b);
    let handover = common::event(&j, "handover");
    assert_eq!(handover["consent"], false, "{handover}");
    assert_eq!(handover["reason"], "bastion-a is down");
    assert_eq!(handover["at"]["host"], "bastion-b", "{handover}");
    assert_eq!(
        common::finished(&j, "deploy/first").len(),
        1,
        "the first step, done on A, is not run again"
    );
    let ran = std::fs::read_to_string(site.path().join("third-ran-in")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert!(ran.contains("state-bastion-b"), "{ran}");
    // The request B made while A's lease still held was answered as nobody driving.
    let rows = pg.psql("runbook", "SELECT kind, answer->>'ok' FROM requests");
    assert_eq!(rows.trim(), "takeover|false");
}

#[test]
fn on_one_host_with_a_store_a_live_driver_hands_over_and_the_new_driver_takes_its_lease() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "15s");
    let a = site.host("bastion-a");
    let AskedTakeover {
        tmux,
        dir,
        id,
        taker,
        out,
    } = ask_takeover(&pg, &site, &a, &a, "from my other terminal");
    tmux.wait_screen("a", "asks to take over");
    tmux.keys("a", &["y"]);
    let code = wait_exit(taker);
    let said = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        code,
        Some(0),
        "the new driver took the lease and finished:\n{said}"
    );
    // The new driver is on this host: A's screen watches the run from its folder (it may
    // have ended already: "drove").
    a_watches_then_leaves(&tmux, "root@bastion-a dr");
    let j = journal(&dir);
    let handover = common::event(&j, "handover");
    assert_eq!(handover["consent"], true);
    assert!(
        handover["at"]["store_role"].is_null(),
        "asked on the socket: {handover}"
    );
    let ran = std::fs::read_to_string(site.path().join("third-ran-in")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    let epochs = pg.psql(
        "runbook",
        &format!("SELECT DISTINCT epoch FROM events WHERE run_id = '{id}' ORDER BY epoch"),
    );
    assert_eq!(epochs.trim(), "1\n2");
}

#[test]
fn a_deploy_lock_held_on_host_a_refuses_a_run_on_host_b_until_a_is_gone() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "3s");
    let locked = WAITING.replace(
        "title = \"Hand-over across hosts\"",
        "title = \"Hand-over across hosts\"\nlock = \"checkout-production\"",
    );
    let rb = site.write("rb.toml", &locked);
    let other = site.write(
        "other.toml",
        "[runbook]\ntitle = \"Other\"\nlock = \"checkout-production\"\n[[phase]]\ntitle = \"P\"\n[[phase.step]]\ntitle = \"S\"\nrun = \"echo other ran\"\n",
    );
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let out_a = site.path().join("a.out");
    let mut driver = spawn_logged(
        a.command(
            None,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                &a.state_arg(),
            ],
        ),
        &out_a,
    );
    wait_for_soak(&pg);
    let id = run_id(&the_run(&a.state));
    let run_on_b = || {
        finish(
            b.command(
                None,
                &[
                    "run",
                    other.to_str().unwrap(),
                    "--headless",
                    "--state-dir",
                    &b.state_arg(),
                ],
            )
            .spawn()
            .unwrap(),
            LIMIT,
        )
    };
    let refused = run_on_b();
    refused.expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "deploy lock `checkout-production` is held by root@bastion-a (pid {}), driving the run {id}",
            driver.0.id()
        )),
        "{}",
        refused.stderr
    );
    assert!(
        common::run_dirs(&b.state).is_empty(),
        "a refused run leaves nothing behind"
    );
    let row = pg.psql("runbook", "SELECT name, run_id, host FROM locks");
    assert_eq!(row.trim(), format!("checkout-production|{id}|bastion-a"));

    // A dies without letting go: the lock is free again once A's lease (and the lock's grace,
    // one lease length) has run out.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = driver.0.wait();
    pg.wait_for(
        "SELECT count(*) FROM locks k WHERE k.expires_at < now() AND NOT EXISTS \
         (SELECT 1 FROM leases l WHERE l.run_id = k.run_id AND l.expires_at > now())",
        "1",
        LIMIT,
    );
    let ran = run_on_b();
    ran.expect_code(0);
    assert!(ran.stdout.contains("other ran"), "{}", ran.stdout);
    // It ended: its row is gone, and the lock is free for anyone at once.
    let rows = pg.psql("runbook", "SELECT count(*) FROM locks");
    assert_eq!(rows.trim(), "0");
}

#[test]
fn a_command_running_on_host_a_ends_there_before_the_run_is_handed_over_to_host_b() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let rb = site.write(
        "rb.toml",
        r#"
[runbook]
title = "Hand-over mid-command"
[[phase]]
title = "Deploy"
[[phase.step]]
title = "Long"
run = "sleep 4; echo $RUNBOOK_RUN_DIR >> long-ran-in"
[[phase.step]]
title = "Third"
run = "echo $RUNBOOK_RUN_DIR >> third-ran-in"
"#,
    );
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let tmux = Tmux::new(site.path());
    tmux.start(
        "a",
        &a.shell_line(
            None,
            &["run", rb.to_str().unwrap(), "--state-dir", &a.state_arg()],
        ),
    );
    pg.wait_for(
        "SELECT count(*) FROM events WHERE event = 'step_started' AND line LIKE '%\"step\":\"long\"%'",
        "1",
        LIMIT,
    );
    let dir_a = the_run(&a.state);
    let id = run_id(&dir_a);
    let out_b = site.path().join("b.out");
    let taker = spawn_logged(
        b.command(
            None,
            &[
                "takeover",
                &id,
                "--reason",
                "mid-command",
                "--headless",
                "--state-dir",
                &b.state_arg(),
            ],
        ),
        &out_b,
    );
    let screen = tmux.wait_screen("a", "asks to take over");
    assert!(
        screen.contains("handed over once it has ended"),
        "the dialog says the command ends here first:\n{screen}"
    );
    tmux.keys("a", &["y"]);
    let code = wait_exit(taker);
    let said = std::fs::read_to_string(&out_b).unwrap();
    assert_eq!(code, Some(0), "B goes on without a decision to make:\n{said}");
    a_watches_then_leaves(&tmux, "WATCHING via store");
    let long = std::fs::read_to_string(site.path().join("long-ran-in")).unwrap();
    assert_eq!(long.lines().count(), 1, "the command ran once, on A: {long}");
    assert!(long.contains("state-bastion-a"), "{long}");
    let third = std::fs::read_to_string(site.path().join("third-ran-in")).unwrap();
    assert_eq!(third.lines().count(), 1, "{third}");
    assert!(third.contains("state-bastion-b"), "{third}");
    let names = common::event_names(&journal(&dir_a));
    let finished = names.iter().position(|n| n == "step_finished").unwrap();
    let handover = names.iter().position(|n| n == "handover").unwrap();
    assert!(
        finished < handover,
        "A finished the command, then handed over: {names:?}"
    );
}

#[test]
fn a_hand_over_agreed_during_the_last_command_is_answered_when_the_run_ends_there() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let rb = site.write(
        "rb.toml",
        "[runbook]\ntitle = \"Last\"\n[[phase]]\ntitle = \"Deploy\"\n[[phase.step]]\ntitle = \"Long\"\nrun = \"sleep 3\"\n",
    );
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let tmux = Tmux::new(site.path());
    tmux.start(
        "a",
        &a.shell_line(
            None,
            &["run", rb.to_str().unwrap(), "--state-dir", &a.state_arg()],
        ),
    );
    pg.wait_for(
        "SELECT count(*) FROM events WHERE event = 'step_started'",
        "1",
        LIMIT,
    );
    let id = run_id(&the_run(&a.state));
    let out_b = site.path().join("b.out");
    let taker = spawn_logged(
        b.command(
            None,
            &[
                "takeover",
                &id,
                "--reason",
                "late",
                "--headless",
                "--state-dir",
                &b.state_arg(),
            ],
        ),
        &out_b,
    );
    tmux.wait_screen("a", "asks to take over");
    tmux.keys("a", &["y"]);
    let code = wait_exit(taker);
    let said = std::fs::read_to_string(&out_b).unwrap();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("the run ended (succeeded) before it could be handed over"),
        "{said}"
    );
    assert!(common::run_dirs(&b.state).is_empty(), "B took nothing: {said}");
    let j = journal(&the_run(&a.state));
    assert!(common::events(&j, "handover").is_empty());
    assert_eq!(common::events(&j, "run_finished")[0]["outcome"], "succeeded");
}
