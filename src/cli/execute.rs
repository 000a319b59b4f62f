//! The executing commands — `run`, `rehearse`, `resume`, `takeover` — and what they share: which
//! front end, the shared store, the session, and what is said when the run stops. The engine and
//! the front ends do the run; this only starts and ends it.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::args::ExecFlags;
use crate::engine::Mode;
use crate::session::{self, Request};

/// `runbook run FILE`.
pub(super) fn run(file: PathBuf, exec: ExecFlags) -> i32 {
    let how = How {
        mode: Mode::Run,
        rehearsal: None,
        resume: None,
        front: front_end(exec.headless),
        restore: None,
    };
    execute(file, exec, how)
}

/// `runbook rehearse FILE`.
pub(super) fn rehearse(file: PathBuf, rehearsal: crate::engine::Rehearsal, exec: ExecFlags) -> i32 {
    let how = How {
        mode: Mode::Rehearse,
        rehearsal: Some(rehearsal),
        resume: None,
        front: front_end(exec.headless),
        restore: None,
    };
    execute(file, exec, how)
}

/// `runbook resume [JOURNAL]`: the run named (its folder, its journal, its id), else the latest
/// unfinished one in the state dir.
pub(super) fn resume(journal: Option<PathBuf>, force: bool, exec: ExecFlags) -> i32 {
    let state_dir = exec.state_dir();
    let mut restore = None;
    let dir = match journal {
        Some(j) if j.is_dir() => j,
        Some(j) if j.is_file() => j.parent().map(PathBuf::from).unwrap_or_default(),
        // A run's id: its folder in the state dir, else (with a store) rebuilt from it.
        Some(j) if crate::store::is_run_id(&j) => {
            let dir = state_dir.join("runs").join(&j);
            if !dir.is_dir() {
                restore = Some(j.display().to_string());
            }
            dir
        }
        Some(j) => {
            crate::say!("runbook: {}: no such journal or run folder", j.display());
            return 2;
        }
        None => match crate::journal::resume::latest_unfinished(&state_dir) {
            Some(d) => {
                crate::say!("runbook: resuming the latest unfinished run: {}", d.display());
                d
            }
            None => {
                crate::say!(
                    "runbook: no unfinished run in {}",
                    state_dir.join("runs").display()
                );
                return 2;
            }
        },
    };
    let how = How {
        mode: Mode::Resume,
        rehearsal: None,
        resume: Some((dir, force)),
        front: front_end(exec.headless),
        restore,
    };
    execute(PathBuf::new(), exec, how)
}

/// `runbook takeover RUN --reason TEXT`: the driver's operator is asked (or the driver is gone),
/// then the run goes on here as a resume.
pub(super) fn takeover(run: &std::path::Path, reason: &str, force: bool, exec: ExecFlags) -> i32 {
    let state_dir = exec.state_dir();
    match crate::team::takeover::prepare(run, reason, &state_dir, exec.store.as_deref()) {
        Err(code) => code,
        Ok(taken) => {
            // A rehearsal stays one: nothing it shows is run for real after a hand-over.
            let rehearsal = taken.rehearsal.then_some(crate::engine::Rehearsal {
                speed: 1.0,
                inject_fault_at: None,
            });
            let how = How {
                mode: Mode::Resume,
                rehearsal,
                resume: Some((taken.run_dir, force)),
                front: front_end(exec.headless),
                // The run is in this state dir: `prepare` found it there.
                restore: None,
            };
            execute(PathBuf::new(), exec, how)
        }
    }
}

