//! The journal: one vocabulary of events (`Event`), written as JSON Lines to
//! `STATE_DIR/runs/<UTC time>-<runbook id>/journal.jsonl`, each line fsynced before the run moves on.
//!
//! Owns the run folder layout (journal, `logs/`) and timestamps. The engine decides what happens;
//! this module only records it. Secrets are masked here too, as a last line of defence.

pub mod report;
pub mod resume;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::secrets::Redactor;

/// A journal line: the time and the event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Everything that matters after a crash. Field names are the contract of SPEC §4.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        runbook: String,
        title: String,
        file: String,
        sha256: String,
        operator: String,
        host: String,
        mode: String,
        vars: BTreeMap<String, String>,
        pid: u32,
    },
    StepStarted {
        phase: String,
        step: String,
        attempt: u32,
        rollback: bool,
    },
    StepFinished(Box<StepFinished>),
    Note {
        text: String,
        operator: String,
    },
    /// One poll of every metric: the values (`null` when there was none) and, per metric, why not.
    MetricsSampled {
        values: BTreeMap<String, Option<f64>>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        errors: BTreeMap<String, String>,
    },
    /// A metric trigger's threshold is breached; it fires when the breach has lasted `for`.
    TriggerPending {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
    },
    TriggerFired {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        /// Why, for a trigger raised by the operator or a failing check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    TriggerCleared {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
    },
    TriggerAcknowledged {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
    },
    /// The trigger's metric has no data, or its source failed: never taken as healthy.
    TriggerUnknown {
        trigger: String,
        error: String,
    },
    /// A simulated fault was injected (rehearsals, or `!` where metrics are simulated).
    FaultInjected {
        by: String,
    },
    /// A file of the run (a step's log) could not be written: it is incomplete from here on.
    WriteFailed {
        file: String,
        error: String,
    },
    RollbackStarted {
        reason: String,
    },
    RollbackFinished {
        status: String,
    },
    /// A rehearsal's figures, journaled just before `run_finished`.
    RehearsalFigures {
        /// From the first trigger firing to the decision to roll back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fired_to_decision_ms: Option<u64>,
        /// From `rollback_started` to `rollback_finished`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback_ms: Option<u64>,
    },
    /// An operator other than the driver approved a step that waits for approvals (SPEC §8):
    /// who (the Unix user the kernel named), from where, and the metric values at that moment.
    Approval {
        phase: String,
        step: String,
        rollback: bool,
        operator: String,
        from: crate::team::protocol::Origin,
        metrics: BTreeMap<String, Option<f64>>,
        /// A rehearsal's approval: nobody approved, the rehearsal played it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        simulated: bool,
    },
    /// The run changed hands: `from` stopped driving it, `to` drives it from here.
    Handover {
        from: String,
        to: String,
        reason: String,
        /// Where the new driver is.
        at: crate::team::protocol::Origin,
        /// The driver's operator agreed (`true`), or the driver was gone (`false`).
        consent: bool,
    },
    RunFinished {
        outcome: Outcome,
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StepFinished {
    pub phase: String,
    pub step: String,
    /// From 1; 0 for a step that was cancelled before any attempt started.
    pub attempt: u32,
    pub rollback: bool,
    pub status: StepStatus,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Who gave the go-ahead: an operator's name, or "auto" under `--yes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Metric values on screen when a step was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, Option<f64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What went wrong, in words (timeout, HTTP error, unexpected status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    #[default]
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Confirmed,
    Cancelled,
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Skipped => "skipped",
            StepStatus::Confirmed => "confirmed",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the step counts as done for the run going on.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Confirmed | StepStatus::Skipped
        )
    }
}

/// How a run ended, with its exit status (SPEC §1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
    RollbackFailed,
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Failed | Outcome::Aborted => 1,
            Outcome::RolledBack => 3,
            Outcome::RollbackFailed => 4,
            Outcome::Interrupted => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// As people read it: "rolled back", "rollback failed".
    pub fn words(self) -> &'static str {
        match self {
            Outcome::RolledBack => "rolled back",
            Outcome::RollbackFailed => "rollback failed",
            other => other.as_str(),
        }
    }
}

/// RFC 3339, UTC, milliseconds: `2026-11-26T20:45:12.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Where runs are recorded when `--state-dir` is not given.
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("runbook");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/runbook")
}

