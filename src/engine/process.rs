//! Running a step's command: `<shell> -c <run>` in its own process group, stdin from /dev/null,
//! stdout and stderr on one pipe (so they interleave in the order they were written), the output
//! pumped to the step's log file in full and to the front end as whole lines.
//!
//! Ending a command always means the whole group: SIGTERM, then SIGKILL after the grace period,
//! so a shell's grandchildren die with it. Every live group is registered so that an exit path
//! that skipped the normal one (a panic) can still kill them.

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::secrets::Redactor;

/// Process groups of this process's commands: those still running, and every one ever made (an
/// orphan adopted from one of those is ours to end).
#[derive(Default)]
struct Groups {
    live: HashSet<i32>,
    created: HashSet<i32>,
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
        // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<i32> = rest
            .split_whitespace()
            .skip(1)
            .take(3)
            .filter_map(|f| f.parse().ok())
            .collect();
        let [ppid, pgrp, session] = fields[..] else {
            continue;
        };
        // An orphan in a group that still runs belongs to that step, which ends it when it ends.
        if ppid == me
            && !g.live.contains(&pid)
            && !g.live.contains(&pgrp)
            && (g.created.contains(&pgrp) || session != our_session)
        {
            found.push(pid);
        }
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

/// Kills every running group and adopted orphan at once (SIGKILL). For exit paths that cannot wait.
pub fn kill_all_now() {
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

/// Output read from a command: whole lines (or a piece of a very long line), already masked.
#[derive(Debug)]
pub struct Chunk {
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// Where a command's output goes besides its log: the front end, tagged with the step.
pub type OutputSink = Box<dyn Fn(Chunk) -> super::Update + Send + Sync>;

/// How much log is written before its writeback to disk is started.
const WRITEBACK_EVERY: u64 = 4 << 20;

/// Read size; also the longest piece of a line without a newline that is passed on at once.
const READ_SIZE: usize = 64 * 1024;

/// What to run and where.
pub struct CommandSpec<'a> {
    pub shell: &'a str,
    pub command: &'a str,
    pub workdir: &'a Path,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// A running command and the task pumping its output.
pub struct RunningCommand {
    child: tokio::process::Child,
    pgid: i32,
    pump: tokio::task::JoinHandle<std::io::Result<u64>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// The exit code, or 128 + signal number when the shell was killed by a signal.
    pub code: i32,
    pub signal: Option<i32>,
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (s.code(), s.signal()) {
            (Some(c), _) => Exit {
                code: c,
                signal: None,
            },
            (None, Some(sig)) => Exit {
                code: 128 + sig,
                signal: Some(sig),
            },
            _ => Exit {
                code: -1,
                signal: None,
            },
        }
    }
}

/// Starts the command. Output goes to `spec.log` and, as chunks, to `out`.
pub fn spawn(
    spec: CommandSpec<'_>,
    redactor: Redactor,
    out: mpsc::Sender<super::Update>,
    tag: OutputSink,
) -> std::io::Result<RunningCommand> {
    let log = crate::journal::create_private_file(&spec.log)?;
    let (reader, writer) = std::io::pipe()?;
    // A larger pipe lets a chatty command run ahead of us; failure to grow it is harmless.
    let _ = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let writer2 = writer.try_clone()?;
    let mut cmd = tokio::process::Command::new(spec.shell);
    cmd.arg("-c")
        .arg(spec.command)
        .current_dir(spec.workdir)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(false);
    let (child, pgid) = spawn_registered(&mut cmd).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot start `{}` in {}: {e}", spec.shell, spec.workdir.display()),
        )
    })?;
    // The write ends must close in this process, or the pipe never reaches end-of-file.
    drop(cmd);
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let pump = tokio::spawn(pump(receiver, log, redactor, out, tag));
    Ok(RunningCommand { child, pgid, pump })
}

/// Reads until end-of-file: the log gets every byte (masked); `out` gets whole lines.
async fn pump(
    mut rx: tokio::net::unix::pipe::Receiver,
    log: std::fs::File,
    redactor: Redactor,
    out: mpsc::Sender<super::Update>,
    tag: OutputSink,
) -> std::io::Result<u64> {
    let mut log = std::io::BufWriter::with_capacity(256 * 1024, log);
    let mut pending: Vec<u8> = Vec::with_capacity(2 * READ_SIZE);
    let mut total = 0u64;
    let (mut written, mut synced) = (0u64, 0u64);
    let hold = redactor.longest().saturating_sub(1);
    let mut front_open = true;
    loop {
        pending.reserve(READ_SIZE);
        let n = rx.read_buf(&mut pending).await?;
        let eof = n == 0;
        total += n as u64;
        // Mask before cutting: every secret wholly inside `pending` is masked now, and one still
        // arriving starts within the last `hold` bytes, which a cut inside a long line keeps back.
        if let Some(masked) = redactor.redact(&pending) {
            pending = masked;
        }
        // Cut after the last newline; a long line without one is passed on in pieces.
        let cut = if eof {
            pending.len()
        } else {
            match memchr::memrchr(b'\n', &pending) {
                Some(i) => i + 1,
                None if pending.len() >= READ_SIZE && pending.len() > hold => pending.len() - hold,
                None => 0,
            }
        };
        if cut > 0 {
            let rest = pending[cut..].to_vec();
            pending.truncate(cut);
            let ready = std::mem::replace(&mut pending, rest);
            log.write_all(&ready)?;
            written += ready.len() as u64;
            if written - synced >= WRITEBACK_EVERY {
                // Start writing the log to disk now, so that the fsync at the end has little left.
                log.flush()?;
                start_writeback(log.get_ref(), synced, written - synced);
                synced = written;
            }
            if front_open
                && out
                    .send(tag(Chunk {
                        at: SystemTime::now(),
                        bytes: ready,
                    }))
                    .await
                    .is_err()
            {
                // Nobody is listening any more; the log still gets everything.
                front_open = false;
            }
        }
        if eof {
            break;
        }
    }
    log.flush()?;
    log.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    Ok(total)
}

