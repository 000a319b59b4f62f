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
//!   in their row; `locks`: deploy locks shared by every host;
//! - `watch`: what watchers on any host read (runs, leases, lines, log bytes) and hear (`LISTEN`);
//! - `catchup`: what a run's copy left unfinished, copied by the next `runbook` on this host;
//!   `superseded`: such a run that another driver took over meanwhile, left as it is.
//!
//! The engine and front ends know nothing of PostgreSQL: they read a `Link`.

pub mod catchup;
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
pub mod superseded;
pub mod watch;

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
    /// The connection `open` made, kept for the run's lease: taking it then costs no second
    /// connection (and its authentication) before the first step.
    first: std::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl Store {
    /// Connects once and migrates the schema: every mistake in the settings shows here, before
    /// anything of a run starts.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let mut client = connect::connect(&config).await?;
        schema::migrate(&mut client, &config.display()).await?;
        Ok(Store {
            config,
            first: std::sync::Mutex::new(Some(client)),
        })
    }

    /// A store known by its settings, not opened here (each use connects).
    pub fn with_config(config: StoreConfig) -> Store {
        Store {
            config,
            first: std::sync::Mutex::new(None),
        }
    }

    /// A fresh connection (the background tasks each keep their own and reconnect).
    pub async fn client(&self) -> Result<tokio_postgres::Client, StoreError> {
        connect::connect(&self.config).await
    }

    /// The connection that opened the store, while nothing has taken it (a command that only
    /// reads saves a connection and its authentication), else a new one.
    pub async fn opened_client(&self) -> Result<tokio_postgres::Client, StoreError> {
        match self.first.lock().ok().and_then(|mut c| c.take()) {
            Some(c) => Ok(c),
            None => self.client().await,
        }
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
    copied: replicate::Copied,
    store: String,
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
        let (waiting_tx, waiting_rx) = watch::channel(None);
        let nudge = Arc::new(Notify::new());
        let fenced_by = Arc::new(std::sync::Mutex::new(None));
        let copied = replicate::Copied::default();
        let replicator = replicate::Replicator {
            config: self.config.clone(),
            run_id: run.run_id.clone(),
            run_dir: run_dir.to_path_buf(),
            epoch: epoch_rx,
            nudge: nudge.clone(),
            signals: signals_tx.clone(),
            done: done_rx.clone(),
            progress: progress_tx,
            copied: copied.clone(),
            mark: true,
        };
        let lease = lease::LeaseTask {
            config: self.config.clone(),
            client: self.first.lock().ok().and_then(|mut c| c.take()),
            run,
            steal,
            signals: signals_tx,
            epoch: epoch_tx,
            valid_until: until_tx,
            waiting: waiting_rx,
            done: done_rx,
        };
        let handle = Handle {
            done: done_tx,
            progress: progress_rx,
            replicator: tokio::spawn(replicator.run()),
            lease: tokio::spawn(lease.run()),
            run_dir: run_dir.to_path_buf(),
            fenced_by: fenced_by.clone(),
            copied,
            store: self.config.display(),
        };
        let link = Link::new(signals_rx, nudge, until_rx, fenced_by).with_waiting(waiting_tx);
        (link, handle)
    }
}

impl Handle {
    /// How far behind the store is, as the copy says (it goes on after the engine has ended).
    pub fn status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.progress.clone()
    }

    /// Who took the run over, when this driver was fenced.
    pub fn fenced_by(&self) -> Option<String> {
        self.fenced_by.lock().ok().and_then(|f| f.clone())
    }

    /// The run ended: copies what is left, releases the lease. A copy that takes more than a
    /// moment is said (`tell`: how much is left, and where to); it is given `wait` at most, or
    /// until `give_up` (the operator's Ctrl-C). Returns what the store still lacks, in words,
    /// when it lacks something: the run folder keeps it, and the next `runbook` with this store
    /// on this host copies it (`catchup`).
    pub async fn finish(
        mut self,
        wait: std::time::Duration,
        give_up: impl std::future::Future<Output = ()>,
        tell: &impl Fn(String),
    ) -> Option<String> {
        use std::time::Duration;
        let _ = self.done.send(true);
        let started = tokio::time::Instant::now();
        let quiet = Duration::from_millis(300).min(wait);
        let mut copied = tokio::time::timeout(quiet, &mut self.replicator).await.is_ok();
        let mut gave_up = false;
        if !copied {
            let (events, bytes) = replicate::remaining(&self.run_dir, &self.copied);
            tell(format!(
                "copying {} to the store {}… (at most {}s more; Ctrl-C leaves it to the next runbook \
                 started here with this store)",
                amount(events, bytes),
                self.store,
                wait.saturating_sub(started.elapsed()).as_secs()
            ));
            tokio::select! {
                r = tokio::time::timeout(wait.saturating_sub(started.elapsed()), &mut self.replicator) => {
                    copied = r.is_ok();
                }
                () = give_up => gave_up = true,
            }
        }
        if !copied {
            self.replicator.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut self.lease).await;
        self.lease.abort();
        let (events, bytes) = replicate::remaining(&self.run_dir, &self.copied);
        let fenced = self.fenced_by().is_some();
        if (events, bytes) == (0, 0) || fenced {
            // All in; or, fenced, never to be: the newer driver's run is the store's.
            catchup::unmark(&self.run_dir);
        }
        if (events, bytes) == (0, 0) {
            return None;
        }
        let why = match (&self.progress.borrow().behind, gave_up) {
            (_, true) => "left at Ctrl-C".to_string(),
            (Some(b), false) => b.error.clone(),
            (None, false) => format!("not done within {}s", wait.as_secs()),
        };
        let rest = amount(events, bytes);
        Some(if fenced {
            format!(
                "the store did not take the last {rest} of this run (a newer driver holds it); they stay in {}",
                self.run_dir.display()
            )
        } else {
            format!(
                "the store lacks the last {rest} of this run ({why}); they are safe in {}, and the next \
                 runbook run, rehearse or resume on this host with this store copies them",
                self.run_dir.display()
            )
        })
    }
}

