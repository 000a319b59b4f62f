//! Watching runs across hosts through the shared store (SPEC §8, §9), against a real PostgreSQL
//! (`common::postgres`): "bastion-a" drives, "bastion-b" watches, each a `runbook` with a host
//! name of its own (`common::hosts`: a UTS namespace) and a state dir of its own. `ls` on B
//! lists A's run with its driver, whether its lease holds, and where it stands, then its
//! outcome, beside B's own local runs; a store that cannot be reached is an error. `attach` on B
//! (the real binary in tmux, 80×24) shows A's steps and the running step's log as it grows,
//! WATCHING, who drives from where, "via store", a store that went away and came back, and the
//! run's end; a note and an approval from B's screen reach A through the store; a killed driver
//! is seen gone when its lease runs out; `attach --events` prints A's journal as it comes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::hosts::{Host, Site};
use common::postgres::Postgres;
use common::runs::{Running, ended, run_id, the_run};
use common::tmux::TmuxServer;
use common::{text, wait_for, wait_output};
use serde_json::Value;

/// A run that waits for the test twice in its second step (`more`, then `go` in the site's
/// folder), printing a line each time (`$((…))`, so that the command shown is not its output).
/// The step also ends when the folder is gone (a test that ended without opening the gates).
fn gated_runbook(site: &Site) -> PathBuf {
    let go = site.path().join("go");
    let more = site.path().join("more");
    site.write(
        "checkout.toml",
        &format!(
            r#"
[runbook]
title = "Checkout rollout"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "prepare"
title = "Prepare"
run = "echo prepared"

[[phase.step]]
id = "canary"
title = "Canary"
run = "echo canary line $((1)); while [ ! -e {more} ] && [ -d {dir} ]; do sleep 0.05; done; echo canary line $((1+1)); while [ ! -e {go} ] && [ -d {dir} ]; do sleep 0.05; done; echo canary done"

[[phase.step]]
id = "verify"
title = "Verify"
run = "echo verified"
"#,
            more = more.display(),
            go = go.display(),
            dir = site.path().display()
        ),
    )
}

/// Opens the gates of `gated_runbook` when dropped, so that its step never outlives a test
/// that failed midway (a killed driver's step goes on: its monitor outlives `runbook` by design).
struct Gates(PathBuf);

impl Drop for Gates {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("more"), "");
        let _ = std::fs::write(self.0.join("go"), "");
    }
}

/// Two bastions of one site, whose config names the store with a short lease (a killed driver
/// is seen gone within seconds).
fn two_hosts(pg: &Postgres) -> (Site, Host, Host) {
    let site = Site::new();
    site.store_config(&pg.url(), "3s");
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    (site, a, b)
}

/// `runbook ARGS --state-dir STATE` on `host`, as root.
fn on(host: &Host, args: &[&str]) -> Command {
    let mut args = args.to_vec();
    let state = host.state_arg();
    args.extend(["--state-dir", &state]);
    host.command(None, &args)
}

/// The same, as a line for a tmux pane.
fn line_on(host: &Host, args: &[&str]) -> String {
    let mut args = args.to_vec();
    let state = host.state_arg();
    args.extend(["--state-dir", &state]);
    host.shell_line(None, &args)
}

/// Starts A's run of `file` headless, through the store its config names.
fn drive(a: &Host, file: &Path) -> Running {
    Running(
        on(a, &["run", file.to_str().unwrap(), "--headless"])
            .spawn()
            .expect("start the driver on bastion-a"),
    )
}

fn output(cmd: &mut Command) -> Output {
    let child = cmd.spawn().expect("start runbook");
    wait_output(child, Duration::from_secs(30))
}

/// `runbook ls --format json` on `host`: the runs.
fn ls_json(host: &Host, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["ls", "--format", "json"];
    args.extend_from_slice(extra);
    let out = output(&mut on(host, &args));
    assert!(out.status.success(), "ls failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ls --format json prints JSON")
}

fn run_in<'a>(runs: &'a [Value], id: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} is listed: {runs:#?}"))
}

/// Waits until the store has A's journal line `event` (of step `step` where given).
fn wait_in_store(pg: &Postgres, event: &str, step: &str) {
    pg.wait_for(
        &format!(
            "SELECT count(*) > 0 FROM events WHERE event = '{event}' AND line LIKE '%\"step\":\"{step}\"%'"
        ),
        "t",
        Duration::from_secs(60),
    );
}

