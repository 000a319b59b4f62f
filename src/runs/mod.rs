//! The runs of a state dir as somebody other than their driver sees them: which runs there are
//! (`list`, `find`), who drives each and whether that process is still alive (`driver_of`), and
//! where each stands (`standing`, in its own module). `ls` prints them; `attach` follows one of them (`follow`).
//! With a shared store, the same for the store's runs (`shared`), followed from any host
//! (`remote`); `source` is the one seam a watcher reads a run through, whichever it is; `events`
//! prints a watched run's events for scripts; `report` finds the journal a report is made of,
//! here or in the store.
//!
//! Everything here only reads: the journal and the logs are written by the run's driver alone,
//! and a watcher's requests (notes, approvals) go to the driver, never into its files.

pub mod events;
pub mod follow;
pub mod ls;
pub mod remote;
pub mod report;
pub mod shared;
pub mod source;
mod standing;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::journal::{Event, Outcome, Record};
use crate::runbook::Runbook;
pub use standing::{Position, Standing, StepName, WaitFor, describe, standing};

/// Who drives a run, from its lock file (`RUN_DIR/lock`), or from its latest `run_started`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    pub operator: String,
    pub host: String,
    pub pid: u32,
    pub alive: Liveness,
}

/// Whether the driving process is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Alive,
    /// The process is gone (killed, crashed, or it ended).
    Gone,
    /// It runs on another host: this one cannot look.
    Unknown,
}

impl Driver {
    /// `alice@bastion (pid 4242)`.
    pub fn who(&self) -> String {
        format!("{}@{} (pid {})", self.operator, self.host, self.pid)
    }
}

/// Parses a lock file's `operator@host (pid N)`.
fn parse_holder(text: &str) -> Option<(String, String, u32)> {
    let text = text.trim();
    let open = text.rfind(" (pid ")?;
    let pid = text[open + 6..].strip_suffix(')')?.parse().ok()?;
    let (operator, host) = text[..open].rsplit_once('@')?;
    Some((operator.to_string(), host.to_string(), pid))
}

/// Whether process `pid` on this host is a `runbook`. A pid reused by another program after the
/// driver died is not taken for the driver.
fn runbook_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim_end() == "runbook",
        Err(_) => false,
    }
}

fn liveness(host: &str, pid: u32) -> Liveness {
    if host != crate::identity::host() {
        Liveness::Unknown
    } else if runbook_alive(pid) {
        Liveness::Alive
    } else {
        Liveness::Gone
    }
}

/// The run's driver: the lock file names the process that holds it (or held it last); a run
/// without one falls back to the latest `run_started` (operator, host, pid).
pub fn driver_of(run_dir: &Path, records: &[Record]) -> Option<Driver> {
    let from_lock = std::fs::read_to_string(run_dir.join("lock"))
        .ok()
        .and_then(|t| parse_holder(&t));
    let (operator, host, pid) = from_lock.or_else(|| started_by(records))?;
    let alive = liveness(&host, pid);
    Some(Driver {
        operator,
        host,
        pid,
        alive,
    })
}

/// Who started the latest session of a run (its latest `run_started`): operator, host, pid.
fn started_by(records: &[Record]) -> Option<(String, String, u32)> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::RunStarted {
            operator, host, pid, ..
        } => Some((operator.clone(), host.clone(), *pid)),
        _ => None,
    })
}

/// Where `ls` found a run: in this host's state dir, or in the shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    Local,
    Store,
}

/// One run, as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run folder's name: what `attach`, `takeover` and `approve` take.
    pub id: String,
    /// Its folder on this host (a run only in the shared store has none here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Where it was found: the state dir (`local`), or the shared store (`store`).
    pub source: Found,
    /// The driver's lease in the shared store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<shared::LeaseSummary>,
    pub runbook: Option<String>,
    pub title: Option<String>,
    /// The first `run_started`'s time (RFC 3339, UTC).
    pub started: Option<String>,
    pub mode: Option<String>,
    pub driver: Option<Driver>,
    /// Not finished, and its driver is gone: its lock is stale and the run can be taken over.
    pub stale: bool,
    #[serde(flatten)]
    pub standing: Standing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// Where it stands, in words.
    pub text: String,
    /// What to type to go on with it, when nobody drives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Why the journal could not be read (the run is listed all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    /// Whether a driver is at it now (or may be, on another host).
    pub fn live(&self) -> bool {
        !matches!(self.standing, Standing::Finished { .. })
            && self.driver.as_ref().is_some_and(|d| d.alive != Liveness::Gone)
    }
}

