//! Run folders and their files (SPEC §10): `0700` / `0600` whatever the umask, `2770` / `0660` for
//! the group of a state dir shared with a group; never world-readable. Checked with real umasks,
//! real Unix users (`nobody`, and a member of the test's group) and real groups. Runs as root.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const GROUP: &str = "rbsecperm";
const MEMBER: &str = "rbsecmember";

/// A runbook whose steps create every kind of file a run folder holds: a command's log (with
/// output), an http step's log, a log for a step whose shell cannot start.
fn runbook(fx: &Fixture) -> PathBuf {
    let srv = TestServer::start(vec![("/ok", Reply::Fixed(200, "fine"))]);
    fx.write(
        "perm.toml",
        &format!(
            r#"
[runbook]
title = "Permissions"

[[phase]]
id = "p"
title = "P"

[[phase.step]]
id = "cmd"
title = "A command"
run = "echo some output; echo more >&2"

[[phase.step]]
id = "http"
title = "A request"
http = {{ url = "{}" }}
"#,
            srv.url("/ok")
        ),
    )
}

/// `runbook run` headless with `umask`, as the shell of an operator would start it.
fn run_with_umask(fx: &Fixture, rb: &Path, state: &Path, umask: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(runbook_bin())
        .args(["run", rb.to_str().unwrap(), "--headless", "--state-dir"])
        .arg(state)
        .current_dir(fx.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every folder and file under `dir`, `dir` included.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn gid_of(group: &str) -> u32 {
    let out = Command::new("getent").args(["group", group]).output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    line.split(':').nth(2).unwrap().trim().parse().unwrap()
}

/// Whether `user` can read `file` (a real `cat` as that user).
fn can_read(user: &str, file: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", user, "--", "cat"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A fixture whose folder anyone may enter, as a home folder often is: only the run folder's
/// own permissions then keep others out.
fn open_fixture() -> Fixture {
    let fx = Fixture::new();
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    fx
}

fn the_run_files(run_dir: &Path) -> Vec<PathBuf> {
    let files = walk(run_dir);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(run_dir).unwrap().display().to_string())
        .collect();
    for want in [
        "journal.jsonl",
        "lock",
        "logs",
        "logs/p--cmd--1.log",
        "logs/p--http--1.log",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    files
}

#[test]
fn run_folders_are_private_whatever_the_umask() {
    for umask in ["022", "000"] {
        let fx = open_fixture();
        let rb = runbook(&fx);
        // A state dir as an older version (or a lax umask) left it: readable by all.
        let state = fx.path().join("state");
        std::fs::create_dir_all(state.join("runs")).unwrap();
        for d in [&state, &state.join("runs")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        run_with_umask(&fx, &rb, &state, umask);
        let run_dir = run_dirs(&state).pop().unwrap();
        for p in the_run_files(&run_dir) {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&p), want, "umask {umask}: {} is {:o}", p.display(), mode(&p));
        }
        assert!(
            !can_read("nobody", &run_dir.join("journal.jsonl")),
            "umask {umask}"
        );
        assert!(
            !can_read("nobody", &run_dir.join("logs/p--cmd--1.log")),
            "umask {umask}"
        );
        assert!(can_read("root", &run_dir.join("journal.jsonl")));
    }
}

#[test]
fn a_new_state_dir_is_private_too() {
    let fx = open_fixture();
    let rb = runbook(&fx);
    let state = fx.path().join("new/state");
    run_with_umask(&fx, &rb, &state, "000");
    for d in [&state, &state.join("runs")] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
}

fn ensure_group_and_member() {
    let _ = Command::new("groupadd").arg(GROUP).stderr(Stdio::null()).status();
    let _ = Command::new("useradd")
        .args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "-G",
            GROUP,
            MEMBER,
        ])
        .stderr(Stdio::null())
        .status();
    assert!(
        Command::new("getent")
            .args(["group", GROUP])
            .output()
            .unwrap()
            .status
            .success(),
        "group {GROUP} could not be made"
    );
}

/// A state dir shared with a group (setgid `2770`, or group-writable `0770` without setgid):
/// run folders `2770` and files `0660`, of that group; its members read them, others do not.
#[test]
fn a_state_dir_shared_with_a_group_gives_it_the_runs() {
    ensure_group_and_member();
    let gid = gid_of(GROUP);
    for shared in [0o2770, 0o770, 0o2750] {
        let fx = open_fixture();
        let rb = runbook(&fx);
        let state = fx.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, None, Some(gid)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(shared)).unwrap();
        run_with_umask(&fx, &rb, &state, "022");
        let run_dir = run_dirs(&state).pop().unwrap();
        for p in std::iter::once(state.join("runs")).chain(the_run_files(&run_dir)) {
            let want = if p.is_dir() { 0o2770 } else { 0o660 };
            assert_eq!(mode(&p), want, "{shared:o}: {} is {:o}", p.display(), mode(&p));
            assert_eq!(
                std::fs::metadata(&p).unwrap().gid(),
                gid,
                "{shared:o}: {}",
                p.display()
            );
        }
        assert!(can_read(MEMBER, &run_dir.join("journal.jsonl")), "{shared:o}");
        assert!(
            can_read(MEMBER, &run_dir.join("logs/p--cmd--1.log")),
            "{shared:o}"
        );
        assert!(!can_read("nobody", &run_dir.join("journal.jsonl")), "{shared:o}");
    }
}

/// A state dir that is private keeps everything private, with the operator's own group.
#[test]
fn a_private_state_dir_shares_nothing() {
    let fx = open_fixture();
    let rb = runbook(&fx);
    let state = fx.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
    run_with_umask(&fx, &rb, &state, "002");
    let run_dir = run_dirs(&state).pop().unwrap();
    for p in the_run_files(&run_dir) {
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }
}
