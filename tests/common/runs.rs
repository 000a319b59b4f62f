//! The store tests' `runbook` processes and what they leave: a child waited for with its output
//! (`finish`), or writing to a file and killed if the test ends before it does (`Running`,
//! `spawn_logged`, `wait_exit`, `ended`, `wait_text`); the one run folder of a state dir, its id and its
//! journal; and the runbook that several of them catch a driver in (`WAITING`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{CliRun, wait_output};

/// How long a store test waits for a `runbook` to do what it should (a loaded 2-core machine
/// with a PostgreSQL of its own).
pub const LIMIT: Duration = Duration::from_secs(60);

/// Another run, of one step that does nothing: started on a host, it catches up what earlier
/// runs there left uncopied to the store.
pub const ANOTHER_RUN: &str =
    "[runbook]\ntitle = \"Other\"\n[[phase]]\ntitle = \"P\"\n[[phase.step]]\ntitle = \"S\"\nrun = \"true\"\n";

/// A runbook whose second step waits (a watch of `${w}`), so that a driver can be caught in it.
/// The first step's log names the run folder it ran in; the third step writes that folder to
/// `third-ran-in` (in the runbook's folder), so that a test sees which host ran it, and how often.
pub const WAITING: &str = r#"
[runbook]
title = "Hand-over across hosts"
[vars]
w = "5m"
[[phase]]
title = "Deploy"
[[phase.step]]
title = "First"
run = "echo first on $RUNBOOK_RUN_DIR"
[[phase.step]]
title = "Soak"
watch = "${w}"
[[phase.step]]
title = "Third"
run = "echo $RUNBOOK_RUN_DIR >> third-ran-in; echo third"
"#;

/// Waits until the driver of `WAITING` is in its soak (the store has its `step_started`).
pub fn wait_for_soak(pg: &super::postgres::Postgres) {
    pg.wait_for(
        "SELECT count(*) FROM events WHERE event = 'step_started' AND line LIKE '%\"step\":\"soak\"%'",
        "1",
        LIMIT,
    );
}

/// Waits for `child` to end (killed after `limit`), reading its output meanwhile.
pub fn finish(child: Child, limit: Duration) -> CliRun {
    let started = Instant::now();
    CliRun::new(wait_output(child, limit), started.elapsed())
}

/// A `runbook` started by the test, killed when dropped if it still runs (a test that fails
/// midway leaves nothing behind).
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `cmd` with its stdout and stderr going to the file `out` (read while it runs).
pub fn spawn_logged(mut cmd: Command, out: &Path) -> Running {
    let file = std::fs::File::create(out).unwrap();
    Running(
        cmd.stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap(),
    )
}

/// Waits up to `limit` for `child` to end: its status, or `None` if it still runs.
pub fn wait_end(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end (up to `LIMIT`, failing the test after): its status.
pub fn ended(child: &mut Child) -> ExitStatus {
    wait_end(child, LIMIT)
        .unwrap_or_else(|| panic!("runbook (pid {}) did not end within {LIMIT:?}", child.id()))
}

/// Waits for a process started by `spawn_logged` to end: its exit code (`None` after `LIMIT`,
/// when it is killed, or when a signal ended it).
pub fn wait_exit(mut running: Running) -> Option<i32> {
    wait_end(&mut running.0, LIMIT).and_then(|s| s.code())
}

/// Waits until the file holds `text`; returns what it holds.
pub fn wait_text(path: &Path, text: &str) -> String {
    let mut got = String::new();
    let ok = super::wait_for(LIMIT, || {
        std::thread::sleep(Duration::from_millis(50));
        got = std::fs::read_to_string(path).unwrap_or_default();
        got.contains(text)
    });
    assert!(ok, "{} never said {text:?}; it says:\n{got}", path.display());
    got
}

/// The one run folder of `state`, once there is one (up to `LIMIT`).
pub fn the_run(state: &Path) -> PathBuf {
    let mut dirs = Vec::new();
    super::wait_for(LIMIT, || {
        dirs = super::run_dirs(state);
        !dirs.is_empty()
    });
    assert_eq!(dirs.len(), 1, "one run folder in {}: {dirs:?}", state.display());
    dirs.pop().unwrap()
}

/// A run's id: its folder's name (as in the store).
pub fn run_id(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// A run folder's journal, every line of which must parse (a run that has ended; while it runs,
/// `common::run_journal`).
pub fn journal(dir: &Path) -> Vec<Value> {
    super::journal_json(&dir.join("journal.jsonl"))
}
