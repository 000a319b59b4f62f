//! The shared store (SPEC §9) when the network partitions: the database and two bastions, each
//! in a network namespace of the test's own with a host name of its own (`common::hosts`), a
//! real PostgreSQL listening on its namespace's address, and `runbook` started on a bastion.
//! Then a bastion's link is cut:
//!
//! - cut off mid-run and back before anyone took over, the driver starts no new step while it
//!   cannot renew its lease (saying so, journaled), lets the step in flight finish, and goes on
//!   when the link returns; the store catches up with nothing lost or doubled;
//! - cut off long enough for bastion B to take the run over (`resume RUN`, rebuilt from the
//!   store), driver A, when its link returns, finds itself fenced, starts nothing, says who took
//!   over; the store holds nothing of A's written after B's first event, and no step was started
//!   by both drivers;
//! - a copy left unfinished at A's exit is caught up by A's next `runbook`; but not when B took the
//!   run over meanwhile: then A copies nothing of it, says who has it and what of its own stays in
//!   its folder, and does not resume that folder over B's run either;
//! - A's folder went its own way while B drove, and B was lost in turn: A's takeover or resume
//!   rebuilds the folder from the store, keeps A's own in `superseded/`, and goes on from B's lines.
//!
//! Run as root (CI does): namespaces need it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{Host, Site as Hosts};
use common::netns::Network;
use common::postgres::Postgres;
use common::runs::{WAITING, finish, run_id, the_run, wait_for_soak};
use serde_json::Value;

/// A network with bastions `bastion-a` and `bastion-b` and a database, PostgreSQL on it, and the
/// hosts' config file naming that store with a 3 s lease. Dropped in this order: the database
/// stops, then the network goes (with whatever still runs in it), then the hosts' folder.
struct Site {
    pg: Postgres,
    net: Network,
    hosts: Hosts,
    a: Host,
    b: Host,
}

const LEASE_SECS: u64 = 3;

impl Site {
    fn new() -> Site {
        let net = Network::new(&["bastion-a", "bastion-b"]);
        let pg = Postgres::start_in(&net.db, &net.db_addr());
        let hosts = Hosts::new();
        hosts.store_config(&pg.url(), &format!("{LEASE_SECS}s"));
        let (a, b) = (hosts.host("bastion-a"), hosts.host("bastion-b"));
        Site { pg, net, hosts, a, b }
    }

    /// `runbook ARGS` on `host`, in its namespace.
    fn runbook(&self, host: &Host, args: &[&str]) -> Command {
        self.net.command(host, args)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        self.hosts.write(name, text)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.hosts.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }
}

fn has(j: &[Value], event: &str, step: Option<&str>) -> bool {
    j.iter()
        .any(|e| e["event"] == event && step.is_none_or(|s| e["step"] == s))
}

fn index_of(j: &[Value], event: &str, step: Option<&str>) -> usize {
    j.iter()
        .position(|e| e["event"] == event && step.is_none_or(|s| e["step"] == s))
        .unwrap_or_else(|| panic!("no {event} {step:?} in {:?}", common::event_names(j)))
}

/// Which host started each step attempt (`phase/step#attempt`), by the `run_started` of the
/// session it was journaled in.
fn starters(j: &[Value]) -> BTreeMap<String, String> {
    let mut host = String::new();
    let mut out = BTreeMap::new();
    for e in j {
        match e["event"].as_str() {
            Some("run_started") => host = e["host"].as_str().unwrap_or_default().to_string(),
            Some("step_started") => {
                out.insert(format!("{}#{}", common::step_name(e), e["attempt"]), host.clone());
            }
            _ => {}
        }
    }
    out
}

const THROUGH: &str = r#"
[runbook]
title = "Through a partition"
[[phase]]
title = "Work"
[[phase.step]]
title = "Slow"
run = "for i in $(seq 1 40); do echo tick $i; sleep 0.25; done"
[[phase.step]]
title = "After"
run = "echo after >> after-ran; echo after the partition"
"#;

