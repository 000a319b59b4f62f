//! The open journal: one JSON line per event, fsynced before `append` returns, written under the
//! run's lock (`RUN_DIR/lock`) so that only one `runbook` drives a run at a time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Event, Record, timestamp};
use crate::files::{create_run_dir, create_state_dirs, open_private};
use crate::secrets::Redactor;

/// An open journal: appends events, each flushed to disk before `append` returns. It holds the
/// run's lock: only one `runbook` drives a run at a time.
pub struct Journal {
    /// Shared with `Appender`s: one line at a time, whoever writes it.
    file: std::sync::Arc<std::sync::Mutex<File>>,
    run_dir: PathBuf,
    redactor: Redactor,
    _lock: RunLock,
}

/// The run's lock, held: nobody else drives the run while it lives.
pub struct RunLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// Why a journal could not be opened for writing.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("this run is being driven by {holder}; only one runbook drives a run at a time")]
    Locked { holder: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Takes the run's lock (`RUN_DIR/lock`, flock), and writes who holds it into it. `resume` takes
/// it before it reads the journal, so that what it read cannot change under it.
pub fn lock_run(run_dir: &Path) -> Result<RunLock, OpenError> {
    use std::io::Seek;
    let path = run_dir.join("lock");
    let file = open_private(&path, OpenOptions::new().read(true).write(true))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            let me = format!(
                "{}@{} (pid {})\n",
                crate::identity::operator(),
                crate::identity::host(),
                std::process::id()
            );
            held.set_len(0)?;
            held.rewind()?;
            held.write_all(me.as_bytes())?;
            Ok(RunLock(held))
        }
        Err((mut file, _)) => {
            // The holder writes its name just after it takes the lock, over the name of the one
            // before it: give it a moment, until the name is of a process that is alive.
            let holder = crate::files::read_holder(&mut file, |holder| {
                holder_pid(holder).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
            });
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another runbook process (it did not say who)".to_string()
            } else {
                holder.to_string()
            };
            Err(OpenError::Locked { holder })
        }
    }
}

/// The pid in a lock file's "operator@host (pid N)".
fn holder_pid(text: &str) -> Option<u32> {
    let rest = &text[text.rfind("(pid ")? + 5..];
    rest[..rest.find(')')?].parse().ok()
}

impl Journal {
    /// Creates a new run folder (`runs/<UTC time>-<id>`, made unique) with its `logs/`.
    pub fn create(state_dir: &Path, runbook_id: &str, redactor: Redactor) -> std::io::Result<Journal> {
        let runs = state_dir.join("runs");
        create_state_dirs(state_dir, &runs)?;
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(['-', ':'], "");
        let mut n = 1;
        let run_dir = loop {
            let name = if n == 1 {
                format!("{stamp}-{runbook_id}")
            } else {
                format!("{stamp}-{runbook_id}-{n}")
            };
            let dir = runs.join(name);
            match create_run_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        };
        create_run_dir(&run_dir.join("logs"))?;
        let file = open_private(
            &run_dir.join("journal.jsonl"),
            OpenOptions::new().create_new(true).append(true),
        )?;
        let lock = lock_run(&run_dir).map_err(|e| match e {
            OpenError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })?;
        // The folder entry itself must survive a crash too.
        File::open(&runs)?.sync_all()?;
        Ok(Journal {
            file: std::sync::Arc::new(std::sync::Mutex::new(file)),
            run_dir,
            redactor,
            _lock: lock,
        })
    }

    /// Opens an existing run's journal to append to it (resuming), with the run's lock held.
    pub fn open(run_dir: &Path, lock: RunLock, redactor: Redactor) -> Result<Journal, OpenError> {
        let path = run_dir.join("journal.jsonl");
        // A line torn by a crash (the reader reported it) is cut off, so that the next event
        // starts on a line of its own and the journal stays whole.
        let text = std::fs::read(&path)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(keep as u64)?;
            f.sync_data()?;
        }
        let file = OpenOptions::new().append(true).open(&path)?;
        match create_run_dir(&run_dir.join("logs")) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e.into()),
            _ => {}
        }
        Ok(Journal {
            file: std::sync::Arc::new(std::sync::Mutex::new(file)),
            run_dir: run_dir.to_path_buf(),
            redactor,
            _lock: lock,
        })
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Writes one event and fsyncs it. Returns the record as written.
    pub fn append(&mut self, event: Event) -> std::io::Result<Record> {
        append_to(&self.file, &self.redactor, event)
    }

    /// Another writer of this journal, for events that happen outside the engine's own flow
    /// (the outcome of a notification delivered in the background).
    pub fn appender(&self) -> Appender {
        Appender {
            file: self.file.clone(),
            redactor: self.redactor.clone(),
        }
    }
}

/// Appends events to a run's journal alongside the engine, each line whole and fsynced.
#[derive(Clone)]
pub struct Appender {
    file: std::sync::Arc<std::sync::Mutex<File>>,
    redactor: Redactor,
}

impl Appender {
    pub fn append(&self, event: Event) -> std::io::Result<Record> {
        append_to(&self.file, &self.redactor, event)
    }
}

fn append_to(file: &std::sync::Mutex<File>, redactor: &Redactor, event: Event) -> std::io::Result<Record> {
    let record = Record {
        ts: timestamp(SystemTime::now()),
        event,
    };
    // Values are masked, never the JSON text: a secret that happens to read like JSON
    // (`false`, `1`, a quote) must not turn a line into something no reader can parse.
    let mut masked;
    let to_write = if redactor.is_empty() {
        &record
    } else {
        masked = record.clone();
        masked.event.mask(redactor);
        &masked
    };
    let mut line = serde_json::to_string(to_write).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    Ok(record)
}
