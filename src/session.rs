//! Starting an execution: load and check the runbook, read its secrets, open the run folder and
//! journal, start the engine, and turn signals into engine commands. Shared by every front end.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::engine::{Command, Engine, EngineOptions, Mode, OnFire, UPDATE_QUEUE, Update};
/// Who drives, where: kept reachable from here, where front ends have always asked.
pub use crate::identity::{host, operator};
use crate::journal::{Journal, Outcome, default_state_dir};
use crate::runbook::diagnostic::Diagnostic;
use crate::runbook::{LoadError, Runbook, load};
use crate::secrets::Secrets;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: PathBuf,
    pub vars: Vec<(String, String)>,
    pub yes: bool,
    pub state_dir: Option<PathBuf>,
    pub mode: Mode,
    /// Set for `rehearse`.
    pub rehearsal: Option<crate::engine::Rehearsal>,
    /// `--prometheus URL`: instead of the runbook's `[metrics] url`.
    pub prometheus: Option<String>,
    /// `--simulate-metrics`.
    pub simulate_metrics: bool,
    /// What a firing trigger does: hold for the operator (terminal UI) or roll back (headless).
    pub on_fire: OnFire,
    /// A person is at the controls (the terminal UI, or headless with a terminal on stdin): an
    /// irreversible step waits for a go-ahead that names it.
    pub ask_irreversible: bool,
    /// Resuming: the run folder to go on with (`file` is then taken from its journal).
    pub resume: Option<PathBuf>,
    /// Resume even though the runbook changed, or the run had finished.
    pub force: bool,
}

