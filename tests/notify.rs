//! Notifications (SPEC §6) against a real HTTP receiver on 127.0.0.1 that records every request,
//! and answers at once, slowly (30 s), with a failure (500, 400), or not at all (a closed port):
//! the bodies of each format, retries and attempts, the journal, that a slow receiver delays no
//! step, that a rehearsal sends nothing, the `waiting` event, and that no secret reaches the
//! journal, the run folder or the screen. And `validate`'s errors, at their line and column.

mod common;

use std::net::TcpStream;
use std::process::Command as ProcCommand;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const HOOK: &str = "hook-T0K3N-9f8e7d";
const TOKEN: &str = "bearer-S3CR3T-4242";

/// A receiver on 127.0.0.1: `/slow...` answers after 30 s, `/fail...` 500, `/bad...` 400, anything
/// else 200. Every request is recorded when it arrives.
fn receiver() -> TestServer {
    TestServer::answering(|path| {
        if path.starts_with("/slow") {
            Reply::After(Duration::from_secs(30), 200, "late")
        } else if path.starts_with("/fail") {
            Reply::Fixed(500, "receiver is down")
        } else if path.starts_with("/bad") {
            Reply::Fixed(400, "invalid_payload")
        } else {
            Reply::Fixed(200, "ok")
        }
    })
}

const SECRETS_ENV: &[(&str, &str)] = &[("NOTIFY_TEST_HOOK", HOOK), ("NOTIFY_TEST_TOKEN", TOKEN)];

fn header(title: &str) -> String {
    format!(
        r#"[runbook]
title = '{title}'

[vars]
release = "v2.14.0"

[secrets]
HOOK = {{ env = "NOTIFY_TEST_HOOK" }}
TOKEN = {{ env = "NOTIFY_TEST_TOKEN" }}
"#
    )
}

