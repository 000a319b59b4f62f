//! Running commands. A step's command runs under its own monitor process (`monitor`), which owns
//! its output, its log, its timeout and its whole process tree, and survives us; here is the
//! engine's side of it: starting a monitor, reading its frames (output, a log that cannot be
//! written, how the step ended), asking it to end the step, and finding a monitor that an earlier
//! `runbook` started (`adopt`, for `resume`).
//!
//! Short commands (a metric or a check) run here directly, each in its own process group, ended
//! with the whole group. Every live group and monitor is registered so that an exit path that
//! skipped the normal one (a panic) can still end them.

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::monitor::{self, Ended, MonitorSpec};
use crate::secrets::Redactor;

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

/// Output read from a command: whole lines (or a piece of a very long line), already masked.
#[derive(Debug)]
pub struct Chunk {
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// Where a command's output goes besides its log: the front end, tagged with the step.
pub type OutputSink = Box<dyn Fn(Chunk) -> super::Update + Send + Sync>;

/// A short command's exit code, or 128 + the signal that killed it.
fn exit_code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => -1,
    }
}

/// The program that monitors a step: this very binary, unless an embedding program (the tests)
/// names the `runbook` binary with [`use_monitor`].
static MONITOR: OnceLock<PathBuf> = OnceLock::new();

/// Names the `runbook` binary that runs step monitors (`runbook __monitor`).
pub fn use_monitor(program: impl Into<PathBuf>) {
    let _ = MONITOR.set(program.into());
}

fn monitor_program() -> PathBuf {
    if let Some(p) = MONITOR.get() {
        return p.clone();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    if exe.file_name().is_some_and(|n| n != "runbook") {
        // A program embedding the engine (cargo's test binaries live in target/*/deps, beside
        // which cargo puts the `runbook` binary one folder up).
        if let Some(bin) = exe.parent().and_then(Path::parent).map(|d| d.join("runbook"))
            && bin.is_file()
        {
            return bin;
        }
    }
    // /proc/self/exe still runs this binary after it was replaced on disk (an upgrade mid-run).
    PathBuf::from("/proc/self/exe")
}

/// What to run and where.
pub struct CommandSpec<'a> {
    pub shell: &'a str,
    pub command: &'a str,
    pub workdir: &'a Path,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    /// The step's status file (see `monitor`).
    pub status: PathBuf,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// `phase/step`, for remarks.
    pub label: String,
}

/// A step's command, running under its monitor: one this process started, or one it found
/// still running when it resumed the run.
pub struct RunningCommand {
    monitor: i32,
    /// The monitor's start time, so that a reused pid is never signalled.
    monitor_start: u64,
    how: Following,
}

enum Following {
    /// Our child: its frames arrive on a pipe.
    Child {
        child: tokio::process::Child,
        frames: tokio::task::JoinHandle<Option<Ended>>,
        status: PathBuf,
    },
    /// Started by an earlier `runbook`: its end is seen through a pidfd, its output by reading
    /// its log as it grows, and how it ended in its status file.
    Adopted {
        pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
        status: PathBuf,
        tail: tokio::task::JoinHandle<()>,
    },
    Done,
}

/// Starts the command under a monitor. Output goes to `spec.log` and, as chunks, to `out`.
pub async fn spawn(
    spec: CommandSpec<'_>,
    redactor: &Redactor,
    out: mpsc::Sender<super::Update>,
    tag: OutputSink,
) -> std::io::Result<RunningCommand> {
    use tokio::io::AsyncWriteExt;
    let program = monitor_program();
    let status = spec.status;
    let monitor_spec = MonitorSpec {
        shell: spec.shell.to_string(),
        command: spec.command.to_string(),
        workdir: spec.workdir.to_path_buf(),
        env: spec.env,
        masks: redactor.values().to_vec(),
        log: spec.log,
        status: status.clone(),
        timeout_ms: spec.timeout.map(|t| t.as_millis() as u64),
        grace_ms: spec.grace.as_millis() as u64,
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg("__monitor")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    // Born with SIGTERM blocked: a request to end the step that comes before the monitor can
    // handle it waits for it (pending), instead of killing the monitor unheard.
    // SAFETY: between fork and exec only async-signal-safe calls (sigprocmask) are made.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(Signal::SIGTERM);
            set.thread_block().map_err(std::io::Error::from)
        });
    }
    let mut child = {
        let mut guard = groups();
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start the step monitor {}: {e}", program.display()),
            )
        })?;
        let pid = child.id().unwrap_or(0) as i32;
        guard.get_or_insert_with(Groups::default).monitors.insert(pid);
        child
    };
    let pid = child.id().unwrap_or(0) as i32;
    let json = serde_json::to_vec(&monitor_spec).map_err(std::io::Error::other)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&json).await?;
        // Dropped: end-of-file tells the monitor its spec is complete.
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the step monitor has no stdout"))?;
    // A larger pipe lets a chatty step run ahead of the front end; failure to grow it is harmless.
    let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let frames = tokio::spawn(read_frames(stdout, out, tag, spec.label));
    Ok(RunningCommand {
        monitor: pid,
        monitor_start: monitor::start_time(pid).unwrap_or(0),
        how: Following::Child {
            child,
            frames,
            status,
        },
    })
}

