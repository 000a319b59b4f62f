//! The shared store (SPEC §9): PostgreSQL, so that a run outlives its bastion and is seen from
//! every bastion. Local files stay the truth a run is written to first (the journal, fsynced,
//! and the step logs); the store gets a copy of them, in order and idempotently, in the
//! background, and holds the lease that says which `runbook` drives a run.
//!
//! - `config`: which store (`--store`, `RUNBOOK_STORE`, `config.toml`), its password, `sslmode`;
//! - `connect`: TLS (rustls) and connection errors in an operator's words;
//! - `schema`: the tables, created and migrated by `runbook` itself (`migrations/*.sql`);
//! - `replicate`: the background copy of the journal and logs, its backlog and how far behind it is;
//! - `lease`: the driver's lease, renewed, lost, or fenced by a newer driver;
//! - `link`: what the engine sees of all this (may a step start? what to journal?);
//! - `restore`: a run folder rebuilt from the store, for `resume` on another host; `refresh`:
//!   one here brought up to date when the run went on elsewhere;
//! - `requests`: requests to a run's driver from other hosts (approve, note, takeover), answered
//!   in their row; `locks`: deploy locks shared by every host.
//!
//! The engine and front ends know nothing of PostgreSQL: they read a `Link`.

pub mod config;
pub mod connect;
pub mod lease;
pub mod link;
pub mod locks;
pub mod refresh;
pub mod replicate;
pub mod requests;
pub mod restore;
pub mod schema;

pub use crate::journal::store_event::describe;
pub use config::{StoreConfig, resolve};
pub use link::{Gate, Link, Signal, Status};

/// What went wrong with the store, said for an operator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Message(String),
    /// The network or the server is down: worth trying again.
    #[error("{0}")]
    Unreachable(String),
    #[error(
        "the store {at} has schema version {found}, newer than this runbook knows ({known}): \
         upgrade runbook on this host; nothing was written to the store"
    )]
    Newer { at: String, found: i32, known: i32 },
    /// Nobody holds the run's lease: no driver would answer a request (`requests`).
    #[error(
        "nobody drives this run (driver gone: its lease in the shared store has expired or was released)"
    )]
    NoDriver,
}

/// A store that answered: reachable, logged into, its schema at this binary's version.
pub struct Store {
    pub config: StoreConfig,
}

impl Store {
    /// Connects once and migrates the schema: every mistake in the settings shows here, before
    /// anything of a run starts.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let mut client = connect::connect(&config).await?;
        schema::migrate(&mut client, &config.display()).await?;
        Ok(Store { config })
    }

    /// A fresh connection (the background tasks each keep their own and reconnect).
    pub async fn client(&self) -> Result<tokio_postgres::Client, StoreError> {
        connect::connect(&self.config).await
    }
}

/// The store the settings name (`--store`, `RUNBOOK_STORE`, `config.toml`), opened; `None`
/// without one. Any error means: nothing was started.
pub async fn from_settings(flag: Option<&str>) -> Result<Option<Store>, String> {
    let Some(config) = resolve(flag).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let origin = config.origin.clone();
    Store::open(config)
        .await
        .map(Some)
        .map_err(|e| format!("{e} (the store is set by {origin}; nothing was started)"))
}

/// The background tasks of one run's store: the lease and the copy.
pub struct Handle {
    done: tokio::sync::watch::Sender<bool>,
    progress: tokio::sync::watch::Receiver<Status>,
    replicator: tokio::task::JoinHandle<()>,
    lease: tokio::task::JoinHandle<()>,
    run_dir: std::path::PathBuf,
    fenced_by: Arc<std::sync::Mutex<Option<String>>>,
}

use std::sync::Arc;