/// Loads the runbook a run was started with, as `resume` does (the file and vars its journal
/// recorded). `None` when it cannot be read (another user's file, say) or no longer loads.
pub fn runbook_of(records: &[Record]) -> Result<Runbook, String> {
    let info = crate::journal::resume::info(records).ok_or("the journal records no run_started")?;
    crate::runbook::load(Path::new(&info.file), &info.vars).map_err(|e| {
        let text = e.render();
        let first = text.lines().next().unwrap_or("cannot be loaded").to_string();
        format!("its runbook {}: {first}", info.file)
    })
}

/// Summarises one run folder.
pub fn summarize(dir: &Path) -> RunSummary {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (records, error) = match crate::journal::read(&dir.join("journal.jsonl")) {
        Ok((records, _)) => (records, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let driver = driver_of(dir, &records);
    summary(id, Some(dir), &records, error, driver, Awaited::Socket)
}

/// Where `ls` learns what a live driver waits for from other operators (the journal does not
/// say): from the driver itself on its control socket (a run folder here), or from its lease row
/// in the shared store, where the driver writes it (a run of the store).
pub enum Awaited {
    Socket,
    Lease(Option<crate::control::ApprovalWaiting>),
}

/// Summarises a run from its journal and its driver, wherever they were read (a run folder, or
/// the shared store: `dir` is its folder on this host, when it has one).
fn summary(
    id: String,
    dir: Option<&Path>,
    records: &[Record],
    error: Option<String>,
    driver: Option<Driver>,
    awaited: Awaited,
) -> RunSummary {
    let source = match awaited {
        Awaited::Socket => Found::Local,
        Awaited::Lease(_) => Found::Store,
    };
    let info = crate::journal::resume::info(records);
    let first = records.iter().find_map(|r| match &r.event {
        Event::RunStarted { mode, .. } => Some((r.ts.clone(), mode.clone())),
        _ => None,
    });
    let unfinished = info.as_ref().is_none_or(|i| i.finished.is_none());
    // The runbook tells what waits for a go-ahead; only runs that go on need it.
    let rb = unfinished.then(|| runbook_of(records).ok()).flatten();
    let pos = standing(records, rb.as_ref());
    let gone = driver.as_ref().is_some_and(|d| d.alive == Liveness::Gone);
    let stale = gone && !matches!(pos.standing, Standing::Finished { .. });
    // Through the store, a run whose driver is gone goes on with `resume` on any host.
    let next = match &pos.standing {
        _ if stale && source == Found::Store => Some(format!("runbook resume {id}")),
        _ if stale => Some(format!("runbook takeover {id} --reason …")),
        Standing::Finished { outcome, .. }
            if !matches!(outcome, Outcome::Succeeded | Outcome::RolledBack) && gone =>
        {
            Some(match (source, dir) {
                (Found::Local, Some(dir)) => format!("runbook resume {}", dir.display()),
                _ => format!("runbook resume {id}"),
            })
        }
        _ => None,
    };
    let mut pos = pos;
    let mut approvals = None;
    let alive = driver.as_ref().is_some_and(|d| d.alive == Liveness::Alive);
    let going_on = alive && !matches!(pos.standing, Standing::Finished { .. });
    let awaited = match awaited {
        _ if !going_on => None,
        // The lease says it whether or not the runbook file can be read on this host.
        Awaited::Lease(w) => w,
        Awaited::Socket if rb.as_ref().is_some_and(has_approvals) => dir.and_then(awaited_approvals),
        Awaited::Socket => None,
    };
    if let Some(w) = awaited {
        let (phase, step) = w.step.split_once('/').unwrap_or(("", &w.step));
        pos.standing = Standing::Waiting {
            step: StepName {
                phase: phase.to_string(),
                step: step.to_string(),
                rollback: w.rollback,
            },
            for_: WaitFor::Approvals,
        };
        approvals = Some(w.describe());
    }
    let who = driver.as_ref().map(|d| d.operator.clone());
    let mut text = describe(&pos, who.as_deref(), stale);
    if let (Some(a), Standing::Waiting { step, .. }) = (&approvals, &pos.standing) {
        text = format!("{step} is {a}");
    }
    RunSummary {
        id,
        dir: dir.map(Path::to_path_buf),
        source,
        lease: None,
        runbook: info.as_ref().map(|i| i.runbook.clone()),
        title: info.as_ref().map(|i| i.title.clone()),
        started: first.as_ref().map(|f| f.0.clone()),
        mode: first.map(|f| f.1),
        driver,
        stale,
        standing: pos.standing,
        rollback: pos.rollback,
        text,
        next,
        error,
    }
}

fn has_approvals(rb: &Runbook) -> bool {
    [false, true].iter().any(|&r| {
        rb.phases_of(r)
            .iter()
            .any(|p| p.steps.iter().any(|s| s.approval.is_some()))
    })
}

/// What waits for approvals, as the driver tells it (`hello` on its control socket). A driver
/// that does not answer within a second (stopped, say) is not waited for: `ls` goes on without.
fn awaited_approvals(dir: &Path) -> Option<crate::control::ApprovalWaiting> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let answer = crate::team::client::request(&dir, &crate::control::Request::Hello);
        let _ = tx.send(answer);
    });
    let answer = rx.recv_timeout(std::time::Duration::from_secs(1)).ok()?.ok()?;
    answer.driver?.waiting.into_iter().next()
}