/// The terminal UI, unless `--headless` was given or stdout or stdin is not a terminal (which
/// `execute` says, once the run has started: an error that stops it comes alone).
fn front_end(headless: bool) -> FrontEnd {
    if headless {
        FrontEnd::Headless
    } else if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        FrontEnd::HeadlessNoTerminal
    } else {
        FrontEnd::Tui
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontEnd {
    Tui,
    /// `--headless`.
    Headless,
    /// Headless because stdout or stdin is not a terminal.
    HeadlessNoTerminal,
}

/// How an executing command runs.
struct How {
    mode: Mode,
    rehearsal: Option<crate::engine::Rehearsal>,
    /// `resume`: the run folder, and --force.
    resume: Option<(PathBuf, bool)>,
    front: FrontEnd,
    /// `resume RUN` of a run not in the state dir: rebuild it from the shared store first.
    restore: Option<String>,
}

/// One thread runs the engine and the front end: on a two-core bastion the step's command gets the
/// other core, and nothing in the engine needs more than one.
fn execute(file: PathBuf, exec: ExecFlags, how: How) -> i32 {
    let How {
        mode,
        rehearsal,
        resume,
        front,
        restore,
    } = how;
    let tui = front == FrontEnd::Tui;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: cannot start: {e}");
            return 1;
        }
    };
    let state_dir = exec.state_dir();
    let req = Request {
        file,
        vars: exec.vars,
        yes: exec.yes,
        state_dir: exec.state_dir,
        mode,
        rehearsal,
        prometheus: exec.prometheus,
        simulate_metrics: exec.simulate_metrics,
        // In the terminal UI the operator chooses; headless, nobody is there to, so it rolls back.
        on_fire: if tui {
            crate::engine::OnFire::Hold
        } else {
            crate::engine::OnFire::RollBack
        },
        // Someone can answer the irreversible steps' confirmation: the UI, or a terminal on stdin.
        ask_irreversible: tui || std::io::stdin().is_terminal(),
        force: resume.as_ref().is_some_and(|(_, f)| *f),
        resume: resume.map(|(dir, _)| dir),
    };
    let speed = rehearsal.map_or(1.0, |r| r.speed);
    let resume_dir = req.resume.clone();
    let sources = crate::metrics::SourceOptions {
        prometheus: req.prometheus.clone(),
        simulate: req.simulate_metrics || rehearsal.is_some(),
    };
    let store_flag = exec.store.clone();
    let watch_store = exec.store.clone();
    let watch_state = state_dir.clone();
    let (code, watch) = runtime.block_on(async move {
        // The store first: a wrong password or an unknown database stops us before anything runs.
        let store = match crate::store::from_settings(store_flag.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                crate::say!("runbook: {e}");
                return (2, None);
            }
        };
        let steal = match crate::store::prepare_resume(
            store.as_ref(),
            resume_dir.as_deref(),
            restore.as_deref(),
            &state_dir,
        )
        .await
        {
            Ok(steal) => steal,
            Err(e) => {
                crate::say!("runbook: {e}");
                return (2, None);
            }
        };
        let session = match session::start_shared(req, store.as_ref().map(|s| (s, steal))) {
            Ok(s) => s,
            Err(e) => {
                crate::say_inline!("runbook: {e}");
                if !e.to_string().ends_with('\n') {
                    crate::say!();
                }
                return (2, None);
            }
        };
        let mut session = session;
        let shared = session.store.take();
        // Earlier runs of this host whose copy to this store was left unfinished (SPEC §9).
        let catchup = store.as_ref().and_then(|s| {
            let (n, task) = crate::store::catchup::start(s, &state_dir, Some(&session.run_dir))?;
            crate::say!("runbook: copying to the store what it lacks of {n} earlier run(s) of this host, in the background");
            Some(task)
        });
        session::forward_signals(session.commands.clone());
        if front == FrontEnd::HeadlessNoTerminal {
            crate::say!("runbook: stdout or stdin is not a terminal; running headless");
        }
        if session.history.is_empty() {
            crate::say!("runbook: recording this run in {}", session.run_dir.display());
        } else {
            crate::say!(
                "runbook: resuming; appending to {}",
                session.run_dir.join("journal.jsonl").display()
            );
        }
        let run_dir = session.run_dir.clone();
        // Handed over (or fenced) on the terminal UI: its operator goes on watching the run.
        let (code, watch) = if tui {
            let kinds = crate::metrics::source_kinds(&session.runbook, &sources);
            match crate::tui::run(session, mode, kinds, speed).await {
                crate::tui::Ended::Exit(code) => (code, None),
                crate::tui::Ended::HandedOver { to } => (0, Some(to)),
            }
        } else {
            (crate::headless::run(session).await, None)
        };
        // What the shared store still lacks is copied now (at most 15 s, said), then the lease is
        // released; so is what earlier runs here left uncopied.
        let fenced = shared.as_ref().and_then(crate::store::Handle::fenced_by);
        let wait = std::time::Duration::from_secs(15);
        crate::store::finish(shared, catchup, wait, |m| crate::say!("runbook: {m}")).await;
        if let Some(by) = fenced {
            crate::say!(
                "runbook: {by} drives this run now (the shared store says so); nothing more runs here"
            );
            return (code, watch.map(|to| (to, run_dir)));
        }
        // Stopped (q, Ctrl-C, SIGTERM), aborted, failed, or a rollback that failed: the run can
        // go on from its journal. Succeeded (0) and rolled back (3) are done.
        if matches!(code, 1 | 4 | 130) {
            crate::say!(
                "runbook: to go on from here: runbook resume {}",
                run_dir.display()
            );
        }
        (code, watch.map(|to| (to, run_dir)))
    });
    // Whatever path led here, no command of ours outlives us.
    crate::process::kill_all_now();
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match watch {
        Some((to, run_dir)) => watch_handed_over(&watch_state, &run_dir, &to, watch_store.as_deref()),
        None => code,
    }
}

/// The run was handed over to `to` (or a newer driver's lease fenced this one) while its operator
/// was at the terminal UI: the same terminal goes on as a watcher of the run (SPEC §8), read from
/// the shared store when the new driver is on another host. Leaving the watch ends the command,
/// with 0 as after a hand-over without it.
fn watch_handed_over(
    state_dir: &std::path::Path,
    run_dir: &std::path::Path,
    to: &str,
    store: Option<&str>,
) -> i32 {
    let id = crate::store::lease::run_id(run_dir);
    crate::say!("runbook: handed over to {to}; watching the run from here (q leaves)");
    match crate::tui::attach::main(state_dir, Some(&id), store) {
        0 => {}
        _ => crate::say!("runbook: the run goes on with {to}; watch it with: runbook attach {id}"),
    }
    0
}
