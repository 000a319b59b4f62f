//! A step's command under its monitor: starting it, reading its frames, following one an earlier
//! `runbook` started, and asking it to end.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::monitor::{self, Ended, MonitorSpec};
use super::{Groups, groups, sweep_orphans};
use crate::mask::Redactor;

/// Output read from a command: whole lines (or a piece of a very long line), already masked.
#[derive(Debug)]
pub struct Chunk {
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// Where a command's output goes besides its log, as the caller's own messages `U`: `output`
/// wraps a chunk of output (tagged with the step, say), `remark` a line for the operator (a log
/// that cannot be written).
pub struct Sink<U> {
    pub tx: mpsc::Sender<U>,
    pub output: Box<dyn Fn(Chunk) -> U + Send + Sync>,
    pub remark: fn(String) -> U,
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
pub async fn spawn<U: Send + 'static>(
    spec: CommandSpec<'_>,
    redactor: &Redactor,
    sink: Sink<U>,
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
    let frames = tokio::spawn(read_frames(stdout, sink, spec.label));
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
async fn read_frames<U: Send + 'static>(
    rx: tokio::process::ChildStdout,
    sink: Sink<U>,
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
            monitor::FRAME_OUTPUT => (sink.output)(Chunk {
                at: SystemTime::now(),
                bytes: payload,
            }),
            monitor::FRAME_LOG_ERROR => (sink.remark)(format!(
                "{label}: {}; the step goes on, nothing further will start after it",
                String::from_utf8_lossy(&payload)
            )),
            monitor::FRAME_ENDED => {
                ended = serde_json::from_slice(&payload).ok();
                continue;
            }
            _ => continue,
        };
        if front_open && sink.tx.send(update).await.is_err() {
            front_open = false;
        }
    }
    ended
}

/// Finds a step's command that an earlier `runbook` started and that is still running under its
/// monitor; `None` when its monitor is gone.
pub fn adopt<U: Send + 'static>(status: &Path, log: &Path, sink: Sink<U>) -> Option<RunningCommand> {
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
    let tail = tokio::spawn(tail_log(log.to_path_buf(), sink));
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
async fn tail_log<U: Send + 'static>(log: PathBuf, sink: Sink<U>) {
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
            if sink.tx.send((sink.output)(chunk)).await.is_err() {
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
