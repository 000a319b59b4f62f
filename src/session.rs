//! Starting an execution: load and check the runbook, read its secrets, open the run folder and
//! journal, start the engine, and turn signals into engine commands. Shared by every front end.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::engine::{Command, Engine, EngineOptions, Mode, OnFire, UPDATE_QUEUE, Update};
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
}

/// Why nothing could be started. All of them mean exit 2: nothing was executed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.render())]
    Load(#[from] LoadError),
    #[error("cannot create the run folder under {dir}: {source}")]
    Journal { dir: String, source: std::io::Error },
}

/// A started execution: the front end reads `updates` and sends `commands`.
pub struct Session {
    pub runbook: Arc<Runbook>,
    pub run_dir: PathBuf,
    pub commands: mpsc::Sender<Command>,
    pub updates: mpsc::Receiver<Update>,
    pub engine: tokio::task::JoinHandle<Outcome>,
}

/// The operator's name: `$USER`, `$LOGNAME`, or the account of this process.
pub fn operator() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()))
}

pub fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Checks everything, then starts the engine. Must be called inside a tokio runtime.
pub fn start(req: Request) -> Result<Session, StartError> {
    let rb = load(&req.file, &req.vars)?;
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
    let state_dir = req.state_dir.clone().unwrap_or_else(default_state_dir);
    let journal =
        Journal::create(&state_dir, &rb.id, secrets.redactor()).map_err(|source| StartError::Journal {
            dir: state_dir.display().to_string(),
            source,
        })?;
    let run_dir = journal.run_dir().to_path_buf();
    crate::engine::process::become_subreaper();
    let rb = Arc::new(rb);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (upd_tx, upd_rx) = mpsc::channel(UPDATE_QUEUE);
    let opts = EngineOptions {
        mode: req.mode,
        auto_confirm: req.yes,
        operator: operator(),
        host: host(),
        on_fire: req.on_fire,
        rehearsal: req.rehearsal,
        sources: crate::metrics::SourceOptions {
            prometheus: req.prometheus.clone(),
            // A rehearsal never reads production metrics.
            simulate: req.simulate_metrics || req.rehearsal.is_some(),
        },
    };
    let engine = Engine::new(rb.clone(), opts, journal, secrets, upd_tx, cmd_rx);
    let engine = tokio::spawn(engine.run());
    Ok(Session {
        runbook: rb,
        run_dir,
        commands: cmd_tx,
        updates: upd_rx,
        engine,
    })
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