#[test]
fn ls_on_another_host_shows_the_store_s_runs_their_driver_and_where_they_stand() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = gated_runbook(&site);
    let _gates = Gates(site.path().to_path_buf());
    // B has a run of its own that the store never saw (no store for it).
    let quick = site.write(
        "quick.toml",
        "[runbook]\ntitle = \"Local fix\"\n[[phase]]\nid = \"fix\"\ntitle = \"Fix\"\n[[phase.step]]\nid = \"apply\"\ntitle = \"Apply\"\nrun = \"echo applied\"\n",
    );
    let local = output(
        Command::new(common::runbook_bin())
            .args([
                "run",
                quick.to_str().unwrap(),
                "--headless",
                "--state-dir",
                &b.state_arg(),
            ])
            .env("XDG_CONFIG_HOME", site.path().join("no-config"))
            .env_remove("RUNBOOK_STORE")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    assert!(local.status.success(), "{}", text(&local.stderr));
    let local_id = run_id(&the_run(&b.state));

    let mut driver = drive(&a, &rb);
    wait_in_store(&pg, "step_started", "canary");
    let id = run_id(&the_run(&a.state));

    // Text, as an operator reads it at 80 columns.
    let out = output(on(&b, &["ls"]).env("COLUMNS", "80"));
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = shown.lines().next().unwrap();
    for col in ["RUN", "STARTED", "DRIVER", "STATE", "IN"] {
        assert!(head.contains(col), "column {col}: {shown}");
    }
    let row = shown
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("A's run is listed on B: {shown}"));
    let pid = driver.id();
    assert!(
        row.contains(&format!("root@bastion-a pid {pid}")),
        "the driver, from its lease: {row}"
    );
    assert!(row.contains(" live "), "its lease holds: {row}");
    assert!(row.trim_end().ends_with("store"), "found in the store: {row}");
    assert!(
        shown.contains("Checkout rollout: running deploy/canary"),
        "where it stands: {shown}"
    );
    let local_row = shown
        .lines()
        .find(|l| l.starts_with(&local_id))
        .unwrap_or_else(|| panic!("B's own run is listed too: {shown}"));
    assert!(local_row.trim_end().ends_with("local"), "{local_row}");
    assert!(
        shown.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns: {shown}"
    );

    // JSON, as a script reads it.
    let runs = ls_json(&b, &[]);
    let r = run_in(&runs, &id);
    assert_eq!(r["source"], "store");
    assert_eq!(r["runbook"], "checkout");
    assert_eq!(r["title"], "Checkout rollout");
    assert_eq!(r["driver"]["operator"], "root");
    assert_eq!(r["driver"]["host"], "bastion-a");
    assert_eq!(r["driver"]["pid"], pid);
    assert_eq!(r["driver"]["alive"], "alive");
    assert_eq!(r["state"], "running");
    assert_eq!(r["step"]["phase"], "deploy");
    assert_eq!(r["step"]["step"], "canary");
    assert_eq!(r["lease"]["epoch"], 1);
    assert!(r["lease"]["expires_in_ms"].as_i64().unwrap() > 0, "{r}");
    assert!(r.get("dir").is_none(), "B has no folder of A's run: {r}");
    let l = run_in(&runs, &local_id);
    assert_eq!(l["source"], "local");
    assert_eq!(l["state"], "finished");
    assert_eq!(l["outcome"], "succeeded");

    // A's own host lists the run once, from the store, with its folder there.
    let on_a = ls_json(&a, &[]);
    assert_eq!(on_a.len(), 1, "{on_a:#?}");
    assert_eq!(on_a[0]["source"], "store");
    assert!(on_a[0]["dir"].as_str().unwrap().ends_with(&id));
    assert_eq!(
        on_a[0]["driver"]["alive"], "alive",
        "checked by pid on its own host too"
    );

    // The run ends: B sees its outcome, and that nobody holds it any more.
    std::fs::write(site.path().join("more"), "").unwrap();
    std::fs::write(site.path().join("go"), "").unwrap();
    let done = ended(&mut driver);
    assert!(done.success(), "the driver's run succeeded");
    pg.wait_for(
        &format!("SELECT count(*) FROM events WHERE run_id = '{id}' AND event = 'run_finished'"),
        "1",
        Duration::from_secs(20),
    );
    let runs = ls_json(&b, &[]);
    let r = run_in(&runs, &id);
    assert_eq!(r["state"], "finished");
    assert_eq!(r["outcome"], "succeeded");
    assert_eq!(r["driver"]["alive"], "gone", "the lease was released");
    assert!(r["lease"]["expires_in_ms"].as_i64().unwrap() <= 0);
    let out = output(&mut on(&b, &["ls"]));
    let shown = text(&out.stdout);
    let row = shown.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains(" ended "), "{shown}");
    assert!(shown.contains("Checkout rollout: succeeded"), "{shown}");
}

