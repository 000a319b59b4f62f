//! `runbook attach [RUN] --events`: the run's journal events as JSON lines on stdout, those so
//! far first, then each as it comes, through the same `source` as the watcher's screen (the run's
//! folder, or the shared store from another host); it ends with the run. For scripts (`| jq`),
//! and for timing how soon a watcher has an event (`assets/bench/store-watch.py`).

use std::io::Write as _;
use std::path::Path;

use super::follow::Followed;
use crate::journal::Event;

/// Prints the events of the run `run` names until it finishes; returns the exit status.
pub fn main(state_dir: &Path, run: Option<&str>, store: Option<&str>) -> i32 {
    super::source::with_run(state_dir, run, store, |mut source, now| async move {
        let mut printer = Printer { finished: false };
        let mut changes = now;
        loop {
            match printer.print(changes) {
                Ok(()) if printer.finished => return 0,
                Ok(()) => {}
                // Whoever read stdout has gone: nothing left to do.
                Err(_) => return 0,
            }
            changes = match source.next().await {
                Ok(c) => c,
                Err(e) => {
                    crate::say!("runbook: cannot follow the run any more: {e}");
                    return 1;
                }
            };
        }
    })
}

struct Printer {
    /// The run's last session has finished (a later `run_started` would be a resume).
    finished: bool,
}

impl Printer {
    fn print(&mut self, changes: Vec<Followed>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for c in changes {
            match c {
                Followed::Record(r) => {
                    match &r.event {
                        Event::RunFinished { .. } => self.finished = true,
                        Event::RunStarted { .. } => self.finished = false,
                        _ => {}
                    }
                    let line = serde_json::to_string(&r).map_err(std::io::Error::other)?;
                    writeln!(out, "{line}")?;
                }
                Followed::BadLine(text) => crate::say!("runbook: {text}"),
                Followed::StoreLost(why) => {
                    crate::say!("runbook: lost the shared store ({why}); reconnecting")
                }
                Followed::StoreBack => crate::say!("runbook: the shared store is back"),
                Followed::Output(_)
                | Followed::LogOutput { .. }
                | Followed::DriverChanged
                | Followed::Approvals(_) => {}
            }
        }
        out.flush()
    }
}
