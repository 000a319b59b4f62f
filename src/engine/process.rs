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

/// Process groups of commands still running.
static LIVE_GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn register(pgid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(pgid);
}

fn unregister(pgid: i32) {
    if let Some(set) = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        set.remove(&pgid);
    }
}

/// Kills every registered group at once (SIGKILL). For exit paths that cannot wait.
pub fn kill_all_now() {
    let groups: Vec<i32> = LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    for g in groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Output read from a command: whole lines (or a piece of a very long line), already masked.
#[derive(Debug)]
pub struct Chunk {
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

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
    out: mpsc::Sender<Chunk>,
) -> std::io::Result<RunningCommand> {
    let log = std::fs::File::create(&spec.log)?;
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
    let child = cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot start `{}` in {}: {e}", spec.shell, spec.workdir.display()),
        )
    })?;
    // The write ends must close in this process, or the pipe never reaches end-of-file.
    drop(cmd);
    let pgid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| std::io::Error::other("the command exited before it could be tracked"))?;
    register(pgid);
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let pump = tokio::spawn(pump(receiver, log, redactor, out));
    Ok(RunningCommand { child, pgid, pump })
}

/// Reads until end-of-file: the log gets every byte (masked); `out` gets whole lines.
async fn pump(
    mut rx: tokio::net::unix::pipe::Receiver,
    log: std::fs::File,
    redactor: Redactor,
    out: mpsc::Sender<Chunk>,
) -> std::io::Result<u64> {
    let mut log = std::io::BufWriter::with_capacity(256 * 1024, log);
    let mut buf = vec![0u8; READ_SIZE];
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0u64;
    let hold = redactor.longest().saturating_sub(1);
    let mut front_open = true;
    loop {
        let n = rx.read(&mut buf).await?;
        let eof = n == 0;
        total += n as u64;
        pending.extend_from_slice(&buf[..n]);
        // Cut after the last newline; a long line without one is passed on in pieces, keeping back
        // enough bytes that a secret cut in two is still masked whole.
        let cut = if eof {
            pending.len()
        } else {
            match memchr::memrchr(b'\n', &pending) {
                Some(i) => i + 1,
                None if pending.len() >= READ_SIZE => pending.len() - hold,
                None => 0,
            }
        };
        if cut > 0 {
            let mut ready: Vec<u8> = pending.drain(..cut).collect();
            if let Some(masked) = redactor.redact(&ready) {
                ready = masked;
            }
            log.write_all(&ready)?;
            if front_open
                && out
                    .send(Chunk {
                        at: SystemTime::now(),
                        bytes: ready,
                    })
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
        if killpg(pg, None).is_ok() {
            leftovers = true;
            let _ = killpg(pg, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            while killpg(pg, None).is_ok() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = killpg(pg, Signal::SIGKILL);
        }
        unregister(self.pgid);
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