/// Every run folder under `STATE_DIR/runs`, oldest first (by when it started).
pub fn list(state_dir: &Path) -> std::io::Result<Vec<RunSummary>> {
    list_except(state_dir, &std::collections::HashSet::new())
}

/// `list`, leaving out the runs named in `skip` (the shared store has them).
fn list_except(
    state_dir: &Path,
    skip: &std::collections::HashSet<String>,
) -> std::io::Result<Vec<RunSummary>> {
    let runs = state_dir.join("runs");
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<RunSummary> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            p.file_name()
                .is_none_or(|n| !skip.contains(&*n.to_string_lossy()))
        })
        .map(|p| summarize(&p))
        .collect();
    out.sort_by(|a, b| (&a.started, &a.id).cmp(&(&b.started, &b.id)));
    Ok(out)
}

/// Why `find` found no run.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no run `{name}` in {runs} (runbook ls lists them)")]
    NoSuch { name: String, runs: String },
    #[error("`{name}` matches several runs: {}; name one", .candidates.join(", "))]
    Ambiguous { name: String, candidates: Vec<String> },
    #[error("no live run in {runs} (runbook ls lists them; a finished one can be named)")]
    NoneLive { runs: String },
}

/// The run `name` names: a run folder (a path), a run id in the state dir, or a unique part of
/// one (`checkout` for the run of the checkout runbook). Without a name, the latest live run.
pub fn find(state_dir: &Path, name: Option<&str>) -> Result<PathBuf, FindError> {
    let runs = state_dir.join("runs");
    let shown = runs.display().to_string();
    let Some(name) = name else {
        let all = list(state_dir).unwrap_or_default();
        return all
            .into_iter()
            .filter(RunSummary::live)
            .max_by(|a, b| (&a.started, &a.id).cmp(&(&b.started, &b.id)))
            .and_then(|r| r.dir)
            .ok_or(FindError::NoneLive { runs: shown });
    };
    let as_path = Path::new(name);
    if as_path.join("journal.jsonl").is_file() {
        return Ok(as_path.to_path_buf());
    }
    if as_path.file_name().is_some_and(|f| f == "journal.jsonl")
        && as_path.is_file()
        && let Some(parent) = as_path.parent()
    {
        return Ok(parent.to_path_buf());
    }
    if !name.contains('/') && runs.join(name).join("journal.jsonl").is_file() {
        return Ok(runs.join(name));
    }
    let mut candidates: Vec<String> = std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.contains(name))
        .collect();
    candidates.sort();
    match candidates.len() {
        0 => Err(FindError::NoSuch {
            name: name.to_string(),
            runs: shown,
        }),
        1 => Ok(runs.join(&candidates[0])),
        _ => Err(FindError::Ambiguous {
            name: name.to_string(),
            candidates,
        }),
    }
}

#[cfg(test)]
mod tests;
