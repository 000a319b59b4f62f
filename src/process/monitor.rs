//! The step monitor: a small process of its own (`runbook __monitor`) that owns one step's
//! command, the way conmon owns a container for podman. It outlives `runbook` if `runbook` dies:
//!
//! - it runs `<shell> -c <command>` in a new process group, stdin from /dev/null, stdout and stderr
//!   on one pipe, and is the subreaper of everything the command starts, so the step's whole tree
//!   stays below it whatever group or session a process moves to;
//! - it writes the (masked) output to the step's log as it arrives, one `write` per read, so a
//!   second session can `tail -f` it and a crash of `runbook` loses nothing; a log that cannot be
//!   written (disk full) is reported, and the pipe is still drained: the step is never blocked or
//!   killed because of it;
//! - it forwards the same output to `runbook` in frames on its stdout, while anyone reads them;
//! - it enforces the step's timeout itself (a stopped or dead `runbook` cannot turn a step that
//!   ended in time into a timeout, nor let one run past it);
//! - on SIGTERM (`runbook` cancelling the step) it ends the whole tree: SIGTERM to every
//!   descendant, SIGKILL after the grace period;
//! - when the shell exits it ends whatever the step left running, drains the pipe, syncs the log,
//!   and records how the step ended in the step's status file (`logs/<step>.status`, JSON), which
//!   `runbook resume` reads when `runbook` was not there to see the end.
//!
//! The side of `runbook` (spawning it, reading its frames, asking it to stop) is in `step`.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::files::create_private_file;
use crate::mask::Redactor;

/// What the monitor runs; sent as JSON on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorSpec {
    pub shell: String,
    pub command: String,
    pub workdir: PathBuf,
    pub env: Vec<(String, String)>,
    /// What to mask in the output (the redactor's needles).
    pub masks: Vec<String>,
    pub log: PathBuf,
    pub status: PathBuf,
    pub timeout_ms: Option<u64>,
    pub grace_ms: u64,
}

/// The step's status file: written when the command has started, rewritten when it has ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepStatusFile {
    /// The monitor's pid and its start time (clock ticks since boot, from /proc), which together
    /// name the process even after its pid is reused.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// The shell's pid, which is also the step's process group.
    pub pid: i32,
    /// `None` while the step runs.
    pub ended: Option<Ended>,
}

/// How a step's command ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ended {
    /// The shell's exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// The monitor ended it at its timeout.
    pub timed_out: bool,
    /// The monitor ended it because `runbook` asked (SIGTERM).
    pub terminated: bool,
    /// Processes it left running were ended after the shell exited.
    pub leftovers: bool,
    /// From the start to the shell's exit, as the monitor measured it.
    pub duration_ms: u64,
    /// Why the log is incomplete, when it could not be written.
    pub log_error: Option<String>,
    /// Why the command could not be started at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// Frames on the monitor's stdout: a tag byte, a little-endian u32 length, the payload.
pub const FRAME_OUTPUT: u8 = b'O';
pub const FRAME_LOG_ERROR: u8 = b'E';
pub const FRAME_ENDED: u8 = b'X';

/// Read size; also the longest piece of a line without a newline that is passed on at once.
const READ_SIZE: usize = 64 * 1024;

/// Output is written to the log and passed on at most this long after the step wrote it...
const FLUSH_AFTER: Duration = Duration::from_millis(5);
/// ...or as soon as this much has arrived.
const FLUSH_SIZE: usize = 256 * 1024;

/// `runbook __monitor`: reads its spec on stdin and runs it. Returns the process exit code.
pub fn main() -> i32 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 2;
    }
    let Ok(spec) = serde_json::from_slice::<MonitorSpec>(&input) else {
        crate::say!("runbook __monitor is started by runbook itself, with its spec on stdin");
        return 2;
    };
    // Out of the terminal's session: a hang-up or Ctrl-C of `runbook`'s terminal is `runbook`'s
    // to handle, and never reaches the step behind its back.
    let _ = nix::unistd::setsid();
    super::become_subreaper();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(_) => return 2,
    };
    runtime.block_on(run(spec))
}