#[test]
fn a_driver_killed_on_its_host_is_gone_for_ls_once_its_lease_expires() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = gated_runbook(&site);
    let _gates = Gates(site.path().to_path_buf());
    let mut driver = drive(&a, &rb);
    wait_in_store(&pg, "step_started", "canary");
    let id = run_id(&the_run(&a.state));
    let pid = driver.id();
    driver.kill().unwrap();
    driver.wait().unwrap();
    // Lease of 3 s: gone within it (by the store's clock), never before B can tell.
    let gone = wait_for(Duration::from_secs(10), || {
        let runs = ls_json(&b, &[]);
        run_in(&runs, &id)["driver"]["alive"] == "gone"
    });
    assert!(gone, "the killed driver is seen gone once its lease expired");
    let runs = ls_json(&b, &[]);
    let r = run_in(&runs, &id);
    assert_eq!(r["driver"]["pid"], pid);
    assert_eq!(r["stale"], true);
    assert_eq!(r["next"], format!("runbook resume {id}"));
    let out = output(&mut on(&b, &["ls"]));
    let shown = text(&out.stdout);
    assert!(shown.contains(" STALE "), "{shown}");
    assert!(shown.contains(&format!("go on: runbook resume {id}")), "{shown}");
    // The step the killed driver left behind ends (its monitor outlives runbook by design).
    std::fs::write(site.path().join("more"), "").unwrap();
    std::fs::write(site.path().join("go"), "").unwrap();
}