// ── Run folders and their files: private, or shared with the state dir's group ─────────────────
//
// SPEC §10: run folders are created 0700 and their files 0600 whatever the umask; when the state
// dir is shared with a group (group-writable, or setgid), 2770 and 0660 for that group instead.
// Nothing is ever world-readable. A shared run folder carries the setgid bit, so that a file
// created in it knows from its folder alone whether it is shared, and with which group.

/// How a new folder or file is shared: with nobody, or with one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    Private,
    Group(u32),
}

/// Whether a folder shares what is created in it with its group: group-writable, or setgid.
fn sharing_of(dir: &Path) -> std::io::Result<Sharing> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir)?;
    Ok(if meta.mode() & 0o2020 != 0 {
        Sharing::Group(meta.gid())
    } else {
        Sharing::Private
    })
}

/// Gives a folder or file we created its permissions: exactly `private` (the umask plays no part),
/// or `shared` for the group. Where the group cannot be given (we are not in it), it stays private.
fn set_access(
    path: &Path,
    file: Option<&File>,
    sharing: Sharing,
    private: u32,
    shared: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match sharing {
        Sharing::Private => private,
        Sharing::Group(gid) => {
            let given = match file {
                Some(f) => std::os::unix::fs::fchown(f, None, Some(gid)),
                None => std::os::unix::fs::chown(path, None, Some(gid)),
            };
            if given.is_ok() { shared } else { private }
        }
    };
    let perms = std::fs::Permissions::from_mode(mode);
    match file {
        Some(f) => f.set_permissions(perms),
        None => std::fs::set_permissions(path, perms),
    }
}

/// The folder holding `path` (`.` for a bare name such as `journal.jsonl`).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates the state dir (private: `0700`) and its `runs` folder where they are missing.
fn create_state_dirs(state_dir: &Path, runs: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if !state_dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
    }
    match create_run_dir(runs) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Creates one folder of a run (`runs/`, the run folder, `logs/`): `0700`, or `2770` for the
/// group when its parent is shared. Fails with `AlreadyExists` when it is there already.
fn create_run_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let parent = folder_of(dir);
    let sharing = sharing_of(parent)?;
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    set_access(dir, None, sharing, 0o700, 0o2770)
}

/// Opens a file of a run folder with `options`, creating it if they say so: a new file is `0600`,
/// or `0660` for the group when its folder is shared, whatever the umask. An existing file keeps
/// its permissions.
fn open_private(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let parent = folder_of(path);
    // Never readable by others, not even for the moment before the permissions are set.
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(file) => {
            set_access(path, Some(&file), sharing_of(parent)?, 0o600, 0o660)?;
            drop(file);
            // Reopened with what the caller asked for, now that it exists (`create_new` is
            // satisfied: this call created it).
            let mut options = options.clone();
            options.create_new(false).create(false);
            options.open(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut opts = options.clone();
            opts.create(false);
            opts.open(path)
        }
        Err(e) => Err(e),
    }
}

/// Creates (or empties) a file in a run folder, `0600` (`0660` for a shared state dir's group)
/// whatever the umask: step logs and every other file `runbook` writes in a run folder.
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    open_private(path, OpenOptions::new().write(true).create(true).truncate(true))
}

