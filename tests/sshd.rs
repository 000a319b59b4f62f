//! SIGHUP over a real SSH connection (issue 5, SPEC §5): the terminal UI runs on the far side of
//! `ssh -tt` to a real `sshd` on 127.0.0.1, and the SSH client is killed mid-step. The remote
//! `runbook` hears SIGHUP when the connection drops: the step in flight runs to its end with its
//! output going to its log, its result is journaled, nothing further starts, and the run is left
//! for `runbook resume`.
//!
//! `sshd` is Debian's `openssh-server` (/usr/sbin/sshd), `ssh` and `ssh-keygen` Debian's
//! `openssh-client`, both installed by `.ci/run`. When they are missing this test fails and says
//! so; it never skips. Everything listens on 127.0.0.1 only; keys and config live in a temporary
//! folder; sshd is a child of the test, ended when the test ends.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tempfile::TempDir;

const SSHD: &str = "/usr/sbin/sshd";
const INSTALL: &str = ".ci/run installs them: apt-get install -y --no-install-recommends \
                       openssh-server openssh-client";

/// Fails (never skips) when the SSH programs are not installed.
fn require_ssh() {
    let mut missing = Vec::new();
    if !Path::new(SSHD).is_file() {
        missing.push(format!("{SSHD} (Debian package openssh-server)"));
    }
    for (prog, arg) in [("ssh", "-V"), ("ssh-keygen", "-?")] {
        if Command::new(prog)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            missing.push(format!("{prog} (Debian package openssh-client)"));
        }
    }
    assert!(
        missing.is_empty(),
        "this test needs a real sshd and ssh client, but {} {} missing; {INSTALL}",
        missing.join(" and "),
        if missing.len() == 1 { "is" } else { "are" }
    );
}

/// The account this test runs as: the one it logs in to over SSH.
fn login_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the name of this account")
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-t", "ed25519", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "ssh-keygen -f {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real sshd on 127.0.0.1 with a host key and one authorized client key of its own.
struct Sshd {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Sshd {
    fn start() -> Sshd {
        require_ssh();
        let dir = tempfile::Builder::new()
            .prefix("runbook-sshd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        // The port is free when chosen; if sshd loses it to someone else, try another.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\n\
                     Port {port}\n\
                     HostKey {host_key}\n\
                     AuthorizedKeysFile {keys}\n\
                     PidFile {pid}\n\
                     StrictModes no\n\
                     UsePAM no\n\
                     PermitRootLogin prohibit-password\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     X11Forwarding no\n\
                     AllowTcpForwarding no\n\
                     PrintMotd no\n\
                     LogLevel ERROR\n",
                    host_key = d.join("host_key").display(),
                    keys = d.join("authorized_keys").display(),
                    pid = d.join("sshd.pid").display(),
                ),
            )
            .unwrap();
            let log = d.join("sshd.log");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}; {INSTALL}"));
            let up = wait_for(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_))) || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Sshd { child, dir, port };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not start on 127.0.0.1:\n{last_log}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `ssh -tt ... user@127.0.0.1 COMMAND`: a pty on the far side, so the terminal UI runs.
    /// Its stdin is a pipe the caller keeps open; its output is read and dropped.
    fn ssh_tt(&self, remote_command: &str) -> Child {
        let key = self.dir.path().join("client_key");
        let mut child = Command::new("ssh")
            .arg("-tt")
            .args(["-F", "/dev/null"])
            .arg("-i")
            .arg(&key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", login_name()))
            .arg(remote_command)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ssh: {e}; {INSTALL}"));
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut { out }, &mut std::io::sink());
            });
        }
        child
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HUP: &str = r#"
[runbook]
title = "Hang-up over SSH"

[[phase]]
id = "p"
title = "Phase"

[[phase.step]]
id = "long"
title = "Long step"
run = "echo x >> long.cnt; echo start; sleep 3; echo end; date > long.txt"