#[test]
fn ls_with_a_store_that_cannot_be_reached_is_an_error_not_an_empty_list() {
    let pg = Postgres::start();
    let (_site, _a, b) = two_hosts(&pg);
    pg.stop();
    for args in [&["ls"][..], &["ls", "--format", "json"][..]] {
        let out = output(&mut on(&b, args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "nothing on stdout: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "cannot reach the store rb@127.0.0.1:{}/runbook",
                pg.port
            )),
            "{err}"
        );
        assert!(
            err.contains("the store is set by"),
            "says where it was set: {err}"
        );
        assert!(
            !err.contains(common::postgres::PASSWORD),
            "never the password: {err}"
        );
    }
    // Named on the command line instead: the message says so.
    let out = output(&mut on(&b, &["ls", "--store", &pg.url()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("(the store is set by --store)"),
        "{}",
        text(&out.stderr)
    );
    // attach, with nothing to watch here, says the same of the store.
    for args in [&["attach"][..], &["attach", "some-run", "--events"][..]] {
        let out = output(&mut on(&b, args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("cannot reach the store rb@127.0.0.1"),
            "{args:?}: {err}"
        );
    }
}

/// Terminals 80×24 on a tmux server of the test's own.
struct Terminals {
    tmux: TmuxServer,
    dir: PathBuf,
}

impl Terminals {
    fn new(site: &Site) -> Terminals {
        Terminals {
            tmux: TmuxServer::new("store-watch"),
            dir: site.path().to_path_buf(),
        }
    }

    /// A terminal named `name` running `line`; when it ends, `EXIT=<status>` goes to
    /// `<name>.exit` and the pane stays open.
    fn open(&self, name: &str, line: &str) {
        let script = format!(
            "TERM=tmux-256color LANG=C.UTF-8 {line}\necho \"EXIT=$?\" > '{dir}/{name}.tmp' && mv '{dir}/{name}.tmp' '{dir}/{name}.exit'\nexec sleep 600\n",
            dir = self.dir.display()
        );
        let path = self.dir.join(format!("{name}.sh"));
        std::fs::write(&path, script).unwrap();
        let sh = format!("sh '{}'", path.display());
        self.tmux
            .ok(&["new-session", "-d", "-s", name, "-x", "80", "-y", "24", &sh]);
        self.tmux
            .ok(&["resize-window", "-t", name, "-x", "80", "-y", "24"]);
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        self.tmux.keys(name, keys);
    }

    /// Waits until `name`'s screen shows `want`.
    fn wait_for(&self, name: &str, want: &str) -> String {
        self.tmux
            .wait_screen(name, want, Duration::from_secs(30), |s| s.contains(want))
    }

    fn exit_code(&self, name: &str) -> i32 {
        let path = self.dir.join(format!("{name}.exit"));
        let start = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&path) {
                return s.trim().trim_start_matches("EXIT=").parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} did not exit:\n{}",
                self.tmux.screen(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn attach_on_another_host_follows_the_run_through_the_store_live_to_its_end() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = gated_runbook(&site);
    let _gates = Gates(site.path().to_path_buf());
    let mut driver = drive(&a, &rb);
    wait_in_store(&pg, "step_started", "canary");
    let id = run_id(&the_run(&a.state));
    assert!(
        !b.state.join("runs").join(&id).exists(),
        "B has no folder of the run: it is watched through the store"
    );
    let tmux = Terminals::new(&site);
    tmux.open("watcher", &line_on(&b, &["attach"]));
    // Who drives, from where, and how it is seen.
    let screen = tmux.wait_for("watcher", "canary line 1");
    assert!(
        screen.contains("WATCHING via store · root@bastion-a drives"),
        "the header says WATCHING, who drives from where, via the store:\n{screen}"
    );
    assert!(screen.contains("Prepare"), "A's steps:\n{screen}");
    assert!(screen.contains("Canary"), "{screen}");
    assert!(screen.contains("Verify"), "{screen}");
    assert!(!screen.contains("canary line 2"), "{screen}");

    // The running step's log grows on B as A's step writes it.
    std::fs::write(site.path().join("more"), "").unwrap();
    let screen = tmux.wait_for("watcher", "canary line 2");
    assert!(screen.contains("canary line 1"), "{screen}");

    // A key that would change the run says who can.
    tmux.keys("watcher", &["s"]);
    tmux.wait_for("watcher", "only root (driving) can skip a step");
    // A note from B reaches A through the store: A journals it, and B's screen shows it.
    tmux.keys("watcher", &["n"]);
    tmux.wait_for("watcher", "Note for the journal");
    tmux.keys("watcher", &["-l", "replicas look fine from b"]);
    tmux.keys("watcher", &["Enter"]);
    let journal = a.state.join("runs").join(&id).join("journal.jsonl");
    let noted = wait_for(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(50));
        common::journal_json(&journal)
            .iter()
            .any(|e| e["event"] == "note" && e["text"] == "replicas look fine from b")
    });
    assert!(noted, "A journaled B's note");
    tmux.wait_for("watcher", "replicas look fine from b");

    // The store goes away: the screen says so, never looks healthy; it comes back, and B
    // catches up on what A did meanwhile.
    pg.stop();
    let screen = tmux.wait_for("watcher", "STORE LOST");
    assert!(
        !screen.contains("drives"),
        "no healthy badge while the store is lost:\n{screen}"
    );
    pg.start_again();
    let screen = tmux.wait_for("watcher", "WATCHING via store · root@bastion-a drives");
    assert!(!screen.contains("STORE LOST"), "{screen}");

    // A's run ends: its last output and its outcome reach B.
    std::fs::write(site.path().join("go"), "").unwrap();
    let done = ended(&mut driver);
    assert!(done.success(), "A's run succeeded");
    let screen = tmux.wait_for("watcher", "SUCCEEDED");
    assert!(
        screen.contains("WATCHING via store · ended · root@bastion-a drove"),
        "{screen}"
    );
    assert!(
        screen.contains("verified") || screen.contains("Verify"),
        "{screen}"
    );
    tmux.keys("watcher", &["Up"]);
    let screen = tmux.wait_for("watcher", "canary done");
    assert!(
        screen.contains("canary line 2"),
        "the canary's whole log, from the store:\n{screen}"
    );
    tmux.keys("watcher", &["q"]);
    assert_eq!(tmux.exit_code("watcher"), 0);
}

#[test]
fn attach_events_on_another_host_prints_the_driver_s_journal_as_it_comes_and_ends_with_the_run() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = gated_runbook(&site);
    let _gates = Gates(site.path().to_path_buf());
    let mut driver = drive(&a, &rb);
    wait_in_store(&pg, "step_started", "canary");
    let mut watcher = Running(
        on(&b, &["attach", "--events"])
            .spawn()
            .expect("start the watcher on bastion-b"),
    );
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the watcher printed no {what}"));
        serde_json::from_str(&line).expect("a JSON line")
    };
    // The events so far, first.
    let mut seen = vec![next("first event")];
    assert_eq!(seen[0]["event"], "run_started");
    assert_eq!(seen[0]["host"], "bastion-a");
    while !(seen.last().unwrap()["event"] == "step_started" && seen.last().unwrap()["step"] == "canary") {
        seen.push(next("step_started of the canary"));
    }
    // Then as A writes them.
    std::fs::write(site.path().join("more"), "").unwrap();
    std::fs::write(site.path().join("go"), "").unwrap();
    loop {
        let e = next("event of the rest of the run");
        let end = e["event"] == "run_finished";
        seen.push(e);
        if end {
            break;
        }
    }
    assert!(ended(&mut driver).success());
    let status = ended(&mut watcher);
    assert!(status.success(), "the watcher ends with the run, exit 0");
    // What B printed is A's journal, event for event.
    let journal: Vec<Value> = common::runs::journal(&the_run(&a.state));
    let names = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| format!("{} {}", e["ts"].as_str().unwrap(), e["event"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(names(&seen), names(&journal[..seen.len()]));
    assert_eq!(
        seen,
        journal[..seen.len()].to_vec(),
        "each event as A journaled it"
    );
    assert_eq!(seen.last().unwrap()["outcome"], "succeeded");
}

#[test]
fn a_watcher_through_the_store_sees_a_killed_driver_gone_when_its_lease_runs_out() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = gated_runbook(&site);
    let _gates = Gates(site.path().to_path_buf());
    let mut driver = drive(&a, &rb);
    wait_in_store(&pg, "step_started", "canary");
    let tmux = Terminals::new(&site);
    tmux.open("watcher", &line_on(&b, &["attach", "checkout"]));
    tmux.wait_for("watcher", "WATCHING via store · root@bastion-a drives");
    let pid = driver.id();
    driver.kill().unwrap();
    driver.wait().unwrap();
    // Nothing tells B but the lease: 3 s without a renewal, then it is read again.
    let screen = tmux.wait_for("watcher", "root@bastion-a is GONE");
    assert!(
        screen.contains(&format!(
            "the lease of root@bastion-a (pid {pid}) ran out without a renewal"
        )),
        "{screen}"
    );
    assert!(screen.contains("RUNNING"), "the run did not end: {screen}");
    tmux.keys("watcher", &["q"]);
    assert_eq!(tmux.exit_code("watcher"), 0);
    std::fs::write(site.path().join("more"), "").unwrap();
    std::fs::write(site.path().join("go"), "").unwrap();
}

