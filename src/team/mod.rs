//! Operators as a team (SPEC §8), on one host: the driver of a run serves a Unix socket in the run
//! folder (`RUN_DIR/control.sock`) through which other operators — watchers, `runbook approve`,
//! `runbook takeover` — ask it things; it also owns deploy locks (`[runbook] lock`).
//!
//! - what is said on the socket (JSON lines: one request, one response per connection) and who
//!   said it is `control`, below the engine, which answers the requests.
//! - `client`: one request to a run's driver, with errors fit to show a user.
//! - `server`: the driver's side: accepts connections, reads the peer's credentials, and turns each
//!   request into an engine command (`engine::Command::Team`); the engine answers it. The driver
//!   alone writes the journal: a watcher's note is journaled by the driver with the watcher's name.
//! - `lock`: deploy locks, `STATE_DIR/locks/<name>.lock` (flock: released when the run ends, also
//!   on a crash).
//! - `approve`, `takeover`, `note`: the shell commands; `remote` finds their way to the driver
//!   (its socket here, else the shared store).
//! - `store_server`: the same requests from other hosts, through the shared store (SPEC §9).
//!
//! It leaves the waiting for approvals and the hand-over itself to the engine, and the dialogs to
//! the front ends.

pub mod approve;
pub mod client;
pub mod lock;
pub mod note;
pub mod remote;
pub mod server;
pub mod store_server;
pub mod takeover;

/// The socket's name in a run folder.
pub const SOCKET: &str = "control.sock";

/// The longest path a Unix socket address holds (`sun_path`, with its terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// The address of a run's control socket. A run folder deep enough to make it longer than a
/// socket address can hold is reached through an open descriptor of the folder instead
/// (`/proc/self/fd/N/control.sock`); the descriptor must stay open while the address is used.
pub fn socket_address(
    run_dir: &std::path::Path,
) -> std::io::Result<(std::path::PathBuf, Option<std::fs::File>)> {
    use std::os::fd::AsRawFd as _;
    let path = run_dir.join(SOCKET);
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok((path, None));
    }
    let dir = std::fs::File::open(run_dir)?;
    let short = std::path::PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()));
    Ok((short, Some(dir)))
}

/// A run named on the command line: a run folder, its `journal.jsonl`, or a run id (the folder's
/// name under `STATE_DIR/runs`).
pub fn find_run(run: &std::path::Path, state_dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    if run.is_dir() {
        return Ok(run.to_path_buf());
    }
    if let Err(e) = std::fs::metadata(run)
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        return Err(format!(
            "{}: permission denied: runs in a shared state dir are for the members of its group (see the README: a shared state dir)",
            run.display()
        ));
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