/// Why nothing could be started. All of them mean exit 2: nothing was executed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.render())]
    Load(#[from] LoadError),
    #[error("cannot create the run folder under {dir}: {source}")]
    Journal { dir: String, source: std::io::Error },
    #[error("{0}")]
    Resume(String),
    #[error("{0}")]
    Lock(#[from] crate::team::lock::LockError),
}

/// A started execution: the front end reads `updates` and sends `commands`.
pub struct Session {
    pub runbook: Arc<Runbook>,
    pub run_dir: PathBuf,
    pub commands: mpsc::Sender<Command>,
    pub updates: mpsc::Receiver<Update>,
    pub engine: tokio::task::JoinHandle<Outcome>,
    /// Resuming: the journal as it was, so that a front end shows where the run stood.
    pub history: Vec<crate::journal::Record>,
    /// Remarks about the start (a torn journal line that was ignored, a changed runbook under --force).
    pub notices: Vec<String>,
    /// The shared store's lease and copy of this run, when there is a store (SPEC §9).
    pub store: Option<crate::store::Handle>,
    /// How far behind the store is, straight from the copy: still true after the engine ended.
    pub store_status: Option<tokio::sync::watch::Receiver<crate::store::Status>>,
}

/// Checks everything, then starts the engine. Must be called inside a tokio runtime.
pub fn start(req: Request) -> Result<Session, StartError> {
    start_shared(req, None)
}

/// `start`, with the run shared through a store: `(store, steal)`, see `Store::attach`.
pub fn start_shared(
    req: Request,
    store: Option<(&crate::store::Store, bool)>,
) -> Result<Session, StartError> {
    let mut notices = Vec::new();
    let mut history = Vec::new();
    let mut plan = None;
    let mut lock = None;
    let (rb, resume_dir) = match &req.resume {
        None => (load(&req.file, &req.vars)?, None),
        Some(dir) => {
            // The lock first: a second `resume` must never read a journal that is about to grow.
            lock = Some(crate::journal::lock_run(dir).map_err(|e| locked_error(dir, e))?);
            let path = dir.join("journal.jsonl");
            let (records, torn) = crate::journal::read(&path).map_err(|e| {
                // The reader's own messages already name the file (and the line).
                let (shown, e) = (path.display().to_string(), e.to_string());
                StartError::Resume(if e.starts_with(&shown) {
                    e
                } else {
                    format!("cannot read {shown}: {e}")
                })
            })?;
            if let Some(t) = torn {
                notices.push(format!("{}: {t}", path.display()));
            }
            let info = crate::journal::resume::info(&records).ok_or_else(|| {
                StartError::Resume(format!(
                    "{} records no run_started: nothing to resume",
                    path.display()
                ))
            })?;
            if !crate::journal::resume::resumable(&info) && !req.force {
                let outcome = info.finished.map(|o| o.as_str()).unwrap_or("finished");
                return Err(StartError::Resume(format!(
                    "this run has ended ({outcome}); there is nothing to resume (--force resumes it anyway)"
                )));
            }
            // The run's own vars (with the --var it was started with), then this command's.
            let mut vars = info.vars.clone();
            for (k, v) in &req.vars {
                vars.retain(|(n, _)| n != k);
                vars.push((k.clone(), v.clone()));
            }
            let rb = load(std::path::Path::new(&info.file), &vars)?;
            let changes = crate::journal::resume::changes(&records, &info.sha256, &rb);
            if !changes.is_empty() {
                let list: String = changes.iter().map(|c| format!("\n  - {c}")).collect();
                if !req.force {
                    return Err(StartError::Resume(format!(
                        "the runbook changed since the run started:{list}\nresume with --force to go on with the file as it is now"
                    )));
                }
                notices.push(format!("going on with the changed runbook (--force):{list}"));
            }
            plan = Some(crate::journal::resume::plan(&records, &rb));
            history = records;
            (rb, Some(dir.clone()))
        }
    };
    let secrets = Secrets::resolve(&rb).map_err(|errors| {
        let source_text = std::fs::read_to_string(&rb.file).unwrap_or_default();
        LoadError::Invalid {
            file: rb.file.display().to_string(),
            source_text,
            diagnostics: errors
                .into_iter()
                .map(|e| Diagnostic::new(e.span, e.message))
                .collect(),
        }
    })?;
    // The deploy lock before the run folder: a refused run leaves nothing behind.
    let mut deploy_lock = match &rb.lock {
        Some(name) => {
            let state_dir = match &resume_dir {
                Some(dir) => crate::team::lock::state_dir_of(dir)
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_else(|| dir.join("..").join("..")),
                None => req.state_dir.clone().unwrap_or_else(default_state_dir),
            };
            // Resuming (or taking over): the last driver may be letting go of it this moment.
            let patience = if resume_dir.is_some() { 3 } else { 0 };
            let patience = std::time::Duration::from_secs(patience);
            Some(crate::team::lock::acquire_within(&state_dir, name, patience)?)
        }
        None => None,
    };
    // With a shared store the lock is also the store's, for every host (after the local one).
    let mut store_lock = match (&rb.lock, store) {
        (Some(name), Some((s, _))) => Some(shared_lock(s, name, resume_dir.as_deref())?),
        _ => None,
    };
    let journal = match &resume_dir {
        Some(dir) => {
            let lock = lock
                .take()
                .ok_or_else(|| StartError::Resume("the run's lock was not taken".into()))?;
            Journal::open(dir, lock, secrets.redactor()).map_err(|e| locked_error(dir, e))?
        }
        None => {
            let state_dir = req.state_dir.clone().unwrap_or_else(default_state_dir);
            Journal::create(&state_dir, &rb.id, secrets.redactor()).map_err(|source| StartError::Journal {
                dir: state_dir.display().to_string(),
                source,
            })?
        }
    };
    let run_dir = journal.run_dir().to_path_buf();
    crate::process::become_subreaper();
    let rb = Arc::new(rb);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (upd_tx, upd_rx) = mpsc::channel(UPDATE_QUEUE);
    let opts = EngineOptions {
        mode: if plan.is_some() { Mode::Resume } else { req.mode },
        auto_confirm: req.yes,
        ask_irreversible: req.ask_irreversible,
        operator: operator(),
        host: host(),
        on_fire: req.on_fire,
        rehearsal: req.rehearsal,
        sources: crate::metrics::SourceOptions {
            prometheus: req.prometheus.clone(),
            // A rehearsal never reads production metrics.
            simulate: req.simulate_metrics || req.rehearsal.is_some(),
        },
        resume: plan,
    };
    if let Some(lock) = deploy_lock.as_mut() {
        let _ = lock.record_run(&run_dir);
    }
    if let Some(lock) = store_lock.as_mut()
        && let Err(e) = lock.record_run_blocking(&crate::store::lease::run_id(&run_dir))
    {
        notices.push(format!(
            "the deploy lock `{}` in the shared store does not name this run ({e}): it holds for one lease length only",
            lock.name
        ));
    }
    // Other operators reach the driver here (notes, approvals, takeover): SPEC §8.
    let control = match crate::team::server::serve(&run_dir, cmd_tx.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            notices.push(format!(
                "the control socket {} could not be created ({e}): other operators cannot approve, add notes or take over from their terminals",
                run_dir.join(crate::team::SOCKET).display()
            ));
            None
        }
    };
    let mut engine = Engine::new(rb.clone(), opts, journal, secrets, upd_tx, cmd_rx);
    let store_config = store.map(|(s, _)| s.config.clone());
    // The shared store's lease and copy (SPEC §9): the engine sees the lease through its link.
    let store = store.map(|(store, steal)| {
        let (link, handle) = store.attach(crate::store::lease::RunRow::of(&rb, &run_dir), &run_dir, steal);
        engine.attach_store(link);
        handle
    });
    // Other hosts reach the driver through the store, while it holds the run's lease.
    let via_store = store_config.map(|config| {
        crate::team::store_server::serve(config, crate::store::lease::run_id(&run_dir), cmd_tx.clone())
    });
    // The socket and the deploy lock live as long as the engine drives the run, and go with it.
    let engine = tokio::spawn(async move {
        let outcome = engine.run().await;
        drop(control);
        drop(via_store);
        if let Some(lock) = store_lock {
            lock.release(outcome != Outcome::Interrupted).await;
        }
        drop(deploy_lock);
        outcome
    });
    Ok(Session {
        runbook: rb,
        run_dir,
        commands: cmd_tx,
        updates: upd_rx,
        engine,
        history,
        notices,
        store_status: store.as_ref().map(crate::store::Handle::status),
        store,
    })
}