/// A step that needs one approval by an operator other than the driver.
const FOUR_EYES: &str = r#"
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
"#;

#[test]
fn a_watcher_on_another_host_approves_through_the_store_from_its_screen() {
    let pg = Postgres::start();
    let (site, a, b) = two_hosts(&pg);
    let rb = site.write("four-eyes.toml", FOUR_EYES);
    let bob = common::hosts::User::new("bob");
    let mut driver = drive(&a, &rb);
    pg.wait_for(
        "SELECT count(*) > 0 FROM events WHERE event = 'run_started'",
        "t",
        Duration::from_secs(30),
    );
    let id = run_id(&the_run(&a.state));
    let tmux = Terminals::new(&site);
    let state = b.state_arg();
    tmux.open(
        "bob",
        &b.shell_line(Some(&bob), &["attach", &id, "--state-dir", &state]),
    );
    // Whether the step waits for approvals is the driver's to say: asked through the store.
    let screen = tmux.wait_for("bob", "waiting for 1 approval");
    assert!(
        screen.contains("WATCHING via store · root@bastion-a drives"),
        "{screen}"
    );
    assert!(
        screen.contains("A  approve"),
        "the approve key is offered:\n{screen}"
    );
    tmux.keys("bob", &["A"]);
    let screen = tmux.wait_for("bob", "Approve deploy/ship?");
    assert!(
        screen.contains("Ship it"),
        "the confirmation names the step:\n{screen}"
    );
    tmux.keys("bob", &["y"]);
    assert!(
        ended(&mut driver).success(),
        "approved, the run went on and succeeded"
    );
    let journal = common::journal_json(&a.state.join("runs").join(&id).join("journal.jsonl"));
    let approval = journal
        .iter()
        .find(|e| e["event"] == "approval")
        .expect("A journaled the approval");
    assert_eq!(approval["operator"], bob.name.as_str(), "{approval:#}");
    assert_eq!(approval["step"], "ship");
    assert_eq!(approval["from"]["host"], "bastion-b", "{approval:#}");
    let screen = tmux.wait_for("bob", "SUCCEEDED");
    assert!(screen.contains("WATCHING via store · ended"), "{screen}");
    tmux.keys("bob", &["q"]);
    assert_eq!(tmux.exit_code("bob"), 0);
}
