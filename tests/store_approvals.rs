//! A step waiting for approvals, seen from other hosts through the shared store (SPEC §8, §9),
//! against a real PostgreSQL (`common::postgres`), with "bastions" of their own host names and
//! state dirs (`common::hosts`) and a real Unix user who approves. The driver says how another
//! host approves (`runbook approve RUN_ID STEP`, headless and in the terminal UI at 80×24 under
//! tmux); `runbook ls` on another host says the run waits for approvals (text and JSON), from
//! the driver's lease row in the store, and no longer once that command, run there, approved it.
//! A watcher through the store (`attach` on another host) is shown the command by the id. A driver
//! killed while it waits is gone for `ls` once its lease expires, whatever its row still says.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{Host, Site, User};
use common::postgres::Postgres;
use common::runs::{LIMIT, Running, the_run, wait_text};
use common::tmux::TmuxServer;
use common::{text, wait_output};
use serde_json::Value;

/// A step that needs one approval, then a step that runs until the test opens its gate (so the
/// run is still live, past the approval, when the test looks again).
fn four_eyes(site: &Site) -> PathBuf {
    let gate = site.path().join("gate");
    site.write(
        "four-eyes.toml",
        &format!(
            r#"
[runbook]
title = "Four eyes across hosts"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "migrate"
title = "Migrate the database"
run = "echo migrating"
approval = {{ count = 1 }}

[[phase.step]]
id = "after"
title = "After"
run = "echo after; while [ ! -e {gate} ] && [ -d {dir} ]; do sleep 0.05; done"
"#,
            gate = gate.display(),
            dir = site.path().display()
        ),
    )
}

/// Opens the gate of `four_eyes` when dropped, so that its step never outlives a failed test.
struct Gate(PathBuf);

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("gate"), "");
    }
}

fn on(host: &Host, user: Option<&User>, args: &[&str]) -> Command {
    let mut args = args.to_vec();
    let state = host.state_arg();
    args.extend(["--state-dir", &state]);
    host.command(user, &args)
}

fn output(mut cmd: Command) -> Output {
    wait_output(cmd.spawn().unwrap(), LIMIT)
}

