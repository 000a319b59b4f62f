//! `runbook report RUN` across hosts through the shared store (SPEC §8, §9), against a real
//! PostgreSQL (`common::postgres`): a run driven on "bastion-a" (a host name and a state dir of
//! its own, `common::hosts`), reported there; A's state dir lost; `report RUN` on "bastion-b",
//! which never had the run, prints the same report from the store (Markdown and JSON, on stdout
//! and with `-o`); a run in neither place, and a store that cannot be reached, are exit 2 with a
//! message naming the store and where it was set.

mod common;

use std::process::Output;
use std::time::Duration;

use common::hosts::{Host, Site};
use common::postgres::Postgres;
use common::{text, wait_output};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

/// A run with a failed attempt (whose log's last lines the report shows), a retry, a manual step
/// confirmed by `--yes`, a step skipped on failure and a metric sampled on the way.
const RUNBOOK: &str = r#"
[runbook]
title = "Checkout rollout"

[metrics]
interval = "250ms"

[[metric]]
id = "error_rate"
title = "Error rate"
unit = "percent"
command = "echo 0.004"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "canary"
title = "Deploy the canary"
run = "for i in $(seq 1 30); do echo canary line $i; done; echo 'boom: the canary failed' >&2; sleep 0.6; exit 3"
on_failure = "continue"

[[phase.step]]
id = "check"
title = "Check the dashboards"
manual = "Look at the checkout dashboard"

[[phase.step]]
id = "finish"
title = "Finish"
run = "echo done"
"#;

fn on(host: &Host, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let state = host.state_arg();
    all.extend(["--state-dir", &state]);
    let child = host.command(None, &all).spawn().unwrap();
    wait_output(child, LIMIT)
}

/// The `journal` line of a JSON report: the one place where the store's report says where it
/// was read from.
fn without_journal(json: &str) -> String {
    json.lines()
        .filter(|l| !l.starts_with("  \"journal\": "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_run_of_host_a_whose_state_dir_is_lost_is_reported_on_host_b_from_the_store() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let rb = site.write("checkout.toml", RUNBOOK);
    let (a, b) = (site.host("bastion-a"), site.host("bastion-b"));
    let run = on(&a, &["run", rb.to_str().unwrap(), "--headless", "--yes"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let dirs = common::run_dirs(&a.state);
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    pg.assert_replicated(dir);

    // On A, by its id: the local folder.
    let local_md = on(&a, &["report", &id]);
    assert_eq!(local_md.status.code(), Some(0), "{}", text(&local_md.stderr));
    let local_json = on(&a, &["report", &id, "--format", "json"]);
    assert_eq!(local_json.status.code(), Some(0));
    let local_md = text(&local_md.stdout);
    let local_json = text(&local_json.stdout);
    // The report has what must come from the logs too: the failed attempt's last lines.
    assert!(local_md.contains("boom: the canary failed"), "{local_md}");
    assert!(local_md.contains("canary line 30"), "{local_md}");
    let j: Value = serde_json::from_str(&local_json).unwrap();
    assert_eq!(
        j["journal"],
        dir.join("journal.jsonl").display().to_string().as_str()
    );

    // A is gone, with its state dir.
    std::fs::remove_dir_all(&a.state).unwrap();

    // B never had the run: the store's copy gives the same report, byte for byte.
    assert!(common::run_dirs(&b.state).is_empty());
    let md = on(&b, &["report", &id]);
    assert_eq!(md.status.code(), Some(0), "{}", text(&md.stderr));
    assert_eq!(text(&md.stdout), local_md, "the Markdown report, from the store");
    let json = on(&b, &["report", &id, "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let json = text(&json.stdout);
    let from_store: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        from_store["journal"],
        format!("{id} in the shared store rb@127.0.0.1:{}/runbook", pg.port).as_str(),
        "the JSON says where the journal was read"
    );
    assert_eq!(
        without_journal(&json),
        without_journal(&local_json),
        "the JSON report, from the store, but for where it was read"
    );
    assert_eq!(json.lines().count(), local_json.lines().count());
    // `-o FILE` and a unique part of the id, as `attach` takes.
    let out = site.path().join("report.md");
    let part = id.split_once('-').unwrap().0;
    let written = on(&b, &["report", part, "-o", out.to_str().unwrap()]);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), local_md);
    // Reading a report rebuilds nothing on B.
    assert!(common::run_dirs(&b.state).is_empty());

    // A run in neither place.
    let none = on(&b, &["report", "20261129T000000Z-nowhere"]);
    assert_eq!(none.status.code(), Some(2));
    let err = text(&none.stderr);
    assert!(
        err.contains("20261129T000000Z-nowhere: no such run here")
            && err.contains(&format!(
                "nor in the shared store rb@127.0.0.1:{}/runbook",
                pg.port
            ))
            && err.contains("(the store is set by ")
            && err.contains("config/runbook/config.toml)"),
        "{err}"
    );

    // The store cannot be reached: exit 2, naming it and where it was set; never the password.
    pg.stop();
    for args in [&["report", &id][..], &["report", &id, "--format", "json"][..]] {
        let out = on(&b, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "cannot reach the store rb@127.0.0.1:{}/runbook",
                pg.port
            )),
            "{err}"
        );
        assert!(err.contains("the store is set by "), "{err}");
        assert!(!err.contains(common::postgres::PASSWORD), "{err}");
    }
    let flag = on(&b, &["report", &id, "--store", &pg.url()]);
    assert_eq!(flag.status.code(), Some(2));
    assert!(
        text(&flag.stderr).contains("(the store is set by --store)"),
        "{}",
        text(&flag.stderr)
    );
}

#[test]
fn a_run_folder_here_wins_over_the_store_and_a_path_needs_no_store() {
    let pg = Postgres::start();
    let site = Site::new();
    site.store_config(&pg.url(), "5s");
    let rb = site.write("checkout.toml", RUNBOOK);
    let a = site.host("bastion-a");
    let run = on(&a, &["run", rb.to_str().unwrap(), "--headless", "--yes"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let dir = common::run_dirs(&a.state).pop().unwrap();
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    pg.assert_replicated(&dir);
    // With the store down, the run's id still reports the folder here, as its path does.
    pg.stop();
    let by_id = on(&a, &["report", &id, "--format", "json"]);
    assert_eq!(by_id.status.code(), Some(0), "{}", text(&by_id.stderr));
    let j: Value = serde_json::from_slice(&by_id.stdout).unwrap();
    assert_eq!(
        j["journal"],
        dir.join("journal.jsonl").display().to_string().as_str()
    );
    let by_path = on(&a, &["report", dir.to_str().unwrap()]);
    assert_eq!(by_path.status.code(), Some(0), "{}", text(&by_path.stderr));
    assert!(text(&by_path.stdout).contains("Checkout rollout"));
    // Without a store, a run id that is not here says where it was looked for, and how to name
    // a store.
    let elsewhere = site.path().join("state-elsewhere");
    let out = std::process::Command::new(common::runbook_bin())
        .args(["report", &id, "--state-dir", elsewhere.to_str().unwrap()])
        .env("XDG_CONFIG_HOME", site.path().join("no-config"))
        .env_remove("RUNBOOK_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{id}: no such journal, run folder, nor run in {}",
            elsewhere.join("runs").display()
        )) && err.contains("--store URL, RUNBOOK_STORE"),
        "{err}"
    );
}
