//! Secrets never leak (SPEC §2, §10): not from a metric command's error, not percent-encoded or
//! base64-encoded in a request, not as the start of a secret cut at the HTTP body limit; a secret
//! that reads like JSON leaves the journal readable; a secret too short to mask is refused.
//! The real binary, headless, against a small HTTP server of the test's own.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A server on 127.0.0.1 that answers every request with `reply(request head)`: status and body.
fn serve(reply: impl Fn(&str) -> (u16, Vec<u8>) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = reply(&String::from_utf8_lossy(&req));
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Every place text leaves the tool: stdout, stderr, the journal, every log, and `report`.
fn everything_shown(fx: &Fixture, r: &CliRun) -> String {
    let run_dir = fx.run_dir();
    let mut all = format!("{}\n{}\n", r.stdout, r.stderr);
    all.push_str(&std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap());
    for e in std::fs::read_dir(run_dir.join("logs")).unwrap() {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(e.unwrap().path()).unwrap(),
        ));
    }
    for format in ["markdown", "json"] {
        let out = std::process::Command::new(runbook_bin())
            .args(["report", run_dir.to_str().unwrap(), "--format", format])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "report: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

fn assert_absent(all: &str, what: &str, form: &str) {
    if let Some(at) = all.find(form) {
        let from = all[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
        let to = all[at..]
            .char_indices()
            .nth(60)
            .map_or(all.len(), |(i, _)| at + i);
        panic!("{what} ({form:?}) leaked: …{}…", &all[from..to]);
    }
}

// A metric command failing on the first sample: its stderr became "metric errs: the command
// exited 1: token S3cr3tT0k3n — shown as unknown" on the screen (the journal was masked).
#[test]
fn a_metric_command_error_is_masked_where_it_is_made() {
    let fx = Fixture::new();
    let secret = "S3cr3tT0k3n";
    let rb = fx.write(
        "metric.toml",
        r#"
[runbook]
title = "Metric errors"

[secrets]
TOKEN = { env = "TEST_TOKEN_XYZ" }

[metrics]
interval = "200ms"

[[metric]]
id = "errs"
title = "Errors"
command = 'echo "cannot log in with token $TOKEN" >&2; exit 1'

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "sleep 0.5"
"#,
    );
    let r = fx.run_cli_env(&rb, &[], &[("TEST_TOKEN_XYZ", secret)]);
    r.expect_code(0);
    let shown = format!("{}{}", r.stdout, r.stderr);
    assert!(
        shown.contains("metric errs: the command exited 1: cannot log in with token ***"),
        "the error is shown, masked:\n{shown}"
    );
    assert_absent(&everything_shown(&fx, &r), "the secret", secret);
}

const HTTP_RUNBOOK: &str = r#"
[runbook]
title = "Secrets in requests"

[secrets]
PASS = { env = "TEST_PASS_XYZ" }

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "echo"
title = "Request that the server echoes"
http = { url = "URL/x?p=${PASS}", expect_body = "no such thing" }
on_failure = "continue"

[[phase.step]]
id = "refused"
title = "Request that nobody answers (the error names the URL)"
http = { url = "CLOSED/x?p=${PASS}" }
on_failure = "continue"

[[phase.step]]
id = "basic"
title = "Request with the password in the URL (sent as basic auth)"
http = { url = "USERINFO/basic", expect_body = "no such thing" }
on_failure = "continue"
"#;

// `PASS='p@ss w0rd<é>'` in a URL went out as `p@ss%20w0rd%3C%C3%A9%3E` and was shown, journaled,
// logged and reported that way. Every encoding a request gives it is masked.
#[test]
fn a_secret_is_masked_in_the_encodings_requests_give_it() {
    let fx = Fixture::new();
    let secret = "p@ss w0rd<é>";
    let encodings = [
        "p@ss%20w0rd%3C%C3%A9%3E",
        "p%40ss%20w0rd%3c%c3%a9%3e",
        "p%40ss+w0rd%3C%C3%A9%3E",
        "p@ss+w0rd<%C3%A9>",
    ];
    // base64 of `user:p@ss w0rd<é>` (basic auth), of the secret alone, after one and two bytes
    // (the three alignments), and followed by more text.
    let base64 = [
        "dXNlcjpwQHNzIHcwcmQ8w6k+",
        "cEBzcyB3MHJkPMOpPg==",
        "YXBAc3MgdzByZDzDqT4=",
        "YWJwQHNzIHcwcmQ8w6k+",
        "dXNlcjpwQHNzIHcwcmQ8w6k+L3g=",
    ];
    let extra = format!("{}\n{}\n", encodings.join("\n"), base64.join("\n"));
    let url = serve(move |req| {
        // The request as it arrived (its URL and headers), then the other forms.
        (500, format!("{req}\n{extra}").into_bytes())
    });
    let userinfo = url.replace("http://", "http://user:${PASS}@");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let text = HTTP_RUNBOOK
        .replace("CLOSED", &closed)
        .replace("USERINFO", &userinfo)
        .replace("URL", &url);
    let rb = fx.write("http.toml", &text);
    let r = fx.run_cli_env(&rb, &[], &[("TEST_PASS_XYZ", secret)]);
    r.expect_code(0);
    let j = fx.journal();
    // The requests did carry the secret, so the server's echo held it.
    let log = |step: &str| {
        let f = last_finished(&j, step);
        assert_eq!(f["http_status"], 500, "{f}");
        std::fs::read_to_string(fx.run_dir().join(f["log"].as_str().unwrap())).unwrap()
    };
    assert!(
        log("p/echo").contains("GET /x?p=*** HTTP/1.1"),
        "{}",
        log("p/echo")
    );
    // The user name's own characters stay; the one that carries bits of both is left out.
    assert!(
        log("p/basic").contains("authorization: Basic dXNlcjp***\r\n"),
        "{}",
        log("p/basic")
    );
    let refused = last_finished(&j, "p/refused");
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("/x?p=***"),
        "{refused}"
    );
    let all = everything_shown(&fx, &r);
    assert_absent(&all, "the secret", secret);
    for form in encodings.iter().chain(&base64) {
        assert_absent(&all, "an encoding of the secret", form);
    }
    // Also no tell-tale piece of the encoded password.
    assert_absent(&all, "part of the encoded secret", "w0rd%3");
}

// A secret equal to JSON text: `FLAG=false` made journal lines `"rollback":***`, and `resume` and
// `report` failed (exit 2) on the run's own journal.
#[test]
fn a_secret_that_reads_like_json_leaves_the_journal_readable() {
    let fx = Fixture::new();
    let rb = fx.write(
        "flag.toml",
        r#"
[runbook]
title = "A flag as a secret"

[secrets]
FLAG = { env = "TEST_FLAG_XYZ" }

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "Print the flag"
run = 'echo "flag is $FLAG"'
"#,
    );
    let r = fx.run_cli_env(&rb, &[], &[("TEST_FLAG_XYZ", "false")]);
    r.expect_code(0);
    let text = std::fs::read_to_string(fx.run_dir().join("journal.jsonl")).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == "step_started" {
            assert_eq!(v["rollback"], false, "{line}");
        }
    }
    let log = fx
        .run_dir()
        .join(last_finished(&fx.journal(), "p/s")["log"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(log).unwrap(), "flag is ***\n");
    // `report` reads it back (`everything_shown` asserts exit 0).
    let all = everything_shown(&fx, &r);
    assert!(all.contains("flag is ***") || all.contains("p/s"), "{all}");
}

// The HTTP body kept in the log is cut at 64 KiB: a secret across the cut left its first bytes.
#[test]
fn a_secret_at_the_http_body_limit_leaves_nothing_behind() {
    let fx = Fixture::new();
    let secret = "S3cr3tT0k3n";
    for before in [65_536 - 4, 65_536 - 1, 65_536 - 10] {
        let url = serve(move |_| {
            let mut body = vec![b'x'; before];
            body.extend_from_slice(secret.as_bytes());
            body.extend_from_slice(&[b'y'; 1000]);
            (200, body)
        });
        let rb = fx.write(
            "body.toml",
            &format!(
                r#"
[runbook]
title = "A long body"

[secrets]
TOKEN = {{ env = "TEST_TOKEN_XYZ" }}

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "get"
title = "Get the long body"
http = {{ url = "{url}/long" }}
"#
            ),
        );
        let r = fx.run_cli_env(&rb, &[], &[("TEST_TOKEN_XYZ", secret)]);
        r.expect_code(0);
        let j = fx.journal();
        let log = std::fs::read_to_string(
            fx.run_dir()
                .join(last_finished(&j, "p/get")["log"].as_str().unwrap()),
        )
        .unwrap();
        assert!(!log.contains("xS3"), "{before}: the secret's start is in the log");
        // Masked before the cut: what is left at the cut is (part of) the mask.
        assert!(
            log.contains("x*"),
            "{before}: the secret is masked:\n{}",
            &log[log.len() - 200..]
        );
        assert_absent(&everything_shown(&fx, &r), "the secret", secret);
        std::fs::remove_dir_all(fx.state()).unwrap();
    }
}

// A secret under 3 bytes was silently never masked. It is refused before anything runs.
#[test]
fn a_secret_too_short_to_mask_is_refused_before_anything_runs() {
    let fx = Fixture::new();
    let rb = fx.write(
        "short.toml",
        r#"
[runbook]
title = "A short secret"

[secrets]
PIN = { env = "TEST_PIN_XYZ" }

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "touch ran"
"#,
    );
    for pin in ["7", "42"] {
        let r = fx.run_cli_env(&rb, &[], &[("TEST_PIN_XYZ", pin)]);
        r.expect_code(2);
        let bytes = pin.len();
        assert!(
            r.stderr.contains(&format!(
                "short.toml:6:7: secret `PIN` is {bytes} byte{} long; a secret must be at least 3 bytes to be masked",
                if bytes == 1 { "" } else { "s" }
            )),
            "{}",
            r.stderr
        );
        assert!(!fx.exists("ran"), "nothing runs");
        assert!(fx.run_dirs().is_empty(), "no run is recorded");
    }
    let r = fx.run_cli_env(&rb, &[], &[("TEST_PIN_XYZ", "123")]);
    r.expect_code(0);
}

// `[secrets] file =` naming a FIFO blocked the run before it started; a device was read forever.
#[test]
fn a_secret_file_that_is_not_a_regular_file_is_refused_at_once() {
    let fx = Fixture::new();
    let fifo = fx.file("token.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (file, says) in [
        ("token.fifo", "is a named pipe (FIFO), not a regular file"),
        ("/dev/zero", "is a character device, not a regular file"),
    ] {
        let rb = fx.write(
            "file.toml",
            &format!(
                r#"
[runbook]
title = "A secret from a file"

[secrets]
TOKEN = {{ file = "{file}" }}

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "touch ran"
"#
            ),
        );
        let r = fx.run_cli(&rb, &[]);
        r.expect_code(2);
        assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
        assert!(r.stderr.contains(says), "{file}: {}", r.stderr);
        assert!(!fx.exists("ran"));
        assert!(!Path::new(&fx.state()).join("runs").exists() || fx.run_dirs().is_empty());
    }
}