/// `3 events / 1.2 KB`, or `10.7 MB of step logs` when the journal is all in.
fn amount(events: u64, bytes: u64) -> String {
    match events {
        0 => format!("{} of step logs", link::bytes(bytes)),
        1 => format!("1 event / {}", link::bytes(bytes)),
        n => format!("{n} events / {}", link::bytes(bytes)),
    }
}

/// At the exit: the run's copy (`Handle::finish`), then the catching up on earlier runs
/// (`catchup`), within `wait` in all, or until Ctrl-C or SIGTERM. Each remark goes to `tell`.
pub async fn finish(
    handle: Option<Handle>,
    catchup: Option<tokio::task::JoinHandle<catchup::Report>>,
    wait: std::time::Duration,
    tell: impl Fn(String),
) {
    let until = tokio::time::Instant::now() + wait;
    if let Some(h) = handle
        && let Some(lacking) = h.finish(wait, interrupted(), &tell).await
    {
        tell(lacking);
    }
    let Some(mut catchup) = catchup else { return };
    let left = until.saturating_duration_since(tokio::time::Instant::now());
    let quiet = std::time::Duration::from_millis(300).min(left);
    let report = match tokio::time::timeout(quiet, &mut catchup).await {
        Ok(r) => r.ok(),
        Err(_) => {
            tell(format!(
                "copying to the store what it lacks of earlier runs of this host… (at most {}s more)",
                left.as_secs()
            ));
            tokio::select! {
                r = tokio::time::timeout(left.saturating_sub(quiet), &mut catchup) => r.ok().and_then(Result::ok),
                () = interrupted() => None,
            }
        }
    };
    match report {
        Some(lines) => lines.into_iter().for_each(&tell),
        None => {
            catchup.abort();
            tell("the store still lacks some of earlier runs of this host; the next runbook with it tries again".into());
        }
    }
}

/// Ctrl-C or SIGTERM, from now on.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => std::future::pending().await,
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
    // One connection for the checks and the fence below.
    let c = store.client().await.map_err(|e| e.to_string())?;
    let steal = lease::may_take(&c, &store.config, &run_id)
        .await
        .map_err(|e| e.to_string())?;
    // A folder here that the run went on without (taken over elsewhere) is not resumed as it is:
    // an ended run is refused; a stopped one goes on from the store's journal (`refresh`).
    let went = match restore {
        None => superseded::went_on(&c, &store.config, run_dir)
            .await
            .map_err(|e| e.to_string())?,
        Some(_) => None,
    };
    if let Some(went) = &went {
        // (A lease that still runs, of a driver on this host that is dead, counts as stopped.)
        let stopped = went.now == superseded::Now::Stopped || (steal && went.now == superseded::Now::Driven);
        if !stopped {
            return Err(went.words.clone());
        }
    }
    // The lease is this process's (a new epoch) before the folder is brought up to date or
    // rebuilt: nothing an older driver still sends (a host that comes back and catches up) can
    // land in the store in between. Lines that landed just before are seen by looking again.
    lease::fence(&c, &store.config, &run_id, steal)
        .await
        .map_err(|e| e.to_string())?;
    let went = match (went, restore) {
        (None, None) => superseded::went_on(&c, &store.config, run_dir)
            .await
            .map_err(|e| e.to_string())?,
        (went, _) => went,
    };
    if went.is_some() {
        // Nobody drives it here meanwhile (a folder without its lock file has no driver either).
        let _held = match crate::journal::lock_run(run_dir) {
            Err(e @ crate::journal::OpenError::Locked { .. }) => return Err(e.to_string()),
            held => held.ok(),
        };
        if refresh::refresh(store, run_dir)
            .await
            .map_err(|e| e.to_string())?
        {
            crate::say!(
                "runbook: brought {} up to date from the store {} (the run went on on another host)",
                run_dir.display(),
                store.config.display()
            );
        }
    }
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

/// A journal's whole lines (a last line not yet ended by its newline is left out), without their
/// newlines: what the store's `events` hold one to a row.
fn whole_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"\n"))
        .map(|l| &l[..l.len() - 1])
        .collect()
}