[[phase.step]]
id = "next"
title = "Next step"
run = "touch next.txt"
"#;

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn sighup_over_ssh_lets_the_step_finish_starts_nothing_more_and_resume_goes_on() {
    let sshd = Sshd::start();
    let fx = Fixture::new();
    let rb = fx.write("hup.toml", HUP);
    let remote_err = fx.file("remote-stderr.txt");
    let remote = format!(
        "cd {} && {} run {} --state-dir {} 2>{}",
        shell_quote(fx.path()),
        shell_quote(runbook_bin()),
        shell_quote(&rb),
        shell_quote(&fx.state()),
        shell_quote(&remote_err),
    );
    let mut ssh = sshd.ssh_tt(&remote);

    // Wait until the long step runs on the far side.
    let mut run_dir: Option<PathBuf> = None;
    let running = wait_for(Duration::from_secs(20), || {
        run_dir = fx.run_dirs().into_iter().next();
        run_dir.as_ref().is_some_and(|d| {
            journal_now(&d.join("journal.jsonl"))
                .iter()
                .any(|e| e["event"] == "step_started" && step_name(e) == "p/long")
        }) && !fx.read("long.cnt").is_empty()
    });
    if !running {
        let _ = ssh.kill();
        panic!(
            "the remote run did not reach p/long within 20 s\nremote stderr:\n{}\nsshd log:\n{}",
            fx.read("remote-stderr.txt"),
            sshd.log()
        );
    }
    let run_dir = run_dir.unwrap();
    let journal = run_dir.join("journal.jsonl");
    let j = journal_now(&journal);
    let remote_pid = events(&j, "run_started")[0]["pid"].as_i64().expect("pid") as i32;
    assert_eq!(
        events(&j, "run_started")[0]["mode"],
        "run",
        "the remote side ran the terminal UI's `run`"
    );
    assert!(
        !fx.exists("long.txt"),
        "the step had not finished when the connection dropped"
    );

    // The connection drops: the client dies without a word.
    let dropped = Instant::now();
    ssh.kill().expect("kill ssh");
    let _ = ssh.wait();
    drop(ssh);

    let ended = wait_for(Duration::from_secs(6), || {
        !events(&journal_now(&journal), "run_finished").is_empty() && process_gone(remote_pid)
    });
    if !ended {
        kill_pids(&[remote_pid]);
    }
    assert!(
        ended,
        "within 6 s of the dropped connection the remote run must have finished its step and \
         exited (waited {:?}); journal:\n{:#?}\nremote stderr:\n{}",
        dropped.elapsed(),
        step_trace(&journal_now(&journal)),
        fx.read("remote-stderr.txt")
    );
    assert!(fx.exists("long.txt"), "the step in flight ran to its end");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !fx.exists("next.txt"),
        "the next step must not start after SIGHUP"
    );

    let j = journal_json(&journal);
    let long = last_finished(&j, "p/long");
    assert_eq!(long["status"], "succeeded", "{long}");
    assert_eq!(long["exit_code"], 0);
    assert_eq!(started(&j), ["p/long#1"]);
    let fin = event(&j, "run_finished");
    assert_eq!(fin["outcome"], "interrupted", "{fin}");
    assert_eq!(fin["exit_code"], 130);
    assert!(fin["reason"].as_str().unwrap_or("").contains("SIGHUP"), "{fin}");
    let log = std::fs::read_to_string(run_dir.join(long["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("start") && log.contains("end"), "log: {log:?}");

    // Back at a terminal: resume carries on.
    let out = Command::new(runbook_bin())
        .args(["resume", "--headless", "--yes", "--state-dir"])
        .arg(fx.state())
        .current_dir(fx.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runbook resume");
    let r = CliRun::new(wait_output(out, Duration::from_secs(30)), Duration::ZERO);
    r.expect_code(0);
    assert!(fx.exists("next.txt"));
    assert_eq!(
        fx.read("long.cnt").lines().count(),
        1,
        "the finished step did not run again"
    );
    let j = journal_json(&journal);
    assert_eq!(started(&j), ["p/long#1", "p/next#1"]);
    let modes: Vec<&Value> = events(&j, "run_started").iter().map(|e| &e["mode"]).collect();
    assert_eq!(modes, ["run", "resume"]);
}
