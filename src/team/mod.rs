//! Operators as a team (SPEC §8), on one host: the driver of a run serves a Unix socket in the run
//! folder (`RUN_DIR/control.sock`) through which other operators — watchers, `runbook approve`,
//! `runbook takeover` — ask it things; it also owns deploy locks (`[runbook] lock`).
//!
//! - `protocol`: what is said on the socket (JSON lines: one request, one response per
//!   connection), and who said it (`Peer`: the kernel's word, never the request's).
//! - `client`: one request to a run's driver, with errors fit to show a user.
//! - `server`: the driver's side: accepts connections, reads the peer's credentials, and turns each
//!   request into an engine command (`engine::Command::Team`); the engine answers it. The driver
//!   alone writes the journal: a watcher's note is journaled by the driver with the watcher's name.
//! - `lock`: deploy locks, `STATE_DIR/locks/<name>.lock` (flock: released when the run ends, also
//!   on a crash).
//! - `approve`, `takeover`: the two shell commands.
//!
//! It leaves the waiting for approvals and the hand-over itself to the engine, and the dialogs to
//! the front ends.

pub mod approve;
pub mod client;
pub mod lock;
pub mod protocol;
pub mod server;
pub mod takeover;

/// The socket's name in a run folder.
pub const SOCKET: &str = "control.sock";

/// A run named on the command line: a run folder, its `journal.jsonl`, or a run id (the folder's
/// name under `STATE_DIR/runs`).
pub fn find_run(run: &std::path::Path, state_dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    if run.is_dir() {
        return Ok(run.to_path_buf());
    }
    if run.is_file() && run.file_name().is_some_and(|n| n == "journal.jsonl") {
        return Ok(run.parent().map(std::path::PathBuf::from).unwrap_or_default());
    }
    let by_id = state_dir.join("runs").join(run);
    if run.components().count() == 1 && by_id.is_dir() {
        return Ok(by_id);
    }
    Err(format!(
        "{}: no such run (give a run folder, its journal.jsonl, or a run id under {})",
        run.display(),
        state_dir.join("runs").display()
    ))
}

/// A team event in words, for the front ends' logs and the report's timeline.
pub fn describe(event: &crate::journal::Event) -> Option<String> {
    use crate::journal::Event;
    match event {
        Event::Approval {
            phase,
            step,
            rollback,
            operator,
            from,
            simulated,
            ..
        } => {
            let prefix = if *rollback { "rollback " } else { "" };
            Some(if *simulated {
                format!("{prefix}{phase}/{step} approved by {operator} (simulated: a rehearsal)")
            } else {
                format!(
                    "{prefix}{phase}/{step} approved by {operator} from {}",
                    from.describe()
                )
            })
        }
        Event::Handover {
            from,
            to,
            reason,
            consent,
            ..
        } => Some(if *consent {
            format!("{from} handed the run over to {to}: {reason}")
        } else {
            format!("{to} took the run over from {from} (its driver was gone): {reason}")
        }),
        _ => None,
    }
}