/// Every file of the run folder, as text.
fn run_folder_text(fx: &Fixture) -> String {
    let mut all = String::new();
    let mut dirs = vec![fx.run_dir()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}

fn assert_no_secret(fx: &Fixture, run: &CliRun) {
    let files = run_folder_text(fx);
    for secret in [HOOK, TOKEN] {
        assert!(!files.contains(secret), "a secret is in the run folder:\n{files}");
        assert!(
            !run.stdout.contains(secret),
            "a secret is on stdout:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "a secret is on stderr:\n{}",
            run.stderr
        );
    }
}

#[test]
fn each_format_sends_its_body_and_the_journal_says_so_without_a_secret() {
    let rx = receiver();
    let fx = Fixture::new();
    let text = format!(
        r#"{}
[[notify]]
id = "slack"
url = "{}/${{HOOK}}"
on = ["run_started", "run_finished"]

[[notify]]
id = "raw"
url = "{}"
format = "json"
on = ["step_finished"]

[[notify]]
id = "tmpl"
url = "{}"
format = "template"
method = "PUT"
on = ["run_finished"]
headers = {{ Authorization = "Bearer ${{TOKEN}}" }}
template = '''
{{"text": {{{{ summary|tojson }}}}, "title": "{{{{ run.title|json_escape }}}}",
 "release": {{{{ run.vars.release|tojson }}}}, "outcome": {{{{ run.outcome|tojson }}}},
 "key": "${{TOKEN}}", "run": {{{{ run.id|tojson }}}}, "at": {{{{ ts_ms }}}}}}
'''

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Say"
run = 'echo "deploying with $TOKEN"'
"#,
        header(r#"Checkout "canary""#),
        rx.url("/ok/slack"),
        rx.url("/ok/json"),
        rx.url("/ok/tmpl"),
    );
    let file = fx.write("rb.toml", &text);
    let run = fx.run_cli_env(&file, &[], SECRETS_ENV);
    run.expect_code(0);
    let j = fx.journal();
    let started = event(&j, "run_started");
    let who = format!(
        "{}@{}",
        started["operator"].as_str().unwrap(),
        started["host"].as_str().unwrap()
    );

    let slack = rx.requests("/ok/slack");
    assert_eq!(slack.len(), 2, "{slack:#?}");
    assert_eq!(
        slack[0].path,
        format!("/ok/slack/{HOOK}"),
        "the url's secret reaches the receiver"
    );
    assert_eq!(slack[0].method, "POST");
    assert_eq!(slack[0].header("content-type"), Some("application/json"));
    assert_eq!(
        slack[0].json(),
        serde_json::json!({"text": format!(r#"*Checkout "canary"* · {who} started Checkout "canary" (run)"#)})
    );
    assert_eq!(
        slack[1].json(),
        serde_json::json!({"text": format!(r#"*Checkout "canary"* · run succeeded (exit 0) · {who}"#)})
    );

    // json: the journal's line, as it is (the step's output, with the secret, is not in it).
    let raw = rx.requests("/ok/json");
    assert_eq!(raw.len(), 1, "{raw:#?}");
    assert_eq!(&raw[0].json(), event(&j, "step_finished"));

    let tmpl = rx.requests("/ok/tmpl");
    assert_eq!(tmpl.len(), 1, "{tmpl:#?}");
    assert_eq!(tmpl[0].method, "PUT");
    assert_eq!(
        tmpl[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body = tmpl[0].json();
    assert_eq!(body["text"], "run succeeded (exit 0)");
    assert_eq!(body["title"], r#"Checkout "canary""#);
    assert_eq!(body["release"], "v2.14.0");
    assert_eq!(body["outcome"], "succeeded");
    assert_eq!(body["key"], TOKEN);
    let run_dir = fx.run_dir();
    assert_eq!(body["run"], run_dir.file_name().unwrap().to_str().unwrap());
    assert!(body["at"].as_u64().unwrap() > 1_700_000_000_000, "{body}");

    let sent: Vec<(String, String, u64, u64)> = events(&j, "notify_sent")
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["on"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
                e["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = sent.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("raw".into(), "step_finished".into(), 200, 1),
            ("slack".into(), "run_finished".into(), 200, 1),
            ("slack".into(), "run_started".into(), 200, 1),
            ("tmpl".into(), "run_finished".into(), 200, 1),
        ]
    );
    assert!(events(&j, "notify_failed").is_empty());
    assert!(
        run.stdout
            .contains("notified slack of run_started (HTTP 200, attempt 1)"),
        "{}",
        run.stdout
    );
    // The secret was in the step's output: masked in its log and on screen as everywhere.
    assert!(run.stdout.contains("deploying with ***"), "{}", run.stdout);
    assert_no_secret(&fx, &run);
}

#[test]
fn failures_are_retried_three_times_then_journaled_and_shown_and_the_run_goes_on() {
    let rx = receiver();
    let closed = free_port();
    let fx = Fixture::new();
    let text = format!(
        r#"{}
[[notify]]
id = "down"
url = "{}"
on = ["run_started"]

[[notify]]
id = "rejects"
url = "{}"
on = ["run_started"]

[[notify]]
id = "closed"
url = "http://127.0.0.1:{closed}/${{HOOK}}"
on = ["run_started"]

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Work"
run = "echo done > done.txt"
"#,
        header("Failing receivers"),
        rx.url("/fail"),
        rx.url("/bad"),
    );
    let file = fx.write("rb.toml", &text);
    let run = fx.run_cli_env(&file, &[], SECRETS_ENV);
    run.expect_code(0);
    assert_eq!(fx.read("done.txt"), "done\n", "the run went on");
    let j = fx.journal();

    // 500: three attempts, one second and then two seconds apart.
    let down = rx.requests("/fail");
    assert_eq!(down.len(), 3, "{down:#?}");
    let gap1 = down[1].at - down[0].at;
    let gap2 = down[2].at - down[1].at;
    assert!(
        gap1 >= Duration::from_millis(950) && gap1 < Duration::from_secs(3),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(1950) && gap2 < Duration::from_secs(4),
        "{gap2:?}"
    );
    // 400: the receiver's final word, not retried.
    assert_eq!(rx.requests("/bad").len(), 1);

    let failed = |target: &str| -> Value {
        let found: Vec<&Value> = events(&j, "notify_failed")
            .into_iter()
            .filter(|e| e["target"] == target)
            .collect();
        assert_eq!(found.len(), 1, "{target}: {found:#?}");
        found[0].clone()
    };
    let e = failed("down");
    assert_eq!(
        (e["on"].as_str(), e["status"].as_u64(), e["attempt"].as_u64()),
        (Some("run_started"), Some(500), Some(3))
    );
    assert_eq!(e["error"], "HTTP 500: receiver is down");
    let e = failed("rejects");
    assert_eq!(
        (e["status"].as_u64(), e["attempt"].as_u64()),
        (Some(400), Some(1))
    );
    assert_eq!(e["error"], "HTTP 400: invalid_payload");
    let e = failed("closed");
    assert_eq!((e.get("status"), e["attempt"].as_u64()), (None, Some(3)));
    assert!(e["error"].as_str().unwrap().starts_with("cannot connect"), "{e}");
    assert!(events(&j, "notify_sent").is_empty());

    assert!(
        run.stdout
            .contains("!! notify down FAILED for run_started (attempt 3): HTTP 500: receiver is down"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("!! notify closed FAILED for run_started (attempt 3): cannot connect"),
        "{}",
        run.stdout
    );
    assert_no_secret(&fx, &run);
    // The report's timeline has them too.
    let report = runbook(&["report", fx.run_dir().to_str().unwrap()]);
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("| notify down FAILED for run_started (attempt 3): HTTP 500: receiver is down |"),
        "{report}"
    );
}

#[test]
fn a_receiver_that_takes_30_seconds_delays_no_step_and_the_end_waits_only_5_seconds() {
    let rx = receiver();
    let fx = Fixture::new();
    let text = format!(
        r#"{}
[[notify]]
id = "slow"
url = "{}"
on = ["run_started", "step_started", "step_finished", "run_finished"]

[[phase]]
title = "Deploy"

[[phase.step]]
title = "One"
run = "true"

[[phase.step]]
title = "Two"
run = "true"

[[phase.step]]
title = "Three"
run = "true"
"#,
        header("Slow receiver"),
        rx.url("/slow"),
    );
    let file = fx.write("rb.toml", &text);
    let run = fx.run_cli_env(&file, &[], SECRETS_ENV);
    run.expect_code(0);
    let j = fx.journal();
    let ts = |name: &str| event(&j, name)["ts"].as_str().unwrap().to_string();
    let run_ms = ms_between(&ts("run_started"), &ts("run_finished"));
    assert!(
        run_ms < 2_000,
        "three `true` steps took {run_ms} ms with a slow receiver"
    );
    // The end: 5 s of grace, then what is left is journaled as not sent.
    assert!(
        run.elapsed >= Duration::from_millis(4_500) && run.elapsed < Duration::from_secs(12),
        "{:?}",
        run.elapsed
    );
    assert!(
        run.stdout
            .contains("waiting up to 5s for 8 notifications still being sent"),
        "{}",
        run.stdout
    );
    let failed = events(&j, "notify_failed");
    assert_eq!(failed.len(), 8, "{failed:#?}");
    // The first was in flight (its first attempt); the others never started.
    assert_eq!(failed[0]["on"], "run_started");
    assert_eq!(failed[0]["attempt"], 1);
    assert!(failed[1..].iter().all(|e| e["attempt"] == 0), "{failed:#?}");
    assert!(
        failed
            .iter()
            .all(|e| e["error"] == "the run ended and the 5s given to pending notifications ran out"),
        "{failed:#?}"
    );
    // They follow run_finished.
    let names = event_names(&j);
    let end = names.iter().position(|n| n == "run_finished").unwrap();
    assert!(names[end + 1..].iter().all(|n| n == "notify_failed"), "{names:?}");
    assert_eq!(rx.requests("/slow").len(), 1);
    assert!(
        run.stdout
            .contains("!! notify slow NOT SENT for step_started: the run ended"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_rehearsal_sends_nothing_and_shows_what_it_would_send_masked() {
    let rx = receiver();
    let fx = Fixture::new();
    let text = format!(
        r#"{}
[[notify]]
id = "pager"
url = "{}/${{HOOK}}"
format = "template"
on = ["run_started"]
template = '{{"routing_key": "${{TOKEN}}", "summary": {{{{ summary|tojson }}}}}}'

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Work"
run = "echo hi"
"#,
        header("Rehearsed"),
        rx.url("/ok"),
    );
    let file = fx.write("rb.toml", &text);
    let out = ProcCommand::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("rehearse")
        .arg(&file)
        .args(["--headless", "--state-dir"])
        .arg(fx.state())
        .envs(SECRETS_ENV.iter().copied())
        .output()
        .unwrap();
    let run = CliRun::new(out, Duration::ZERO);
    run.expect_code(0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.requests("/").is_empty(), "a rehearsal sent a request");
    let j = fx.journal();
    let r = events(&j, "notify_rehearsed");
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["target"], "pager");
    assert_eq!(r[0]["on"], "run_started");
    assert_eq!(r[0]["method"], "POST");
    assert_eq!(r[0]["url"], format!("{}/${{HOOK}}", rx.url("/ok")));
    let body: Value = serde_json::from_str(r[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["routing_key"], "***");
    assert!(
        body["summary"]
            .as_str()
            .unwrap()
            .contains("started Rehearsed (rehearse)"),
        "{body}"
    );
    assert!(
        run.stdout
            .contains("rehearsal, not sent: would notify pager of run_started: POST"),
        "{}",
        run.stdout
    );
    assert!(events(&j, "notify_sent").is_empty() && events(&j, "notify_failed").is_empty());
    assert_no_secret(&fx, &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_is_sent_once_the_run_has_waited_longer_than_waiting_after() {
    let rx = receiver();
    let fx = Fixture::new();
    let text = format!(
        r#"[runbook]
title = "Waits"

[[notify]]
id = "oncall"
url = "{}"
format = "template"
on = ["waiting"]
waiting_after = "1s"
template = '{{"text": {{{{ summary|tojson }}}}, "step": "{{{{ phase }}}}/{{{{ step }}}}", "why": "{{{{ why }}}}", "waited_s": {{{{ waited_s }}}}}}'

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Check the dashboard"
manual = true

[[phase.step]]
title = "Check the logs"
manual = true
"#,
        rx.url("/ok/waiting"),
    );
    let file = fx.write("rb.toml", &text);
    let req = request(&file, &fx.state(), &[], false);
    let mut s = runbook::session::start(req).expect("start");
    let mut first = true;
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(u) = tokio::time::timeout_at(deadline.into(), s.updates.recv())
        .await
        .expect("the run ends in time")
    {
        if let runbook::engine::Update::Waiting { step, .. } = u {
            let confirm = runbook::engine::Command::Confirm {
                by: None,
                step: Some(step),
            };
            // The first step is confirmed after 1.8 s (past waiting_after); the second at once.
            if first {
                first = false;
                let commands = s.commands.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1800)).await;
                    let _ = commands.send(confirm).await;
                });
            } else {
                s.commands.send(confirm).await.unwrap();
            }
        }
    }
    let outcome = s.engine.await.unwrap();
    assert_eq!(outcome, runbook::journal::Outcome::Succeeded);
    let got = rx.requests("/ok/waiting");
    assert_eq!(got.len(), 1, "{got:#?}");
    let body = got[0].json();
    assert_eq!(body["step"], "deploy/check-the-dashboard");
    assert_eq!(body["why"], "go-ahead");
    assert_eq!(body["waited_s"], 1);
    assert_eq!(
        body["text"],
        "waiting for an operator for 1s at deploy/check-the-dashboard (go-ahead)"
    );
    let j = journal_json(&fx.run_dir().join("journal.jsonl"));
    let sent = events(&j, "notify_sent");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["on"], "waiting");
}

// ── validate ───────────────────────────────────────────────────────────────────────────────────

fn validate(name: &str) -> (i32, String) {
    let path = format!("tests/fixtures/invalid/{name}.toml");
    let out = runbook(&["validate", &path]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixture has exactly one problem, and it is this one.
fn one_problem(name: &str, at: &str, message: &str) {
    let (code, stderr) = validate(name);
    assert_eq!(code, 2, "{stderr}");
    let path = format!("tests/fixtures/invalid/{name}.toml");
    let first = stderr.lines().next().unwrap_or("");
    assert_eq!(first, format!("{path}:{at}: {message}"), "\n{stderr}");
    assert!(
        stderr.ends_with(&format!("{path}: 1 problem found; nothing was run\n")),
        "\n{stderr}"
    );
}

#[test]
fn validate_a_target_without_url() {
    one_problem("notify-no-url", "4:1", "[[notify]] needs a `url`");
}

#[test]
fn validate_an_unknown_format() {
    one_problem(
        "notify-unknown-format",
        "7:10",
        r#"format `teams` is not one of "slack", "json", "template""#,
    );
}

#[test]
fn validate_an_unknown_event() {
    one_problem(
        "notify-unknown-event",
        "7:22",
        "`rollback_startd` is not an event a target can be sent; did you mean `rollback_started`?",
    );
}

#[test]
fn validate_a_template_that_prints_what_an_event_lacks() {
    one_problem(
        "notify-template-undefined",
        "12:1",
        "the template does not render for `run_started`: undefined value (template line 3)",
    );
}

#[test]
fn validate_a_template_whose_body_is_not_json() {
    let (code, stderr) = validate("notify-template-not-json");
    assert_eq!(code, 2, "{stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with(
            "tests/fixtures/invalid/notify-template-not-json.toml:9:13: the template's body for `trigger_fired` is not JSON ("
        ),
        "\n{stderr}"
    );
    assert!(
        first.ends_with("escape text with `|tojson` or `|json_escape`, or set a Content-Type header"),
        "{first}"
    );
}

#[test]
fn validate_an_undefined_reference_in_a_url() {
    one_problem(
        "notify-undefined-reference",
        "6:34",
        "`${SLACK_HOOK}` is not defined in [vars] or [secrets]",
    );
}

// ── The README's templates, run for real ───────────────────────────────────────────────────────

/// The README's `[[notify]]` example whose `id` is `id`, from its Notifications section.
fn readme_template(id: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("\n## Notifications\n")
        .expect("a Notifications section");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    section
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").unwrap()])
        .find(|b| b.contains(&format!("id = \"{id}\"")))
        .unwrap_or_else(|| panic!("no [[notify]] with id {id} in the README"))
        .to_string()
}

/// Runs the README's template `id` in a runbook whose trigger fires at once, so that the run goes
/// through run_started, trigger_fired, rollback_started, rollback_finished and run_finished (rolled
/// back), with its url pointed at the receiver. Returns what the receiver got, and the journal.
fn run_readme_template(id: &str) -> (Vec<Req>, Vec<Value>) {
    let rx = receiver();
    let fx = Fixture::new();
    let block = readme_template(id);
    let url = rx.url(&format!("/ok/{id}"));
    let block: String = block
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"{url}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    // Every secret the example reads, from a test value.
    let mut env: Vec<(String, String)> = Vec::new();
    for l in block.lines() {
        if let Some(i) = l.find("{ env = \"") {
            let name = &l[i + 9..];
            let name = &name[..name.find('"').unwrap()];
            env.push((name.to_string(), format!("test-secret-{}", name.to_lowercase())));
        }
    }
    let text = format!(
        r#"[runbook]
title = "Checkout rollout"

{block}

[metrics]
interval = "1s"

[[metric]]
id = "error_rate"
title = "Error rate"
query = "x"
unit = "percent"
simulate = {{ baseline = 0.5, jitter = 0.0 }}

[[trigger]]
id = "error-rate"
title = "Error rate above 10%"
metric = "error_rate"
above = 0.1

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Wait"
watch = "10s"

[rollback]
[[rollback.phase]]
title = "Back"

[[rollback.phase.step]]
title = "Undo"
run = "true"
"#
    );
    let file = fx.write("rb.toml", &text);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = fx.run_cli_env(&file, &[], &envs);
    run.expect_code(3);
    let j = fx.journal();
    assert!(
        events(&j, "notify_failed").is_empty(),
        "{:#?}",
        events(&j, "notify_failed")
    );
    for (_, secret) in &env {
        assert!(
            !run_folder_text(&fx).contains(secret.as_str()),
            "a secret is in the run folder"
        );
        assert!(!run.stdout.contains(secret.as_str()));
    }
    (rx.requests("/ok/"), j)
}

fn sent_on(j: &[Value]) -> Vec<String> {
    events(j, "notify_sent")
        .iter()
        .map(|e| e["on"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn readme_slack_template() {
    let (got, j) = run_readme_template("slack");
    assert_eq!(
        sent_on(&j),
        [
            "run_started",
            "trigger_fired",
            "rollback_started",
            "rollback_finished",
            "run_finished"
        ]
    );
    let texts: Vec<String> = got
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        texts[0].starts_with(":rocket: *Checkout rollout* — "),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with(":rotating_light: *Checkout rollout* — trigger error-rate FIRED (value 0.5)"),
        "{texts:?}"
    );
    assert!(
        texts[4].starts_with(":warning: *Checkout rollout* — run rolled back (exit 3)"),
        "{texts:?}"
    );
}

#[test]
fn readme_teams_template() {
    let (got, j) = run_readme_template("teams");
    assert_eq!(
        sent_on(&j),
        [
            "run_started",
            "trigger_fired",
            "rollback_started",
            "rollback_finished",
            "run_finished"
        ]
    );
    for r in &got {
        let b = r.json();
        assert_eq!(b["type"], "message");
        let a = &b["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["text"], "Checkout rollout");
    }
    assert_eq!(
        got[1].json()["attachments"][0]["content"]["body"][1]["text"],
        "trigger error-rate FIRED (value 0.5)"
    );
}

#[test]
fn readme_pagerduty_template() {
    let (got, j) = run_readme_template("pagerduty");
    assert_eq!(sent_on(&j), ["trigger_fired", "rollback_started", "run_finished"]);
    let bodies: Vec<Value> = got.iter().map(Req::json).collect();
    let key = "test-secret-pagerduty_routing_key";
    for b in &bodies {
        assert_eq!(b["routing_key"], key);
        assert_eq!(b["dedup_key"], bodies[0]["dedup_key"]);
    }
    assert_eq!(bodies[0]["event_action"], "trigger");
    assert_eq!(bodies[0]["payload"]["severity"], "critical");
    assert_eq!(
        bodies[0]["payload"]["summary"],
        "Checkout rollout: trigger error-rate FIRED (value 0.5)"
    );
    assert!(
        bodies[0]["payload"]["source"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(bodies[2]["event_action"], "resolve");
    assert!(bodies[2].get("payload").is_none());
}

#[test]
fn readme_grafana_template() {
    let (got, j) = run_readme_template("grafana");
    assert_eq!(sent_on(&j), ["trigger_fired", "rollback_started", "run_finished"]);
    assert!(
        got.iter()
            .all(|r| r.header("authorization") == Some("Bearer test-secret-grafana_token"))
    );
    let point = got[0].json();
    assert!(
        point["time"].as_u64().is_some() && point.get("timeEnd").is_none(),
        "{point}"
    );
    assert_eq!(
        point["tags"],
        serde_json::json!(["runbook", "rb", "trigger_fired"])
    );
    let region = got[2].json();
    let (from, to) = (
        region["time"].as_u64().unwrap(),
        region["timeEnd"].as_u64().unwrap(),
    );
    assert!(
        from <= point["time"].as_u64().unwrap() && point["time"].as_u64().unwrap() <= to,
        "{region}"
    );
    assert_eq!(
        region["tags"],
        serde_json::json!(["runbook", "rb", "rolled_back"])
    );
}

#[test]
fn readme_statuspage_template() {
    let (got, j) = run_readme_template("statuspage");
    assert_eq!(sent_on(&j), ["run_started", "trigger_fired", "run_finished"]);
    let status: Vec<String> = got
        .iter()
        .map(|r| {
            assert_eq!(r.method, "PATCH");
            assert_eq!(
                r.header("authorization"),
                Some("OAuth test-secret-statuspage_api_key")
            );
            r.json()["component"]["status"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        status,
        ["under_maintenance", "degraded_performance", "operational"]
    );
}

// ── The shipped runbooks ───────────────────────────────────────────────────────────────────────

#[test]
fn the_kubernetes_canary_rehearses_its_slack_and_grafana_notifications_without_sending() {
    let fx = Fixture::new();
    let hook = "https://hooks.slack.com/services/T000/B000/canary-hook-secret";
    let token = "glsa_canary_token_secret";
    let out = ProcCommand::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "rehearse",
            "runbooks/kubernetes-canary.toml",
            "--headless",
            "--yes",
            "--speed",
            "1000",
        ])
        .arg("--state-dir")
        .arg(fx.state())
        .env("SLACK_WEBHOOK_URL", hook)
        .env("GRAFANA_TOKEN", token)
        .output()
        .unwrap();
    let run = CliRun::new(out, Duration::ZERO);
    run.expect_code(0);
    let j = fx.journal();
    let r: Vec<(String, String)> = events(&j, "notify_rehearsed")
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().into(),
                e["on"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        r,
        [
            ("slack".to_string(), "run_started".to_string()),
            ("slack".into(), "run_finished".into()),
            ("grafana".into(), "run_finished".into()),
        ]
    );
    let grafana = events(&j, "notify_rehearsed")[2];
    assert_eq!(grafana["url"], "https://grafana.example.com/api/annotations");
    let body: Value = serde_json::from_str(grafana["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["tags"],
        serde_json::json!(["runbook", "deploy", "storefront", "succeeded"])
    );
    let files = run_folder_text(&fx);
    for secret in [hook, token] {
        assert!(!files.contains(secret) && !run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
}

#[test]
fn the_demo_notifies_its_local_receiver_which_goes_away_with_the_run() {
    let fx = Fixture::new();
    let port = free_port();
    let log = fx.file("notifications.log");
    let out = ProcCommand::new("./assets/demo/with-receiver.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", "runbooks/production-rollout.toml", "--headless", "--yes"])
        .args(["--var", "canary_watch=1s", "--var", "monitoring_window=1s"])
        .args(["--var", &format!("notify_url=http://127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(fx.state())
        .env("DEMO_PACE", "0")
        .env("DEMO_NOTIFY_PORT", port.to_string())
        .env("DEMO_NOTIFY_LOG", &log)
        .output()
        .unwrap();
    let run = CliRun::new(out, Duration::ZERO);
    run.expect_code(0);
    let j = fx.journal();
    let mut sent: Vec<(String, String)> = events(&j, "notify_sent")
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().into(),
                e["on"].as_str().unwrap().into(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("deploys-channel".to_string(), "run_finished".to_string()),
            ("deploys-channel".into(), "run_started".into()),
            ("status-page".into(), "run_finished".into()),
            ("status-page".into(), "run_started".into()),
        ]
    );
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(got.lines().count(), 4, "{got}");
    assert!(
        got.contains(
            r#"PATCH /statuspage/components/checkout {"component": {"status": "under_maintenance"}}"#
        ),
        "{got}"
    );
    assert!(
        got.contains(r#"PATCH /statuspage/components/checkout {"component": {"status": "operational"}}"#),
        "{got}"
    );
    assert!(
        run.stderr.contains(&format!(
            "the demo receiver on 127.0.0.1:{port} got 4 notifications"
        )),
        "{}",
        run.stderr
    );
    // The receiver is gone: nothing listens on its port any more.
    assert!(
        wait_for(Duration::from_secs(2), || TcpStream::connect(("127.0.0.1", port))
            .is_err()),
        "the demo receiver outlived the run"
    );
}

#[test]
fn a_resumed_run_notifies_as_a_run_does() {
    let rx = receiver();
    let fx = Fixture::new();
    let text = format!(
        r#"[runbook]
title = "Resumed"

[[notify]]
id = "raw"
url = "{}"
format = "json"
on = ["run_started", "run_finished"]

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Check by hand"
manual = true
"#,
        rx.url("/ok/raw"),
    );
    let file = fx.write("rb.toml", &text);
    // Nobody at the terminal: the manual step stops the run (resumably).
    fx.run_cli(&file, &[]).expect_code(1);
    let dir = fx.run_dir();
    fx.resume(&[dir.to_str().unwrap(), "--yes"]).expect_code(0);
    let got: Vec<Value> = rx.requests("/ok/raw").iter().map(Req::json).collect();
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|b| {
            let what = b["mode"].as_str().or(b["outcome"].as_str()).unwrap_or("");
            (b["event"].as_str().unwrap().to_string(), what.to_string())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("run_started".to_string(), "run".to_string()),
            ("run_finished".into(), "aborted".into()),
            ("run_started".into(), "resume".into()),
            ("run_finished".into(), "succeeded".into()),
        ]
    );
    let j = fx.journal();
    assert_eq!(events(&j, "notify_sent").len(), 4);
}

#[test]
fn plan_lists_the_targets_without_their_urls() {
    let out = runbook(&["plan", "runbooks/kubernetes-canary.toml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let at = stdout.find("\n## Notifications\n").expect("a Notifications part");
    let part: Vec<&str> = stdout[at..].lines().skip(2).take(2).collect();
    assert_eq!(
        part,
        [
            "  slack            template, POST; on run_started, trigger_fired, rollback_started, rollback_finished, run_finished, waiting (after 5m)",
            "  grafana          template, POST; on trigger_fired, rollback_started, run_finished",
        ]
    );
    assert!(
        !stdout.contains("${SLACK_WEBHOOK}") && !stdout.contains("/api/annotations"),
        "{stdout}"
    );
}

#[test]
fn validate_a_header_name_that_is_not_one() {
    one_problem(
        "notify-bad-header",
        "7:13",
        "`X Token` is not an HTTP header name",
    );
}
