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

use common::hosts::{Site, User};
use common::postgres::Postgres;
use common::{CliRun, wait_output};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn finish(child: Child, limit: Duration) -> CliRun {
    let started = Instant::now();
    CliRun::new(wait_output(child, limit), started.elapsed())
}

/// Starts `cmd` with its stdout and stderr going to files (read while it runs).
fn spawn_logged(mut cmd: Command, out: &Path) -> Child {
    let file = std::fs::File::create(out).unwrap();
    cmd.stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap()
}

/// Waits for a process started by `spawn_logged` to end; its exit status (it is killed after
/// `LIMIT`).
fn wait_exit(mut child: Child) -> Option<i32> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
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

    let approve = finish(
        b.command(
            Some(&bob),
            &["approve", &id, "deploy/migrate", "--state-dir", &b.state_arg()],
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
    assert_eq!(
        approval["from"]["store_role"],
        common::postgres::USER,
        "{approval}"
    );
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
            "approve|rb|root|bastion-b|false\nnote|rb|{0}|bastion-b|true\napprove|rb|{0}|bastion-b|true",
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