impl Store {
    /// Starts the lease and the copy of the run in `run_dir` (its folder name is the run's id in
    /// the store). Must be called inside a tokio runtime. `steal`: take the lease although it has
    /// not expired (its holder was on this host and is gone).
    pub fn attach(&self, run: lease::RunRow, run_dir: &std::path::Path, steal: bool) -> (Link, Handle) {
        use tokio::sync::{Notify, mpsc, watch};
        let (signals_tx, signals_rx) = mpsc::channel(64);
        let (epoch_tx, epoch_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let (progress_tx, progress_rx) = watch::channel(Status::default());
        let (until_tx, until_rx) = watch::channel(None);
        let nudge = Arc::new(Notify::new());
        let fenced_by = Arc::new(std::sync::Mutex::new(None));
        let replicator = replicate::Replicator {
            config: self.config.clone(),
            run_id: run.run_id.clone(),
            run_dir: run_dir.to_path_buf(),
            epoch: epoch_rx,
            nudge: nudge.clone(),
            signals: signals_tx.clone(),
            done: done_rx.clone(),
            progress: progress_tx,
        };
        let lease = lease::LeaseTask {
            config: self.config.clone(),
            run,
            steal,
            signals: signals_tx,
            epoch: epoch_tx,
            valid_until: until_tx,
            done: done_rx,
        };
        let handle = Handle {
            done: done_tx,
            progress: progress_rx,
            replicator: tokio::spawn(replicator.run()),
            lease: tokio::spawn(lease.run()),
            run_dir: run_dir.to_path_buf(),
            fenced_by: fenced_by.clone(),
        };
        (Link::new(signals_rx, nudge, until_rx, fenced_by), handle)
    }
}

impl Handle {
    /// Who took the run over, when this driver was fenced.
    pub fn fenced_by(&self) -> Option<String> {
        self.fenced_by.lock().ok().and_then(|f| f.clone())
    }

    /// The run ended: copies what is left (waiting at most `wait`), releases the lease. Returns
    /// what the store still lacks, in words, when it lacks something.
    pub async fn finish(mut self, wait: std::time::Duration) -> Option<String> {
        let _ = self.done.send(true);
        let copied = tokio::time::timeout(wait, &mut self.replicator).await.is_ok();
        if !copied {
            self.replicator.abort();
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), &mut self.lease).await;
        self.lease.abort();
        let status = self.progress.borrow().clone();
        match (&status.behind, copied) {
            (Some(_), _) => Some(format!(
                "{}; the rest is in {}",
                status.line().unwrap_or_default(),
                self.run_dir.display()
            )),
            (None, false) => Some(format!(
                "the shared store did not take all of this run within {}s; the rest is in {}",
                wait.as_secs(),
                self.run_dir.display()
            )),
            (None, true) => None,
        }
    }
}

/// Whether `arg` (of `resume`) reads as a run's id rather than a path: `<UTC time>-<runbook id>`.
pub fn is_run_id(arg: &std::path::Path) -> bool {
    let Some(s) = arg.to_str() else { return false };
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Before `resume`: the run rebuilt from the store when it is not here (`restore`), and whether
/// its lease may be taken although it has not expired (its holder was on this host and is
/// gone). A lease that someone alive holds refuses the resume, naming them.
pub async fn prepare_resume(
    store: Option<&Store>,
    run_dir: Option<&std::path::Path>,
    restore: Option<&str>,
    state_dir: &std::path::Path,
) -> Result<bool, String> {
    let Some(run_dir) = run_dir else { return Ok(false) };
    let Some(store) = store else {
        return match restore {
            Some(id) => Err(format!(
                "{id}: no such journal or run folder (nor a run in {}; a run on another host is found with --store)",
                state_dir.join("runs").display()
            )),
            None => Ok(false),
        };
    };
    let run_id = lease::run_id(run_dir);
    let steal = lease::may_take(&store.config, &run_id)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(id) = restore {
        let dir = restore::restore(store, id, state_dir)
            .await
            .map_err(|e| e.to_string())?;
        crate::say!(
            "runbook: rebuilt {} from the store {}",
            dir.display(),
            store.config.display()
        );
    }
    Ok(steal)
}
