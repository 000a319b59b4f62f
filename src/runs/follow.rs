//! Following a run as its driver writes it: new journal lines, and the output of the step that is
//! running as its log grows. The kernel says when a file changed (inotify), so a watcher that
//! nothing happens to sleeps: no polling. `DriverExit` is told by the kernel when the driving
//! process ends (a pidfd), so a watcher learns at once that a driver was killed.
//!
//! Only files are read here; turning what was read into what the screen shows is the front end's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;

use crate::journal::Record;

/// The most of a step's log read at once: a flood is read in pieces, with the screen drawn and
/// keys heard in between.
const READ_AT_ONCE: usize = 4 << 20;
/// The most of a log read back when following starts in the middle of a step: the screen keeps
/// a bounded tail anyway (its log file has everything).
const TAIL: u64 = 1 << 20;

/// What changed in the run folder.
#[derive(Debug)]
pub enum Followed {
    /// A new journal event.
    Record(Box<Record>),
    /// A journal line that is not an event (a damaged journal): said once, then skipped.
    BadLine(String),
    /// Output of the step followed (`follow_log`).
    Output(Vec<u8>),
    /// The lock file changed: another process drives the run now (a takeover, a resume). Through
    /// the store (`remote`): the lease changed hands, or ran out.
    DriverChanged,
    /// Through the store: the last bytes of a step's log that came after its end.
    LogOutput { log: String, bytes: Vec<u8> },
    /// Through the store: the connection dropped (why); what is shown may be behind.
    StoreLost(String),
    /// Through the store: connected again, and caught up with what was missed.
    StoreBack,
    /// Through the store: a step waits for other operators' approvals, as the driver's lease row
    /// says (`waiting`); a watcher on this host asks the driver itself (`hello`).
    Approvals(crate::control::ApprovalWaiting),
}

struct Notify(Inotify);

impl AsRawFd for Notify {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The step log being followed.
struct LogTail {
    path: PathBuf,
    /// Open once the file exists.
    file: Option<File>,
    wd: Option<WatchDescriptor>,
    /// Where reading starts when the file is opened: from its start, or its last `TAIL` bytes.
    tail: bool,
    /// There may be more to read than was read at once.
    behind: bool,
}

/// Follows one run folder.
pub struct Follower {
    dir: PathBuf,
    notify: AsyncFd<Notify>,
    journal: File,
    journal_wd: WatchDescriptor,
    /// The end of a journal line not yet written whole.
    partial: Vec<u8>,
    line_no: usize,
    logs_wd: Option<WatchDescriptor>,
    lock_wd: Option<WatchDescriptor>,
    log: Option<LogTail>,
}

impl Follower {
    /// Starts following `dir`: returns the journal as it is now (a torn last line is kept back
    /// until its end is written); what is appended after comes from `next`.
    pub fn open(dir: &Path) -> std::io::Result<(Follower, Vec<Followed>)> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let journal_path = dir.join("journal.jsonl");
        // Watched before it is read: nothing written in between is missed.
        let journal_wd = inotify.add_watch(&journal_path, AddWatchFlags::IN_MODIFY)?;
        let logs_wd = inotify
            .add_watch(&dir.join("logs"), AddWatchFlags::IN_CREATE)
            .ok();
        let lock_wd = inotify
            .add_watch(
                &dir.join("lock"),
                AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MODIFY,
            )
            .ok();
        let journal = File::open(&journal_path)?;
        let mut f = Follower {
            dir: dir.to_path_buf(),
            // SAFETY: `Notify` owns the inotify descriptor and returns that same one for as long
            // as the AsyncFd lives.
            notify: unsafe {
                AsyncFd::register_with_interest(Notify(inotify), tokio::io::Interest::READABLE)
            }?,
            journal,
            journal_wd,
            partial: Vec::new(),
            line_no: 0,
            logs_wd,
            lock_wd,
            log: None,
        };
        let mut now = Vec::new();
        f.read_journal(&mut now)?;
        Ok((f, now))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Follows a step's log (relative to the run folder) from now on, instead of the one before.
    /// `tail`: the step has been running a while; read only the end of what it wrote so far.
    /// Returns what it holds already.
    pub fn follow_log(&mut self, rel: &str, tail: bool) -> Vec<Followed> {
        self.stop_log();
        self.log = Some(LogTail {
            path: self.dir.join(rel),
            file: None,
            wd: None,
            tail,
            behind: false,
        });
        let mut out = Vec::new();
        self.open_log();
        self.read_log(&mut out);
        out
    }

