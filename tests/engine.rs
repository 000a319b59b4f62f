//! The engine with real child processes, driven through the library the way a front end does:
//! `session::start`, reading `updates`, sending `commands`.

mod common;

use std::time::Duration;

use common::*;
use runbook::engine::{Command, Update, Wait};
use runbook::journal::{Event, Outcome, StepStatus};

fn names(d: &Driven) -> Vec<String> {
    d.records
        .iter()
        .map(|r| match &r.event {
            Event::StepStarted {
                phase, step, attempt, ..
            } => format!("start {phase}/{step}#{attempt}"),
            Event::StepFinished(f) => format!("{} {}/{}#{}", f.status.as_str(), f.phase, f.step, f.attempt),
            Event::RunStarted { .. } => "run_started".into(),
            Event::RunFinished { outcome, .. } => format!("run_finished {}", outcome.as_str()),
            Event::Note { text, .. } => format!("note {text}"),
            Event::RollbackStarted { reason, .. } => format!("rollback_started {reason}"),
            Event::RollbackFinished { status } => format!("rollback_finished {status}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Sends `cmd` once, when `phase/step` starts.
fn on_start(name: &'static str, cmd: Command) -> impl FnMut(&Update) -> Vec<Command> {
    let mut cmd = Some(cmd);
    move |u| {
        if is_started(u, name) {
            cmd.take().into_iter().collect()
        } else {
            vec![]
        }
    }
}

/// Sends `cmd` once, when the step at `step` has written its first output.
fn on_output(step: runbook::engine::StepRef, cmd: Command) -> impl FnMut(&Update) -> Vec<Command> {
    let mut cmd = Some(cmd);
    move |u| match u {
        Update::Output { step: s, .. } if *s == step => cmd.take().into_iter().collect(),
        _ => vec![],
    }
}

fn no_commands(_: &Update) -> Vec<Command> {
    vec![]
}

// ---------------------------------------------------------------------------------------------
// Order, retries, timeouts, leftovers

#[tokio::test(flavor = "multi_thread")]
async fn steps_run_in_order_across_phases() {
    let fx = Fixture::new();
    let rb = fx.write(
        "order.toml",
        r#"
[runbook]
title = "Order"

[[phase]]
id = "one"
title = "One"

[[phase.step]]
id = "a"
title = "A"
run = "echo one/a >> order.txt"

[[phase.step]]
id = "b"
title = "B"
run = "sleep 0.1; echo one/b >> order.txt"

[[phase]]
id = "two"
title = "Two"

[[phase.step]]
id = "c"
title = "C"
run = "echo two/c >> order.txt"

[[phase]]
id = "three"
title = "Three"

[[phase.step]]
id = "d"
title = "D"
run = "echo three/d >> order.txt"

[[phase.step]]
id = "e"
title = "E"
run = 'echo "$RUNBOOK_PHASE/$RUNBOOK_STEP" >> order.txt'
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(fx.read("order.txt"), "one/a\none/b\ntwo/c\nthree/d\nthree/e\n");
    assert_eq!(
        names(&d),
        [
            "run_started",
            "start one/a#1",
            "succeeded one/a#1",
            "start one/b#1",
            "succeeded one/b#1",
            "start two/c#1",
            "succeeded two/c#1",
            "start three/d#1",
            "succeeded three/d#1",
            "start three/e#1",
            "succeeded three/e#1",
            "run_finished succeeded",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_is_retried_after_its_delay() {
    let fx = Fixture::new();
    let rb = fx.write(
        "retry.toml",
        r#"
[runbook]
title = "Retry"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "flaky"
title = "Flaky"
run = 'n=$(cat counter 2>/dev/null || echo 0); n=$((n+1)); echo $n > counter; echo "attempt $n ($RUNBOOK_ATTEMPT)"; [ $n -ge 2 ]'
retries = 2
retry_delay = "300ms"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", d.records);
    assert_eq!(fx.read("counter"), "2\n", "exactly two attempts");
    assert_eq!(
        names(&d),
        [
            "run_started",
            "start p/flaky#1",
            "failed p/flaky#1",
            "start p/flaky#2",
            "succeeded p/flaky#2",
            "run_finished succeeded",
        ]
    );
    assert!(d.waits.is_empty(), "a retry needs nobody: {:?}", d.waits);
    let f = d.finished("p/flaky");
    assert_eq!(f[0].exit_code, Some(1));
    assert_eq!(f[1].exit_code, Some(0));
    assert_ne!(f[0].log, f[1].log, "one log per attempt");
    assert_eq!(d.log_of(f[0]), b"attempt 1 (1)\n");
    assert_eq!(d.log_of(f[1]), b"attempt 2 (2)\n");
    // The delay: from the end of attempt 1 to the start of attempt 2.
    let ts: Vec<&str> = d.records.iter().map(|r| r.ts.as_str()).collect();
    let gap = ms_between(ts[2], ts[3]);
    assert!(gap >= 290, "retry_delay of 300ms honoured, waited {gap} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_exhausted_then_the_step_fails() {
    let fx = Fixture::new();
    let rb = fx.write(
        "retry.toml",
        r#"
[runbook]
title = "Retry"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "bad"
title = "Bad"
run = "echo x >> attempts; exit 2"
retries = 2
retry_delay = "50ms"

[[phase.step]]
id = "next"
title = "Next"
run = "touch next"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::Failed);
    assert_eq!(fx.read("attempts"), "x\nx\nx\n");
    assert!(!fx.exists("next"));
    let f = d.finished("p/bad");
    assert_eq!(
        f.iter().map(|f| (f.attempt, f.status)).collect::<Vec<_>>(),
        [
            (1, StepStatus::Failed),
            (2, StepStatus::Failed),
            (3, StepStatus::Failed)
        ]
    );
    assert_eq!(d.waits.len(), 1, "asked once, after the last attempt");
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_the_whole_process_tree_even_when_it_ignores_sigterm() {
    let fx = Fixture::new();
    let rb = fx.write(
        "timeout.toml",
        r#"
[runbook]
title = "Timeout"

[settings]
shell = "bash"
kill_grace = "500ms"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "stubborn"
title = "Stubborn"
run = '''
trap '' TERM
(trap '' TERM; sleep 300 & echo $! >> pids; wait) &
echo $! >> pids
sleep 300 &
echo $! >> pids
echo $$ >> pids
echo ready
wait
'''
timeout = "500ms"
on_failure = "continue"

[[phase.step]]
id = "after"
title = "After"
run = "echo after"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    let pids = read_pids(&fx.file("pids"));
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| !wait_gone(p, Duration::from_secs(2)))
        .collect();
    kill_pids(&alive);
    assert_eq!(pids.len(), 4, "the script wrote its pids: {pids:?}");
    assert!(
        alive.is_empty(),
        "processes survived the timeout: {alive:?} of {pids:?}"
    );
    let f = d.last_finished("p/stubborn");
    assert_eq!(f.status, StepStatus::TimedOut, "{f:?}");
    assert!(
        f.duration_ms >= 450,
        "ran until its timeout: {} ms",
        f.duration_ms
    );
    assert!(f.error.as_deref().unwrap_or("").contains("timed out"), "{f:?}");
    assert_eq!(d.log_of(f), b"ready\n");
    assert!(d.elapsed < Duration::from_secs(5), "run took {:?}", d.elapsed);
    assert_eq!(d.last_finished("p/after").status, StepStatus::Succeeded);
    assert_eq!(d.outcome, Outcome::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_background_process_left_by_a_step_is_ended() {
    let fx = Fixture::new();
    let rb = fx.write(
        "bg.toml",
        r#"
[runbook]
title = "Background"

[settings]
kill_grace = "500ms"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "leaves"
title = "Leaves a process"
run = "sleep 300 & echo $! > bg.pid; (trap '' TERM; exec sleep 301) & echo $! >> bg.pid; echo done"

[[phase.step]]
id = "quiet"
title = "Leaves a process without output"
run = "sleep 302 >/dev/null 2>&1 & echo $! > quiet.pid"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let pids: Vec<i32> = read_pids(&fx.file("bg.pid"))
        .into_iter()
        .chain(read_pids(&fx.file("quiet.pid")))
        .collect();
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| !wait_gone(p, Duration::from_secs(2)))
        .collect();
    kill_pids(&alive);
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(
        alive.is_empty(),
        "background processes outlived their step: {alive:?}"
    );
    assert_eq!(d.outcome, Outcome::Succeeded);
    let f = d.last_finished("p/leaves");
    assert_eq!(f.status, StepStatus::Succeeded);
    assert_eq!(f.exit_code, Some(0));
    assert_eq!(d.log_of(f), b"done\n");
    assert_eq!(d.last_finished("p/quiet").status, StepStatus::Succeeded);
    assert!(d.elapsed < Duration::from_secs(5), "run took {:?}", d.elapsed);
}

// ---------------------------------------------------------------------------------------------
// Odd output

#[tokio::test(flavor = "multi_thread")]
async fn odd_output_is_logged_byte_for_byte() {
    let fx = Fixture::new();
    let rb = fx.write(
        "odd.toml",
        r#"
[runbook]
title = "Odd output"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "utf8"
title = "Invalid UTF-8"
run = "printf 'caf\\303 \\377\\376 \\200 end\\r\\n\\033[1mbold\\033[0m\\0nul\\n' | tee utf8.expected"

[[phase.step]]
id = "long"
title = "A 1 MB line without a newline"
run = "head -c 1048576 /dev/zero | tr '\\0' x | tee long.expected"

[[phase.step]]
id = "binary"
title = "Binary"
run = "head -c 100000 /dev/urandom | tee binary.expected"

[[phase.step]]
id = "mixed"
title = "Stdout and stderr"
run = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", d.records);
    for (i, (step, expected)) in [
        ("p/utf8", "utf8.expected"),
        ("p/long", "long.expected"),
        ("p/binary", "binary.expected"),
    ]
    .into_iter()
    .enumerate()
    {
        let want = std::fs::read(fx.file(expected)).unwrap();
        let f = d.last_finished(step);
        assert_eq!(f.status, StepStatus::Succeeded, "{step}");
        let log = d.log_of(f);
        assert_eq!(log.len(), want.len(), "{step}: log length");
        assert!(log == want, "{step}: the log differs from what the command wrote");
        let shown = d.output_of(at(0, i));
        assert!(
            shown == want,
            "{step}: the front end got other bytes ({} vs {})",
            shown.len(),
            want.len()
        );
    }
    assert_eq!(
        std::fs::metadata(fx.file("long.expected")).unwrap().len(),
        1048576
    );
    assert_eq!(
        std::fs::metadata(fx.file("binary.expected")).unwrap().len(),
        100000
    );
    let mixed = d.log_of(d.last_finished("p/mixed"));
    assert_eq!(
        String::from_utf8(mixed).unwrap(),
        "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n"
    );
    // Output updates are whole lines (or pieces of a line too long to hold).
    for (step, bytes) in &d.output {
        if *step == at(0, 3) {
            assert!(bytes.ends_with(b"\n"), "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP steps

fn http_runbook(fx: &Fixture, http: &str, extra: &str) -> std::path::PathBuf {
    fx.write(
        "http.toml",
        &format!(
            r#"
[runbook]
title = "HTTP"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "h"
title = "Request"
http = {http}
on_failure = "continue"
{extra}
"#
        ),
    )
}

async fn http_step(fx: &Fixture, http: &str, extra: &str) -> (Driven, runbook::journal::StepFinished) {
    let rb = http_runbook(fx, http, extra);
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", d.records);
    let f = d.last_finished("p/h").clone();
    assert!(f.log.is_some(), "an http step has a log: {f:?}");
    (d, f)
}

fn server() -> TestServer {
    TestServer::start(vec![
        ("/healthz", Reply::Fixed(200, "status: healthy\n")),
        ("/created", Reply::Fixed(201, "made")),
        ("/down", Reply::Fixed(503, "maintenance")),
        ("/hang", Reply::Hang),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn http_expect_status_matches() {
    let fx = Fixture::new();
    let srv = server();
    let (d, f) = http_step(
        &fx,
        &format!(r#"{{ url = "{}", expect_status = 200 }}"#, srv.url("/healthz")),
        "",
    )
    .await;
    assert_eq!(f.status, StepStatus::Succeeded, "{f:?}");
    assert_eq!(f.http_status, Some(200));
    let log = String::from_utf8(d.log_of(&f)).unwrap();
    assert!(log.contains("healthy"), "the log holds the exchange:\n{log}");
    // Default expectation is 200.
    let fx2 = Fixture::new();
    let (_, f) = http_step(&fx2, &format!(r#"{{ url = "{}" }}"#, srv.url("/healthz")), "").await;
    assert_eq!(f.status, StepStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_expect_status_list() {
    let fx = Fixture::new();
    let srv = server();
    let (_, f) = http_step(
        &fx,
        &format!(
            r#"{{ url = "{}", method = "POST", body = "x", expect_status = [200, 201, 204] }}"#,
            srv.url("/created")
        ),
        "",
    )
    .await;
    assert_eq!(f.status, StepStatus::Succeeded, "{f:?}");
    assert_eq!(f.http_status, Some(201));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_status_mismatch_fails_and_records_the_status() {
    let fx = Fixture::new();
    let srv = server();
    let (_, f) = http_step(
        &fx,
        &format!(
            r#"{{ url = "{}", expect_status = [200, 204] }}"#,
            srv.url("/down")
        ),
        "",
    )
    .await;
    assert_eq!(f.status, StepStatus::Failed, "{f:?}");
    assert_eq!(f.http_status, Some(503));
    let err = f.error.clone().unwrap_or_default();
    assert!(err.contains("503"), "the error names the status: {err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_expect_body_substring() {
    let srv = server();
    let fx = Fixture::new();
    let (_, f) = http_step(
        &fx,
        &format!(
            r#"{{ url = "{}", expect_body = "healthy" }}"#,
            srv.url("/healthz")
        ),
        "",
    )
    .await;
    assert_eq!(f.status, StepStatus::Succeeded, "{f:?}");

    let fx = Fixture::new();
    let (_, f) = http_step(
        &fx,
        &format!(
            r#"{{ url = "{}", expect_body = "degraded" }}"#,
            srv.url("/healthz")
        ),
        "",
    )
    .await;
    assert_eq!(f.status, StepStatus::Failed, "{f:?}");
    assert_eq!(f.http_status, Some(200));
    assert!(f.error.as_deref().unwrap_or("").contains("degraded"), "{f:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_refused_connection_fails_clearly() {
    let fx = Fixture::new();
    let port = free_port();
    let (d, f) = http_step(
        &fx,
        &format!(r#"{{ url = "http://127.0.0.1:{port}/healthz" }}"#),
        r#"timeout = "3s""#,
    )
    .await;
    assert_eq!(f.status, StepStatus::Failed, "{f:?}");
    assert_eq!(f.http_status, None);
    let err = f.error.clone().unwrap_or_default();
    assert!(
        err.to_lowercase().contains("connect"),
        "the error says the connection failed: {err:?}"
    );
    assert!(d.elapsed < Duration::from_secs(5));
    let log = String::from_utf8(d.log_of(&f)).unwrap();
    assert!(
        log.contains(&port.to_string()),
        "the log names the request:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_server_that_never_answers_times_out_promptly() {
    let fx = Fixture::new();
    let srv = server();
    let (d, f) = http_step(
        &fx,
        &format!(r#"{{ url = "{}" }}"#, srv.url("/hang")),
        r#"timeout = "300ms""#,
    )
    .await;
    assert!(
        matches!(f.status, StepStatus::Failed | StepStatus::TimedOut),
        "{f:?}"
    );
    assert_eq!(f.http_status, None);
    assert!(f.error.is_some(), "{f:?}");
    assert!(
        (250..3000).contains(&f.duration_ms),
        "gave up after its timeout: {} ms",
        f.duration_ms
    );
    assert!(d.elapsed < Duration::from_secs(5), "{:?}", d.elapsed);
}

// ---------------------------------------------------------------------------------------------
// Commands from a front end

const MANUAL_RUNBOOK: &str = r#"
[runbook]
title = "Manual"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "check"
title = "Check the CDN"
manual = "Open the CDN console"

[[phase.step]]
id = "gated"
title = "Gated"
run = "touch gated.txt"
confirm = true

[[phase.step]]
id = "after"
title = "After"
run = "touch after.txt"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn confirm_a_manual_step_by_name() {
    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::GoAhead { .. },
            ..
        } => vec![Command::Confirm {
            by: Some("alice".into()),
            step: None,
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(
        d.waits,
        [
            (at(0, 0), Wait::GoAhead { irreversible: false }),
            (at(0, 1), Wait::GoAhead { irreversible: false })
        ],
        "both steps waited for a go-ahead"
    );
    let f = d.last_finished("p/check");
    assert_eq!(f.status, StepStatus::Confirmed);
    assert_eq!(f.by.as_deref(), Some("alice"));
    assert!(f.metrics.is_some(), "a confirmation records the metrics");
    let g = d.last_finished("p/gated");
    assert_eq!(g.status, StepStatus::Succeeded);
    assert_eq!(g.by.as_deref(), Some("alice"));
    assert!(fx.exists("gated.txt") && fx.exists("after.txt"));
    // On disk, as the contract names it.
    let j = d.journal();
    let check = last_finished(&j, "p/check");
    assert_eq!(check["status"], "confirmed");
    assert_eq!(check["by"], "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_step_is_confirmed_by_the_operator_when_no_name_is_given() {
    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting { .. } => vec![Command::Confirm { by: None, step: None }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let op = runbook::session::operator();
    assert_eq!(d.last_finished("p/check").by.as_deref(), Some(op.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_waiting_steps_with_a_reason() {
    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            step,
            why: Wait::GoAhead { .. },
        } => vec![Command::Skip {
            reason: format!("not needed for step {}", step.step),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let f = d.last_finished("p/check");
    assert_eq!(f.status, StepStatus::Skipped);
    assert_eq!(f.reason.as_deref(), Some("not needed for step 0"));
    let g = d.last_finished("p/gated");
    assert_eq!(g.status, StepStatus::Skipped);
    assert_eq!(g.reason.as_deref(), Some("not needed for step 1"));
    assert!(!fx.exists("gated.txt"), "a skipped step's command never runs");
    assert!(fx.exists("after.txt"), "the run goes on after a skip");
    let j = d.journal();
    assert_eq!(last_finished(&j, "p/check")["reason"], "not needed for step 0");
}

const FAILING_RUNBOOK: &str = r#"
[runbook]
title = "Fails once"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "flaky"
title = "Flaky"
run = 'if [ -f seen ]; then echo second; else touch seen; echo first; exit 4; fi'

[[phase.step]]
id = "after"
title = "After"
run = "touch after.txt"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn retry_a_failed_step() {
    let fx = Fixture::new();
    let rb = fx.write("fail.toml", FAILING_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::Failed { .. },
            ..
        } => vec![Command::Retry],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(d.waits.len(), 1);
    assert!(
        matches!(&d.waits[0], (s, Wait::Failed { status: StepStatus::Failed, .. }) if *s == at(0, 0)),
        "{:?}",
        d.waits
    );
    let f = d.finished("p/flaky");
    assert_eq!(
        f.iter()
            .map(|f| (f.attempt, f.status, f.exit_code))
            .collect::<Vec<_>>(),
        [
            (1, StepStatus::Failed, Some(4)),
            (2, StepStatus::Succeeded, Some(0))
        ]
    );
    assert_eq!(d.log_of(f[0]), b"first\n");
    assert_eq!(d.log_of(f[1]), b"second\n");
    assert!(fx.exists("after.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_a_failed_step_with_a_reason() {
    let fx = Fixture::new();
    let rb = fx.write("fail.toml", FAILING_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::Failed { .. },
            ..
        } => vec![Command::Skip {
            reason: "known flake, checked by hand".into(),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let f = d.finished("p/flaky");
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].status, StepStatus::Failed);
    assert_eq!(f[1].status, StepStatus::Skipped);
    assert_eq!(f[1].reason.as_deref(), Some("known flake, checked by hand"));
    assert!(fx.exists("after.txt"));
    assert_eq!(fx.read("seen"), "", "the step ran once");
}

const LONG_RUNBOOK: &str = r#"
[runbook]
title = "Long"

[settings]
kill_grace = "1s"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "long"
title = "Long"
run = "echo $$ > long.pid; echo ready; exec sleep 30"

[[phase.step]]
id = "rest"
title = "Rest"
run = "touch rest.txt"

[[phase]]
id = "q"
title = "Q"

[[phase.step]]
id = "final"
title = "Final"
run = "touch final.txt"

[rollback]
title = "Back"

[[rollback.phase]]
id = "undo"
title = "Undo"

[[rollback.phase.step]]
id = "revert"
title = "Revert"
run = "touch reverted.txt"
"#;

fn assert_long_step_gone(fx: &Fixture) {
    let pids = read_pids(&fx.file("long.pid"));
    assert_eq!(pids.len(), 1);
    let gone = wait_gone(pids[0], Duration::from_secs(2));
    kill_pids(&pids);
    assert!(gone, "the long step's process survived");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_note_while_a_step_runs_is_journaled() {
    let fx = Fixture::new();
    let rb = fx.write(
        "note.toml",
        r#"
[runbook]
title = "Note"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "slow"
title = "Slow"
run = "sleep 0.7"
"#,
    );
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_start(
            "p/slow",
            Command::Note {
                text: "canary looks fine".into(),
            },
        ),
    )
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(
        names(&d),
        [
            "run_started",
            "start p/slow#1",
            "note canary looks fine",
            "succeeded p/slow#1",
            "run_finished succeeded",
        ]
    );
    let j = d.journal();
    let note = event(&j, "note");
    assert_eq!(note["text"], "canary looks fine");
    assert_eq!(note["operator"], runbook::session::operator());
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_while_waiting_are_journaled_too() {
    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting { step, .. } => vec![
            Command::Note {
                text: format!("looking at {}", step.step),
            },
            Command::Confirm { by: None, step: None },
        ],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let j = d.journal();
    let notes: Vec<_> = events(&j, "note").iter().map(|n| n["text"].clone()).collect();
    assert_eq!(notes, ["looking at 0", "looking at 1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_while_a_long_step_runs() {
    let fx = Fixture::new();
    let rb = fx.write("long.toml", LONG_RUNBOOK);
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_output(at(0, 0), Command::Rollback),
    )
    .await;
    assert_long_step_gone(&fx);
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert!(d.elapsed < Duration::from_secs(5), "{:?}", d.elapsed);
    let long = d.last_finished("p/long");
    assert_eq!(long.status, StepStatus::Cancelled);
    assert_eq!(long.attempt, 1);
    assert!(long.duration_ms < 5000);
    for s in ["p/rest", "q/final"] {
        let f = d.finished(s);
        assert_eq!(f.len(), 1, "{s}");
        assert_eq!(f[0].status, StepStatus::Cancelled, "{s}");
    }
    assert!(!fx.exists("rest.txt") && !fx.exists("final.txt"));
    assert!(fx.exists("reverted.txt"));
    let revert = d.last_finished("undo/revert");
    assert!(revert.rollback);
    assert_eq!(revert.status, StepStatus::Succeeded);
    let j = d.journal();
    assert_eq!(event(&j, "rollback_started")["reason"], "operator");
    assert_eq!(event(&j, "rollback_finished")["status"], "succeeded");
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "rolled_back");
    assert_eq!(fin["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_while_a_manual_step_waits() {
    let fx = Fixture::new();
    let rb = fx.write(
        "mrb.toml",
        &LONG_RUNBOOK.replace(
            r#"run = "echo $$ > long.pid; echo ready; exec sleep 30""#,
            r#"manual = "Check the dashboards""#,
        ),
    );
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting { .. } => vec![Command::Rollback],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert_eq!(d.last_finished("p/long").status, StepStatus::Cancelled);
    assert_eq!(d.last_finished("p/rest").status, StepStatus::Cancelled);
    assert!(fx.exists("reverted.txt"));
    let j = d.journal();
    assert_eq!(event(&j, "rollback_started")["reason"], "operator");
}

/// The operator's words for a rollback go into `rollback_started` with who called it; `reason`
/// stays as SPEC §4 has it. The plan snapshot is in `run_started`.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_with_the_operators_words_journals_who_and_why() {
    let fx = Fixture::new();
    let rb = fx.write(
        "mrb.toml",
        &LONG_RUNBOOK.replace(
            r#"run = "echo $$ > long.pid; echo ready; exec sleep 30""#,
            r#"manual = "Check the dashboards""#,
        ),
    );
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting { .. } => vec![Command::RollbackWithNote {
            note: "  dashboards red  ".into(),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    let j = d.journal();
    let rb = event(&j, "rollback_started");
    assert_eq!(rb["reason"], "operator");
    assert_eq!(rb["operator"], runbook::identity::operator());
    assert_eq!(rb["note"], "dashboards red");
    let plan = &event(&j, "run_started")["plan"];
    assert_eq!(plan["phases"][0]["id"], "p");
    assert_eq!(plan["phases"][0]["steps"][0]["kind"], "manual");
    assert_eq!(plan["rollback"][0]["steps"][0]["kind"], "run");
}

#[tokio::test(flavor = "multi_thread")]
async fn confirm_ends_a_running_watch_early() {
    let fx = Fixture::new();
    let rb = fx.write(
        "watch.toml",
        r#"
[runbook]
title = "Watch"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "bake"
title = "Bake"
watch = "30s"

[[phase.step]]
id = "after"
title = "After"
run = "touch after.txt"
"#,
    );
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_start(
            "p/bake",
            Command::Confirm {
                by: Some("bob".into()),
                step: None,
            },
        ),
    )
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert!(d.elapsed < Duration::from_secs(5), "{:?}", d.elapsed);
    let f = d.last_finished("p/bake");
    assert_eq!(f.status, StepStatus::Succeeded);
    assert_eq!(f.by.as_deref(), Some("bob"));
    assert!(f.duration_ms < 5000, "{}", f.duration_ms);
    assert!(fx.exists("after.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_passes_after_its_duration() {
    let fx = Fixture::new();
    let rb = fx.write(
        "watch.toml",
        r#"
[runbook]
title = "Watch"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "bake"
title = "Bake"
watch = "400ms"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let f = d.last_finished("p/bake");
    assert_eq!(f.status, StepStatus::Succeeded);
    assert!((380..3000).contains(&f.duration_ms), "{}", f.duration_ms);
    assert_eq!(f.by, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_while_a_step_runs() {
    let fx = Fixture::new();
    let rb = fx.write("long.toml", LONG_RUNBOOK);
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_output(
            at(0, 0),
            Command::Abort {
                reason: Some("wrong release".into()),
            },
        ),
    )
    .await;
    assert_long_step_gone(&fx);
    assert_eq!(d.outcome, Outcome::Aborted);
    assert!(d.elapsed < Duration::from_secs(5), "{:?}", d.elapsed);
    assert_eq!(d.last_finished("p/long").status, StepStatus::Cancelled);
    assert!(!fx.exists("rest.txt") && !fx.exists("reverted.txt"));
    assert!(d.finished("p/rest").is_empty(), "nothing after an abort");
    let j = d.journal();
    assert!(events(&j, "rollback_started").is_empty());
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "aborted");
    assert_eq!(fin["exit_code"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_while_a_manual_step_waits() {
    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::Aborted);
    assert!(!fx.exists("gated.txt") && !fx.exists("after.txt"));
    let j = d.journal();
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "aborted");
    assert_eq!(fin["exit_code"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_step_stopped_while_waiting_is_finished_in_the_journal() {
    for cmd in [Command::Abort { reason: None }, Command::Interrupt] {
        let fx = Fixture::new();
        let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
        let c = cmd.clone();
        let d = drive(request(&rb, &fx.state(), &[], false), move |u| match u {
            Update::Waiting { .. } => vec![c.clone()],
            _ => vec![],
        })
        .await;
        let f = d.finished("p/check");
        assert_eq!(
            f.len(),
            1,
            "{cmd:?}: step_started of p/check has no step_finished"
        );
        let want = match cmd {
            Command::Interrupt => StepStatus::Interrupted,
            _ => StepStatus::Cancelled,
        };
        assert_eq!(f[0].status, want, "{cmd:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_while_a_step_runs() {
    let fx = Fixture::new();
    let rb = fx.write("long.toml", LONG_RUNBOOK);
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_output(at(0, 0), Command::Interrupt),
    )
    .await;
    assert_long_step_gone(&fx);
    assert_eq!(d.outcome, Outcome::Interrupted);
    assert_eq!(d.last_finished("p/long").status, StepStatus::Interrupted);
    assert!(d.finished("p/rest").is_empty());
    let j = d.journal();
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "interrupted");
    assert_eq!(fin["exit_code"], 130);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_updates_carry_the_step_and_whole_lines() {
    let fx = Fixture::new();
    let rb = fx.write(
        "out.toml",
        r#"
[runbook]
title = "Out"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "one"
title = "One"
run = "echo a; sleep 0.1; echo b"

[[phase]]
id = "q"
title = "Q"

[[phase.step]]
id = "two"
title = "Two"
run = "printf 'x\ny'"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(d.output_of(at(0, 0)), b"a\nb\n");
    assert_eq!(d.output_of(at(1, 0)), b"x\ny");
    assert!(d.output.iter().all(|(s, _)| !s.rollback));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_step_gets_sigterm_first_and_may_clean_up_within_kill_grace() {
    let fx = Fixture::new();
    let rb = fx.write(
        "grace.toml",
        r#"
[runbook]
title = "Grace"

[settings]
kill_grace = "3s"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "long"
title = "Long"
run = "trap 'sleep 0.2; echo cleaned up > cleanup.txt; exit 5' TERM; echo $$ > long.pid; echo ready; sleep 30 & wait"
"#,
    );
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_output(at(0, 0), Command::Abort { reason: None }),
    )
    .await;
    assert_long_step_gone(&fx);
    assert_eq!(
        fx.read("cleanup.txt"),
        "cleaned up\n",
        "the step's TERM handler ran to its end"
    );
    let f = d.last_finished("p/long");
    assert_eq!(f.status, StepStatus::Cancelled);
    assert_eq!(f.exit_code, Some(5), "the exit code of the cleaned-up shell");
    assert!(
        d.elapsed < Duration::from_secs(3),
        "no need to wait for SIGKILL: {:?}",
        d.elapsed
    );
    assert_eq!(d.outcome, Outcome::Aborted);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_that_cannot_start_fails_the_step_with_a_reason() {
    let fx = Fixture::new();
    let rb = fx.write(
        "noshell.toml",
        r#"
[runbook]
title = "No shell"

[settings]
shell = "/nonexistent/shell-for-runbook-tests"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "true"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::Failed);
    let f = d.last_finished("p/s");
    assert_eq!(f.status, StepStatus::Failed);
    let err = f.error.clone().unwrap_or_default();
    assert!(
        err.contains("shell-for-runbook-tests"),
        "the error names the shell: {err:?}"
    );
    let log = String::from_utf8(d.log_of(f)).unwrap();
    assert!(
        log.contains("shell-for-runbook-tests"),
        "the log says why: {log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_get_vars_step_env_and_run_in_the_workdir() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.file("sub")).unwrap();
    let rb = fx.write(
        "env.toml",
        r#"
[runbook]
title = "Env"

[vars]
release = "v9"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "env"
title = "Env"
run = 'echo "$release $CANARY $RUNBOOK_PHASE/$RUNBOOK_STEP $RUNBOOK_ATTEMPT $RUNBOOK_MODE"; pwd'
env = { CANARY = "10" }

[[phase.step]]
id = "sub"
title = "Sub"
run = "pwd"
workdir = "sub"
"#,
    );
    let d = drive(
        request(&rb, &fx.state(), &[("release", "v10")], false),
        no_commands,
    )
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    let root = fx.path().canonicalize().unwrap();
    let out = String::from_utf8(d.log_of(d.last_finished("p/env"))).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("v10 10 p/env 1 run"));
    assert_eq!(
        std::path::Path::new(lines.next().unwrap())
            .canonicalize()
            .unwrap(),
        root,
        "commands run in the runbook's folder by default"
    );
    let sub = String::from_utf8(d.log_of(d.last_finished("p/sub"))).unwrap();
    assert_eq!(
        std::path::Path::new(sub.trim_end()).canonicalize().unwrap(),
        root.join("sub")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn roll_back_after_a_failure_on_the_operators_call() {
    let fx = Fixture::new();
    let rb = fx.write(
        "fail.toml",
        &format!(
            "{FAILING_RUNBOOK}\n[rollback]\ntitle = \"Back\"\n\n[[rollback.phase]]\nid = \"undo\"\ntitle = \"Undo\"\n\n[[rollback.phase.step]]\nid = \"revert\"\ntitle = \"Revert\"\nrun = \"touch reverted.txt\"\n"
        ),
    );
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::Failed { .. },
            ..
        } => vec![Command::Rollback],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert!(fx.exists("reverted.txt") && !fx.exists("after.txt"));
    assert_eq!(d.last_finished("p/flaky").status, StepStatus::Failed);
    assert_eq!(d.last_finished("p/after").status, StepStatus::Cancelled);
    let j = d.journal();
    let reason = event(&j, "rollback_started")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason == "operator" || reason == "step:p/flaky",
        "rollback reason: {reason}"
    );
    assert_eq!(event(&j, "rollback_finished")["status"], "succeeded");
}

/// A deploy that fails into a rollback whose first step fails too (`exit 3`), then reverts.
fn rollback_trouble() -> String {
    RunbookToml::new("Rollback trouble")
        .phase("p", "P")
        .step("deploy", "Deploy", "run = \"exit 1\"\non_failure = \"rollback\"")
        .rollback("Back")
        .phase("undo", "Undo")
        .step("flush", "Flush caches", "run = \"exit 3\"")
        .step("revert", "Revert", "run = \"touch reverted.txt\"")
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_rollback_step_waits_and_can_be_skipped() {
    let fx = Fixture::new();
    let rb = fx.write("rbfail.toml", &rollback_trouble());
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            step,
            why: Wait::Failed { .. },
        } if step.rollback => vec![Command::Skip {
            reason: "caches flushed by hand".into(),
        }],
        Update::Waiting { .. } => vec![Command::Abort { reason: None }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", d.records);
    assert_eq!(d.waits.len(), 1);
    assert!(d.waits[0].0.rollback);
    let flush = d.finished("undo/flush");
    assert_eq!(flush.len(), 2);
    assert_eq!((flush[0].status, flush[0].rollback), (StepStatus::Failed, true));
    assert_eq!(flush[1].status, StepStatus::Skipped);
    assert_eq!(flush[1].reason.as_deref(), Some("caches flushed by hand"));
    assert!(fx.exists("reverted.txt"));
    let j = d.journal();
    assert_eq!(event(&j, "rollback_started")["reason"], "step:p/deploy");
}

#[tokio::test(flavor = "multi_thread")]
async fn aborting_a_failed_rollback_means_rollback_failed() {
    let fx = Fixture::new();
    let rb = fx.write("rbfail.toml", &rollback_trouble());
    let d = drive(request(&rb, &fx.state(), &[], false), abort_on_wait).await;
    assert_eq!(d.outcome, Outcome::RollbackFailed);
    assert!(!fx.exists("reverted.txt"));
    let j = d.journal();
    assert_eq!(event(&j, "rollback_finished")["status"], "failed");
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "rollback_failed");
    assert_eq!(fin["exit_code"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemonized_process_is_ended_too() {
    let fx = Fixture::new();
    let rb = fx.write(
        "setsid.toml",
        r#"
[runbook]
title = "Daemon"

[settings]
kill_grace = "500ms"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "daemon"
title = "Starts a daemon"
run = "setsid sleep 300 & echo $! > daemon.pid; sleep 0.3; echo started"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let pids = read_pids(&fx.file("daemon.pid"));
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| !wait_gone(p, Duration::from_secs(2)))
        .collect();
    kill_pids(&alive);
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert!(alive.is_empty(), "the daemon outlived its step: {alive:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_leaving_a_short_background_process_does_not_wait_for_kill_grace() {
    // Default kill_grace (10s): the leftover dies on SIGTERM at once, so nothing waits for the grace.
    let fx = Fixture::new();
    let rb = fx.write(
        "bg.toml",
        r#"
[runbook]
title = "Background"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "leaves"
title = "Leaves a process"
run = "sleep 300 & echo $! > bg.pid; echo done"

[[phase.step]]
id = "short"
title = "Leaves a process that ends by itself"
run = "sleep 0.2 & echo bg"
"#,
    );
    let d = drive(request(&rb, &fx.state(), &[], false), no_commands).await;
    let pids = read_pids(&fx.file("bg.pid"));
    let gone = pids.iter().all(|&p| wait_gone(p, Duration::from_secs(2)));
    kill_pids(&pids);
    assert!(gone, "the background process outlived its step");
    assert_eq!(d.outcome, Outcome::Succeeded);
    for s in ["p/leaves", "p/short"] {
        let f = d.last_finished(s);
        assert_eq!(f.status, StepStatus::Succeeded, "{s}");
        assert!(f.duration_ms < 3000, "{s} took {} ms", f.duration_ms);
    }
    assert!(d.elapsed < Duration::from_secs(5), "run took {:?}", d.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_while_a_confirm_step_waits_marks_it_cancelled() {
    let fx = Fixture::new();
    let rb = fx.write(
        "crb.toml",
        &LONG_RUNBOOK.replace(
            r#"run = "echo $$ > long.pid; echo ready; exec sleep 30""#,
            "run = \"touch long.txt\"\nconfirm = true",
        ),
    );
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting {
            why: Wait::GoAhead { .. },
            ..
        } => vec![Command::Rollback],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert!(!fx.exists("long.txt"), "the waiting step never ran");
    assert!(fx.exists("reverted.txt"));
    for s in ["p/long", "p/rest", "q/final"] {
        let f = d.finished(s);
        assert_eq!(f.len(), 1, "{s} is recorded once: {:#?}", names(&d));
        assert_eq!(f[0].status, StepStatus::Cancelled, "{s}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_during_a_retry_delay() {
    let fx = Fixture::new();
    let rb = fx.write(
        "delay.toml",
        &LONG_RUNBOOK.replace(
            r#"run = "echo $$ > long.pid; echo ready; exec sleep 30""#,
            "run = \"echo x >> attempts; exit 1\"\nretries = 3\nretry_delay = \"20s\"",
        ),
    );
    let mut sent = false;
    let d = drive(request(&rb, &fx.state(), &[], false), move |u| match u {
        Update::Message(m) if m.contains("retry") && !sent => {
            sent = true;
            vec![Command::Rollback]
        }
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::RolledBack, "{:#?}", names(&d));
    assert!(
        d.elapsed < Duration::from_secs(5),
        "did not sit out the retry delay: {:?}",
        d.elapsed
    );
    assert_eq!(fx.read("attempts"), "x\n");
    assert_eq!(d.last_finished("p/long").status, StepStatus::Failed);
    assert_eq!(d.last_finished("p/rest").status, StepStatus::Cancelled);
    let j = d.journal();
    assert_eq!(event(&j, "rollback_started")["reason"], "operator");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_during_a_watch_and_during_a_go_ahead() {
    let fx = Fixture::new();
    let rb = fx.write(
        "iw.toml",
        r#"
[runbook]
title = "Interrupts"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "bake"
title = "Bake"
watch = "30s"
"#,
    );
    let d = drive(
        request(&rb, &fx.state(), &[], false),
        on_start("p/bake", Command::Interrupt),
    )
    .await;
    assert_eq!(d.outcome, Outcome::Interrupted);
    assert!(d.elapsed < Duration::from_secs(5));
    assert_eq!(d.last_finished("p/bake").status, StepStatus::Interrupted);

    let fx = Fixture::new();
    let rb = fx.write("manual.toml", MANUAL_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), |u| match u {
        Update::Waiting { .. } => vec![Command::Interrupt],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Interrupted);
    assert_eq!(d.last_finished("p/check").status, StepStatus::Interrupted);
    let j = d.journal();
    assert_eq!(event(&j, "run_finished")["exit_code"], 130);
}

// ---------------------------------------------------------------------------------------------
// Go-aheads act on what the operator sees (SPEC §5): never stored, never carried to another step

/// A manual trigger, a `confirm = true` step, and an irreversible automatic step.
const GATED_RUNBOOK: &str = r#"
[runbook]
title = "Gated"

[[trigger]]
id = "security"
title = "Security issue"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "look"
title = "Look"
manual = "Look at the dashboard"

[[phase.step]]
id = "gated"
title = "Gated"
run = "touch gated.txt"
confirm = true

[[phase.step]]
id = "migrate"
title = "Migrate the schema"
run = "touch migrated.txt"
irreversible = true
"#;

fn step_started_index(d: &Driven, name: &str) -> usize {
    d.records
        .iter()
        .position(|r| matches!(&r.event, Event::StepStarted { phase, step, .. } if format!("{phase}/{step}") == name))
        .unwrap_or_else(|| panic!("{name} never started: {:#?}", names(d)))
}

fn index_of(d: &Driven, what: impl Fn(&Event) -> bool) -> usize {
    d.records
        .iter()
        .position(|r| what(&r.event))
        .unwrap_or_else(|| panic!("not in the journal: {:#?}", names(d)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_go_ahead_given_while_a_trigger_fires_is_refused_not_kept() {
    let fx = Fixture::new();
    let rb = fx.write("gated.toml", GATED_RUNBOOK);
    let mut req = request(&rb, &fx.state(), &[], false);
    req.on_fire = runbook::engine::OnFire::Hold;
    let gated = at(0, 1);
    let mut asked = 0;
    let d = drive(req, move |u| match u {
        Update::Waiting { step, .. } if *step == at(0, 0) => vec![Command::Confirm {
            by: None,
            step: Some(at(0, 0)),
        }],
        // Asked the first time: a trigger fires while the step waits.
        Update::Waiting { step, .. } if *step == gated && asked == 0 => {
            asked += 1;
            vec![Command::RaiseTrigger {
                trigger: "security".into(),
                reason: "CVE".into(),
            }]
        }
        // The operator presses Enter meanwhile (the go-ahead must not be kept), then acknowledges.
        Update::Event(r) if matches!(r.event, Event::TriggerFired { .. }) => vec![
            Command::Confirm {
                by: None,
                step: Some(gated),
            },
            Command::Acknowledge,
        ],
        // Asked again once nothing fires: only now does a go-ahead count.
        Update::Waiting { step, .. } if *step == gated => {
            asked += 1;
            vec![
                Command::Note {
                    text: "asked again".into(),
                },
                Command::Confirm {
                    by: None,
                    step: Some(gated),
                },
            ]
        }
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", names(&d));
    assert!(
        d.messages
            .iter()
            .any(|m| m.contains("is firing") && m.contains("not kept")),
        "the refused go-ahead is explained: {:?}",
        d.messages
    );
    let gated_waits = d.waits.iter().filter(|(s, _)| *s == gated).count();
    assert_eq!(
        gated_waits, 2,
        "the step asks again after the acknowledgement: {:?}",
        d.waits
    );
    let acked = index_of(&d, |e| matches!(e, Event::TriggerAcknowledged { .. }));
    let note = index_of(
        &d,
        |e| matches!(e, Event::Note { text, .. } if text == "asked again"),
    );
    let started = step_started_index(&d, "p/gated");
    assert!(
        acked < note && note < started,
        "the step started only on a go-ahead given after the acknowledgement: {:#?}",
        names(&d)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_go_ahead_for_a_step_that_no_longer_waits_does_not_start_the_next() {
    let fx = Fixture::new();
    let rb = fx.write("gated.toml", GATED_RUNBOOK);
    let gated = at(0, 1);
    let d = drive(request(&rb, &fx.state(), &[], false), move |u| match u {
        // Enter pressed twice on the manual step: the second press is meant for it too.
        Update::Waiting { step, .. } if *step == at(0, 0) => {
            let c = Command::Confirm {
                by: None,
                step: Some(at(0, 0)),
            };
            vec![c.clone(), c]
        }
        Update::Waiting { step, .. } if *step == gated => vec![Command::Note {
            text: "reading gated".into(),
        }],
        Update::Message(m) if m.contains("no longer waiting") => vec![Command::Confirm {
            by: None,
            step: Some(gated),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", names(&d));
    assert!(
        d.messages.iter().any(|m| m.contains("was for p/look")),
        "{:?}",
        d.messages
    );
    let note = index_of(
        &d,
        |e| matches!(e, Event::Note { text, .. } if text == "reading gated"),
    );
    assert!(
        note < step_started_index(&d, "p/gated"),
        "the stale Enter did not start p/gated: {:#?}",
        names(&d)
    );
}

fn confirm_all(u: &Update) -> Vec<Command> {
    match u {
        Update::Waiting {
            step,
            why: Wait::GoAhead { .. },
        } => vec![Command::Confirm {
            by: None,
            step: Some(*step),
        }],
        _ => vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_irreversible_step_waits_for_a_go_ahead_that_names_it_when_someone_is_at_the_controls() {
    let fx = Fixture::new();
    let rb = fx.write("gated.toml", GATED_RUNBOOK);
    let mut req = request(&rb, &fx.state(), &[], false);
    req.ask_irreversible = true;
    let migrate = at(0, 2);
    let d = drive(req, move |u| match u {
        // A bare go-ahead (an Enter typed ahead) does not start it; one naming it does.
        Update::Waiting {
            step,
            why: Wait::GoAhead { irreversible: true },
        } if *step == migrate => vec![
            Command::Confirm { by: None, step: None },
            Command::Note {
                text: "bare enter sent".into(),
            },
            Command::Confirm {
                by: None,
                step: Some(migrate),
            },
        ],
        other => confirm_all(other),
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", names(&d));
    assert!(
        d.waits.contains(&(migrate, Wait::GoAhead { irreversible: true })),
        "{:?}",
        d.waits
    );
    assert!(
        d.messages.iter().any(|m| m.contains("p/migrate is irreversible")),
        "{:?}",
        d.messages
    );
    let note = index_of(
        &d,
        |e| matches!(e, Event::Note { text, .. } if text == "bare enter sent"),
    );
    assert!(note < step_started_index(&d, "p/migrate"), "{:#?}", names(&d));
    let op = runbook::session::operator();
    assert_eq!(d.last_finished("p/migrate").by.as_deref(), Some(op.as_str()));
    assert!(fx.exists("migrated.txt"));

    // --yes confirms it, recorded as automatic.
    let fx = Fixture::new();
    let rb = fx.write("gated.toml", GATED_RUNBOOK);
    let mut req = request(&rb, &fx.state(), &[], true);
    req.ask_irreversible = true;
    let d = drive(req, no_commands).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert_eq!(d.last_finished("p/migrate").by.as_deref(), Some("auto"));

    // Nobody at the controls (headless without a terminal): it runs when reached, as before.
    let fx = Fixture::new();
    let rb = fx.write("gated.toml", GATED_RUNBOOK);
    let d = drive(request(&rb, &fx.state(), &[], false), confirm_all).await;
    assert_eq!(d.outcome, Outcome::Succeeded);
    assert!(!d.waits.iter().any(|(s, _)| *s == migrate), "{:?}", d.waits);
    assert_eq!(d.last_finished("p/migrate").by, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_given_while_a_trigger_fires_is_refused_not_kept() {
    let fx = Fixture::new();
    let rb = fx.write(
        "failing.toml",
        &FAILING_RUNBOOK.replace(
            "[[phase]]",
            "[[trigger]]\nid = \"security\"\ntitle = \"Security issue\"\n\n[[phase]]",
        ),
    );
    let mut req = request(&rb, &fx.state(), &[], false);
    req.on_fire = runbook::engine::OnFire::Hold;
    let mut raised = false;
    let d = drive(req, move |u| match u {
        Update::Waiting {
            why: Wait::Failed { .. },
            ..
        } if !raised => {
            raised = true;
            vec![Command::RaiseTrigger {
                trigger: "security".into(),
                reason: "CVE".into(),
            }]
        }
        Update::Event(r) if matches!(r.event, Event::TriggerFired { .. }) => {
            vec![Command::Retry, Command::Acknowledge]
        }
        Update::Event(r) if matches!(r.event, Event::TriggerAcknowledged { .. }) => vec![
            Command::Note {
                text: "retry again".into(),
            },
            Command::Retry,
        ],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:#?}", names(&d));
    let note = index_of(
        &d,
        |e| matches!(e, Event::Note { text, .. } if text == "retry again"),
    );
    let second = index_of(
        &d,
        |e| matches!(e, Event::StepStarted { step, attempt: 2, .. } if step == "flaky"),
    );
    assert!(
        note < second,
        "the retry given while firing was kept: {:#?}",
        names(&d)
    );
    assert!(
        d.messages.iter().any(|m| m.contains("then retry p/flaky again")),
        "{:?}",
        d.messages
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn running_an_interrupted_irreversible_step_again_on_resume_still_asks_for_its_confirmation() {
    let fx = Fixture::new();
    let rb = fx.write(
        "irr.toml",
        r#"
[runbook]
title = "Irreversible, interrupted"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "migrate"
title = "Migrate the schema"
run = "echo x >> m.cnt; echo counted; [ -f quick ] || sleep 10"
irreversible = true
"#,
    );
    let migrate = at(0, 0);
    // At the controls, confirmed by name, then interrupted by a signal while it runs (once its
    // output shows it has counted: an interrupt at its start could end it before that).
    let mut req = request(&rb, &fx.state(), &[], false);
    req.ask_irreversible = true;
    let d = drive(req, move |u| match u {
        Update::Waiting { step, .. } if *step == migrate => vec![Command::Confirm {
            by: None,
            step: Some(migrate),
        }],
        Update::Output { step, .. } if *step == migrate => vec![Command::Interrupt],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Interrupted);
    // Interrupted at once: the monitor still heard the request and said how the step ended.
    let f = d.last_finished("p/migrate");
    assert_eq!(f.status, StepStatus::Interrupted);
    assert!(f.exit_code.is_some() && f.error.is_none(), "{f:?}");
    fx.write("quick", "");

    // Resumed: "run it again" is not the irreversible step's confirmation; that is asked next.
    let mut req = request(&rb, &fx.state(), &[], false);
    req.ask_irreversible = true;
    req.resume = Some(d.run_dir.clone());
    let d = drive(req, move |u| match u {
        Update::Waiting {
            step,
            why: Wait::Interrupted,
        } if *step == migrate => vec![Command::Retry],
        Update::Waiting {
            step,
            why: Wait::GoAhead { irreversible: true },
        } if *step == migrate => vec![Command::Confirm {
            by: None,
            step: Some(migrate),
        }],
        _ => vec![],
    })
    .await;
    assert_eq!(d.outcome, Outcome::Succeeded, "{:?}", d.waits);
    assert_eq!(
        d.waits,
        [
            (migrate, Wait::Interrupted),
            (migrate, Wait::GoAhead { irreversible: true })
        ]
    );
    assert_eq!(fx.read("m.cnt"), "x\nx\n");
}