/// What a short command (a metric or a check) printed, and how it ended.
pub struct Captured {
    pub exit: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The most output kept from a metric or check command.
const CAPTURE_LIMIT: usize = 64 * 1024;

/// Runs a short command in its own process group and captures its output. Past `timeout` the
/// group is killed and the error says so. Nothing of it is left running.
pub async fn run_captured(
    shell: &str,
    command: &str,
    workdir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Captured, String> {
    use tokio::io::AsyncReadExt as _;
    let mut cmd = tokio::process::Command::new(shell);
    cmd.arg("-c")
        .arg(command)
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let (mut child, pgid) = spawn_registered(&mut cmd)
        .map_err(|e| format!("cannot start `{shell}` in {}: {e}", workdir.display()))?;
    // If this future is dropped (the run stopped watching), the command goes with it.
    let _group = GroupGuard(pgid);
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            let _ = (&mut stdout)
                .take(CAPTURE_LIMIT as u64)
                .read_to_end(&mut out)
                .await;
        };
        let read_err = async {
            let _ = (&mut stderr)
                .take(CAPTURE_LIMIT as u64)
                .read_to_end(&mut err)
                .await;
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (status, out, err)
    };
    let result = tokio::time::timeout(timeout, work).await;
    let pg = Pid::from_raw(pgid);
    let outcome = match result {
        Ok((Ok(status), stdout, stderr)) => Ok(Captured {
            exit: Exit::from(status).code,
            stdout,
            stderr,
        }),
        Ok((Err(e), _, _)) => Err(format!("waiting for the command: {e}")),
        Err(_) => Err(format!(
            "no answer within {}",
            crate::duration::format_duration(timeout)
        )),
    };
    // Whatever it left behind in its group goes with it (the guard kills the group).
    let _ = pg;
    drop(_group);
    reap_adopted();
    outcome
}

/// Kills a short command's whole group when dropped, however its future ended.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
        }
        unregister(self.0);
    }
}

/// Asks the kernel to start writing a range of the file to disk, without waiting for it.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor we own; it reads no memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

impl RunningCommand {
    /// Waits for the shell to exit.
    pub async fn wait(&mut self) -> std::io::Result<Exit> {
        Ok(self.child.wait().await?.into())
    }

    /// SIGTERM to the whole group, SIGKILL after `grace`; returns once the shell has exited.
    pub async fn terminate(&mut self, grace: Duration) -> std::io::Result<Exit> {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok(status?.into()),
            Err(_) => {
                let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
                Ok(self.child.wait().await?.into())
            }
        }
    }

    /// After the shell has exited: ends what it left behind in its group (SIGTERM, then SIGKILL
    /// after `grace`), then waits for the output to be fully written. Returns whether leftover
    /// processes had to be ended.
    pub async fn finish(mut self, grace: Duration) -> std::io::Result<bool> {
        let pg = Pid::from_raw(self.pgid);
        let mut leftovers = false;
        unregister(self.pgid);
        // As subreaper we adopt the group's dead: reap them, or they would count as members.
        reap_adopted();
        if killpg(pg, None).is_ok() {
            leftovers = true;
            let _ = killpg(pg, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                reap_adopted();
                if killpg(pg, None).is_err() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = killpg(pg, Signal::SIGKILL);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reap_adopted();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if sweep_orphans(grace).await > 0 {
            leftovers = true;
        }
        // A process that left the group (setsid) may still hold the pipe: don't wait forever.
        match tokio::time::timeout(Duration::from_secs(2), &mut self.pump).await {
            Ok(Ok(r)) => r.map(|_| leftovers),
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                self.pump.abort();
                Ok(leftovers)
            }
        }
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        // Dropped without `finish` (an error path): nothing of it may outlive us.
        if self.pgid > 0 && (self.child.id().is_some() || killpg(Pid::from_raw(self.pgid), None).is_ok()) {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
        unregister(self.pgid);
    }
}