/// Creates a folder below the state dir (`locks/`) as the run folders are: `0700`, or `2770` for
/// the group when the state dir is shared (creating the state dir itself first when missing).
pub fn create_folder(state_dir: &Path, dir: &Path) -> std::io::Result<()> {
    create_state_dirs(state_dir, &state_dir.join("runs"))?;
    match create_run_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Opens a file for reading and writing without emptying it, creating it `0600` (`0660` for a
/// shared state dir's group) when it is missing: lock files.
pub fn open_private_rw(path: &Path) -> std::io::Result<File> {
    open_private(path, OpenOptions::new().read(true).write(true).create(true))
}

/// Gives something `runbook` created in a run folder by other means than `create_private_file`
/// (the control socket) the same access: `0600`, or `0660` for a shared state dir's group.
pub fn give_access(path: &Path) -> std::io::Result<()> {
    set_access(path, None, sharing_of(folder_of(path))?, 0o600, 0o660)
}

/// An open journal: appends events, each flushed to disk before `append` returns. It holds the
/// run's lock: only one `runbook` drives a run at a time.
pub struct Journal {
    file: File,
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
    use std::io::{Read, Seek};
    let path = run_dir.join("lock");
    let file = open_private(&path, OpenOptions::new().read(true).write(true))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            let me = format!(
                "{}@{} (pid {})\n",
                crate::session::operator(),
                crate::session::host(),
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
            let mut holder = String::new();
            for _ in 0..40 {
                holder.clear();
                let _ = file.rewind();
                let _ = file.read_to_string(&mut holder);
                if holder_pid(&holder).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
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
            file,
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
            file,
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
        let record = Record {
            ts: timestamp(SystemTime::now()),
            event,
        };
        // Values are masked, never the JSON text: a secret that happens to read like JSON
        // (`false`, `1`, a quote) must not turn a line into something no reader can parse.
        let mut masked;
        let to_write = if self.redactor.is_empty() {
            &record
        } else {
            masked = record.clone();
            masked.event.mask(&self.redactor);
            &masked
        };
        let mut line = serde_json::to_string(to_write).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        Ok(record)
    }
}

impl Event {
    /// Masks secrets in every text of the event (map keys included). Every field is named, so
    /// that a field added to an event cannot be forgotten here.
    pub fn mask(&mut self, r: &Redactor) {
        let m = |s: &mut String| {
            if let Some(v) = r.redact(s.as_bytes()) {
                *s = String::from_utf8_lossy(&v).into_owned();
            }
        };
        let mo = |s: &mut Option<String>| {
            if let Some(s) = s {
                m(s);
            }
        };
        fn keys<V>(map: &mut BTreeMap<String, V>, r: &Redactor) {
            if map.keys().any(|k| r.redact(k.as_bytes()).is_some()) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (r.redact_str(&k), v))
                    .collect();
            }
        }
        match self {
            Event::RunStarted {
                runbook,
                title,
                file,
                sha256,
                operator,
                host,
                mode,
                vars,
                pid: _,
            } => {
                for s in [runbook, title, file, sha256, operator, host, mode] {
                    m(s);
                }
                vars.values_mut().for_each(m);
                keys(vars, r);
            }
            Event::StepStarted {
                phase,
                step,
                attempt: _,
                rollback: _,
            } => {
                m(phase);
                m(step);
            }
            Event::StepFinished(f) => {
                let StepFinished {
                    phase,
                    step,
                    attempt: _,
                    rollback: _,
                    status: _,
                    duration_ms: _,
                    exit_code: _,
                    http_status: _,
                    log,
                    by,
                    metrics,
                    reason,
                    error,
                } = &mut **f;
                m(phase);
                m(step);
                for s in [log, by, reason, error] {
                    mo(s);
                }
                if let Some(metrics) = metrics {
                    keys(metrics, r);
                }
            }
            Event::Note { text, operator } => {
                m(text);
                m(operator);
            }
            Event::WriteFailed { file, error } => {
                m(file);
                m(error);
            }
            Event::MetricsSampled { values, errors } => {
                keys(values, r);
                errors.values_mut().for_each(m);
                keys(errors, r);
            }
            Event::TriggerPending { trigger, value: _ } | Event::TriggerCleared { trigger, value: _ } => {
                m(trigger)
            }
            Event::TriggerFired {
                trigger,
                value: _,
                reason,
            } => {
                m(trigger);
                mo(reason);
            }
            Event::TriggerAcknowledged {
                trigger,
                value: _,
                operator,
            } => {
                m(trigger);
                mo(operator);
            }
            Event::TriggerUnknown { trigger, error } => {
                m(trigger);
                m(error);
            }
            Event::FaultInjected { by } => m(by),
            Event::RollbackStarted { reason } => m(reason),
            Event::RollbackFinished { status } => m(status),
            Event::RehearsalFigures {
                fired_to_decision_ms: _,
                rollback_ms: _,
            } => {}
            Event::Approval {
                phase,
                step,
                rollback: _,
                operator,
                from,
                metrics,
                simulated: _,
            } => {
                for s in [phase, step, operator] {
                    m(s);
                }
                from.mask(&m, &mo);
                keys(metrics, r);
            }
            Event::Handover {
                from,
                to,
                reason,
                at,
                consent: _,
            } => {
                for s in [from, to, reason] {
                    m(s);
                }
                at.mask(&m, &mo);
            }
            Event::RunFinished {
                outcome: _,
                exit_code: _,
                reason,
            } => mo(reason),
        }
    }
}

/// The largest journal read back (`report`, `resume`). A journal of a long, chatty run is a few
/// MiB; this is far beyond any, and keeps a wrong file from filling memory.
pub const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a journal back. A torn last line (power loss mid-write) is skipped and reported. A file
/// that is not a journal (or not a regular file, or beyond `MAX_JOURNAL_BYTES`) is refused with
/// an error that says so, of kind `InvalidData` (or `InvalidInput` for what is not a file).
pub fn read(path: &Path) -> std::io::Result<(Vec<Record>, Option<String>)> {
    use std::io::{Error, ErrorKind};
    let bytes = crate::runbook::read_regular_file(path, MAX_JOURNAL_BYTES).map_err(|e| match e {
        crate::runbook::ReadError::Io(e) => e,
        crate::runbook::ReadError::NotFound => Error::new(ErrorKind::NotFound, e.to_string()),
        crate::runbook::ReadError::PermissionDenied => Error::new(ErrorKind::PermissionDenied, e.to_string()),
        other => Error::new(ErrorKind::InvalidInput, other.to_string()),
    })?;
    let not_journal = |line: usize, why: &str| {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "{}:{line}: this is not a runbook journal ({why}); give the journal.jsonl of a run, or its folder",
                path.display()
            ),
        )
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        not_journal(line, "it is not text")
    })?;
    let mut records = Vec::new();
    let mut torn = None;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end_matches('\n');
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(trimmed) {
            Ok(r) => records.push(r),
            // The writer starts every line with `{"ts":`; a last line cut short by a crash still does.
            Err(e) if i + 1 == lines.len() && !line.ends_with('\n') && trimmed.starts_with("{\"ts\":") => {
                torn = Some(format!("ignored a torn last line ({} bytes): {e}", trimmed.len()));
            }
            Err(e) => {
                // A line that is a journal event (an object with `ts` and `event`) which cannot be
                // read is a damaged journal; anything else means the file is something else.
                let value = serde_json::from_str::<serde_json::Value>(trimmed).ok();
                let event = value
                    .as_ref()
                    .filter(|v| v["ts"].is_string())
                    .and_then(|v| v["event"].as_str());
                return Err(match event {
                    Some(event) => Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "{}:{}: a `{event}` event that cannot be read: {e}",
                            path.display(),
                            i + 1
                        ),
                    ),
                    None => not_journal(
                        i + 1,
                        "each line of a journal is an event, a JSON object with `ts` and `event`",
                    ),
                });
            }
        }
    }
    Ok((records, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_the_spec_names() {
        let r = Record {
            ts: "2026-01-01T00:00:00.000Z".into(),
            event: Event::StepStarted {
                phase: "p".into(),
                step: "s".into(),
                attempt: 1,
                rollback: false,
            },
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ts":"2026-01-01T00:00:00.000Z","event":"step_started","phase":"p","step":"s","attempt":1,"rollback":false}"#
        );
        let f = Event::StepFinished(Box::new(StepFinished {
            phase: "p".into(),
            step: "s".into(),
            attempt: 2,
            status: StepStatus::TimedOut,
            duration_ms: 5,
            exit_code: Some(143),
            ..Default::default()
        }));
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"event":"step_finished","phase":"p","step":"s","attempt":2,"rollback":false,"status":"timed_out","duration_ms":5,"exit_code":143}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), f);
    }

    #[test]
    fn masking_touches_values_never_the_json_around_them() {
        let r = Redactor::new(["false", "step-1"]);
        let mut e = Event::StepStarted {
            phase: "p".into(),
            step: "step-1".into(),
            attempt: 1,
            rollback: false,
        };
        e.mask(&r);
        let line = serde_json::to_string(&Record {
            ts: "t".into(),
            event: e,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"ts":"t","event":"step_started","phase":"p","step":"***","attempt":1,"rollback":false}"#
        );
        let mut e = Event::MetricsSampled {
            values: [("false".to_string(), Some(1.0))].into(),
            errors: [("m".to_string(), "said false".to_string())].into(),
        };
        e.mask(&r);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"metrics_sampled","values":{"***":1.0},"errors":{"m":"said ***"}}"#
        );
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(t), "2023-11-14T22:13:20.123Z");
    }
}