#[test]
fn a_driver_cut_off_from_the_store_starts_no_step_until_its_link_returns_and_the_store_catches_up() {
    let site = Site::new();
    let rb = site.write("rb.toml", THROUGH);
    let st = site.a.state.clone();
    let child = site
        .runbook(
            &site.a,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                st.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    // The slow step runs and its first lines are in the store: cut A off.
    site.pg.wait_for(
        "SELECT count(*) > 0 FROM log_chunks",
        "t",
        Duration::from_secs(30),
    );
    site.net.cut(&site.a.name);
    let cut = Instant::now();
    let dir = the_run(&st);
    // The step in flight finishes, the lease is lost, the copy falls behind: A waits.
    assert!(
        common::wait_for(Duration::from_secs(40), || {
            std::thread::sleep(Duration::from_millis(100));
            let j = common::run_journal(&dir);
            has(&j, "step_finished", Some("slow"))
                && has(&j, "store_lease_lost", None)
                && has(&j, "store_behind", None)
        }),
        "{:?}",
        common::event_names(&common::run_journal(&dir))
    );
    // A moment more, in which nothing starts.
    std::thread::sleep(Duration::from_secs(1));
    let j = common::run_journal(&dir);
    assert!(
        !has(&j, "step_started", Some("after")),
        "no step starts while the lease cannot be renewed: {:?}",
        common::event_names(&j)
    );
    assert!(!site.file("after-ran").exists());
    let held_for = cut.elapsed();
    site.net.heal(&site.a.name);
    let run = finish(child, Duration::from_secs(60));
    run.expect_code(0);

    let j = common::journal_json(&dir.join("journal.jsonl"));
    // Said before the lease expired, then that it was lost.
    let lost = index_of(&j, "store_lease_lost", None);
    let unconfirmed = j[..lost]
        .iter()
        .rfind(|e| e["event"] == "store_lease_unconfirmed")
        .unwrap_or_else(|| {
            panic!(
                "store_lease_unconfirmed before store_lease_lost: {:?}",
                common::event_names(&j)
            )
        });
    let (since, expires) = (
        unconfirmed["since"].as_str().unwrap(),
        unconfirmed["expires"].as_str().unwrap(),
    );
    assert!(
        common::ms_between(unconfirmed["ts"].as_str().unwrap(), expires) > 0,
        "store_lease_unconfirmed is journaled before the lease expires: {unconfirmed}"
    );
    let lease_ms = common::ms_between(since, expires) - (LEASE_SECS * 1000) as i128;
    assert!(lease_ms.abs() <= 2, "{unconfirmed}");
    // The step in flight was not killed: every line, succeeded.
    let slow = common::last_finished(&j, "work/slow");
    assert_eq!(slow["status"], "succeeded", "{slow}");
    let ticks = std::fs::read_to_string(dir.join("logs/work--slow--1.log")).unwrap();
    assert_eq!(ticks.lines().count(), 40);
    // The next step started only once the lease was renewed, and once.
    let renewed = j
        .iter()
        .rposition(|e| e["event"] == "store_lease_renewed")
        .expect("store_lease_renewed");
    assert!(renewed > index_of(&j, "step_finished", Some("slow")));
    assert!(index_of(&j, "step_started", Some("after")) > renewed);
    assert_eq!(site.read("after-ran").lines().count(), 1);
    assert!(
        held_for >= Duration::from_secs(LEASE_SECS),
        "the link was down past the lease"
    );
    // The operator was told, on the headless lines, why nothing started.
    assert!(
        run.stdout
            .contains("the shared store has not confirmed this run's lease since"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("no new step starts until it is renewed"),
        "{}",
        run.stdout
    );
    // The store caught up: every line and log byte, once, all under the one lease.
    site.pg.assert_replicated(&dir);
    let epochs = site.pg.psql(
        "runbook",
        &format!(
            "SELECT DISTINCT epoch FROM events WHERE run_id = '{}'",
            run_id(&dir)
        ),
    );
    assert_eq!(epochs.trim(), "1");
}

#[test]
fn a_driver_cut_off_while_another_host_took_over_is_fenced_when_it_returns_and_starts_nothing() {
    let site = Site::new();
    let rb = site.write("rb.toml", WAITING);
    let (a, b) = (site.a.state.clone(), site.b.state.clone());
    let old = site
        .runbook(
            &site.a,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--yes",
                "--var",
                "w=8s",
                "--state-dir",
                a.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    wait_for_soak(&site.pg);
    let dir_a = the_run(&a);
    let id = run_id(&dir_a);
    site.net.cut(&site.a.name);
    // A's lease runs out in the store; then B takes the run over from the store.
    site.pg.wait_for(
        &format!("SELECT expires_at < now() FROM leases WHERE run_id = '{id}'"),
        "t",
        Duration::from_secs(15),
    );
    let new = site
        .runbook(
            &site.b,
            &[
                "resume",
                &id,
                "--headless",
                "--yes",
                "--var",
                "w=1s",
                "--state-dir",
                b.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    let new = finish(new, Duration::from_secs(60));
    new.expect_code(0);
    assert!(new.stderr.contains("rebuilt"), "{}", new.stderr);
    // A's soak passed meanwhile: it waits for its lease, starting nothing.
    assert!(
        common::wait_for(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(100));
            has(&common::run_journal(&dir_a), "step_finished", Some("soak"))
        }),
        "{:?}",
        common::event_names(&common::run_journal(&dir_a))
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has(&common::run_journal(&dir_a), "step_started", Some("third")));
    // A's link comes back.
    site.net.heal(&site.a.name);
    let old = finish(old, Duration::from_secs(60));
    // Fenced: the run is B's now, as after a hand-over (exit 0, nothing more journaled).
    old.expect_code(0);
    let said = format!("{}\n{}", old.stdout, old.stderr);
    assert!(
        said.contains("@bastion-b (pid") && said.contains("took over this run"),
        "A says who took over:\n{said}"
    );

    let dir_b = b.join("runs").join(&id);
    let ja = common::journal_json(&dir_a.join("journal.jsonl"));
    let jb = common::journal_json(&dir_b.join("journal.jsonl"));
    // Two hosts for real: each session journals its own host name.
    let hosts: Vec<&str> = common::events(&jb, "run_started")
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["bastion-a", "bastion-b"]);
    let fenced = common::events(&ja, "store_fenced");
    assert_eq!(fenced.len(), 1, "{:?}", common::event_names(&ja));
    assert!(
        fenced[0]["by"].as_str().unwrap().contains("@bastion-b"),
        "{}",
        fenced[0]
    );
    assert!(
        common::events(&ja, "run_finished").is_empty(),
        "a fenced driver does not end the run"
    );
    // No step attempt was started by both drivers: A's after the cut and B's are apart.
    let (by_a, by_b) = (starters(&ja), starters(&jb));
    let mut both: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (step, host) in by_a.iter().chain(by_b.iter()) {
        both.entry(step.clone()).or_default().insert(host.clone());
    }
    for (step, hosts) in &both {
        assert_eq!(hosts.len(), 1, "{step} was started by {hosts:?}");
    }
    assert_eq!(by_a.get("deploy/third#1"), None, "A never started the third step");
    assert_eq!(by_b["deploy/third#1"], "bastion-b");
    assert_eq!(by_a["deploy/soak#1"], "bastion-a");
    let ran: Vec<String> = site.read("third-ran-in").lines().map(str::to_string).collect();
    assert_eq!(ran.len(), 1, "the third step ran once: {ran:?}");
    assert!(ran[0].contains("state-bastion-b"), "{ran:?}");
    // The store: nothing of A's (epoch 1) after B's first event (epoch 2); all of B's run.
    let late = site.pg.psql(
        "runbook",
        &format!(
            "SELECT count(*) FROM events WHERE run_id = '{id}' AND epoch = 1 AND seq > \
             (SELECT min(seq) FROM events WHERE run_id = '{id}' AND epoch = 2)"
        ),
    );
    assert_eq!(late.trim(), "0");
    let a_after_cut = site.pg.psql(
        "runbook",
        &format!(
            "SELECT count(*) FROM events WHERE run_id = '{id}' AND event IN ('store_lease_lost', 'store_fenced')"
        ),
    );
    assert_eq!(
        a_after_cut.trim(),
        "0",
        "what A journaled cut off never reached the store"
    );
    site.pg.assert_replicated(&dir_b);
}

const ENDS_CUT_OFF: &str = r#"
[runbook]
title = "Ends cut off"
[[phase]]
title = "Work"
[[phase.step]]
title = "Output"
run = "seq 1 5000"
[[phase.step]]
title = "Last"
run = "sleep 3; echo last words"
"#;

#[test]
fn a_copy_left_unfinished_at_the_exit_is_said_and_the_next_runbook_on_the_host_catches_it_up() {
    let site = Site::new();
    let rb = site.write("rb.toml", ENDS_CUT_OFF);
    let st = site.a.state.clone();
    let args = [
        "run",
        rb.to_str().unwrap(),
        "--headless",
        "--state-dir",
        st.to_str().unwrap(),
    ];
    // Its stdout is not read here: it goes nowhere, so that it never blocks.
    let mut child = site
        .runbook(&site.a, &args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let last_started = || {
        site.pg
            .try_psql(
                "runbook",
                "SELECT count(*) FROM events WHERE event = 'step_started' AND line LIKE '%\"step\":\"last\"%'",
            )
            .is_ok_and(|n| n.trim() == "1")
    };
    assert!(
        common::wait_for(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(50));
            last_started()
        }),
        "{:?}",
        common::run_dirs(&st)
            .iter()
            .map(|d| common::run_journal(d))
            .collect::<Vec<_>>()
    );
    // The link goes while the last step runs: the end of the run cannot reach the store.
    site.net.cut(&site.a.name);
    let dir = the_run(&st);
    assert!(
        dir.join("store-copy").exists(),
        "the run is marked as not yet copied"
    );
    // At the exit, the wait for the copy is said, with what is left; Ctrl-C ends it.
    let mut err = child.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    assert!(
        common::wait_for(Duration::from_secs(60), || {
            std::thread::sleep(Duration::from_millis(50));
            has(&common::run_journal(&dir), "run_finished", None)
        }),
        "the run ends while cut off: {:?}",
        common::event_names(&common::run_journal(&dir))
    );
    let waited = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let stderr = said.join().unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "Ctrl-C ends the wait at once"
    );
    assert_eq!(status.code(), Some(0), "the run's own status: {stderr}");
    assert!(
        stderr.contains("runbook: copying ") && stderr.contains(" to the store "),
        "{stderr}"
    );
    assert!(
        stderr.contains("the store lacks the last ") && stderr.contains("left at Ctrl-C"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the next runbook run, rehearse or resume on this host with this store copies them"),
        "{stderr}"
    );
    let id = run_id(&dir);
    let lines = common::postgres::local_lines(&dir).len();
    let stored: usize = site
        .pg
        .psql(
            "runbook",
            &format!("SELECT count(*) FROM events WHERE run_id = '{id}'"),
        )
        .trim()
        .parse()
        .unwrap();
    assert!(
        stored < lines,
        "the store lacks the end of the run ({stored} of {lines})"
    );
    assert!(dir.join("store-copy").exists());

    // The link is back; the next runbook on this host copies what the store lacks.
    site.net.heal(&site.a.name);
    let other = site.write("other.toml", common::runs::ANOTHER_RUN);
    let next = site
        .runbook(
            &site.a,
            &[
                "run",
                other.to_str().unwrap(),
                "--headless",
                "--state-dir",
                st.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    let next = finish(next, Duration::from_secs(60));
    next.expect_code(0);
    assert!(
        next.stderr
            .contains("copying to the store what it lacks of 1 earlier run(s) of this host"),
        "{}",
        next.stderr
    );
    site.pg.assert_replicated(&dir);
    assert!(!dir.join("store-copy").exists(), "the mark goes once all is in");
    let epochs = site.pg.psql(
        "runbook",
        &format!("SELECT DISTINCT epoch FROM events WHERE run_id = '{id}'"),
    );
    assert_eq!(epochs.trim(), "1", "caught up under the run's own lease");
    for run in common::run_dirs(&st) {
        assert!(!run.join("store-copy").exists(), "{}", run.display());
    }
}

const TAKEN_OVER: &str = r#"
[runbook]
title = "Taken over while cut off"
[[phase]]
title = "Work"
[[phase.step]]
title = "First"
run = "echo first"
[[phase.step]]
title = "Slow"
run = "for i in $(seq 1 30); do echo tick $i; sleep 0.2; done"
[[phase.step]]
title = "Last"
run = "echo $RUNBOOK_RUN_DIR >> last-ran-in; echo last"
"#;

/// `512 B`, `12.3 KB`: sizes as `runbook` words them.
fn size(n: u64) -> String {
    match n {
        n if n < 1000 => format!("{n} B"),
        n if n < 1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// A run driven on A, cut off from the store, and taken over by B (see `a_cut_off_then_b_resumes`).
struct CutOff {
    /// A's `runbook`, still running (holding, without its lease).
    old: std::process::Child,
    dir_a: PathBuf,
    id: String,
    /// B's `runbook resume`, started.
    new: std::process::Child,
}

/// A runs `run RUN_ARGS… --headless --yes` until `ready` (SQL) says `t`/a non-zero count in the
/// store, is cut off from the store, and ends `step` there alone (its lease lost); once the lease
/// has expired in the store, B starts `resume RUN --headless --yes` from it.
fn a_cut_off_then_b_resumes(site: &Site, run_args: &[&str], ready: &str, step: &str) -> CutOff {
    let (a, b) = (site.a.state.to_str().unwrap(), site.b.state.to_str().unwrap());
    let mut args = vec!["run"];
    args.extend_from_slice(run_args);
    args.extend(["--headless", "--yes", "--state-dir", a]);
    let old = site
        .runbook(&site.a, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let want = if ready.contains("count(*) >") { "t" } else { "1" };
    site.pg.wait_for(ready, want, Duration::from_secs(30));
    site.net.cut(&site.a.name);
    let dir_a = the_run(&site.a.state);
    let id = run_id(&dir_a);
    assert!(
        common::wait_for(Duration::from_secs(40), || {
            std::thread::sleep(Duration::from_millis(100));
            let j = common::run_journal(&dir_a);
            has(&j, "step_finished", Some(step)) && has(&j, "store_lease_lost", None)
        }),
        "{:?}",
        common::event_names(&common::run_journal(&dir_a))
    );
    site.pg.wait_for(
        &format!("SELECT expires_at < now() FROM leases WHERE run_id = '{id}'"),
        "t",
        Duration::from_secs(15),
    );
    let new = site
        .runbook(&site.b, &["resume", &id, "--headless", "--yes", "--state-dir", b])
        .spawn()
        .unwrap();
    CutOff { old, dir_a, id, new }
}

#[test]
fn a_run_taken_over_elsewhere_is_neither_caught_up_nor_resumed_over_the_new_drivers_lines() {
    let site = Site::new();
    let rb = site.write("rb.toml", TAKEN_OVER);
    let (a, b) = (site.a.state.clone(), site.b.state.clone());
    // A is cut off once the slow step's first lines are in the store, and writes the rest only
    // locally; B takes the run over from the store and drives it to its end.
    let CutOff {
        mut old,
        dir_a,
        id,
        new,
    } = a_cut_off_then_b_resumes(
        &site,
        &[rb.to_str().unwrap()],
        "SELECT count(*) > 0 FROM log_chunks WHERE log = 'logs/work--slow--1.log'",
        "slow",
    );
    let new = finish(new, Duration::from_secs(60));
    new.expect_code(0);
    assert!(new.stderr.contains("rebuilt"), "{}", new.stderr);
    let dir_b = b.join("runs").join(&id);
    // A is killed while still cut off: its copy is left unfinished, its folder marked.
    old.kill().unwrap();
    old.wait().unwrap();
    assert!(dir_a.join("store-copy").exists(), "A's copy was left unfinished");
    let a_lines = common::postgres::local_lines(&dir_a);
    let a_in_store: usize = site
        .pg
        .psql(
            "runbook",
            &format!("SELECT count(*) FROM events WHERE run_id = '{id}' AND epoch = 1"),
        )
        .trim()
        .parse()
        .unwrap();
    let stored = site.pg.lines_of(&id);
    assert_eq!(
        stored[..a_in_store],
        a_lines[..a_in_store],
        "the store begins with A's lines"
    );
    let left_lines = a_lines.len() - a_in_store;
    assert!(left_lines > 0, "A journaled lines the store never had");
    let slow_a = std::fs::read(dir_a.join("logs/work--slow--1.log")).unwrap();
    let slow_stored = site.pg.log_of(&id, "logs/work--slow--1.log");
    assert!(
        slow_stored.len() < slow_a.len() && slow_a.starts_with(&slow_stored),
        "the store has the start of A's slow step log ({} of {} bytes)",
        slow_stored.len(),
        slow_a.len()
    );
    let left_bytes = (slow_a.len() - slow_stored.len()) as u64;
    site.pg.assert_replicated(&dir_b);

    // A's link returns; its next runbook with this store finds the marked run.
    site.net.heal(&site.a.name);
    let other = site.write("other.toml", common::runs::ANOTHER_RUN);
    let next_args = [
        "run",
        other.to_str().unwrap(),
        "--headless",
        "--state-dir",
        a.to_str().unwrap(),
    ];
    let next = finish(
        site.runbook(&site.a, &next_args).spawn().unwrap(),
        Duration::from_secs(60),
    );
    next.expect_code(0);
    assert!(
        next.stderr
            .contains("copying to the store what it lacks of 1 earlier run(s) of this host"),
        "{}",
        next.stderr
    );
    // It says what became of that run, and where A's own lines stay.
    let said = next
        .stderr
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("A names the run it did not copy:\n{}", next.stderr));
    assert!(
        said.contains("taken over by ") && said.contains("@bastion-b (pid"),
        "{said}"
    );
    assert!(said.contains("drove it to its end (succeeded)"), "{said}");
    assert!(
        said.contains(&format!(
            "{left_lines} journal lines and {} of step logs",
            size(left_bytes)
        )),
        "{said}"
    );
    assert!(said.contains("were not copied"), "{said}");
    assert!(said.contains(&format!("stay in {}", dir_a.display())), "{said}");
    // The store's journal of the run is still exactly B's: nothing of A's added, doubled or
    // lost, numbered 1..n; the slow step's log as B rebuilt it.
    site.pg.assert_replicated(&dir_b);
    assert_eq!(site.pg.lines_of(&id), stored);
    assert_eq!(site.pg.log_of(&id, "logs/work--slow--1.log"), slow_stored);
    // A's folder keeps its lines; its mark is gone, so the next runbook does not try again.
    assert_eq!(common::postgres::local_lines(&dir_a), a_lines);
    assert_eq!(
        std::fs::read(dir_a.join("logs/work--slow--1.log")).unwrap(),
        slow_a
    );
    assert!(!dir_a.join("store-copy").exists());
    let again = finish(
        site.runbook(&site.a, &next_args).spawn().unwrap(),
        Duration::from_secs(60),
    );
    again.expect_code(0);
    assert!(
        !again.stderr.contains("earlier run") && !again.stderr.contains(&id),
        "{}",
        again.stderr
    );
    // Nor is A's folder resumed: that would run again on A what ran on B.
    let resumed = finish(
        site.runbook(
            &site.a,
            &[
                "resume",
                &id,
                "--headless",
                "--yes",
                "--state-dir",
                a.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap(),
        Duration::from_secs(60),
    );
    resumed.expect_code(2);
    assert!(
        resumed
            .stderr
            .contains(&format!("{id} went on without this host")),
        "{}",
        resumed.stderr
    );
    assert!(
        resumed.stderr.contains("@bastion-b (pid")
            && resumed.stderr.contains("drove it to its end (succeeded)")
            && resumed.stderr.contains("there is nothing to resume"),
        "{}",
        resumed.stderr
    );
    assert_eq!(common::postgres::local_lines(&dir_a), a_lines);
    assert_eq!(site.pg.lines_of(&id), stored);
    site.pg.assert_replicated(&dir_b);
    let ran: Vec<String> = site.read("last-ran-in").lines().map(str::to_string).collect();
    assert_eq!(ran.len(), 1, "the last step ran once, on B: {ran:?}");
    assert!(ran[0].contains("state-bastion-b"), "{ran:?}");
}

#[test]
fn a_takeover_back_on_a_host_whose_folder_went_its_own_way_rebuilds_it_and_keeps_the_old_one() {
    back_on_a_host_whose_folder_went_its_own_way(&["takeover", "--reason", "bastion-a is back"]);
}

#[test]
fn a_resume_on_a_host_whose_folder_went_its_own_way_rebuilds_it_and_keeps_the_old_one() {
    back_on_a_host_whose_folder_went_its_own_way(&["resume"]);
}

/// A drives, is cut off, and journals on alone; B takes the run over and is lost in turn; A,
/// back, goes on with the run (`how`: takeover or resume, then the run's id).
fn back_on_a_host_whose_folder_went_its_own_way(how: &[&str]) {
    let site = Site::new();
    let rb = site.write("rb.toml", WAITING);
    let (a, b) = (site.a.state.clone(), site.b.state.clone());
    // A is cut off in its soak, which passes there: A journals it, and its lease lost, alone.
    // B takes the run over from the store, starts the soak again, and is lost in it too.
    let CutOff {
        mut old,
        dir_a,
        id,
        new,
    } = a_cut_off_then_b_resumes(
        &site,
        &[rb.to_str().unwrap(), "--var", "w=8s"],
        "SELECT count(*) FROM events WHERE event = 'step_started' AND line LIKE '%\"step\":\"soak\"%'",
        "soak",
    );
    site.pg.wait_for(
        &format!(
            "SELECT count(*) FROM events WHERE run_id = '{id}' AND epoch = 2 AND event = 'step_started'"
        ),
        "1",
        Duration::from_secs(30),
    );
    let mut new = new;
    new.kill().unwrap();
    new.wait().unwrap();
    let dir_b = b.join("runs").join(&id);
    site.pg.assert_replicated(&dir_b);
    site.pg.wait_for(
        &format!("SELECT expires_at < now() FROM leases WHERE run_id = '{id}'"),
        "t",
        Duration::from_secs(15),
    );
    // A is killed still cut off; its folder holds lines the store never took.
    old.kill().unwrap();
    old.wait().unwrap();
    let a_lines = common::postgres::local_lines(&dir_a);
    let stored = site.pg.lines_of(&id);
    assert!(
        a_lines.iter().any(|l| !stored.contains(l)),
        "A's folder went its own way"
    );

    // A's operator, back on the network, takes the run back: A's folder is rebuilt from the
    // store, A's own one is kept, and A goes on from where B left the run.
    site.net.heal(&site.a.name);
    let mut args = vec![how[0], &id];
    args.extend_from_slice(&how[1..]);
    let state_a = a.to_str().unwrap();
    args.extend(["--headless", "--yes", "--var", "w=1s", "--state-dir", state_a]);
    let back = site.runbook(&site.a, &args).spawn().unwrap();
    let back = finish(back, Duration::from_secs(60));
    back.expect_code(0);
    assert!(
        back.stderr
            .contains(&format!("brought {} up to date", dir_a.display())),
        "{}",
        back.stderr
    );
    let kept_in = a.join("superseded");
    let kept: Vec<_> = std::fs::read_dir(&kept_in)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", kept_in.display(), back.stderr))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        back.stderr.contains(&format!(
            "this host's own folder of {id} ({} journal lines",
            a_lines.len()
        )) && back.stderr.contains(&format!("is kept in {}", kept[0].display())),
        "{}",
        back.stderr
    );
    assert_eq!(common::postgres::local_lines(&kept[0]), a_lines);
    // The run went on from the store's journal: B's lines kept, then A's new session.
    let now = common::postgres::local_lines(&dir_a);
    assert_eq!(now[..stored.len()], stored[..]);
    site.pg.assert_replicated(&dir_a);
    let j = common::journal_json(&dir_a.join("journal.jsonl"));
    assert_eq!(
        common::events(&j, "run_finished").last().unwrap()["outcome"],
        "succeeded"
    );
    let ran: Vec<String> = site.read("third-ran-in").lines().map(str::to_string).collect();
    assert_eq!(ran.len(), 1, "the third step ran once: {ran:?}");
    assert!(ran[0].contains("state-bastion-a"), "{ran:?}");
}
