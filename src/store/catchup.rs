//! What a run's copy to the store left unfinished, and the next `runbook`'s catching up on it.
//!
//! A run's copy marks its folder (`store-copy`: the lease's epoch and the store) as soon as it
//! writes under a lease, and removes the mark once the store has every line and log byte at the
//! end. A mark that stays (the store was away when the run ended, the wait at the exit was given
//! up, `runbook` was killed) is found by the next `run`, `rehearse` or `resume` on this host with
//! the same store, which copies the rest in the background — under the epoch the run was written
//! with, so that nothing reaches the store after another driver took the run over: that is
//! checked first (`superseded`), and then nothing is copied, the mark goes, and the operator is
//! told who has the run and what of this host's stays local.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, watch};

use super::link::{LeaseState, Signal, Status};
use super::replicate::{Copied, Replicator, remaining};
use super::{Store, StoreConfig};

/// The mark's file in a run folder.
pub const MARKER: &str = "store-copy";

/// Marks `run_dir` as not yet wholly in the store `config`, written under `epoch`.
pub fn mark(run_dir: &Path, config: &StoreConfig, epoch: i64) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = run_dir.join(MARKER);
    let _ = std::fs::remove_file(&path);
    let mut f = crate::journal::create_private_file(&path)?;
    writeln!(f, "{epoch}\n{}", config.display())
}

/// The store has all of `run_dir`.
pub fn unmark(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(MARKER));
}

/// A run left behind: its folder and the epoch it was written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub run_dir: PathBuf,
    pub epoch: i64,
}

/// The runs in `state_dir` whose copy to this store was left unfinished (`except`: the run this
/// `runbook` drives, whose own copy goes on with it).
pub fn pending(state_dir: &Path, config: &StoreConfig, except: Option<&Path>) -> Vec<Pending> {
    let Ok(dirs) = std::fs::read_dir(state_dir.join("runs")) else {
        return Vec::new();
    };
    let store = config.display();
    let except = except.and_then(|e| std::fs::canonicalize(e).ok());
    let mut found: Vec<Pending> = dirs
        .flatten()
        .filter_map(|e| {
            let run_dir = e.path();
            let text = std::fs::read_to_string(run_dir.join(MARKER)).ok()?;
            let mut lines = text.lines();
            let epoch = lines.next()?.trim().parse().ok()?;
            (lines.next()? == store).then_some(())?;
            let same = except.is_some() && std::fs::canonicalize(&run_dir).ok() == except;
            (!same).then_some(Pending { run_dir, epoch })
        })
        .collect();
    found.sort_by(|a, b| a.run_dir.cmp(&b.run_dir));
    found
}

/// How the catching up went, run by run, in words for the operator (nothing when all went in).
pub type Report = Vec<String>;

/// Copies what the store lacks of `runs`, one after another, in the background.
pub fn spawn(store: &Store, runs: Vec<Pending>) -> tokio::task::JoinHandle<Report> {
    let config = store.config.clone();
    tokio::spawn(async move {
        let mut report = Vec::new();
        for p in runs {
            if let Some(line) = copy_rest(&config, &p).await {
                report.push(line);
            }
        }
        report
    })
}

/// What the store lacks of one run, now, as for the run's own copy at its end.
async fn copy_rest(config: &StoreConfig, p: &Pending) -> Option<String> {
    // Taken over meanwhile: the store's journal of it is the newer driver's, and this host's
    // later lines would only be refused (`superseded`). The mark goes; nothing is copied.
    if let Ok(Some(taken)) = super::superseded::check(config, &p.run_dir, p.epoch).await {
        unmark(&p.run_dir);
        return Some(taken.say(&p.run_dir));
    }
    let run_id = super::lease::run_id(&p.run_dir);
    let (signals_tx, mut signals_rx) = mpsc::channel(64);
    let (_epoch_tx, epoch_rx) = watch::channel(Some(p.epoch));
    // No run goes on: the copy takes what there is and stops (the sender's end is gone).
    let done_rx = watch::channel(true).1;
    let (progress_tx, _progress_rx) = watch::channel(Status::default());
    let copied: Copied = Arc::default();
    let replicator = Replicator {
        config: config.clone(),
        run_id: run_id.clone(),
        run_dir: p.run_dir.clone(),
        epoch: epoch_rx,
        nudge: Arc::new(Notify::new()),
        signals: signals_tx,
        done: done_rx,
        progress: progress_tx,
        copied: copied.clone(),
        mark: false,
    };
    replicator.run().await;
    let mut fenced = None;
    while let Ok(s) = signals_rx.try_recv() {
        if let Signal::Lease(LeaseState::Fenced { by, .. }) = s {
            fenced = Some(by);
        }
    }
    if let Some(by) = fenced {
        // Taken over while this copy ran: the store will never take the rest.
        unmark(&p.run_dir);
        if let Ok(Some(taken)) = super::superseded::check(config, &p.run_dir, p.epoch).await {
            return Some(taken.say(&p.run_dir));
        }
        return Some(format!(
            "{run_id}: {by} took this run over; what this host wrote of it that the store lacks \
             stays in {}",
            p.run_dir.display()
        ));
    }
    let (events, bytes) = remaining(&p.run_dir, &copied);
    if (events, bytes) == (0, 0) {
        unmark(&p.run_dir);
        return None;
    }
    Some(format!(
        "{run_id}: the store still lacks {events} events, {} of it (in {}); the next runbook \
         with this store tries again",
        super::link::bytes(bytes),
        p.run_dir.display()
    ))
}

/// Starts catching up on the runs of `state_dir` left unfinished in this store, if any: how many,
/// and the task.
pub fn start(
    store: &Store,
    state_dir: &Path,
    except: Option<&Path>,
) -> Option<(usize, tokio::task::JoinHandle<Report>)> {
    let runs = pending(state_dir, &store.config, except);
    (!runs.is_empty()).then(|| (runs.len(), spawn(store, runs)))
}