/// Reads the monitor's frames until it closes its stdout: output to the front end (while it
/// listens; the frames are read to the end either way, so the monitor never blocks on us), a
/// log that cannot be written as a remark, and how the step ended.
async fn read_frames(
    rx: tokio::process::ChildStdout,
    out: mpsc::Sender<super::Update>,
    tag: OutputSink,
    label: String,
) -> Option<Ended> {
    // Buffered: a frame's header and a chatty step's small frames take one read, not one each.
    let mut rx = tokio::io::BufReader::with_capacity(256 * 1024, rx);
    let mut ended = None;
    let mut front_open = true;
    loop {
        let mut head = [0u8; 5];
        if rx.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len];
        if rx.read_exact(&mut payload).await.is_err() {
            break;
        }
        let update = match head[0] {
            monitor::FRAME_OUTPUT => tag(Chunk {
                at: SystemTime::now(),
                bytes: payload,
            }),
            monitor::FRAME_LOG_ERROR => super::Update::Message(format!(
                "{label}: {}; the step goes on, nothing further will start after it",
                String::from_utf8_lossy(&payload)
            )),
            monitor::FRAME_ENDED => {
                ended = serde_json::from_slice(&payload).ok();
                continue;
            }
            _ => continue,
        };
        if front_open && out.send(update).await.is_err() {
            front_open = false;
        }
    }
    ended
}

/// Finds a step's command that an earlier `runbook` started and that is still running under its
/// monitor; `None` when its monitor is gone.
pub fn adopt(
    status: &Path,
    log: &Path,
    out: mpsc::Sender<super::Update>,
    tag: OutputSink,
) -> Option<RunningCommand> {
    let record = monitor::read_status(status)?;
    if record.ended.is_some() || !monitor::monitor_alive(&record) {
        return None;
    }
    // SAFETY: a plain syscall with integer arguments; the descriptor it returns is ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, record.monitor_pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nothing else.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // SAFETY: the OwnedFd is moved into the AsyncFd, which alone owns and closes it.
    let pidfd =
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .ok()?;
    let tail = tokio::spawn(tail_log(log.to_path_buf(), out, tag));
    Some(RunningCommand {
        monitor: record.monitor_pid,
        monitor_start: record.monitor_start,
        how: Following::Adopted {
            pidfd,
            status: status.to_path_buf(),
            tail,
        },
    })
}

/// How much of an adopted step's log is shown from before we found it.
const TAIL_BACKLOG: u64 = 64 * 1024;

/// Shows an adopted step's log as it grows: its last part first, then whole lines as they come.
async fn tail_log(log: PathBuf, out: mpsc::Sender<super::Update>, tag: OutputSink) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(&log) else {
        return;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BACKLOG)));
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        if let Some(i) = memchr::memrchr(b'\n', &pending) {
            let rest = pending.split_off(i + 1);
            let ready = std::mem::replace(&mut pending, rest);
            let chunk = Chunk {
                at: SystemTime::now(),
                bytes: ready,
            };
            if out.send(tag(chunk)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl RunningCommand {
    /// Waits for the step's command to end (and its monitor with it): how it ended, or why that
    /// is not known.
    pub async fn wait(&mut self) -> Result<Ended, String> {
        let result = match &mut self.how {
            Following::Child {
                child,
                frames,
                status,
            } => {
                let ended = frames.await.ok().flatten();
                let _ = child.wait().await;
                if ended.is_none() {
                    // The monitor was killed: its step, orphaned to us, goes too.
                    if let Some(shell) = monitor::read_status(status).map(|s| s.pid).filter(|&p| p > 0) {
                        let _ = killpg(Pid::from_raw(shell), Signal::SIGKILL);
                    }
                    sweep_orphans(Duration::from_secs(1)).await;
                }
                ended.ok_or_else(|| "the step's monitor ended without saying how the step ended".to_string())
            }
            Following::Adopted { pidfd, status, tail } => {
                let _ = pidfd.readable().await;
                // The last of the log, then stop following it.
                tokio::time::sleep(Duration::from_millis(250)).await;
                tail.abort();
                monitor::read_status(status).and_then(|s| s.ended).ok_or_else(|| {
                    "the step's monitor ended without recording how the step ended".to_string()
                })
            }
            Following::Done => Err("the step was already waited for".to_string()),
        };
        if let Some(g) = groups().as_mut() {
            g.monitors.remove(&self.monitor);
        }
        self.how = Following::Done;
        result
    }

    /// Lets the command run on under its monitor without this process (the run was handed over:
    /// the new driver follows it). It is no longer ours to end when we exit.
    pub fn release(&mut self) {
        if let Some(g) = groups().as_mut() {
            g.monitors.remove(&self.monitor);
            g.released.insert(self.monitor);
        }
        // Nothing of ours reads its output any more (the monitor goes on writing its log).
        match &self.how {
            Following::Adopted { tail, .. } => tail.abort(),
            Following::Child { frames, .. } => frames.abort(),
            Following::Done => {}
        }
        self.how = Following::Done;
    }

    /// Asks the monitor to end the step's whole tree (SIGTERM, SIGKILL after the grace period);
    /// `wait` then says how it ended.
    pub fn terminate(&self) {
        if !matches!(self.how, Following::Done)
            && monitor::start_time(self.monitor) == Some(self.monitor_start)
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.monitor), Signal::SIGTERM);
        }
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        // Dropped before its end (an error path): the monitor ends the step's tree by itself.
        self.terminate();
        if let Following::Adopted { tail, .. } = &self.how {
            tail.abort();
        }
    }
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
    let outcome = match result {
        Ok((Ok(status), stdout, stderr)) => Ok(Captured {
            exit: exit_code(status),
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
