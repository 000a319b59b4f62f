//! `runbook approve RUN STEP`: approve, from a shell, a step that waits for a second operator.
//! Who approves is this process's Unix user, as the kernel tells the driver; nothing here says it.

use std::path::Path;

use super::client::{ClientError, request};
use crate::control::Request;

/// Approves `step` of the run `run` (a run folder, its journal, or a run id); prints what was
/// approved or why not. Exit status: 0 approved, 1 refused by the driver or no driver to ask,
/// 2 no such run.
pub fn main(run: &Path, step: &str, state_dir: &Path) -> i32 {
    let dir = match super::find_run(run, state_dir) {
        Ok(d) => d,
        Err(e) => {
            crate::say!("runbook: {e}");
            return 2;
        }
    };
    match request(
        &dir,
        &Request::Approve {
            step: step.to_string(),
        },
    ) {
        Ok(r) if r.ok => {
            crate::out!("{}", r.text());
            0
        }
        Ok(r) => {
            crate::say!("runbook: not approved: {}", r.text());
            1
        }
        Err(ClientError::NoDriver) if ended(&dir).is_some() => {
            let outcome = ended(&dir).unwrap_or_default();
            crate::say!(
                "runbook: not approved: this run has ended ({outcome}); nothing waits for an approval"
            );
            1
        }
        Err(ClientError::NoDriver) => {
            crate::say!(
                "runbook: not approved: nobody drives this run (driver gone); an approval is given to a live driver: \
                 once someone drives it again (runbook takeover {} --reason ...), approve again",
                dir.display()
            );
            1
        }
        Err(e) => {
            crate::say!("runbook: not approved: {e}");
            1
        }
    }
}

/// How the run ended, if its journal says it did (and no session started after that).
fn ended(run_dir: &Path) -> Option<String> {
    let (records, _) = crate::journal::read(&run_dir.join("journal.jsonl")).ok()?;
    let info = crate::journal::resume::info(&records)?;
    info.finished.map(|o| o.as_str().replace('_', " "))
}