    /// Stops following the step's log (the step ended), after reading what is left of it.
    pub fn stop_log(&mut self) -> Vec<Followed> {
        let mut out = Vec::new();
        if let Some(log) = &mut self.log {
            log.tail = false;
        }
        while self.log.as_ref().is_some_and(|l| l.file.is_some()) {
            self.read_log(&mut out);
            if !self.log.as_ref().is_some_and(|l| l.behind) {
                break;
            }
        }
        if let Some(wd) = self.log.take().and_then(|l| l.wd) {
            let _ = self.notify.get_ref().0.rm_watch(wd);
        }
        out
    }

    fn open_log(&mut self) {
        let Some(log) = &mut self.log else { return };
        if log.file.is_some() {
            return;
        }
        let Ok(mut file) = File::open(&log.path) else {
            // Not there yet: the `logs` folder's IN_CREATE says when it is.
            return;
        };
        log.wd = self
            .notify
            .get_ref()
            .0
            .add_watch(&log.path, AddWatchFlags::IN_MODIFY)
            .ok();
        if log.tail
            && let Ok(len) = file.metadata().map(|m| m.len())
            && len > TAIL
        {
            let _ = file.seek(SeekFrom::Start(len - TAIL));
            // Start at a whole line.
            let mut byte = [0u8; 1];
            while file.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {}
        }
        log.file = Some(file);
    }

    fn read_log(&mut self, out: &mut Vec<Followed>) {
        let Some(log) = &mut self.log else { return };
        let Some(file) = &mut log.file else { return };
        let mut buf = Vec::new();
        let read = Read::by_ref(file).take(READ_AT_ONCE as u64).read_to_end(&mut buf);
        log.behind = read.is_ok_and(|n| n == READ_AT_ONCE);
        if !buf.is_empty() {
            out.push(Followed::Output(buf));
        }
    }

    fn read_journal(&mut self, out: &mut Vec<Followed>) -> std::io::Result<()> {
        let mut bytes = std::mem::take(&mut self.partial);
        self.journal.read_to_end(&mut bytes)?;
        let complete = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        for line in bytes.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.line_no += 1;
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => out.push(Followed::Record(Box::new(r))),
                Err(e) => out.push(Followed::BadLine(format!(
                    "{}:{}: a line that cannot be read ({e}); skipped",
                    self.dir.join("journal.jsonl").display(),
                    self.line_no
                ))),
            }
        }
        Ok(())
    }

    /// Waits until something changed, and returns it. Returns at once while a log is being read
    /// in pieces.
    pub async fn next(&mut self) -> std::io::Result<Vec<Followed>> {
        loop {
            let mut out = Vec::new();
            if self.log.as_ref().is_some_and(|l| l.behind) {
                self.read_log(&mut out);
                self.read_journal(&mut out)?;
                return Ok(out);
            }
            let mut guard = self.notify.readable().await?;
            let events = match guard.try_io(|n| n.get_ref().0.read_events().map_err(std::io::Error::from)) {
                Ok(Ok(events)) => events,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            };
            drop(guard);
            let (mut journal, mut log, mut lock) = (false, false, false);
            for ev in events {
                if ev.wd == self.journal_wd {
                    journal = true;
                } else if Some(ev.wd) == self.lock_wd {
                    lock = true;
                } else if Some(ev.wd) == self.logs_wd {
                    let ours = self
                        .log
                        .as_ref()
                        .is_some_and(|l| l.file.is_none() && ev.name.as_deref() == l.path.file_name());
                    if ours {
                        self.open_log();
                        log = true;
                    }
                } else if self.log.as_ref().is_some_and(|l| l.wd == Some(ev.wd)) {
                    log = true;
                }
            }
            // Output first, then the journal: a step's last lines come before its end.
            if log {
                self.read_log(&mut out);
            }
            if journal {
                self.read_journal(&mut out)?;
            }
            if lock {
                out.push(Followed::DriverChanged);
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// The driving process's end, told by the kernel (a pidfd becomes readable when the process
/// exits). Only for a process of this host.
pub struct DriverExit(AsyncFd<OwnedFd>);

impl DriverExit {
    /// Watches process `pid`; `None` when it is already gone (or cannot be watched).
    pub fn watch(pid: u32) -> Option<DriverExit> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (or -1).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the descriptor was just returned to us and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: the OwnedFd is moved into the AsyncFd and stays open as long as it lives.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .ok()
            .map(DriverExit)
    }

    /// Returns when the process has exited.
    pub async fn exited(&self) {
        let _ = self.0.readable().await;
    }
}
