//! Input that is too big or never ends: a Prometheus answer of 50 MB, and `import` / `resume` of
//! a device or a FIFO. Each is refused with a plain message, at once, in bounded memory.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `cmd` to its end (killed after `limit`), watching its peak memory (VmHWM, in KiB).
fn run_measured(cmd: &mut Command, limit: Duration) -> (std::process::Output, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let start = Instant::now();
    // Drain the pipes meanwhile, so that a chatty child never blocks on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = std::process::Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    };
    (output, peak)
}

// A 50 MB answer drove the memory of `runbook` to ~65 MB: every byte was read, then parsed.
#[test]
fn a_huge_prometheus_answer_is_refused_in_bounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A JSON answer padded with spaces to 50 MB, made once.
    let size = 50 * 1024 * 1024;
    let mut body = br#"{"status":"success","data":{"resultType":"vector","result":["#.to_vec();
    body.resize(size, b' ');
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            });
        }
    });
    let fx = Fixture::new();
    let rb = fx.write(
        "huge.toml",
        &format!(
            r#"
[runbook]
title = "A huge answer"

[metrics]
url = "http://127.0.0.1:{port}"
interval = "1s"

[[metric]]
id = "errors"
title = "Errors"
query = "sum(rate(errors_total[1m]))"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "s"
title = "S"
run = "sleep 1.5"
"#
        ),
    );
    let mut cmd = fx.cli_command(&rb, &[], &[]);
    let (out, peak_kib) = run_measured(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let says = "metric errors: Prometheus' answer is larger than 1 MiB; the query must return one number";
    assert!(
        stdout.contains(says) || stderr.contains(says),
        "{stdout}\n{stderr}"
    );
    let j = fx.journal();
    let sampled = events(&j, "metrics_sampled");
    assert!(!sampled.is_empty());
    for s in sampled {
        assert!(s["values"]["errors"].is_null(), "{s}");
        assert!(
            s["errors"]["errors"]
                .as_str()
                .unwrap()
                .contains("larger than 1 MiB"),
            "{s}"
        );
    }
    assert!(peak_kib < 30 * 1024, "peak memory {peak_kib} KiB");
}

fn refused_at_once(args: &[&str], says: &str) {
    let fx = Fixture::new();
    let mut cmd = Command::new(runbook_bin());
    cmd.args(args).current_dir(fx.path());
    let (out, peak_kib) = run_measured(&mut cmd, Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert!(peak_kib < 30 * 1024, "{args:?}: peak memory {peak_kib} KiB");
}

fn fifo(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    assert!(Command::new("mkfifo").arg(&path).status().unwrap().success());
    path.display().to_string()
}

// `import /dev/zero` read forever (gigabytes in seconds); a FIFO without a writer blocked.
#[test]
fn import_of_a_device_or_a_fifo_is_refused_at_once() {
    let dir = tempfile::TempDir::new().unwrap();
    refused_at_once(
        &["import", "/dev/zero"],
        "runbook: /dev/zero: is a character device, not a regular file",
    );
    let f = fifo(dir.path(), "checklist.md");
    refused_at_once(
        &["import", &f],
        &format!("runbook: {f}: is a named pipe (FIFO), not a regular file"),
    );
}

#[test]
fn resume_of_a_fifo_is_refused_at_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let f = fifo(&run, "journal.jsonl");
    let state = dir.path().join("state");
    refused_at_once(
        &[
            "resume",
            run.to_str().unwrap(),
            "--headless",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &format!("{f}: is a named pipe (FIFO), not a regular file"),
    );
}
