//! Running commands, below everything that runs them. A step's command runs under its own
//! monitor process (`monitor`), which owns its output, its log, its timeout and its whole process
//! tree, and survives us; `step` is this side of it: starting a monitor, reading its frames
//! (output, a log that cannot be written, how the step ended), asking it to end the step, and
//! finding a monitor that an earlier `runbook` started (`adopt`, for `resume`).
//!
//! Short commands (a metric or a check) run directly (`captured`), each in its own process group,
//! ended with the whole group. Every live group and monitor is registered here so that an exit
//! path that skipped the normal one (a panic) can still end them.
//!
//! Generic over what it sends: output and remarks reach the caller as its own messages, through a
//! [`Sink`]. Knows nothing of runbooks, steps' meaning, or the engine.

mod captured;
pub mod monitor;
mod step;

use std::collections::HashSet;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub use captured::{Captured, run_captured};
pub use step::{Chunk, CommandSpec, RunningCommand, Sink, adopt, spawn, use_monitor};

/// Process groups of this process's commands: those still running, and every one ever made (an
/// orphan adopted from one of those is ours to end).
#[derive(Default)]
struct Groups {
    live: HashSet<i32>,
    created: HashSet<i32>,
    /// Step monitors still running (they left our session; they are not orphans).
    monitors: HashSet<i32>,
    /// Step monitors left to run on after a hand-over: never ended by us.
    released: HashSet<i32>,
}

static GROUPS: Mutex<Option<Groups>> = Mutex::new(None);

fn groups() -> std::sync::MutexGuard<'static, Option<Groups>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

fn unregister(pgid: i32) {
    if let Some(g) = groups().as_mut() {
        g.live.remove(&pgid);
    }
}

/// Makes this process the reaper of its orphaned descendants: a step's process that leaves its
/// group (`setsid`, a daemon's double fork) is re-parented to us instead of to init, so that
/// [`sweep_orphans`] can still find and end it.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only; no memory is shared with the kernel.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Adopted orphans: our children that no running command owns and that came from a group we made
/// (or left our session with `setsid`). Children that the embedding program spawned itself are
/// neither, and are never touched.
fn orphans() -> Vec<i32> {
    let me = std::process::id() as i32;
    let our_session = nix::unistd::getsid(None).map(|s| s.as_raw()).unwrap_or(0);
    // Held during the scan, so that a command being spawned is never mistaken for an orphan.
    let guard = groups();
    let Some(g) = guard.as_ref() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for ProcStat {
        pid,
        ppid,
        pgrp,
        session,
        ..
    } in processes()
    {
        // An orphan in a group that still runs belongs to that step, which ends it when it ends.
        if ppid == me
            && !g.live.contains(&pid)
            && !g.monitors.contains(&pid)
            && !g.released.contains(&pid)
            && !g.live.contains(&pgrp)
            && (g.created.contains(&pgrp) || session != our_session)
        {
            found.push(pid);
        }
    }
    found
}

/// A process as `/proc/PID/stat` shows it.
struct ProcStat {
    pid: i32,
    zombie: bool,
    ppid: i32,
    pgrp: i32,
    session: i32,
}

/// Every process in /proc, read from "pid (comm) state ppid pgrp session ..." (comm may hold
/// spaces and parentheses); one that ends while it is read is left out.
fn processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let zombie = fields.next() == Some("Z");
        let numbers: Vec<i32> = fields.take(3).filter_map(|f| f.parse().ok()).collect();
        let [ppid, pgrp, session] = numbers[..] else {
            continue;
        };
        found.push(ProcStat {
            pid,
            zombie,
            ppid,
            pgrp,
            session,
        });
    }
    found
}

/// Reaps adopted orphans that have already exited, without waiting.
fn reap_adopted() {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    for pid in orphans() {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Ends (SIGTERM, SIGKILL after `grace`) and reaps every orphan adopted from finished steps.
/// Returns how many there were.
pub async fn sweep_orphans(grace: Duration) -> usize {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pids = orphans();
    for &pid in &pids {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    let mut left: Vec<i32> = pids.clone();
    while !left.is_empty() {
        left.retain(|&pid| {
            !matches!(
                waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)
            )
        });
        if left.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            for &pid in &left {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pids.len()
}

/// Kills every running group and adopted orphan at once (SIGKILL), and asks every step monitor to
/// end its step (it does so by itself, with the grace period). For exit paths that cannot wait.
pub fn kill_all_now() {
    let monitors: Vec<i32> = groups()
        .as_ref()
        .map(|g| g.monitors.iter().copied().collect())
        .unwrap_or_default();
    for pid in monitors {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    for pid in orphans() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let live: Vec<i32> = groups()
        .as_ref()
        .map(|g| g.live.iter().copied().collect())
        .unwrap_or_default();
    for g in live {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Spawns a command (already set to start its own process group) and registers its group, both
/// under the registry's lock, so that a concurrent `orphans` scan never sees it unregistered.
fn spawn_registered(cmd: &mut tokio::process::Command) -> std::io::Result<(tokio::process::Child, i32)> {
    let mut guard = groups();
    let child = cmd.spawn()?;
    let pgid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| std::io::Error::other("the command exited before it could be tracked"))?;
    let g = guard.get_or_insert_with(Groups::default);
    g.live.insert(pgid);
    g.created.insert(pgid);
    Ok((child, pgid))
}

/// A short command's exit code, or 128 + the signal that killed it.
fn exit_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => -1,
    }
}