/// Writes the status file atomically (a temporary file renamed over it), synced.
pub fn write_status(path: &Path, status: &StepStatusFile) -> std::io::Result<()> {
    let tmp = path.with_extension("status.tmp");
    let written = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a status file; `None` when there is none or it cannot be read.
pub fn read_status(path: &Path) -> Option<StepStatusFile> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the monitor a status file names is still running (its pid alive with the same start).
pub fn monitor_alive(s: &StepStatusFile) -> bool {
    s.monitor_pid > 0 && start_time(s.monitor_pid) == Some(s.monitor_start) && !is_zombie(s.monitor_pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// Every live (not zombie) descendant of `root`, found through parent links in /proc.
pub fn descendants(root: i32) -> Vec<i32> {
    let links: Vec<(i32, i32, bool)> = super::processes()
        .into_iter()
        .map(|p| (p.pid, p.ppid, p.zombie))
        .collect();
    let mut tree = vec![root];
    let mut found = Vec::new();
    while let Some(parent) = tree.pop() {
        for &(pid, ppid, zombie) in &links {
            if ppid == parent && pid != root {
                tree.push(pid);
                if !zombie {
                    found.push(pid);
                }
            }
        }
    }
    found
}

/// Sends `sig` to the shell's group and to every process below the monitor.
fn signal_tree(group: i32, sig: Signal) -> usize {
    let _ = killpg(Pid::from_raw(group), sig);
    let me = std::process::id() as i32;
    let all = descendants(me);
    for &pid in &all {
        let _ = kill(Pid::from_raw(pid), sig);
    }
    all.len()
}

/// Reaps every exited child; returns the shell's status once it has exited.
fn reap(shell: i32, status: &mut Option<WaitStatus>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(s) => {
                if s.pid() == Some(Pid::from_raw(shell)) {
                    *status = Some(s);
                }
            }
        }
    }
}

async fn run(spec: MonitorSpec) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let redactor = Redactor::new(spec.masks.iter().map(String::as_str));
    // Listen before the command starts, so that neither its end nor a request is missed. SIGTERM
    // was blocked since birth; one that came meanwhile is delivered now, to the handler.
    let (Ok(mut sigchld), Ok(mut sigterm)) = (signal(SignalKind::child()), signal(SignalKind::terminate()))
    else {
        return 2;
    };
    let mut term = nix::sys::signal::SigSet::empty();
    term.add(Signal::SIGTERM);
    let _ = term.thread_unblock();
    let mut to_runbook = Frames::new();
    let log = create_private_file(&spec.log);
    let spawned = log.and_then(|log| {
        let (reader, writer) = std::io::pipe()?;
        // A larger pipe lets a chatty command run ahead of us; failure to grow it is harmless.
        let _ = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
        let writer2 = writer.try_clone()?;
        let mut cmd = std::process::Command::new(&spec.shell);
        cmd.arg("-c")
            .arg(&spec.command)
            .current_dir(&spec.workdir)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start `{}` in {}: {e}", spec.shell, spec.workdir.display()),
            )
        })?;
        // The write ends must close here, or the pipe never reaches end-of-file.
        drop(cmd);
        Ok((child.id() as i32, reader, log))
    });
    let (shell, reader, log) = match spawned {
        Ok(s) => s,
        Err(e) => {
            let text = redactor.redact_str(&e.to_string());
            if let Ok(mut f) = create_private_file(&spec.log) {
                let _ = writeln!(f, "runbook: {text}");
            }
            let ended = Ended {
                exit_code: 127,
                start_error: Some(text),
                ..Default::default()
            };
            to_runbook.ended(&ended).await;
            return 1;
        }
    };
    let me = std::process::id() as i32;
    let mut record = StepStatusFile {
        monitor_pid: me,
        monitor_start: start_time(me).unwrap_or(0),
        pid: shell,
        ended: None,
    };
    let _ = write_status(&spec.status, &record);
    let began = Instant::now();
    let receiver = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(r) => r,
        Err(_) => return 2,
    };
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let reading = Arc::new(AtomicBool::new(true));
    let pump = tokio::spawn(pump(receiver, log, redactor, frames_tx, reading.clone()));
    // Frames reach `runbook` from a task of their own: a slow or stopped reader slows the step
    // (as a terminal would), but never the timeout or a request to stop.
    let writer = tokio::spawn(async move {
        while let Some((tag, bytes)) = frames_rx.recv().await {
            to_runbook.send(tag, &bytes).await;
        }
        to_runbook
    });

    let grace = Duration::from_millis(spec.grace_ms);
    let deadline = spec.timeout_ms.map(|ms| began + Duration::from_millis(ms));
    let (mut timed_out, mut terminated) = (false, false);
    let mut kill_at: Option<Instant> = None;
    let mut status = None;
    reap(shell, &mut status);
    let mut ended_at = None;
    // Until the shell exits: forward output, and end the tree at the timeout or when asked.
    while status.is_none() {
        let stopping = timed_out || terminated;
        tokio::select! {
            _ = sigchld.recv() => {
                reap(shell, &mut status);
                if status.is_some() {
                    ended_at = Some(Instant::now());
                }
            }
            _ = sigterm.recv(), if !stopping => {
                terminated = true;
                signal_tree(shell, Signal::SIGTERM);
                kill_at = Some(Instant::now() + grace);
            }
            _ = crate::duration::sleep_until_opt(deadline), if !stopping => {
                timed_out = true;
                signal_tree(shell, Signal::SIGTERM);
                kill_at = Some(Instant::now() + grace);
            }
            _ = crate::duration::sleep_until_opt(kill_at) => {
                signal_tree(shell, Signal::SIGKILL);
                kill_at = Some(Instant::now() + Duration::from_millis(100));
            }
        }
    }
    let duration_ms = ended_at
        .unwrap_or_else(Instant::now)
        .duration_since(began)
        .as_millis() as u64;
    // What the step left running is ended too: SIGTERM, SIGKILL after the grace period.
    let leftovers = !descendants(me).is_empty();
    if leftovers {
        signal_tree(shell, Signal::SIGTERM);
        let term_until = Instant::now() + grace;
        // A process we may not signal (another user's) cannot hold us for ever.
        let give_up = term_until + Duration::from_secs(2);
        let mut ignored = None;
        loop {
            reap(shell, &mut ignored);
            if descendants(me).is_empty() || Instant::now() >= give_up {
                break;
            }
            if Instant::now() >= term_until {
                signal_tree(shell, Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reap(shell, &mut ignored);
    }
    // The rest of the output, then the log's end. Nothing of the tree is left to hold the pipe;
    // if something still does, reading stops after two quiet seconds. A reader of the frames
    // that is slow (a suspended `runbook`) is waited for: the log keeps its order either way.
    let mut pump = pump;
    let log_error = loop {
        match tokio::time::timeout(Duration::from_secs(2), &mut pump).await {
            Ok(r) => break r.unwrap_or_else(|e| Some(e.to_string())),
            Err(_) if reading.load(Ordering::Relaxed) => {
                pump.abort();
                break None;
            }
            Err(_) => {}
        }
    };
    let mut to_runbook = writer.await.unwrap_or_else(|_| Frames { out: None });
    let (exit_code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (code, None),
        Some(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
        _ => (-1, None),
    };
    let ended = Ended {
        exit_code,
        signal,
        timed_out,
        terminated,
        leftovers,
        duration_ms,
        log_error,
        start_error: None,
    };
    record.ended = Some(ended.clone());
    let _ = write_status(&spec.status, &record);
    to_runbook.ended(&ended).await;
    0
}

/// The frames to `runbook`, on stdout, for as long as it reads them.
struct Frames {
    out: Option<tokio::net::unix::pipe::Sender>,
}

impl Frames {
    fn new() -> Frames {
        // A copy of stdout, so that closing it never leaves fd 1 free for something else; closed
        // on exec, so that the step never holds the pipe to `runbook` open.
        use std::os::fd::FromRawFd;
        let fd = nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).ok();
        // SAFETY: `fd` was just made by F_DUPFD_CLOEXEC and is owned by nothing else.
        let out = fd
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
        Frames { out }
    }

    async fn send(&mut self, tag: u8, payload: &[u8]) {
        let Some(out) = self.out.as_mut() else { return };
        let mut head = [tag, 0, 0, 0, 0];
        head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let sent = async {
            out.write_all(&head).await?;
            out.write_all(payload).await
        };
        if sent.await.is_err() {
            // `runbook` is gone: the log and the status file still get everything.
            self.out = None;
        }
    }

    async fn ended(&mut self, ended: &Ended) {
        let json = serde_json::to_vec(ended).unwrap_or_default();
        self.send(FRAME_ENDED, &json).await;
    }
}

/// Reads until end-of-file: the log gets every byte (masked) as it arrives; `runbook` gets whole
/// lines. Returns why the log is incomplete, if it is.
async fn pump(
    mut rx: tokio::net::unix::pipe::Receiver,
    mut log: std::fs::File,
    redactor: Redactor,
    frames: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>,
    reading: Arc<AtomicBool>,
) -> Option<String> {
    let mut pending: Vec<u8> = Vec::with_capacity(2 * READ_SIZE);
    let hold = redactor.longest().saturating_sub(1);
    let mut log_error: Option<String> = None;
    loop {
        pending.reserve(READ_SIZE);
        reading.store(true, Ordering::Relaxed);
        let mut eof = match rx.read_buf(&mut pending).await {
            Ok(n) => n == 0,
            Err(e) => {
                log_error.get_or_insert_with(|| format!("reading the step's output: {e}"));
                true
            }
        };
        // What more arrives within FLUSH_AFTER goes out with it (up to FLUSH_SIZE): a chatty step
        // costs a few large writes instead of one per pipe read, and no byte waits longer.
        let until = tokio::time::Instant::now() + FLUSH_AFTER;
        while !eof && pending.len() < FLUSH_SIZE {
            pending.reserve(READ_SIZE);
            match tokio::time::timeout_at(until, rx.read_buf(&mut pending)).await {
                Ok(Ok(n)) => eof = n == 0,
                Ok(Err(e)) => {
                    log_error.get_or_insert_with(|| format!("reading the step's output: {e}"));
                    eof = true;
                }
                Err(_) => break,
            }
        }
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
            // Written at once: the log on disk is never behind what the screen shows. A failed
            // write (disk full) is reported once; later writes are still tried, and the pipe is
            // drained either way, so the step is neither blocked nor killed by it.
            if let Err(e) = log.write_all(&ready)
                && log_error.is_none()
            {
                let text = format!("cannot write the step's log: {e}");
                let _ = frames.send((FRAME_LOG_ERROR, text.clone().into_bytes())).await;
                log_error = Some(text);
            }
            reading.store(false, Ordering::Relaxed);
            let _ = frames.send((FRAME_OUTPUT, ready)).await;
        }
        if eof {
            break;
        }
    }
    if let Err(e) = log.sync_data()
        && log_error.is_none()
    {
        log_error = Some(format!("cannot write the step's log: {e}"));
    }
    log_error
}