/// The deploy lock `name` in the shared store, for a new run or the run in `resume_dir`.
fn shared_lock(
    store: &crate::store::Store,
    name: &str,
    resume_dir: Option<&std::path::Path>,
) -> Result<crate::store::locks::StoreLock, StartError> {
    use crate::store::locks::{LockError, acquire_blocking};
    let run_id = resume_dir.map(crate::store::lease::run_id);
    acquire_blocking(&store.config, name, run_id.as_deref()).map_err(|e| match e {
        LockError::Held { holder } => StartError::Lock(crate::team::lock::LockError::Held {
            name: name.to_string(),
            holder,
        }),
        LockError::Store(e) => StartError::Resume(format!("deploy lock `{name}`: {e}")),
    })
}

fn locked_error(dir: &std::path::Path, e: crate::journal::OpenError) -> StartError {
    match e {
        crate::journal::OpenError::Locked { holder } => StartError::Resume(format!(
            "{}: this run is being driven by {holder}; only one runbook drives a run at a time",
            dir.display()
        )),
        crate::journal::OpenError::Io(source) => StartError::Journal {
            dir: dir.display().to_string(),
            source,
        },
    }
}

/// Turns this process's signals into engine commands (the command line does this; tests don't).
/// SIGINT and SIGTERM interrupt the step in flight; SIGHUP lets it finish and starts nothing more.
pub fn forward_signals(commands: mpsc::Sender<Command>) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), Command::Interrupt),
        (SignalKind::terminate(), Command::Interrupt),
        (SignalKind::hangup(), Command::Detach),
    ];
    for (kind, cmd) in kinds {
        let Ok(mut stream) = signal(kind) else { continue };
        let commands = commands.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if commands.send(cmd.clone()).await.is_err() {
                    break;
                }
            }
        });
    }
}