/// `runbook ls` on `host` (text, then JSON), with the run `id`'s entry of the JSON.
fn ls(host: &Host, id: &str) -> (String, Value) {
    let out = output(on(host, None, &["ls"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let out = output(on(host, None, &["ls", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let run = runs
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} in ls --format json:\n{shown}"));
    (shown, run)
}

#[test]
fn ls_on_host_b_says_a_run_of_host_a_waits_for_approvals_until_b_approves_with_the_command_a_shows() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "6s");
    let rb = four_eyes(&site);
    let _gate = Gate(site.path().to_path_buf());
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let bob = User::new("bob");
    let out_a = site.path().join("a.out");
    let file = std::fs::File::create(&out_a).unwrap();
    let driver = Running(
        on(&a, None, &["run", rb.to_str().unwrap(), "--headless"])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap(),
    );
    let said = wait_text(&out_a, "waiting for 1 approval");
    let dir = the_run(&a.state);
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    // The driver says how to approve on its host (the run folder) and from another (the id).
    let line = said
        .lines()
        .find(|l| l.contains("waiting for 1 approval"))
        .unwrap();
    assert!(
        line.contains(&format!(
            "another operator approves with: runbook approve {} deploy/migrate",
            dir.display()
        )),
        "{line}"
    );
    let elsewhere = format!("runbook approve {id} deploy/migrate");
    assert!(
        line.ends_with(&format!("; from another host (shared store): {elsewhere}")),
        "{line}"
    );

    // B has no folder of the run and asks no driver: the lease row in the store says it waits.
    let (shown, run) = ls(&b, &id);
    assert_eq!(run["source"], "store", "{run}");
    assert_eq!(run["state"], "waiting", "{run}");
    assert_eq!(run["waiting_for"], "approvals", "{run}");
    assert_eq!(run["step"]["phase"], "deploy");
    assert_eq!(run["step"]["step"], "migrate");
    let waits = "deploy/migrate is waiting for 1 approval (any operator but the driver may approve)";
    assert_eq!(run["text"], waits, "{run}");
    assert!(shown.contains(waits), "{shown}");
    assert!(common::run_dirs(&b.state).is_empty());
    let row = pg.psql(
        "runbook",
        &format!("SELECT waiting->>'step', waiting->>'needed' FROM leases WHERE run_id = '{id}'"),
    );
    assert_eq!(row.trim(), "deploy/migrate|1");

    // On A itself the id names the run too: the driver answers (and refuses its own user).
    let own = output(on(&a, None, &["approve", &id, "deploy/migrate"]));
    assert_eq!(own.status.code(), Some(1), "{}", text(&own.stderr));
    assert!(
        text(&own.stderr).contains("an approval must come from another operator"),
        "{}",
        text(&own.stderr)
    );

    // Bob approves on B with the command A showed.
    let words: Vec<&str> = elsewhere.split(' ').skip(1).collect();
    let approve = output(on(&b, Some(&bob), &words));
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve.stderr));
    assert!(
        text(&approve.stdout).contains(&format!("{} approved deploy/migrate", bob.name)),
        "{}",
        text(&approve.stdout)
    );
    wait_text(&out_a, "after");
    // The run goes on (its next step waits for the gate): nothing waits for approvals any more.
    pg.wait_for(
        &format!("SELECT waiting IS NULL FROM leases WHERE run_id = '{id}'"),
        "t",
        LIMIT,
    );
    let (shown, run) = ls(&b, &id);
    assert_eq!(run["state"], "running", "{run}");
    assert_eq!(run["step"]["step"], "after", "{run}");
    assert!(!shown.contains("approval"), "{shown}");
    assert!(shown.contains("running deploy/after"), "{shown}");

    std::fs::write(site.path().join("gate"), "").unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut driver = driver;
    let code = loop {
        if let Some(s) = driver.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "the driver did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&out_a).unwrap());
    // Released with the run: the row says nothing waits.
    let row = pg.psql(
        "runbook",
        &format!("SELECT waiting IS NULL, expires_at <= now() FROM leases WHERE run_id = '{id}'"),
    );
    assert_eq!(row.trim(), "t|t");
}

#[test]
fn the_drivers_screen_says_how_another_host_approves_at_80_columns() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "6s");
    let rb = four_eyes(&site);
    let _gate = Gate(site.path().to_path_buf());
    let a = site.host("bastion-a");
    let mut args = vec!["run", rb.to_str().unwrap(), "--state-dir"];
    let state = a.state_arg();
    args.push(&state);
    let command = format!(
        "env NO_COLOR=1 {}; echo EXIT=$?; sleep 600",
        a.shell_line(None, &args)
    );
    let tmux = TmuxServer::new("store-approve-hint");
    tmux.ok(&["new-session", "-d", "-s", "run", "-x", "80", "-y", "24", &command]);
    let dir = the_run(&a.state);
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let screen = tmux.wait_screen("run", "the approval hint", LIMIT, |s| {
        s.contains("from another host (shared store):")
    });
    // The commands are whole on screen (cut into rows of the pane's width, never shortened).
    let flat: String = screen
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join("");
    assert!(
        flat.contains(&format!("runbook approve {id} deploy/migrate")),
        "{screen}"
    );
    assert!(
        flat.contains(&format!("runbook approve {}", dir.display())),
        "{screen}"
    );
    assert!(screen.contains("another operator approves it with:"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80));

    // A watcher on another host, through the store, has no folder of the run: it is shown the
    // command by the id alone.
    let b = site.host("bastion-b");
    let mut args = vec!["attach", &id, "--state-dir"];
    let state_b = b.state_arg();
    args.push(&state_b);
    let watch = format!("env NO_COLOR=1 {}; sleep 600", b.shell_line(None, &args));
    tmux.ok(&["new-session", "-d", "-s", "watch", "-x", "80", "-y", "24", &watch]);
    let screen = tmux.wait_screen("watch", "the watcher's approval hint", LIMIT, |s| {
        s.contains("WATCHING") && s.contains("another operator approves it with:")
    });
    assert!(
        screen.contains(&format!("runbook approve {id} deploy/migrate")),
        "{screen}"
    );
    assert!(!screen.contains("store:"), "{screen}");
    assert!(!screen.contains("from another host"), "{screen}");
    // It learnt that from the driver's lease row, as it changed: the driver was never asked.
    let asked = pg.psql("runbook", "SELECT count(*) FROM requests WHERE kind = 'hello'");
    assert_eq!(asked.trim(), "0", "hello requests through the store");
}

#[test]
fn a_driver_killed_while_it_waits_for_approvals_is_gone_for_ls_not_waiting_once_its_lease_expires() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "3s");
    let rb = four_eyes(&site);
    let _gate = Gate(site.path().to_path_buf());
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let out_a = site.path().join("a.out");
    let file = std::fs::File::create(&out_a).unwrap();
    let mut driver = Running(
        on(&a, None, &["run", rb.to_str().unwrap(), "--headless"])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap(),
    );
    wait_text(&out_a, "waiting for 1 approval");
    let id = the_run(&a.state)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (_, run) = ls(&b, &id);
    assert_eq!(run["waiting_for"], "approvals", "{run}");
    // The driver's host dies: nothing clears the row, but once the lease has expired its
    // `waiting` is not believed.
    driver.0.kill().unwrap();
    driver.0.wait().unwrap();
    pg.wait_for(
        &format!("SELECT expires_at < now() FROM leases WHERE run_id = '{id}'"),
        "t",
        LIMIT,
    );
    let row = pg.psql(
        "runbook",
        &format!("SELECT waiting->>'step' FROM leases WHERE run_id = '{id}'"),
    );
    assert_eq!(row.trim(), "deploy/migrate", "the row still says it");
    let (shown, run) = ls(&b, &id);
    assert_eq!(run["stale"], true, "{run}");
    assert_eq!(run["driver"]["alive"], "gone", "{run}");
    assert_ne!(run["waiting_for"], "approvals", "{run}");
    assert!(!shown.contains("approval"), "{shown}");
    assert!(shown.contains(" STALE "), "{shown}");
}
